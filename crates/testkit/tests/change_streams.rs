//! Change streams driven with raw commands, as a driver sends them: `aggregate` with
//! `$changeStream` on a collection, a database and the deployment; getMore's awaitData wait
//! and `postBatchResumeToken`; the events of inserts, updates (with `updateDescription`),
//! replacements, deletes, drops, renames and dropDatabase, with their invalidate;
//! `fullDocument` / `fullDocumentBeforeChange` with and without pre- and post-images;
//! showExpandedEvents; resuming (`resumeAfter`, `startAfter`, `startAtOperationTime`);
//! transactions; the fail points the resumability tests use; and mongod's errors.
#![allow(
    clippy::disallowed_methods,
    reason = "integration tests own their clock and tasks"
)]

mod common;

use std::time::{Duration, Instant};

use bson::{Bson, Document, doc, spec::BinarySubtype};
use common::{Client, code, ok};
use mongo_testkit::{Deployment, DeploymentKind, ServerOptions};

async fn deployment(kind: DeploymentKind) -> (Deployment, Client, Client) {
    let d = Deployment::start(kind, ServerOptions::default())
        .await
        .unwrap();
    let a = Client::connect(d.servers()[0].address()).await;
    let b = Client::connect(d.servers()[0].address()).await;
    (d, a, b)
}

async fn replica_set() -> (Deployment, Client, Client) {
    deployment(DeploymentKind::ReplicaSet { members: 1 }).await
}

fn cursor(reply: &Document) -> &Document {
    reply
        .get_document("cursor")
        .unwrap_or_else(|_| panic!("no cursor in {reply}"))
}

fn batch(reply: &Document) -> Vec<Document> {
    let c = cursor(reply);
    c.get_array("firstBatch")
        .or_else(|_| c.get_array("nextBatch"))
        .unwrap()
        .iter()
        .filter_map(|d| d.as_document().cloned())
        .collect()
}

fn cursor_id(reply: &Document) -> i64 {
    cursor(reply).get_i64("id").unwrap()
}

fn pbrt(reply: &Document) -> Document {
    cursor(reply)
        .get_document("postBatchResumeToken")
        .unwrap_or_else(|_| panic!("no postBatchResumeToken in {reply}"))
        .clone()
}

fn op_type(event: &Document) -> &str {
    event.get_str("operationType").unwrap()
}

async fn watch(c: &mut Client, db: &str, target: Bson, spec: Document) -> Document {
    let r = c
        .command(
            db,
            doc! { "aggregate": target, "pipeline": [{ "$changeStream": spec }], "cursor": {} },
        )
        .await;
    assert!(ok(&r), "{r}");
    r
}

async fn get_more(c: &mut Client, db: &str, coll: &str, id: i64) -> Document {
    let r = c
        .command(
            db,
            doc! { "getMore": id, "collection": coll, "maxTimeMS": 50 },
        )
        .await;
    assert!(ok(&r), "{r}");
    r
}

/// getMores until `n` events came (or a few empty batches in a row).
async fn events(c: &mut Client, db: &str, coll: &str, id: i64, n: usize) -> Vec<Document> {
    let mut out = Vec::new();
    for _ in 0..20 {
        if out.len() >= n {
            break;
        }
        let r = get_more(c, db, coll, id).await;
        out.extend(batch(&r));
        if cursor_id(&r) == 0 {
            break;
        }
    }
    out
}

async fn run(c: &mut Client, db: &str, cmd: Document) -> Document {
    let r = c.command(db, cmd).await;
    assert!(ok(&r), "{r}");
    r
}

