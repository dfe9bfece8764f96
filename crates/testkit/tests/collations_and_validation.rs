//! What a command's context changes, over real sockets: `collation` in find, distinct,
//! updates and deletes; `$expr` with `let` variables; pipeline updates with `$setField`;
//! and what a collection refuses: unique index keys (with `keyPattern` / `keyValue`),
//! documents its validator rejects (with `errInfo`), `_id`s with `$` fields, and writes to
//! a view, whose reads go through its pipeline.
#![allow(
    clippy::disallowed_methods,
    reason = "integration tests own their clock and tasks"
)]

mod common;

use bson::{Bson, Document, doc};
use common::{Client, code, ok};
use mongo_testkit::{ServerOptions, TestServer};

async fn server() -> (TestServer, Client) {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let mut c = Client::connect(server.address()).await;
    let r = c
        .command(
            "db",
            doc! { "insert": "c", "documents": [
                { "_id": 1, "x": 11 }, { "_id": 2, "x": "ping" }, { "_id": 3, "x": "pINg" },
            ] },
        )
        .await;
    assert!(ok(&r), "{r}");
    (server, c)
}

fn first_batch(reply: &Document) -> Vec<Document> {
    reply
        .get_document("cursor")
        .and_then(|c| c.get_array("firstBatch"))
        .map(|a| a.iter().filter_map(|d| d.as_document().cloned()).collect())
        .unwrap_or_else(|_| panic!("no cursor in {reply}"))
}

fn ids(reply: &Document) -> Vec<Bson> {
    first_batch(reply)
        .iter()
        .filter_map(|d| d.get("_id").cloned())
        .collect()
}

#[tokio::test]
async fn collation_applies_to_reads_and_writes() {
    let (_server, mut c) = server().await;
    let ci = doc! { "locale": "en_US", "strength": 2 };
    let r = c
        .command("db", doc! { "find": "c", "filter": { "x": "PING" } })
        .await;
    assert!(ids(&r).is_empty(), "{r}");
    let r = c
        .command(
            "db",
            doc! { "find": "c", "filter": { "x": "PING" }, "collation": ci.clone() },
        )
        .await;
    assert_eq!(ids(&r), vec![Bson::Int32(2), Bson::Int32(3)]);
    let r = c
        .command(
            "db",
            doc! { "distinct": "c", "key": "x", "query": { "_id": { "$gt": 1 } }, "collation": ci.clone() },
        )
        .await;
    assert_eq!(r.get_array("values").unwrap().len(), 1, "{r}");
    let r = c
        .command(
            "db",
            doc! { "update": "c", "updates": [
                { "q": { "x": "PING" }, "u": { "$set": { "y": 1 } }, "multi": true, "collation": ci.clone() },
                { "q": { "x": "PING" }, "u": { "$set": { "z": 1 } }, "multi": true },
            ] },
        )
        .await;
    assert_eq!(r.get_i32("n").ok(), Some(2), "{r}");
    let r = c
        .command(
            "db",
            doc! { "delete": "c", "deletes": [{ "q": { "x": "PING" }, "limit": 1, "collation": ci }] },
        )
        .await;
    assert_eq!(r.get_i32("n").ok(), Some(1), "{r}");
    let r = c
        .command(
            "db",
            doc! { "find": "c", "filter": {}, "collation": { "locale": "en", "bogus": 1 } },
        )
        .await;
    assert!(!ok(&r), "{r}");
}

