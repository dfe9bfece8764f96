//! The state every handle of a pool shares: the core under a short mutex, the slots where
//! waiting check-outs find their answer, the establishment tasks; carrying out the core's
//! actions once the lock is released, delivering events in order, running establishments,
//! and the background task that sleeps until the core's next deadline.
#![allow(
    clippy::disallowed_methods,
    reason = "the driver owns the clock and spawns the establishment and background tasks"
)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::Waker;
use std::time::Instant;

use mongo_events::cmap::CmapEvent;
use mongo_events::{EventError, Listeners, ServerAddress};
use parking_lot::{Mutex, MutexGuard, RwLock};
use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::Establish;
use crate::{Action, CheckedOut, Establishing, PoolCore, PoolError, PoolState};

/// A hasher for sequential ids (waiters, connections): cheap and well spread.
#[derive(Default)]
pub(super) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

pub(super) type IdMap<V> = HashMap<u64, V, std::hash::BuildHasherDefault<IdHasher>>;

/// An establishment-error handler (see [`Pool::on_establish_error`] and
/// [`Pool::on_background_error`]).
pub(super) type ErrorHandler = Arc<dyn Fn(&PoolError) + Send + Sync>;

/// The registered handler and whether it wants every establishment error (`true`) or only
/// those nobody else sees (`false`).
pub(super) type ErrorHandlerSlot = Option<(ErrorHandler, bool)>;

pub(super) struct Slot<C> {
    pub(super) result: Option<Result<CheckedOut<C>, PoolError>>,
    pub(super) waker: Option<Waker>,
}

pub(super) struct State<C> {
    pub(super) core: PoolCore<C>,
    pub(super) slots: IdMap<Slot<C>>,
    pub(super) tasks: IdMap<AbortHandle>,
    pub(super) armed: Option<Instant>,
    pub(super) delivering: bool,
    /// The buffer events are delivered from, kept between deliveries.
    pub(super) event_buf: Vec<CmapEvent>,
}

impl<C> State<C> {
    /// Takes the queued events for delivery outside the lock, unless none are queued or
    /// another task is delivering (it delivers these too, in order).
    fn take_events(&mut self) -> Option<Vec<CmapEvent>> {
        if self.delivering || !self.core.has_events() {
            return None;
        }
        let mut batch = std::mem::take(&mut self.event_buf);
        batch.extend(std::iter::from_fn(|| self.core.poll_event()));
        self.delivering = true;
        Some(batch)
    }
}

pub(super) struct Shared<E: Establish> {
    pub(super) state: Mutex<State<E::Conn>>,
    pub(super) establisher: E,
    pub(super) listeners: Listeners,
    pub(super) address: ServerAddress,
    pub(super) runtime: Handle,
    pub(super) bg_notify: Arc<Notify>,
    pub(super) interrupt_epoch: AtomicU64,
    pub(super) interrupt_notify: Notify,
    pub(super) error_handler: RwLock<ErrorHandlerSlot>,
    /// Whether the hot path may skip reading the clock (no listener, no time-based option).
    pub(super) clock_optional: bool,
    /// The instant used when the clock is not needed.
    pub(super) base: Instant,
}

impl<E: Establish> Drop for Shared<E> {
    fn drop(&mut self) {
        self.bg_notify.notify_one();
    }
}

/// What to do once the lock is released.
struct Effects<C> {
    wakers: Vec<Waker>,
    closes: Vec<C>,
    notify_bg: bool,
    events: Option<Vec<CmapEvent>>,
    interrupted: bool,
}

impl<C> Effects<C> {
    fn new() -> Self {
        Effects {
            wakers: Vec::new(),
            closes: Vec::new(),
            notify_bg: false,
            events: None,
            interrupted: false,
        }
    }
}

