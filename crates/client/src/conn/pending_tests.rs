//! A late reply, read and dropped: over TCP against the testkit, and the counting reader
//! alone.

use std::sync::Arc;
use std::time::Duration;

use bson::doc;
use mongo_events::{ConnectionId, Generation, ServerAddress};
use mongo_testkit::{ServerOptions, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::conn::{CommandParams, ConnectionOptions};

/// A connection to `server` whose late replies may come for `limit`.
async fn connect(server: &TestServer, limit: Duration) -> Connection {
    let options = ConnectionOptions {
        pending_response_limit: limit,
        ..ConnectionOptions::default()
    };
    let address = ServerAddress::parse(&server.host_port()).unwrap();
    Connection::connect(address, ConnectionId(1), Generation(0), Arc::new(options))
        .await
        .unwrap()
}

/// Makes the server answer the next `ping` after `ms` milliseconds.
fn slow_ping(server: &TestServer, ms: i64) {
    server
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": {"times": 1},
            "data": {"failCommands": ["ping"], "blockConnection": true, "blockTimeMS": ms},
        })
        .unwrap();
}

/// Runs `{ping: 1, n}` with the deadline `within` from now.
async fn ping(conn: &mut Connection, n: i32, within: Duration) -> Result<bson::Document> {
    let params = CommandParams {
        deadline: Some(clock() + within),
        ..CommandParams::default()
    };
    conn.run_command("admin", doc! {"ping": 1, "n": n}, params)
        .await
}

#[tokio::test]
async fn a_late_reply_is_drained_and_the_connection_reused() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let mut conn = connect(&server, Duration::from_secs(3)).await;
    slow_ping(&server, 300);
    let err = ping(&mut conn, 1, Duration::from_millis(30))
        .await
        .unwrap_err();
    assert!(err.is_network_timeout(), "{err:?}");
    assert!(conn.is_pending_response() && conn.is_reusable());

    // A caller whose deadline comes before the reply leaves the connection pending.
    let soon = clock() + Duration::from_millis(20);
    assert_eq!(conn.drain_pending(Some(soon)).await, Drained::TimedOut);
    assert!(conn.is_pending_response());

    // A dropped drain (cancellation) loses nothing either.
    let dropped = tokio::time::timeout(Duration::from_millis(20), conn.drain_pending(None)).await;
    assert!(dropped.is_err());
    assert!(conn.is_pending_response());

    assert_eq!(conn.drain_pending(None).await, Drained::Ready);
    assert!(conn.is_reusable() && !conn.is_pending_response());
    // The next command gets its own reply, not the late one.
    let reply = ping(&mut conn, 2, Duration::from_secs(5)).await.unwrap();
    assert_eq!(reply.get_f64("ok").ok(), Some(1.0), "{reply:?}");
}

#[tokio::test]
async fn a_command_on_a_pending_connection_drains_first() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let mut conn = connect(&server, Duration::from_secs(3)).await;
    slow_ping(&server, 150);
    assert!(ping(&mut conn, 1, Duration::from_millis(20)).await.is_err());
    assert!(conn.is_pending_response());
    let reply = ping(&mut conn, 2, Duration::from_secs(5)).await.unwrap();
    assert_eq!(reply.get_f64("ok").ok(), Some(1.0), "{reply:?}");
    assert!(conn.is_reusable() && !conn.is_pending_response());
}

#[tokio::test]
async fn a_reply_later_than_the_limit_closes_the_connection() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let mut conn = connect(&server, Duration::from_millis(60)).await;
    slow_ping(&server, 1_000);
    assert!(ping(&mut conn, 1, Duration::from_millis(20)).await.is_err());
    assert!(conn.is_pending_response());
    assert_eq!(conn.drain_pending(None).await, Drained::Closed);
    assert!(conn.is_broken() && !conn.is_reusable());
}

#[tokio::test]
async fn a_zero_limit_closes_at_the_timeout() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let mut conn = connect(&server, Duration::ZERO).await;
    slow_ping(&server, 150);
    assert!(ping(&mut conn, 1, Duration::from_millis(20)).await.is_err());
    assert!(conn.is_broken() && !conn.is_pending_response());
}

#[tokio::test]
async fn the_counting_reader_keeps_the_start_of_a_reply_across_cancelled_reads() {
    let (mut server, mut client) = tokio::io::duplex(64);
    let mut progress = ReplyProgress::default();
    progress.start();
    let reply: Vec<u8> = (0u8..40).collect();
    server.write_all(reply.get(..7).unwrap()).await.unwrap();
    let mut counted = Counting {
        inner: &mut client,
        progress: &mut progress,
    };
    // A read that wants more than arrived is cancelled part-way: what it took is counted.
    let mut buf = [0u8; 40];
    let cut = tokio::time::timeout(Duration::from_millis(20), counted.read_exact(&mut buf)).await;
    assert!(cut.is_err());
    assert_eq!(progress.consumed, 7);
    server.write_all(reply.get(7..).unwrap()).await.unwrap();
    let mut counted = Counting {
        inner: &mut client,
        progress: &mut progress,
    };
    let mut rest = [0u8; 33];
    counted.read_exact(&mut rest).await.unwrap();
    assert_eq!(progress.consumed, 40);
    assert_eq!(&progress.head[..], reply.get(..KEPT).unwrap());
}
