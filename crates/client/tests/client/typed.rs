//! Typed collections and cursors: serde types in and out, the untyped view of the same
//! collection, decode errors, the cursor as a `Stream`, batch-level reads, a cursor whose
//! `try_next` is cancelled mid-`getMore` losing nothing, and an `insert_many` split into
//! several messages by the server's `maxMessageSizeBytes`.

use std::time::Duration;

use bson::{Document, doc};
use futures_util::TryStreamExt;
use mongo_client::event::EventRecorder;
use mongo_client::{Collection, ErrorKind, ReturnDocument};
use mongo_testkit::{ServerOptions, TestServer};
use serde::{Deserialize, Serialize};

use crate::common::{client_for, started, started_names};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Item {
    #[serde(rename = "_id")]
    id: i32,
    name: String,
    tags: Vec<String>,
}

fn item(id: i32) -> Item {
    Item {
        id,
        name: format!("item {id}"),
        tags: vec!["a".into(), format!("t{}", id % 3)],
    }
}

#[tokio::test]
async fn typed_documents_go_in_and_come_out_as_the_type() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let client = client_for(&server.uri(), None).await;
    let coll = client.database("app").collection::<Item>("items");

    coll.insert_one(item(0)).await.unwrap();
    // A reference works as well as a value.
    let more: Vec<Item> = (1..10).map(item).collect();
    let r = coll.insert_many(&more).await.unwrap();
    assert_eq!(r.inserted_ids.len(), 9);

    let found = coll.find_one(doc! {"_id": 4}).await.unwrap();
    assert_eq!(found, Some(item(4)));

    // The cursor is a Stream of Result<Item>.
    let all: Vec<Item> = coll
        .find(doc! {"tags": "t1"})
        .sort(doc! {"_id": -1})
        .batch_size(2)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all, vec![item(7), item(4), item(1)]);

    let after = coll
        .find_one_and_update(doc! {"_id": 2}, doc! {"$set": {"name": "two"}})
        .return_document(ReturnDocument::After)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.name, "two");
    let replaced = coll.replace_one(doc! {"_id": 3}, item(3)).await.unwrap();
    assert_eq!(replaced.matched_count, 1);
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 10);

    // The same collection without a type, then with one that does not fit.
    let raw: Collection<Document> = coll.clone_with_type();
    let d = raw.find_one(doc! {"_id": 2}).await.unwrap().unwrap();
    assert_eq!(d.get_str("name").unwrap(), "two");
    raw.insert_one(doc! {"_id": 99, "name": 5}).await.unwrap();
    let e = coll.find_one(doc! {"_id": 99}).await.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Deserialization(m) if m.contains("Item")),
        "{e}"
    );
    // A cursor reports the bad document and goes on with the next one.
    let mut cursor = coll.find(doc! {"_id": {"$gte": 9}}).await.unwrap();
    assert_eq!(cursor.try_next().await.unwrap(), Some(item(9)));
    assert!(cursor.try_next().await.is_err());
    assert_eq!(cursor.try_next().await.unwrap(), None);
}

#[tokio::test]
async fn a_cursor_gives_whole_batches_without_decoding() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let client = client_for(&server.uri(), None).await;
    let coll = client.database("app").collection::<Document>("batches");
    coll.insert_many((0..7).map(|i| doc! {"_id": i}))
        .await
        .unwrap();
    let mut cursor = coll
        .find(doc! {})
        .sort(doc! {"_id": 1})
        .batch_size(3)
        .await
        .unwrap();
    assert_eq!(cursor.buffered(), 3);
    let mut sizes = Vec::new();
    while let Some(batch) = cursor.next_batch().await.unwrap() {
        sizes.push(batch.len());
    }
    assert_eq!(sizes, [3, 3, 1]);
    assert_eq!(cursor.id(), 0);
}

#[tokio::test]
async fn a_cancelled_try_next_loses_no_document() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let recorder = EventRecorder::shared();
    let client = client_for(&server.uri(), Some(recorder.clone())).await;
    let coll = client.database("app").collection::<Document>("slow");
    coll.insert_many((0..4).map(|i| doc! {"_id": i}))
        .await
        .unwrap();
    let mut cursor = coll
        .find(doc! {})
        .sort(doc! {"_id": 1})
        .batch_size(2)
        .await
        .unwrap();
    assert_eq!(cursor.try_next().await.unwrap(), Some(doc! {"_id": 0}));
    assert_eq!(cursor.try_next().await.unwrap(), Some(doc! {"_id": 1}));
    server
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": {"times": 1},
            "data": {"failCommands": ["getMore"], "blockConnection": true, "blockTimeMS": 400},
        })
        .unwrap();
    // The caller gives up while the getMore is blocked; the getMore stays in the cursor.
    let gave_up = tokio::time::timeout(Duration::from_millis(50), cursor.try_next()).await;
    assert!(gave_up.is_err(), "the getMore was blocked");
    // The next call finishes that getMore instead of sending another or losing its batch.
    assert_eq!(cursor.try_next().await.unwrap(), Some(doc! {"_id": 2}));
    assert_eq!(cursor.try_next().await.unwrap(), Some(doc! {"_id": 3}));
    assert_eq!(cursor.try_next().await.unwrap(), None);
    let get_mores = started_names(&recorder)
        .iter()
        .filter(|n| *n == "getMore")
        .count();
    assert_eq!(get_mores, 1, "{:?}", started_names(&recorder));
}

#[tokio::test]
async fn insert_many_splits_by_the_message_size_and_every_document_arrives() {
    let server = TestServer::start(ServerOptions::default().with_max_message_size(64 * 1024))
        .await
        .unwrap();
    let recorder = EventRecorder::shared();
    let client = client_for(&server.uri(), Some(recorder.clone())).await;
    let coll = client.database("app").collection::<Item>("big");
    // 200 documents of about 2 KB: about 400 KB, more than six 64 KB messages.
    let items: Vec<Item> = (0..200)
        .map(|id| Item {
            id,
            name: "x".repeat(2000),
            tags: vec![],
        })
        .collect();
    let r = coll.insert_many(&items).await.unwrap();
    assert_eq!(r.inserted_ids.len(), 200);
    let inserts: Vec<usize> = started(&recorder)
        .iter()
        .filter(|e| e.command_name == "insert")
        .map(|e| e.command.get_array("documents").map_or(0, Vec::len))
        .collect();
    assert!(inserts.len() >= 7, "{inserts:?}");
    assert_eq!(inserts.iter().sum::<usize>(), 200, "{inserts:?}");
    let mut ids: Vec<i32> = coll
        .find(doc! {})
        .projection(doc! {"name": 0})
        .await
        .unwrap()
        .with_type::<Document>()
        .try_collect::<Vec<Document>>()
        .await
        .unwrap()
        .iter()
        .filter_map(|d| d.get_i32("_id").ok())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..200).collect::<Vec<_>>());
}
