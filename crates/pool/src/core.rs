//! `PoolCore`: the CMAP pool as a sans-I/O state machine.
//!
//! The core performs no I/O, reads no clock and spawns nothing. Inputs come in through
//! `handle_*` calls and commands (`ready`, `clear`, `close`), each given the current instant;
//! outputs are drained with [`PoolCore::poll_action`], [`PoolCore::poll_event`] and
//! [`PoolCore::poll_timeout`]. Drain the actions after every input: they tell the driver what
//! to establish, whom to hand a connection to, whom to fail and what to close.
//!
//! The values the core hands out cannot be forged or mixed up between pools: a
//! [`WaiterId`] and an [`Establishing`] ticket can only come from the core and name their
//! pool; a ticket is not `Clone`, so each establishment is reported exactly once; a
//! [`CheckedOut`] connection goes back through [`PoolCore::handle_checkin`] (another pool
//! refuses it with [`Rejected`]). What the type system cannot enforce is that every value
//! handed out comes back: a dropped `CheckedOut` stays counted in use, and a dropped ticket
//! stays pending until the connect timeout (if any) abandons it.
//!
//! Deadlines: waitQueueTimeoutMS bounds a request while it is in the FIFO queue; a request's
//! own deadline (given to [`PoolCore::handle_checkout_request`], for client-side operation
//! timeouts) bounds it both in the queue and while a connection is established for it.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mongo_events::cmap::*;
use mongo_events::{ConnectionId, EventError, Generation, ServerAddress, ServiceId};

use crate::{PoolError, PoolOptions, log};

/// How long the pool waits before populating again after a background establishment failed
/// (the failure went to the error handler, which normally clears the pool).
pub const POPULATE_BACKOFF: Duration = Duration::from_millis(500);

static NEXT_POOL_ID: AtomicU64 = AtomicU64::new(1);

/// The pool's state.
///
/// ```text
///            ready()                 close()
///   Paused ----------> Ready ---------------------> Closed
///     ^  <----------                                  ^
///     |    clear()                                    |
///     +-----------------------------------------------+
///                          close()
/// ```
///
/// A pool starts `Paused`. While paused, check-outs fail with a retryable `PoolCleared` error
/// and no connection is created for minPoolSize. `Closed` is terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolState {
    /// The initial state, and the state after a (non load-balanced) clear.
    Paused,
    /// Check-outs are served and the pool populates itself to minPoolSize.
    Ready,
    /// The pool was closed; terminal.
    Closed,
}

/// A waiting check-out request, as [`CheckoutStart::Waiting`] names it and the
/// [`Action::Deliver`] / [`Action::FailWaiter`] that answer it repeat it.
///
/// Only the core makes these: it names its pool, so a caller cannot cancel another pool's
/// request (or a request it never made) with [`PoolCore::cancel_waiter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WaiterId {
    pool: u64,
    seq: u64,
}

impl WaiterId {
    /// The request's number, unique within its pool (the driver's slot key).
    #[cfg(feature = "tokio")]
    pub(crate) fn seq(self) -> u64 {
        self.seq
    }
}

/// A connection the core asked the driver to establish ([`Action::Establish`]): the ticket to
/// hand back with [`PoolCore::handle_established`] or [`PoolCore::handle_establish_failed`].
///
/// It is neither `Clone` nor constructible outside the crate, so each establishment is reported
/// once, by whoever the core asked, to the pool that asked.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "report the outcome with handle_established or handle_establish_failed"]
pub struct Establishing {
    id: ConnectionId,
    generation: Generation,
    pool_id: u64,
}

impl Establishing {
    /// The new connection's id.
    pub fn id(&self) -> ConnectionId {
        self.id
    }
    /// The pool generation it belongs to.
    pub fn generation(&self) -> Generation {
        self.generation
    }
}

/// What the pool knows about one of its connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionMeta {
    id: ConnectionId,
    generation: Generation,
    pool_generation: Generation,
    service_id: Option<ServiceId>,
    created_at: Instant,
    pool_id: u64,
}

impl ConnectionMeta {
    /// The connection's id (per pool, from 1, in creation order).
    pub fn id(&self) -> ConnectionId {
        self.id
    }
    /// The connection's generation: the pool's at creation, or in load-balanced mode its
    /// service's at the end of the handshake.
    pub fn generation(&self) -> Generation {
        self.generation
    }
    /// The service the connection reached, in load-balanced mode.
    pub fn service_id(&self) -> Option<ServiceId> {
        self.service_id
    }
    /// When the connection was created (its `ConnectionCreated` event).
    pub fn created_at(&self) -> Instant {
        self.created_at
    }
}

/// A checked-out connection as the core hands it out: the connection and its metadata. Give it
/// back with [`PoolCore::handle_checkin`].
#[derive(Debug)]
pub struct CheckedOut<C> {
    conn: C,
    meta: ConnectionMeta,
}

impl<C> CheckedOut<C> {
    /// The connection.
    pub fn conn(&self) -> &C {
        &self.conn
    }
    /// The connection, mutably.
    pub fn conn_mut(&mut self) -> &mut C {
        &mut self.conn
    }
    /// The pool's metadata about it.
    pub fn meta(&self) -> &ConnectionMeta {
        &self.meta
    }
    /// The connection, leaving the pool's bookkeeping behind: only for connections the core
    /// refused (calling it on a live check-out would leave it counted in use forever).
    #[cfg(feature = "tokio")]
    pub(crate) fn into_conn(self) -> C {
        self.conn
    }

