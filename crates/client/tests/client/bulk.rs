//! Bulk writes against the testkit: an ordered mix of every model with exact counts, an
//! unordered bulk write that goes on after write errors and reports them by model index with
//! the partial result, an ordered one that stops, a write concern error that does not stop
//! it, insert_many unordered, and which commands are retryable writes.

use bson::{Bson, Document, doc};
use mongo_client::event::EventRecorder;
use mongo_client::{
    BulkWriteOptions, Collection, ErrorKind, InsertManyOptions, UpdateModel, WriteModel,
};
use mongo_testkit::{ReplicaSet, ServerOptions, TestServer};

use crate::common::{client_for, started};

async fn setup() -> (TestServer, Collection, std::sync::Arc<EventRecorder>) {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let recorder = EventRecorder::shared();
    let client = client_for(&server.uri(), Some(recorder.clone())).await;
    let coll = client.database("app").collection("bulk");
    (server, coll, recorder)
}

fn stored_ids(server: &TestServer) -> Vec<Bson> {
    server
        .store()
        .documents("app", "bulk")
        .into_iter()
        .filter_map(|d| d.get("_id").cloned())
        .collect()
}

/// The names of the write commands sent, in order.
fn writes(recorder: &EventRecorder) -> Vec<String> {
    started(recorder)
        .into_iter()
        .map(|e| e.command_name)
        .filter(|n| ["insert", "update", "delete"].contains(&n.as_str()))
        .collect()
}

#[tokio::test]
async fn an_ordered_bulk_write_runs_every_model_in_order() {
    let (server, coll, recorder) = setup().await;
    let models: Vec<WriteModel> = bson::deserialize_from_bson(bson::bson!([
        {"insertOne": {"document": {"_id": 1, "n": 1}}},
        {"insertOne": {"document": {"_id": 2, "n": 2}}},
        {"updateOne": {"filter": {"_id": 3}, "update": {"$set": {"n": 3}}, "upsert": true}},
        {"updateMany": {"filter": {"n": {"$gte": 2}}, "update": {"$inc": {"n": 10}}}},
        {"replaceOne": {"filter": {"_id": 1}, "replacement": {"r": true}}},
        {"deleteOne": {"filter": {"_id": 2}}},
        {"insertOne": {"document": {"n": 0}}},
        {"deleteMany": {"filter": {"n": 13}}},
    ]))
    .unwrap();
    let r = coll.bulk_write(models).await.unwrap();
    assert_eq!(
        (
            r.inserted_count,
            r.matched_count,
            r.modified_count,
            r.deleted_count,
            r.upserted_count
        ),
        (3, 3, 3, 2, 1)
    );
    assert_eq!(r.upserted_ids.get(&2), Some(&Bson::Int32(3)));
    assert_eq!(r.inserted_ids.len(), 3);
    assert!(matches!(r.inserted_ids.get(&6), Some(Bson::ObjectId(_))));
    assert_eq!(
        writes(&recorder),
        ["insert", "update", "delete", "insert", "delete"]
    );
    let ids = stored_ids(&server);
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(ids[0], Bson::Int32(1));
    let d = bson::serialize_to_document(&r).unwrap();
    assert_eq!(d.get_i64("upsertedCount").unwrap(), 1);
    assert_eq!(d.get_document("upsertedIds").unwrap(), &doc! {"2": 3});

    let err = coll.bulk_write(Vec::<WriteModel>::new()).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::InvalidArgument(_)));
}

#[tokio::test]
async fn an_unordered_bulk_write_goes_on_and_reports_every_error_by_model() {
    let (server, coll, recorder) = setup().await;
    coll.insert_one(doc! {"_id": 1}).await.unwrap();
    let models = vec![
        WriteModel::insert_one(doc! {"_id": 1}),
        WriteModel::insert_one(doc! {"_id": 2}),
        WriteModel::delete_one(doc! {"_id": 99}),
        WriteModel::insert_one(doc! {"_id": 1, "again": true}),
        WriteModel::UpdateOne(UpdateModel::new(doc! {"_id": 2}, doc! {"$set": {"u": 1}})),
    ];
    recorder.clear();
    let err = coll
        .bulk_write(models)
        .with_options(BulkWriteOptions::default().ordered(false))
        .await
        .unwrap_err();
    let failure = err.write_failure().expect("a write failure");
    let indexes: Vec<(i64, i32)> = failure
        .write_errors
        .iter()
        .map(|e| (e.index, e.code))
        .collect();
    assert_eq!(indexes, [(0, 11000), (3, 11000)]);
    let partial = failure.partial_result.clone().expect("a partial result");
    assert_eq!(
        bson::serialize_to_document(&partial).unwrap(),
        doc! {
            "insertedCount": 1_i64, "matchedCount": 1_i64, "modifiedCount": 1_i64,
            "deletedCount": 0_i64, "upsertedCount": 0_i64, "upsertedIds": {},
            "insertedIds": {"1": 2},
        }
    );
    // One command per kind, every one sent.
    assert_eq!(writes(&recorder), ["insert", "update", "delete"]);
    let inserts = started(&recorder)
        .into_iter()
        .find(|e| e.command_name == "insert")
        .unwrap()
        .command;
    assert!(!inserts.get_bool("ordered").unwrap());
    assert_eq!(inserts.get_array("documents").unwrap().len(), 3);
    assert_eq!(stored_ids(&server), [Bson::Int32(1), Bson::Int32(2)]);
}

