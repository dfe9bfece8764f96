//! The CMAP integration-style tests against a real server: a `mongo_testkit::TestServer` on
//! a loopback port carries the file's `failPoint` (the `configureFailPoint` document as
//! written, targeting the pool's `appName`), and the pool's connections are real
//! `mongo_client::Connection`s (TCP, hello with the client metadata, the handshake's error
//! handling) on a multi-threaded runtime with the real clock. The fail point is turned off and
//! the server stopped when the test ends.
#![allow(
    clippy::disallowed_methods,
    reason = "the runner starts a real server and runs on the real clock"
)]

use std::sync::Arc;

use mongo_client::conn::{Connection, ConnectionOptions};
use mongo_events::{ConnectionId, Generation, ServerAddress, ServiceId};
use mongo_pool::Establish;
use mongo_testkit::{ServerOptions, TestServer};
use serde_json::Value;

/// Opens real connections through the client's connection code.
#[derive(Debug)]
struct RealEstablisher {
    address: ServerAddress,
    options: Arc<ConnectionOptions>,
}

impl Establish for RealEstablisher {
    type Conn = Connection;
    type Error = mongo_client::Error;

    fn establish(
        &self,
        id: ConnectionId,
        generation: Generation,
    ) -> impl std::future::Future<Output = Result<Connection, mongo_client::Error>> + Send {
        Connection::connect(self.address.clone(), id, generation, self.options.clone())
    }

    fn service_id(&self, conn: &Connection) -> Option<ServiceId> {
        conn.service_id()
    }

    fn is_overload_signal(&self, error: &mongo_client::Error) -> bool {
        error.is_network_error()
    }
}

/// Runs one integration-style test against a fresh testkit server.
pub(super) fn run(test: &Value) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot build a runtime: {e}"))?;
    runtime.block_on(run_against_server(test))
}

async fn run_against_server(test: &Value) -> Result<(), String> {
    let server = TestServer::start(ServerOptions::default())
        .await
        .map_err(|e| format!("cannot start the testkit server: {e}"))?;
    if let Some(fp) = test.get("failPoint") {
        let map = fp
            .as_object()
            .ok_or_else(|| format!("failPoint is not a document: {fp}"))?;
        let cmd = crate::sdam::to_document(map);
        server
            .configure_fail_point(cmd)
            .map_err(|e| format!("configureFailPoint failed: {e}"))?;
    }
    let mut options = ConnectionOptions::default();
    options.app_name = test
        .get("poolOptions")
        .and_then(|o| o.get("appName"))
        .and_then(Value::as_str)
        .map(String::from);
    options.refresh_metadata();
    let address = ServerAddress::tcp("127.0.0.1", server.address().port());
    let establisher = RealEstablisher {
        address: address.clone(),
        options: Arc::new(options),
    };
    let result = super::run_with(test, address, establisher).await;
    server.clear_fail_points();
    server.stop().await;
    result
}
