//! Tests of CMAP's `interruptInUseConnections` through the whole client: a pool clear that
//! interrupts in-use connections makes the commands in flight on them fail promptly with a
//! retryable error, and closes those connections; a clear without interruption lets them
//! finish. Unit tests because two of them clear the pool directly, a hook that is not public
//! API (in operation, SDAM error handling decides clears, as the third test shows).
#![allow(clippy::disallowed_methods, reason = "tests wait on the wall clock")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bson::{Document, doc};
use mongo_events::cmap::{CmapEvent, ConnectionClosedReason};
use mongo_events::command::CommandEvent;
use mongo_events::{ConnectionId, EventRecorder, Listeners};
use mongo_testkit::{ServerOptions, TestServer};

use crate::{Client, ClientOptions, Error, ErrorKind};

/// How long the fail point holds the command: far longer than any bound the tests wait.
const BLOCK_MS: i32 = 20_000;
/// A generous bound for "promptly".
const PROMPT: Duration = Duration::from_secs(8);

async fn client_for(uri: &str, recorder: &Arc<EventRecorder>) -> Client {
    let options = ClientOptions::parse(uri).expect("uri");
    let mut listeners = Listeners::new();
    listeners.add_all(recorder.clone());
    Client::builder()
        .options(options)
        .listeners(listeners)
        .build()
        .await
        .expect("client")
}

fn block_command(server: &TestServer, command: &str, block_ms: i32) {
    server
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": {"times": 1},
            "data": {"failCommands": [command], "blockConnection": true, "blockTimeMS": block_ms},
        })
        .expect("fail point");
}

/// Waits until a `command` has been started (it is then in flight), returning the id of the
/// connection it runs on.
async fn wait_for_started(recorder: &EventRecorder, command: &str, nth: usize) -> ConnectionId {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let started: Vec<ConnectionId> = recorder
            .command_events()
            .into_iter()
            .filter_map(|e| match e {
                CommandEvent::Started(s) if s.command_name == command => {
                    Some(s.connection.driver_connection_id)
                }
                _ => None,
            })
            .collect();
        if let Some(id) = started.get(nth) {
            return *id;
        }
        assert!(Instant::now() < deadline, "{command} never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn assert_interrupted(error: &Error) {
    assert!(
        matches!(
            error.kind(),
            ErrorKind::Pool(crate::error::PoolError::Interrupted { .. })
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("interrupted"),
        "the message names the interruption: {error}"
    );
    assert!(error.has_label(crate::error::RETRYABLE_ERROR), "{error:?}");
    assert!(error.is_retryable_read(), "{error:?}");
    assert!(error.is_retryable_write(), "{error:?}");
}

fn assert_closed_with_error(recorder: &EventRecorder, id: ConnectionId) {
    assert!(
        recorder.cmap_events().iter().any(|e| matches!(
            e,
            CmapEvent::ConnectionClosed(c)
                if c.connection_id == id && c.reason == ConnectionClosedReason::Error
        )),
        "connection {id:?} closed with reason Error: {:?}",
        recorder.cmap_events()
    );
}

fn interrupting_clears(recorder: &EventRecorder) -> usize {
    recorder
        .cmap_events()
        .iter()
        .filter(|e| matches!(e, CmapEvent::PoolCleared(c) if c.interrupt_in_use_connections))
        .count()
}

/// Retries a ping until the pool is ready again (a clear pauses it until the next check).
async fn ping_eventually(client: &Client) -> Document {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client.run_command("admin", doc! {"ping": 1}).await {
            Ok(reply) => return reply,
            // Cleared-pool errors until the monitor readies the pool again; on a loaded
            // machine, possibly a connect timeout.
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("the client did not recover: {e:?}"),
        }
    }
}

#[tokio::test]
async fn an_interrupting_clear_fails_the_command_in_flight_promptly() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let recorder = EventRecorder::shared();
    let uri = format!("{}&heartbeatFrequencyMS=500", server.uri());
    let client = client_for(&uri, &recorder).await;
    client.run_command("admin", doc! {"ping": 1}).await.unwrap();
    let address = client.pool_stats()[0].address.clone();

    block_command(&server, "ping", BLOCK_MS);
    let running = tokio::spawn({
        let client = client.clone();
        async move { client.run_command("admin", doc! {"ping": 1}).await }
    });
    let id = wait_for_started(&recorder, "ping", 1).await;
    assert_eq!(client.pool_stats()[0].stats.in_use, 1);

    let cleared_at = Instant::now();
    assert!(client.inner.topology.clear_pool(&address, true));
    let result = tokio::time::timeout(PROMPT, running)
        .await
        .expect("the blocked command failed promptly")
        .expect("task");
    assert!(cleared_at.elapsed() < PROMPT);
    let error = result.expect_err("the interrupted command fails");
    assert_interrupted(&error);
    assert_eq!(error.address(), Some(&address));

    assert_eq!(interrupting_clears(&recorder), 1);
    assert_closed_with_error(&recorder, id);
    // Every started event gets an outcome: the interrupted ping's is a failure.
    assert!(recorder.command_events().iter().any(|e| matches!(
        e,
        CommandEvent::Failed(f)
            if f.command_name == "ping" && f.connection.driver_connection_id == id
    )));
    let stats = client.pool_stats()[0].stats;
    assert_eq!(stats.in_use, 0, "{stats:?}");

    // New connections (of the new generation) work.
    ping_eventually(&client).await;
    assert_eq!(client.pool_stats()[0].stats.in_use, 0);
    client.shutdown().await;
}

