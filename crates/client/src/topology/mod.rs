//! The topology: one pool and one monitor per server (a pool of pools keyed by address),
//! SDAM error handling wired to pool clears and immediate checks, and server selection with
//! serverSelectionTimeoutMS and the operation's deadline.
#![allow(
    clippy::disallowed_methods,
    reason = "the topology is I/O: it reads the clock for selection deadlines and draws the \
              random numbers of the two-choices pick"
)]

#[cfg(test)]
mod interrupt_tests;
mod monitor;
mod pinned;
mod pooled;
mod srv;
pub use pooled::PooledConn;
pub(crate) use srv::WeakTopology;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use mongo_events::{EventError, Generation, Listeners, ServerAddress, ServiceId, TopologyType};
use mongo_pool::{Establish, Pool, PoolOptions, PoolStats, WeakPool};
use mongo_sdam::driver::MonitorHandle;
use mongo_sdam::log as sdam_log;
use mongo_sdam::{
    ApplicationError, CheckOutcome, Operation, ReadPreference, SdamEvent, ServerDescription,
    TopologyConfig, TopologyDescription, TopologyUpdate,
};
use parking_lot::Mutex;
use rand::Rng;
use tokio::sync::Notify;

use crate::conn::{Connection, ConnectionOptions, Drained};
use crate::error::{Error, ErrorKind, Establishing, Result};

/// Creates the pool's connections: a [`Connection`] with its handshake and authentication.
pub struct Establisher {
    address: ServerAddress,
    /// The topology's connection options, read afresh for each connection (so that
    /// metadata appended after construction reaches new connections only).
    options: SharedOptions,
    /// The pool this establisher works for, once it exists: behind a load balancer, the
    /// generation of the service a connection's `hello` reported is read from it.
    pool: Arc<std::sync::OnceLock<WeakPool<Establisher>>>,
}

impl std::fmt::Debug for Establisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Establisher")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// Connection options that can be replaced while pools use them.
pub(crate) type SharedOptions = Arc<parking_lot::RwLock<Arc<ConnectionOptions>>>;

impl Establish for Establisher {
    type Conn = Connection;
    type Error = Error;

    fn establish(
        &self,
        id: mongo_events::ConnectionId,
        generation: Generation,
    ) -> impl std::future::Future<Output = Result<Connection>> + Send {
        let options = self.options.read().clone();
        let pool = self.pool.get().cloned();
        // The service's generation when the hello reported it (the ticket's generation when
        // the pool is gone).
        let service_generation = move |s: ServiceId| {
            pool.as_ref()
                .and_then(WeakPool::upgrade)
                .map_or(generation, |p| p.service_generation(s))
        };
        Connection::connect_in_pool(
            self.address.clone(),
            id,
            generation,
            options,
            service_generation,
        )
    }

    fn service_id(&self, conn: &Connection) -> Option<ServiceId> {
        conn.service_id()
    }

    /// A network error or timeout up to the end of the `hello` (not during authentication,
    /// nor a DNS, SOCKS5 proxy, certificate or host name failure).
    fn is_overload_signal(&self, error: &Error) -> bool {
        error.is_establishment_overload_signal()
    }
}

/// One server: its pool and monitor.
pub(crate) struct Server {
    pub(crate) address: ServerAddress,
    pub(crate) pool: Pool<Establisher>,
    monitor: Mutex<Option<MonitorHandle>>,
    operations: AtomicU64,
}

impl Server {
    /// Requests an immediate check; `state_change`: a state change error marked the server
    /// Unknown, so a streaming monitor abandons its awaited hello.
    fn request_check(&self, state_change: bool) {
        match &*self.monitor.lock() {
            Some(m) if state_change => m.request_check_after_state_change(),
            Some(m) => m.request_check(),
            None => {}
        }
    }

    /// Clears the pool; with `interrupt`, operations in progress on connections of the
    /// generations cleared fail promptly with a retryable error (the pool wakes their
    /// [`Interruption`] watches).
    fn clear(&self, service_id: Option<ServiceId>, interrupt: bool, cause: Option<EventError>) {
        self.pool.clear_with_cause(service_id, interrupt, cause);
    }

    fn shutdown(&self) {
        if let Some(m) = self.monitor.lock().take() {
            m.stop();
        }
        self.pool.close();
    }
}

