//! Listener traits, per-client listener lists and the process-wide registry.
//!
//! Delivery is synchronous: an event is handed to each listener in turn on the task that
//! emitted it, so listeners must be quick (send to a channel if real work is needed). A
//! listener that panics does not take the emitter down: the panic is caught, logged once per
//! listener through `tracing`, and delivery continues with the next listener.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use crate::cmap::*;
use crate::command::*;
use crate::sdam::*;

/// Receives command events. Implement only the methods you care about.
pub trait CommandListener: Send + Sync {
    /// A command was sent.
    fn started(&self, _event: &CommandStartedEvent) {}
    /// A command succeeded.
    fn succeeded(&self, _event: &CommandSucceededEvent) {}
    /// A command failed.
    fn failed(&self, _event: &CommandFailedEvent) {}
    /// Every command event comes in here; the default dispatches to the methods above.
    fn handle(&self, event: &CommandEvent) {
        match event {
            CommandEvent::Started(e) => self.started(e),
            CommandEvent::Succeeded(e) => self.succeeded(e),
            CommandEvent::Failed(e) => self.failed(e),
        }
    }
}

/// Receives connection pool (CMAP) events. Implement only the methods you care about.
pub trait PoolListener: Send + Sync {
    /// A pool was created.
    fn pool_created(&self, _event: &PoolCreatedEvent) {}
    /// A pool became ready.
    fn pool_ready(&self, _event: &PoolReadyEvent) {}
    /// A pool was cleared.
    fn pool_cleared(&self, _event: &PoolClearedEvent) {}
    /// A pool was closed.
    fn pool_closed(&self, _event: &PoolClosedEvent) {}
    /// A connection was created.
    fn connection_created(&self, _event: &ConnectionCreatedEvent) {}
    /// A connection became ready.
    fn connection_ready(&self, _event: &ConnectionReadyEvent) {}
    /// A connection was closed.
    fn connection_closed(&self, _event: &ConnectionClosedEvent) {}
    /// A check-out started.
    fn connection_check_out_started(&self, _event: &ConnectionCheckOutStartedEvent) {}
    /// A check-out failed.
    fn connection_check_out_failed(&self, _event: &ConnectionCheckOutFailedEvent) {}
    /// A connection was checked out.
    fn connection_checked_out(&self, _event: &ConnectionCheckedOutEvent) {}
    /// A connection was checked in.
    fn connection_checked_in(&self, _event: &ConnectionCheckedInEvent) {}
    /// Every CMAP event comes in here; the default dispatches to the methods above.
    fn handle(&self, event: &CmapEvent) {
        match event {
            CmapEvent::PoolCreated(e) => self.pool_created(e),
            CmapEvent::PoolReady(e) => self.pool_ready(e),
            CmapEvent::PoolCleared(e) => self.pool_cleared(e),
            CmapEvent::PoolClosed(e) => self.pool_closed(e),
            CmapEvent::ConnectionCreated(e) => self.connection_created(e),
            CmapEvent::ConnectionReady(e) => self.connection_ready(e),
            CmapEvent::ConnectionClosed(e) => self.connection_closed(e),
            CmapEvent::ConnectionCheckOutStarted(e) => self.connection_check_out_started(e),
            CmapEvent::ConnectionCheckOutFailed(e) => self.connection_check_out_failed(e),
            CmapEvent::ConnectionCheckedOut(e) => self.connection_checked_out(e),
            CmapEvent::ConnectionCheckedIn(e) => self.connection_checked_in(e),
        }
    }
}

/// Receives server events. Implement only the methods you care about.
pub trait ServerListener: Send + Sync {
    /// A server was added to a topology.
    fn opened(&self, _event: &ServerOpeningEvent) {}
    /// A server's description changed.
    fn description_changed(&self, _event: &ServerDescriptionChangedEvent) {}
    /// A server was removed from a topology.
    fn closed(&self, _event: &ServerClosedEvent) {}
    /// Every server event comes in here; the default dispatches to the methods above.
    fn handle(&self, event: &ServerEvent) {
        match event {
            ServerEvent::Opening(e) => self.opened(e),
            ServerEvent::DescriptionChanged(e) => self.description_changed(e),
            ServerEvent::Closed(e) => self.closed(e),
        }
    }
}