#[tokio::test]
async fn a_clear_without_interruption_lets_the_command_finish() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let recorder = EventRecorder::shared();
    let uri = format!("{}&heartbeatFrequencyMS=500", server.uri());
    let client = client_for(&uri, &recorder).await;
    client.run_command("admin", doc! {"ping": 1}).await.unwrap();
    let address = client.pool_stats()[0].address.clone();

    block_command(&server, "ping", 500);
    let running = tokio::spawn({
        let client = client.clone();
        async move { client.run_command("admin", doc! {"ping": 1}).await }
    });
    let id = wait_for_started(&recorder, "ping", 1).await;
    assert!(client.inner.topology.clear_pool(&address, false));
    let reply = tokio::time::timeout(PROMPT, running)
        .await
        .expect("the command finished")
        .expect("task")
        .expect("a clear without interruption does not fail the command");
    assert_eq!(reply.get_f64("ok").ok(), Some(1.0));

    assert_eq!(interrupting_clears(&recorder), 0);
    assert!(
        recorder
            .cmap_events()
            .iter()
            .any(|e| matches!(e, CmapEvent::PoolCleared(c) if !c.interrupt_in_use_connections))
    );
    // Its connection is of the old generation: closed as stale on check-in, not as failed.
    assert!(recorder.cmap_events().iter().any(|e| matches!(
        e,
        CmapEvent::ConnectionClosed(c)
            if c.connection_id == id && c.reason == ConnectionClosedReason::Stale
    )));
    assert_eq!(client.pool_stats()[0].stats.in_use, 0);
    client.shutdown().await;
}

#[tokio::test]
async fn a_heartbeat_timeout_interrupts_the_command_in_flight() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let recorder = EventRecorder::shared();
    // Polling monitor whose checks time out after connectTimeoutMS.
    let uri = format!(
        "{}&heartbeatFrequencyMS=500&serverMonitoringMode=poll&connectTimeoutMS=1000",
        server.uri()
    );
    let client = client_for(&uri, &recorder).await;
    client.run_command("admin", doc! {"ping": 1}).await.unwrap();
    let address = client.pool_stats()[0].address.clone();

    block_command(&server, "ping", BLOCK_MS);
    let running = tokio::spawn({
        let client = client.clone();
        async move { client.run_command("admin", doc! {"ping": 1}).await }
    });
    let id = wait_for_started(&recorder, "ping", 1).await;
    // The ping is blocked on the server; now make the monitor's next hello hang too.
    block_command(&server, "hello", BLOCK_MS);

    let result = tokio::time::timeout(PROMPT, running)
        .await
        .expect("the blocked command failed promptly")
        .expect("task");
    let error = result.expect_err("the interrupted command fails");
    assert_interrupted(&error);
    assert_eq!(error.address(), Some(&address));
    assert!(interrupting_clears(&recorder) >= 1);
    assert_closed_with_error(&recorder, id);
    assert_eq!(client.pool_stats()[0].stats.in_use, 0);

    server.clear_fail_points();
    ping_eventually(&client).await;
    client.shutdown().await;
}