#[tokio::test]
async fn an_insert_reaches_a_collection_stream() {
    let (_d, mut a, mut b) = replica_set().await;
    let r = watch(&mut a, "db", "c".into(), doc! {}).await;
    assert!(batch(&r).is_empty(), "{r}");
    let id = cursor_id(&r);
    assert_ne!(id, 0);
    let start = pbrt(&r);
    assert!(start.get_str("_data").is_ok(), "{start}");
    assert_eq!(cursor(&r).get_str("ns").ok(), Some("db.c"));

    let r = run(
        &mut b,
        "db",
        doc! { "insert": "c", "documents": [{ "_id": 1, "x": 1 }] },
    )
    .await;
    let op_time = r.get_timestamp("operationTime").unwrap();
    // Another collection's writes are not this stream's.
    run(
        &mut b,
        "db",
        doc! { "insert": "other", "documents": [{ "_id": 1 }] },
    )
    .await;

    let r = get_more(&mut a, "db", "c", id).await;
    let got = batch(&r);
    assert_eq!(got.len(), 1, "{r}");
    let e = &got[0];
    assert_eq!(op_type(e), "insert");
    assert_eq!(
        e.get_document("ns").unwrap(),
        &doc! { "db": "db", "coll": "c" }
    );
    assert_eq!(e.get_document("documentKey").unwrap(), &doc! { "_id": 1 });
    assert_eq!(
        e.get_document("fullDocument").unwrap(),
        &doc! { "_id": 1, "x": 1 }
    );
    assert!(e.get_datetime("wallTime").is_ok(), "{e}");
    let ts = e.get_timestamp("clusterTime").unwrap();
    assert!((ts.time, ts.increment) <= (op_time.time, op_time.increment));
    assert!(
        !e.contains_key("collectionUUID"),
        "only with showExpandedEvents"
    );
    let token = e.get_document("_id").unwrap();
    assert!(token.get_str("_data").unwrap() > start.get_str("_data").unwrap());
    assert_eq!(cursor_id(&r), id);
    // Tokens only grow: the empty batch's high-water mark is past the event.
    let r = get_more(&mut a, "db", "c", id).await;
    assert!(batch(&r).is_empty());
    assert!(pbrt(&r).get_str("_data").unwrap() >= token.get_str("_data").unwrap());

    let r = run(&mut a, "db", doc! { "killCursors": "c", "cursors": [id] }).await;
    assert_eq!(r.get_array("cursorsKilled").unwrap().len(), 1);
    let r = a
        .command("db", doc! { "getMore": id, "collection": "c" })
        .await;
    assert_eq!(code(&r), 43, "{r}");
}

