//! The CMAP log messages (logging specification, component `connection`), written through
//! `tracing` at `DEBUG` level with target `mongo::connection`; error texts are truncated by
//! [`mongo_events::log`] like every component's documents.

use std::time::Duration;

use mongo_events::ServerAddress;
use mongo_events::cmap::{CmapEvent, ConnectionCheckOutFailedReason, ConnectionClosedReason};
use mongo_events::log::display_truncated;

/// The `tracing` target of the pool's log messages (the logging spec's `connection`
/// component).
pub const LOG_TARGET: &str = mongo_events::log::CONNECTION_TARGET;

/// Whether the pool's log messages are wanted by the current subscriber.
#[inline]
pub(crate) fn enabled() -> bool {
    tracing::enabled!(target: "mongo::connection", tracing::Level::DEBUG)
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn opt_millis(d: Option<Duration>) -> Option<u64> {
    d.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn host_port(address: &ServerAddress) -> (String, Option<u16>) {
    (address.host().into_owned(), address.port())
}

/// Writes the log message matching `event` (the spec's message text and field names).
pub(crate) fn log_event(event: &CmapEvent) {
    let (server_host, server_port) = host_port(event.address());
    let host = server_host.as_str();
    match event {
        CmapEvent::PoolCreated(e) => {
            let o = &e.options;
            tracing::debug!(target: "mongo::connection", serverHost = host, serverPort = server_port,
                maxIdleTimeMS = opt_millis(o.max_idle_time), minPoolSize = o.min_pool_size,
                maxPoolSize = o.max_pool_size, maxConnecting = o.max_connecting,
                waitQueueTimeoutMS = opt_millis(o.wait_queue_timeout),
                maxLifetimeMS = opt_millis(o.max_lifetime),
                connectTimeoutMS = opt_millis(o.connect_timeout),
                "Connection pool created");
        }
        CmapEvent::PoolReady(_) => {
            tracing::debug!(target: "mongo::connection", serverHost = host, serverPort = server_port,
                "Connection pool ready");
        }
        CmapEvent::PoolCleared(e) => {
            let service_id = e.service_id.map(|s| s.to_string());
            tracing::debug!(target: "mongo::connection", serverHost = host, serverPort = server_port,
                serviceId = service_id.as_deref(),
                interruptInUseConnections = e.interrupt_in_use_connections,
                "Connection pool cleared");
        }
        CmapEvent::PoolClosed(_) => {
            tracing::debug!(target: "mongo::connection", serverHost = host, serverPort = server_port,
                "Connection pool closed");
        }
        CmapEvent::ConnectionCreated(e) => {
            tracing::debug!(target: "mongo::connection", serverHost = host, serverPort = server_port,
                driverConnectionId = e.connection_id.0, "Connection created");
        }
        CmapEvent::ConnectionReady(e) => {
            tracing::debug!(target: "mongo::connection", serverHost = host, serverPort = server_port,
                driverConnectionId = e.connection_id.0, durationMS = millis(e.duration),
                "Connection ready");
        }
        CmapEvent::ConnectionClosed(e) => {
            let error = match e.reason {
                ConnectionClosedReason::Error => e.error.as_ref().map(display_truncated),
                _ => None,
            };
            tracing::debug!(target: "mongo::connection", serverHost = host, serverPort = server_port,
                driverConnectionId = e.connection_id.0, reason = e.reason.log_text(),
                error = error.as_deref(), "Connection closed");
        }
        CmapEvent::ConnectionCheckOutStarted(_) => {
            tracing::debug!(target: "mongo::connection", serverHost = host, serverPort = server_port,
                "Connection checkout started");
        }
        CmapEvent::ConnectionCheckOutFailed(e) => {
            let error = match e.reason {
                ConnectionCheckOutFailedReason::ConnectionError => {
                    e.error.as_ref().map(display_truncated)
                }
                _ => None,
            };
            tracing::debug!(target: "mongo::connection", serverHost = host, serverPort = server_port,
                reason = e.reason.log_text(), error = error.as_deref(),
                durationMS = millis(e.duration), "Connection checkout failed");
        }
        CmapEvent::ConnectionCheckedOut(e) => {
            tracing::debug!(target: "mongo::connection", serverHost = host, serverPort = server_port,
                driverConnectionId = e.connection_id.0, durationMS = millis(e.duration),
                "Connection checked out");
        }
        CmapEvent::ConnectionCheckedIn(e) => {
            tracing::debug!(target: "mongo::connection", serverHost = host, serverPort = server_port,
                driverConnectionId = e.connection_id.0, "Connection checked in");
        }
    }
}
