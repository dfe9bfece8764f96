//! A connection checked out of a server's pool, as the executor holds it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use mongo_events::EventError;
use mongo_pool::{Interruption, PooledConnection};

use super::{Establisher, Server};
use crate::conn::Connection;
use crate::error::Error;

/// A checked-out connection. Dropping it returns the connection to its pool, unless a network
/// error (or a dropped future in the middle of a command) left it unusable: then it is
/// closed.
pub struct PooledConn {
    pub(super) inner: PooledConnection<Establisher>,
    pub(super) server: Arc<Server>,
}

impl std::fmt::Debug for PooledConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledConn")
            .field("conn", &*self.inner)
            .finish()
    }
}

impl std::ops::Deref for PooledConn {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.inner
    }
}

impl std::ops::DerefMut for PooledConn {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.inner
    }
}

impl PooledConn {
    /// Splits the checked-out connection into the connection itself (for the command's I/O)
    /// and the pool's [`Interruption`] watch, which resolves when a clear with
    /// `interruptInUseConnections` covers it, so that the two can be raced in a `select!`.
    /// The pool's guard is the one source of truth about interruption.
    pub(crate) fn split_for_io(&mut self) -> (&mut Connection, Interruption<'_, Establisher>) {
        self.inner.split()
    }

    /// Whether a clear with `interruptInUseConnections` interrupted this connection (one
    /// atomic load unless an interrupting clear happened since the check-out).
    pub(crate) fn is_interrupted(&self) -> bool {
        self.inner.is_interrupted()
    }

    /// Fails the connection after an interruption: it is closed (not returned to its pool)
    /// and the operation gets the pool's retryable `PoolClearedError` for interrupted
    /// connections.
    pub(crate) fn interrupt(&mut self) -> Error {
        let pool_error = self.inner.interrupted_error();
        let error = Error::from(pool_error).with_address(&self.server.address);
        self.inner.fail_in_flight(&error);
        self.inner.close();
        self.inner.mark_errored_with(EventError::new(error.clone()));
        error
    }
}

impl PooledConn {
    /// The liveness check before a check-out hands the connection out: one idle for at
    /// least the options' `idle_check_threshold` is dead if its peer closed or reset it.
    pub(super) fn is_dead_after_idling(&self) -> bool {
        match self.inner.options().idle_check_threshold {
            Some(threshold) => self.inner.idle_time() >= threshold && self.inner.peer_closed(),
            None => false,
        }
    }

    /// Closes a connection the liveness check found dead (CMAP reason `error`), without SDAM
    /// error handling: one dead idle socket says nothing about the server.
    pub(super) fn discard_dead(mut self) {
        let error = Error::io(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "the server closed the idle connection",
        ))
        .with_address(&self.server.address);
        self.inner.close();
        self.inner.mark_errored_with(EventError::new(error));
    }
}

impl Drop for PooledConn {
    fn drop(&mut self) {
        if !self.inner.is_reusable() && !self.inner.is_errored() {
            self.inner.mark_errored();
        }
        self.server.operations.fetch_sub(1, Ordering::Relaxed);
    }
}
