//! The tokio driver: [`Pool`] runs a [`PoolCore`] under a short mutex.
//!
//! A check-out from a warm pool is one lock, a pop and an unlock in the caller's task: no
//! channel, no worker task. Establishment runs in spawned tasks (at most maxConnecting at a
//! time, as the core decides); a background task sleeps until the core's next deadline
//! (wait-queue timeouts, idle and lifetime expiry, connect timeouts, minPoolSize population,
//! the run scheduled by a clear). Events are delivered synchronously, in the order the core
//! produced them, outside the lock.
//!
//! Cancellation: dropping a check-out future at any await point removes its request; a
//! connection being established for it stays in the pool for the next request; a connection
//! handed to it but not yet taken goes back to the pool. [`Pool::checkout_until`] adds a
//! deadline to a check-out (an operation timeout) with the same guarantees.
//!
//! Interruption (CMAP `interruptInUseConnections`): [`PooledConnection::split`] lends the
//! connection mutably beside an [`Interruption`], whose `is_interrupted` is one atomic load
//! unless an interrupting clear happened since the check-out, and whose `wait` resolves once
//! the connection is interrupted (race it against the operation's I/O).
#![allow(
    clippy::disallowed_methods,
    reason = "the driver owns the clock and spawns the establishment and background tasks"
)]

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use mongo_events::cmap::CmapEvent;
use mongo_events::{ConnectionId, EventError, Generation, Listeners, ServerAddress, ServiceId};
use parking_lot::{Mutex, MutexGuard, RwLock};
use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::{
    Action, CheckedOut, CheckoutStart, ConnectionMeta, Establishing, PoolCore, PoolError,
    PoolOptions, PoolState, PoolStats, WaiterId,
};

/// Creates the pooled objects: opens and sets up a connection (for MongoDB: TCP, TLS, the
/// `hello` handshake, compression negotiation, authentication).
///
/// ```
/// use mongo_events::{ConnectionId, Generation};
/// use mongo_pool::Establish;
///
/// struct Numbers;
/// impl Establish for Numbers {
///     type Conn = u64;
///     type Error = std::io::Error;
///     async fn establish(&self, id: ConnectionId, _g: Generation) -> Result<u64, std::io::Error> {
///         Ok(id.0 * 10)
///     }
/// }
/// ```
pub trait Establish: Send + Sync + 'static {
    /// The pooled object.
    type Conn: Send + 'static;
    /// Why establishing failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Establishes connection `id` of pool generation `generation`. The future is run in a
    /// spawned task and may be dropped (connect timeout, interrupting clear, close).
    fn establish(
        &self,
        id: ConnectionId,
        generation: Generation,
    ) -> impl Future<Output = Result<Self::Conn, Self::Error>> + Send;

    /// The serviceId the connection's handshake reported (load-balanced mode); the pool then
    /// gives the connection that service's generation. Default: none.
    fn service_id(&self, _conn: &Self::Conn) -> Option<ServiceId> {
        None
    }

    /// Whether `error` may signal an overloaded server: a network error or network timeout
    /// during the connect or the `hello` exchange (including I/O errors inside the TLS
    /// handshake), but not DNS failures, certificate or hostname errors, SOCKS5 errors, or
    /// authentication errors after `hello`. Such errors get the `SystemOverloadedError` and
    /// `RetryableError` labels. Default: `false`.
    fn is_overload_signal(&self, _error: &Self::Error) -> bool {
        false
    }
}

/// A hasher for sequential ids (waiters, connections): cheap and well spread.
#[derive(Default)]
struct IdHasher(u64);

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

type IdMap<V> = HashMap<u64, V, std::hash::BuildHasherDefault<IdHasher>>;

/// A background-error handler (see [`Pool::on_background_error`]).
type ErrorHandler = Arc<dyn Fn(&PoolError) + Send + Sync>;

struct Slot<C> {
    result: Option<Result<CheckedOut<C>, PoolError>>,
    waker: Option<Waker>,
}

