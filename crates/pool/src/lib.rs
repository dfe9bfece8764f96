//! The MongoDB CMAP connection pool: a sans-I/O state machine ([`PoolCore`]) and, behind the
//! `tokio` feature, an async driver ([`Pool`]), generic over what it pools.
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
