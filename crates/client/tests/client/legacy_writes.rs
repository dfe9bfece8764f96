//! Legacy write opcodes (OP_INSERT, OP_UPDATE, OP_DELETE) on a `Connection`, unacknowledged
//! and acknowledged through getLastError, with write errors reported by code.

use bson::{Bson, doc};
use mongo_client::{ConnectionOptions, LegacyWrite};
use mongo_testkit::{ServerOptions, TestServer};

use crate::common::connect;

#[tokio::test]
async fn legacy_writes_with_and_without_get_last_error() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let mut conn = connect(&server, ConnectionOptions::default()).await;
    let gle = Some(doc! {});

    // Unacknowledged: nothing comes back, the write still lands.
    let none = conn
        .legacy_write(
            "db",
            "c",
            LegacyWrite::Insert {
                documents: vec![doc! {"_id": 1, "x": 1}, doc! {"_id": 2, "x": 1}],
                continue_on_error: false,
            },
            None,
        )
        .await
        .unwrap();
    assert!(none.is_none());
    assert!(conn.is_reusable());
    // Acknowledged insert.
    let reply = conn
        .legacy_write(
            "db",
            "c",
            LegacyWrite::Insert {
                documents: vec![doc! {"_id": 3, "x": 2}],
                continue_on_error: false,
            },
            gle.clone(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.get("err"), Some(&Bson::Null), "{reply}");
    let found = conn
        .command("db", doc! {"find": "c", "filter": {}, "sort": {"_id": 1}})
        .await
        .unwrap();
    let batch = found
        .get_document("cursor")
        .unwrap()
        .get_array("firstBatch")
        .unwrap();
    assert_eq!(batch.len(), 3);

    // A duplicate key is reported through getLastError as an error with its code.
    let err = conn
        .legacy_write(
            "db",
            "c",
            LegacyWrite::Insert {
                documents: vec![doc! {"_id": 1}],
                continue_on_error: false,
            },
            gle.clone(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(11000), "{err:?}");
    assert!(conn.is_reusable(), "a write error keeps the connection");

    // Multi update, acknowledged.
    let reply = conn
        .legacy_write(
            "db",
            "c",
            LegacyWrite::Update {
                selector: doc! {"x": 1},
                update: doc! {"$set": {"y": true}},
                upsert: false,
                multi: true,
            },
            gle.clone(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.get_i32("n").ok(), Some(2), "{reply}");
    assert_eq!(reply.get_bool("updatedExisting").ok(), Some(true));
    // Upsert, unacknowledged.
    conn.legacy_write(
        "db",
        "c",
        LegacyWrite::Update {
            selector: doc! {"_id": 10},
            update: doc! {"$set": {"x": 9}},
            upsert: true,
            multi: false,
        },
        None,
    )
    .await
    .unwrap();
    // The unacknowledged write has no reply: a round trip on the same connection orders it.
    conn.command("admin", doc! {"ping": 1}).await.unwrap();
    let docs = server.store().documents("db", "c");
    assert_eq!(docs.len(), 4);
    assert_eq!(docs.iter().filter(|d| d.get_bool("y").is_ok()).count(), 2);
    assert!(docs.contains(&doc! {"_id": 10, "x": 9}));

    // Single delete, acknowledged; then delete everything, unacknowledged.
    let reply = conn
        .legacy_write(
            "db",
            "c",
            LegacyWrite::Delete {
                selector: doc! {"x": 1},
                single: true,
            },
            gle.clone(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.get_i32("n").ok(), Some(1), "{reply}");
    assert_eq!(server.store().documents("db", "c").len(), 3);
    conn.legacy_write(
        "db",
        "c",
        LegacyWrite::Delete {
            selector: doc! {},
            single: false,
        },
        None,
    )
    .await
    .unwrap();
    let count = conn
        .command("db", doc! {"count": "c"})
        .await
        .unwrap()
        .get_i32("n")
        .unwrap();
    assert_eq!(count, 0);
}
