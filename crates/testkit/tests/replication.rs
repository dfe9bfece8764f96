//! Replica-set members with their own data: a lagging secondary serves stale reads until it
//! applies the primary's writes, `afterClusterTime` reads wait for it, `w: N` / `majority`
//! writes wait (or time out with `wtimeout`), hello reports each member's `lastWrite`, and a
//! new primary keeps only what it had applied.
#![allow(
    clippy::disallowed_methods,
    reason = "integration tests own their clock and tasks"
)]

mod common;

use std::time::{Duration, Instant};

use bson::{Bson, Document, Timestamp, doc};
use common::{Client, code, ok};
use mongo_testkit::{ReplicaSet, ServerOptions};

const LAG: Duration = Duration::from_millis(600);

async fn lagging_set() -> ReplicaSet {
    ReplicaSet::start_with("lag", 3, ServerOptions::default().with_replication_lag(LAG))
        .await
        .unwrap()
}

fn batch(reply: &Document) -> Vec<Document> {
    reply
        .get_document("cursor")
        .and_then(|c| c.get_array("firstBatch"))
        .map(|b| b.iter().filter_map(Bson::as_document).cloned().collect())
        .unwrap_or_default()
}

fn secondary_find(filter: Document) -> Document {
    doc! {
        "find": "c",
        "filter": filter,
        "$readPreference": { "mode": "secondary" },
    }
}

fn last_write_ts(hello: &Document) -> Timestamp {
    hello
        .get_document("lastWrite")
        .and_then(|l| l.get_document("opTime"))
        .and_then(|o| o.get_timestamp("ts"))
        .unwrap()
}

fn key(ts: Timestamp) -> (u32, u32) {
    (ts.time, ts.increment)
}

#[tokio::test]
async fn a_lagging_secondary_is_stale_until_after_cluster_time_waits_for_it() {
    let rs = lagging_set().await;
    let mut primary = Client::connect(rs.member(0).unwrap().address()).await;
    let mut secondary = Client::connect(rs.member(1).unwrap().address()).await;
    let inserted = primary
        .command("db", doc! { "insert": "c", "documents": [{ "_id": 1 }] })
        .await;
    assert!(ok(&inserted), "{inserted}");
    let operation_time = inserted.get_timestamp("operationTime").unwrap();

    // The secondary has not applied the insert yet: its read is stale, its lastWrite behind.
    let stale = secondary.command("db", secondary_find(doc! {})).await;
    assert!(ok(&stale), "{stale}");
    assert!(batch(&stale).is_empty(), "{stale}");
    assert!(rs.documents_on(1, "db", "c").unwrap().is_empty());
    assert_eq!(rs.documents_on(0, "db", "c").unwrap().len(), 1);
    let hello = secondary.command("admin", doc! { "hello": 1 }).await;
    assert!(key(last_write_ts(&hello)) < key(operation_time), "{hello}");

    // A causal read with a short maxTimeMS gives up as mongod does.
    let mut cmd = secondary_find(doc! {});
    cmd.insert("readConcern", doc! { "afterClusterTime": operation_time });
    cmd.insert("maxTimeMS", 50);
    let expired = secondary.command("db", cmd.clone()).await;
    assert_eq!(code(&expired), 50, "{expired}");

    // Without one it waits until the secondary applied the insert, then sees it.
    cmd.remove("maxTimeMS");
    let started = Instant::now();
    let fresh = secondary.command("db", cmd).await;
    assert!(ok(&fresh), "{fresh}");
    assert_eq!(batch(&fresh), vec![doc! { "_id": 1 }]);
    assert!(started.elapsed() >= Duration::from_millis(200), "it waited");
    let hello = secondary.command("admin", doc! { "hello": 1 }).await;
    assert!(key(last_write_ts(&hello)) >= key(operation_time), "{hello}");
    rs.stop().await;
}

