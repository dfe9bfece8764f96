//! [`PooledConnection`], the guard of a checked-out connection (drop checks it in, or closes
//! it when marked errored), and [`Interruption`], which tells the I/O side that a clear
//! interrupted the connection.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use mongo_events::{ConnectionId, EventError, Generation, ServerAddress, ServiceId};

use super::Establish;
use super::shared::Shared;
use crate::{CheckedOut, ConnectionMeta, PoolError};

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
    pub(super) fn new(shared: Arc<Shared<E>>, conn: CheckedOut<E::Conn>, epoch: u64) -> Self {
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