#[tokio::test]
async fn expr_sees_let_variables_and_set_field_writes_odd_names() {
    let (_server, mut c) = server().await;
    let r = c
        .command(
            "db",
            doc! {
                "find": "c",
                "filter": { "$expr": { "$eq": ["$_id", "$$id"] } },
                "let": { "id": 3 },
            },
        )
        .await;
    assert_eq!(ids(&r), vec![Bson::Int32(3)], "{r}");
    let r = c
        .command(
            "db",
            doc! {
                "findAndModify": "c",
                "query": { "_id": 1 },
                "update": [
                    { "$replaceWith": { "$setField": { "field": { "$literal": "$a" }, "value": "$$v", "input": "$$ROOT" } } },
                ],
                "let": { "v": "set" },
                "new": true,
            },
        )
        .await;
    assert_eq!(
        r.get_document("value").ok(),
        Some(&doc! { "_id": 1, "x": 11, "$a": "set" }),
        "{r}"
    );
    let r = c
        .command(
            "db",
            doc! { "find": "c", "filter": { "$expr": { "$eq": ["$_id", "$$nope"] } } },
        )
        .await;
    assert_eq!(code(&r), 17276, "{r}");
    let r = c
        .command(
            "db",
            doc! { "find": "missing", "filter": { "$expr": { "$bogus": 1 } } },
        )
        .await;
    assert_eq!(code(&r), 168, "parsed before reading: {r}");
}

#[tokio::test]
async fn unique_indexes_and_validators_refuse_documents() {
    let (_server, mut c) = server().await;
    let r = c
        .command(
            "db",
            doc! { "createIndexes": "c", "indexes": [{ "key": { "x": 1 }, "name": "x_1", "unique": true }] },
        )
        .await;
    assert!(ok(&r), "{r}");
    let r = c
        .command(
            "db",
            doc! { "findAndModify": "c", "query": { "_id": 9 }, "update": { "$set": { "x": 11 } }, "upsert": true },
        )
        .await;
    assert_eq!(code(&r), 11000, "{r}");
    assert_eq!(r.get_document("keyPattern").ok(), Some(&doc! { "x": 1 }));
    assert_eq!(r.get_document("keyValue").ok(), Some(&doc! { "x": 11 }));
    let r = c
        .command(
            "db",
            doc! { "collMod": "c", "validator": { "x": { "$type": "string" } } },
        )
        .await;
    assert!(ok(&r), "{r}");
    let r = c
        .command(
            "db",
            doc! { "update": "c", "updates": [{ "q": { "_id": 2 }, "u": { "$set": { "x": 5 } } }] },
        )
        .await;
    let errors = r.get_array("writeErrors").expect("a write error");
    let e = errors[0].as_document().unwrap();
    assert_eq!(e.get_i32("code").ok(), Some(121), "{r}");
    let info = e.get_document("errInfo").unwrap();
    assert_eq!(info.get("failingDocumentId"), Some(&Bson::Int32(2)));
    assert!(info.get_document("details").is_ok());
    let r = c
        .command(
            "db",
            doc! { "insert": "c", "documents": [{ "_id": 7, "x": 1 }], "bypassDocumentValidation": true },
        )
        .await;
    assert_eq!(r.get_i32("n").ok(), Some(1), "{r}");
    let r = c
        .command(
            "db",
            doc! { "insert": "c", "documents": [{ "_id": { "$a": 1 }, "x": "q" }] },
        )
        .await;
    let errors = r.get_array("writeErrors").expect("a write error");
    assert_eq!(
        errors[0].as_document().unwrap().get_i32("code").ok(),
        Some(52)
    );
}

#[tokio::test]
async fn views_read_through_their_pipeline_and_refuse_writes() {
    let (_server, mut c) = server().await;
    let r = c
        .command(
            "db",
            doc! { "create": "v", "viewOn": "c", "pipeline": [{ "$match": { "_id": { "$gt": 1 } } }] },
        )
        .await;
    assert!(ok(&r), "{r}");
    let r = c.command("db", doc! { "count": "v" }).await;
    assert_eq!(r.get_i32("n").ok(), Some(2), "{r}");
    let r = c
        .command("db", doc! { "find": "v", "filter": { "_id": 3 } })
        .await;
    assert_eq!(ids(&r), vec![Bson::Int32(3)]);
    let r = c
        .command("db", doc! { "insert": "v", "documents": [{ "_id": 4 }] })
        .await;
    assert_eq!(code(&r), 166, "{r}");
    let r = c
        .command(
            "db",
            doc! { "listCollections": 1, "filter": { "name": "v" }, "cursor": {} },
        )
        .await;
    let entry = first_batch(&r).pop().expect("the view");
    assert_eq!(entry.get_str("type").ok(), Some("view"));
}