#[tokio::test]
async fn majority_writes_wait_and_wtimeout_reports_write_concern_failed() {
    let rs = lagging_set().await;
    let mut primary = Client::connect(rs.member(0).unwrap().address()).await;

    // w: 1 does not wait for the secondaries.
    let started = Instant::now();
    let w1 = primary
        .command(
            "db",
            doc! { "insert": "c", "documents": [{ "_id": 1 }], "writeConcern": { "w": 1 } },
        )
        .await;
    assert!(ok(&w1) && !w1.contains_key("writeConcernError"), "{w1}");
    assert!(started.elapsed() < LAG);

    // w: majority waits until a secondary applied it.
    let started = Instant::now();
    let majority = primary
        .command(
            "db",
            doc! { "insert": "c", "documents": [{ "_id": 2 }], "writeConcern": { "w": "majority" } },
        )
        .await;
    assert!(
        ok(&majority) && !majority.contains_key("writeConcernError"),
        "{majority}"
    );
    assert!(started.elapsed() >= LAG / 2, "it waited");
    assert_eq!(rs.documents_on(1, "db", "c").unwrap().len(), 2);

    // A linearizable read waits until a majority has the primary's writes; secondaries
    // refuse it.
    primary
        .command("db", doc! { "insert": "c", "documents": [{ "_id": 10 }] })
        .await;
    let linearizable = |max: Option<i32>| {
        let mut cmd = doc! { "find": "c", "readConcern": { "level": "linearizable" } };
        if let Some(ms) = max {
            cmd.insert("maxTimeMS", ms);
        }
        cmd
    };
    let expired = primary.command("db", linearizable(Some(50))).await;
    assert_eq!(code(&expired), 50, "{expired}");
    let started = Instant::now();
    let read = primary.command("db", linearizable(None)).await;
    assert_eq!(batch(&read).len(), 3, "{read}");
    assert!(started.elapsed() >= LAG / 4, "it waited");
    let mut secondary = Client::connect(rs.member(1).unwrap().address()).await;
    let mut on_secondary = linearizable(None);
    on_secondary.insert("$readPreference", doc! { "mode": "secondary" });
    let refused = secondary.command("db", on_secondary).await;
    assert_eq!(code(&refused), 10107, "{refused}");

    // A delayed member makes w: 3 miss its wtimeout; the write itself stays.
    rs.set_member_lag(2, Duration::from_secs(30)).unwrap();
    let timed_out = primary
        .command(
            "db",
            doc! {
                "insert": "c",
                "documents": [{ "_id": 3 }],
                "writeConcern": { "w": 3, "wtimeout": 100 },
            },
        )
        .await;
    assert_eq!(timed_out.get_i32("n").ok(), Some(1), "{timed_out}");
    let wce = timed_out.get_document("writeConcernError").unwrap();
    assert_eq!(wce.get_i32("code").ok(), Some(64), "{wce}");
    assert_eq!(wce.get_str("codeName").ok(), Some("WriteConcernFailed"));
    assert_eq!(
        wce.get_document("errInfo")
            .unwrap()
            .get_bool("wtimeout")
            .ok(),
        Some(true)
    );
    // More members than the set has cannot be satisfied.
    let too_many = primary
        .command(
            "db",
            doc! { "insert": "c", "documents": [{ "_id": 4 }], "writeConcern": { "w": 5 } },
        )
        .await;
    let wce = too_many.get_document("writeConcernError").unwrap();
    assert_eq!(wce.get_i32("code").ok(), Some(100), "{wce}");
    rs.stop().await;
}

#[tokio::test]
async fn a_new_primary_keeps_what_it_applied() {
    let rs = lagging_set().await;
    let mut primary = Client::connect(rs.member(0).unwrap().address()).await;
    let applied = primary
        .command(
            "db",
            doc! { "insert": "c", "documents": [{ "_id": 1 }], "writeConcern": { "w": 3 } },
        )
        .await;
    assert!(
        ok(&applied) && !applied.contains_key("writeConcernError"),
        "{applied}"
    );
    let unreplicated = primary
        .command("db", doc! { "insert": "c", "documents": [{ "_id": 2 }] })
        .await;
    assert!(ok(&unreplicated), "{unreplicated}");
    // Member 1 takes over before it applied the second insert: that write is lost.
    rs.elect(1).unwrap();
    assert_eq!(
        rs.documents_on(1, "db", "c").unwrap(),
        vec![doc! { "_id": 1 }]
    );
    assert_eq!(rs.store().documents("db", "c"), vec![doc! { "_id": 1 }]);
    // The old primary rolled back to the new primary's data, and replicates from it.
    assert_eq!(
        rs.documents_on(0, "db", "c").unwrap(),
        vec![doc! { "_id": 1 }]
    );
    let mut new_primary = Client::connect(rs.member(1).unwrap().address()).await;
    let next = new_primary
        .command(
            "db",
            doc! { "insert": "c", "documents": [{ "_id": 3 }], "writeConcern": { "w": 3 } },
        )
        .await;
    assert!(
        ok(&next) && !next.contains_key("writeConcernError"),
        "{next}"
    );
    assert_eq!(
        rs.documents_on(0, "db", "c").unwrap(),
        vec![doc! { "_id": 1 }, doc! { "_id": 3 }]
    );
    rs.stop().await;
}