struct State<C> {
    core: PoolCore<C>,
    slots: IdMap<Slot<C>>,
    tasks: IdMap<AbortHandle>,
    armed: Option<Instant>,
    delivering: bool,
    /// The buffer events are delivered from, kept between deliveries.
    event_buf: Vec<CmapEvent>,
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

struct Shared<E: Establish> {
    state: Mutex<State<E::Conn>>,
    establisher: E,
    listeners: Listeners,
    address: ServerAddress,
    runtime: Handle,
    bg_notify: Arc<Notify>,
    interrupt_epoch: AtomicU64,
    interrupt_notify: Notify,
    error_handler: RwLock<Option<ErrorHandler>>,
    /// Whether the hot path may skip reading the clock (no listener, no time-based option).
    clock_optional: bool,
    /// The instant used when the clock is not needed.
    base: Instant,
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
fn clock() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl<E: Establish> Shared<E> {
    /// The instant for a check-out or check-in: the clock only when something depends on it
    /// (events, log messages, wait-queue, idle, lifetime or connect timeouts).
    #[inline]
    fn hot_now(&self) -> Instant {
        if self.clock_optional && !crate::log::enabled() {
            self.base
        } else {
            clock()
        }
    }

    #[inline]
    fn lock(&self) -> MutexGuard<'_, State<E::Conn>> {
        self.state.lock()
    }

    /// Drains the core's actions under the lock, then releases it and does the rest.
    #[inline]
    fn after(self: &Arc<Self>, mut st: MutexGuard<'_, State<E::Conn>>) {
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
                    let task = self
                        .runtime
                        .spawn(async move { shared.establish(ticket).await });
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
        if let Some(batch) = fx.events {
            self.deliver_events(batch);
        }
    }