/// Receives heartbeat events. Implement only the methods you care about.
pub trait HeartbeatListener: Send + Sync {
    /// A heartbeat was sent.
    fn started(&self, _event: &ServerHeartbeatStartedEvent) {}
    /// A heartbeat succeeded.
    fn succeeded(&self, _event: &ServerHeartbeatSucceededEvent) {}
    /// A heartbeat failed.
    fn failed(&self, _event: &ServerHeartbeatFailedEvent) {}
    /// Every heartbeat event comes in here; the default dispatches to the methods above.
    fn handle(&self, event: &HeartbeatEvent) {
        match event {
            HeartbeatEvent::Started(e) => self.started(e),
            HeartbeatEvent::Succeeded(e) => self.succeeded(e),
            HeartbeatEvent::Failed(e) => self.failed(e),
        }
    }
}

/// Receives topology events. Implement only the methods you care about.
pub trait TopologyListener: Send + Sync {
    /// A topology was opened.
    fn opened(&self, _event: &TopologyOpeningEvent) {}
    /// A topology's description changed.
    fn description_changed(&self, _event: &TopologyDescriptionChangedEvent) {}
    /// A topology was closed.
    fn closed(&self, _event: &TopologyClosedEvent) {}
    /// Every topology event comes in here; the default dispatches to the methods above.
    fn handle(&self, event: &TopologyEvent) {
        match event {
            TopologyEvent::Opening(e) => self.opened(e),
            TopologyEvent::DescriptionChanged(e) => self.description_changed(e),
            TopologyEvent::Closed(e) => self.closed(e),
        }
    }
}

/// A listener made from a closure: `FnListener(|e: &CmapEvent| ...)` is a [`PoolListener`],
/// `FnListener(|e: &CommandEvent| ...)` a [`CommandListener`], and so on for each family.
pub struct FnListener<F>(pub F);

impl<F: Fn(&CommandEvent) + Send + Sync> CommandListener for FnListener<F> {
    fn handle(&self, event: &CommandEvent) {
        (self.0)(event);
    }
}
impl<F: Fn(&CmapEvent) + Send + Sync> PoolListener for FnListener<F> {
    fn handle(&self, event: &CmapEvent) {
        (self.0)(event);
    }
}
impl<F: Fn(&ServerEvent) + Send + Sync> ServerListener for FnListener<F> {
    fn handle(&self, event: &ServerEvent) {
        (self.0)(event);
    }
}
impl<F: Fn(&HeartbeatEvent) + Send + Sync> HeartbeatListener for FnListener<F> {
    fn handle(&self, event: &HeartbeatEvent) {
        (self.0)(event);
    }
}
impl<F: Fn(&TopologyEvent) + Send + Sync> TopologyListener for FnListener<F> {
    fn handle(&self, event: &TopologyEvent) {
        (self.0)(event);
    }
}

/// A listener of any family, as [`register`] and [`Listeners::add`] take it.
#[derive(Clone)]
#[non_exhaustive]
pub enum Listener {
    /// Command events.
    Command(Arc<dyn CommandListener>),
    /// Pool events.
    Pool(Arc<dyn PoolListener>),
    /// Server events.
    Server(Arc<dyn ServerListener>),
    /// Heartbeat events.
    Heartbeat(Arc<dyn HeartbeatListener>),
    /// Topology events.
    Topology(Arc<dyn TopologyListener>),
}

