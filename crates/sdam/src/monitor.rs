//! The server monitor as a sans-I/O state machine: it says what to do next (connect, send a
//! hello, read the next streamed reply, wait), takes the outcomes, turns them into server
//! descriptions, keeps the RTT estimate, and queues heartbeat events. It never reads the
//! clock: every input carries `now`.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use bson::oid::ObjectId;
use bson::{Bson, Document, doc};
use mongo_events::sdam::{
    HeartbeatEvent, ServerHeartbeatFailedEvent, ServerHeartbeatStartedEvent,
    ServerHeartbeatSucceededEvent,
};
use mongo_events::{EventError, ServerAddress};

use crate::description::{ServerDescription, reply_ok};
use crate::handling::PoolClear;
use crate::rtt::RttEstimator;
use crate::{DEFAULT_HEARTBEAT_FREQUENCY, MIN_HEARTBEAT_FREQUENCY};

/// `serverMonitoringMode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ServerMonitoringMode {
    /// Stream unless running on a FaaS platform.
    #[default]
    Auto,
    /// Stream when the server supports it.
    Stream,
    /// Always poll.
    Poll,
}

impl ServerMonitoringMode {
    /// Every mode.
    pub const ALL: [ServerMonitoringMode; 3] = [
        ServerMonitoringMode::Auto,
        ServerMonitoringMode::Stream,
        ServerMonitoringMode::Poll,
    ];

    /// The name the connection string uses (`serverMonitoringMode=stream`).
    pub fn name(self) -> &'static str {
        match self {
            ServerMonitoringMode::Auto => "auto",
            ServerMonitoringMode::Stream => "stream",
            ServerMonitoringMode::Poll => "poll",
        }
    }

    /// Parses a mode name, exactly as the URI options spec spells it (case-sensitive).
    pub fn from_name(name: &str) -> Option<ServerMonitoringMode> {
        ServerMonitoringMode::ALL
            .into_iter()
            .find(|m| m.name() == name)
    }
}

/// A monitor's settings.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct MonitorConfig {
    /// The server.
    pub address: ServerAddress,
    /// `heartbeatFrequencyMS` (raised to 500 ms if lower).
    pub heartbeat_frequency: Duration,
    /// `connectTimeoutMS`; `None` (or zero, as `connectTimeoutMS=0`) is no limit.
    pub connect_timeout: Option<Duration>,
    /// `serverMonitoringMode`.
    pub mode: ServerMonitoringMode,
    /// Whether the client runs on a FaaS platform (turns `Auto` into polling).
    pub faas: bool,
    /// Whether a server API version is set (then `hello` is used from the start).
    pub server_api: bool,
    /// The topology's id, for the `topologyId` of heartbeat log messages.
    pub topology_id: Option<ObjectId>,
}

impl MonitorConfig {
    /// Defaults for `address`: 10 s heartbeats, 10 s connect timeout, auto mode.
    pub fn new(address: ServerAddress) -> Self {
        MonitorConfig {
            address,
            heartbeat_frequency: DEFAULT_HEARTBEAT_FREQUENCY,
            connect_timeout: Some(Duration::from_secs(10)),
            mode: ServerMonitoringMode::Auto,
            faas: false,
            server_api: false,
            topology_id: None,
        }
    }

    fn streaming_enabled(&self) -> bool {
        match self.mode {
            ServerMonitoringMode::Stream => true,
            ServerMonitoringMode::Poll => false,
            ServerMonitoringMode::Auto => !self.faas,
        }
    }
}

/// A hello the monitor wants sent.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct HelloRequest {
    /// The command (`hello` or legacy `isMaster`, with `topologyVersion` and `maxAwaitTimeMS`
    /// when awaitable).
    pub command: Document,
    /// Whether this is an awaitable hello (streaming protocol).
    pub awaited: bool,
    /// Set the OP_MSG exhaustAllowed flag.
    pub exhaust_allowed: bool,
    /// The socket timeout for the reply; `None` is no limit.
    pub timeout: Option<Duration>,
}

/// What the monitor wants done next.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum MonitorAction {
    /// Open a new monitoring connection and run the handshake (no authentication); report
    /// the handshake reply with [`Monitor::handle_reply`] or the failure with
    /// [`Monitor::handle_error`].
    Connect {
        /// The connect timeout.
        timeout: Option<Duration>,
    },
    /// Send this hello on the monitoring connection and report the reply.
    Send(HelloRequest),
    /// Read the next reply the server streams (the previous one had moreToCome).
    ReadNext {
        /// The socket timeout.
        timeout: Option<Duration>,
    },
    /// Nothing to do before `until`, unless [`Monitor::request_check`] is called.
    Wait {
        /// When to poll again.
        until: Instant,
    },
    /// The monitor was stopped.
    Stopped,
}