    /// Delivers queued events in order; one task delivers at a time.
    fn flush_events(&self) {
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
                if let Some(handler) = handler {
                    let unclaimed = self.lock().core.is_unclaimed(&ticket);
                    if unclaimed {
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
async fn background<E: Establish>(weak: Weak<Shared<E>>, notify: Arc<Notify>) {
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

/// A CMAP connection pool on tokio, generic over what it pools. Cloning is cheap (a shared
/// handle).
pub struct Pool<E: Establish> {
    shared: Arc<Shared<E>>,
}

impl<E: Establish> Clone for Pool<E> {
    fn clone(&self) -> Self {
        Pool {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<E: Establish> std::fmt::Debug for Pool<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("address", &self.shared.address)
            .field("stats", &self.stats())
            .finish()
    }
}

/// A pool handle that does not keep the pool alive (for error handlers that clear it).
pub struct WeakPool<E: Establish> {
    shared: Weak<Shared<E>>,
}

impl<E: Establish> Clone for WeakPool<E> {
    fn clone(&self) -> Self {
        WeakPool {
            shared: Weak::clone(&self.shared),
        }
    }
}

impl<E: Establish> WeakPool<E> {
    /// The pool, if it still exists.
    pub fn upgrade(&self) -> Option<Pool<E>> {
        self.shared.upgrade().map(|shared| Pool { shared })
    }
}

impl<E: Establish> Pool<E> {
    /// Creates a pool (paused; call [`Pool::ready`]) and emits `PoolCreated`. Must be called
    /// inside a tokio runtime, which runs the pool's tasks.
    pub fn new(
        address: ServerAddress,
        options: PoolOptions,
        establisher: E,
        listeners: Listeners,
    ) -> Result<Self, PoolError> {
        let runtime = Handle::try_current().map_err(|_| PoolError::NoRuntime)?;
        let clock_optional = !listeners.has_pool()
            && options.effective_wait_queue_timeout().is_none()
            && options.effective_max_idle_time().is_none()
            && options.effective_max_lifetime().is_none()
            && options.effective_connect_timeout().is_none();
        let core = PoolCore::new(address.clone(), options, listeners.has_pool())?;
        let bg_notify = Arc::new(Notify::new());
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                core,
                slots: IdMap::default(),
                tasks: IdMap::default(),
                armed: None,
                delivering: false,
                event_buf: Vec::new(),
            }),
            establisher,
            listeners,
            address,
            runtime: runtime.clone(),
            bg_notify: Arc::clone(&bg_notify),
            interrupt_epoch: AtomicU64::new(0),
            interrupt_notify: Notify::new(),
            error_handler: RwLock::new(None),
            clock_optional,
            base: clock(),
        });
        shared.flush_events();
        runtime.spawn(background(Arc::downgrade(&shared), bg_notify));
        Ok(Pool { shared })
    }

    /// The pool's server.
    pub fn address(&self) -> &ServerAddress {
        &self.shared.address
    }

    /// The establisher the pool was built with.
    pub fn establisher(&self) -> &E {
        &self.shared.establisher
    }

    /// A handle that does not keep the pool alive.
    pub fn downgrade(&self) -> WeakPool<E> {
        WeakPool {
            shared: Arc::downgrade(&self.shared),
        }
    }

    /// Sets the handler for establishment errors nobody else sees: those of minPoolSize
    /// connections and of connections whose check-out was abandoned. CMAP hands them to
    /// SDAM's error handling (which usually clears the pool). The handler runs in the
    /// establishment task, before the connection's `ConnectionClosed` event, without the
    /// pool's lock held (it may call [`Pool::clear`]).
    pub fn on_background_error(&self, handler: impl Fn(&PoolError) + Send + Sync + 'static) {
        *self.shared.error_handler.write() = Some(Arc::new(handler));
    }

    /// Checks a connection out: an available one at once, else waits (FIFO) for one being
    /// returned or established, within waitQueueTimeoutMS. Cancellation-safe: dropping the
    /// future at any point leaves the pool's counts right. The same as
    /// [`Pool::checkout_until`]`(None)`.
    pub fn checkout(&self) -> Checkout<'_, E> {
        self.checkout_until(None)
    }

    /// Checks a connection out like [`Pool::checkout`], failing with
    /// [`PoolError::WaitQueueTimeout`] (event reason `timeout`) once `deadline` passes if no
    /// connection was handed out by then, whether the request is still queued or waiting for
    /// a connection being established for it (that connection then stays for the pool). The
    /// earlier of `deadline` and waitQueueTimeoutMS applies while queued. A deadline already
    /// past still gets an available connection if one can be handed out at once, else fails
    /// at once without waiting.
    ///
    /// `deadline` is read against tokio's clock (`tokio::time::Instant::now().into_std()`),
    /// which is the system's monotonic clock unless tokio's time is paused (tests).
    pub fn checkout_until(&self, deadline: Option<Instant>) -> Checkout<'_, E> {
        Checkout {
            shared: &self.shared,
            deadline,
            waiter: None,
            epoch: 0,
            done: false,
        }
    }

    /// Clears the pool (see [`PoolCore::clear`]): `service_id` in load-balanced mode clears
    /// one service; `interrupt` also interrupts in-use connections and abandons those being
    /// established.
    pub fn clear(&self, service_id: Option<ServiceId>, interrupt: bool) {
        self.clear_with_cause(service_id, interrupt, None);
    }

    /// Clears the pool, recording the error that caused it (waiters get a `PoolCleared` error
    /// naming it).
    pub fn clear_with_cause(
        &self,
        service_id: Option<ServiceId>,
        interrupt: bool,
        cause: Option<EventError>,
    ) {
        let mut st = self.shared.lock();
        st.core.clear(service_id, interrupt, cause, clock());
        self.shared.after(st);
    }

    /// Marks the pool ready (from paused).
    pub fn ready(&self) {
        let mut st = self.shared.lock();
        st.core.ready(clock());
        self.shared.after(st);
    }

    /// Closes the pool: fails waiters, closes idle connections, abandons establishments; in-use
    /// connections are closed when they come back.
    pub fn close(&self) {
        let mut st = self.shared.lock();
        st.core.close(clock());
        self.shared.after(st);
        self.shared.bg_notify.notify_one();
    }

