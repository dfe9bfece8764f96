//! Log messages of the logging spec for the `topology` and `serverSelection` components,
//! written through `tracing`.
//!
//! SDAM messages use the target [`TOPOLOGY_TARGET`] (`mongo::topology`) at `DEBUG` level and
//! are written by [`Topology`](crate::Topology) and [`Monitor`](crate::Monitor) at the same
//! points as the matching events. Server selection messages use the target
//! [`SERVER_SELECTION_TARGET`] (`mongo::server_selection`); the client calls
//! [`selection_started`], [`selection_waiting`] (once per operation), and then
//! [`selection_succeeded`] or [`selection_failed`] around its selection loop.
//!
//! Every message carries the spec's text as the `message` field and the spec's keys
//! (`topologyId`, `serverHost`, `durationMS`, ...) as structured fields; absent values are
//! omitted. Nothing is formatted unless a subscriber enables the target and level: documents
//! are turned into relaxed extended JSON (truncated by [`mongo_events::log`], on a
//! character boundary, with `...` appended) only then.

use std::fmt::{self, Display};
use std::time::Duration;

use bson::oid::ObjectId;
use mongo_events::ServerAddress;
use mongo_events::sdam::{HeartbeatEvent, ServerEvent, ServerInfo, TopologyEvent, TopologyInfo};
use tracing::Level;

use crate::topology::TopologyDescription;

pub use mongo_events::log::{SERVER_SELECTION_TARGET, TOPOLOGY_TARGET};
use mongo_events::log::{display_truncated, document_json};
/// Whether `topology` messages at `DEBUG` are wanted by the current subscriber.
pub(crate) fn topology_enabled() -> bool {
    tracing::enabled!(target: TOPOLOGY_TARGET, Level::DEBUG)
}

fn host_port(address: &ServerAddress) -> (String, Option<u16>) {
    (address.host().into_owned(), address.port())
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A compact, readable form of a topology description for log messages.
struct TopologyText<'a>(&'a TopologyInfo);

impl Display for TopologyText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        write!(f, "{{type: {}", t.topology_type)?;
        if let Some(name) = &t.set_name {
            write!(f, ", setName: {name:?}")?;
        }
        if let Some(err) = &t.compatibility_error {
            write!(f, ", compatibilityError: {err:?}")?;
        }
        f.write_str(", servers: [")?;
        for (i, s) in t.servers.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            ServerText(s).fmt(f)?;
        }
        f.write_str("]}")
    }
}

struct ServerText<'a>(&'a ServerInfo);

impl Display for ServerText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        write!(f, "{{address: {}, type: {}", s.address, s.server_type)?;
        if let Some(rtt) = s.round_trip_time {
            write!(f, ", roundTripTimeMS: {}", millis(rtt))?;
        }
        if let Some(name) = &s.set_name {
            write!(f, ", setName: {name:?}")?;
        }
        if let Some(err) = &s.error {
            write!(f, ", error: {err:?}")?;
        }
        f.write_str("}")
    }
}

/// The description as the `topologyDescription` / `newDescription` string.
fn topology_text(info: &TopologyInfo) -> String {
    TopologyText(info).to_string()
}

/// Logs the message matching a topology event (opening, description changed, closed).
pub(crate) fn topology_event(event: &TopologyEvent) {
    if !topology_enabled() {
        return;
    }
    match event {
        TopologyEvent::Opening(e) => tracing::debug!(
            target: TOPOLOGY_TARGET,
            topologyId = %e.topology_id,
            "Starting topology monitoring"
        ),
        TopologyEvent::Closed(e) => tracing::debug!(
            target: TOPOLOGY_TARGET,
            topologyId = %e.topology_id,
            "Stopped topology monitoring"
        ),
        TopologyEvent::DescriptionChanged(e) => tracing::debug!(
            target: TOPOLOGY_TARGET,
            topologyId = %e.topology_id,
            previousDescription = topology_text(&e.previous_description),
            newDescription = topology_text(&e.new_description),
            "Topology description changed"
        ),
        #[allow(unreachable_patterns)]
        _ => {}
    }
}

