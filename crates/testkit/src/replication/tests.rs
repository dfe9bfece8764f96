//! Applying the log: a secondary ends with the primary's data whatever the entries were; lag,
//! undone writes, a reset and a promotion.

use std::time::Duration;

use bson::{Document, doc};

use super::*;
use crate::store::WriteKind;

/// One collection as a member has it: database, name, documents, indexes, options (with
/// the UUID) and shard key.
type Shape = (
    String,
    String,
    Vec<Document>,
    Vec<Document>,
    Document,
    Option<Document>,
);

/// What a member's data looks like, collection by collection (documents, indexes, options,
/// UUID, shard key).
fn shape(dbs: &Dbs) -> Vec<Shape> {
    let mut out = Vec::new();
    for (db, colls) in dbs {
        for (name, c) in colls {
            let mut options = c.options.clone();
            options.insert("uuid", crate::oplog::uuid_bson(&c.uuid));
            out.push((
                db.clone(),
                name.clone(),
                c.docs.clone(),
                c.indexes.clone(),
                options,
                c.shard_key.clone(),
            ));
        }
    }
    out
}

fn primary_shape(store: &Store) -> Vec<Shape> {
    store.with_base(|d| shape(d))
}

fn member_shape(store: &Store, member: usize) -> Vec<Shape> {
    let data = store.repl.catch_up(store, member).unwrap();
    let dbs = data.lock();
    shape(&dbs)
}

#[test]
fn a_secondary_applies_every_kind_of_entry_to_the_same_data() {
    let store = Store::new();
    store.repl.configure(&store, 2, Duration::ZERO);
    store
        .insert_many(
            "db",
            "a",
            [doc! { "_id": 1, "x": 1 }, doc! { "_id": 2, "x": 2 }],
        )
        .unwrap();
    store
        .create("db", "v", doc! { "validator": { "x": 1 } })
        .unwrap();
    store.with_coll("db", "a", false, |c| {
        let c = c.unwrap();
        c.replace_at(
            "db.a",
            0,
            doc! { "_id": 1, "x": 10 },
            WriteKind::Replacement,
        )
        .unwrap();
        c.remove_positions(&[1]);
        c.indexes
            .push(doc! { "v": 2, "key": { "x": 1 }, "name": "x_1", "ns": "db.a" });
        c.record(Op::CreateIndexes {
            indexes: vec![doc! { "v": 2, "key": { "x": 1 }, "name": "x_1" }],
        });
        let before = c.options.clone();
        c.options.insert("comment", "changed");
        c.record(Op::Modify {
            changes: doc! { "comment": "changed" },
            before,
        });
        c.shard_key = Some(doc! { "x": 1 });
        c.record(Op::ShardCollection {
            description: doc! { "shardKey": { "x": 1 } },
        });
    });
    assert_eq!(member_shape(&store, 1), primary_shape(&store));
    store.with_coll("db", "a", false, |c| {
        let c = c.unwrap();
        let dropped = c.indexes.pop().unwrap();
        c.record(Op::DropIndexes {
            indexes: vec![dropped],
        });
    });
    store
        .rename_collection(("db", "a"), ("other", "b"), false)
        .unwrap();
    store.drop_collection("db", "v");
    store.insert_many("gone", "c", [doc! { "_id": 1 }]).unwrap();
    store.drop_database("gone");
    assert_eq!(member_shape(&store, 1), primary_shape(&store));
    assert_eq!(member_shape(&store, 0), primary_shape(&store));
    let shape = primary_shape(&store);
    assert_eq!(shape.len(), 1);
    assert_eq!(shape[0].2, vec![doc! { "_id": 1, "x": 10 }]);
}

#[test]
fn a_lagging_secondary_applies_only_what_is_due_and_syncs_after_an_undone_write() {
    let store = Store::new();
    store.repl.configure(&store, 2, Duration::from_secs(3600));
    store.insert_many("db", "c", [doc! { "_id": 1 }]).unwrap();
    assert!(member_shape(&store, 1).is_empty(), "not due yet");
    let late = store.cluster_time();
    assert!(!store.repl.has_applied(&store, 1, late));
    assert!(store.repl.next_due(&store, 1).is_some());
    assert_eq!(
        store
            .repl
            .acknowledged(&store, store.oplog.next_seq(), Some(0), &[true, true]),
        1
    );
    assert!(store.repl.last_applied(&store, 1).is_some());

    store.repl.set_lag(Some(1), Duration::ZERO);
    assert_eq!(member_shape(&store, 1), primary_shape(&store));
    assert!(store.repl.has_applied(&store, 1, late));
    assert_eq!(
        store
            .repl
            .acknowledged(&store, store.oplog.next_seq(), Some(0), &[true, true]),
        2
    );
    assert!(store.repl.last_applied(&store, 1).is_none());

    // A write the primary undoes after the secondary applied it: the secondary syncs again.
    let seq = store.oplog.next_seq();
    store.insert_many("db", "c", [doc! { "_id": 2 }]).unwrap();
    assert_eq!(member_shape(&store, 1), primary_shape(&store));
    store.with_base(|base| {
        base.get_mut("db")
            .unwrap()
            .get_mut("c")
            .unwrap()
            .remove_positions(&[1]);
        Store::discard_pending(base);
    });
    store.oplog.truncate_from(seq);
    assert_eq!(member_shape(&store, 1), primary_shape(&store));
    assert_eq!(primary_shape(&store)[0].2.len(), 1);

    // Clearing the store clears every member.
    store.clear();
    assert!(member_shape(&store, 1).is_empty());
}

#[test]
fn a_promoted_member_loses_what_it_had_not_applied() {
    let store = Store::new();
    store.repl.configure(&store, 3, Duration::ZERO);
    store.insert_many("db", "c", [doc! { "_id": 1 }]).unwrap();
    let _ = member_shape(&store, 1);
    store.repl.set_lag(None, Duration::from_secs(3600));
    store.insert_many("db", "c", [doc! { "_id": 2 }]).unwrap();
    store.repl.promote(&store, 1, Some(0));
    assert_eq!(primary_shape(&store)[0].2, vec![doc! { "_id": 1 }]);
    assert_eq!(member_shape(&store, 0), primary_shape(&store));
    // Member 2 never applied the lost write: it goes on from the new primary's log.
    store.repl.set_lag(None, Duration::ZERO);
    store.insert_many("db", "c", [doc! { "_id": 3 }]).unwrap();
    assert_eq!(member_shape(&store, 2), primary_shape(&store));
    assert_eq!(
        primary_shape(&store)[0].2,
        vec![doc! { "_id": 1 }, doc! { "_id": 3 }]
    );
}