#[tokio::test]
async fn an_ordered_bulk_write_stops_at_the_first_write_error() {
    let (server, coll, recorder) = setup().await;
    coll.insert_one(doc! {"_id": 1}).await.unwrap();
    recorder.clear();
    let err = coll
        .bulk_write([
            WriteModel::insert_one(doc! {"_id": 5}),
            WriteModel::insert_one(doc! {"_id": 1}),
            WriteModel::insert_one(doc! {"_id": 6}),
            WriteModel::delete_many(doc! {}),
        ])
        .await
        .unwrap_err();
    let failure = err.write_failure().unwrap();
    assert_eq!(failure.write_errors.len(), 1);
    assert_eq!(failure.write_errors[0].index, 1);
    let partial = failure.partial_result.as_ref().unwrap();
    assert_eq!(partial.inserted_count, 1);
    assert_eq!(
        partial.inserted_ids,
        [(0, Bson::Int32(5))].into_iter().collect()
    );
    assert_eq!(writes(&recorder), ["insert"], "the delete never ran");
    assert_eq!(stored_ids(&server), [Bson::Int32(1), Bson::Int32(5)]);
}

#[tokio::test]
async fn a_write_concern_error_does_not_stop_the_bulk_write() {
    let (server, coll, recorder) = setup().await;
    coll.insert_many((0..3).map(|i| doc! {"_id": i}))
        .await
        .unwrap();
    server
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": {"times": 1},
            "data": {"failCommands": ["update"], "writeConcernError": {
                "code": 64, "codeName": "WriteConcernFailed", "errmsg": "slow"}},
        })
        .unwrap();
    recorder.clear();
    let err = coll
        .bulk_write([
            WriteModel::update_one(doc! {"_id": 0}, doc! {"$set": {"x": 1}}),
            WriteModel::delete_one(doc! {"_id": 1}),
        ])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(64));
    let failure = err.write_failure().unwrap();
    assert!(failure.write_errors.is_empty());
    assert_eq!(failure.write_concern_error.as_ref().unwrap().code, 64);
    let partial = failure.partial_result.as_ref().unwrap();
    assert_eq!((partial.modified_count, partial.deleted_count), (1, 1));
    assert_eq!(writes(&recorder), ["update", "delete"]);
}

#[tokio::test]
async fn insert_many_unordered_inserts_everything_it_can() {
    let (server, coll, _recorder) = setup().await;
    let docs: Vec<Document> = [1, 2, 1, 3, 2].iter().map(|i| doc! {"_id": i}).collect();
    let err = coll
        .insert_many(docs)
        .with_options(InsertManyOptions::default().ordered(false))
        .await
        .unwrap_err();
    let failure = err.write_failure().unwrap();
    let indexes: Vec<i64> = failure.write_errors.iter().map(|e| e.index).collect();
    assert_eq!(indexes, [2, 4]);
    let partial = failure.partial_result.as_ref().unwrap();
    assert_eq!(partial.inserted_count, 3);
    assert_eq!(
        partial.inserted_ids.keys().copied().collect::<Vec<_>>(),
        [0, 1, 3]
    );
    assert_eq!(stored_ids(&server).len(), 3);
    let err = coll.insert_many(Vec::<Document>::new()).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::InvalidArgument(_)));
}

#[tokio::test]
async fn multi_document_writes_are_not_retryable_writes() {
    let rs = ReplicaSet::start("bulkrs", 1).await.unwrap();
    let recorder = EventRecorder::shared();
    let client = client_for(&rs.uri(), Some(recorder.clone())).await;
    let coll = client.database("app").collection("retry");
    coll.insert_one(doc! {"_id": 1}).await.unwrap();
    coll.bulk_write([WriteModel::update_one(doc! {}, doc! {"$set": {"a": 1}})])
        .await
        .unwrap();
    coll.bulk_write([WriteModel::update_many(doc! {}, doc! {"$set": {"a": 2}})])
        .await
        .unwrap();
    coll.delete_many(doc! {"_id": 2}).await.unwrap();
    coll.delete_one(doc! {"_id": 2}).await.unwrap();
    let txn: Vec<(String, bool)> = started(&recorder)
        .into_iter()
        .filter(|e| ["insert", "update", "delete"].contains(&e.command_name.as_str()))
        .map(|e| (e.command_name, e.command.contains_key("txnNumber")))
        .collect();
    assert_eq!(
        txn,
        [
            ("insert".to_owned(), true),
            ("update".to_owned(), true),
            ("update".to_owned(), false),
            ("delete".to_owned(), false),
            ("delete".to_owned(), true),
        ]
    );
    client.shutdown().await;
}
