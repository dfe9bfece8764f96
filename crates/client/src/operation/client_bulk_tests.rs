//! Tests of the client bulk write's command: model checks, the batch splitter, the per-batch
//! namespace numbering and the reading of results.

use bson::{Document, doc};
use mongo_events::{ServerAddress, ServerType};
use mongo_wire::SizeLimits;

use super::*;
use crate::crud::{Namespace, UpdateModifications};

fn conn(limits: SizeLimits) -> ConnectionDescription {
    ConnectionDescription {
        address: ServerAddress::tcp("a", 1),
        server_type: ServerType::RsPrimary,
        max_wire_version: 25,
        limits,
        service_id: None,
        logical_session_timeout_minutes: Some(30),
    }
}

fn insert(ns: &str, d: Document) -> ClientWriteModel {
    let (db, coll) = ns.split_once('.').unwrap();
    ClientWriteModel::new(Namespace::new(db, coll), WriteModel::insert_one(d))
}

fn docs(seq: &DocumentSequence) -> Vec<Document> {
    seq.documents
        .iter()
        .map(|d| Document::try_from(d.as_ref()).unwrap())
        .collect()
}

/// Runs every batch of `op`, answering each with an empty successful reply; the models and
/// namespaces of each command.
fn run_all(op: &mut ClientBulkWrite, limits: SizeLimits) -> Vec<(Vec<Document>, Vec<Document>)> {
    let mut out = Vec::new();
    while !op.is_finished() {
        let c = op.build(&conn(limits)).unwrap();
        assert_eq!(c.db, "admin");
        let ops = docs(&c.sequences[0]);
        let ns = docs(&c.sequences[1]);
        assert_eq!(c.sequences[0].identifier, "ops");
        assert_eq!(c.sequences[1].identifier, "nsInfo");
        out.push((ops, ns));
        let reply = doc! {"ok": 1, "nErrors": 0, "cursor": {"id": 0_i64, "firstBatch": []}};
        let Step::Done(batch) = op.handle_reply(reply, &conn(limits)).unwrap() else {
            panic!("one command per run")
        };
        assert!(batch.cursor.is_some());
    }
    out
}

#[test]
fn models_become_ops_entries_with_only_what_is_set() {
    let ns = Namespace::new("db", "c");
    let models = vec![
        ClientWriteModel::new(ns.clone(), WriteModel::insert_one(doc! {"x": 1})),
        ClientWriteModel::new(
            ns.clone(),
            WriteModel::UpdateOne(
                UpdateModel::new(doc! {"_id": 1}, doc! {"$set": {"x": 1}})
                    .upsert(true)
                    .array_filters(vec![doc! {"e.a": 1}])
                    .hint("x_1")
                    .sort(doc! {"x": -1}),
            ),
        ),
        ClientWriteModel::new(
            ns.clone(),
            WriteModel::update_many(doc! {}, vec![doc! {"$set": {"y": 1}}]),
        ),
        ClientWriteModel::new(ns.clone(), WriteModel::replace_one(doc! {}, doc! {"z": 1})),
        ClientWriteModel::new(
            ns.clone(),
            WriteModel::DeleteOne(DeleteModel::new(doc! {}).collation(doc! {"locale": "fr"})),
        ),
        ClientWriteModel::new(ns, WriteModel::delete_many(doc! {"a": 1})),
    ];
    let prepared = prepare(models).unwrap();
    assert!(prepared.multi);
    let mut op = ClientBulkWrite::new(prepared, &ClientBulkWriteOptions::default(), None, true);
    assert!(!op.is_retryable());
    let c = op.build(&conn(SizeLimits::default())).unwrap();
    assert_eq!(
        c.body,
        doc! {"bulkWrite": 1, "errorsOnly": true, "ordered": true}
    );
    let ops = docs(&c.sequences[0]);
    let id = ops[0]
        .get_document("document")
        .unwrap()
        .get("_id")
        .unwrap()
        .clone();
    assert_eq!(
        ops[0].keys().collect::<Vec<_>>(),
        ["insert", "document"],
        "the generated _id is first in the document"
    );
    assert_eq!(
        ops[0]
            .get_document("document")
            .unwrap()
            .keys()
            .next()
            .unwrap(),
        "_id"
    );
    assert_eq!(op.models()[0].inserted_id, Some(id));
    assert_eq!(
        ops[1],
        doc! {"update": 0, "filter": {"_id": 1}, "updateMods": {"$set": {"x": 1}},
        "multi": false, "upsert": true, "arrayFilters": [{"e.a": 1}], "hint": "x_1",
        "sort": {"x": -1}}
    );
    assert_eq!(
        ops[2],
        doc! {"update": 0, "filter": {}, "updateMods": [{"$set": {"y": 1}}], "multi": true}
    );
    assert_eq!(
        ops[3],
        doc! {"update": 0, "filter": {}, "updateMods": {"z": 1}, "multi": false}
    );
    assert_eq!(
        ops[4],
        doc! {"delete": 0, "filter": {}, "multi": false, "collation": {"locale": "fr"}}
    );
    assert_eq!(
        ops[5],
        doc! {"delete": 0, "filter": {"a": 1}, "multi": true}
    );
    assert_eq!(docs(&c.sequences[1]), vec![doc! {"ns": "db.c"}]);
}

