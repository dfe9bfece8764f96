//! Change streams driven with raw commands: resuming (`resumeAfter`, `startAfter`,
//! `startAtOperationTime`), the stages after `$changeStream`, mongod's errors, the fail
//! points the resumability tests use, transactions and mongos.
#![allow(
    clippy::disallowed_methods,
    reason = "integration tests own their clock and tasks"
)]

mod common;

use bson::{Bson, Document, doc, spec::BinarySubtype};
use common::change_streams::*;
use common::code;
use mongo_testkit::DeploymentKind;

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
    // Another collection's event is no resume point of this stream.
    run(
        &mut b,
        "db",
        doc! { "insert": "other", "documents": [{ "_id": 9 }] },
    )
    .await;
    let r = watch(
        &mut a,
        "db",
        1.into(),
        doc! { "startAtOperationTime": start_time },
    )
    .await;
    let other = batch(&r)
        .into_iter()
        .find(|e| e.get_document("ns").unwrap().get_str("coll").ok() == Some("other"))
        .unwrap();
    let r = a
        .command(
            "db",
            doc! { "aggregate": "c", "pipeline": [{ "$changeStream": { "resumeAfter": other.get_document("_id").unwrap().clone() } }], "cursor": {} },
        )
        .await;
    assert_eq!(code(&r), 280, "{r}");
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
