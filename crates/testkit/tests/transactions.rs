//! Multi-document transactions driven with raw commands, as a driver sends them: visibility
//! of a transaction's writes (to itself, to others, after commit), abort, write conflicts
//! between transactions and with non-transactional writes, the error codes and labels of an
//! ended or unknown transaction, idempotent commit with its write concern, the commands a
//! transaction refuses, sessions ending, and the mongos side (recovery tokens, another router
//! that never saw the transaction).
#![allow(
    clippy::disallowed_methods,
    reason = "integration tests own their clock and tasks"
)]

mod common;

use bson::{Bson, Document, doc, spec::BinarySubtype};
use common::{Client, code, ok};
use mongo_testkit::{Deployment, DeploymentKind, ServerOptions};

fn lsid(n: u8) -> Document {
    doc! { "id": Bson::Binary(bson::Binary { subtype: BinarySubtype::Uuid, bytes: vec![n; 16] }) }
}

/// A command of transaction `txn` on session `s`; `start` marks the first one.
fn in_txn(mut cmd: Document, s: u8, txn: i64, start: bool) -> Document {
    cmd.insert("lsid", lsid(s));
    cmd.insert("txnNumber", txn);
    if start {
        cmd.insert("startTransaction", true);
    }
    cmd.insert("autocommit", false);
    cmd
}