#[tokio::test]
async fn get_more_waits_for_events_up_to_max_time() {
    let (_d, mut a, mut b) = replica_set().await;
    let r = watch(&mut a, "db", "c".into(), doc! {}).await;
    let id = cursor_id(&r);
    let started = Instant::now();
    let r = a
        .command(
            "db",
            doc! { "getMore": id, "collection": "c", "maxTimeMS": 300 },
        )
        .await;
    assert!(started.elapsed() >= Duration::from_millis(250), "{r}");
    assert!(batch(&r).is_empty());
    assert!(pbrt(&r).get_str("_data").is_ok());

    // An insert wakes a waiting getMore long before its maxTimeMS.
    let waiter = tokio::spawn(async move {
        let started = Instant::now();
        let r = a
            .command(
                "db",
                doc! { "getMore": id, "collection": "c", "maxTimeMS": 10_000 },
            )
            .await;
        (r, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    run(
        &mut b,
        "db",
        doc! { "insert": "c", "documents": [{ "_id": 2 }] },
    )
    .await;
    let (r, took) = waiter.await.unwrap();
    assert_eq!(batch(&r).len(), 1, "{r}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn updates_replacements_and_deletes() {
    let (_d, mut a, mut b) = replica_set().await;
    run(
        &mut b,
        "db",
        doc! { "insert": "c", "documents": [
            { "_id": 1, "a": 1, "array": ["foo", { "a": "bar" }, 1, 2, 3], "gone": true },
        ] },
    )
    .await;
    let r = watch(
        &mut a,
        "db",
        "c".into(),
        doc! { "fullDocument": "updateLookup" },
    )
    .await;
    let id = cursor_id(&r);
    run(
        &mut b,
        "db",
        doc! { "update": "c", "updates": [
            { "q": { "_id": 1 }, "u": { "$set": { "a": 2 }, "$unset": { "gone": "" } } },
            { "q": { "_id": 1 }, "u": [{ "$set": { "array": ["foo", { "a": "bar" }] } }] },
            { "q": { "_id": 1 }, "u": { "_id": 1, "replaced": true } },
        ] },
    )
    .await;
    run(
        &mut b,
        "db",
        doc! { "delete": "c", "deletes": [{ "q": { "_id": 1 }, "limit": 1 }] },
    )
    .await;
    let got = events(&mut a, "db", "c", id, 4).await;
    let kinds: Vec<&str> = got.iter().map(op_type).collect();
    assert_eq!(kinds, ["update", "update", "replace", "delete"]);
    let d = got[0].get_document("updateDescription").unwrap();
    assert_eq!(d.get_document("updatedFields").unwrap(), &doc! { "a": 2 });
    assert_eq!(
        d.get_array("removedFields").unwrap(),
        &vec![Bson::from("gone")]
    );
    assert!(!d.contains_key("disambiguatedPaths"));
    // updateLookup reads the document as it is now: deleted.
    assert_eq!(got[0].get("fullDocument"), Some(&Bson::Null));
    let d = got[1].get_document("updateDescription").unwrap();
    assert_eq!(
        d.get_array("truncatedArrays").unwrap(),
        &vec![Bson::Document(doc! { "field": "array", "newSize": 2 })]
    );
    assert_eq!(
        got[2].get_document("fullDocument").unwrap(),
        &doc! { "_id": 1, "replaced": true }
    );
    assert_eq!(
        got[3].get_document("documentKey").unwrap(),
        &doc! { "_id": 1 }
    );
    assert!(!got[3].contains_key("fullDocumentBeforeChange"));

    // updateLookup of a document still there.
    run(
        &mut b,
        "db",
        doc! { "insert": "c", "documents": [{ "_id": 2, "n": 1 }] },
    )
    .await;
    run(
        &mut b,
        "db",
        doc! { "findAndModify": "c", "query": { "_id": 2 }, "update": { "$inc": { "n": 1 } } },
    )
    .await;
    let got = events(&mut a, "db", "c", id, 2).await;
    assert_eq!(op_type(&got[1]), "update");
    assert_eq!(
        got[1].get_document("fullDocument").unwrap(),
        &doc! { "_id": 2, "n": 2 }
    );
}

#[tokio::test]
async fn pre_and_post_images_follow_the_collection_option() {
    let (_d, mut a, mut b) = replica_set().await;
    run(
        &mut b,
        "db",
        doc! { "insert": "c", "documents": [{ "_id": 1 }] },
    )
    .await;
    for enabled in [true, false] {
        run(
            &mut b,
            "db",
            doc! { "collMod": "c", "changeStreamPreAndPostImages": { "enabled": enabled } },
        )
        .await;
        let lenient = watch(
            &mut a,
            "db",
            "c".into(),
            doc! { "fullDocument": "whenAvailable", "fullDocumentBeforeChange": "whenAvailable" },
        )
        .await;
        let strict = watch(
            &mut a,
            "db",
            "c".into(),
            doc! { "fullDocument": "required", "fullDocumentBeforeChange": "required" },
        )
        .await;
        run(
            &mut b,
            "db",
            doc! { "update": "c", "updates": [{ "q": { "_id": 1 }, "u": { "$inc": { "x": 1 } } }] },
        )
        .await;
        let got = events(&mut a, "db", "c", cursor_id(&lenient), 1).await;
        let strict_reply = a
            .command(
                "db",
                doc! { "getMore": cursor_id(&strict), "collection": "c", "maxTimeMS": 50 },
            )
            .await;
        if enabled {
            let after = got[0].get_document("fullDocument").unwrap();
            let before = got[0].get_document("fullDocumentBeforeChange").unwrap();
            assert_eq!(after.get("x"), Some(&Bson::Int32(1)), "{after}");
            assert_eq!(before, &doc! { "_id": 1 });
            assert!(ok(&strict_reply), "{strict_reply}");
            assert_eq!(batch(&strict_reply).len(), 1);
        } else {
            assert_eq!(got[0].get("fullDocument"), Some(&Bson::Null));
            assert_eq!(got[0].get("fullDocumentBeforeChange"), Some(&Bson::Null));
            assert_eq!(code(&strict_reply), 47, "{strict_reply}");
        }
    }
}

#[tokio::test]
async fn drop_and_rename_invalidate_a_collection_stream() {
    let (_d, mut a, mut b) = replica_set().await;
    run(
        &mut b,
        "db",
        doc! { "insert": "c", "documents": [{ "_id": 1 }] },
    )
    .await;
    let r = watch(&mut a, "db", "c".into(), doc! {}).await;
    let id = cursor_id(&r);
    run(&mut b, "db", doc! { "drop": "c" }).await;
    let r = get_more(&mut a, "db", "c", id).await;
    let got = batch(&r);
    assert_eq!(
        got.iter().map(op_type).collect::<Vec<_>>(),
        ["drop", "invalidate"]
    );
    assert_eq!(cursor_id(&r), 0, "the cursor closes after the invalidate");
    let invalidate = got[1].get_document("_id").unwrap().clone();
    assert_eq!(pbrt(&r), invalidate);
    let drop_token = got[0].get_document("_id").unwrap().clone();

    // resumeAfter cannot follow an invalidate; startAfter can; resuming after the drop gives
    // the invalidate again.
    let r = a
        .command(
            "db",
            doc! { "aggregate": "c", "pipeline": [{ "$changeStream": { "resumeAfter": invalidate.clone() } }], "cursor": {} },
        )
        .await;
    assert_eq!(code(&r), 260, "{r}");
    let r = watch(&mut a, "db", "c".into(), doc! { "resumeAfter": drop_token }).await;
    let got = batch(&r);
    assert_eq!(got.len(), 1, "{r}");
    assert_eq!(op_type(&got[0]), "invalidate");
    assert_eq!(cursor_id(&r), 0);
    let r = watch(&mut a, "db", "c".into(), doc! { "startAfter": invalidate }).await;
    let id = cursor_id(&r);
    assert_ne!(id, 0);
    run(
        &mut b,
        "db",
        doc! { "insert": "c", "documents": [{ "_id": 2 }] },
    )
    .await;
    run(
        &mut b,
        "admin",
        doc! { "renameCollection": "db.c", "to": "db.d" },
    )
    .await;
    let got = events(&mut a, "db", "c", id, 3).await;
    assert_eq!(
        got.iter().map(op_type).collect::<Vec<_>>(),
        ["insert", "rename", "invalidate"]
    );
    assert_eq!(
        got[1].get_document("to").unwrap(),
        &doc! { "db": "db", "coll": "d" }
    );
    // The renamed collection kept its documents.
    let r = run(&mut b, "db", doc! { "find": "d", "filter": {} }).await;
    assert_eq!(batch(&r).len(), 1);
    let r = b
        .command(
            "admin",
            doc! { "renameCollection": "db.nope", "to": "db.d" },
        )
        .await;
    assert_eq!(code(&r), 26, "{r}");
    run(&mut b, "db", doc! { "create": "e" }).await;
    let r = b
        .command("admin", doc! { "renameCollection": "db.d", "to": "db.e" })
        .await;
    assert_eq!(code(&r), 48, "{r}");
}

#[tokio::test]
async fn database_and_cluster_streams() {
    let (_d, mut a, mut b) = replica_set().await;
    let r = watch(&mut a, "db", 1.into(), doc! {}).await;
    let db_id = cursor_id(&r);
    assert_eq!(cursor(&r).get_str("ns").ok(), Some("db.$cmd.aggregate"));
    let r = watch(
        &mut a,
        "admin",
        1.into(),
        doc! { "allChangesForCluster": true },
    )
    .await;
    let all_id = cursor_id(&r);
    run(
        &mut b,
        "db",
        doc! { "insert": "c1", "documents": [{ "_id": 1 }] },
    )
    .await;
    run(
        &mut b,
        "other",
        doc! { "insert": "c2", "documents": [{ "_id": 2 }] },
    )
    .await;
    run(&mut b, "db", doc! { "dropDatabase": 1 }).await;
    run(
        &mut b,
        "other",
        doc! { "insert": "c2", "documents": [{ "_id": 3 }] },
    )
    .await;
    let got = events(&mut a, "db", "$cmd.aggregate", db_id, 4).await;
    assert_eq!(
        got.iter().map(op_type).collect::<Vec<_>>(),
        ["insert", "drop", "dropDatabase", "invalidate"]
    );
    assert_eq!(got[2].get_document("ns").unwrap(), &doc! { "db": "db" });
    let got = events(&mut a, "admin", "$cmd.aggregate", all_id, 5).await;
    assert_eq!(
        got.iter().map(op_type).collect::<Vec<_>>(),
        ["insert", "insert", "drop", "dropDatabase", "insert"],
        "the cluster's stream is never invalidated"
    );
    let r = a
        .command(
            "db",
            doc! { "aggregate": 1, "pipeline": [{ "$changeStream": { "allChangesForCluster": true } }], "cursor": {} },
        )
        .await;
    assert_eq!(code(&r), 73, "{r}");
}

#[tokio::test]
async fn expanded_events() {
    let (_d, mut a, mut b) = replica_set().await;
    let r = watch(&mut a, "db", 1.into(), doc! { "showExpandedEvents": true }).await;
    let id = cursor_id(&r);
    let plain = watch(&mut a, "db", 1.into(), doc! {}).await;
    run(&mut b, "db", doc! { "create": "c" }).await;
    run(
        &mut b,
        "db",
        doc! { "create": "v", "viewOn": "c", "pipeline": [] },
    )
    .await;
    run(
        &mut b,
        "db",
        doc! { "insert": "c", "documents": [{ "_id": 1, "a": { "1": 1 } }] },
    )
    .await;
    run(
        &mut b,
        "db",
        doc! { "update": "c", "updates": [{ "q": { "_id": 1 }, "u": { "$set": { "a.1": 2 } } }] },
    )
    .await;
    run(
        &mut b,
        "db",
        doc! { "createIndexes": "c", "indexes": [{ "key": { "x": 1 }, "name": "x_1" }] },
    )
    .await;
    run(&mut b, "db", doc! { "dropIndexes": "c", "index": "x_1" }).await;
    run(
        &mut b,
        "db",
        doc! { "collMod": "c", "validator": { "x": 1 } },
    )
    .await;
    run(
        &mut b,
        "admin",
        doc! { "renameCollection": "db.c", "to": "db.d", "dropTarget": true },
    )
    .await;
    let got = events(&mut a, "db", "$cmd.aggregate", id, 8).await;
    assert_eq!(
        got.iter().map(op_type).collect::<Vec<_>>(),
        [
            "create",
            "create",
            "insert",
            "update",
            "createIndexes",
            "dropIndexes",
            "modify",
            "rename"
        ]
    );
    assert_eq!(got[0].get_str("nsType").ok(), Some("collection"));
    assert!(
        matches!(got[0].get("collectionUUID"), Some(Bson::Binary(b)) if b.subtype == BinarySubtype::Uuid)
    );
    assert_eq!(got[1].get_str("nsType").ok(), Some("view"));
    assert_eq!(
        got[1].get_document("operationDescription").unwrap(),
        &doc! { "viewOn": "c", "pipeline": [] }
    );
    assert!(got[2].contains_key("collectionUUID"));
    assert_eq!(
        got[3]
            .get_document("updateDescription")
            .unwrap()
            .get_document("disambiguatedPaths")
            .unwrap(),
        &doc! { "a.1": ["a", "1"] }
    );
    let indexes = got[4]
        .get_document("operationDescription")
        .unwrap()
        .get_array("indexes")
        .unwrap();
    assert_eq!(
        indexes[0].as_document().unwrap().get_str("name").ok(),
        Some("x_1")
    );
    assert!(got[6].get_document("stateBeforeChange").is_ok());
    let desc = got[7].get_document("operationDescription").unwrap();
    assert_eq!(
        desc.get_document("to").unwrap(),
        &doc! { "db": "db", "coll": "d" }
    );
    assert_eq!(desc.get("dropTarget"), Some(&Bson::Boolean(false)));
    // Without showExpandedEvents: only the insert, the update and the rename.
    let got = events(&mut a, "db", "$cmd.aggregate", cursor_id(&plain), 3).await;
    assert_eq!(
        got.iter().map(op_type).collect::<Vec<_>>(),
        ["insert", "update", "rename"]
    );
}

#[tokio::test]
async fn resuming_from_tokens_and_times() {
    let (_d, mut a, mut b) = replica_set().await;
    let r = watch(&mut a, "db", "c".into(), doc! {}).await;
    let start_time = r.get_timestamp("operationTime").unwrap();
    let id = cursor_id(&r);
    run(
        &mut b,
        "db",
        doc! { "insert": "c", "documents": [{ "_id": 1 }, { "_id": 2 }, { "_id": 3 }] },
    )
    .await;
    let got = events(&mut a, "db", "c", id, 3).await;
    assert_eq!(got.len(), 3);
    let after_first = got[0].get_document("_id").unwrap().clone();
    // resumeAfter: the events after the token, in the first batch when there.
    let r = watch(
        &mut a,
        "db",
        "c".into(),
        doc! { "resumeAfter": after_first.clone() },
    )
    .await;
    let ids: Vec<_> = batch(&r)
        .iter()
        .map(|e| e.get_document("documentKey").unwrap().get("_id").cloned())
        .collect();
    assert_eq!(ids, [Some(Bson::Int32(2)), Some(Bson::Int32(3))]);
    // batchSize bounds the first batch; the postBatchResumeToken is the last event's.
    let r = run(
        &mut a,
        "db",
        doc! { "aggregate": "c", "pipeline": [{ "$changeStream": { "startAfter": after_first } }], "cursor": { "batchSize": 1 } },
    )
    .await;
    let first = batch(&r);
    assert_eq!(first.len(), 1);
    assert_eq!(&pbrt(&r), first[0].get_document("_id").unwrap());
    // startAtOperationTime: from that cluster time on.
    let r = watch(
        &mut a,
        "db",
        "c".into(),
        doc! { "startAtOperationTime": start_time },
    )
    .await;
    assert_eq!(batch(&r).len(), 3, "{r}");
    // A token the log never had.
    let r = a
        .command(
            "db",
            doc! { "aggregate": "c", "pipeline": [{ "$changeStream": { "resumeAfter": { "_data": "82000000010000000100000000FFFFFFFF01" } } }], "cursor": {} },
        )
        .await;
    assert_eq!(code(&r), 280, "{r}");
    let r = a
        .command(
            "db",
            doc! { "aggregate": "c", "pipeline": [{ "$changeStream": { "resumeAfter": { "_data": "nonsense" } } }], "cursor": {} },
        )
        .await;
    assert_eq!(code(&r), 260, "{r}");
}

#[tokio::test]
async fn stages_after_change_stream_and_errors() {
    let (d, mut a, mut b) = replica_set().await;
    let r = watch(&mut a, "db", "c".into(), doc! {}).await;
    let plain = cursor_id(&r);
    let matched = run(
        &mut a,
        "db",
        doc! { "aggregate": "c", "pipeline": [
            { "$changeStream": {} },
            { "$match": { "fullDocument.z": 3 } },
            { "$project": { "optype": "$operationType", "ns": 1 } },
        ], "cursor": {} },
    )
    .await;
    let bad_id = run(
        &mut a,
        "db",
        doc! { "aggregate": "c", "pipeline": [{ "$changeStream": {} }, { "$project": { "_id": 0 } }], "cursor": {} },
    )
    .await;
    run(
        &mut b,
        "db",
        doc! { "insert": "c", "documents": [{ "_id": 1, "z": 1 }, { "_id": 2, "z": 3 }] },
    )
    .await;
    let got = events(&mut a, "db", "c", cursor_id(&matched), 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].get_str("optype").ok(), Some("insert"));
    assert!(got[0].contains_key("_id") && !got[0].contains_key("fullDocument"));
    assert_eq!(events(&mut a, "db", "c", plain, 2).await.len(), 2);
    let r = a
        .command(
            "db",
            doc! { "getMore": cursor_id(&bad_id), "collection": "c" },
        )
        .await;
    assert_eq!(code(&r), 280, "{r}");
    assert!(
        r.get_array("errorLabels")
            .unwrap()
            .contains(&Bson::from("NonResumableChangeStreamError")),
        "{r}"
    );

    for (pipeline, want) in [
        (
            vec![doc! { "$changeStream": {} }, doc! { "$unsupported": "foo" }],
            40324,
        ),
        (
            vec![
                doc! { "$changeStream": {} },
                doc! { "$group": { "_id": null } },
            ],
            20,
        ),
        (
            vec![doc! { "$match": {} }, doc! { "$changeStream": {} }],
            40602,
        ),
        (vec![doc! { "$changeStream": { "bogus": 1 } }], 40415),
        (
            vec![doc! { "$changeStream": { "fullDocument": "sometimes" } }],
            2,
        ),
    ] {
        let r = a
            .command(
                "db",
                doc! { "aggregate": "c", "pipeline": pipeline.clone(), "cursor": {} },
            )
            .await;
        assert_eq!(code(&r), want, "{pipeline:?}: {r}");
    }
    drop(d);

    let (_single, mut s, _) = deployment(DeploymentKind::Single).await;
    let r = s
        .command(
            "db",
            doc! { "aggregate": "c", "pipeline": [{ "$changeStream": {} }], "cursor": {} },
        )
        .await;
    assert_eq!(code(&r), 40573, "{r}");
}

#[tokio::test]
async fn fail_points_reach_change_stream_commands() {
    let (d, mut a, mut b) = replica_set().await;
    let r = watch(&mut a, "db", "c".into(), doc! {}).await;
    let id = cursor_id(&r);
    d.configure_fail_point(doc! {
        "configureFailPoint": "failGetMoreAfterCursorCheckout",
        "mode": { "times": 1 },
        "data": { "errorCode": 6 },
    })
    .unwrap();
    run(
        &mut b,
        "db",
        doc! { "insert": "c", "documents": [{ "_id": 1 }] },
    )
    .await;
    let r = a
        .command("db", doc! { "getMore": id, "collection": "c" })
        .await;
    assert_eq!(code(&r), 6, "{r}");
    assert!(
        r.get_array("errorLabels")
            .unwrap()
            .contains(&Bson::from("ResumableChangeStreamError")),
        "{r}"
    );
    // The error killed the cursor, as mongod's does.
    let r = a
        .command("db", doc! { "getMore": id, "collection": "c" })
        .await;
    assert_eq!(code(&r), 43, "{r}");

    d.configure_fail_point(doc! {
        "configureFailPoint": "failCommand",
        "mode": { "times": 1 },
        "data": { "failCommands": ["aggregate"], "errorCode": 11600 },
    })
    .unwrap();
    let r = a
        .command(
            "db",
            doc! { "aggregate": "c", "pipeline": [{ "$changeStream": {} }], "cursor": {} },
        )
        .await;
    assert_eq!(code(&r), 11600, "{r}");
}

#[tokio::test]
async fn transaction_writes_appear_at_commit() {
    let (_d, mut a, mut b) = replica_set().await;
    run(&mut b, "db", doc! { "create": "c" }).await;
    let r = watch(&mut a, "db", "c".into(), doc! {}).await;
    let id = cursor_id(&r);
    let lsid = doc! { "id": Bson::Binary(bson::Binary { subtype: BinarySubtype::Uuid, bytes: vec![7; 16] }) };
    let txn = |mut cmd: Document, start: bool| {
        cmd.insert("lsid", lsid.clone());
        cmd.insert("txnNumber", 1_i64);
        if start {
            cmd.insert("startTransaction", true);
        }
        cmd.insert("autocommit", false);
        cmd
    };
    run(
        &mut b,
        "db",
        txn(doc! { "insert": "c", "documents": [{ "_id": 1 }] }, true),
    )
    .await;
    run(
        &mut b,
        "db",
        txn(doc! { "insert": "c", "documents": [{ "_id": 2 }] }, false),
    )
    .await;
    let r = get_more(&mut a, "db", "c", id).await;
    assert!(batch(&r).is_empty(), "nothing before the commit: {r}");
    run(&mut b, "admin", txn(doc! { "commitTransaction": 1 }, false)).await;
    let got = events(&mut a, "db", "c", id, 2).await;
    assert_eq!(got.len(), 2);
    for e in &got {
        assert_eq!(e.get_document("lsid").unwrap(), &lsid);
        assert_eq!(e.get_i64("txnNumber").ok(), Some(1));
    }
    assert_eq!(
        got[0].get_timestamp("clusterTime").unwrap(),
        got[1].get_timestamp("clusterTime").unwrap(),
        "one commit, one cluster time"
    );
}

#[tokio::test]
async fn mongos_serves_change_streams() {
    let (_d, mut a, mut b) = deployment(DeploymentKind::Sharded { routers: 2 }).await;
    let r = watch(
        &mut a,
        "db",
        "c".into(),
        doc! { "showExpandedEvents": true },
    )
    .await;
    let id = cursor_id(&r);
    run(
        &mut b,
        "admin",
        doc! { "shardCollection": "db.c", "key": { "x": 1 } },
    )
    .await;
    run(
        &mut b,
        "db",
        doc! { "insert": "c", "documents": [{ "_id": 1, "x": 5 }] },
    )
    .await;
    let got = events(&mut a, "db", "c", id, 3).await;
    assert_eq!(
        got.iter().map(op_type).collect::<Vec<_>>(),
        ["create", "shardCollection", "insert"]
    );
    assert_eq!(
        got[1]
            .get_document("operationDescription")
            .unwrap()
            .get_document("shardKey")
            .unwrap(),
        &doc! { "x": 1 }
    );
    // On a sharded collection the documentKey has the shard key's fields.
    assert_eq!(
        got[2].get_document("documentKey").unwrap(),
        &doc! { "x": 5, "_id": 1 }
    );
    // A view refuses change streams.
    run(
        &mut b,
        "db",
        doc! { "create": "v", "viewOn": "c", "pipeline": [] },
    )
    .await;
    let r = b
        .command(
            "db",
            doc! { "aggregate": "v", "pipeline": [{ "$changeStream": {} }], "cursor": {} },
        )
        .await;
    assert_eq!(code(&r), 166, "{r}");
}