struct State {
    sdam: mongo_sdam::Topology,
    servers: HashMap<ServerAddress, Arc<Server>>,
}

/// Settings of a topology.
#[derive(Clone, Debug)]
pub(crate) struct TopologySettings {
    pub(crate) config: TopologyConfig,
    pub(crate) pool: PoolOptions,
    pub(crate) connection: SharedOptions,
    pub(crate) monitor_connection: Arc<ConnectionOptions>,
    pub(crate) monitoring_mode: mongo_sdam::ServerMonitoringMode,
    pub(crate) server_selection_timeout: Duration,
    pub(crate) listeners: Listeners,
}

pub(crate) struct Inner {
    state: Mutex<State>,
    changed: Notify,
    settings: TopologySettings,
    closed: AtomicBool,
    /// The SDAM topology's id, readable without the state lock (monitors are spawned while
    /// it is held).
    pub(crate) topology_id: bson::oid::ObjectId,
}

/// The shared topology of a client.
#[derive(Clone)]
pub(crate) struct Topology {
    inner: Arc<Inner>,
}

/// A server picked by [`Topology::select_server`], and the topology type it was picked in.
pub(crate) struct Selected {
    pub(crate) server: Arc<Server>,
    pub(crate) topology_type: TopologyType,
    /// Whether the server, as described when it was selected, supports retryable writes
    /// (the retryable writes spec decides by the selected server, before the check-out,
    /// whose failure may already have marked it Unknown).
    pub(crate) supports_retryable_writes: bool,
    /// The server's minimum round-trip time in the description it was selected from (CSOT).
    pub(crate) min_rtt: std::time::Duration,
}

/// Whether `sd` supports retryable writes: a load balancer, or a server with sessions that
/// is not a standalone.
fn supports_retryable_writes(sd: &ServerDescription) -> bool {
    sd.server_type == mongo_events::ServerType::LoadBalancer
        || (sd.server_type != mongo_events::ServerType::Standalone
            && sd.logical_session_timeout_minutes.is_some())
}

/// Per-server pool counts.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ServerPoolStats {
    /// The server.
    pub address: ServerAddress,
    /// Its pool's counts.
    pub stats: PoolStats,
}

impl Topology {
    /// Opens the topology: a pool and a monitor per seed (no monitor in load-balanced mode,
    /// where the single pool is ready at once).
    pub(crate) fn open(settings: TopologySettings) -> Result<Topology> {
        let mut sdam = mongo_sdam::Topology::new(&settings.config)
            .map_err(|e| Error::invalid_argument(e.to_string()))?;
        sdam.set_record_events(
            settings.listeners.has_server() || settings.listeners.has_topology(),
        );
        let topology_id = sdam.id();
        let inner = Arc::new(Inner {
            topology_id,
            state: Mutex::new(State {
                sdam,
                servers: HashMap::new(),
            }),
            changed: Notify::new(),
            settings,
            closed: AtomicBool::new(false),
        });
        let seeds: Vec<ServerAddress> = {
            let st = inner.state.lock();
            st.sdam
                .description()
                .servers()
                .map(|s| s.address.clone())
                .collect()
        };
        {
            let mut st = inner.state.lock();
            for address in seeds {
                let server = Inner::new_server(&inner, &address)?;
                st.servers.insert(address, server);
            }
        }
        inner.flush_events();
        Ok(Topology { inner })
    }

    pub(crate) fn description(&self) -> TopologyDescription {
        self.inner.state.lock().sdam.description().clone()
    }

    /// Runs `f` on the current description under the state lock, without copying it (for
    /// the per-operation checks on the hot path). `f` must not call back into the topology.
    pub(crate) fn with_description<R>(&self, f: impl FnOnce(&TopologyDescription) -> R) -> R {
        f(self.inner.state.lock().sdam.description())
    }

    pub(crate) fn pool_stats(&self) -> Vec<ServerPoolStats> {
        let servers: Vec<Arc<Server>> = self.inner.state.lock().servers.values().cloned().collect();
        let mut out: Vec<ServerPoolStats> = servers
            .iter()
            .map(|s| ServerPoolStats {
                address: s.address.clone(),
                stats: s.pool.stats(),
            })
            .collect();
        out.sort_by(|a, b| a.address.cmp(&b.address));
        out
    }

