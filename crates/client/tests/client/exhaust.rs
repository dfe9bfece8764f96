//! Exhaust cursors against the testkit: every document arrives in order with the batches
//! streamed after the first getMore, the connection stays with the cursor while the stream
//! is open and goes back to its pool when it ends, a cursor dropped mid-stream closes its
//! connection (the pool recovers), command monitoring publishes a started / succeeded pair
//! per streamed reply, timeoutMS bounds each streamed read, and a tailable exhaust cursor is
//! refused.

use std::time::Duration;

use bson::{Document, doc};
use mongo_client::event::EventRecorder;
use mongo_client::event::cmap::CmapEvent;
use mongo_client::event::command::CommandEvent;
use mongo_client::{Collection, CursorType, TimeoutMode};
use mongo_testkit::{ServerOptions, TestServer};

use crate::common::{client_for, started};

/// A server, a client (with `uri_options`) and a recorder, and `app.items` holding
/// `{_id: i}` for i in 0..n.
async fn seeded(
    n: i32,
    uri_options: &str,
) -> (
    TestServer,
    mongo_client::Client,
    Collection,
    std::sync::Arc<EventRecorder>,
) {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let recorder = EventRecorder::shared();
    let uri = format!("{}{uri_options}", server.uri());
    let client = client_for(&uri, Some(recorder.clone())).await;
    let coll = client.database("app").collection("items");
    coll.insert_many((0..n).map(|i| doc! {"_id": i}))
        .await
        .unwrap();
    (server, client, coll, recorder)
}

fn in_use(client: &mongo_client::Client) -> usize {
    client.pool_stats().iter().map(|s| s.stats.in_use).sum()
}

fn closed(recorder: &EventRecorder) -> usize {
    recorder
        .cmap_events()
        .iter()
        .filter(|e| matches!(e, CmapEvent::ConnectionClosed(_)))
        .count()
}

#[tokio::test]
async fn every_document_arrives_in_order_and_the_connection_is_reserved_while_streaming() {
    let (_server, client, coll, recorder) = seeded(25, "").await;
    for exhaust in [false, true] {
        recorder.clear();
        let mut cursor = coll
            .find(doc! {})
            .sort(doc! {"_id": 1})
            .batch_size(4)
            .exhaust(exhaust)
            .await
            .unwrap();
        let mut seen = Vec::new();
        let mut streamed_while_idle = false;
        while let Some(d) = cursor.try_next().await.unwrap() {
            seen.push(d.get_i32("_id").unwrap());
            if cursor.is_streaming() {
                // Between batches the server streams on the cursor's own connection.
                streamed_while_idle = true;
                assert_eq!(in_use(&client), 1, "the stream's connection is checked out");
            } else if cursor.id() != 0 {
                assert_eq!(in_use(&client), 0, "no connection held between getMores");
            }
        }
        assert_eq!(seen, (0..25).collect::<Vec<_>>(), "exhaust: {exhaust}");
        assert_eq!(streamed_while_idle, exhaust);
        assert!(!cursor.is_streaming());
        assert_eq!(in_use(&client), 0, "the connection went back to its pool");
        assert_eq!(closed(&recorder), 0, "no connection was closed");

        // Monitoring: a started and a succeeded event per getMore reply, streamed or not
        // (4 documents in the first batch, then 6 batches of at most 4).
        let get_mores: Vec<Document> = started(&recorder)
            .into_iter()
            .filter(|e| e.command_name == "getMore")
            .map(|e| e.command)
            .collect();
        assert_eq!(get_mores.len(), 6, "exhaust: {exhaust}");
        assert!(
            get_mores
                .iter()
                .all(|c| c.get_i32("batchSize").ok() == Some(4))
        );
        let succeeded = recorder
            .command_events()
            .iter()
            .filter(|e| matches!(e, CommandEvent::Succeeded(s) if s.command_name == "getMore"))
            .count();
        assert_eq!(succeeded, 6);
    }
    // Aggregate takes the option too.
    let docs = coll
        .aggregate(vec![doc! {"$sort": {"_id": -1}}])
        .batch_size(3)
        .exhaust(true)
        .await
        .unwrap()
        .collect_all()
        .await
        .unwrap();
    assert_eq!(docs.len(), 25);
    assert_eq!(docs[0].get_i32("_id").ok(), Some(24));
    client.shutdown().await;
}

#[tokio::test]
async fn a_cursor_dropped_mid_stream_closes_its_connection_and_the_pool_recovers() {
    let (_server, client, coll, recorder) = seeded(40, "").await;
    let mut cursor = coll
        .find(doc! {})
        .batch_size(2)
        .exhaust(true)
        .await
        .unwrap();
    for _ in 0..3 {
        cursor.try_next().await.unwrap().unwrap();
    }
    assert!(cursor.is_streaming());
    recorder.clear();
    drop(cursor);
    // The connection with replies pending is closed, never checked in.
    let mut waited = Duration::ZERO;
    while closed(&recorder) == 0 && waited < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += Duration::from_millis(10);
    }
    assert_eq!(closed(&recorder), 1);
    assert_eq!(in_use(&client), 0);
    // The pool serves the next operation.
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 40);
    let all = coll
        .find(doc! {})
        .batch_size(5)
        .exhaust(true)
        .await
        .unwrap();
    assert_eq!(all.collect_all().await.unwrap().len(), 40);
    assert_eq!(in_use(&client), 0);
    client.shutdown().await;
}

#[tokio::test]
async fn timeout_ms_bounds_each_streamed_read() {
    let (server, client, coll, _recorder) = seeded(20, "&timeoutMS=300").await;
    let mut cursor = coll
        .find(doc! {})
        .batch_size(2)
        .exhaust(true)
        .timeout_mode(TimeoutMode::Iteration)
        .await
        .unwrap();
    // The first getMore answers at once; the streamed one after it is blocked past timeoutMS.
    let admin = client.database("admin");
    admin
        .run_command(doc! {
            "configureFailPoint": "failCommand",
            "mode": {"skip": 1},
            "data": {"failCommands": ["getMore"], "blockConnection": true, "blockTimeMS": 1000},
        })
        .await
        .unwrap();
    let mut got = 0;
    let error = loop {
        match cursor.try_next().await {
            Ok(Some(_)) => got += 1,
            Ok(None) => panic!("the blocked batch arrived"),
            Err(e) => break e,
        }
    };
    assert_eq!(got, 4, "the first batch and the first getMore's");
    assert!(error.is_timeout(), "{error:?}");
    assert!(
        !cursor.is_streaming(),
        "the timed-out stream's connection is closed"
    );
    admin
        .run_command(doc! {"configureFailPoint": "failCommand", "mode": "off"})
        .await
        .unwrap();
    drop(cursor);
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 20);
    drop(server);
}

#[tokio::test]
async fn a_tailable_exhaust_cursor_is_refused() {
    let (_server, client, coll, _recorder) = seeded(1, "").await;
    let error = coll
        .find(doc! {})
        .cursor_type(CursorType::Tailable)
        .exhaust(true)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("exhaust"), "{error}");
    client.shutdown().await;
}