    /// The pool's counts.
    pub fn stats(&self) -> PoolStats {
        self.shared.lock().core.stats()
    }

    /// The pool's generation.
    pub fn generation(&self) -> Generation {
        self.shared.lock().core.generation()
    }

    /// The pool's state.
    pub fn state(&self) -> PoolState {
        self.shared.lock().core.state()
    }
}

/// The future of [`Pool::checkout`] and [`Pool::checkout_until`].
#[must_use = "futures do nothing unless awaited"]
pub struct Checkout<'a, E: Establish> {
    shared: &'a Arc<Shared<E>>,
    deadline: Option<Instant>,
    waiter: Option<WaiterId>,
    /// The driver's interrupt epoch before the request reached the core: not later than the
    /// epoch when the connection is handed out, so an interrupting clear in between is seen.
    epoch: u64,
    done: bool,
}

impl<E: Establish> std::fmt::Debug for Checkout<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkout")
            .field("deadline", &self.deadline)
            .field("waiter", &self.waiter)
            .finish()
    }
}

impl<E: Establish> Future for Checkout<'_, E> {
    type Output = Result<PooledConnection<E>, PoolError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.done {
            return Poll::Ready(Err(PoolError::PoolClosed {
                address: self.shared.address.clone(),
            }));
        }
        let shared = self.shared;
        let Some(waiter) = self.waiter else {
            // Read the clock before taking the lock, not while holding it; a deadline needs
            // the real clock.
            let now = if self.deadline.is_some() {
                clock()
            } else {
                shared.hot_now()
            };
            let epoch = shared.interrupt_epoch.load(Ordering::Acquire);
            self.epoch = epoch;
            let mut st = shared.lock();
            return match st.core.handle_checkout_request(now, self.deadline) {
                CheckoutStart::Ready(conn) => {
                    shared.after(st);
                    self.done = true;
                    Poll::Ready(Ok(PooledConnection::new(Arc::clone(shared), conn, epoch)))
                }
                CheckoutStart::Failed(error) => {
                    shared.after(st);
                    self.done = true;
                    Poll::Ready(Err(error))
                }
                CheckoutStart::Waiting(w) => {
                    st.slots.insert(
                        w.seq(),
                        Slot {
                            result: None,
                            waker: Some(cx.waker().clone()),
                        },
                    );
                    self.waiter = Some(w);
                    shared.after(st);
                    Poll::Pending
                }
            };
        };
        let mut st = shared.lock();
        let Some(slot) = st.slots.get_mut(&waiter.seq()) else {
            drop(st);
            self.done = true;
            return Poll::Ready(Err(PoolError::PoolClosed {
                address: shared.address.clone(),
            }));
        };
        match slot.result.take() {
            Some(result) => {
                st.slots.remove(&waiter.seq());
                drop(st);
                self.done = true;
                let epoch = self.epoch;
                Poll::Ready(
                    result.map(|conn| PooledConnection::new(Arc::clone(shared), conn, epoch)),
                )
            }
            None => {
                match &slot.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => slot.waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }
}

impl<E: Establish> Drop for Checkout<'_, E> {
    fn drop(&mut self) {
        let (Some(waiter), false) = (self.waiter, self.done) else {
            return;
        };
        let mut st = self.shared.lock();
        let Some(slot) = st.slots.remove(&waiter.seq()) else {
            return;
        };
        let now = clock();
        let leftover = match slot.result {
            Some(Ok(conn)) => st.core.handle_checkin(conn, now).err(),
            Some(Err(_)) => None,
            None => {
                let _ = st.core.cancel_waiter(waiter, now);
                None
            }
        };
        self.shared.after(st);
        drop(leftover);
    }
}

