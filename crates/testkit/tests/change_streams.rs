//! Change streams driven with raw commands, as a driver sends them: `aggregate` with
//! `$changeStream` on a collection, a database and the deployment; getMore's awaitData wait
//! and `postBatchResumeToken`; the events of inserts, updates (with `updateDescription`),
//! replacements, deletes, drops, renames and dropDatabase, with their invalidate;
//! `fullDocument` / `fullDocumentBeforeChange` with and without pre- and post-images; and
//! showExpandedEvents. Resuming and errors are in `change_stream_resume.rs`.
#![allow(
    clippy::disallowed_methods,
    reason = "integration tests own their clock and tasks"
)]

mod common;

use std::time::{Duration, Instant};

use bson::{Bson, doc, spec::BinarySubtype};
use common::change_streams::*;
use common::{Client, code, ok};
use mongo_testkit::{Deployment, DeploymentKind, ServerOptions};

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
    // nsType is 8.1's; the testkit reports 8.0.4 unless told otherwise.
    assert!(!got[0].contains_key("nsType"), "{}", got[0]);
    assert!(
        matches!(got[0].get("collectionUUID"), Some(Bson::Binary(b)) if b.subtype == BinarySubtype::Uuid)
    );
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
async fn ns_type_from_8_1() {
    let d = Deployment::start(
        DeploymentKind::ReplicaSet { members: 1 },
        ServerOptions::default().with_version("8.1.0", 26),
    )
    .await
    .unwrap();
    let mut a = Client::connect(d.servers()[0].address()).await;
    let r = watch(&mut a, "db", 1.into(), doc! { "showExpandedEvents": true }).await;
    let id = cursor_id(&r);
    run(&mut a, "db", doc! { "create": "c" }).await;
    run(
        &mut a,
        "db",
        doc! { "create": "v", "viewOn": "c", "pipeline": [] },
    )
    .await;
    let got = events(&mut a, "db", "$cmd.aggregate", id, 2).await;
    let types: Vec<_> = got.iter().map(|e| e.get_str("nsType").ok()).collect();
    assert_eq!(types, [Some("collection"), Some("view")]);
}

#[tokio::test]
async fn batches_stay_bounded_in_count_and_size() {
    let (_d, mut a, mut b) = replica_set().await;
    let r = watch(&mut a, "db", "c".into(), doc! {}).await;
    let id = cursor_id(&r);
    let docs: Vec<_> = (0..2500).map(|i| doc! { "_id": i }).collect();
    run(&mut b, "db", doc! { "insert": "c", "documents": docs }).await;
    // Without a batchSize the server still stops at what it read: all events come, in order.
    let first = batch(&get_more(&mut a, "db", "c", id).await);
    assert!(first.len() < 2500 && !first.is_empty(), "{}", first.len());
    let mut all = first;
    all.extend(events(&mut a, "db", "c", id, 2500 - all.len()).await);
    let keys: Vec<i32> = all
        .iter()
        .map(|e| {
            e.get_document("documentKey")
                .unwrap()
                .get_i32("_id")
                .unwrap()
        })
        .collect();
    assert_eq!(keys, (0..2500).collect::<Vec<_>>());
    // A batch stops before 16 MiB.
    let big = "x".repeat(1024 * 1024);
    for n in 0..2 {
        let docs: Vec<_> = (0..10)
            .map(|i| doc! { "_id": 10_000 + n * 10 + i, "s": big.clone() })
            .collect();
        run(&mut b, "db", doc! { "insert": "c", "documents": docs }).await;
    }
    let r = get_more(&mut a, "db", "c", id).await;
    let n = batch(&r).len();
    assert!((1..16).contains(&n), "{n} events of 1 MiB in one batch");
    assert_eq!(events(&mut a, "db", "c", id, 20 - n).await.len(), 20 - n);
}
