//! The MongoDB CMAP connection pool: a sans-I/O state machine ([`PoolCore`]) and, behind the
//! `tokio` feature, an async driver (`Pool`), generic over what it pools.
//!
//! The core implements every rule of the Connection Monitoring and Pooling specification
//! (maxPoolSize, minPoolSize, maxConnecting, maxIdleTimeMS, waitQueueTimeoutMS, the
//! paused/ready/closed states, generations and load-balanced per-service generations, a FIFO
//! wait queue, clearing with and without interrupting in-use connections, the eleven events and
//! the log messages) plus two knobs from eventlet's `db_pool`: a maximum connection lifetime and
//! an establishment timeout. It performs no I/O and reads no clock: time is a parameter. Most
//! users want the driver, and most of those want the `mongo-client` crate, which pools its real
//! connections with it.
//!
//! Log messages go to `tracing` target `mongo::connection` at `DEBUG`, with the logging
//! specification's message texts and field names (`serverHost`, `serverPort`,
//! `driverConnectionId`, `durationMS`, `reason`, `error`, ...).
//!
//! # The driver (feature `tokio`)
//!
//! `Pool::checkout` (or `Pool::checkout_until` with a deadline, for operation timeouts) gives
//! a `PooledConnection` guard: it dereferences to the connection, checks it back in when
//! dropped (closes it when marked errored), and through `PooledConnection::split` lends the
//! connection mutably beside an `Interruption` watch, to race the operation's I/O against a
//! clear that interrupts in-use connections.
//!
//! # The core
//!
//! A driver of its own feeds [`PoolCore`] inputs with the current instant and carries out its
//! [`Action`]s. Check-out requests may carry a deadline; establishments are named by an
//! [`Establishing`] ticket that goes back to the core with the outcome:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use mongo_events::ServerAddress;
//! use mongo_pool::{Action, CheckoutStart, PoolCore, PoolError, PoolOptions};
//!
//! let now = Instant::now();
//! let mut core: PoolCore<String> =
//!     PoolCore::new(ServerAddress::default(), PoolOptions::default(), false)?;
//! core.ready(now);
//! let deadline = Some(now + Duration::from_secs(1));
//! let CheckoutStart::Waiting(me) = core.handle_checkout_request(now, deadline) else {
//!     unreachable!("an empty pool makes the request wait")
//! };
//! while let Some(action) = core.poll_action() {
//!     match action {
//!         Action::Establish { ticket } => {
//!             // Connect, handshake... then report the outcome with the ticket.
//!             let conn = format!("connection {}", ticket.id());
//!             core.handle_established(ticket, conn, None, now).expect("expected");
//!         }
//!         Action::Deliver { waiter, conn } => {
//!             assert_eq!(waiter, me);
//!             // Use the connection, then check it back in.
//!             core.handle_checkin(conn, now).expect("ours");
//!         }
//!         _ => {}
//!     }
//! }
//! assert_eq!(core.stats().available, 1);
//! # Ok::<(), PoolError>(())
//! ```

mod core;
mod error;
mod log;
mod options;

#[cfg(feature = "tokio")]
pub mod driver;

pub use crate::core::{
    Action, CheckedOut, CheckoutStart, ConnectionMeta, Establishing, POPULATE_BACKOFF, PoolCore,
    PoolState, PoolStats, Rejected, WaiterId,
};
pub use error::{PoolError, RETRYABLE_ERROR, SYSTEM_OVERLOADED_ERROR};
pub use log::LOG_TARGET;
pub use options::{DEFAULT_MAX_CONNECTING, DEFAULT_MAX_POOL_SIZE, PoolOptions};

#[cfg(feature = "tokio")]
pub use driver::{Checkout, Establish, Interruption, Pool, PooledConnection, WeakPool};