/// A checked-out connection. Dereferences to the pooled object; dropping it checks the
/// connection back in (or closes it, if marked errored, perished or the pool is closed).
pub struct PooledConnection<E: Establish> {
    inner: Option<CheckedOut<E::Conn>>,
    shared: Arc<Shared<E>>,
    errored: Option<Option<EventError>>,
    epoch: u64,
}

impl<E: Establish> PooledConnection<E> {
    /// `epoch`: the driver's interrupt epoch loaded before the core handed `conn` out.
    fn new(shared: Arc<Shared<E>>, conn: CheckedOut<E::Conn>, epoch: u64) -> Self {
        PooledConnection {
            inner: Some(conn),
            shared,
            errored: None,
            epoch,
        }
    }

    fn checked_out(&self) -> &CheckedOut<E::Conn> {
        match &self.inner {
            Some(c) => c,
            None => unreachable!("PooledConnection used after drop"),
        }
    }

    fn meta(&self) -> &ConnectionMeta {
        self.checked_out().meta()
    }

    /// The connection's id.
    pub fn id(&self) -> ConnectionId {
        self.meta().id()
    }

    /// The connection's generation.
    pub fn generation(&self) -> Generation {
        self.meta().generation()
    }

    /// The service the connection reached (load-balanced mode).
    pub fn service_id(&self) -> Option<ServiceId> {
        self.meta().service_id()
    }

    /// The pool's server.
    pub fn address(&self) -> &ServerAddress {
        &self.shared.address
    }

    /// Marks the connection as failed: it is closed (reason `error`) instead of returned.
    pub fn mark_errored(&mut self) {
        self.errored = Some(None);
    }

    /// Marks the connection as failed with `error`, which its `ConnectionClosed` event carries.
    pub fn mark_errored_with(&mut self, error: EventError) {
        self.errored = Some(Some(error));
    }

    /// Whether the connection was marked errored.
    pub fn is_errored(&self) -> bool {
        self.errored.is_some()
    }

    fn interruption(&self) -> Interruption<'_, E> {
        Interruption {
            shared: &self.shared,
            meta: self.meta(),
            epoch: self.epoch,
        }
    }

    /// The connection, mutably, beside the [`Interruption`] watch of this check-out: the I/O
    /// side races its reads and writes against an interrupting clear without a second borrow
    /// of the guard.
    ///
    /// ```
    /// use mongo_events::{ConnectionId, Generation, Listeners, ServerAddress};
    /// use mongo_pool::{Establish, Pool, PoolError, PoolOptions};
    ///
    /// struct Numbers;
    /// impl Establish for Numbers {
    ///     type Conn = u64;
    ///     type Error = std::io::Error;
    ///     async fn establish(&self, id: ConnectionId, _g: Generation) -> Result<u64, std::io::Error> {
    ///         Ok(id.0)
    ///     }
    /// }
    ///
    /// async fn command(conn: &mut u64) -> u64 {
    ///     *conn += 1; // stands for a write and a read on the socket
    ///     *conn
    /// }
    ///
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    /// # rt.block_on(async {
    /// let pool = Pool::new(ServerAddress::default(), PoolOptions::default(), Numbers, Listeners::new())?;
    /// pool.ready();
    /// let mut guard = pool.checkout().await?;
    /// let (conn, interruption) = guard.split();
    /// let reply = tokio::select! {
    ///     biased;
    ///     reply = command(conn) => Ok(reply),
    ///     () = interruption.wait() => Err(interruption.error()),
    /// };
    /// assert_eq!(reply?, 2);
    /// # Ok::<(), PoolError>(())
    /// # }).unwrap();
    /// ```
    pub fn split(&mut self) -> (&mut E::Conn, Interruption<'_, E>) {
        let Some(inner) = self.inner.as_mut() else {
            unreachable!("PooledConnection used after drop")
        };
        let (conn, meta) = inner.parts_mut();
        let interruption = Interruption {
            shared: &self.shared,
            meta,
            epoch: self.epoch,
        };
        (conn, interruption)
    }

    /// Whether a clear with `interruptInUseConnections` interrupted this connection: its
    /// operation should stop and fail with the retryable [`PoolError::Interrupted`]. Cheap
    /// (one atomic load) unless an interrupting clear happened since the check-out. The same
    /// as [`Interruption::is_interrupted`].
    pub fn is_interrupted(&self) -> bool {
        self.interruption().is_interrupted()
    }

    /// Resolves when the connection is interrupted (use it in a `select!` beside the
    /// operation's I/O, or use [`PooledConnection::split`] when the I/O needs the connection
    /// mutably). Never resolves for a connection that is not interrupted. The same as
    /// [`Interruption::wait`].
    pub async fn interrupted(&self) {
        self.interruption().wait().await;
    }

    /// The error to fail an interrupted operation with.
    pub fn interrupted_error(&self) -> PoolError {
        self.interruption().error()
    }
}

