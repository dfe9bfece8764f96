//! Pool options: the CMAP ones plus eventlet's `max_age` and `connect_timeout`.

use std::time::Duration;

use mongo_events::cmap::PoolOptionsSnapshot;

use crate::PoolError;

/// Default `maxPoolSize`.
pub const DEFAULT_MAX_POOL_SIZE: u32 = 100;
/// Default `maxConnecting`.
pub const DEFAULT_MAX_CONNECTING: u32 = 2;

/// The pool's options. `None` means "not set" (the default applies); `PoolCreated` reports only
/// the options that were set.
///
/// ```
/// use std::time::Duration;
/// let mut options = mongo_pool::PoolOptions::default();
/// options.max_pool_size = Some(10);
/// options.max_idle_time = Some(Duration::from_secs(60));
/// assert!(options.validate().is_ok());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolOptions {
    /// maxPoolSize: the cap on pending + available + in-use connections; 0 = unbounded;
    /// default 100.
    pub max_pool_size: Option<u32>,
    /// minPoolSize: the pool keeps at least this many connections while ready; default 0.
    pub min_pool_size: Option<u32>,
    /// maxIdleTimeMS: available connections idle longer are closed; 0 = no limit (default).
    pub max_idle_time: Option<Duration>,
    /// maxConnecting: at most this many connections are established at once; must be > 0;
    /// default 2.
    pub max_connecting: Option<u32>,
    /// waitQueueTimeoutMS: how long a check-out waits in the queue; 0 = forever (default).
    pub wait_queue_timeout: Option<Duration>,
    /// Maximum lifetime of a connection, from its creation (eventlet's `max_age`; beyond CMAP).
    /// Connections older than this are closed with reason `expired` when checked in or found
    /// available. 0 or unset = no limit.
    pub max_lifetime: Option<Duration>,
    /// Establishment timeout (eventlet's `connect_timeout`; beyond CMAP): an establishment that
    /// takes longer is abandoned, the connection closed with reason `error`, and the check-out
    /// waiting for it fails with `connectionError`. 0 or unset = no limit.
    pub connect_timeout: Option<Duration>,
    /// Load-balanced mode: generations are kept per serviceId.
    pub load_balanced: bool,
}

fn nonzero(d: Option<Duration>) -> Option<Duration> {
    d.filter(|d| !d.is_zero())
}

impl PoolOptions {
    /// Checks the options: maxConnecting must be > 0 and minPoolSize may not exceed a non-zero
    /// maxPoolSize.
    pub fn validate(&self) -> Result<(), PoolError> {
        if self.max_connecting == Some(0) {
            return Err(PoolError::InvalidOptions(
                "maxConnecting must be greater than 0".into(),
            ));
        }
        let max = self.max_pool_size();
        if max > 0 && self.min_pool_size() > max {
            return Err(PoolError::InvalidOptions(format!(
                "minPoolSize ({}) is greater than maxPoolSize ({max})",
                self.min_pool_size()
            )));
        }
        Ok(())
    }

    /// The effective maxPoolSize (0 = unbounded).
    pub fn max_pool_size(&self) -> u32 {
        self.max_pool_size.unwrap_or(DEFAULT_MAX_POOL_SIZE)
    }

    /// The effective minPoolSize.
    pub fn min_pool_size(&self) -> u32 {
        self.min_pool_size.unwrap_or(0)
    }

    /// The effective maxConnecting.
    pub fn max_connecting(&self) -> u32 {
        self.max_connecting.unwrap_or(DEFAULT_MAX_CONNECTING).max(1)
    }

    /// The effective idle limit (`None` = no limit).
    pub fn effective_max_idle_time(&self) -> Option<Duration> {
        nonzero(self.max_idle_time)
    }

    /// The effective wait-queue timeout (`None` = wait forever).
    pub fn effective_wait_queue_timeout(&self) -> Option<Duration> {
        nonzero(self.wait_queue_timeout)
    }

    /// The effective maximum lifetime (`None` = no limit).
    pub fn effective_max_lifetime(&self) -> Option<Duration> {
        nonzero(self.max_lifetime)
    }

    /// The effective establishment timeout (`None` = no limit).
    pub fn effective_connect_timeout(&self) -> Option<Duration> {
        nonzero(self.connect_timeout)
    }

    /// The options as `PoolCreated` reports them: only those that were set.
    pub fn snapshot(&self) -> PoolOptionsSnapshot {
        let mut s = PoolOptionsSnapshot::default();
        s.max_pool_size = self.max_pool_size;
        s.min_pool_size = self.min_pool_size;
        s.max_idle_time = self.max_idle_time;
        s.max_connecting = self.max_connecting;
        s.wait_queue_timeout = self.wait_queue_timeout;
        s.max_lifetime = self.max_lifetime;
        s.connect_timeout = self.connect_timeout;
        s
    }
}