/// Logs the message matching a server event (opening and closed; description changes have
/// no message of their own, by the spec).
pub(crate) fn server_event(event: &ServerEvent) {
    if !topology_enabled() {
        return;
    }
    match event {
        ServerEvent::Opening(e) => {
            let (host, port) = host_port(&e.address);
            tracing::debug!(
                target: TOPOLOGY_TARGET,
                topologyId = %e.topology_id,
                serverHost = host,
                serverPort = port,
                "Starting server monitoring"
            );
        }
        ServerEvent::Closed(e) => {
            let (host, port) = host_port(&e.address);
            tracing::debug!(
                target: TOPOLOGY_TARGET,
                topologyId = %e.topology_id,
                serverHost = host,
                serverPort = port,
                "Stopped server monitoring"
            );
        }
        _ => {}
    }
}

/// The connection a heartbeat ran on, for the heartbeat messages.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct HeartbeatContext {
    pub(crate) topology_id: Option<ObjectId>,
    pub(crate) driver_connection_id: Option<u32>,
    pub(crate) server_connection_id: Option<i64>,
}

/// Writes one heartbeat message: the fields every heartbeat message has, then `$rest`.
macro_rules! heartbeat_debug {
    ($event:expr, $ctx:expr, $topology_id:expr, $($rest:tt)+) => {{
        let (host, port) = host_port(&$event.address);
        tracing::debug!(
            target: TOPOLOGY_TARGET,
            topologyId = $topology_id,
            serverHost = host,
            serverPort = port,
            driverConnectionId = $ctx.driver_connection_id,
            serverConnectionId = $ctx.server_connection_id,
            awaited = $event.awaited,
            $($rest)+
        )
    }};
}

/// Logs the message matching a heartbeat event.
pub(crate) fn heartbeat_event(event: &HeartbeatEvent, ctx: HeartbeatContext) {
    if !topology_enabled() {
        return;
    }
    let topology_id = ctx.topology_id.map(|id| id.to_hex());
    match event {
        HeartbeatEvent::Started(e) => {
            heartbeat_debug!(e, ctx, topology_id, "Server heartbeat started");
        }
        HeartbeatEvent::Succeeded(e) => heartbeat_debug!(
            e,
            ctx,
            topology_id,
            durationMS = millis(e.duration),
            reply = document_json(&e.reply),
            "Server heartbeat succeeded"
        ),
        HeartbeatEvent::Failed(e) => heartbeat_debug!(
            e,
            ctx,
            topology_id,
            durationMS = millis(e.duration),
            failure = display_truncated(&e.failure),
            "Server heartbeat failed"
        ),
    }
}

/// Writes one server selection message at `$level` when the subscriber wants it: the fields
/// every selection message has, then `$rest`. The topology is formatted only then.
macro_rules! selection_event {
    ($level:expr, $operation:expr, $operation_id:expr, $selector:expr, $topology:expr,
     $($rest:tt)+) => {
        if tracing::enabled!(target: SERVER_SELECTION_TARGET, $level) {
            tracing::event!(
                target: SERVER_SELECTION_TARGET,
                $level,
                selector = %$selector,
                operation = $operation,
                operationId = $operation_id,
                topologyDescription = topology_text(&$topology.to_info()),
                $($rest)+
            );
        }
    };
}

/// Logs "Server selection started" (`DEBUG`, target `mongo::server_selection`).
///
/// `operation` is the command name, `operation_id` the driver's operation id if it has one,
/// `selector` the read preference (or "write", or a custom selector's description).
pub fn selection_started(
    operation: &str,
    operation_id: Option<i64>,
    selector: &dyn Display,
    topology: &TopologyDescription,
) {
    selection_event!(
        Level::DEBUG,
        operation,
        operation_id,
        selector,
        topology,
        "Server selection started"
    );
}

/// Logs "Waiting for suitable server to become available" (`INFO`, target
/// `mongo::server_selection`). Call it once per operation, the first time selection has to
/// wait; `remaining_time_ms` is `None` when server selection has no timeout.
pub fn selection_waiting(
    operation: &str,
    operation_id: Option<i64>,
    selector: &dyn Display,
    topology: &TopologyDescription,
    remaining_time_ms: Option<u64>,
) {
    selection_event!(
        Level::INFO,
        operation,
        operation_id,
        selector,
        topology,
        remainingTimeMS = remaining_time_ms,
        "Waiting for suitable server to become available"
    );
}

