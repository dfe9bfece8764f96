//! The query language over real sockets, where mongod's documented behaviour matters to the
//! specification tests: filters checked before any document is read (unknown operators),
//! `$where`, find's `returnKey` / `showRecordId`, and the aggregation stages that read server
//! state (`$collStats`, `$listLocalSessions`).
#![allow(
    clippy::disallowed_methods,
    reason = "integration tests own their clock and tasks"
)]

mod common;

use std::time::{Duration, Instant};

use bson::{Bson, Document, doc};
use common::{Client, code, ok};
use mongo_testkit::{ServerOptions, TestServer};

async fn server() -> (TestServer, Client) {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let c = Client::connect(server.address()).await;
    (server, c)
}

fn first_batch(reply: &Document) -> Vec<Document> {
    reply
        .get_document("cursor")
        .and_then(|c| c.get_array("firstBatch"))
        .map(|a| a.iter().filter_map(|d| d.as_document().cloned()).collect())
        .unwrap_or_else(|_| panic!("no cursor in {reply}"))
}

#[tokio::test]
async fn unknown_operators_fail_even_on_a_missing_collection() {
    let (_server, mut c) = server().await;
    for filter in [
        doc! { "$unsupportedQueryOperator": 1 },
        doc! { "x": { "$unknown": 1 } },
        doc! { "$or": true },
    ] {
        let r = c
            .command("db", doc! { "find": "nothing", "filter": filter.clone() })
            .await;
        assert_eq!(code(&r), 2, "{filter}: {r}");
        assert_eq!(r.get_str("codeName").ok(), Some("BadValue"));
        let r = c
            .command("db", doc! { "count": "nothing", "query": filter.clone() })
            .await;
        assert_eq!(code(&r), 2, "{filter}: {r}");
        let r = c
            .command(
                "db",
                doc! { "delete": "nothing", "deletes": [{ "q": filter.clone(), "limit": 0 }] },
            )
            .await;
        assert!(ok(&r), "{r}");
        let errors = r.get_array("writeErrors").unwrap();
        assert_eq!(
            errors[0].as_document().unwrap().get_i32("code").ok(),
            Some(2)
        );
        let r = c
            .command(
                "db",
                doc! { "aggregate": "nothing", "pipeline": [{ "$match": filter.clone() }], "cursor": {} },
            )
            .await;
        assert_eq!(code(&r), 2, "{filter}: {r}");
    }
    let r = c
        .command(
            "db",
            doc! { "find": "nothing", "filter": { "$unsupportedQueryOperator": 1 } },
        )
        .await;
    assert!(
        r.get_str("errmsg")
            .unwrap()
            .starts_with("unknown top level operator: $unsupportedQueryOperator")
    );
}

