//! Ready-made listeners that write each event through `tracing`, as PyMongo's
//! `event_loggers` module does with `logging`.
//!
//! Targets: `mongo::command` for command events, `mongo::connection` for pool events,
//! `mongo::topology` for server, heartbeat and topology events. Successes log at `INFO`,
//! failures and closures because of errors at `WARN`.
//!
//! ```
//! use mongo_events::{loggers, Listener, Listeners};
//! let mut listeners = Listeners::new();
//! listeners.add(Listener::command(loggers::CommandLogger));
//! listeners.add(Listener::pool(loggers::PoolLogger));
//! ```

use crate::cmap::*;
use crate::command::*;
use crate::listener::*;
use crate::sdam::*;

/// Logs command events to `mongo::command`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CommandLogger;

impl CommandListener for CommandLogger {
    fn started(&self, e: &CommandStartedEvent) {
        tracing::info!(target: "mongo::command", command_name = %e.command_name,
            request_id = e.request_id, server = %e.connection.address,
            driver_connection_id = e.connection.driver_connection_id.0,
            "Command {} with request id {} started on server {}",
            e.command_name, e.request_id, e.connection.address);
    }
    fn succeeded(&self, e: &CommandSucceededEvent) {
        tracing::info!(target: "mongo::command", command_name = %e.command_name,
            request_id = e.request_id, server = %e.connection.address,
            duration_micros = duration_micros(e.duration),
            "Command {} with request id {} on server {} succeeded in {} microseconds",
            e.command_name, e.request_id, e.connection.address, duration_micros(e.duration));
    }
    fn failed(&self, e: &CommandFailedEvent) {
        tracing::warn!(target: "mongo::command", command_name = %e.command_name,
            request_id = e.request_id, server = %e.connection.address,
            duration_micros = duration_micros(e.duration), failure = %e.failure,
            "Command {} with request id {} on server {} failed in {} microseconds",
            e.command_name, e.request_id, e.connection.address, duration_micros(e.duration));
    }
}

/// Logs server events to `mongo::topology`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerLogger;

impl ServerListener for ServerLogger {
    fn opened(&self, e: &ServerOpeningEvent) {
        tracing::info!(target: "mongo::topology", server = %e.address, topology_id = %e.topology_id,
            "Server {} added to topology {}", e.address, e.topology_id);
    }
    fn description_changed(&self, e: &ServerDescriptionChangedEvent) {
        let (old, new) = (
            e.previous_description.server_type,
            e.new_description.server_type,
        );
        if old != new {
            tracing::info!(target: "mongo::topology", server = %e.address,
                previous_type = old.name(), new_type = new.name(),
                "Server {} changed type from {} to {}", e.address, old, new);
        }
    }
    fn closed(&self, e: &ServerClosedEvent) {
        tracing::warn!(target: "mongo::topology", server = %e.address, topology_id = %e.topology_id,
            "Server {} removed from topology {}", e.address, e.topology_id);
    }
}

/// Logs heartbeat events to `mongo::topology`.
#[derive(Clone, Copy, Debug, Default)]
pub struct HeartbeatLogger;

impl HeartbeatListener for HeartbeatLogger {
    fn started(&self, e: &ServerHeartbeatStartedEvent) {
        tracing::info!(target: "mongo::topology", server = %e.address, awaited = e.awaited,
            "Heartbeat sent to server {}", e.address);
    }
    fn succeeded(&self, e: &ServerHeartbeatSucceededEvent) {
        tracing::info!(target: "mongo::topology", server = %e.address, awaited = e.awaited,
            duration_micros = duration_micros(e.duration), reply = %e.reply,
            "Heartbeat to server {} succeeded", e.address);
    }
    fn failed(&self, e: &ServerHeartbeatFailedEvent) {
        tracing::warn!(target: "mongo::topology", server = %e.address, awaited = e.awaited,
            duration_micros = duration_micros(e.duration), failure = %e.failure,
            "Heartbeat to server {} failed with error {}", e.address, e.failure);
    }
}

/// Logs topology events to `mongo::topology`, warning when no server is writable or readable.
#[derive(Clone, Copy, Debug, Default)]
pub struct TopologyLogger;

