//! The tokio driver of the [`Monitor`] state machine (feature `tokio`).
//!
//! The client implements [`MonitorTransport`] (open a monitoring connection with the
//! handshake, send a hello, read the next streamed reply) and gives a callback that applies
//! each [`CheckOutcome`] to its topology under its lock (and clears the pool as told).
//! [`spawn_monitor`] runs the monitor in a task and returns a [`MonitorHandle`] to request
//! immediate checks (abandoning an awaited hello after a state change error), cancel the
//! check in progress, or stop. With the streaming protocol a second task measures RTT on its
//! own connection every heartbeatFrequencyMS.
//!
//! Every await point is cancellation safe: stopping drops the in-flight future and the
//! connection with it.
#![allow(
    clippy::disallowed_methods,
    reason = "the driver owns the clock, sleeps between checks and spawns the monitor tasks"
)]

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bson::Document;
use mongo_events::{Listeners, ServerAddress};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::monitor::{
    CheckError, CheckOutcome, HelloRequest, Monitor, MonitorAction, MonitorConfig,
};

/// A reply read from a monitoring connection.
#[derive(Clone, Debug, PartialEq)]
pub struct HelloReply {
    /// The reply document.
    pub document: Document,
    /// Whether the OP_MSG moreToCome flag was set (the server will stream another reply).
    pub more_to_come: bool,
}

/// How the monitor talks to a server; the client implements it over its real connections.
pub trait MonitorTransport: Send + Sync + 'static {
    /// A monitoring connection.
    type Conn: Send + 'static;

    /// Opens a connection and runs the handshake (hello with client metadata, no
    /// authentication); returns the connection and the handshake reply.
    fn connect(
        &self,
        address: &ServerAddress,
    ) -> impl Future<Output = Result<(Self::Conn, Document), CheckError>> + Send;

    /// The driver's id for the next monitoring connection (its heartbeats are logged with
    /// it); `None` (the default) logs them without one.
    fn next_connection_id(&self) -> Option<u32> {
        None
    }

    /// Sends a hello (with the exhaustAllowed flag when `request.exhaust_allowed`) and reads
    /// its reply.
    fn send(
        &self,
        conn: &mut Self::Conn,
        request: &HelloRequest,
    ) -> impl Future<Output = Result<HelloReply, CheckError>> + Send;

    /// Reads the next reply the server streams after a reply with moreToCome.
    fn read_next(
        &self,
        conn: &mut Self::Conn,
    ) -> impl Future<Output = Result<HelloReply, CheckError>> + Send;
}

struct Shared {
    monitor: Mutex<Monitor>,
    wake: Notify,
    cancel: Notify,
    cancel_epoch: AtomicU64,
    /// Wakes the monitor task (not the RTT task) out of an awaited hello it must abandon.
    abandon: Notify,
    stopped: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Monitor> {
        self.monitor.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Controls a running monitor. Dropping the handle stops the monitor.
pub struct MonitorHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for MonitorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonitorHandle")
            .field("stopped", &self.shared.stopped.load(Ordering::Relaxed))
            .finish()
    }
}

impl MonitorHandle {
    /// Requests an immediate check (after a state change error, or when server selection
    /// finds no suitable server).
    pub fn request_check(&self) {
        self.shared.lock().request_check();
        self.shared.wake.notify_one();
    }

    /// Requests an immediate check after the client marked the server Unknown on a state
    /// change error: an awaited hello in flight is abandoned with its connection (see
    /// [`Monitor::request_check_after_state_change`]); otherwise as
    /// [`request_check`](Self::request_check).
    pub fn request_check_after_state_change(&self) {
        if self.shared.lock().request_check_after_state_change() {
            // The RTT task's connection is healthy: only the monitor task lets go.
            self.shared.abandon.notify_waiters();
        }
        self.shared.wake.notify_one();
    }

    /// Cancels the check in progress and closes the monitoring connection (after an
    /// application network error marked the server Unknown).
    pub fn cancel_check(&self) {
        self.shared.lock().cancel_check(now_std());
        self.shared.cancel_epoch.fetch_add(1, Ordering::SeqCst);
        self.shared.cancel.notify_waiters();
    }

    /// Stops the monitor (and its RTT task).
    pub fn stop(&self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.shared.lock().stop();
        self.shared.cancel_epoch.fetch_add(1, Ordering::SeqCst);
        self.shared.cancel.notify_waiters();
        self.shared.wake.notify_one();
    }