#[test]
fn invalid_models_are_refused_with_their_index() {
    let ns = Namespace::new("db", "c");
    assert!(prepare(Vec::new()).is_err());
    let cases = [
        WriteModel::update_one(doc! {}, doc! {"x": 1}),
        WriteModel::update_many(doc! {}, doc! {}),
        WriteModel::update_one(doc! {}, UpdateModifications::Pipeline(Vec::new())),
        WriteModel::replace_one(doc! {}, doc! {"$set": {"x": 1}}),
        WriteModel::UpdateMany(UpdateModel::new(doc! {}, doc! {"$set": {"x": 1}}).sort(doc! {})),
    ];
    for bad in cases {
        let models = vec![
            ClientWriteModel::new(ns.clone(), WriteModel::insert_one(doc! {})),
            ClientWriteModel::new(ns.clone(), bad.clone()),
        ];
        let e = prepare(models).unwrap_err();
        assert!(e.to_string().contains("model 1"), "{bad:?}: {e}");
    }
}

#[test]
fn options_go_in_the_body_and_raw_data_only_to_8_2() {
    let o = ClientBulkWriteOptions::default()
        .ordered(false)
        .verbose_results(true)
        .bypass_document_validation(false)
        .comment("c")
        .let_vars(doc! {"v": 1})
        .raw_data(true);
    let prepared = prepare(vec![insert("db.c", doc! {"_id": 1})]).unwrap();
    let mut op = ClientBulkWrite::new(prepared, &o, Some(doc! {"w": "majority"}), true);
    assert!(op.is_retryable());
    let c = op.build(&conn(SizeLimits::default())).unwrap();
    assert_eq!(
        c.body,
        doc! {"bulkWrite": 1, "errorsOnly": false, "ordered": false,
        "bypassDocumentValidation": false, "comment": "c", "let": {"v": 1},
        "writeConcern": {"w": "majority"}}
    );
    let mut newer = conn(SizeLimits::default());
    newer.max_wire_version = 27;
    assert!(op.build(&newer).unwrap().body.get_bool("rawData").unwrap());
    let mut older = conn(SizeLimits::default());
    older.max_wire_version = 21;
    assert!(op.build(&older).is_err(), "bulkWrite needs 8.0");
}

/// A command's (namespace index, `_id`) of each op, and its namespaces.
type Shape = (Vec<(i32, i32)>, Vec<String>);

