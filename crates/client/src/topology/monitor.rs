//! The monitor transport: mongo-sdam's monitor driver over our real connections (handshake
//! without authentication, hello with `exhaustAllowed` for streaming).

use std::sync::Arc;

use bson::Document;
use mongo_events::{ConnectionId, Generation, ServerAddress};
use mongo_sdam::driver::{HelloReply, MonitorHandle, MonitorTransport, spawn_monitor};
use mongo_sdam::{CheckError, HelloRequest, MonitorConfig};

use super::Inner;
use crate::conn::{Connection, ConnectionOptions};
use crate::error::Error;

pub(crate) struct Transport {
    options: Arc<ConnectionOptions>,
    /// The id of the monitoring connection being opened (monitoring connections are counted
    /// apart from the pool's).
    next_id: std::sync::atomic::AtomicU32,
}

fn check_error(e: &Error) -> CheckError {
    if e.is_network_timeout() {
        CheckError::timeout(e.to_string())
    } else if e.is_network_error() {
        CheckError::network(e.to_string())
    } else {
        CheckError::command(e.to_string())
    }
}

impl MonitorTransport for Transport {
    type Conn = Connection;

    async fn connect(&self, address: &ServerAddress) -> Result<(Connection, Document), CheckError> {
        let id = self.next_id.load(std::sync::atomic::Ordering::SeqCst);
        let conn = Connection::connect(
            address.clone(),
            ConnectionId(u64::from(id)),
            Generation(0),
            self.options.clone(),
        )
        .await
        .map_err(|e| check_error(&e))?;
        let reply = conn.hello().raw.clone();
        Ok((conn, reply))
    }

    fn next_connection_id(&self) -> Option<u32> {
        Some(
            self.next_id
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                + 1,
        )
    }

    async fn send(
        &self,
        conn: &mut Connection,
        request: &HelloRequest,
    ) -> Result<HelloReply, CheckError> {
        let (document, more_to_come) = conn
            .monitor_hello(request.command.clone(), request.exhaust_allowed)
            .await
            .map_err(|e| check_error(&e))?;
        Ok(HelloReply {
            document,
            more_to_come,
        })
    }

    async fn read_next(&self, conn: &mut Connection) -> Result<HelloReply, CheckError> {
        let (document, more_to_come) = conn
            .monitor_read_next()
            .await
            .map_err(|e| check_error(&e))?;
        Ok(HelloReply {
            document,
            more_to_come,
        })
    }
}

/// Starts the monitor of `address`; its outcomes are applied to the topology.
pub(crate) fn spawn(inner: &Arc<Inner>, address: ServerAddress) -> MonitorHandle {
    let settings = super::settings_of(inner);
    let mut config = MonitorConfig::new(address);
    config.topology_id = Some(inner.topology_id);
    config.heartbeat_frequency = settings.config.heartbeat_frequency;
    config.connect_timeout = settings.monitor_connection.connect_timeout;
    config.mode = settings.monitoring_mode;
    config.server_api = settings.monitor_connection.server_api.is_some();
    config.faas = crate::conn::handshake::detect_env().is_some_and(|e| e.get_str("name").is_ok());
    let transport = Arc::new(Transport {
        options: settings.monitor_connection.clone(),
        next_id: std::sync::atomic::AtomicU32::new(0),
    });
    let weak = super::weak(inner);
    let listeners = settings.listeners.clone();
    spawn_monitor(
        config,
        transport,
        move |outcome| {
            if let Some(inner) = weak.upgrade() {
                Inner::on_check(&inner, outcome);
            }
        },
        listeners,
    )
}