    /// The RTT estimate: the average and the recent minimum.
    pub fn round_trip_times(&self) -> (Option<Duration>, Duration) {
        let m = self.shared.lock();
        (m.rtt().average(), m.rtt().min())
    }
}

impl Drop for MonitorHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts monitoring `config.address` in a tokio task. `on_check` gets every check outcome;
/// it must apply the description to the topology and clear the pool as the outcome says,
/// both under the topology lock. Heartbeat events go to `listeners`.
pub fn spawn_monitor<T, F>(
    config: MonitorConfig,
    transport: Arc<T>,
    on_check: F,
    listeners: Listeners,
) -> MonitorHandle
where
    T: MonitorTransport,
    F: Fn(CheckOutcome) + Send + Sync + 'static,
{
    let shared = Arc::new(Shared {
        monitor: Mutex::new(Monitor::new(config)),
        wake: Notify::new(),
        cancel: Notify::new(),
        cancel_epoch: AtomicU64::new(0),
        abandon: Notify::new(),
        stopped: AtomicBool::new(false),
    });
    // The monitor logs inside the span it was started in (see the pool's background task).
    tokio::spawn(tracing::Instrument::instrument(
        run(shared.clone(), transport, on_check, listeners),
        tracing::Span::current(),
    ));
    MonitorHandle { shared }
}

/// The clock the monitor is fed: tokio's, so paused test time applies.
fn now_std() -> std::time::Instant {
    Instant::now().into_std()
}

fn deliver(shared: &Shared, listeners: &Listeners) {
    let events: Vec<_> = {
        let mut m = shared.lock();
        std::iter::from_fn(|| m.poll_event()).collect()
    };
    for e in &events {
        listeners.deliver_heartbeat(e);
    }
}

async fn with_timeout<R>(
    timeout: Option<Duration>,
    fut: impl Future<Output = Result<R, CheckError>>,
) -> Result<R, CheckError> {
    match timeout {
        Some(t) if !t.is_zero() => match tokio::time::timeout(t, fut).await {
            Ok(r) => r,
            Err(_) => Err(CheckError::timeout(format!("no reply within {t:?}"))),
        },
        _ => fut.await,
    }
}

async fn run<T, F>(shared: Arc<Shared>, transport: Arc<T>, on_check: F, listeners: Listeners)
where
    T: MonitorTransport,
    F: Fn(CheckOutcome) + Send + Sync + 'static,
{
    let address = shared.lock().config().address.clone();
    let mut conn: Option<T::Conn> = None;
    let mut rtt_started = false;
    loop {
        // Listen for cancel / stop before reading the state: a stop that lands after this
        // point wakes the select below, one before it is seen by the checks.
        let cancelled = shared.cancel.notified();
        tokio::pin!(cancelled);
        cancelled.as_mut().enable();
        let abandoned = shared.abandon.notified();
        tokio::pin!(abandoned);
        abandoned.as_mut().enable();
        let epoch = shared.cancel_epoch.load(Ordering::SeqCst);
        if shared.stopped.load(Ordering::SeqCst) {
            break;
        }
        let action = {
            let mut m = shared.lock();
            if m.wants_connection_id() {
                if let Some(id) = transport.next_connection_id() {
                    m.set_next_connection_id(id);
                }
            }
            m.poll_action(now_std())
        };
        deliver(&shared, &listeners);
        let result: Result<HelloReply, CheckError> = match action {
            MonitorAction::Stopped => break,
            MonitorAction::Wait { until } => {
                let wait = until.saturating_duration_since(now_std());
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shared.wake.notified() => {}
                }
                continue;
            }
            MonitorAction::Connect { timeout } => {
                conn = None;
                if shared.cancel_epoch.load(Ordering::SeqCst) != epoch {
                    continue;
                }
                tokio::select! {
                    r = with_timeout(timeout, transport.connect(&address)) => match r {
                        Ok((c, document)) => {
                            conn = Some(c);
                            Ok(HelloReply { document, more_to_come: false })
                        }
                        Err(e) => Err(e),
                    },
                    _ = &mut cancelled => continue,
                }
            }
            MonitorAction::Send(request) => match conn.as_mut() {
                Some(c) => tokio::select! {
                    r = with_timeout(request.timeout, transport.send(c, &request)) => r,
                    _ = &mut cancelled => { conn = None; continue }
                    _ = &mut abandoned => { conn = None; continue }
                },
                None => Err(CheckError::network("no monitoring connection")),
            },
            MonitorAction::ReadNext { timeout } => match conn.as_mut() {
                Some(c) => tokio::select! {
                    r = with_timeout(timeout, transport.read_next(c)) => r,
                    _ = &mut cancelled => { conn = None; continue }
                    _ = &mut abandoned => { conn = None; continue }
                },
                None => Err(CheckError::network("no monitoring connection")),
            },
        };
        let outcome = {
            let mut m = shared.lock();
            if !m.check_in_progress() {
                // The check was cancelled or abandoned after its I/O ended: its result is
                // not news to apply (the monitor's previous description would overwrite
                // what the client just learned), and its connection is dropped.
                conn = None;
                continue;
            }
            match result {
                Ok(reply) => m.handle_reply(now_std(), reply.document, reply.more_to_come),
                Err(e) => {
                    conn = None;
                    m.handle_error(now_std(), e)
                }
            }
        };
        deliver(&shared, &listeners);
        on_check(outcome);
        let wants_rtt = shared.lock().wants_rtt_task();
        if wants_rtt && !rtt_started {
            rtt_started = true;
            tokio::spawn(tracing::Instrument::instrument(
                run_rtt(shared.clone(), transport.clone(), address.clone()),
                tracing::Span::current(),
            ));
        }
    }
}