/// Why a check failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckErrorKind {
    /// A network error.
    Network,
    /// A network timeout.
    Timeout,
    /// The server answered `ok: 0`.
    Command,
}

/// A failed check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckError {
    /// What failed.
    pub kind: CheckErrorKind,
    /// The message.
    pub message: String,
}

impl CheckError {
    /// A network error.
    pub fn network(message: impl Into<String>) -> Self {
        CheckError {
            kind: CheckErrorKind::Network,
            message: message.into(),
        }
    }

    /// A network timeout.
    pub fn timeout(message: impl Into<String>) -> Self {
        CheckError {
            kind: CheckErrorKind::Timeout,
            message: message.into(),
        }
    }

    /// A command error.
    pub fn command(message: impl Into<String>) -> Self {
        CheckError {
            kind: CheckErrorKind::Command,
            message: message.into(),
        }
    }
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            CheckErrorKind::Network => "network error",
            CheckErrorKind::Timeout => "network timeout",
            CheckErrorKind::Command => "command error",
        };
        write!(f, "{what} during server check: {}", self.message)
    }
}

impl std::error::Error for CheckError {}

/// The result of one check, for the client to apply under its topology lock.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CheckOutcome {
    /// The new description: apply it with [`Topology::apply`](crate::Topology::apply).
    pub description: ServerDescription,
    /// After applying, clear the server's pool this way (a failed check).
    pub clear_pool: Option<PoolClear>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Conn {
    None,
    Idle,
    Streaming,
}

#[derive(Clone, Copy, Debug)]
struct InFlight {
    started: Instant,
    awaited: bool,
    handshake: bool,
}

/// The monitor of one server.
#[derive(Debug)]
pub struct Monitor {
    config: MonitorConfig,
    streaming: bool,
    hello_ok: bool,
    conn: Conn,
    in_flight: Option<InFlight>,
    previous: ServerDescription,
    rtt: RttEstimator,
    next_check: Option<Instant>,
    last_check_end: Option<Instant>,
    stopped: bool,
    events: VecDeque<HeartbeatEvent>,
    driver_connection_id: Option<u32>,
    /// The driver's id for the next monitoring connection, when the transport gives one.
    next_driver_connection_id: Option<u32>,
    server_connection_id: Option<i64>,
}

impl Monitor {
    /// A monitor that checks at once when first polled.
    pub fn new(mut config: MonitorConfig) -> Self {
        config.heartbeat_frequency = config.heartbeat_frequency.max(MIN_HEARTBEAT_FREQUENCY);
        // connectTimeoutMS=0 means no timeout: it must not become "heartbeat + 0" for an
        // awaited hello, nor an immediate timeout.
        config.connect_timeout = config.connect_timeout.filter(|t| !t.is_zero());
        let previous = ServerDescription::new(config.address.clone());
        Monitor {
            streaming: config.streaming_enabled(),
            hello_ok: config.server_api,
            config,
            conn: Conn::None,
            in_flight: None,
            previous,
            rtt: RttEstimator::new(),
            next_check: None,
            last_check_end: None,
            stopped: false,
            events: VecDeque::new(),
            driver_connection_id: None,
            next_driver_connection_id: None,
            server_connection_id: None,
        }
    }

    /// The monitor's settings.
    pub fn config(&self) -> &MonitorConfig {
        &self.config
    }

    /// The RTT estimate.
    pub fn rtt(&self) -> &RttEstimator {
        &self.rtt
    }

    /// Adds a sample measured by the RTT task (streaming protocol).
    pub fn add_rtt_sample(&mut self, sample: Duration) {
        self.rtt.add_sample(sample);
    }

    /// Whether the streaming protocol is in use, so a separate RTT task must measure RTT
    /// every heartbeatFrequencyMS on its own connection.
    pub fn wants_rtt_task(&self) -> bool {
        self.streaming && self.previous.is_known() && self.previous.topology_version.is_some()
    }

    /// Whether a check is in progress.
    pub fn check_in_progress(&self) -> bool {
        self.in_flight.is_some()
    }

