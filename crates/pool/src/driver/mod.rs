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

// The files (not in the public docs): this one holds the `Establish` trait; `shared` is the
// state behind every handle (the core under its mutex, the check-out slots, the establishment
// tasks), how the core's actions are carried out and events delivered, and the background
// task; `pool` is the `Pool` handle; `checkout` the `Checkout` future; `guard` the
// `PooledConnection` guard and its `Interruption`.

mod checkout;
mod guard;
mod pool;
mod shared;

use std::future::Future;

use mongo_events::{ConnectionId, Generation, ServiceId};

#[cfg(doc)]
use crate::PoolCore;

pub use checkout::Checkout;
pub use guard::{Interruption, PooledConnection};
pub use pool::{Pool, WeakPool};

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
