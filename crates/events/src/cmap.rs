//! The eleven events of the Connection Monitoring and Pooling (CMAP) specification.

use std::time::Duration;

use crate::{ConnectionId, EventError, ServerAddress, ServiceId};

/// The options a pool was created with, as `PoolCreated` reports them. `None` means the option
/// was not set (its default applies).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolOptionsSnapshot {
    /// maxPoolSize.
    pub max_pool_size: Option<u32>,
    /// minPoolSize.
    pub min_pool_size: Option<u32>,
    /// maxIdleTimeMS.
    pub max_idle_time: Option<Duration>,
    /// maxConnecting.
    pub max_connecting: Option<u32>,
    /// waitQueueTimeoutMS.
    pub wait_queue_timeout: Option<Duration>,
    /// Maximum lifetime of a connection (beyond CMAP; eventlet's `max_age`).
    pub max_lifetime: Option<Duration>,
    /// Establishment timeout (beyond CMAP; eventlet's `connect_timeout`).
    pub connect_timeout: Option<Duration>,
}

/// A pool was created (it starts paused).
#[derive(Clone, Debug, PartialEq)]
pub struct PoolCreatedEvent {
    /// The pool's server.
    pub address: ServerAddress,
    /// The options given to the pool.
    pub options: PoolOptionsSnapshot,
}

/// A pool was marked ready.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolReadyEvent {
    /// The pool's server.
    pub address: ServerAddress,
}

/// A pool was cleared: its generation (or one service's, in load-balanced mode) was bumped.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolClearedEvent {
    /// The pool's server.
    pub address: ServerAddress,
    /// The service whose connections were cleared, in load-balanced mode.
    pub service_id: Option<ServiceId>,
    /// Whether connections in use were interrupted too.
    pub interrupt_in_use_connections: bool,
}

/// A pool was closed.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolClosedEvent {
    /// The pool's server.
    pub address: ServerAddress,
}

/// A connection was created (establishment starts).
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectionCreatedEvent {
    /// The pool's server.
    pub address: ServerAddress,
    /// The new connection's id.
    pub connection_id: ConnectionId,
}

/// A connection finished establishing (handshake and auth) and is ready for use.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectionReadyEvent {
    /// The pool's server.
    pub address: ServerAddress,
    /// The connection's id.
    pub connection_id: ConnectionId,
    /// Time from `ConnectionCreated` to ready.
    pub duration: Duration,
}

/// Why a connection was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectionClosedReason {
    /// Its generation is older than the pool's (the pool was cleared).
    Stale,
    /// It sat idle longer than maxIdleTimeMS.
    Idle,
    /// It failed (a network error, a failed establishment).
    Error,
    /// The pool was closed.
    PoolClosed,
    /// It lived longer than the pool's maximum lifetime (beyond CMAP).
    Expired,
}

impl ConnectionClosedReason {
    /// The spec's name (`stale`, `idle`, `error`, `poolClosed`; `expired` is ours).
    pub fn name(self) -> &'static str {
        match self {
            ConnectionClosedReason::Stale => "stale",
            ConnectionClosedReason::Idle => "idle",
            ConnectionClosedReason::Error => "error",
            ConnectionClosedReason::PoolClosed => "poolClosed",
            ConnectionClosedReason::Expired => "expired",
        }
    }

    /// The logging specification's wording for the reason.
    pub fn log_text(self) -> &'static str {
        match self {
            ConnectionClosedReason::Stale => "Connection became stale because the pool was cleared",
            ConnectionClosedReason::Idle => {
                "Connection has been available but unused for longer than the configured max idle time"
            }
            ConnectionClosedReason::Error => "An error occurred while using the connection",
            ConnectionClosedReason::PoolClosed => "Connection pool was closed",
            ConnectionClosedReason::Expired => {
                "Connection has been open for longer than the configured max lifetime"
            }
        }
    }
}

/// A connection was closed.
#[derive(Clone, Debug)]
pub struct ConnectionClosedEvent {
    /// The pool's server.
    pub address: ServerAddress,
    /// The connection's id.
    pub connection_id: ConnectionId,
    /// Why it was closed.
    pub reason: ConnectionClosedReason,
    /// The error, when the reason is `Error`.
    pub error: Option<EventError>,
}

/// A check-out started.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectionCheckOutStartedEvent {
    /// The pool's server.
    pub address: ServerAddress,
}

/// Why a check-out failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectionCheckOutFailedReason {
    /// The pool was closed.
    PoolClosed,
    /// waitQueueTimeoutMS (or the operation's timeout) passed.
    Timeout,
    /// Establishing a connection failed.
    ConnectionError,
}