    /// What to do next.
    pub fn poll_action(&mut self, now: Instant) -> MonitorAction {
        if self.stopped {
            return MonitorAction::Stopped;
        }
        if let Some(next) = self.next_check {
            if now < next {
                return MonitorAction::Wait { until: next };
            }
        }
        let heartbeat = self.config.heartbeat_frequency;
        if self.conn == Conn::None {
            // A new monitoring connection: the driver's id is the one the transport gave for
            // it (if any); the server's is not known yet.
            self.driver_connection_id = self.next_driver_connection_id.take();
            self.server_connection_id = None;
        }
        let (action, awaited, handshake) = match self.conn {
            Conn::None => (
                MonitorAction::Connect {
                    timeout: self.config.connect_timeout,
                },
                false,
                true,
            ),
            Conn::Streaming => (
                MonitorAction::ReadNext {
                    timeout: self
                        .config
                        .connect_timeout
                        .map(|t| t.saturating_add(heartbeat)),
                },
                true,
                false,
            ),
            Conn::Idle => match (self.streaming, self.previous.topology_version) {
                (true, Some(tv)) => {
                    let mut command = self.hello_command();
                    command.insert("topologyVersion", tv.to_document());
                    let max_await = i64::try_from(heartbeat.as_millis()).unwrap_or(i64::MAX);
                    command.insert("maxAwaitTimeMS", max_await);
                    (
                        MonitorAction::Send(HelloRequest {
                            command,
                            awaited: true,
                            exhaust_allowed: true,
                            timeout: self
                                .config
                                .connect_timeout
                                .map(|t| t.saturating_add(heartbeat)),
                        }),
                        true,
                        false,
                    )
                }
                _ => (
                    MonitorAction::Send(HelloRequest {
                        command: self.hello_command(),
                        awaited: false,
                        exhaust_allowed: false,
                        timeout: self.config.connect_timeout,
                    }),
                    false,
                    false,
                ),
            },
        };
        self.in_flight = Some(InFlight {
            started: now,
            awaited,
            handshake,
        });
        self.next_check = None;
        self.push_event(HeartbeatEvent::Started(ServerHeartbeatStartedEvent {
            address: self.config.address.clone(),
            awaited,
        }));
        action
    }

    fn hello_command(&self) -> Document {
        if self.hello_ok {
            doc! {"hello": 1}
        } else {
            doc! {"isMaster": 1, "helloOk": true}
        }
    }

    /// Takes the reply to the action in progress (`more_to_come`: the OP_MSG flag).
    pub fn handle_reply(
        &mut self,
        now: Instant,
        reply: Document,
        more_to_come: bool,
    ) -> CheckOutcome {
        let Some(flight) = self.in_flight.take() else {
            // No check in progress (it was cancelled): nothing to report.
            return CheckOutcome {
                description: self.previous.clone(),
                clear_pool: None,
            };
        };
        if !reply_ok(&reply) {
            let message = match reply.get("errmsg") {
                Some(bson::Bson::String(s)) => s.clone(),
                _ => "hello returned ok: 0".to_string(),
            };
            return self.fail(now, flight, CheckError::command(message));
        }
        let duration = now.saturating_duration_since(flight.started);
        if !flight.awaited {
            self.rtt.add_sample(duration);
        }
        self.hello_ok = self.config.server_api
            || reply
                .get("helloOk")
                .is_some_and(|v| v.as_bool() == Some(true));
        self.conn = if more_to_come {
            Conn::Streaming
        } else {
            Conn::Idle
        };
        let mut description = ServerDescription::from_hello(
            self.config.address.clone(),
            &reply,
            self.rtt.average(),
            now,
        );
        description.min_round_trip_time = Some(self.rtt.min());
        self.server_connection_id = match reply.get("connectionId") {
            Some(Bson::Int32(v)) => Some(i64::from(*v)),
            Some(Bson::Int64(v)) => Some(*v),
            _ => self.server_connection_id,
        };
        self.push_event(HeartbeatEvent::Succeeded(ServerHeartbeatSucceededEvent {
            address: self.config.address.clone(),
            awaited: flight.awaited,
            duration,
            reply,
        }));
        let supports_streaming = description.is_known() && description.topology_version.is_some();
        self.last_check_end = Some(now);
        self.next_check = if (self.streaming && supports_streaming) || more_to_come {
            None
        } else {
            Some(now + self.config.heartbeat_frequency)
        };
        let _ = flight.handshake;
        self.previous = description.clone();
        CheckOutcome {
            description,
            clear_pool: None,
        }
    }