    /// The connection mutably and its metadata, borrowed together.
    #[cfg(feature = "tokio")]
    pub(crate) fn parts_mut(&mut self) -> (&mut C, &ConnectionMeta) {
        (&mut self.conn, &self.meta)
    }
}

/// A check-in the core refused: the connection belongs to another pool.
#[derive(Debug)]
pub struct Rejected<C> {
    /// Why (`PoolError::ForeignConnection`).
    pub error: PoolError,
    /// The connection, handed back.
    pub conn: CheckedOut<C>,
}

/// The immediate answer to a check-out request.
#[derive(Debug)]
#[must_use]
pub enum CheckoutStart<C> {
    /// An available connection was checked out at once.
    Ready(CheckedOut<C>),
    /// The request waits; a later `Deliver` or `FailWaiter` action answers it.
    Waiting(WaiterId),
    /// The request failed at once: the pool is closed or paused, or the request's deadline
    /// had already passed and no connection was available (`WaitQueueTimeout`).
    Failed(PoolError),
}

/// Something the driver must do.
#[derive(Debug)]
#[must_use]
#[non_exhaustive]
pub enum Action<C> {
    /// Start establishing a connection (in the background); hand the ticket back with
    /// [`PoolCore::handle_established`] or [`PoolCore::handle_establish_failed`].
    Establish {
        /// Names the connection ([`Establishing::id`], [`Establishing::generation`]).
        ticket: Establishing,
    },
    /// Abandon the establishment of `id` (connect timeout, interrupting clear, close); its
    /// `ConnectionClosed` event was already emitted and a late result is refused.
    CancelEstablish {
        /// The connection's id.
        id: ConnectionId,
    },
    /// Hand `conn` to the waiting request `waiter` (its `ConnectionCheckedOut` was emitted).
    Deliver {
        /// The request.
        waiter: WaiterId,
        /// The connection.
        conn: CheckedOut<C>,
    },
    /// Fail the waiting request `waiter` (its `ConnectionCheckOutFailed` was emitted).
    FailWaiter {
        /// The request.
        waiter: WaiterId,
        /// Why.
        error: PoolError,
    },
    /// Tear down `conn` (its `ConnectionClosed` was emitted); do it outside any lock.
    Close {
        /// The connection.
        conn: C,
        /// Its id.
        id: ConnectionId,
        /// Why it is closed.
        reason: ConnectionClosedReason,
    },
}

/// A snapshot of the pool's counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Pending + available + in use.
    pub total: usize,
    /// Established and idle in the pool.
    pub available: usize,
    /// Being established.
    pub pending: usize,
    /// Checked out.
    pub in_use: usize,
    /// Check-out requests waiting (in the queue or for a connection being established).
    pub waiters: usize,
    /// The pool's generation.
    pub generation: Generation,
}

#[derive(Debug)]
struct Idle<C> {
    conn: C,
    meta: ConnectionMeta,
    since: Instant,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    id: ConnectionId,
    generation: Generation,
    created_at: Instant,
    deadline: Option<Instant>,
    requester: Option<u64>,
}

/// A request in the FIFO queue.
#[derive(Clone, Copy, Debug)]
struct Waiter {
    id: u64,
    started: Instant,
    /// When it fails while in the queue: the earlier of its wait-queue deadline and its own
    /// deadline (tracked in `PoolCore::deadlines`).
    deadline: Option<Instant>,
    /// The request's own deadline, which also bounds it once covered.
    own_deadline: Option<Instant>,
}

