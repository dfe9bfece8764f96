//! The pool's one error type.

use std::fmt;
use std::time::Duration;

use mongo_events::{EventError, ServerAddress};

/// The error label the pool adds to establishment errors that may signal an overloaded server.
pub const SYSTEM_OVERLOADED_ERROR: &str = "SystemOverloadedError";
/// The error label that makes an error retryable.
pub const RETRYABLE_ERROR: &str = "RetryableError";

const BACKPRESSURE_LABELS: &[&str] = &[SYSTEM_OVERLOADED_ERROR, RETRYABLE_ERROR];

/// Why a check-out (or the pool's construction) failed.
///
/// Variants are grouped by cause: the pool's state (closed, cleared), a limit (wait-queue
/// timeout, establishment timeout), the peer (establishment failed), and misuse (invalid
/// options, a connection checked in to the wrong pool).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum PoolError {
    /// The pool was closed (CMAP's `PoolClosedError`).
    PoolClosed {
        /// The pool's server.
        address: ServerAddress,
    },
    /// The pool was cleared (paused) before or while checking out (CMAP's `PoolClearedError`,
    /// a retryable error that must not mark the server Unknown).
    PoolCleared {
        /// The pool's server.
        address: ServerAddress,
        /// The error that made the pool clear, when one was given.
        cause: Option<EventError>,
    },
    /// No connection became available within the wait-queue timeout (CMAP's
    /// `WaitQueueTimeoutError`).
    WaitQueueTimeout {
        /// The pool's server.
        address: ServerAddress,
    },
    /// Establishing a connection failed.
    Establish {
        /// The pool's server.
        address: ServerAddress,
        /// The establisher's error (downcast it with [`EventError::downcast_ref`]).
        source: EventError,
        /// Whether the error may signal an overloaded server (a network error or timeout during
        /// connect or `hello`): such errors carry `SystemOverloadedError` and `RetryableError`.
        overloaded: bool,
    },
    /// Establishing a connection took longer than the pool's connect timeout.
    ConnectTimeout {
        /// The pool's server.
        address: ServerAddress,
        /// The configured connect timeout.
        after: Duration,
    },
    /// A connection in use was interrupted by a clear with `interruptInUseConnections`.
    Interrupted {
        /// The pool's server.
        address: ServerAddress,
    },
    /// The options are invalid (for example minPoolSize above maxPoolSize).
    InvalidOptions(String),
    /// A connection was checked in to a pool that did not create it.
    ForeignConnection {
        /// The connection's id.
        id: u64,
    },
    /// The tokio driver was used outside a tokio runtime.
    NoRuntime,
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::PoolClosed { .. } => {
                f.write_str("Attempted to check out a connection from closed connection pool")
            }
            PoolError::PoolCleared { address, cause } => {
                write!(
                    f,
                    "Connection pool for {address} was cleared because another operation failed with: "
                )?;
                match cause {
                    Some(c) => write!(f, "{c}"),
                    None => f.write_str("(no error given)"),
                }
            }
            PoolError::WaitQueueTimeout { .. } => {
                f.write_str("Timed out while checking out a connection from connection pool")
            }
            PoolError::Establish {
                address, source, ..
            } => write!(f, "Failed to establish a connection to {address}: {source}"),
            PoolError::ConnectTimeout { address, after } => {
                write!(
                    f,
                    "Establishing a connection to {address} timed out after {after:?}"
                )
            }
            PoolError::Interrupted { address } => {
                write!(
                    f,
                    "Connection to {address} interrupted due to server monitor timeout"
                )
            }
            PoolError::InvalidOptions(m) => write!(f, "invalid pool options: {m}"),
            PoolError::ForeignConnection { id } => write!(
                f,
                "connection {id} was checked in to a pool that did not create it"
            ),
            PoolError::NoRuntime => f.write_str("the pool driver needs a tokio runtime"),
        }
    }
}

impl std::error::Error for PoolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PoolError::Establish { source, .. } => Some(source.get()),
            PoolError::PoolCleared { cause: Some(c), .. } => Some(c.get()),
            _ => None,
        }
    }
}

impl PoolError {
    /// The CMAP test format's name for this error (`PoolClosedError`, `PoolClearedError`,
    /// `WaitQueueTimeoutError`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            PoolError::PoolClosed { .. } => "PoolClosedError",
            PoolError::PoolCleared { .. } | PoolError::Interrupted { .. } => "PoolClearedError",
            PoolError::WaitQueueTimeout { .. } => "WaitQueueTimeoutError",
            PoolError::Establish { .. } => "ConnectionError",
            PoolError::ConnectTimeout { .. } => "ConnectTimeoutError",
            PoolError::InvalidOptions(_) => "InvalidOptionsError",
            PoolError::ForeignConnection { .. } => "ForeignConnectionError",
            PoolError::NoRuntime => "NoRuntimeError",
        }
    }

    /// The error labels the pool attaches: `SystemOverloadedError` and `RetryableError` on
    /// establishment network errors and timeouts, `RetryableError` on cleared-pool errors.
    pub fn labels(&self) -> &'static [&'static str] {
        match self {
            PoolError::Establish {
                overloaded: true, ..
            }
            | PoolError::ConnectTimeout { .. } => BACKPRESSURE_LABELS,
            PoolError::PoolCleared { .. } | PoolError::Interrupted { .. } => &[RETRYABLE_ERROR],
            _ => &[],
        }
    }

    /// Whether the error carries `label`.
    pub fn has_label(&self, label: &str) -> bool {
        self.labels().contains(&label)
    }

    /// Whether retrying the operation may succeed (cleared pool, interrupted connection,
    /// backpressure-labelled establishment error).
    pub fn is_retryable(&self) -> bool {
        self.has_label(RETRYABLE_ERROR)
    }

    /// Whether SDAM should treat this as a network error from establishment (it never marks the
    /// server Unknown for cleared-pool, closed-pool or wait-queue errors).
    pub fn is_establishment_error(&self) -> bool {
        matches!(
            self,
            PoolError::Establish { .. } | PoolError::ConnectTimeout { .. }
        )
    }
}
