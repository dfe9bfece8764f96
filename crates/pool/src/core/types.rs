//! The values the pool core hands out and takes back: its state, the names of waiting
//! requests and establishments, checked-out connections and their metadata, the answers to
//! a check-out request, the actions for the driver, and the pool's counts.

use std::time::Instant;

use mongo_events::cmap::ConnectionClosedReason;
use mongo_events::{ConnectionId, Generation, ServiceId};

#[cfg(doc)]
use super::PoolCore;
use crate::PoolError;

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
    pub(super) pool: u64,
    pub(super) seq: u64,
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
    pub(super) id: ConnectionId,
    pub(super) generation: Generation,
    pub(super) pool_id: u64,
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
    pub(super) id: ConnectionId,
    pub(super) generation: Generation,
    pub(super) pool_generation: Generation,
    pub(super) service_id: Option<ServiceId>,
    pub(super) created_at: Instant,
    pub(super) pool_id: u64,
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
    pub(super) conn: C,
    pub(super) meta: ConnectionMeta,
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