#[inline]
pub(super) fn clock() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl<E: Establish> Shared<E> {
    /// The instant for a check-out or check-in: the clock only when something depends on it
    /// (events, log messages, wait-queue, idle, lifetime or connect timeouts).
    #[inline]
    pub(super) fn hot_now(&self) -> Instant {
        if self.clock_optional && !crate::log::enabled() {
            self.base
        } else {
            clock()
        }
    }

    #[inline]
    pub(super) fn lock(&self) -> MutexGuard<'_, State<E::Conn>> {
        self.state.lock()
    }

    /// Drains the core's actions under the lock, then releases it and does the rest.
    #[inline]
    pub(super) fn after(self: &Arc<Self>, mut st: MutexGuard<'_, State<E::Conn>>) {
        let changed = st.core.take_timeout_changed();
        if !changed && !st.core.has_output() {
            return;
        }
        self.after_slow(st, changed);
    }

    fn after_slow(self: &Arc<Self>, mut st: MutexGuard<'_, State<E::Conn>>, changed: bool) {
        let mut fx = Effects::new();
        let state = &mut *st;
        while let Some(action) = state.core.poll_action() {
            match action {
                Action::Establish { ticket } => {
                    let id = ticket.id();
                    let shared = Arc::clone(self);
                    let task = self.runtime.spawn(tracing::Instrument::instrument(
                        async move { shared.establish(ticket).await },
                        tracing::Span::current(),
                    ));
                    state.tasks.insert(id.0, task.abort_handle());
                }
                Action::CancelEstablish { id } => {
                    if let Some(task) = state.tasks.remove(&id.0) {
                        task.abort();
                    }
                }
                Action::Deliver { waiter, conn } => match state.slots.get_mut(&waiter.seq()) {
                    Some(slot) => {
                        slot.result = Some(Ok(conn));
                        fx.wakers.extend(slot.waker.take());
                    }
                    None => {
                        // Cannot happen (a request leaves the core and its slot together);
                        // give the connection back rather than lose it.
                        let now = clock();
                        if let Err(rejected) = state.core.handle_checkin(conn, now) {
                            fx.closes.push(rejected.conn.into_conn());
                        }
                    }
                },
                Action::FailWaiter { waiter, error } => {
                    if let Some(slot) = state.slots.get_mut(&waiter.seq()) {
                        slot.result = Some(Err(error));
                        fx.wakers.extend(slot.waker.take());
                    }
                }
                Action::Close { conn, .. } => fx.closes.push(conn),
            }
        }
        if changed {
            let t = state.core.poll_timeout();
            if let Some(t) = t {
                if state.armed.is_none_or(|a| t < a) {
                    state.armed = Some(t);
                    fx.notify_bg = true;
                }
            }
        }
        let epoch = state.core.interrupt_epoch();
        if epoch != self.interrupt_epoch.load(Ordering::Relaxed) {
            self.interrupt_epoch.store(epoch, Ordering::Release);
            fx.interrupted = true;
        }
        fx.events = state.take_events();
        drop(st);
        // Events first: a check-out woken here must not return (and its caller look at the
        // events) before its `ConnectionCheckedOut` / `ConnectionCheckOutFailed` and the
        // events before it are delivered. Its own flush cannot deliver them while this task
        // holds the delivery turn.
        if let Some(batch) = fx.events {
            self.deliver_events(batch);
        }
        for w in fx.wakers {
            w.wake();
        }
        drop(fx.closes);
        if fx.notify_bg {
            self.bg_notify.notify_one();
        }
        if fx.interrupted {
            self.interrupt_notify.notify_waiters();
        }
    }

    /// Delivers queued events in order; one task delivers at a time.
    pub(super) fn flush_events(&self) {
        let batch = self.lock().take_events();
        if let Some(batch) = batch {
            self.deliver_events(batch);
        }
    }

    /// Delivers `batch` (taken with [`State::take_events`]) outside the lock, then the events
    /// queued meanwhile; gives the buffer back for the next delivery.
    fn deliver_events(&self, mut batch: Vec<CmapEvent>) {
        loop {
            for e in &batch {
                self.listeners.deliver_pool(e);
            }
            batch.clear();
            let mut st = self.lock();
            st.delivering = false;
            if !st.core.has_events() {
                st.event_buf = batch;
                return;
            }
            batch.extend(std::iter::from_fn(|| st.core.poll_event()));
            st.delivering = true;
        }
    }

    async fn establish(self: Arc<Self>, ticket: Establishing) {
        let id = ticket.id();
        let result = self.establisher.establish(id, ticket.generation()).await;
        match result {
            Ok(conn) => {
                let service_id = self.establisher.service_id(&conn);
                let mut st = self.lock();
                st.tasks.remove(&id.0);
                let leftover = st
                    .core
                    .handle_established(ticket, conn, service_id, clock())
                    .err();
                self.after(st);
                drop(leftover);
            }
            Err(e) => {
                let overloaded = self.establisher.is_overload_signal(&e);
                let error = EventError::new(e);
                let handler = self.error_handler.read().clone();
                if let Some((handler, every)) = handler {
                    let report = {
                        let mut st = self.lock();
                        let unclaimed = st.core.is_unclaimed(&ticket);
                        // A clear the handler makes must not take the request away from
                        // this error.
                        st.core.hold_failed_establishment(&ticket) && (every || unclaimed)
                    };
                    if report {
                        handler(&PoolError::Establish {
                            address: self.address.clone(),
                            source: error.clone(),
                            overloaded,
                        });
                    }
                }
                let mut st = self.lock();
                st.tasks.remove(&id.0);
                st.core
                    .handle_establish_failed(ticket, error, overloaded, clock());
                self.after(st);
            }
        }
    }
}

/// The background task: sleeps until the core's next deadline (or a nudge), then runs
/// `handle_timeout`. Ends when the pool is closed or dropped.
pub(super) async fn background<E: Establish>(weak: Weak<Shared<E>>, notify: Arc<Notify>) {
    loop {
        let deadline = {
            let Some(shared) = weak.upgrade() else { return };
            let mut st = shared.lock();
            if st.core.state() == PoolState::Closed {
                return;
            }
            st.armed = st.core.poll_timeout();
            st.armed
        };
        match deadline {
            Some(d) => {
                tokio::select! {
                    () = notify.notified() => continue,
                    () = tokio::time::sleep_until(tokio::time::Instant::from_std(d)) => {}
                }
            }
            None => {
                notify.notified().await;
                continue;
            }
        }
        let Some(shared) = weak.upgrade() else { return };
        let mut st = shared.lock();
        st.core.handle_timeout(clock());
        st.armed = None;
        shared.after(st);
    }
}
