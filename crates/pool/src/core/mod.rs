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
//!
//! The files: `types` holds the values the core hands out (actions, tickets, check-outs,
//! stats); `checkout` serves check-out requests, the FIFO queue and check-ins; `establish`
//! creates connections and takes their outcomes back; `lifecycle` is ready, clear and close
//! (with the generation rules a clear sets up); `timeout` is deadlines, expiry and the
//! background run; `tests` runs them on a virtual clock. This file holds the state they share
//! and the output queues.

mod checkout;
mod establish;
mod lifecycle;
mod timeout;
mod types;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mongo_events::cmap::*;
use mongo_events::{ConnectionId, EventError, Generation, ServerAddress, ServiceId};

use crate::{PoolError, PoolOptions, log};

pub use types::{
    Action, CheckedOut, CheckoutStart, ConnectionMeta, Establishing, PoolState, PoolStats,
    Rejected, WaiterId,
};

/// How long the pool waits before populating again after a background establishment failed
/// (the failure went to the error handler, which normally clears the pool).
pub const POPULATE_BACKOFF: Duration = Duration::from_millis(500);

static NEXT_POOL_ID: AtomicU64 = AtomicU64::new(1);

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
    /// Its establishment failed and the driver is reporting the error (see
    /// [`PoolCore::hold_failed_establishment`]): a clear leaves its request attached.
    failing: bool,
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

    /// The generation of `service_id`'s connections (load-balanced mode): bumped by each clear
    /// of that service. Generation 0 for a service the pool has no connection to.
    pub fn service_generation(&self, service_id: ServiceId) -> Generation {
        self.services
            .get(&service_id)
            .map_or(Generation(0), |e| e.generation)
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
}

#[cfg(test)]
mod tests;