    fn server(&self, address: &ServerAddress) -> Option<Arc<Server>> {
        self.inner.state.lock().servers.get(address).cloned()
    }

    /// Selects a server for `operation` within serverSelectionTimeoutMS and the operation's
    /// `op_deadline` (timeoutMS), whichever ends first, requesting immediate checks and
    /// waiting for topology changes while none is suitable. Returns the server with the
    /// topology's type at that moment, read under the same lock, so that the command path
    /// does not lock the topology a second time.
    ///
    /// Writes the server selection log messages (target `mongo::server_selection`) for
    /// `operation_name` and `operation_id`.
    pub(crate) async fn select_server(
        &self,
        read_preference: Option<&ReadPreference>,
        deprioritized: &[ServerAddress],
        operation_name: &str,
        operation_id: Option<i64>,
        op_deadline: Option<Instant>,
    ) -> Result<Selected> {
        let timeout = self.inner.settings.server_selection_timeout;
        let start = tokio::time::Instant::now();
        let selection_deadline = deadline_after(start, timeout);
        let (deadline, by_op_deadline) = match op_deadline.map(tokio::time::Instant::from_std) {
            Some(d) if d < selection_deadline => (d, true),
            _ => (selection_deadline, false),
        };
        let operation = match read_preference {
            Some(rp) => Operation::Read(rp),
            None => Operation::Write,
        };
        let mut logged_started = false;
        let mut logged_waiting = false;
        loop {
            let notified = self.inner.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let description = {
                // One lock for the started message and the first selection.
                let st = self.inner.state.lock();
                let desc = st.sdam.description();
                if !logged_started {
                    logged_started = true;
                    sdam_log::selection_started(operation_name, operation_id, &operation, desc);
                }
                if self.inner.closed.load(Ordering::SeqCst) {
                    return Err(Error::new(ErrorKind::Shutdown));
                }
                let mut rng = rand::rng();
                let picked = desc
                    .select_server(
                        operation,
                        deprioritized,
                        |a| {
                            st.servers
                                .get(a)
                                .map_or(0, |s| s.operations.load(Ordering::Relaxed))
                        },
                        &mut |n| rng.random_range(0..n.max(1)),
                    )
                    .map_err(|e| {
                        let error = Error::new(ErrorKind::ServerSelection(e.to_string()));
                        sdam_log::selection_failed(
                            operation_name,
                            operation_id,
                            &operation,
                            desc,
                            &error,
                        );
                        error
                    })?;
                if let Some(sd) = picked {
                    if let Some(server) = st.servers.get(&sd.address) {
                        server.operations.fetch_add(1, Ordering::Relaxed);
                        sdam_log::selection_succeeded(
                            operation_name,
                            operation_id,
                            &operation,
                            desc,
                            &server.address,
                        );
                        return Ok(Selected {
                            server: server.clone(),
                            topology_type: desc.topology_type(),
                            supports_retryable_writes: supports_retryable_writes(sd),
                            min_rtt: sd.min_round_trip_time.unwrap_or_default(),
                        });
                    }
                }
                for s in st.servers.values() {
                    s.request_check(false);
                }
                if !logged_waiting {
                    logged_waiting = true;
                    let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
                    sdam_log::selection_waiting(
                        operation_name,
                        operation_id,
                        &operation,
                        desc,
                        Some(u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX)),
                    );
                }
                describe(desc)
            };
            if tokio::time::Instant::now() >= deadline {
                let within = if by_op_deadline {
                    "before the operation's timeoutMS expired".to_owned()
                } else {
                    format!("within serverSelectionTimeoutMS ({timeout:?})")
                };
                let error = Error::new(ErrorKind::ServerSelection(format!(
                    "no suitable server for {} {within}; topology: {description}",
                    match operation {
                        Operation::Read(rp) => format!("a read ({})", rp.mode),
                        Operation::Write => "a write".to_owned(),
                    }
                )));
                let st = self.inner.state.lock();
                sdam_log::selection_failed(
                    operation_name,
                    operation_id,
                    &operation,
                    st.sdam.description(),
                    &error,
                );
                return Err(error);
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    /// Checks a connection out of `server`'s pool, waiting at most until `deadline` (the
    /// operation's; the pool's waitQueueTimeoutMS applies too). Establishment errors have
    /// already been through SDAM error handling (the pool hands each to
    /// [`Inner::handle_establish_error`] before it fails the check-out).
    pub(crate) async fn checkout(
        &self,
        server: Arc<Server>,
        deadline: Option<Instant>,
    ) -> Result<PooledConn> {
        // `select_server` counted this operation; the guard (or this error path) uncounts it.
        loop {
            let mut conn = match server.pool.checkout_until(deadline).await {
                Ok(inner) => PooledConn {
                    inner,
                    server: server.clone(),
                },
                Err(e) => {
                    server.operations.fetch_sub(1, Ordering::Relaxed);
                    return Err(Error::from(e).with_address(&server.address));
                }
            };
            // A connection whose reply came late after a timeout: read and drop that reply
            // first (within this check-out's deadline). Before the liveness check, which would
            // take the late reply's bytes for a hang-up.
            match conn.drain_pending(deadline).await {
                Drained::Ready => {}
                Drained::Closed => {
                    // Closed on drop; the next connection (or a new one) is checked out. The
                    // guard's drop uncounts the operation: count it again.
                    server.operations.fetch_add(1, Ordering::Relaxed);
                    drop(conn);
                    continue;
                }
                Drained::TimedOut => {
                    // Back to the pool, still pending; this check-out failed in time.
                    drop(conn);
                    return Err(Error::timeout(crate::error::TimeoutStage::Checkout)
                        .with_address(&server.address));
                }
            }
            if !conn.is_dead_after_idling() {
                return Ok(conn);
            }
            // Closed (reason error), not handed out; the guard's drop uncounts the operation,
            // which goes on with the next connection.
            server.operations.fetch_add(1, Ordering::Relaxed);
            conn.discard_dead();
        }
    }

    /// Hands an operation's error on `conn` to SDAM error handling. The generation is the
    /// pool's for the connection: its service's, behind a load balancer.
    pub(crate) fn handle_conn_error(&self, conn: &PooledConn, error: &Error) {
        self.handle_error(
            conn.address(),
            error,
            conn.inner.generation(),
            conn.inner.service_id(),
            Some(conn.max_wire_version()),
            true,
        );
    }

    /// The spec's handleError: judge the error, mark Unknown, clear the pool, check now.
    pub(crate) fn handle_error(
        &self,
        address: &ServerAddress,
        error: &Error,
        generation: Generation,
        service_id: Option<ServiceId>,
        max_wire_version: Option<i32>,
        completed_handshake: bool,
    ) {
        self.inner.handle_error(
            address,
            error,
            generation,
            service_id,
            max_wire_version,
            completed_handshake,
        );
    }

    /// Stops every monitor and closes every pool.
    pub(crate) fn shutdown(&self) {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let servers: Vec<Arc<Server>> = {
            let mut st = self.inner.state.lock();
            st.sdam.close();
            st.servers.drain().map(|(_, s)| s).collect()
        };
        for s in servers {
            s.shutdown();
        }
        self.inner.flush_events();
        self.inner.changed.notify_waiters();
    }

    /// Waits until the description satisfies `f` or `timeout` passes; true if it did.
    pub(crate) async fn wait_for(
        &self,
        timeout: Duration,
        mut f: impl FnMut(&TopologyDescription) -> bool,
    ) -> bool {
        let deadline = deadline_after(tokio::time::Instant::now(), timeout);
        loop {
            let notified = self.inner.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if f(self.inner.state.lock().sdam.description()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }

    pub(crate) fn request_checks(&self) {
        let servers: Vec<Arc<Server>> = self.inner.state.lock().servers.values().cloned().collect();
        for s in servers {
            s.request_check(false);
        }
    }

    /// The server at `address`, counted as running one more operation (for getMore and
    /// killCursors, which must go to the cursor's server); hand it to
    /// [`checkout`](Self::checkout), which uncounts it.
    pub(crate) fn server_at(&self, address: &ServerAddress) -> Result<Arc<Server>> {
        let server = self.server(address).ok_or_else(|| {
            Error::new(ErrorKind::ServerSelection(format!(
                "server {address} is no longer part of the topology"
            )))
        })?;
        server.operations.fetch_add(1, Ordering::Relaxed);
        Ok(server)
    }

    /// The options the pools' connections are opened with.
    pub(crate) fn connection_options(&self) -> Arc<ConnectionOptions> {
        self.inner.settings.connection.read().clone()
    }

    /// Replaces the options new pool connections are opened with (connections already open
    /// keep theirs).
    pub(crate) fn set_connection_options(&self, options: ConnectionOptions) {
        *self.inner.settings.connection.write() = Arc::new(options);
    }

    /// The type of the topology now.
    pub(crate) fn topology_type(&self) -> TopologyType {
        self.with_description(TopologyDescription::topology_type)
    }

    /// Clears the pool of `address` (optionally interrupting in-use connections); false if
    /// the server is not part of the topology. For the crate's tests: in operation, SDAM
    /// error handling decides clears.
    #[cfg(test)]
    pub(crate) fn clear_pool(&self, address: &ServerAddress, interrupt: bool) -> bool {
        let st = self.inner.state.lock();
        let Some(server) = st.servers.get(address) else {
            return false;
        };
        server.clear(
            None,
            interrupt,
            Some(EventError::msg("pool cleared by request")),
        );
        true
    }

    pub(crate) fn is_load_balanced(&self) -> bool {
        self.inner.settings.config.load_balanced
    }
}

fn describe(desc: &TopologyDescription) -> String {
    let servers: Vec<String> = desc
        .servers()
        .map(|s| match &s.error {
            Some(e) => format!("{} {} ({e})", s.address, s.server_type.name()),
            None => format!("{} {}", s.address, s.server_type.name()),
        })
        .collect();
    format!("{} [{}]", desc.topology_type().name(), servers.join(", "))
}

impl Inner {
    fn new_server(this: &Arc<Inner>, address: &ServerAddress) -> Result<Arc<Server>> {
        let settings = &this.settings;
        let pool_cell = Arc::new(std::sync::OnceLock::new());
        let establisher = Establisher {
            address: address.clone(),
            options: settings.connection.clone(),
            pool: pool_cell.clone(),
        };
        let pool = Pool::new(
            address.clone(),
            settings.pool.clone(),
            establisher,
            settings.listeners.clone(),
        )?;
        let _ = pool_cell.set(pool.downgrade());
        let weak = Arc::downgrade(this);
        let pool_address = address.clone();
        pool.on_establish_error(move |e| {
            if let Some(inner) = weak.upgrade() {
                inner.handle_establish_error(&pool_address, &Error::from(e.clone()));
            }
        });
        let server = Arc::new(Server {
            address: address.clone(),
            pool,
            monitor: Mutex::new(None),
            operations: AtomicU64::new(0),
        });
        if settings.config.load_balanced {
            server.pool.ready();
        } else {
            let handle = monitor::spawn(this, address.clone());
            *server.monitor.lock() = Some(handle);
        }
        Ok(server)
    }

    /// Applies a monitor's check outcome.
    pub(crate) fn on_check(this: &Arc<Inner>, outcome: CheckOutcome) {
        if this.closed.load(Ordering::SeqCst) {
            return;
        }
        let address = outcome.description.address.clone();
        {
            let mut st = this.state.lock();
            let update = st.sdam.apply(outcome.description);
            if let Some(clear) = outcome.clear_pool {
                if let Some(s) = st.servers.get(&address) {
                    s.clear(
                        clear.service_id,
                        clear.interrupt_in_use,
                        Some(EventError::msg("server check failed")),
                    );
                }
            }
            Inner::apply_update(this, &mut st, &address, &update);
        }
        this.flush_events();
        this.changed.notify_waiters();
    }

    /// Acts on an update: new servers get pools and monitors, removed ones are closed, a
    /// server that became usable gets its pool ready.
    fn apply_update(
        this: &Arc<Inner>,
        st: &mut State,
        address: &ServerAddress,
        update: &TopologyUpdate,
    ) {
        if update.ignored {
            return;
        }
        if update.pool_ready {
            if let Some(s) = st.servers.get(address) {
                s.pool.ready();
            }
        }
        for a in &update.added {
            if !st.servers.contains_key(a) {
                match Inner::new_server(this, a) {
                    Ok(s) => {
                        st.servers.insert(a.clone(), s);
                    }
                    Err(e) => tracing::warn!(target: "mongo::topology", "cannot add {a}: {e}"),
                }
            }
        }
        for a in &update.removed {
            if let Some(s) = st.servers.remove(a) {
                s.shutdown();
            }
        }
        for a in &update.check_now {
            if let Some(s) = st.servers.get(a) {
                s.request_check(false);
            }
        }
    }

    /// SDAM error handling for an error opening one of the pool's connections (the spec's
    /// "MongoDB Handshake errors"), which the pool calls before it closes the connection and
    /// fails the check-out waiting for it. Behind a load balancer, errors up to the end of
    /// the `hello` are ignored and errors during authentication clear the `hello`'s service
    /// only (the load balancers spec's "Initial Handshake Errors").
    fn handle_establish_error(self: &Arc<Self>, address: &ServerAddress, error: &Error) {
        let Some((stage, generation)) = error.establishing() else {
            // Not one of the connection's errors (the pool's own establishment timeout,
            // labelled as an overload signal): nothing for SDAM to do.
            return;
        };
        let service_id = match stage {
            Establishing::Auth { service_id } => service_id,
            Establishing::Hello if self.settings.config.load_balanced => return,
            Establishing::Hello => None,
        };
        self.handle_error(address, error, generation, service_id, None, false);
    }

    fn handle_error(
        self: &Arc<Self>,
        address: &ServerAddress,
        error: &Error,
        generation: Generation,
        service_id: Option<ServiceId>,
        max_wire_version: Option<i32>,
        completed_handshake: bool,
    ) {
        let Some(kind) = error.sdam_kind() else {
            return;
        };
        if this_closed(self) {
            return;
        }
        let mut app = ApplicationError::new(address.clone(), kind, generation);
        app.completed_handshake = completed_handshake;
        app.system_overloaded = error.has_label(mongo_pool::SYSTEM_OVERLOADED_ERROR);
        app.service_id = service_id;
        app.max_wire_version = max_wire_version;
        {
            let mut st = self.state.lock();
            let Some(server) = st.servers.get(address).cloned() else {
                return;
            };
            // Behind a load balancer, a connection's generation is its service's: an
            // established connection's, or (an authentication error) the one the service had
            // when the connection's hello reported it. Without a service, never stale.
            let pool_generation = match service_id {
                Some(s) if self.settings.config.load_balanced => server.pool.service_generation(s),
                _ if self.settings.config.load_balanced => generation,
                _ => server.pool.generation(),
            };
            let decision = st.sdam.handle_application_error(&app, pool_generation);
            if decision.stale {
                return;
            }
            if let Some(clear) = decision.clear_pool {
                server.clear(
                    clear.service_id,
                    clear.interrupt_in_use,
                    Some(EventError::new(error.clone())),
                );
            }
            if decision.cancel_monitor_check {
                if let Some(m) = &*server.monitor.lock() {
                    m.cancel_check();
                }
            }
            if decision.request_immediate_check {
                server.request_check(decision.marked_unknown);
            }
            Inner::apply_update(self, &mut st, address, &decision.update);
        }
        self.flush_events();
        self.changed.notify_waiters();
    }

    /// Delivers queued SDAM events outside the lock.
    fn flush_events(&self) {
        let events: Vec<SdamEvent> = {
            let mut st = self.state.lock();
            std::iter::from_fn(|| st.sdam.poll_event()).collect()
        };
        // `mongo_sdam::Topology` wrote the log messages when it queued the events.
        for e in events {
            match e {
                SdamEvent::Server(e) => self.settings.listeners.deliver_server(&e),
                SdamEvent::Topology(e) => self.settings.listeners.deliver_topology(&e),
            }
        }
    }
}

/// `start + timeout`, capped far in the future: a huge timeout (serverSelectionTimeoutMS
/// comes from the connection string) must not overflow `Instant`.
fn deadline_after(start: tokio::time::Instant, timeout: Duration) -> tokio::time::Instant {
    start
        .checked_add(timeout)
        .unwrap_or_else(|| start + Duration::from_secs(100 * 365 * 86_400))
}

fn this_closed(inner: &Inner) -> bool {
    inner.closed.load(Ordering::SeqCst)
}

pub(crate) fn weak(inner: &Arc<Inner>) -> Weak<Inner> {
    Arc::downgrade(inner)
}

pub(crate) fn settings_of(inner: &Inner) -> &TopologySettings {
    &inner.settings
}

/// Whether a description is a usable load balancer / has a known server.
pub(crate) fn has_known_server(desc: &TopologyDescription) -> bool {
    desc.topology_type() == TopologyType::LoadBalanced
        || desc.servers().any(ServerDescription::is_known)
}