    /// Takes the failure of the action in progress.
    pub fn handle_error(&mut self, now: Instant, error: CheckError) -> CheckOutcome {
        let Some(flight) = self.in_flight.take() else {
            return CheckOutcome {
                description: self.previous.clone(),
                clear_pool: None,
            };
        };
        self.fail(now, flight, error)
    }

    fn fail(&mut self, now: Instant, flight: InFlight, error: CheckError) -> CheckOutcome {
        let duration = now.saturating_duration_since(flight.started);
        self.conn = Conn::None;
        self.rtt.reset();
        self.hello_ok = self.config.server_api;
        self.push_event(HeartbeatEvent::Failed(ServerHeartbeatFailedEvent {
            address: self.config.address.clone(),
            awaited: flight.awaited,
            duration,
            failure: EventError::new(error.clone()),
        }));
        let was_known = self.previous.is_known();
        let network = matches!(
            error.kind,
            CheckErrorKind::Network | CheckErrorKind::Timeout
        );
        self.last_check_end = Some(now);
        self.next_check = if network && was_known {
            // Retry once at once: the server may only have closed an idle connection.
            None
        } else {
            Some(now + self.config.heartbeat_frequency)
        };
        let mut description =
            ServerDescription::unknown_with_error(self.config.address.clone(), error.to_string());
        description.last_update_time = Some(now);
        self.previous = description.clone();
        CheckOutcome {
            description,
            clear_pool: Some(PoolClear {
                service_id: None,
                interrupt_in_use: error.kind == CheckErrorKind::Timeout,
            }),
        }
    }

    /// Requests an immediate check: ignored while a check is in progress; otherwise the next
    /// check happens now, or 500 ms after the previous one ended if that is later.
    pub fn request_check(&mut self) {
        if self.in_flight.is_some() {
            return;
        }
        let earliest = self.last_check_end.map(|end| end + MIN_HEARTBEAT_FREQUENCY);
        self.next_check = match (self.next_check, earliest) {
            (Some(next), Some(earliest)) => Some(next.min(earliest)),
            (None, _) => None,
            (Some(_), None) => None,
        };
    }

    /// [`request_check`](Self::request_check) after the client marked the server Unknown on
    /// a state change error, except that an awaited hello in flight is abandoned with its
    /// connection: the server answers it only when its topologyVersion changes (a state
    /// change error need not bring a new one) or after heartbeatFrequencyMS. The next check
    /// then connects anew, minHeartbeatFrequencyMS after the previous check ended at the
    /// earliest. True if a check was abandoned: the caller must drop its I/O.
    pub fn request_check_after_state_change(&mut self) -> bool {
        match self.in_flight {
            Some(flight) if flight.awaited => {
                self.in_flight = None;
                self.conn = Conn::None;
                self.next_check = self.last_check_end.map(|end| end + MIN_HEARTBEAT_FREQUENCY);
                true
            }
            _ => {
                self.request_check();
                false
            }
        }
    }

    /// Cancels the check in progress and drops the monitoring connection (the client marked
    /// the server Unknown after an application network error). The next check waits for
    /// heartbeatFrequencyMS or a requested check.
    pub fn cancel_check(&mut self, now: Instant) {
        self.in_flight = None;
        self.conn = Conn::None;
        self.last_check_end = Some(now);
        self.next_check = Some(now + self.config.heartbeat_frequency);
    }

    /// Stops the monitor for good.
    pub fn stop(&mut self) {
        self.stopped = true;
        self.in_flight = None;
        self.conn = Conn::None;
    }

    /// Whether [`stop`](Self::stop) was called.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Whether a new monitoring connection is due and no id was given for it yet (see
    /// [`Monitor::set_next_connection_id`]).
    pub fn wants_connection_id(&self) -> bool {
        self.conn == Conn::None && self.next_driver_connection_id.is_none()
    }

    /// Gives the driver's id of the next monitoring connection, so that the heartbeat that
    /// opens it is logged with it.
    pub fn set_next_connection_id(&mut self, id: u32) {
        self.next_driver_connection_id = Some(id);
    }

    /// Sets the driver-generated id of the current monitoring connection (after a
    /// [`MonitorAction::Connect`] succeeded), for the `driverConnectionId` of heartbeat log
    /// messages. The server's id (`serverConnectionId`) is read from the hello replies.
    pub fn set_driver_connection_id(&mut self, id: Option<u32>) {
        self.driver_connection_id = id;
    }

