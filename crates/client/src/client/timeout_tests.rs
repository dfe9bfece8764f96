//! Client-side operation timeouts against the testkit server: the `maxTimeMS` that
//! `timeoutMS` sends (and the testkit honouring it), `timeoutMS` 0 on an operation, and
//! `timeoutMS` replacing waitQueueTimeoutMS.
#![allow(
    clippy::disallowed_methods,
    reason = "tests measure elapsed wall time and wait for servers"
)]

use std::time::{Duration, Instant};

use bson::doc;
use mongo_testkit::{ServerOptions, TestServer};

use super::options_tests::{block, client_with, recorded, started, started_command};
use crate::Client;

#[tokio::test]
async fn timeout_ms_sends_the_time_left_as_max_time_ms_and_the_testkit_honours_it() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let (recorder, listeners) = recorded();
    let client = client_with(&format!("{}&timeoutMS=400", server.uri()), listeners).await;
    let coll = client.database("csot").collection::<bson::Document>("c");
    // The insert is blocked far beyond the deadline: the server's maxTimeMS (the time left
    // less the minimum RTT) ends the block with MaxTimeMSExpired, or the socket's deadline
    // does; either way the timeout error, and the insert never runs.
    block(&server, "insert", 3000);
    let started_at = Instant::now();
    let err = coll.insert_one(doc! {"_id": 1}).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(started_at.elapsed() < Duration::from_millis(2000));
    server.clear_fail_points();
    let inserts = started(&recorder, "insert");
    let sent = started_command(inserts.first().expect("the insert was sent"));
    let max_time = sent.get_i64("maxTimeMS").expect("maxTimeMS is sent");
    assert!((1..=400).contains(&max_time), "{sent}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 0);
    // timeoutMS 0 on the operation: no limit, no maxTimeMS.
    block(&server, "insert", 600);
    coll.insert_one(doc! {"_id": 2})
        .timeout(Duration::ZERO)
        .await
        .unwrap();
    let inserts = started(&recorder, "insert");
    let last = started_command(inserts.last().expect("sent"));
    assert!(!last.contains_key("maxTimeMS"), "{last}");
    client.shutdown().await;
}

#[tokio::test]
async fn timeout_ms_replaces_wait_queue_timeout_ms() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let uri = format!(
        "{}&maxPoolSize=1&waitQueueTimeoutMS=50&timeoutMS=5000",
        server.uri()
    );
    let client = Client::with_uri_str(&uri).await.unwrap();
    client.run_command("admin", doc! {"ping": 1}).await.unwrap();
    // The only connection is busy for 400 ms: the second ping waits past
    // waitQueueTimeoutMS, within timeoutMS, and succeeds.
    block(&server, "ping", 400);
    let busy = {
        let client = client.clone();
        tokio::spawn(async move { client.run_command("admin", doc! {"ping": 1}).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    client.run_command("admin", doc! {"ping": 1}).await.unwrap();
    busy.await.unwrap().unwrap();
    client.shutdown().await;
}