#[test]
fn batches_split_by_count_and_carry_only_their_namespaces() {
    let models = vec![
        insert("db.a", doc! {"_id": 0}),
        insert("db.b", doc! {"_id": 1}),
        insert("db.a", doc! {"_id": 2}),
        insert("db.c", doc! {"_id": 3}),
        insert("db.b", doc! {"_id": 4}),
    ];
    let limits = SizeLimits {
        max_write_batch_size: 2,
        ..SizeLimits::default()
    };
    let mut op = ClientBulkWrite::new(
        prepare(models).unwrap(),
        &ClientBulkWriteOptions::default(),
        None,
        true,
    );
    let batches = run_all(&mut op, limits);
    let shape: Vec<Shape> = batches
        .iter()
        .map(|(ops, ns)| {
            (
                ops.iter()
                    .map(|o| {
                        (
                            o.get_i32("insert").unwrap(),
                            o.get_document("document").unwrap().get_i32("_id").unwrap(),
                        )
                    })
                    .collect(),
                ns.iter()
                    .map(|n| n.get_str("ns").unwrap().to_owned())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            (vec![(0, 0), (1, 1)], vec!["db.a".into(), "db.b".into()]),
            (vec![(0, 2), (1, 3)], vec!["db.a".into(), "db.c".into()]),
            (vec![(0, 4)], vec!["db.b".into()]),
        ]
    );
}

#[test]
fn batches_split_by_message_size_with_the_overhead_allowance() {
    // Each entry is a little over 100 KB; a 350 KB message holds three once the 1000-byte
    // allowance, the body and the namespace are taken out, not four.
    let big = |i: i32| insert("db.c", doc! {"_id": i, "s": "x".repeat(100_000)});
    let limits = SizeLimits {
        max_message_size_bytes: 350_000,
        ..SizeLimits::default()
    };
    let mut op = ClientBulkWrite::new(
        prepare((0..10).map(big).collect()).unwrap(),
        &ClientBulkWriteOptions::default(),
        None,
        true,
    );
    let sizes: Vec<usize> = run_all(&mut op, limits)
        .iter()
        .map(|(ops, _)| ops.len())
        .collect();
    assert_eq!(sizes, [3, 3, 3, 1]);

    // The rule exactly: entries plus nsInfo up to maxMessageSizeBytes - 1000 - body.
    let prepared = prepare(vec![insert("db.c", doc! {}), insert("db.c", doc! {})]).unwrap();
    let entry = prepared.models[0].entry.as_bytes().len();
    let ns = prepared.namespaces[0].as_bytes().len();
    let exact = SizeLimits {
        max_message_size_bytes: 1000 + 50 + ns + 2 * entry,
        ..SizeLimits::default()
    };
    assert_eq!(
        batch_len(&prepared.models, &prepared.namespaces, 50, &exact),
        2
    );
    let short = SizeLimits {
        max_message_size_bytes: exact.max_message_size_bytes - 1,
        ..exact
    };
    assert_eq!(
        batch_len(&prepared.models, &prepared.namespaces, 50, &short),
        1
    );
}

#[test]
fn a_model_that_fits_no_message_is_an_error_naming_it() {
    let limits = SizeLimits {
        max_message_size_bytes: 5_000,
        ..SizeLimits::default()
    };
    let models = vec![
        insert("db.c", doc! {"_id": 0}),
        insert("db.c", doc! {"s": "x".repeat(10_000)}),
    ];
    let mut op = ClientBulkWrite::new(
        prepare(models).unwrap(),
        &ClientBulkWriteOptions::default(),
        None,
        true,
    );
    op.build(&conn(limits)).unwrap();
    op.handle_reply(
        doc! {"ok": 1, "cursor": {"id": 0_i64, "firstBatch": []}},
        &conn(limits),
    )
    .unwrap();
    let e = op.build(&conn(limits)).unwrap_err();
    assert!(e.to_string().contains("model 1"), "{e}");
}

#[test]
fn a_retried_batch_is_rebuilt_identically() {
    let limits = SizeLimits {
        max_write_batch_size: 2,
        ..SizeLimits::default()
    };
    let models = (0..3).map(|i| insert("db.c", doc! {"_id": i})).collect();
    let mut op = ClientBulkWrite::new(
        prepare(models).unwrap(),
        &ClientBulkWriteOptions::default(),
        None,
        true,
    );
    let a = op.build(&conn(limits)).unwrap();
    let b = op.build(&conn(limits)).unwrap();
    assert_eq!(a.sequences[0].documents, b.sequences[0].documents);
    assert_eq!(op.in_flight(), 0..2);
}

#[test]
fn unacknowledged_batches_have_no_cursor() {
    let mut op = ClientBulkWrite::new(
        prepare(vec![insert("db.c", doc! {})]).unwrap(),
        &ClientBulkWriteOptions::default().ordered(false),
        None,
        false,
    );
    let c = op.build(&conn(SizeLimits::default())).unwrap();
    assert!(!c.acknowledged);
    let Step::Done(batch) = op
        .handle_reply(doc! {"ok": 1}, &conn(SizeLimits::default()))
        .unwrap()
    else {
        panic!("done")
    };
    assert!(batch.cursor.is_none());
    assert!(op.is_finished());
}

#[test]
fn results_are_read_by_model_index() {
    let ns = Namespace::new("db", "c");
    let models = vec![
        ClientWriteModel::new(ns.clone(), WriteModel::insert_one(doc! {"_id": 7})),
        ClientWriteModel::new(
            ns.clone(),
            WriteModel::update_one(doc! {}, doc! {"$set": {"a": 1}}),
        ),
        ClientWriteModel::new(ns.clone(), WriteModel::delete_one(doc! {})),
        ClientWriteModel::new(ns, WriteModel::insert_one(doc! {"_id": 8})),
    ];
    let prepared = prepare(models).unwrap();
    let mut tally = Tally::new(true, true);
    // The second batch (models 2 and 3): its idx values are relative to it.
    let e = tally
        .entry(&doc! {"ok": 1, "idx": 0, "n": 1}, 2, 2, &prepared.models)
        .unwrap();
    assert_eq!(e, None);
    let e = tally
        .entry(
            &doc! {"ok": 0, "idx": 1, "code": 11000, "errmsg": "dup"},
            2,
            2,
            &prepared.models,
        )
        .unwrap();
    assert_eq!(e, Some(3));
    tally
        .entry(
            &doc! {"ok": 1, "idx": 1, "n": 1, "nModified": 0, "upserted": {"_id": "u"}},
            0,
            2,
            &prepared.models,
        )
        .unwrap();
    assert!(
        tally
            .entry(&doc! {"ok": 1, "idx": 2, "n": 1}, 0, 2, &prepared.models)
            .is_err(),
        "idx beyond the batch"
    );
    let v = tally.result.verbose_results.as_ref().unwrap();
    assert_eq!(v.delete_results[&2].deleted_count, 1);
    assert_eq!(
        v.update_results[&1].upserted_id,
        Some(Bson::String("u".into()))
    );
    assert!(v.insert_results.is_empty());
    assert_eq!(tally.write_errors[&3].index, 3);

    // Ordered: an error on the batch's first model means nothing was written.
    let batch = |start, len, n_errors| BatchReply {
        start,
        len,
        summary: Summary {
            n_errors,
            n_inserted: 1,
            ..Summary::default()
        },
        cursor: None,
        write_concern_error: None,
    };
    let mut t = Tally::new(false, true);
    t.write_errors = tally.write_errors.clone();
    t.add_summary(&batch(3, 1, 1), true);
    assert!(!t.any_success);
    t.add_summary(&batch(2, 2, 1), true);
    assert!(t.any_success);
    assert_eq!(t.result.inserted_count, 1);
    let mut t = Tally::new(false, true);
    t.add_summary(&batch(0, 2, 2), false);
    assert!(!t.any_success, "unordered, every model failed");
    t.add_summary(&batch(0, 2, 1), false);
    assert!(t.any_success);
}