/// Logs "Server selection succeeded" (`DEBUG`, target `mongo::server_selection`) with the
/// selected server.
pub fn selection_succeeded(
    operation: &str,
    operation_id: Option<i64>,
    selector: &dyn Display,
    topology: &TopologyDescription,
    server: &ServerAddress,
) {
    selection_event!(
        Level::DEBUG,
        operation,
        operation_id,
        selector,
        topology,
        serverHost = host_port(server).0,
        serverPort = host_port(server).1,
        "Server selection succeeded"
    );
}

/// Logs "Server selection failed" (`DEBUG`, target `mongo::server_selection`) with the error
/// the client is about to return.
pub fn selection_failed(
    operation: &str,
    operation_id: Option<i64>,
    selector: &dyn Display,
    topology: &TopologyDescription,
    failure: &dyn Display,
) {
    selection_event!(
        Level::DEBUG,
        operation,
        operation_id,
        selector,
        topology,
        failure = display_truncated(failure),
        "Server selection failed"
    );
}

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "tests drive the cores from an arbitrary starting instant and wait on real time"
)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::time::Instant;

    use bson::doc;
    use tracing::field::{Field, Visit};
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::{Layer, Registry};

    use crate::{
        CheckError, Monitor, MonitorConfig, ReadPreference, ServerDescription, Topology,
        TopologyConfig,
    };
    use mongo_events::sdam::ReadMode;

    /// One captured log record: target, level and every field as text.
    #[derive(Debug, Clone)]
    struct Record {
        target: String,
        level: Level,
        fields: BTreeMap<String, String>,
    }

    impl Record {
        fn message(&self) -> &str {
            self.fields.get("message").map_or("", String::as_str)
        }
        fn field(&self, name: &str) -> Option<&str> {
            self.fields.get(name).map(String::as_str)
        }
    }

    /// The capture running now: its thread, its level and what it recorded.
    type Active = Option<(std::thread::ThreadId, LevelFilter, Vec<Record>)>;

    static ACTIVE: Mutex<Active> = Mutex::new(None);

    /// The test binary's one subscriber: keeps the events of the running capture's thread.
    struct Capture;

    struct Fields<'a>(&'a mut BTreeMap<String, String>);

    impl Visit for Fields<'_> {
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.insert(field.name().to_string(), value.to_string());
        }
        fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
            self.0
                .insert(field.name().to_string(), format!("{value:?}"));
        }
    }

    impl<S: tracing::Subscriber> Layer<S> for Capture {
        fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
            let mut active = ACTIVE
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let Some((thread, level, records)) = active.as_mut() else {
                return;
            };
            if *thread != std::thread::current().id() || *event.metadata().level() > *level {
                return;
            }
            let mut fields = BTreeMap::new();
            event.record(&mut Fields(&mut fields));
            records.push(Record {
                target: event.metadata().target().to_string(),
                level: *event.metadata().level(),
                fields,
            });
        }
    }

    /// Runs `f` and returns what it logged at `level` or above on this thread. The capturing
    /// subscriber is the test binary's global default, installed once: a scoped subscriber
    /// raced with callsites that other tests' threads (the tokio monitors) registered at the
    /// same time, and a callsite could stay "never" for the capture. Captures run one at a
    /// time.
    fn capture(level: LevelFilter, f: impl FnOnce()) -> Vec<Record> {
        static INSTALL: std::sync::Once = std::sync::Once::new();
        static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
        INSTALL.call_once(|| {
            let _ = tracing::subscriber::set_global_default(Registry::default().with(Capture));
            tracing::callsite::rebuild_interest_cache();
        });
        let _serial = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *ACTIVE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((std::thread::current().id(), level, Vec::new()));
        f();
        ACTIVE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .map(|(_, _, records)| records)
            .unwrap_or_default()
    }

    fn addr(s: &str) -> ServerAddress {
        ServerAddress::parse(s).unwrap()
    }

    fn find<'a>(records: &'a [Record], message: &str) -> Vec<&'a Record> {
        records.iter().filter(|r| r.message() == message).collect()
    }

    #[test]
    fn topology_lifecycle_messages() {
        let id = ObjectId::new();
        let records = capture(LevelFilter::DEBUG, || {
            let config = TopologyConfig::new(vec![addr("a:27017")]);
            let mut topology = Topology::with_id(&config, id).unwrap();
            // Logging does not depend on recording events.
            topology.set_record_events(false);
            let reply = doc! {"ok": 1, "isWritablePrimary": true, "maxWireVersion": 21,
            "minWireVersion": 0};
            let sd = ServerDescription::from_hello(
                addr("a:27017"),
                &reply,
                Some(Duration::from_millis(2)),
                Instant::now(),
            );
            topology.apply(sd);
            topology.close();
        });
        assert!(records.iter().all(|r| r.target == TOPOLOGY_TARGET));
        assert!(records.iter().all(|r| r.level == Level::DEBUG));
        let hex = id.to_hex();
        let starting = find(&records, "Starting topology monitoring");
        assert_eq!(starting.len(), 1);
        assert_eq!(starting[0].field("topologyId"), Some(hex.as_str()));
        let server = find(&records, "Starting server monitoring");
        assert_eq!(server.len(), 1);
        assert_eq!(server[0].field("serverHost"), Some("a"));
        assert_eq!(server[0].field("serverPort"), Some("27017"));
        let changed = find(&records, "Topology description changed");
        // Opening, the standalone discovered, and the close.
        assert_eq!(changed.len(), 3, "{records:#?}");
        let new = changed[1].field("newDescription").unwrap();
        assert!(new.contains("Single"), "{new}");
        assert!(new.contains("Standalone"), "{new}");
        let prev = changed[1].field("previousDescription").unwrap();
        assert!(prev.contains("Unknown"), "{prev}");
        assert_eq!(find(&records, "Stopped server monitoring").len(), 1);
        let stopped = find(&records, "Stopped topology monitoring");
        assert_eq!(stopped.len(), 1);
        assert_eq!(stopped[0].field("topologyId"), Some(hex.as_str()));
        // Closing comes last.
        assert_eq!(
            records.last().unwrap().message(),
            "Stopped topology monitoring"
        );
    }

    #[test]
    fn nothing_is_logged_below_debug() {
        let records = capture(LevelFilter::INFO, || {
            let config = TopologyConfig::new(vec![addr("a:27017")]);
            let mut topology = Topology::new(&config).unwrap();
            topology.close();
            let mut monitor = Monitor::new(MonitorConfig::new(addr("a:27017")));
            monitor.poll_action(Instant::now());
        });
        assert!(records.is_empty(), "{records:#?}");
    }

    fn monitor_with_topology(id: ObjectId) -> Monitor {
        let mut config = MonitorConfig::new(addr("db.example.com:27018"));
        config.topology_id = Some(id);
        Monitor::new(config)
    }

    #[test]
    fn heartbeat_success_logs_the_truncated_reply() {
        let id = ObjectId::new();
        let long = "x".repeat(3000);
        let records = capture(LevelFilter::DEBUG, || {
            let mut m = monitor_with_topology(id);
            let t0 = Instant::now();
            m.poll_action(t0);
            m.set_driver_connection_id(Some(7));
            let reply = doc! {"ok": 1, "isWritablePrimary": true, "maxWireVersion": 21,
            "connectionId": 42, "padding": long.clone()};
            m.handle_reply(t0 + Duration::from_millis(5), reply, false);
        });
        let started = find(&records, "Server heartbeat started");
        assert_eq!(started.len(), 1);
        assert_eq!(started[0].field("awaited"), Some("false"));
        assert_eq!(started[0].field("serverHost"), Some("db.example.com"));
        assert_eq!(started[0].field("serverPort"), Some("27018"));
        assert_eq!(started[0].field("topologyId"), Some(id.to_hex().as_str()));
        // Nothing known about the connection before it exists.
        assert_eq!(started[0].field("serverConnectionId"), None);
        let ok = find(&records, "Server heartbeat succeeded");
        assert_eq!(ok.len(), 1);
        let r = ok[0];
        assert_eq!(r.target, TOPOLOGY_TARGET);
        assert_eq!(r.field("durationMS"), Some("5.0"));
        assert_eq!(r.field("serverConnectionId"), Some("42"));
        assert_eq!(r.field("driverConnectionId"), Some("7"));
        let reply = r.field("reply").unwrap();
        assert!(reply.starts_with("{\"ok\":1"), "{reply}");
        assert!(reply.ends_with("..."), "{reply}");
        assert_eq!(
            reply.len(),
            mongo_events::log::DEFAULT_MAX_DOCUMENT_LENGTH + 3
        );
    }

    #[test]
    fn heartbeat_failure_logs_the_error() {
        let records = capture(LevelFilter::DEBUG, || {
            let mut m = monitor_with_topology(ObjectId::new());
            let t0 = Instant::now();
            m.poll_action(t0);
            m.handle_error(
                t0 + Duration::from_millis(3),
                CheckError::network("connection refused"),
            );
        });
        let failed = find(&records, "Server heartbeat failed");
        assert_eq!(failed.len(), 1);
        let r = failed[0];
        assert_eq!(r.field("awaited"), Some("false"));
        assert_eq!(r.field("durationMS"), Some("3.0"));
        assert!(
            r.field("failure").unwrap().contains("connection refused"),
            "{r:?}"
        );
    }

    fn replica_set() -> TopologyDescription {
        let config = TopologyConfig::new(vec![addr("a:27017"), addr("b:27017")]);
        TopologyDescription::new(&config)
    }

    #[test]
    fn selection_started_succeeded_and_failed() {
        let topology = replica_set();
        let pref = ReadPreference::new(ReadMode::SecondaryPreferred)
            .with_max_staleness(Some(Duration::from_secs(120)));
        let records = capture(LevelFilter::DEBUG, || {
            selection_started("find", Some(9), &pref, &topology);
            selection_succeeded("find", Some(9), &pref, &topology, &addr("b:27017"));
            selection_failed(
                "insert",
                None,
                &crate::Operation::Write,
                &topology,
                &"no writable server",
            );
        });
        assert_eq!(records.len(), 3, "{records:#?}");
        assert!(records.iter().all(|r| r.target == SERVER_SELECTION_TARGET));
        assert!(records.iter().all(|r| r.level == Level::DEBUG));
        let started = &records[0];
        assert_eq!(started.message(), "Server selection started");
        assert_eq!(started.field("operation"), Some("find"));
        assert_eq!(started.field("operationId"), Some("9"));
        let selector = started.field("selector").unwrap();
        assert!(selector.contains("secondaryPreferred"), "{selector}");
        assert!(selector.contains("maxStalenessSeconds: 120"), "{selector}");
        let desc = started.field("topologyDescription").unwrap();
        assert!(
            desc.contains("a:27017") && desc.contains("b:27017"),
            "{desc}"
        );
        let ok = &records[1];
        assert_eq!(ok.message(), "Server selection succeeded");
        assert_eq!(ok.field("serverHost"), Some("b"));
        assert_eq!(ok.field("serverPort"), Some("27017"));
        let failed = &records[2];
        assert_eq!(failed.message(), "Server selection failed");
        assert_eq!(failed.field("operation"), Some("insert"));
        assert_eq!(failed.field("operationId"), None);
        assert_eq!(failed.field("selector"), Some("Write"));
        assert_eq!(failed.field("failure"), Some("no writable server"));
    }

    #[test]
    fn selection_waiting_is_info() {
        let topology = replica_set();
        let pref = ReadPreference::new(ReadMode::Primary);
        let records = capture(LevelFilter::INFO, || {
            selection_started("find", None, &pref, &topology);
            selection_waiting("find", Some(1), &pref, &topology, Some(29_500));
            selection_waiting("find", Some(2), &pref, &topology, None);
        });
        assert_eq!(records.len(), 2, "{records:#?}");
        let r = &records[0];
        assert_eq!(r.level, Level::INFO);
        assert_eq!(
            r.message(),
            "Waiting for suitable server to become available"
        );
        assert_eq!(r.field("remainingTimeMS"), Some("29500"));
        assert_eq!(
            r.field("selector"),
            Some("ReadPreference { mode: primary }")
        );
        assert_eq!(records[1].field("remainingTimeMS"), None);
    }
}
