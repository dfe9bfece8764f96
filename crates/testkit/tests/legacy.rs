//! Legacy write opcodes and getLastError, over real sockets.

mod common;

use std::borrow::Cow;

use bson::{Bson, RawDocumentBuf, doc};
use common::Client;
use mongo_testkit::{ServerOptions, TestServer};
use mongo_wire::{DeleteFlags, InsertFlags, OpDelete, OpInsert, OpUpdate, UpdateFlags};

fn raw(d: &bson::Document) -> RawDocumentBuf {
    RawDocumentBuf::try_from(d).unwrap()
}

#[tokio::test]
async fn legacy_writes_apply_and_get_last_error_reports_them() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let mut c = Client::connect(server.address()).await;

    // Nothing written yet on this connection.
    let gle = c.command("db", doc! { "getLastError": 1 }).await;
    assert_eq!(gle.get_i32("n").ok(), Some(0));
    assert_eq!(gle.get("err"), Some(&Bson::Null));

    let docs = [
        raw(&doc! { "_id": 1, "x": 1 }),
        raw(&doc! { "_id": 2, "x": 1 }),
    ];
    c.send_any(&OpInsert {
        flags: InsertFlags::empty(),
        full_collection_name: Cow::Borrowed("db.c"),
        documents: docs.iter().map(|d| Cow::Borrowed(d.as_ref())).collect(),
    })
    .await;
    let gle = c.legacy_command("db", doc! { "getlasterror": 1 }).await;
    assert_eq!(gle.get("err"), Some(&Bson::Null), "{gle}");
    assert_eq!(
        gle.get_i32("n").ok(),
        Some(0),
        "mongod reports n: 0 for inserts"
    );
    let found = c.command("db", doc! { "find": "c", "filter": {} }).await;
    let batch = found
        .get_document("cursor")
        .unwrap()
        .get_array("firstBatch")
        .unwrap();
    assert_eq!(batch.len(), 2);

    // A duplicate key shows up in getLastError, not on the wire.
    let dup = raw(&doc! { "_id": 1 });
    c.send_any(&OpInsert {
        flags: InsertFlags::CONTINUE_ON_ERROR,
        full_collection_name: Cow::Borrowed("db.c"),
        documents: vec![Cow::Borrowed(dup.as_ref())],
    })
    .await;
    let gle = c.legacy_command("db", doc! { "getlasterror": 1 }).await;
    assert_eq!(gle.get_i32("code").ok(), Some(11000), "{gle}");
    assert!(gle.get_str("err").is_ok());

    // Multi update, then an upsert.
    let (sel, upd) = (raw(&doc! { "x": 1 }), raw(&doc! { "$set": { "y": true } }));
    c.send_any(&OpUpdate {
        full_collection_name: Cow::Borrowed("db.c"),
        flags: UpdateFlags::MULTI_UPDATE,
        selector: Cow::Borrowed(sel.as_ref()),
        update: Cow::Borrowed(upd.as_ref()),
    })
    .await;
    let gle = c.command("db", doc! { "getLastError": 1 }).await;
    assert_eq!(gle.get_i32("n").ok(), Some(2), "{gle}");
    assert_eq!(gle.get_bool("updatedExisting").ok(), Some(true));
    let (sel, upd) = (raw(&doc! { "_id": 9 }), raw(&doc! { "$set": { "x": 5 } }));
    c.send_any(&OpUpdate {
        full_collection_name: Cow::Borrowed("db.c"),
        flags: UpdateFlags::UPSERT,
        selector: Cow::Borrowed(sel.as_ref()),
        update: Cow::Borrowed(upd.as_ref()),
    })
    .await;
    let gle = c.command("db", doc! { "getLastError": 1 }).await;
    assert_eq!(gle.get_bool("updatedExisting").ok(), Some(false), "{gle}");
    assert_eq!(gle.get_i32("upserted").ok(), Some(9));
    assert_eq!(server.store().documents("db", "c").len(), 3);

    // Single and multi delete.
    let sel = raw(&doc! {});
    c.send_any(&OpDelete {
        full_collection_name: Cow::Borrowed("db.c"),
        flags: DeleteFlags::SINGLE_REMOVE,
        selector: Cow::Borrowed(sel.as_ref()),
    })
    .await;
    let gle = c.command("db", doc! { "getLastError": 1 }).await;
    assert_eq!(gle.get_i32("n").ok(), Some(1), "{gle}");
    c.send_any(&OpDelete {
        full_collection_name: Cow::Borrowed("db.c"),
        flags: DeleteFlags::empty(),
        selector: Cow::Borrowed(sel.as_ref()),
    })
    .await;
    let gle = c.command("db", doc! { "getLastError": 1 }).await;
    assert_eq!(gle.get_i32("n").ok(), Some(2), "{gle}");
    assert_eq!(server.store().documents("db", "c").len(), 0);
}

#[tokio::test]
async fn legacy_writes_need_authentication() {
    let server = TestServer::start(ServerOptions::default().with_user("u", "p"))
        .await
        .unwrap();
    let mut c = Client::connect(server.address()).await;
    let d = raw(&doc! { "a": 1 });
    c.send_any(&OpInsert {
        flags: InsertFlags::empty(),
        full_collection_name: Cow::Borrowed("db.c"),
        documents: vec![Cow::Borrowed(d.as_ref())],
    })
    .await;
    c.scram("u", "p", false).await;
    let gle = c.command("db", doc! { "getLastError": 1 }).await;
    assert_eq!(gle.get_i32("code").ok(), Some(13), "{gle}");
    assert_eq!(server.store().documents("db", "c").len(), 0);
}