impl TopologyListener for TopologyLogger {
    fn opened(&self, e: &TopologyOpeningEvent) {
        tracing::info!(target: "mongo::topology", topology_id = %e.topology_id,
            "Topology with id {} opened", e.topology_id);
    }
    fn description_changed(&self, e: &TopologyDescriptionChangedEvent) {
        let (old, new) = (
            e.previous_description.topology_type,
            e.new_description.topology_type,
        );
        tracing::info!(target: "mongo::topology", topology_id = %e.topology_id,
            "Topology description updated for topology id {}", e.topology_id);
        if old != new {
            tracing::info!(target: "mongo::topology", topology_id = %e.topology_id,
                previous_type = old.name(), new_type = new.name(),
                "Topology {} changed type from {} to {}", e.topology_id, old, new);
        }
        if !e.new_description.has_writable_server() {
            tracing::warn!(target: "mongo::topology", topology_id = %e.topology_id,
                "No writable servers available.");
        }
        if !e.new_description.has_readable_server(None) {
            tracing::warn!(target: "mongo::topology", topology_id = %e.topology_id,
                "No readable servers available.");
        }
    }
    fn closed(&self, e: &TopologyClosedEvent) {
        tracing::info!(target: "mongo::topology", topology_id = %e.topology_id,
            "Topology with id {} closed", e.topology_id);
    }
}

/// Logs connection pool events to `mongo::connection`.
#[derive(Clone, Copy, Debug, Default)]
pub struct PoolLogger;

impl PoolListener for PoolLogger {
    fn pool_created(&self, e: &PoolCreatedEvent) {
        tracing::info!(target: "mongo::connection", server = %e.address, "[pool {}] pool created", e.address);
    }
    fn pool_ready(&self, e: &PoolReadyEvent) {
        tracing::info!(target: "mongo::connection", server = %e.address, "[pool {}] pool ready", e.address);
    }
    fn pool_cleared(&self, e: &PoolClearedEvent) {
        tracing::info!(target: "mongo::connection", server = %e.address,
            interrupt_in_use_connections = e.interrupt_in_use_connections,
            "[pool {}] pool cleared", e.address);
    }
    fn pool_closed(&self, e: &PoolClosedEvent) {
        tracing::info!(target: "mongo::connection", server = %e.address, "[pool {}] pool closed", e.address);
    }
    fn connection_created(&self, e: &ConnectionCreatedEvent) {
        tracing::info!(target: "mongo::connection", server = %e.address, driver_connection_id = e.connection_id.0,
            "[pool {}][conn #{}] connection created", e.address, e.connection_id);
    }
    fn connection_ready(&self, e: &ConnectionReadyEvent) {
        tracing::info!(target: "mongo::connection", server = %e.address, driver_connection_id = e.connection_id.0,
            duration_ms = duration_ms(e.duration),
            "[pool {}][conn #{}] connection setup succeeded", e.address, e.connection_id);
    }
    fn connection_closed(&self, e: &ConnectionClosedEvent) {
        let error = e
            .error
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        tracing::info!(target: "mongo::connection", server = %e.address, driver_connection_id = e.connection_id.0,
            reason = e.reason.name(), error = %error,
            "[pool {}][conn #{}] connection closed: {}", e.address, e.connection_id, e.reason.log_text());
    }
    fn connection_check_out_started(&self, e: &ConnectionCheckOutStartedEvent) {
        tracing::info!(target: "mongo::connection", server = %e.address,
            "[pool {}] checkout started", e.address);
    }
    fn connection_check_out_failed(&self, e: &ConnectionCheckOutFailedEvent) {
        let error = e
            .error
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        tracing::warn!(target: "mongo::connection", server = %e.address, reason = e.reason.name(),
            error = %error, duration_ms = duration_ms(e.duration),
            "[pool {}] checkout failed: {}", e.address, e.reason.log_text());
    }
    fn connection_checked_out(&self, e: &ConnectionCheckedOutEvent) {
        tracing::info!(target: "mongo::connection", server = %e.address, driver_connection_id = e.connection_id.0,
            duration_ms = duration_ms(e.duration),
            "[pool {}][conn #{}] connection checked out", e.address, e.connection_id);
    }
    fn connection_checked_in(&self, e: &ConnectionCheckedInEvent) {
        tracing::info!(target: "mongo::connection", server = %e.address, driver_connection_id = e.connection_id.0,
            "[pool {}][conn #{}] connection checked in", e.address, e.connection_id);
    }
}

fn duration_micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn duration_ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A set of all five loggers, ready to add to a client's listeners.
pub fn all() -> crate::Listeners {
    crate::Listeners::new()
        .with(Listener::command(CommandLogger))
        .with(Listener::pool(PoolLogger))
        .with(Listener::server(ServerLogger))
        .with(Listener::heartbeat(HeartbeatLogger))
        .with(Listener::topology(TopologyLogger))
}