    fn push_event(&mut self, event: HeartbeatEvent) {
        crate::log::heartbeat_event(
            &event,
            crate::log::HeartbeatContext {
                topology_id: self.config.topology_id,
                driver_connection_id: self.driver_connection_id,
                server_connection_id: self.server_connection_id,
            },
        );
        self.events.push_back(event);
    }

    /// The next heartbeat event.
    pub fn poll_event(&mut self) -> Option<HeartbeatEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "tests drive the cores from an arbitrary starting instant and wait on real time"
)]
mod tests {
    use super::*;
    use bson::oid::ObjectId;
    use mongo_events::ServerType;

    fn monitor(mode: ServerMonitoringMode) -> Monitor {
        let mut c = MonitorConfig::new(ServerAddress::parse("a:27017").unwrap());
        c.mode = mode;
        c.heartbeat_frequency = Duration::from_millis(100); // raised to 500 ms
        Monitor::new(c)
    }

    fn names(m: &mut Monitor) -> Vec<&'static str> {
        let mut v = Vec::new();
        while let Some(e) = m.poll_event() {
            v.push(match e {
                HeartbeatEvent::Started(_) => "started",
                HeartbeatEvent::Succeeded(_) => "succeeded",
                HeartbeatEvent::Failed(_) => "failed",
            });
        }
        v
    }

    #[test]
    fn polling_waits_heartbeat_frequency_between_checks() {
        let mut m = monitor(ServerMonitoringMode::Poll);
        let t0 = Instant::now();
        assert!(matches!(m.poll_action(t0), MonitorAction::Connect { .. }));
        let out = m.handle_reply(
            t0 + Duration::from_millis(5),
            doc! {"ok": 1, "helloOk": true},
            false,
        );
        assert_eq!(out.description.server_type, ServerType::Standalone);
        assert_eq!(
            out.description.round_trip_time,
            Some(Duration::from_millis(5))
        );
        let t1 = t0 + Duration::from_millis(5);
        assert_eq!(
            m.poll_action(t1),
            MonitorAction::Wait {
                until: t1 + MIN_HEARTBEAT_FREQUENCY
            }
        );
        match m.poll_action(t1 + MIN_HEARTBEAT_FREQUENCY) {
            MonitorAction::Send(req) => {
                assert!(!req.awaited);
                assert_eq!(req.command, doc! {"hello": 1});
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(names(&mut m), ["started", "succeeded", "started"]);
    }

    #[test]
    fn streaming_sends_awaitable_hello_and_reads_streamed_replies() {
        let mut m = monitor(ServerMonitoringMode::Stream);
        let t0 = Instant::now();
        m.poll_action(t0);
        let tv = doc! {"processId": ObjectId::new(), "counter": 1_i64};
        m.handle_reply(
            t0,
            doc! {"ok": 1, "helloOk": true, "topologyVersion": tv.clone()},
            false,
        );
        assert!(m.wants_rtt_task());
        match m.poll_action(t0) {
            MonitorAction::Send(req) => {
                assert!(req.awaited && req.exhaust_allowed);
                assert_eq!(req.command.get_document("topologyVersion").unwrap(), &tv);
                assert_eq!(req.command.get_i64("maxAwaitTimeMS").unwrap(), 500);
            }
            other => panic!("{other:?}"),
        }
        m.handle_reply(t0, doc! {"ok": 1, "topologyVersion": tv}, true);
        assert!(matches!(m.poll_action(t0), MonitorAction::ReadNext { .. }));
    }

    #[test]
    fn failures_clear_the_pool_and_retry_once_when_known() {
        let mut m = monitor(ServerMonitoringMode::Poll);
        let t0 = Instant::now();
        m.poll_action(t0);
        m.handle_reply(t0, doc! {"ok": 1}, false);
        let t1 = t0 + Duration::from_secs(1);
        m.poll_action(t1);
        let out = m.handle_error(t1, CheckError::timeout("slow"));
        assert_eq!(out.description.server_type, ServerType::Unknown);
        assert!(out.clear_pool.unwrap().interrupt_in_use);
        assert!(matches!(m.poll_action(t1), MonitorAction::Connect { .. }));
        let out = m.handle_error(t1, CheckError::network("refused"));
        assert!(!out.clear_pool.unwrap().interrupt_in_use);
        assert!(matches!(m.poll_action(t1), MonitorAction::Wait { .. }));
        m.request_check();
        assert_eq!(
            m.poll_action(t1),
            MonitorAction::Wait {
                until: t1 + MIN_HEARTBEAT_FREQUENCY
            }
        );
        m.stop();
        assert_eq!(m.poll_action(t1), MonitorAction::Stopped);
    }

    #[test]
    fn a_state_change_abandons_an_awaited_hello_but_not_a_plain_check() {
        let mut m = monitor(ServerMonitoringMode::Stream);
        let t0 = Instant::now();
        m.poll_action(t0);
        let tv = doc! {"processId": ObjectId::new(), "counter": 1_i64};
        m.handle_reply(
            t0,
            doc! {"ok": 1, "helloOk": true, "topologyVersion": tv},
            false,
        );
        // The awaited hello is sent at once; the request comes 100 ms after the handshake.
        assert!(matches!(m.poll_action(t0), MonitorAction::Send(ref r) if r.awaited));
        let t1 = t0 + Duration::from_millis(100);
        assert!(m.request_check_after_state_change());
        assert!(!m.check_in_progress());
        // Rate-limited by minHeartbeatFrequencyMS from the end of the previous check...
        assert_eq!(
            m.poll_action(t1),
            MonitorAction::Wait {
                until: t0 + MIN_HEARTBEAT_FREQUENCY
            }
        );
        // ...then a new connection (its handshake is the check), not awaited.
        assert!(matches!(
            m.poll_action(t0 + MIN_HEARTBEAT_FREQUENCY),
            MonitorAction::Connect { .. }
        ));
        assert_eq!(
            names(&mut m),
            ["started", "succeeded", "started", "started"]
        );
        // The handshake in flight is not awaited: it is left alone.
        assert!(!m.request_check_after_state_change());
        assert!(m.check_in_progress());

        // Streamed replies are awaited too; long after the last check, reconnect at once.
        let t2 = t0 + Duration::from_secs(1);
        let tv = doc! {"processId": ObjectId::new(), "counter": 1_i64};
        m.handle_reply(
            t2,
            doc! {"ok": 1, "helloOk": true, "topologyVersion": tv.clone()},
            false,
        );
        m.poll_action(t2);
        m.handle_reply(t2, doc! {"ok": 1, "topologyVersion": tv}, true);
        assert!(matches!(m.poll_action(t2), MonitorAction::ReadNext { .. }));
        let t3 = t2 + Duration::from_secs(5);
        assert!(m.request_check_after_state_change());
        assert!(matches!(m.poll_action(t3), MonitorAction::Connect { .. }));

        // Polling: nothing is awaited, the request is an ordinary one.
        let mut p = monitor(ServerMonitoringMode::Poll);
        p.poll_action(t0);
        p.handle_reply(t0, doc! {"ok": 1, "helloOk": true}, false);
        assert!(!p.request_check_after_state_change());
        assert!(matches!(
            p.poll_action(t0 + MIN_HEARTBEAT_FREQUENCY),
            MonitorAction::Send(ref r) if !r.awaited
        ));
    }

    #[test]
    fn zero_connect_timeout_is_no_limit_for_every_check() {
        let mut c = MonitorConfig::new(ServerAddress::parse("a:27017").unwrap());
        c.mode = ServerMonitoringMode::Stream;
        c.connect_timeout = Some(Duration::ZERO);
        let mut m = Monitor::new(c);
        assert_eq!(m.config().connect_timeout, None);
        let t0 = Instant::now();
        assert_eq!(m.poll_action(t0), MonitorAction::Connect { timeout: None });
        let tv = doc! {"processId": ObjectId::new(), "counter": 1_i64};
        m.handle_reply(
            t0,
            doc! {"ok": 1, "helloOk": true, "topologyVersion": tv.clone()},
            false,
        );
        match m.poll_action(t0) {
            MonitorAction::Send(req) => assert!(req.awaited && req.timeout.is_none()),
            other => panic!("{other:?}"),
        }
        m.handle_reply(t0, doc! {"ok": 1, "topologyVersion": tv}, true);
        assert_eq!(m.poll_action(t0), MonitorAction::ReadNext { timeout: None });
    }

    #[test]
    fn monitoring_mode_names_round_trip() {
        for mode in ServerMonitoringMode::ALL {
            assert_eq!(ServerMonitoringMode::from_name(mode.name()), Some(mode));
        }
        assert_eq!(ServerMonitoringMode::from_name("Stream"), None);
    }
}