async fn run_rtt<T: MonitorTransport>(
    shared: Arc<Shared>,
    transport: Arc<T>,
    address: ServerAddress,
) {
    let (heartbeat, timeout) = {
        let m = shared.lock();
        (m.config().heartbeat_frequency, m.config().connect_timeout)
    };
    let mut conn: Option<T::Conn> = None;
    let request = HelloRequest {
        command: bson::doc! {"hello": 1},
        awaited: false,
        exhaust_allowed: false,
        timeout,
    };
    loop {
        // As in `run`: enabled before the stop check, so a stop cannot slip in between.
        let cancelled = shared.cancel.notified();
        tokio::pin!(cancelled);
        cancelled.as_mut().enable();
        if shared.stopped.load(Ordering::SeqCst) {
            break;
        }
        let start = now_std();
        let measure = async {
            match conn.as_mut() {
                None => match with_timeout(timeout, transport.connect(&address)).await {
                    Ok((c, _)) => {
                        conn = Some(c);
                        Some(now_std().saturating_duration_since(start))
                    }
                    Err(_) => None,
                },
                Some(c) => match with_timeout(timeout, transport.send(c, &request)).await {
                    Ok(_) => Some(now_std().saturating_duration_since(start)),
                    Err(_) => {
                        conn = None;
                        None
                    }
                },
            }
        };
        // A server that never answers (no connect timeout) must not keep this task and its
        // connection alive after a cancel or a stop.
        let sample = tokio::select! {
            s = measure => s,
            _ = &mut cancelled => {
                conn = None;
                continue;
            }
        };
        if let Some(s) = sample {
            shared.lock().add_rtt_sample(s);
        }
        tokio::select! {
            _ = tokio::time::sleep(heartbeat) => {}
            _ = &mut cancelled => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;
    use mongo_events::sdam::HeartbeatEvent;
    use mongo_events::{FnListener, Listener, ServerType};
    use std::sync::atomic::AtomicUsize;

    struct Fake {
        connects: AtomicUsize,
        sends: AtomicUsize,
        fail_after: usize,
    }

    impl MonitorTransport for Fake {
        type Conn = ();
        async fn connect(&self, _a: &ServerAddress) -> Result<((), Document), CheckError> {
            self.connects.fetch_add(1, Ordering::SeqCst);
            Ok((
                (),
                doc! {"ok": 1, "helloOk": true, "isWritablePrimary": true},
            ))
        }
        async fn send(&self, _c: &mut (), _r: &HelloRequest) -> Result<HelloReply, CheckError> {
            let n = self.sends.fetch_add(1, Ordering::SeqCst);
            if n >= self.fail_after {
                return Err(CheckError::network("reset"));
            }
            Ok(HelloReply {
                document: doc! {"ok": 1, "helloOk": true},
                more_to_come: false,
            })
        }
        async fn read_next(&self, _c: &mut ()) -> Result<HelloReply, CheckError> {
            Err(CheckError::network("not streaming"))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn polls_reports_outcomes_and_stops() {
        let transport = Arc::new(Fake {
            connects: AtomicUsize::new(0),
            sends: AtomicUsize::new(0),
            fail_after: 2,
        });
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let sink = outcomes.clone();
        let heartbeats = Arc::new(AtomicUsize::new(0));
        let hb = heartbeats.clone();
        let mut listeners = Listeners::new();
        listeners.add(Listener::heartbeat(FnListener(
            move |e: &HeartbeatEvent| {
                if matches!(e, HeartbeatEvent::Started(_)) {
                    hb.fetch_add(1, Ordering::SeqCst);
                }
            },
        )));
        let mut config = MonitorConfig::new(ServerAddress::parse("a:1").unwrap());
        config.heartbeat_frequency = Duration::from_millis(500);
        let handle = spawn_monitor(
            config,
            transport.clone(),
            move |o: CheckOutcome| {
                sink.lock()
                    .unwrap()
                    .push((o.description.server_type, o.clear_pool.is_some()))
            },
            listeners,
        );
        tokio::time::sleep(Duration::from_millis(1700)).await;
        handle.request_check();
        tokio::time::sleep(Duration::from_millis(10)).await;
        handle.stop();
        let seen = outcomes.lock().unwrap().clone();
        assert!(seen.len() >= 3, "{seen:?}");
        assert_eq!(seen[0], (ServerType::Standalone, false));
        assert!(seen.contains(&(ServerType::Unknown, true)), "{seen:?}");
        assert!(transport.connects.load(Ordering::SeqCst) >= 2);
        assert!(heartbeats.load(Ordering::SeqCst) >= seen.len());
    }

    /// Answers the first handshake (with a topologyVersion, so the monitor streams and starts
    /// its RTT task), then never answers anything again.
    struct Silent {
        connects: AtomicUsize,
    }

    impl MonitorTransport for Silent {
        type Conn = ();
        async fn connect(&self, _a: &ServerAddress) -> Result<((), Document), CheckError> {
            if self.connects.fetch_add(1, Ordering::SeqCst) > 0 {
                std::future::pending::<()>().await;
            }
            Ok((
                (),
                doc! {"ok": 1, "helloOk": true, "isWritablePrimary": true, "maxWireVersion": 21,
                "topologyVersion": {"processId": bson::oid::ObjectId::new(), "counter": 0_i64}},
            ))
        }
        async fn send(&self, _c: &mut (), _r: &HelloRequest) -> Result<HelloReply, CheckError> {
            std::future::pending().await
        }
        async fn read_next(&self, _c: &mut ()) -> Result<HelloReply, CheckError> {
            std::future::pending().await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_state_change_abandons_the_awaited_hello_and_reconnects_promptly() {
        let transport = Arc::new(Silent {
            connects: AtomicUsize::new(0),
        });
        let outcomes = Arc::new(AtomicUsize::new(0));
        let seen = outcomes.clone();
        let mut config = MonitorConfig::new(ServerAddress::parse("a:1").unwrap());
        config.connect_timeout = None;
        // The default 10 s: an abandoned awaited hello must not wait for it.
        let handle = spawn_monitor(
            config,
            transport.clone(),
            move |_| {
                seen.fetch_add(1, Ordering::SeqCst);
            },
            Listeners::new(),
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        // The handshake was applied; the monitor waits on its awaited hello and the RTT
        // task on its connect.
        assert_eq!(outcomes.load(Ordering::SeqCst), 1);
        assert_eq!(transport.connects.load(Ordering::SeqCst), 2);
        handle.request_check(); // ignored: a check is in progress
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(transport.connects.load(Ordering::SeqCst), 2);
        handle.request_check_after_state_change();
        tokio::time::sleep(Duration::from_millis(10)).await;
        // The monitor reconnected at once (the previous check ended over 500 ms ago); the
        // RTT task kept waiting on its own connect.
        assert_eq!(transport.connects.load(Ordering::SeqCst), 3);
        // Nothing from the abandoned check was applied.
        assert_eq!(outcomes.load(Ordering::SeqCst), 1);
        handle.stop();
    }

    #[tokio::test(start_paused = true)]
    async fn stop_ends_both_tasks_even_when_the_server_never_answers() {
        let transport = Arc::new(Silent {
            connects: AtomicUsize::new(0),
        });
        let mut config = MonitorConfig::new(ServerAddress::parse("a:1").unwrap());
        config.connect_timeout = None;
        config.heartbeat_frequency = Duration::from_millis(500);
        let handle = spawn_monitor(config, transport.clone(), |_| {}, Listeners::new());
        tokio::time::sleep(Duration::from_millis(100)).await;
        // The monitor waits on its awaited hello and the RTT task on its connect.
        assert_eq!(transport.connects.load(Ordering::SeqCst), 2);
        assert_eq!(Arc::strong_count(&transport), 3);
        handle.stop();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(Arc::strong_count(&transport), 1);
    }
}