/// A request waiting for a connection being established for it.
#[derive(Clone, Copy, Debug)]
struct Covered {
    waiter: u64,
    started: Instant,
    conn: ConnectionId,
    /// The request's own deadline (tracked in `PoolCore::deadlines`); waitQueueTimeoutMS does
    /// not apply once covered.
    deadline: Option<Instant>,
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct ServiceEntry {
    generation: Generation,
    count: usize,
    interrupt_below: Generation,
}

/// The CMAP pool state machine, generic over the pooled connection type `C`.
///
/// Counts follow the spec: a connection is pending (being established), available (idle in
/// the pool) or in use (checked out); `total` is their sum and never exceeds maxPoolSize;
/// `pending` never exceeds maxConnecting. Waiting requests form a FIFO queue; a request at the
/// head of the queue that gets a connection to establish (or claims one being established
/// without an owner) leaves the queue and waits for that connection ("covered"), without a
/// wait-queue timeout (the connect timeout bounds it). A request's own deadline (see
/// [`PoolCore::handle_checkout_request`]) bounds it in both states.
#[derive(Debug)]
pub struct PoolCore<C> {
    address: ServerAddress,
    options: PoolOptions,
    max_pool: usize,
    min_pool: usize,
    max_connecting: usize,
    max_idle: Option<Duration>,
    wait_queue_timeout: Option<Duration>,
    max_lifetime: Option<Duration>,
    connect_timeout: Option<Duration>,
    load_balanced: bool,
    pool_id: u64,
    state: PoolState,
    generation: Generation,
    services: HashMap<ServiceId, ServiceEntry>,
    interrupt_below: Generation,
    interrupt_epoch: u64,
    clear_cause: Option<EventError>,
    next_conn_id: u64,
    next_waiter: u64,
    idle: VecDeque<Idle<C>>,
    pending: Vec<Pending>,
    in_use: usize,
    queue: VecDeque<Waiter>,
    /// The deadlines of waiting requests, queued (`Waiter::deadline`) or covered
    /// (`Covered::deadline`), with the request's number.
    deadlines: BTreeSet<(Instant, u64)>,
    covered: Vec<Covered>,
    actions: VecDeque<Action<C>>,
    events: VecDeque<CmapEvent>,
    emit_events: bool,
    bg_due: Option<Instant>,
    populate_after: Option<Instant>,
    timeout_dirty: bool,
}

fn to_usize(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl<C> PoolCore<C> {
    /// A new pool for `address`, paused, generation 0. Emits `PoolCreated` (when events are
    /// enabled, see [`PoolCore::set_emit_events`], it is queued; the log message is written
    /// at once).
    pub fn new(
        address: ServerAddress,
        options: PoolOptions,
        emit_events: bool,
    ) -> Result<Self, PoolError> {
        options.validate()?;
        let max_pool = match options.max_pool_size() {
            0 => usize::MAX,
            n => to_usize(n),
        };
        let mut core = PoolCore {
            address,
            max_pool,
            min_pool: to_usize(options.min_pool_size()),
            max_connecting: to_usize(options.max_connecting()),
            max_idle: options.effective_max_idle_time(),
            wait_queue_timeout: options.effective_wait_queue_timeout(),
            max_lifetime: options.effective_max_lifetime(),
            connect_timeout: options.effective_connect_timeout(),
            load_balanced: options.load_balanced,
            options,
            pool_id: NEXT_POOL_ID.fetch_add(1, Ordering::Relaxed),
            state: PoolState::Paused,
            generation: Generation(0),
            services: HashMap::new(),
            interrupt_below: Generation(0),
            interrupt_epoch: 0,
            clear_cause: None,
            next_conn_id: 1,
            next_waiter: 1,
            idle: VecDeque::new(),
            pending: Vec::new(),
            in_use: 0,
            queue: VecDeque::new(),
            deadlines: BTreeSet::new(),
            covered: Vec::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            emit_events,
            bg_due: None,
            populate_after: None,
            timeout_dirty: false,
        };
        let snapshot = core.options.snapshot();
        core.emit(|a| {
            CmapEvent::PoolCreated(PoolCreatedEvent {
                address: a,
                options: snapshot,
            })
        });
        Ok(core)
    }

    /// Whether events are queued for [`PoolCore::poll_event`] (log messages are written
    /// whenever the `mongo::connection` target is enabled at `DEBUG`).
    pub fn set_emit_events(&mut self, on: bool) {
        self.emit_events = on;
    }

    /// The pool's server.
    pub fn address(&self) -> &ServerAddress {
        &self.address
    }

    /// The options the pool was created with.
    pub fn options(&self) -> &PoolOptions {
        &self.options
    }

    /// The pool's state.
    pub fn state(&self) -> PoolState {
        self.state
    }

    /// The pool's generation.
    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// A number bumped by every clear that interrupts in-use connections (a cheap way for a
    /// driver to know that [`PoolCore::is_interrupted`] may have changed).
    pub fn interrupt_epoch(&self) -> u64 {
        self.interrupt_epoch
    }

    fn total(&self) -> usize {
        self.idle.len() + self.pending.len() + self.in_use
    }

    /// The pool's counts.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            total: self.total(),
            available: self.idle.len(),
            pending: self.pending.len(),
            in_use: self.in_use,
            waiters: self.queue.len() + self.covered.len(),
            generation: self.generation,
        }
    }

    /// The next action for the driver, if any.
    #[inline]
    pub fn poll_action(&mut self) -> Option<Action<C>> {
        self.actions.pop_front()
    }

    /// The next event to deliver to listeners, if any.
    #[inline]
    pub fn poll_event(&mut self) -> Option<CmapEvent> {
        self.events.pop_front()
    }

    /// Whether actions or events are waiting to be drained.
    #[inline]
    pub fn has_output(&self) -> bool {
        !self.actions.is_empty() || !self.events.is_empty()
    }

    /// Whether events are waiting to be drained.
    #[inline]
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Whether [`PoolCore::poll_timeout`] may have moved earlier since the last call to this
    /// method (clears the flag).
    #[inline]
    pub fn take_timeout_changed(&mut self) -> bool {
        std::mem::take(&mut self.timeout_dirty)
    }