#[tokio::test]
async fn where_sleeps_on_its_connection_only() {
    let (server, mut c) = server().await;
    c.command("db", doc! { "insert": "c", "documents": [{ "_id": 1 }] })
        .await;
    let addr = server.address();
    let slow = tokio::spawn(async move {
        let mut c = Client::connect(addr).await;
        let start = Instant::now();
        let r = c
            .command(
                "db",
                doc! { "find": "c", "filter": { "$where": "sleep(400) || true" } },
            )
            .await;
        (r, start.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The server keeps answering other connections meanwhile.
    let start = Instant::now();
    assert!(ok(&c.command("admin", doc! { "ping": 1 }).await));
    assert!(start.elapsed() < Duration::from_millis(300));
    let (r, took) = slow.await.unwrap();
    assert_eq!(first_batch(&r), vec![doc! { "_id": 1 }]);
    assert!(took >= Duration::from_millis(400), "{took:?}");
    // An update with $where: the sleep, then the write.
    let start = Instant::now();
    let r = c
        .command(
            "db",
            doc! { "update": "c", "updates": [{ "q": { "$where": "sleep(100) || true" }, "u": { "$set": { "a": "bar" } } }] },
        )
        .await;
    assert_eq!(r.get_i32("nModified").ok(), Some(1), "{r}");
    assert!(start.elapsed() >= Duration::from_millis(100));
    // A false body matches nothing; a body the testkit cannot run is mongod's "no script
    // engine" error; $where is refused inside $match.
    let r = c
        .command("db", doc! { "find": "c", "filter": { "$where": "false" } })
        .await;
    assert!(first_batch(&r).is_empty());
    let r = c
        .command(
            "db",
            doc! { "find": "c", "filter": { "$where": "this.a == 'bar'" } },
        )
        .await;
    assert_eq!(code(&r), 6_108_304, "{r}");
    assert_eq!(r.get_str("codeName").ok(), Some("Location6108304"));
    let r = c
        .command(
            "db",
            doc! { "aggregate": "c", "pipeline": [{ "$match": { "$where": "true" } }], "cursor": {} },
        )
        .await;
    assert_eq!(code(&r), 2, "{r}");
}

#[tokio::test]
async fn find_return_key_and_show_record_id() {
    let (_server, mut c) = server().await;
    c.command(
        "db",
        doc! { "insert": "c", "documents": [{ "_id": 1, "x": 11 }, { "_id": 2, "x": 22 }, { "_id": 3, "x": 33 }] },
    )
    .await;
    c.command(
        "db",
        doc! { "delete": "c", "deletes": [{ "q": { "_id": 2 }, "limit": 1 }] },
    )
    .await;
    c.command(
        "db",
        doc! { "insert": "c", "documents": [{ "_id": 4, "x": 44 }] },
    )
    .await;
    // The _id index gives the sort: only its key comes back, without the record id.
    let r = c
        .command(
            "db",
            doc! { "find": "c", "filter": {}, "sort": { "_id": 1 }, "showRecordId": true, "returnKey": true },
        )
        .await;
    assert_eq!(
        first_batch(&r),
        vec![doc! { "_id": 1 }, doc! { "_id": 3 }, doc! { "_id": 4 }]
    );
    // No index: a collection scan has no key.
    let r = c
        .command(
            "db",
            doc! { "find": "c", "filter": { "x": { "$gt": 20 } }, "returnKey": true },
        )
        .await;
    assert_eq!(first_batch(&r), vec![doc! {}, doc! {}]);
    // A created index on x: its key.
    c.command(
        "db",
        doc! { "createIndexes": "c", "indexes": [{ "key": { "x": -1 }, "name": "x_-1" }] },
    )
    .await;
    let r = c
        .command(
            "db",
            doc! { "find": "c", "filter": { "x": { "$gt": 20 } }, "returnKey": true },
        )
        .await;
    assert_eq!(first_batch(&r), vec![doc! { "x": 33 }, doc! { "x": 44 }]);
    // showRecordId alone: insertion-order record ids, never reused, after the projection.
    let r = c
        .command(
            "db",
            doc! { "find": "c", "sort": { "x": -1 }, "projection": { "x": 0 }, "showRecordId": true },
        )
        .await;
    assert_eq!(
        first_batch(&r),
        vec![
            doc! { "_id": 4, "$recordId": 4_i64 },
            doc! { "_id": 3, "$recordId": 3_i64 },
            doc! { "_id": 1, "$recordId": 1_i64 },
        ]
    );
}

#[tokio::test]
async fn coll_stats_reports_the_create_options() {
    let (_server, mut c) = server().await;
    let r = c
        .command(
            "db",
            doc! { "create": "capped", "capped": true, "size": 4096 },
        )
        .await;
    assert!(ok(&r), "{r}");
    c.command(
        "db",
        doc! { "insert": "capped", "documents": [{ "_id": 1, "x": 11 }] },
    )
    .await;
    let r = c
        .command(
            "db",
            doc! { "aggregate": "capped", "pipeline": [
                { "$collStats": { "storageStats": {}, "count": {} } },
                { "$project": { "capped": "$storageStats.capped", "maxSize": "$storageStats.maxSize", "count": 1 } },
            ], "cursor": {} },
        )
        .await;
    assert_eq!(
        first_batch(&r),
        vec![doc! { "count": 1_i64, "capped": true, "maxSize": 4096 }],
        "{r}"
    );
    // Not first, on {aggregate: 1}, a missing collection, a statistic the testkit lacks.
    let r = c
        .command(
            "db",
            doc! { "aggregate": "capped", "pipeline": [{ "$match": {} }, { "$collStats": {} }], "cursor": {} },
        )
        .await;
    assert_eq!(code(&r), 40602, "{r}");
    let r = c
        .command(
            "db",
            doc! { "aggregate": 1, "pipeline": [{ "$collStats": {} }], "cursor": {} },
        )
        .await;
    assert_eq!(code(&r), 73, "{r}");
    let r = c
        .command(
            "db",
            doc! { "aggregate": "missing", "pipeline": [{ "$collStats": { "storageStats": {} } }], "cursor": {} },
        )
        .await;
    assert_eq!(code(&r), 26, "{r}");
    let r = c
        .command(
            "db",
            doc! { "aggregate": "capped", "pipeline": [{ "$collStats": { "latencyStats": {} } }], "cursor": {} },
        )
        .await;
    assert_eq!(code(&r), 2, "{r}");
}

#[tokio::test]
async fn list_local_sessions_sees_the_sessions_commands_carried() {
    let (_server, mut c) = server().await;
    let id = bson::Binary {
        subtype: bson::spec::BinarySubtype::Uuid,
        bytes: vec![7; 16],
    };
    let lsid = doc! { "id": Bson::Binary(id.clone()) };
    let r = c
        .command(
            "admin",
            doc! { "aggregate": 1, "pipeline": [{ "$listLocalSessions": {} }, { "$limit": 1 }], "cursor": {}, "lsid": lsid.clone() },
        )
        .await;
    let batch = first_batch(&r);
    assert_eq!(batch.len(), 1, "{r}");
    let key = batch[0].get_document("_id").unwrap();
    assert_eq!(key.get("id"), Some(&Bson::Binary(id)));
    // The unauthenticated user's digest: SHA-256 of "".
    assert_eq!(
        key.get_binary_generic("uid").unwrap()[..4],
        [0xe3, 0xb0, 0xc4, 0x42]
    );
    assert!(batch[0].get_datetime("lastUse").is_ok());
    // Any database; endSessions forgets it.
    c.command("db", doc! { "endSessions": [lsid] }).await;
    let r = c
        .command(
            "db",
            doc! { "aggregate": 1, "pipeline": [{ "$listLocalSessions": { "allUsers": true } }], "cursor": {} },
        )
        .await;
    assert!(first_batch(&r).is_empty(), "{r}");
    let r = c
        .command(
            "db",
            doc! { "aggregate": "coll", "pipeline": [{ "$listLocalSessions": {} }], "cursor": {} },
        )
        .await;
    assert_eq!(code(&r), 73, "{r}");
}

#[tokio::test]
async fn update_pipelines_and_their_unknown_stages() {
    let (_server, mut c) = server().await;
    c.command(
        "db",
        doc! { "insert": "c", "documents": [{ "_id": 1, "x": 11 }] },
    )
    .await;
    // An unknown stage fails the command (ok: 0), before any statement runs.
    let r = c
        .command(
            "db",
            doc! { "update": "c", "updates": [
                { "q": { "_id": 1 }, "u": { "$set": { "y": 1 } } },
                { "q": { "x": 1 }, "u": [{ "$invalidOperator": true }] },
            ] },
        )
        .await;
    assert_eq!(code(&r), 40324, "{r}");
    let r = c.command("db", doc! { "find": "c" }).await;
    assert_eq!(first_batch(&r), vec![doc! { "_id": 1, "x": 11 }]);
    let r = c
        .command(
            "db",
            doc! { "update": "c", "updates": [
                { "q": { "_id": 1 }, "u": [{ "$set": { "y": "$x" } }, { "$unset": "x" }] },
                { "q": { "_id": 2 }, "u": [{ "$replaceWith": { "z": 1 } }], "upsert": true },
                { "q": { "_id": 1 }, "u": [{ "$match": {} }] },
            ] },
        )
        .await;
    assert_eq!(r.get_i32("nModified").ok(), Some(1), "{r}");
    let errors = r.get_array("writeErrors").unwrap();
    assert_eq!(
        errors[0].as_document().unwrap().get_i32("code").ok(),
        Some(72)
    );
    let r = c
        .command("db", doc! { "find": "c", "sort": { "_id": 1 } })
        .await;
    assert_eq!(
        first_batch(&r),
        vec![doc! { "_id": 1, "y": 11 }, doc! { "_id": 2, "z": 1 }]
    );
}

#[tokio::test]
async fn list_indexes_honours_the_batch_size() {
    let (_server, mut c) = server().await;
    c.command(
        "db",
        doc! { "createIndexes": "c", "indexes": [
            { "key": { "x": 1 }, "name": "x_1" },
            { "key": { "y": 1 }, "name": "y_1" },
        ] },
    )
    .await;
    let r = c
        .command(
            "db",
            doc! { "listIndexes": "c", "cursor": { "batchSize": 2 } },
        )
        .await;
    assert_eq!(first_batch(&r).len(), 2, "{r}");
    let id = r.get_document("cursor").unwrap().get_i64("id").unwrap();
    assert_ne!(id, 0);
    let more = c
        .command("db", doc! { "getMore": id, "collection": "c" })
        .await;
    let next = more
        .get_document("cursor")
        .unwrap()
        .get_array("nextBatch")
        .unwrap();
    assert_eq!(next.len(), 1, "{more}");
}
