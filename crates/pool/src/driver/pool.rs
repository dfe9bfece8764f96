//! [`Pool`], the handle users hold (and [`WeakPool`], which does not keep the pool alive):
//! creating the pool and its background task, starting check-outs, ready, clear and close,
//! and the pool's counts.
#![allow(
    clippy::disallowed_methods,
    reason = "creating a pool spawns its background task"
)]

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Weak};
use std::time::Instant;

use mongo_events::{EventError, Generation, Listeners, ServerAddress, ServiceId};
use parking_lot::{Mutex, RwLock};
use tokio::runtime::Handle;
use tokio::sync::Notify;

use super::shared::{IdMap, Shared, State, background, clock};
use super::{Checkout, Establish};
use crate::{PoolCore, PoolError, PoolOptions, PoolState, PoolStats};

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
        // The background task logs inside the span the pool was created in, so that a caller can
        // attribute its log messages (to one client of several, for example).
        runtime.spawn(tracing::Instrument::instrument(
            background(Arc::downgrade(&shared), bg_notify),
            tracing::Span::current(),
        ));
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
        *self.shared.error_handler.write() = Some((Arc::new(handler), false));
    }

    /// Sets the handler for every establishment error, those of check-outs included (it
    /// replaces a handler set by [`Pool::on_background_error`]). SDAM's error handling for
    /// the handshake: the handler runs in the establishment task, without the pool's lock
    /// held, before the connection's `ConnectionClosed` event and before the request waiting
    /// for the connection fails; a clear it makes comes first in the events and leaves that
    /// request to fail with the establishment's own error (not with `PoolCleared`).
    pub fn on_establish_error(&self, handler: impl Fn(&PoolError) + Send + Sync + 'static) {
        *self.shared.error_handler.write() = Some((Arc::new(handler), true));
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

    /// The generation of `service_id`'s connections (load-balanced mode; see
    /// [`PoolCore::service_generation`](crate::PoolCore::service_generation)).
    pub fn service_generation(&self, service_id: ServiceId) -> Generation {
        self.shared.lock().core.service_generation(service_id)
    }

    /// The pool's state.
    pub fn state(&self) -> PoolState {
        self.shared.lock().core.state()
    }
}