impl ConnectionCheckOutFailedReason {
    /// The spec's name (`poolClosed`, `timeout`, `connectionError`).
    pub fn name(self) -> &'static str {
        match self {
            ConnectionCheckOutFailedReason::PoolClosed => "poolClosed",
            ConnectionCheckOutFailedReason::Timeout => "timeout",
            ConnectionCheckOutFailedReason::ConnectionError => "connectionError",
        }
    }

    /// The logging specification's wording for the reason.
    pub fn log_text(self) -> &'static str {
        match self {
            ConnectionCheckOutFailedReason::PoolClosed => "Connection pool was closed",
            ConnectionCheckOutFailedReason::Timeout => {
                "Wait queue timeout elapsed without a connection becoming available"
            }
            ConnectionCheckOutFailedReason::ConnectionError => {
                "An error occurred while trying to establish a new connection"
            }
        }
    }
}

/// A check-out failed.
#[derive(Clone, Debug)]
pub struct ConnectionCheckOutFailedEvent {
    /// The pool's server.
    pub address: ServerAddress,
    /// Why it failed.
    pub reason: ConnectionCheckOutFailedReason,
    /// The error, if any.
    pub error: Option<EventError>,
    /// Time from `ConnectionCheckOutStarted` to the failure.
    pub duration: Duration,
}

/// A connection was checked out.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectionCheckedOutEvent {
    /// The pool's server.
    pub address: ServerAddress,
    /// The connection's id.
    pub connection_id: ConnectionId,
    /// Time from `ConnectionCheckOutStarted` to the check-out.
    pub duration: Duration,
}

/// A connection was checked back in.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectionCheckedInEvent {
    /// The pool's server.
    pub address: ServerAddress,
    /// The connection's id.
    pub connection_id: ConnectionId,
}

/// Any CMAP event.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub enum CmapEvent {
    PoolCreated(PoolCreatedEvent),
    PoolReady(PoolReadyEvent),
    PoolCleared(PoolClearedEvent),
    PoolClosed(PoolClosedEvent),
    ConnectionCreated(ConnectionCreatedEvent),
    ConnectionReady(ConnectionReadyEvent),
    ConnectionClosed(ConnectionClosedEvent),
    ConnectionCheckOutStarted(ConnectionCheckOutStartedEvent),
    ConnectionCheckOutFailed(ConnectionCheckOutFailedEvent),
    ConnectionCheckedOut(ConnectionCheckedOutEvent),
    ConnectionCheckedIn(ConnectionCheckedInEvent),
}

impl CmapEvent {
    /// The event's name as the CMAP tests spell it (`ConnectionPoolCreated`,
    /// `ConnectionCheckedOut`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            CmapEvent::PoolCreated(_) => "ConnectionPoolCreated",
            CmapEvent::PoolReady(_) => "ConnectionPoolReady",
            CmapEvent::PoolCleared(_) => "ConnectionPoolCleared",
            CmapEvent::PoolClosed(_) => "ConnectionPoolClosed",
            CmapEvent::ConnectionCreated(_) => "ConnectionCreated",
            CmapEvent::ConnectionReady(_) => "ConnectionReady",
            CmapEvent::ConnectionClosed(_) => "ConnectionClosed",
            CmapEvent::ConnectionCheckOutStarted(_) => "ConnectionCheckOutStarted",
            CmapEvent::ConnectionCheckOutFailed(_) => "ConnectionCheckOutFailed",
            CmapEvent::ConnectionCheckedOut(_) => "ConnectionCheckedOut",
            CmapEvent::ConnectionCheckedIn(_) => "ConnectionCheckedIn",
        }
    }

    /// The pool's server.
    pub fn address(&self) -> &ServerAddress {
        match self {
            CmapEvent::PoolCreated(e) => &e.address,
            CmapEvent::PoolReady(e) => &e.address,
            CmapEvent::PoolCleared(e) => &e.address,
            CmapEvent::PoolClosed(e) => &e.address,
            CmapEvent::ConnectionCreated(e) => &e.address,
            CmapEvent::ConnectionReady(e) => &e.address,
            CmapEvent::ConnectionClosed(e) => &e.address,
            CmapEvent::ConnectionCheckOutStarted(e) => &e.address,
            CmapEvent::ConnectionCheckOutFailed(e) => &e.address,
            CmapEvent::ConnectionCheckedOut(e) => &e.address,
            CmapEvent::ConnectionCheckedIn(e) => &e.address,
        }
    }

    /// The connection the event is about, if any.
    pub fn connection_id(&self) -> Option<ConnectionId> {
        match self {
            CmapEvent::ConnectionCreated(e) => Some(e.connection_id),
            CmapEvent::ConnectionReady(e) => Some(e.connection_id),
            CmapEvent::ConnectionClosed(e) => Some(e.connection_id),
            CmapEvent::ConnectionCheckedOut(e) => Some(e.connection_id),
            CmapEvent::ConnectionCheckedIn(e) => Some(e.connection_id),
            _ => None,
        }
    }

    /// The duration the event carries, if any (ready, checked out, check-out failed).
    pub fn duration(&self) -> Option<Duration> {
        match self {
            CmapEvent::ConnectionReady(e) => Some(e.duration),
            CmapEvent::ConnectionCheckedOut(e) => Some(e.duration),
            CmapEvent::ConnectionCheckOutFailed(e) => Some(e.duration),
            _ => None,
        }
    }
}
