//! Liveness of idle pooled connections (PyMongo's check of an idle socket before reuse): a
//! connection idle longer than the threshold is checked without blocking at check-out, and
//! one whose server side is gone is closed (reason `error`) and replaced, so the operation
//! does not fail. With the check turned off the same operation fails: the test can tell.

use std::time::Duration;

use bson::doc;
use mongo_client::event::EventRecorder;
use mongo_client::event::cmap::{CmapEvent, ConnectionClosedReason};
use mongo_client::{Client, ClientOptions, ConnectionOptions};
use mongo_testkit::{ServerOptions, TestServer};

use crate::common::connect;

/// A client whose pool holds three application connections, idle afterwards.
async fn three_busy_connections(
    server: &TestServer,
    threshold: Option<Duration>,
) -> (Client, std::sync::Arc<EventRecorder>) {
    let recorder = EventRecorder::shared();
    let mut options = ClientOptions::parse(&format!("{}&maxPoolSize=3", server.uri())).unwrap();
    options.idle_check_threshold = threshold;
    let mut listeners = mongo_client::event::Listeners::new();
    listeners.add_all(recorder.clone());
    let client = Client::builder()
        .options(options)
        .listeners(listeners)
        .build()
        .await
        .unwrap();
    // Three pings held 200 ms each by the server: three connections.
    server
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand",
            "mode": {"times": 3},
            "data": {"failCommands": ["ping"], "blockConnection": true, "blockTimeMS": 200},
        })
        .unwrap();
    let ping = || client.run_command("admin", doc! {"ping": 1});
    let (a, b, c) = tokio::join!(ping(), ping(), ping());
    a.unwrap();
    b.unwrap();
    c.unwrap();
    assert_eq!(
        client.pool_stats()[0].stats.total,
        3,
        "{:?}",
        client.pool_stats()
    );
    (client, recorder)
}

fn closed_with_error(r: &EventRecorder) -> usize {
    r.cmap_events()
        .into_iter()
        .filter(|e| {
            matches!(e, CmapEvent::ConnectionClosed(c) if c.reason == ConnectionClosedReason::Error)
        })
        .count()
}

#[tokio::test]
async fn dead_idle_connections_are_replaced_before_check_out() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let (client, recorder) =
        three_busy_connections(&server, Some(Duration::from_millis(100))).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    server.close_application_connections();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Every pooled connection is dead; each operation still succeeds.
    for _ in 0..3 {
        client.run_command("admin", doc! {"ping": 1}).await.unwrap();
    }
    assert_eq!(
        closed_with_error(&recorder),
        3,
        "{:?}",
        recorder.cmap_names()
    );
    client.shutdown().await;
}

#[tokio::test]
async fn without_the_check_a_dead_idle_connection_fails_the_operation() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let (client, _recorder) = three_busy_connections(&server, None).await;
    server.close_application_connections();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = client
        .run_command("admin", doc! {"ping": 1})
        .await
        .unwrap_err();
    assert!(err.is_network_error(), "{err:?}");
    client.shutdown().await;
}

#[tokio::test]
async fn idle_time_and_peer_closed_on_a_connection() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let mut conn = connect(&server, ConnectionOptions::default()).await;
    conn.command("admin", doc! {"ping": 1}).await.unwrap();
    assert!(
        conn.idle_time() < Duration::from_millis(100),
        "{:?}",
        conn.idle_time()
    );
    assert!(!conn.peer_closed());
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(conn.idle_time() >= Duration::from_millis(120));
    conn.command("admin", doc! {"ping": 1}).await.unwrap();
    assert!(conn.idle_time() < Duration::from_millis(100));
    server.close_application_connections();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(conn.peer_closed());
}