    /// When [`PoolCore::handle_timeout`] must next be called: the earliest request deadline
    /// (wait-queue timeout or the request's own), connect deadline, idle or lifetime expiry,
    /// scheduled background run (after a clear) or population retry.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == PoolState::Closed {
            return None;
        }
        let mut t = self.bg_due;
        let mut at = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        at(self.deadlines.first().map(|(d, _)| *d));
        at(self.pending.iter().filter_map(|p| p.deadline).min());
        if let Some(max) = self.max_idle {
            at(self.idle.front().and_then(|i| i.since.checked_add(max)));
        }
        if let Some(max) = self.max_lifetime {
            at(self
                .idle
                .iter()
                .filter_map(|i| i.meta.created_at.checked_add(max))
                .min());
        }
        if self.state == PoolState::Ready && self.total() < self.min_pool {
            at(self.populate_after);
        }
        t
    }

    /// Builds and queues (or logs) an event, only when a listener or the log wants it; the
    /// log filter is asked once.
    #[inline]
    fn emit(&mut self, make: impl FnOnce(ServerAddress) -> CmapEvent) {
        let logging = log::enabled();
        if !self.emit_events && !logging {
            return;
        }
        let event = make(self.address.clone());
        if logging {
            log::log_event(&event);
        }
        if self.emit_events {
            self.events.push_back(event);
        }
    }

    fn emit_checkout_failed(
        &mut self,
        reason: ConnectionCheckOutFailedReason,
        error: &PoolError,
        started: Instant,
        now: Instant,
    ) {
        self.emit(|address| {
            CmapEvent::ConnectionCheckOutFailed(ConnectionCheckOutFailedEvent {
                address,
                reason,
                error: Some(EventError::new(error.clone())),
                duration: now.saturating_duration_since(started),
            })
        });
    }

    fn emit_closed(
        &mut self,
        id: ConnectionId,
        reason: ConnectionClosedReason,
        error: Option<EventError>,
    ) {
        self.emit(|address| {
            CmapEvent::ConnectionClosed(ConnectionClosedEvent {
                address,
                connection_id: id,
                reason,
                error,
            })
        });
    }

    fn cleared_error(&self) -> PoolError {
        PoolError::PoolCleared {
            address: self.address.clone(),
            cause: self.clear_cause.clone(),
        }
    }

    fn closed_error(&self) -> PoolError {
        PoolError::PoolClosed {
            address: self.address.clone(),
        }
    }

    fn is_stale(&self, meta: &ConnectionMeta) -> bool {
        if meta.pool_generation != self.generation {
            return true;
        }
        match (self.load_balanced, meta.service_id) {
            (true, Some(s)) => self
                .services
                .get(&s)
                .is_none_or(|e| e.generation != meta.generation),
            _ => false,
        }
    }

    /// Whether a checked-out connection was interrupted by a clear with
    /// `interruptInUseConnections` (its operation should fail with a retryable
    /// [`PoolError::Interrupted`]).
    ///
    /// Always `false` for another pool's connection.
    pub fn is_interrupted(&self, meta: &ConnectionMeta) -> bool {
        if meta.pool_id != self.pool_id {
            return false;
        }
        if meta.pool_generation < self.interrupt_below {
            return true;
        }
        match (self.load_balanced, meta.service_id) {
            (true, Some(s)) => self
                .services
                .get(&s)
                .is_some_and(|e| meta.generation < e.interrupt_below),
            _ => false,
        }
    }

    fn perished(
        &self,
        meta: &ConnectionMeta,
        idle_since: Option<Instant>,
        now: Instant,
    ) -> Option<ConnectionClosedReason> {
        if self.is_stale(meta) {
            return Some(ConnectionClosedReason::Stale);
        }
        if let (Some(max), Some(since)) = (self.max_idle, idle_since) {
            if now.saturating_duration_since(since) >= max {
                return Some(ConnectionClosedReason::Idle);
            }
        }
        if let Some(max) = self.max_lifetime {
            if now.saturating_duration_since(meta.created_at) >= max {
                return Some(ConnectionClosedReason::Expired);
            }
        }
        None
    }

    /// Closes an established connection that left the available set or came back from use.
    fn close_conn(
        &mut self,
        conn: C,
        meta: &ConnectionMeta,
        reason: ConnectionClosedReason,
        error: Option<EventError>,
    ) {
        if let Some(s) = meta.service_id {
            if let Some(e) = self.services.get_mut(&s) {
                e.count = e.count.saturating_sub(1);
                if e.count == 0 {
                    self.services.remove(&s);
                }
            }
        }
        self.emit_closed(meta.id, reason, error);
        self.actions.push_back(Action::Close {
            conn,
            id: meta.id,
            reason,
        });
    }

    fn track_deadline(&mut self, deadline: Option<Instant>, waiter: u64) {
        if let Some(d) = deadline {
            self.deadlines.insert((d, waiter));
            self.timeout_dirty = true;
        }
    }

    fn untrack_deadline(&mut self, deadline: Option<Instant>, waiter: u64) {
        if let Some(d) = deadline {
            self.deadlines.remove(&(d, waiter));
        }
    }

    /// A request leaves the queue (its queue deadline no longer applies).
    fn remove_deadline(&mut self, w: &Waiter) {
        self.untrack_deadline(w.deadline, w.id);
    }

    /// Queues a request (at the back, or at the front to give it its place back).
    fn enqueue(&mut self, w: Waiter, front: bool) {
        self.track_deadline(w.deadline, w.id);
        if front {
            self.queue.push_front(w);
        } else {
            self.queue.push_back(w);
        }
    }

    /// Removes the covered request at `pos` (and its deadline).
    fn take_covered_at(&mut self, pos: usize) -> Covered {
        let c = self.covered.remove(pos);
        self.untrack_deadline(c.deadline, c.waiter);
        c
    }

    /// Removes the covered request `waiter`, if it is covered (and its deadline).
    fn take_covered(&mut self, waiter: Option<u64>) -> Option<Covered> {
        let w = waiter?;
        let pos = self.covered.iter().position(|c| c.waiter == w)?;
        Some(self.take_covered_at(pos))
    }

    /// The pending connection `conn` loses its requester (it will go to the next request or
    /// the pool).
    fn release_pending(&mut self, conn: ConnectionId) {
        if let Some(p) = self.pending.iter_mut().find(|p| p.id == conn) {
            p.requester = None;
        }
    }

    fn waiter_id(&self, seq: u64) -> WaiterId {
        WaiterId {
            pool: self.pool_id,
            seq,
        }
    }

    fn timeout_error(&self) -> PoolError {
        PoolError::WaitQueueTimeout {
            address: self.address.clone(),
        }
    }

    fn new_waiter(&mut self) -> u64 {
        let w = self.next_waiter;
        self.next_waiter += 1;
        w
    }

    fn can_create(&self) -> bool {
        self.total() < self.max_pool && self.pending.len() < self.max_connecting
    }

    fn create(&mut self, requester: Option<u64>, now: Instant) -> ConnectionId {
        let id = ConnectionId(self.next_conn_id);
        self.next_conn_id += 1;
        let deadline = self.connect_timeout.and_then(|t| now.checked_add(t));
        if deadline.is_some() {
            self.timeout_dirty = true;
        }
        self.pending.push(Pending {
            id,
            generation: self.generation,
            created_at: now,
            deadline,
            requester,
        });
        self.emit(|address| {
            CmapEvent::ConnectionCreated(ConnectionCreatedEvent {
                address,
                connection_id: id,
            })
        });
        self.actions.push_back(Action::Establish {
            ticket: Establishing {
                id,
                generation: self.generation,
                pool_id: self.pool_id,
            },
        });
        id
    }

    fn deliver(
        &mut self,
        waiter: u64,
        started: Instant,
        conn: C,
        meta: ConnectionMeta,
        now: Instant,
    ) {
        self.in_use += 1;
        self.emit(|address| {
            CmapEvent::ConnectionCheckedOut(ConnectionCheckedOutEvent {
                address,
                connection_id: meta.id,
                duration: now.saturating_duration_since(started),
            })
        });
        self.actions.push_back(Action::Deliver {
            waiter: self.waiter_id(waiter),
            conn: CheckedOut { conn, meta },
        });
    }

    fn fail_waiter(
        &mut self,
        waiter: u64,
        started: Instant,
        error: PoolError,
        reason: ConnectionCheckOutFailedReason,
        now: Instant,
    ) {
        self.emit_checkout_failed(reason, &error, started, now);
        self.actions.push_back(Action::FailWaiter {
            waiter: self.waiter_id(waiter),
            error,
        });
    }

    /// Pops the most recently used available connection that has not perished, closing the
    /// perished ones met on the way.
    fn pop_usable_idle(&mut self, now: Instant) -> Option<(C, ConnectionMeta)> {
        while let Some(idle) = self.idle.pop_back() {
            match self.perished(&idle.meta, Some(idle.since), now) {
                Some(reason) => self.close_conn(idle.conn, &idle.meta, reason, None),
                None => return Some((idle.conn, idle.meta)),
            }
        }
        None
    }

    /// An established, usable connection becomes available: the oldest waiting request gets
    /// it, else it goes into the pool.
    fn offer(&mut self, conn: C, meta: ConnectionMeta, now: Instant) {
        if let Some(w) = self.queue.pop_front() {
            self.remove_deadline(&w);
            self.deliver(w.id, w.started, conn, meta, now);
        } else if !self.covered.is_empty() {
            // A request waiting for a connection being established takes this one now; the
            // one being established loses its owner and will go into the pool.
            let c = self.take_covered_at(0);
            self.release_pending(c.conn);
            self.deliver(c.waiter, c.started, conn, meta, now);
        } else {
            // The idle expiry follows the oldest available connection, so it only moves when
            // the pool had none; a lifetime expiry may come before every other one.
            if (self.max_idle.is_some() && self.idle.is_empty()) || self.max_lifetime.is_some() {
                self.timeout_dirty = true;
            }
            self.idle.push_back(Idle {
                conn,
                meta,
                since: now,
            });
        }
    }

    /// Serves the wait queue (available connections, owner-less pending ones, new ones) and
    /// populates the pool to minPoolSize.
    fn maintain(&mut self, now: Instant) {
        if self.state != PoolState::Ready {
            return;
        }
        while let Some(&head) = self.queue.front() {
            if let Some((conn, meta)) = self.pop_usable_idle(now) {
                self.queue.pop_front();
                self.remove_deadline(&head);
                self.deliver(head.id, head.started, conn, meta, now);
                continue;
            }
            let conn = if let Some(p) = self.pending.iter_mut().find(|p| p.requester.is_none()) {
                p.requester = Some(head.id);
                p.id
            } else if self.can_create() {
                self.create(Some(head.id), now)
            } else {
                break;
            };
            self.queue.pop_front();
            self.remove_deadline(&head);
            self.track_deadline(head.own_deadline, head.id);
            self.covered.push(Covered {
                waiter: head.id,
                started: head.started,
                conn,
                deadline: head.own_deadline,
            });
        }
        self.populate(now);
    }

    fn populate(&mut self, now: Instant) {
        if self.state != PoolState::Ready || self.total() >= self.min_pool {
            return;
        }
        if let Some(t) = self.populate_after {
            if now < t {
                return;
            }
            self.populate_after = None;
        }
        while self.total() < self.min_pool && self.can_create() {
            self.create(None, now);
        }
    }

    /// A check-out request. Emits `ConnectionCheckOutStarted`, then either checks out an
    /// available connection at once, fails (closed or paused pool), or queues the request.
    ///
    /// `deadline` is the request's own deadline (an operation timeout): the request fails with
    /// [`PoolError::WaitQueueTimeout`] (`ConnectionCheckOutFailed` with reason `timeout`) at the
    /// earlier of `deadline` and now + waitQueueTimeoutMS. waitQueueTimeoutMS bounds the
    /// request only while it is in the queue, as CMAP says; `deadline` also bounds it while
    /// it waits for a connection being established for it, which then stays for the pool
    /// (like the connection of a cancelled request). A `deadline` at or before `now` fails the
    /// request at once unless an available connection can be handed out at once; nothing is
    /// established for it. Deadlines are enforced by [`PoolCore::handle_timeout`], which
    /// [`PoolCore::poll_timeout`] schedules.
    pub fn handle_checkout_request(
        &mut self,
        now: Instant,
        deadline: Option<Instant>,
    ) -> CheckoutStart<C> {
        self.emit(|address| {
            CmapEvent::ConnectionCheckOutStarted(ConnectionCheckOutStartedEvent { address })
        });
        match self.state {
            PoolState::Ready => {}
            PoolState::Closed => {
                let error = self.closed_error();
                self.emit_checkout_failed(
                    ConnectionCheckOutFailedReason::PoolClosed,
                    &error,
                    now,
                    now,
                );
                return CheckoutStart::Failed(error);
            }
            PoolState::Paused => {
                let error = self.cleared_error();
                self.emit_checkout_failed(
                    ConnectionCheckOutFailedReason::ConnectionError,
                    &error,
                    now,
                    now,
                );
                return CheckoutStart::Failed(error);
            }
        }
        if self.queue.is_empty() {
            let available = self.idle.len();
            if let Some((conn, meta)) = self.pop_usable_idle(now) {
                self.in_use += 1;
                self.emit(|address| {
                    CmapEvent::ConnectionCheckedOut(ConnectionCheckedOutEvent {
                        address,
                        connection_id: meta.id,
                        duration: Duration::ZERO,
                    })
                });
                if self.idle.len() + 1 < available {
                    // Perished connections were closed on the way: refill to minPoolSize.
                    self.populate(now);
                }
                return CheckoutStart::Ready(CheckedOut { conn, meta });
            }
        }
        if deadline.is_some_and(|d| d <= now) {
            let error = self.timeout_error();
            self.emit_checkout_failed(ConnectionCheckOutFailedReason::Timeout, &error, now, now);
            // Perished connections may have been closed on the way: refill to minPoolSize.
            self.populate(now);
            return CheckoutStart::Failed(error);
        }
        let id = self.new_waiter();
        let queue_deadline = self.wait_queue_timeout.and_then(|t| now.checked_add(t));
        self.enqueue(
            Waiter {
                id,
                started: now,
                deadline: earliest(queue_deadline, deadline),
                own_deadline: deadline,
            },
            false,
        );
        self.maintain(now);
        CheckoutStart::Waiting(self.waiter_id(id))
    }

    /// A waiting request was abandoned (its check-out future was dropped). It leaves the
    /// queue; a connection being established for it stays in the pool for the next request.
    /// No event is emitted. Returns whether the request was still waiting: `false` for
    /// another pool's request, or for one already answered, whose `Deliver` or `FailWaiter`
    /// action is then queued or was drained (a delivered connection must still be checked
    /// in).
    pub fn cancel_waiter(&mut self, waiter: WaiterId, now: Instant) -> bool {
        if waiter.pool != self.pool_id {
            return false;
        }
        if let Some(pos) = self.queue.iter().position(|w| w.id == waiter.seq) {
            if let Some(w) = self.queue.remove(pos) {
                self.remove_deadline(&w);
            }
            return true;
        }
        if let Some(c) = self.take_covered(Some(waiter.seq)) {
            self.release_pending(c.conn);
            self.maintain(now);
            return true;
        }
        false
    }

    /// The connection of `ticket` finished establishing. `service_id` is the serviceId its
    /// handshake reported (load-balanced mode). Emits `ConnectionReady`, then hands the
    /// connection to the request waiting for it, to the oldest waiting request, or to the
    /// pool. Returns the connection if the pool no longer expects it (its establishment was
    /// cancelled, or the ticket is another pool's).
    pub fn handle_established(
        &mut self,
        ticket: Establishing,
        conn: C,
        service_id: Option<ServiceId>,
        now: Instant,
    ) -> Result<(), C> {
        let Some(pos) = self.pending_pos(&ticket) else {
            return Err(conn);
        };
        let id = ticket.id;
        let p = self.pending.remove(pos);
        let mut generation = p.generation;
        let service_id = if self.load_balanced { service_id } else { None };
        if let Some(s) = service_id {
            let e = self.services.entry(s).or_default();
            e.count += 1;
            generation = e.generation;
        }
        let meta = ConnectionMeta {
            id,
            generation,
            pool_generation: p.generation,
            service_id,
            created_at: p.created_at,
            pool_id: self.pool_id,
        };
        self.emit(|address| {
            CmapEvent::ConnectionReady(ConnectionReadyEvent {
                address,
                connection_id: id,
                duration: now.saturating_duration_since(p.created_at),
            })
        });
        let requester = self.take_covered(p.requester);
        if self.state == PoolState::Closed {
            self.close_conn(conn, &meta, ConnectionClosedReason::PoolClosed, None);
        } else if let Some(reason) = self.perished(&meta, None, now) {
            self.close_conn(conn, &meta, reason, None);
            match requester {
                Some(c) if c.deadline.is_some_and(|d| d <= now) => {
                    let error = self.timeout_error();
                    self.fail_waiter(
                        c.waiter,
                        c.started,
                        error,
                        ConnectionCheckOutFailedReason::Timeout,
                        now,
                    );
                }
                Some(c) => {
                    // Give the request its place back at the head of the queue (its
                    // wait-queue timeout, spent, no longer applies; its own deadline does).
                    self.enqueue(
                        Waiter {
                            id: c.waiter,
                            started: c.started,
                            deadline: c.deadline,
                            own_deadline: c.deadline,
                        },
                        true,
                    );
                }
                None => {}
            }
        } else if let Some(c) = requester {
            self.deliver(c.waiter, c.started, conn, meta, now);
        } else {
            self.offer(conn, meta, now);
        }
        self.maintain(now);
        Ok(())
    }

    fn pending_pos(&self, ticket: &Establishing) -> Option<usize> {
        if ticket.pool_id != self.pool_id {
            return None;
        }
        self.pending.iter().position(|p| p.id == ticket.id)
    }

    /// Whether the connection of `ticket` is being established with no request waiting for it
    /// (a minPoolSize connection, or one whose request was abandoned or timed out): its failure
    /// should go to the background error handler (SDAM), as nobody else will see it.
    pub fn is_unclaimed(&self, ticket: &Establishing) -> bool {
        self.pending_pos(ticket)
            .and_then(|pos| self.pending.get(pos))
            .is_some_and(|p| p.requester.is_none())
    }

    /// Establishing the connection of `ticket` failed with `error`; `overloaded` says whether
    /// the error may signal an overloaded server (network error or timeout during connect or
    /// `hello`), which adds the `SystemOverloadedError` and `RetryableError` labels. Emits
    /// `ConnectionClosed` (reason `error`) and, if a request was waiting for this connection,
    /// `ConnectionCheckOutFailed` (reason `connectionError`). Returns whether the pool expected
    /// this connection.
    pub fn handle_establish_failed(
        &mut self,
        ticket: Establishing,
        error: EventError,
        overloaded: bool,
        now: Instant,
    ) -> bool {
        let Some(pos) = self.pending_pos(&ticket) else {
            return false;
        };
        let p = self.pending.remove(pos);
        let pool_error = PoolError::Establish {
            address: self.address.clone(),
            source: error.clone(),
            overloaded,
        };
        self.fail_pending(p, pool_error, Some(error), now);
        self.maintain(now);
        true
    }

    fn fail_pending(
        &mut self,
        p: Pending,
        pool_error: PoolError,
        event_error: Option<EventError>,
        now: Instant,
    ) {
        self.emit_closed(p.id, ConnectionClosedReason::Error, event_error);
        match self.take_covered(p.requester) {
            Some(c) => self.fail_waiter(
                c.waiter,
                c.started,
                pool_error,
                ConnectionCheckOutFailedReason::ConnectionError,
                now,
            ),
            None => {
                self.populate_after = Some(now.checked_add(POPULATE_BACKOFF).unwrap_or(now));
                self.timeout_dirty = true;
            }
        }
    }

    /// A checked-out connection comes back. Emits `ConnectionCheckedIn`, then closes it if the
    /// pool is closed or the connection perished (stale or expired), else makes it available
    /// (to the oldest waiting request first).
    pub fn handle_checkin(&mut self, conn: CheckedOut<C>, now: Instant) -> Result<(), Rejected<C>> {
        self.checkin(conn, None, now)
    }

    /// A checked-out connection that failed comes back: it is closed with reason `error`.
    pub fn handle_checkin_errored(
        &mut self,
        conn: CheckedOut<C>,
        error: Option<EventError>,
        now: Instant,
    ) -> Result<(), Rejected<C>> {
        self.checkin(conn, Some(error), now)
    }

    fn checkin(
        &mut self,
        conn: CheckedOut<C>,
        errored: Option<Option<EventError>>,
        now: Instant,
    ) -> Result<(), Rejected<C>> {
        if conn.meta.pool_id != self.pool_id {
            return Err(Rejected {
                error: PoolError::ForeignConnection { id: conn.meta.id.0 },
                conn,
            });
        }
        let CheckedOut { conn, meta } = conn;
        self.in_use = self.in_use.saturating_sub(1);
        self.emit(|address| {
            CmapEvent::ConnectionCheckedIn(ConnectionCheckedInEvent {
                address,
                connection_id: meta.id,
            })
        });
        let reason = if self.state == PoolState::Closed {
            Some((ConnectionClosedReason::PoolClosed, None))
        } else if let Some(error) = errored {
            Some((ConnectionClosedReason::Error, error))
        } else {
            self.perished(&meta, None, now).map(|r| (r, None))
        };
        match reason {
            Some((reason, error)) => {
                self.close_conn(conn, &meta, reason, error);
                self.maintain(now);
            }
            None => self.offer(conn, meta, now),
        }
        Ok(())
    }

    /// Marks the pool ready (from paused only): emits `PoolReady`, then starts populating.
    pub fn ready(&mut self, now: Instant) {
        if self.state != PoolState::Paused {
            return;
        }
        self.state = PoolState::Ready;
        self.emit(|address| CmapEvent::PoolReady(PoolReadyEvent { address }));
        self.maintain(now);
    }

    /// Clears the pool.
    ///
    /// Without `service_id` (or when not load-balanced): bumps the generation (every current
    /// connection becomes stale), pauses the pool, emits `PoolCleared` unless the pool was
    /// already paused, fails every waiting request with a retryable `PoolCleared` error
    /// (carrying `cause`), and schedules a background run at once to close stale available
    /// connections. With `interrupt_in_use`, connections being established are closed and
    /// in-use ones of the old generations are reported interrupted.
    ///
    /// With a `service_id` in load-balanced mode: bumps that service's generation only and
    /// emits `PoolCleared` with it; the pool is not paused and waiters are not failed.
    pub fn clear(
        &mut self,
        service_id: Option<ServiceId>,
        interrupt_in_use: bool,
        cause: Option<EventError>,
        now: Instant,
    ) {
        if self.state == PoolState::Closed {
            return;
        }
        self.bg_due = Some(now);
        self.timeout_dirty = true;
        if let (true, Some(s)) = (self.load_balanced, service_id) {
            if let Some(e) = self.services.get_mut(&s) {
                e.generation = e.generation.next();
                if interrupt_in_use {
                    e.interrupt_below = e.generation;
                }
            }
            if interrupt_in_use {
                self.interrupt_epoch += 1;
            }
            self.emit(|address| {
                CmapEvent::PoolCleared(PoolClearedEvent {
                    address,
                    service_id: Some(s),
                    interrupt_in_use_connections: interrupt_in_use,
                })
            });
            return;
        }
        let was_paused = self.state == PoolState::Paused;
        self.generation = self.generation.next();
        if interrupt_in_use {
            self.interrupt_below = self.generation;
            self.interrupt_epoch += 1;
        }
        if cause.is_some() {
            self.clear_cause = cause;
        }
        if !self.load_balanced {
            self.state = PoolState::Paused;
        }
        if !was_paused {
            self.emit(|address| {
                CmapEvent::PoolCleared(PoolClearedEvent {
                    address,
                    service_id: None,
                    interrupt_in_use_connections: interrupt_in_use,
                })
            });
        }
        let error = self.cleared_error();
        if interrupt_in_use {
            for p in std::mem::take(&mut self.pending) {
                self.emit_closed(p.id, ConnectionClosedReason::Stale, None);
                self.actions.push_back(Action::CancelEstablish { id: p.id });
                if let Some(c) = self.take_covered(p.requester) {
                    self.fail_waiter(
                        c.waiter,
                        c.started,
                        error.clone(),
                        ConnectionCheckOutFailedReason::ConnectionError,
                        now,
                    );
                }
            }
        }
        if self.load_balanced {
            self.maintain(now);
            return;
        }
        self.fail_all_waiters(&error, ConnectionCheckOutFailedReason::ConnectionError, now);
    }

    fn fail_all_waiters(
        &mut self,
        error: &PoolError,
        reason: ConnectionCheckOutFailedReason,
        now: Instant,
    ) {
        let mut all: Vec<(u64, Instant)> = Vec::new();
        for c in std::mem::take(&mut self.covered) {
            self.release_pending(c.conn);
            all.push((c.waiter, c.started));
        }
        all.extend(self.queue.drain(..).map(|w| (w.id, w.started)));
        all.sort_by_key(|(id, _)| *id);
        self.deadlines.clear();
        for (id, started) in all {
            self.fail_waiter(id, started, error.clone(), reason, now);
        }
    }

    /// Closes the pool: closes every available connection (reason `poolClosed`), abandons the
    /// ones being established, emits `PoolClosed`, and fails every waiting request with
    /// `PoolClosed`. In-use connections are closed when checked in.
    pub fn close(&mut self, now: Instant) {
        if self.state == PoolState::Closed {
            return;
        }
        self.state = PoolState::Closed;
        while let Some(idle) = self.idle.pop_front() {
            self.close_conn(
                idle.conn,
                &idle.meta,
                ConnectionClosedReason::PoolClosed,
                None,
            );
        }
        for p in std::mem::take(&mut self.pending) {
            self.emit_closed(p.id, ConnectionClosedReason::PoolClosed, None);
            self.actions.push_back(Action::CancelEstablish { id: p.id });
        }
        self.emit(|address| CmapEvent::PoolClosed(PoolClosedEvent { address }));
        let error = self.closed_error();
        self.fail_all_waiters(&error, ConnectionCheckOutFailedReason::PoolClosed, now);
        self.bg_due = None;
        self.populate_after = None;
    }

    /// The background duties due at `now`: fail requests past their deadline (wait-queue
    /// timeout while queued, their own deadline while queued or covered; a covered request's
    /// connection stays for the next request or the pool), abandon establishments past the
    /// connect timeout, close perished available connections (stale, idle, expired), and
    /// populate to minPoolSize.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == PoolState::Closed {
            return;
        }
        while let Some(&(d, id)) = self.deadlines.first() {
            if d > now {
                break;
            }
            self.deadlines.pop_first();
            let started = if let Some(pos) = self.queue.iter().position(|w| w.id == id) {
                self.queue.remove(pos).map(|w| w.started)
            } else if let Some(pos) = self.covered.iter().position(|c| c.waiter == id) {
                let c = self.covered.remove(pos);
                self.release_pending(c.conn);
                Some(c.started)
            } else {
                None
            };
            if let Some(started) = started {
                let error = self.timeout_error();
                self.fail_waiter(
                    id,
                    started,
                    error,
                    ConnectionCheckOutFailedReason::Timeout,
                    now,
                );
            }
        }
        if let Some(after) = self.connect_timeout {
            while let Some(pos) = self
                .pending
                .iter()
                .position(|p| p.deadline.is_some_and(|d| d <= now))
            {
                let p = self.pending.remove(pos);
                let error = PoolError::ConnectTimeout {
                    address: self.address.clone(),
                    after,
                };
                self.actions.push_back(Action::CancelEstablish { id: p.id });
                self.fail_pending(p, error.clone(), Some(EventError::new(error)), now);
            }
        }
        self.bg_due = None;
        let mut kept = VecDeque::with_capacity(self.idle.len());
        while let Some(idle) = self.idle.pop_front() {
            match self.perished(&idle.meta, Some(idle.since), now) {
                Some(reason) => self.close_conn(idle.conn, &idle.meta, reason, None),
                None => kept.push_back(idle),
            }
        }
        self.idle = kept;
        self.maintain(now);
    }
}

#[cfg(test)]
mod tests;