/// Whether a checked-out connection was interrupted by a clear with
/// `interruptInUseConnections` (CMAP), borrowed from its guard beside the connection itself
/// (see [`PooledConnection::split`]). Load-balanced per-service clears interrupt only that
/// service's connections.
pub struct Interruption<'a, E: Establish> {
    shared: &'a Shared<E>,
    meta: &'a ConnectionMeta,
    /// The driver's interrupt epoch when the connection was checked out (or earlier).
    epoch: u64,
}

impl<E: Establish> Clone for Interruption<'_, E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E: Establish> Copy for Interruption<'_, E> {}

impl<E: Establish> std::fmt::Debug for Interruption<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interruption")
            .field("id", &self.meta.id())
            .field("interrupted", &self.is_interrupted())
            .finish()
    }
}

impl<E: Establish> Interruption<'_, E> {
    /// Whether the connection was interrupted: its operation should stop and fail with
    /// [`Interruption::error`]. Cheap (one atomic load) unless an interrupting clear happened
    /// since the check-out; then it asks the pool (one lock).
    pub fn is_interrupted(&self) -> bool {
        if self.shared.interrupt_epoch.load(Ordering::Acquire) == self.epoch {
            return false;
        }
        self.shared.lock().core.is_interrupted(self.meta)
    }

    /// Resolves once the connection is interrupted (at once if it already is); never resolves
    /// otherwise. A clear that lands between the check and the wait is not missed.
    /// Cancellation-safe.
    pub async fn wait(&self) {
        loop {
            let notified = self.shared.interrupt_notify.notified();
            tokio::pin!(notified);
            // Register before checking, so that a clear after the check wakes us.
            notified.as_mut().enable();
            if self.is_interrupted() {
                return;
            }
            notified.await;
        }
    }

    /// The error to fail an interrupted operation with (the retryable
    /// [`PoolError::Interrupted`]).
    pub fn error(&self) -> PoolError {
        PoolError::Interrupted {
            address: self.shared.address.clone(),
        }
    }
}

impl<E: Establish> std::ops::Deref for PooledConnection<E> {
    type Target = E::Conn;
    fn deref(&self) -> &E::Conn {
        self.checked_out().conn()
    }
}

impl<E: Establish> std::ops::DerefMut for PooledConnection<E> {
    fn deref_mut(&mut self) -> &mut E::Conn {
        match &mut self.inner {
            Some(c) => c.conn_mut(),
            None => unreachable!("PooledConnection used after drop"),
        }
    }
}

impl<E: Establish> std::fmt::Debug for PooledConnection<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledConnection")
            .field("id", &self.id())
            .field("generation", &self.generation())
            .field("errored", &self.errored.is_some())
            .finish()
    }
}

impl<E: Establish> Drop for PooledConnection<E> {
    fn drop(&mut self) {
        let Some(conn) = self.inner.take() else {
            return;
        };
        let now = self.shared.hot_now();
        let mut st = self.shared.lock();
        let leftover = match self.errored.take() {
            None => st.core.handle_checkin(conn, now),
            Some(error) => st.core.handle_checkin_errored(conn, error, now),
        }
        .err();
        self.shared.after(st);
        drop(leftover);
    }
}
