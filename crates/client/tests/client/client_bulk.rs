//! The client-level bulk write against the testkit: models on several namespaces split into
//! several `bulkWrite` commands by a small maxMessageSizeBytes (every model arrives, each
//! command carries only its namespaces, each batch is its own retryable write), a results
//! cursor that needs getMores, write errors by model index and command, an ordered bulk
//! write that stops, and the client-side refusals.

use bson::{Bson, Document, doc};
use mongo_client::event::EventRecorder;
use mongo_client::{
    Acknowledgment, ClientBulkWriteOptions, ClientWriteModel, ErrorKind, Namespace, UpdateModel,
    WriteConcern, WriteModel,
};
use mongo_testkit::{ReplicaSet, ServerOptions, TestServer};

use crate::common::{client_for, started};

fn insert(db: &str, coll: &str, d: Document) -> ClientWriteModel {
    ClientWriteModel::new(Namespace::new(db, coll), WriteModel::insert_one(d))
}

/// The bulkWrite commands sent: their ops count and their namespaces.
fn bulk_commands(recorder: &EventRecorder) -> Vec<(usize, Vec<String>)> {
    started(recorder)
        .into_iter()
        .filter(|e| e.command_name == "bulkWrite")
        .map(|e| {
            let ops = e.command.get_array("ops").cloned().unwrap_or_default();
            let ns: Vec<String> = e
                .command
                .get_array("nsInfo")
                .map(|a| {
                    a.iter()
                        .filter_map(Bson::as_document)
                        .filter_map(|d| d.get_str("ns").ok().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            // Each command carries the namespaces its ops use, and only those.
            let mut used: Vec<i32> = ops
                .iter()
                .filter_map(Bson::as_document)
                .filter_map(|op| op.values().next().and_then(Bson::as_i32))
                .collect();
            used.sort_unstable();
            used.dedup();
            let all: Vec<i32> = (0..i32::try_from(ns.len()).unwrap()).collect();
            assert_eq!(used, all, "{ns:?}");
            (ops.len(), ns)
        })
        .collect()
}

#[tokio::test]
async fn a_bulk_write_too_large_for_one_message_arrives_whole_in_several() {
    let rs = ReplicaSet::start_with(
        "cbwrs",
        1,
        ServerOptions::default().with_max_message_size(200_000),
    )
    .await
    .unwrap();
    let recorder = EventRecorder::shared();
    let client = client_for(&rs.uri(), Some(recorder.clone())).await;
    // 60 documents of ~10 KB over two databases: about 600 KB, at most ~19 per message.
    let models: Vec<ClientWriteModel> = (0..60)
        .map(|i| {
            let (db, coll) = if i % 2 == 0 {
                ("one", "a")
            } else {
                ("two", "b")
            };
            insert(db, coll, doc! {"_id": i, "pad": "x".repeat(10_000)})
        })
        .chain([ClientWriteModel::new(
            Namespace::new("one", "a"),
            WriteModel::UpdateOne(
                UpdateModel::new(doc! {"_id": 1000}, doc! {"$set": {"up": true}}).upsert(true),
            ),
        )])
        .collect();
    let r = client
        .bulk_write(models)
        .with_options(ClientBulkWriteOptions::default().verbose_results(true))
        .await
        .unwrap();
    assert!(r.acknowledged);
    assert_eq!((r.inserted_count, r.upserted_count), (60, 1));
    let verbose = r.verbose_results.unwrap();
    assert_eq!(verbose.insert_results.len(), 60);
    assert_eq!(verbose.insert_results[&59].inserted_id, Bson::Int32(59));
    assert_eq!(
        verbose.update_results[&60].upserted_id,
        Some(Bson::Int32(1000))
    );
    let store = rs.store();
    assert_eq!(store.documents("one", "a").len(), 31);
    assert_eq!(store.documents("two", "b").len(), 30);

    let commands = bulk_commands(&recorder);
    assert!(commands.len() >= 4, "{commands:?}");
    assert_eq!(commands.iter().map(|(n, _)| n).sum::<usize>(), 61);
    for (ops, ns) in &commands {
        assert!(*ops <= 19, "{commands:?}");
        assert!(!ns.is_empty() && ns.len() <= 2);
    }
    // Each command is its own retryable write.
    let txns: Vec<i64> = started(&recorder)
        .into_iter()
        .filter(|e| e.command_name == "bulkWrite")
        .map(|e| e.command.get_i64("txnNumber").unwrap())
        .collect();
    let mut distinct = txns.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), txns.len(), "{txns:?}");
    client.shutdown().await;
}

#[tokio::test]
async fn results_beyond_the_first_batch_are_read_with_get_more() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let recorder = EventRecorder::shared();
    let client = client_for(&server.uri(), Some(recorder.clone())).await;
    // Two upserts whose _ids are half of maxBsonObjectSize each: the results do not fit in
    // one batch of the cursor.
    let big = |c: char| {
        "x".repeat(8 * 1024 * 1024 - 1024)
            .replacen('x', &c.to_string(), 1)
    };
    let models: Vec<ClientWriteModel> = ['a', 'b']
        .into_iter()
        .map(|c| {
            ClientWriteModel::new(
                Namespace::new("db", "big"),
                WriteModel::UpdateOne(
                    UpdateModel::new(doc! {"_id": big(c)}, doc! {"$set": {"x": 1}}).upsert(true),
                ),
            )
        })
        .collect();
    let r = client
        .bulk_write(models)
        .with_options(ClientBulkWriteOptions::default().verbose_results(true))
        .await
        .unwrap();
    assert_eq!(r.upserted_count, 2);
    let updates = r.verbose_results.unwrap().update_results;
    assert_eq!(updates.len(), 2);
    assert_eq!(updates[&1].upserted_id, Some(Bson::String(big('b'))));
    let names: Vec<String> = started(&recorder)
        .into_iter()
        .map(|e| e.command_name)
        .filter(|n| n == "bulkWrite" || n == "getMore")
        .collect();
    assert_eq!(names, ["bulkWrite", "getMore"]);
    client.shutdown().await;
}