#[tokio::test]
async fn without_lag_secondaries_apply_before_the_write_returns() {
    let rs = ReplicaSet::start("nolag", 3).await.unwrap();
    let mut primary = Client::connect(rs.member(0).unwrap().address()).await;
    let mut secondary = Client::connect(rs.member(2).unwrap().address()).await;
    let ops = [
        doc! { "create": "c", "validator": { "x": { "$gte": 0 } } },
        doc! { "insert": "c", "documents": [{ "_id": 1, "x": 1 }, { "_id": 2, "x": 2 }] },
        doc! { "update": "c", "updates": [{ "q": { "_id": 1 }, "u": { "$inc": { "x": 10 } } }] },
        doc! { "delete": "c", "deletes": [{ "q": { "_id": 2 }, "limit": 1 }] },
        doc! { "createIndexes": "c", "indexes": [{ "key": { "x": 1 }, "name": "x_1" }] },
        doc! { "renameCollection": "db.c", "to": "db.d" },
    ];
    for op in ops {
        let db = if op.contains_key("renameCollection") {
            "admin"
        } else {
            "db"
        };
        let reply = primary.command(db, op).await;
        assert!(ok(&reply), "{reply}");
    }
    let found = secondary
        .command(
            "db",
            doc! { "find": "d", "$readPreference": { "mode": "secondaryPreferred" } },
        )
        .await;
    assert_eq!(batch(&found), vec![doc! { "_id": 1, "x": 11 }], "{found}");
    let indexes = secondary
        .command(
            "db",
            doc! { "listIndexes": "d", "$readPreference": { "mode": "secondary" } },
        )
        .await;
    assert_eq!(batch(&indexes).len(), 2, "{indexes}");
    let old = secondary.command("db", secondary_find(doc! {})).await;
    assert!(batch(&old).is_empty(), "{old}");
    rs.stop().await;
}

#[tokio::test]
async fn a_stopped_member_does_not_acknowledge_and_catches_up_after_a_restart() {
    let rs = ReplicaSet::start("restart", 3).await.unwrap();
    let mut primary = Client::connect(rs.member(0).unwrap().address()).await;
    rs.stop_member(2).await.unwrap();
    let all = primary
        .command(
            "db",
            doc! {
                "insert": "c",
                "documents": [{ "_id": 1 }],
                "writeConcern": { "w": 3, "wtimeout": 100 },
            },
        )
        .await;
    let wce = all.get_document("writeConcernError").unwrap();
    assert_eq!(wce.get_i32("code").ok(), Some(64), "{wce}");
    let majority = primary
        .command(
            "db",
            doc! {
                "insert": "c",
                "documents": [{ "_id": 2 }],
                "writeConcern": { "w": "majority", "wtimeout": 1000 },
            },
        )
        .await;
    assert!(
        ok(&majority) && !majority.contains_key("writeConcernError"),
        "{majority}"
    );
    let tagged = primary
        .command(
            "db",
            doc! { "insert": "c", "documents": [{ "_id": 3 }], "writeConcern": { "w": "dc" } },
        )
        .await;
    let wce = tagged.get_document("writeConcernError").unwrap();
    assert_eq!(wce.get_i32("code").ok(), Some(79), "{wce}");
    rs.restart_member(2).await.unwrap();
    let mut restarted = Client::connect(rs.member(2).unwrap().address()).await;
    let found = restarted.command("db", secondary_find(doc! {})).await;
    assert_eq!(batch(&found).len(), 3, "{found}");
    // Step-down by command: the caught-up secondary takes over with every write.
    let stepped = primary
        .command(
            "admin",
            doc! { "replSetStepDown": 5, "secondaryCatchUpPeriodSecs": 1 },
        )
        .await;
    assert!(ok(&stepped), "{stepped}");
    let new = rs.primary_index().unwrap();
    assert_ne!(new, 0);
    assert_eq!(rs.documents_on(new, "db", "c").unwrap().len(), 3);
    assert_eq!(rs.documents_on(0, "db", "c").unwrap().len(), 3);
    rs.stop().await;
}