impl Listener {
    /// A command listener.
    pub fn command(l: impl CommandListener + 'static) -> Self {
        Listener::Command(Arc::new(l))
    }
    /// A pool listener.
    pub fn pool(l: impl PoolListener + 'static) -> Self {
        Listener::Pool(Arc::new(l))
    }
    /// A server listener.
    pub fn server(l: impl ServerListener + 'static) -> Self {
        Listener::Server(Arc::new(l))
    }
    /// A heartbeat listener.
    pub fn heartbeat(l: impl HeartbeatListener + 'static) -> Self {
        Listener::Heartbeat(Arc::new(l))
    }
    /// A topology listener.
    pub fn topology(l: impl TopologyListener + 'static) -> Self {
        Listener::Topology(Arc::new(l))
    }
}

/// One registered listener and whether its panic was logged yet.
struct Slot<L: ?Sized> {
    name: &'static str,
    panicked: AtomicBool,
    listener: Arc<L>,
}

impl<L: ?Sized> Slot<L> {
    fn new(name: &'static str, listener: Arc<L>) -> Arc<Self> {
        Arc::new(Slot {
            name,
            panicked: AtomicBool::new(false),
            listener,
        })
    }

    fn deliver(&self, f: impl FnOnce(&L)) {
        if catch_unwind(AssertUnwindSafe(|| f(&self.listener))).is_err()
            && !self.panicked.swap(true, Ordering::Relaxed)
        {
            tracing::error!(
                target: "mongo::events",
                family = self.name,
                "an event listener panicked; the panic was caught and the event delivered to the \
                 other listeners (this is logged once per listener)"
            );
        }
    }
}

/// A set of listeners for the five families: a client's own, with the process-wide ones
/// registered before it was built (see [`Listeners::with_global`]).
///
/// Cloning is cheap (the lists hold `Arc`s). Emitting to a family with no listener does not
/// build the event: `emit_*` take a closure that is only called when someone listens.
#[derive(Clone, Default)]
pub struct Listeners {
    command: Vec<Arc<Slot<dyn CommandListener>>>,
    pool: Vec<Arc<Slot<dyn PoolListener>>>,
    server: Vec<Arc<Slot<dyn ServerListener>>>,
    heartbeat: Vec<Arc<Slot<dyn HeartbeatListener>>>,
    topology: Vec<Arc<Slot<dyn TopologyListener>>>,
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listeners")
            .field("command", &self.command.len())
            .field("pool", &self.pool.len())
            .field("server", &self.server.len())
            .field("heartbeat", &self.heartbeat.len())
            .field("topology", &self.topology.len())
            .finish()
    }
}

static GLOBAL: RwLock<Listeners> = RwLock::new(Listeners {
    command: Vec::new(),
    pool: Vec::new(),
    server: Vec::new(),
    heartbeat: Vec::new(),
    topology: Vec::new(),
});

/// Registers a process-wide listener, as PyMongo's `monitoring.register()`.
///
/// It is included in every client (or pool, or topology) whose listeners are built with
/// [`Listeners::with_global`] *after* this call; clients built before are not reached.
pub fn register(listener: Listener) {
    let mut global = GLOBAL
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    global.add(listener);
}

impl Listeners {
    /// An empty set.
    pub fn new() -> Self {
        Listeners::default()
    }

    /// The process-wide listeners registered so far, followed by `own` (a client's listeners
    /// from its options). This is how a client builds its set when it is created.
    pub fn with_global(own: &Listeners) -> Listeners {
        let mut all = GLOBAL
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        all.command.extend(own.command.iter().cloned());
        all.pool.extend(own.pool.iter().cloned());
        all.server.extend(own.server.iter().cloned());
        all.heartbeat.extend(own.heartbeat.iter().cloned());
        all.topology.extend(own.topology.iter().cloned());
        all
    }

    /// Adds a listener.
    pub fn add(&mut self, listener: Listener) -> &mut Self {
        match listener {
            Listener::Command(l) => self.command.push(Slot::new("command", l)),
            Listener::Pool(l) => self.pool.push(Slot::new("pool", l)),
            Listener::Server(l) => self.server.push(Slot::new("server", l)),
            Listener::Heartbeat(l) => self.heartbeat.push(Slot::new("heartbeat", l)),
            Listener::Topology(l) => self.topology.push(Slot::new("topology", l)),
        }
        self
    }