#[tokio::test]
async fn write_errors_name_their_model_and_command() {
    let server = TestServer::start(ServerOptions::default().with_max_message_size(60_000))
        .await
        .unwrap();
    let client = client_for(&server.uri(), None).await;
    let pad = "p".repeat(10_000);
    // Five per message at most; _id 7 (model 7, in the second command) is a duplicate.
    let models = |coll: &str, n: i32| -> Vec<ClientWriteModel> {
        (0..n)
            .map(|i| {
                insert(
                    "db",
                    coll,
                    doc! {"_id": if i == 7 { 0 } else { i }, "pad": &pad},
                )
            })
            .collect()
    };
    let unordered = ClientBulkWriteOptions::default().ordered(false);
    let e = client
        .bulk_write(models("dups", 12))
        .with_options(unordered)
        .await
        .unwrap_err();
    let ErrorKind::ClientBulkWrite(failure) = e.kind() else {
        panic!("{e}")
    };
    assert_eq!(
        failure.write_errors.keys().copied().collect::<Vec<_>>(),
        [7]
    );
    assert_eq!(failure.write_errors[&7].code, 11000);
    assert_eq!(failure.batch_of(7), Some(1));
    assert!(e.to_string().contains("model 7 (batch 1)"), "{e}");
    assert_eq!(failure.partial_result.as_ref().unwrap().inserted_count, 11);
    assert_eq!(server.store().documents("db", "dups").len(), 11);

    // Ordered: stops at model 7; nothing after it is sent.
    let e = client.bulk_write(models("ordered", 20)).await.unwrap_err();
    let failure = e.client_bulk_write_failure().unwrap();
    assert_eq!(failure.write_errors.len(), 1);
    assert!(failure.write_errors[&7].message.contains("duplicate key"));
    assert_eq!(failure.partial_result.as_ref().unwrap().inserted_count, 7);
    assert_eq!(server.store().documents("db", "ordered").len(), 7);
    client.shutdown().await;
}

#[tokio::test]
async fn invalid_requests_are_refused_before_anything_is_sent() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let recorder = EventRecorder::shared();
    let client = client_for(&server.uri(), Some(recorder.clone())).await;
    let ns = Namespace::new("db", "c");
    let w0 = WriteConcern::with_w(Acknowledgment::Nodes(0));
    let cases: Vec<(Vec<ClientWriteModel>, ClientBulkWriteOptions, &str)> = vec![
        (
            Vec::new(),
            ClientBulkWriteOptions::default(),
            "at least one model",
        ),
        (
            vec![ClientWriteModel::new(
                ns.clone(),
                WriteModel::update_one(doc! {}, doc! {"x": 1}),
            )],
            ClientBulkWriteOptions::default(),
            "model 0",
        ),
        (
            vec![insert("db", "c", doc! {})],
            ClientBulkWriteOptions::default().write_concern(w0.clone()),
            "unacknowledged write concern and ordered writes",
        ),
        (
            vec![insert("db", "c", doc! {})],
            ClientBulkWriteOptions::default()
                .write_concern(w0)
                .ordered(false)
                .verbose_results(true),
            "unacknowledged write concern and verbose results",
        ),
    ];
    for (models, options, message) in cases {
        let e = client
            .bulk_write(models)
            .with_options(options)
            .await
            .unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::InvalidArgument(_)), "{e}");
        assert!(e.to_string().contains(message), "{e}");
    }
    assert!(
        started(&recorder)
            .iter()
            .all(|e| e.command_name != "bulkWrite")
    );
    client.shutdown().await;
}
