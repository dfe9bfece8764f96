//! Requests: a pinned `Request` runs every command on one connection while other operations
//! use another; process-wide listeners registered before the client is built see its events.

use bson::doc;
use mongo_client::event::command::CommandEvent;
use mongo_client::event::{FnListener, Listener, register};
use mongo_testkit::{ServerOptions, TestServer};

use crate::common::client_for;

#[tokio::test]
async fn a_request_pins_one_connection_and_global_listeners_are_included() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static GLOBAL_PINGS: AtomicUsize = AtomicUsize::new(0);
    register(Listener::command(FnListener(|e: &CommandEvent| {
        if matches!(e, CommandEvent::Succeeded(s) if s.command_name == "buildInfo") {
            GLOBAL_PINGS.fetch_add(1, Ordering::SeqCst);
        }
    })));
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let client = client_for(&server.uri(), None).await;
    let mut request = client.start_request().await.unwrap();
    let id = request.connection_id();
    assert!(id.is_some());
    for _ in 0..3 {
        request
            .run_command("admin", doc! {"buildInfo": 1})
            .await
            .unwrap();
        assert_eq!(request.connection_id(), id);
    }
    assert_eq!(client.pool_stats()[0].stats.in_use, 1);
    // Another operation meanwhile uses another connection.
    client.run_command("admin", doc! {"ping": 1}).await.unwrap();
    assert_eq!(client.pool_stats()[0].stats.total, 2);
    drop(request);
    assert_eq!(client.pool_stats()[0].stats.in_use, 0);
    assert_eq!(GLOBAL_PINGS.load(Ordering::SeqCst), 3);
}