fn labels(reply: &Document) -> Vec<String> {
    reply
        .get_array("errorLabels")
        .map(|a| {
            a.iter()
                .filter_map(|l| l.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn first_batch(reply: &Document) -> Vec<Document> {
    reply
        .get_document("cursor")
        .and_then(|c| c.get_array("firstBatch"))
        .map(|b| b.iter().filter_map(|d| d.as_document().cloned()).collect())
        .unwrap_or_default()
}

async fn replica_set() -> (Deployment, Client) {
    let d = Deployment::start(
        DeploymentKind::ReplicaSet { members: 3 },
        ServerOptions::default(),
    )
    .await
    .unwrap();
    let c = Client::connect(d.servers()[0].address()).await;
    (d, c)
}

#[tokio::test]
async fn commit_makes_writes_visible_and_abort_discards_them() {
    let (d, mut c) = replica_set().await;
    d.store()
        .insert_many("db", "c", [doc! { "_id": 0, "x": 0 }])
        .unwrap();
    let r = c
        .command(
            "db",
            in_txn(
                doc! { "insert": "c", "documents": [{ "_id": 1 }] },
                1,
                1,
                true,
            ),
        )
        .await;
    assert!(ok(&r), "{r}");
    let r = c
        .command(
            "db",
            in_txn(
                doc! { "update": "c", "updates": [{ "q": { "_id": 0 }, "u": { "$set": { "x": 1 } } }] },
                1,
                1,
                false,
            ),
        )
        .await;
    assert_eq!(r.get_i32("nModified").ok(), Some(1), "{r}");
    // The transaction sees its own writes; nobody else does.
    let mine = c
        .command("db", in_txn(doc! { "find": "c" }, 1, 1, false))
        .await;
    assert_eq!(
        first_batch(&mine),
        vec![doc! { "_id": 0, "x": 1 }, doc! { "_id": 1 }]
    );
    let theirs = c.command("db", doc! { "find": "c" }).await;
    assert_eq!(first_batch(&theirs), vec![doc! { "_id": 0, "x": 0 }]);
    assert_eq!(d.store().documents("db", "c").len(), 1);
    // Commit: everything at once, and the cluster time moves on.
    let before = c.command("admin", doc! { "ping": 1 }).await;
    let r = c
        .command(
            "admin",
            in_txn(doc! { "commitTransaction": 1 }, 1, 1, false),
        )
        .await;
    assert!(ok(&r), "{r}");
    assert!(
        r.get_timestamp("operationTime").unwrap() > before.get_timestamp("operationTime").unwrap()
    );
    assert_eq!(
        d.store().documents("db", "c"),
        vec![doc! { "_id": 0, "x": 1 }, doc! { "_id": 1 }]
    );
    // A second transaction on the session, aborted: no trace.
    let r = c
        .command(
            "db",
            in_txn(
                doc! { "delete": "c", "deletes": [{ "q": {}, "limit": 0 }] },
                1,
                2,
                true,
            ),
        )
        .await;
    assert_eq!(r.get_i32("n").ok(), Some(2), "{r}");
    let r = c
        .command("admin", in_txn(doc! { "abortTransaction": 1 }, 1, 2, false))
        .await;
    assert!(ok(&r), "{r}");
    assert_eq!(d.store().documents("db", "c").len(), 2);
    // Continuing an aborted transaction: NoSuchTransaction, a transient error.
    let r = c
        .command("db", in_txn(doc! { "find": "c" }, 1, 2, false))
        .await;
    assert_eq!(code(&r), 251, "{r}");
    assert_eq!(labels(&r), vec!["TransientTransactionError"]);
    let r = c
        .command(
            "admin",
            in_txn(doc! { "commitTransaction": 1 }, 1, 2, false),
        )
        .await;
    assert_eq!(code(&r), 251, "{r}");
}

#[tokio::test]
async fn a_transaction_reads_from_its_snapshot() {
    let (d, mut c) = replica_set().await;
    d.store()
        .insert_many("db", "c", [doc! { "_id": 0 }])
        .unwrap();
    let r = c
        .command("db", in_txn(doc! { "find": "c" }, 1, 1, true))
        .await;
    assert_eq!(first_batch(&r).len(), 1, "{r}");
    // Written and committed by someone else after the transaction started: not seen.
    let w = c
        .command("db", doc! { "insert": "c", "documents": [{ "_id": 5 }] })
        .await;
    assert!(ok(&w));
    let r = c
        .command("db", in_txn(doc! { "find": "c" }, 1, 1, false))
        .await;
    assert_eq!(first_batch(&r), vec![doc! { "_id": 0 }]);
    // And writing it is a conflict.
    let r = c
        .command(
            "db",
            in_txn(
                doc! { "update": "c", "updates": [{ "q": { "_id": 5 }, "u": { "$set": { "y": 1 } }, "upsert": true }] },
                1,
                1,
                false,
            ),
        )
        .await;
    assert_eq!(r.get_str("codeName").ok(), Some("WriteConflict"), "{r}");
    assert_eq!(labels(&r), vec!["TransientTransactionError"]);
    assert_eq!(d.store().documents("db", "c").len(), 2);
}

#[tokio::test]
async fn two_transactions_writing_one_document_conflict() {
    let (d, mut c) = replica_set().await;
    let r = c
        .command(
            "db",
            in_txn(
                doc! { "insert": "c", "documents": [{ "_id": 1, "by": 1 }] },
                1,
                1,
                true,
            ),
        )
        .await;
    assert!(ok(&r), "{r}");
    let r = c
        .command(
            "db",
            in_txn(
                doc! { "insert": "c", "documents": [{ "_id": 1, "by": 2 }] },
                2,
                1,
                true,
            ),
        )
        .await;
    assert_eq!(code(&r), 112, "{r}");
    assert_eq!(labels(&r), vec!["TransientTransactionError"]);
    // A non-transactional write to the document is refused while the transaction holds it.
    let r = c
        .command(
            "db",
            doc! { "insert": "c", "documents": [{ "_id": 1, "by": 3 }] },
        )
        .await;
    assert_eq!(code(&r), 112, "{r}");
    assert!(d.store().documents("db", "c").is_empty());
    // The first commits; the second was aborted by its conflict.
    let r = c
        .command(
            "admin",
            in_txn(doc! { "commitTransaction": 1 }, 1, 1, false),
        )
        .await;
    assert!(ok(&r), "{r}");
    let r = c
        .command(
            "admin",
            in_txn(doc! { "commitTransaction": 1 }, 2, 1, false),
        )
        .await;
    assert_eq!(code(&r), 251, "{r}");
    assert_eq!(labels(&r), vec!["TransientTransactionError"]);
    assert_eq!(
        d.store().documents("db", "c"),
        vec![doc! { "_id": 1, "by": 1 }]
    );
    // Once committed, others may write it again.
    let r = c
        .command(
            "db",
            doc! { "delete": "c", "deletes": [{ "q": {}, "limit": 0 }] },
        )
        .await;
    assert_eq!(r.get_i32("n").ok(), Some(1), "{r}");
}

#[tokio::test]
async fn commit_is_idempotent_and_honours_its_write_concern() {
    let (d, mut c) = replica_set().await;
    let r = c
        .command(
            "db",
            in_txn(
                doc! { "insert": "c", "documents": [{ "_id": 1 }] },
                1,
                7,
                true,
            ),
        )
        .await;
    assert!(ok(&r), "{r}");
    for _ in 0..3 {
        let mut commit = in_txn(doc! { "commitTransaction": 1 }, 1, 7, false);
        commit.insert("writeConcern", doc! { "w": "majority", "wtimeout": 1000 });
        let r = c.command("admin", commit).await;
        assert!(ok(&r) && !r.contains_key("writeConcernError"), "{r}");
    }
    assert_eq!(d.store().documents("db", "c").len(), 1);
    // A committed transaction takes no more statements, and cannot be aborted.
    let r = c
        .command("db", in_txn(doc! { "find": "c" }, 1, 7, false))
        .await;
    assert_eq!(
        r.get_str("codeName").ok(),
        Some("TransactionCommitted"),
        "{r}"
    );
    let r = c
        .command("admin", in_txn(doc! { "abortTransaction": 1 }, 1, 7, false))
        .await;
    assert_eq!(code(&r), 256, "{r}");
    // An older number is too old; a number never started is unknown.
    let r = c
        .command("db", in_txn(doc! { "find": "c" }, 1, 3, true))
        .await;
    assert_eq!(r.get_str("codeName").ok(), Some("TransactionTooOld"), "{r}");
    let r = c
        .command("admin", in_txn(doc! { "abortTransaction": 1 }, 1, 8, false))
        .await;
    assert_eq!(code(&r), 251, "{r}");
    // w beyond the members: the commit is applied, with a write-concern error.
    let r = c
        .command(
            "db",
            in_txn(
                doc! { "insert": "c", "documents": [{ "_id": 2 }] },
                1,
                9,
                true,
            ),
        )
        .await;
    assert!(ok(&r), "{r}");
    let mut commit = in_txn(doc! { "commitTransaction": 1 }, 1, 9, false);
    commit.insert("writeConcern", doc! { "w": 10 });
    let r = c.command("admin", commit).await;
    assert!(ok(&r), "{r}");
    let wce = r.get_document("writeConcernError").unwrap();
    assert_eq!(wce.get_i32("code").ok(), Some(100));
    assert!(r.get("errorLabels").is_none(), "{r}");
    assert_eq!(d.store().documents("db", "c").len(), 2);
}

#[tokio::test]
async fn what_a_transaction_refuses() {
    let (d, mut c) = replica_set().await;
    let r = c
        .command("db", in_txn(doc! { "count": "c" }, 1, 1, true))
        .await;
    assert_eq!(code(&r), 263, "{r}");
    assert!(labels(&r).is_empty(), "{r}");
    let r = c
        .command("db", in_txn(doc! { "listCollections": 1 }, 1, 2, true))
        .await;
    assert_eq!(
        r.get_str("codeName").ok(),
        Some("OperationNotSupportedInTransaction")
    );
    let mut w = in_txn(doc! { "insert": "c", "documents": [{}] }, 1, 3, true);
    w.insert("writeConcern", doc! { "w": 1 });
    assert_eq!(code(&c.command("db", w).await), 72);
    let mut rc = in_txn(doc! { "find": "c" }, 1, 4, true);
    rc.insert("readConcern", doc! { "level": "linearizable" });
    assert_eq!(code(&c.command("db", rc).await), 72);
    let mut rc = in_txn(doc! { "find": "c" }, 1, 5, true);
    rc.insert("readConcern", doc! { "level": "snapshot" });
    assert!(ok(&c.command("db", rc).await));
    let mut rc = in_txn(doc! { "find": "c" }, 1, 5, false);
    rc.insert("readConcern", doc! { "level": "snapshot" });
    assert_eq!(code(&c.command("db", rc).await), 72);
    // A secondary takes no transaction; a standalone no transaction number at all.
    let mut s = Client::connect(d.servers()[1].address()).await;
    let r = s
        .command("db", in_txn(doc! { "find": "c" }, 2, 1, true))
        .await;
    assert_eq!(code(&r), 13435, "{r}");
    let mut read = in_txn(doc! { "find": "c" }, 2, 1, true);
    read.insert("$readPreference", doc! { "mode": "secondaryPreferred" });
    let r = s.command("db", read).await;
    assert_eq!(code(&r), 10107, "{r}");
    let single = Deployment::start(DeploymentKind::Single, ServerOptions::default())
        .await
        .unwrap();
    let mut one = Client::connect(single.servers()[0].address()).await;
    let r = one
        .command("db", in_txn(doc! { "find": "c" }, 1, 1, true))
        .await;
    assert_eq!(code(&r), 20, "{r}");
    assert!(
        r.get_str("errmsg")
            .unwrap()
            .contains("replica set member or mongos")
    );
    // A failed statement aborts the transaction; a duplicate key too.
    let r = c
        .command(
            "db",
            in_txn(
                doc! { "insert": "c", "documents": [{ "_id": 1 }, { "_id": 1 }] },
                3,
                1,
                true,
            ),
        )
        .await;
    assert!(r.contains_key("writeErrors"), "{r}");
    let r = c
        .command("db", in_txn(doc! { "find": "c" }, 3, 1, false))
        .await;
    assert_eq!(code(&r), 251, "{r}");
    assert!(d.store().documents("db", "c").is_empty());
}

#[tokio::test]
async fn ending_or_killing_sessions_aborts_their_transactions() {
    let (d, mut c) = replica_set().await;
    for s in [1, 2] {
        let r = c
            .command(
                "db",
                in_txn(
                    doc! { "insert": "c", "documents": [{ "_id": i32::from(s) }] },
                    s,
                    1,
                    true,
                ),
            )
            .await;
        assert!(ok(&r), "{r}");
    }
    assert!(ok(&c
        .command("admin", doc! { "endSessions": [lsid(1)] })
        .await));
    let r = c
        .command(
            "admin",
            in_txn(doc! { "commitTransaction": 1 }, 1, 1, false),
        )
        .await;
    assert_eq!(code(&r), 251, "{r}");
    assert!(ok(&c
        .command("admin", doc! { "killAllSessions": [] })
        .await));
    let r = c
        .command(
            "admin",
            in_txn(doc! { "commitTransaction": 1 }, 2, 1, false),
        )
        .await;
    assert_eq!(code(&r), 251, "{r}");
    assert!(d.store().documents("db", "c").is_empty());
    // transactionLifetimeLimitSeconds: an idle transaction past it is aborted.
    let r = c
        .command(
            "admin",
            doc! { "setParameter": 1, "transactionLifetimeLimitSeconds": 1 },
        )
        .await;
    assert!(ok(&r), "{r}");
    let r = c
        .command("db", in_txn(doc! { "find": "c" }, 3, 1, true))
        .await;
    assert!(ok(&r), "{r}");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = c
        .command("db", in_txn(doc! { "find": "c" }, 3, 1, false))
        .await;
    assert_eq!(code(&r), 251, "{r}");
}

#[tokio::test]
async fn mongos_gives_recovery_tokens_and_other_routers_recover_the_decision() {
    let d = Deployment::start(
        DeploymentKind::Sharded { routers: 2 },
        ServerOptions::default(),
    )
    .await
    .unwrap();
    let mut a = Client::connect(d.servers()[0].address()).await;
    let mut b = Client::connect(d.servers()[1].address()).await;
    // A read-only statement: an empty token; a write: the shard's name.
    let r = a
        .command("db", in_txn(doc! { "find": "c" }, 1, 1, true))
        .await;
    assert_eq!(r.get_document("recoveryToken").ok(), Some(&doc! {}), "{r}");
    let r = a
        .command(
            "db",
            in_txn(
                doc! { "insert": "c", "documents": [{ "_id": 1 }] },
                1,
                1,
                false,
            ),
        )
        .await;
    let token = r.get_document("recoveryToken").unwrap().clone();
    assert!(token.get_str("recoveryShardId").is_ok(), "{r}");
    // Router b never saw the transaction: it cannot continue it...
    let r = b
        .command("db", in_txn(doc! { "find": "c" }, 1, 1, false))
        .await;
    assert_eq!(code(&r), 251, "{r}");
    // ...and cannot commit it without the token.
    let r = b
        .command(
            "admin",
            in_txn(doc! { "commitTransaction": 1 }, 1, 1, false),
        )
        .await;
    assert_eq!(code(&r), 50940, "{r}");
    // Committed through a: b recovers the decision from the token.
    let r = a
        .command(
            "admin",
            in_txn(doc! { "commitTransaction": 1 }, 1, 1, false),
        )
        .await;
    assert!(ok(&r) && r.contains_key("recoveryToken"), "{r}");
    let mut commit = in_txn(doc! { "commitTransaction": 1 }, 1, 1, false);
    commit.insert("recoveryToken", token.clone());
    assert!(ok(&b.command("admin", commit).await));
    assert_eq!(d.store().documents("db", "c").len(), 1);
    // Undecided when b recovers: aborted, NoSuchTransaction (transient).
    let r = a
        .command(
            "db",
            in_txn(
                doc! { "insert": "c", "documents": [{ "_id": 2 }] },
                1,
                2,
                true,
            ),
        )
        .await;
    assert!(ok(&r), "{r}");
    let mut commit = in_txn(doc! { "commitTransaction": 1 }, 1, 2, false);
    commit.insert("recoveryToken", token);
    let r = b.command("admin", commit).await;
    assert_eq!(code(&r), 251, "{r}");
    assert_eq!(labels(&r), vec!["TransientTransactionError"]);
    let r = a
        .command(
            "admin",
            in_txn(doc! { "commitTransaction": 1 }, 1, 2, false),
        )
        .await;
    assert_eq!(code(&r), 251, "{r}");
    assert_eq!(d.store().documents("db", "c").len(), 1);
    // Abort of a transaction that reached no shard; a second start on the router.
    let r = a
        .command("admin", in_txn(doc! { "abortTransaction": 1 }, 1, 3, false))
        .await;
    assert_eq!(code(&r), 251, "{r}");
    let r = a
        .command("db", in_txn(doc! { "find": "c" }, 1, 4, true))
        .await;
    assert!(ok(&r), "{r}");
    let r = a
        .command("db", in_txn(doc! { "find": "c" }, 1, 4, true))
        .await;
    assert_eq!(
        r.get_str("codeName").ok(),
        Some("ConflictingOperationInProgress"),
        "{r}"
    );
}

/// A snapshot read outside a transaction: the first reply names its `atClusterTime`; a read
/// at that time later sees the data as it was then, a read at a time before the history is
/// SnapshotTooOld (239), a time ahead of the cluster's is InvalidOptions (72), and so is a
/// pipeline that writes.
#[tokio::test]
async fn snapshot_reads_see_the_data_of_their_cluster_time() {
    let (_d, mut c) = replica_set().await;
    assert!(ok(&c
        .command(
            "db",
            doc! { "insert": "s", "documents": [{ "_id": 1, "x": 1 }] }
        )
        .await));
    let snapshot = |at: Option<bson::Timestamp>| {
        let mut rc = doc! { "level": "snapshot" };
        if let Some(at) = at {
            rc.insert("atClusterTime", at);
        }
        doc! { "find": "s", "readConcern": rc }
    };
    let first = c.command("db", snapshot(None)).await;
    let at = first
        .get_document("cursor")
        .and_then(|cur| cur.get_timestamp("atClusterTime"))
        .unwrap_or_else(|_| panic!("no atClusterTime in {first}"));
    assert_eq!(first_batch(&first), vec![doc! { "_id": 1, "x": 1 }]);
    let update =
        doc! { "update": "s", "updates": [{ "q": { "_id": 1 }, "u": { "$set": { "x": 2 } } }] };
    assert!(ok(&c.command("db", update).await));
    let insert = doc! { "insert": "s", "documents": [{ "_id": 2, "x": 2 }] };
    assert!(ok(&c.command("db", insert).await));
    let then = c.command("db", snapshot(Some(at))).await;
    assert_eq!(
        first_batch(&then),
        vec![doc! { "_id": 1, "x": 1 }],
        "{then}"
    );
    let now = c.command("db", doc! { "find": "s" }).await;
    assert_eq!(first_batch(&now).len(), 2, "{now}");
    let distinct = doc! {
        "distinct": "s", "key": "x",
        "readConcern": { "level": "snapshot", "atClusterTime": at },
    };
    let values = c.command("db", distinct).await;
    assert_eq!(values.get_array("values").unwrap(), &vec![Bson::Int32(1)]);
    assert_eq!(values.get_timestamp("atClusterTime").ok(), Some(at));
    let too_old = bson::Timestamp {
        time: at.time - 1,
        increment: 0,
    };
    assert_eq!(code(&c.command("db", snapshot(Some(too_old))).await), 239);
    let ahead = bson::Timestamp {
        time: at.time + 3600,
        increment: 0,
    };
    assert_eq!(code(&c.command("db", snapshot(Some(ahead))).await), 72);
    // A pipeline that writes cannot read a snapshot.
    let out = doc! {
        "aggregate": "s", "pipeline": [{ "$out": "copy" }], "cursor": {},
        "readConcern": { "level": "snapshot" },
    };
    assert_eq!(code(&c.command("db", out).await), 72);
}
