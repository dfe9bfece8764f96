//! Exhaust cursors over a real socket: a getMore with `exhaustAllowed` is answered by a
//! stream of `moreToCome` replies, each answering the one before, until the cursor is
//! exhausted; fail points apply to each streamed getMore; a client that closes mid-stream
//! leaves no cursor behind.
#![allow(
    clippy::disallowed_methods,
    reason = "integration tests own their clock and tasks"
)]

mod common;

use std::time::Duration;

use bson::{Bson, Document, RawDocumentBuf, doc};
use common::{Client, code, ok};
use mongo_testkit::{ServerOptions, TestServer};
use mongo_wire::{MsgFlags, OpMsg};

/// Inserts `n` documents `{_id: i}` and opens a find cursor with a first batch of `batch`;
/// returns its id.
async fn open(c: &mut Client, n: i32, batch: i32) -> i64 {
    let docs: Vec<Document> = (0..n).map(|i| doc! { "_id": i }).collect();
    assert!(ok(&c
        .command("d", doc! { "insert": "c", "documents": docs })
        .await));
    let found = c
        .command(
            "d",
            doc! { "find": "c", "sort": { "_id": 1 }, "batchSize": batch },
        )
        .await;
    assert!(ok(&found), "{found}");
    found.get_document("cursor").unwrap().get_i64("id").unwrap()
}

fn exhaust_get_more(id: i64, batch: i32) -> OpMsg {
    let cmd = doc! { "getMore": id, "collection": "c", "batchSize": batch, "$db": "d" };
    OpMsg::new(RawDocumentBuf::try_from(&cmd).unwrap()).with_flags(MsgFlags::EXHAUST_ALLOWED)
}

fn ids(reply: &Document) -> Vec<i32> {
    reply
        .get_document("cursor")
        .unwrap()
        .get_array("nextBatch")
        .unwrap()
        .iter()
        .map(|d| d.as_document().unwrap().get_i32("_id").unwrap())
        .collect()
}

#[tokio::test]
async fn an_exhaust_get_more_streams_every_batch() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let mut c = Client::connect(server.address()).await;
    let id = open(&mut c, 10, 2).await;
    let request = c.send(&exhaust_get_more(id, 3)).await.unwrap();

    let mut seen = vec![0, 1];
    let mut response_to = request;
    let mut replies = 0;
    loop {
        let reply = tokio::time::timeout(Duration::from_secs(5), c.receive())
            .await
            .unwrap()
            .unwrap();
        assert!(ok(&reply), "{reply}");
        assert_eq!(
            c.last_response_to, response_to,
            "each reply answers the one before"
        );
        response_to = c.last_reply_id;
        replies += 1;
        let batch = ids(&reply);
        assert!(batch.len() <= 3, "{batch:?}");
        seen.extend(batch);
        let cursor_id = reply.get_document("cursor").unwrap().get_i64("id").unwrap();
        if !c.last_flags.contains(MsgFlags::MORE_TO_COME) {
            assert_eq!(cursor_id, 0, "the stream ends with the cursor");
            break;
        }
        assert_eq!(cursor_id, id);
    }
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
    assert_eq!(replies, 3, "8 documents in batches of 3");
    // The connection takes requests again.
    assert!(ok(&c.command("admin", doc! { "ping": 1 }).await));

    // Without exhaustAllowed a getMore never streams.
    let id = open_more(&mut c).await;
    let reply = c
        .command(
            "d",
            doc! { "getMore": id, "collection": "e", "batchSize": 1 },
        )
        .await;
    assert!(ok(&reply));
    assert!(!c.last_flags.contains(MsgFlags::MORE_TO_COME));
}

async fn open_more(c: &mut Client) -> i64 {
    let docs: Vec<Document> = (0..4).map(|i| doc! { "_id": i }).collect();
    assert!(ok(&c
        .command("d", doc! { "insert": "e", "documents": docs })
        .await));
    let found = c.command("d", doc! { "find": "e", "batchSize": 1 }).await;
    found.get_document("cursor").unwrap().get_i64("id").unwrap()
}

#[tokio::test]
async fn a_fail_point_ends_the_stream_with_its_error() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let mut c = Client::connect(server.address()).await;
    let id = open(&mut c, 10, 1).await;
    // The first getMore succeeds, the second (the first streamed one) fails.
    let fp = doc! {
        "configureFailPoint": "failCommand",
        "mode": { "skip": 1 },
        "data": { "failCommands": ["getMore"], "errorCode": 91 },
    };
    assert!(ok(&c.command("admin", fp).await));
    c.send(&exhaust_get_more(id, 2)).await.unwrap();
    let first = c.receive().await.unwrap();
    assert_eq!(ids(&first), [1, 2]);
    assert!(c.last_flags.contains(MsgFlags::MORE_TO_COME));
    let failed = c.receive().await.unwrap();
    assert_eq!(code(&failed), 91, "{failed}");
    assert!(!c.last_flags.contains(MsgFlags::MORE_TO_COME));
    assert!(ok(&c.command("admin", doc! { "ping": 1 }).await));
    let off = doc! { "configureFailPoint": "failCommand", "mode": "off" };
    assert!(ok(&c.command("admin", off).await));
}

#[tokio::test]
async fn a_client_that_closes_mid_stream_leaves_no_cursor() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let mut setup = Client::connect(server.address()).await;
    // Large documents: the stream outruns the socket buffers and the server blocks on a
    // write the closed connection fails.
    let pad = "x".repeat(200_000);
    let docs: Vec<Document> = (0..40)
        .map(|i| doc! { "_id": i, "pad": pad.clone() })
        .collect();
    assert!(ok(&setup
        .command("d", doc! { "insert": "c", "documents": docs })
        .await));
    let mut c = Client::connect(server.address()).await;
    let found = c.command("d", doc! { "find": "c", "batchSize": 1 }).await;
    let id = found.get_document("cursor").unwrap().get_i64("id").unwrap();
    c.send(&exhaust_get_more(id, 1)).await.unwrap();
    c.receive().await.unwrap();
    assert!(c.last_flags.contains(MsgFlags::MORE_TO_COME));
    drop(c);

    // The cursor goes once the server fails to write the next reply.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = setup
        .command(
            "d",
            doc! { "killCursors": "c", "cursors": [Bson::Int64(id)] },
        )
        .await;
    assert!(ok(&r), "{r}");
    assert_eq!(
        r.get_array("cursorsNotFound").unwrap(),
        &vec![Bson::Int64(id)],
        "the cursor outlived its exhaust connection: {r}"
    );
}