    /// Adds a listener, builder style.
    #[must_use]
    pub fn with(mut self, listener: Listener) -> Self {
        self.add(listener);
        self
    }

    /// Adds one value that listens to all five families (a recorder, a logger set).
    pub fn add_all<L>(&mut self, listener: Arc<L>) -> &mut Self
    where
        L: CommandListener
            + PoolListener
            + ServerListener
            + HeartbeatListener
            + TopologyListener
            + 'static,
    {
        self.add(Listener::Command(listener.clone()));
        self.add(Listener::Pool(listener.clone()));
        self.add(Listener::Server(listener.clone()));
        self.add(Listener::Heartbeat(listener.clone()));
        self.add(Listener::Topology(listener));
        self
    }

    /// Whether any command listener is present.
    #[inline]
    pub fn has_command(&self) -> bool {
        !self.command.is_empty()
    }
    /// Whether any pool listener is present.
    #[inline]
    pub fn has_pool(&self) -> bool {
        !self.pool.is_empty()
    }
    /// Whether any server listener is present.
    #[inline]
    pub fn has_server(&self) -> bool {
        !self.server.is_empty()
    }
    /// Whether any heartbeat listener is present.
    #[inline]
    pub fn has_heartbeat(&self) -> bool {
        !self.heartbeat.is_empty()
    }
    /// Whether any topology listener is present.
    #[inline]
    pub fn has_topology(&self) -> bool {
        !self.topology.is_empty()
    }

    /// Delivers a command event built by `make`, which is not called when nobody listens.
    #[inline]
    pub fn emit_command(&self, make: impl FnOnce() -> CommandEvent) {
        if self.command.is_empty() {
            return;
        }
        let event = make();
        self.deliver_command(&event);
    }

    /// Delivers an already built command event.
    pub fn deliver_command(&self, event: &CommandEvent) {
        for s in &self.command {
            s.deliver(|l| l.handle(event));
        }
    }

    /// Delivers a pool event built by `make`, which is not called when nobody listens.
    #[inline]
    pub fn emit_pool(&self, make: impl FnOnce() -> CmapEvent) {
        if self.pool.is_empty() {
            return;
        }
        let event = make();
        self.deliver_pool(&event);
    }

    /// Delivers an already built pool event.
    pub fn deliver_pool(&self, event: &CmapEvent) {
        for s in &self.pool {
            s.deliver(|l| l.handle(event));
        }
    }

    /// Delivers a server event built by `make`, which is not called when nobody listens.
    #[inline]
    pub fn emit_server(&self, make: impl FnOnce() -> ServerEvent) {
        if self.server.is_empty() {
            return;
        }
        let event = make();
        self.deliver_server(&event);
    }

    /// Delivers an already built server event.
    pub fn deliver_server(&self, event: &ServerEvent) {
        for s in &self.server {
            s.deliver(|l| l.handle(event));
        }
    }

    /// Delivers a heartbeat event built by `make`, which is not called when nobody listens.
    #[inline]
    pub fn emit_heartbeat(&self, make: impl FnOnce() -> HeartbeatEvent) {
        if self.heartbeat.is_empty() {
            return;
        }
        let event = make();
        self.deliver_heartbeat(&event);
    }

    /// Delivers an already built heartbeat event.
    pub fn deliver_heartbeat(&self, event: &HeartbeatEvent) {
        for s in &self.heartbeat {
            s.deliver(|l| l.handle(event));
        }
    }

    /// Delivers a topology event built by `make`, which is not called when nobody listens.
    #[inline]
    pub fn emit_topology(&self, make: impl FnOnce() -> TopologyEvent) {
        if self.topology.is_empty() {
            return;
        }
        let event = make();
        self.deliver_topology(&event);
    }

    /// Delivers an already built topology event.
    pub fn deliver_topology(&self, event: &TopologyEvent) {
        for s in &self.topology {
            s.deliver(|l| l.handle(event));
        }
    }
}
