//! The reads of the CRUD API against the testkit: find's options reach the server (sort,
//! skip, limit, projection, a negative limit's single batch, limit = batchSize), find_one,
//! distinct, count_documents with skip and limit, estimated_document_count, collection and
//! database aggregation (`$out` as a write, `$documents`), and options read from argument
//! documents.

use bson::{Bson, Document, doc};
use mongo_client::event::EventRecorder;
use mongo_client::{
    AggregateOptions, Collection, CountOptions, DistinctOptions, FindOneOptions, FindOptions,
};
use mongo_testkit::{ServerOptions, TestServer};

use crate::common::{client_for, started};

/// A server, a client with a recorder, and `app.items` holding `{_id: i, g: i % 3}` for
/// i in 0..10.
async fn seeded() -> (
    TestServer,
    mongo_client::Client,
    Collection,
    std::sync::Arc<EventRecorder>,
) {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let recorder = EventRecorder::shared();
    let client = client_for(&server.uri(), Some(recorder.clone())).await;
    let coll = client.database("app").collection("items");
    coll.insert_many((0..10).map(|i| doc! {"_id": i, "g": i % 3}))
        .await
        .unwrap();
    (server, client, coll, recorder)
}

/// The last started command named `name`.
fn last_command(recorder: &EventRecorder, name: &str) -> Document {
    started(recorder)
        .into_iter()
        .rev()
        .find(|e| e.command_name == name)
        .map(|e| e.command)
        .unwrap_or_else(|| panic!("no {name} was sent"))
}

fn ids(docs: &[Document]) -> Vec<i32> {
    docs.iter().map(|d| d.get_i32("_id").unwrap()).collect()
}

#[tokio::test]
async fn find_sends_its_options_and_the_server_applies_them() {
    let (_server, _client, coll, recorder) = seeded().await;
    let options: FindOptions = bson::deserialize_from_document(doc! {
        "sort": {"_id": -1}, "skip": 2, "limit": 3, "projection": {"g": 0},
        "comment": "hello", "maxTimeMS": 500, "batchSize": 2,
    })
    .unwrap();
    let docs = coll
        .find(doc! {"_id": {"$gte": 1}})
        .with_options(options)
        .await
        .unwrap()
        .collect_all()
        .await
        .unwrap();
    assert_eq!(ids(&docs), [7, 6, 5]);
    assert!(docs.iter().all(|d| !d.contains_key("g")), "{docs:?}");
    let sent = last_command(&recorder, "find");
    assert_eq!(sent.get_str("comment").unwrap(), "hello");
    assert_eq!(sent.get_i32("maxTimeMS").unwrap(), 500);
    assert_eq!(sent.get_i32("batchSize").unwrap(), 2);
    let get_more = last_command(&recorder, "getMore");
    assert_eq!(get_more.get_str("comment").unwrap(), "hello");

    // A negative limit: one batch, no cursor left open.
    let cursor = coll
        .find(doc! {})
        .with_options(FindOptions::default().limit(-4))
        .await
        .unwrap();
    assert_eq!(cursor.id(), 0);
    assert_eq!(cursor.collect_all().await.unwrap().len(), 4);
    let sent = last_command(&recorder, "find");
    assert!(sent.get_bool("singleBatch").unwrap());
    assert_eq!(sent.get_i32("limit").unwrap(), 4);

    // limit == batchSize: batchSize goes as limit + 1, so that the cursor closes.
    let cursor = coll
        .find(doc! {})
        .with_options(FindOptions::default().limit(3).batch_size(3))
        .await
        .unwrap();
    assert_eq!(cursor.id(), 0);
    assert_eq!(
        last_command(&recorder, "find")
            .get_i32("batchSize")
            .unwrap(),
        4
    );
}

#[tokio::test]
async fn find_one_picks_by_sort_and_skip_in_a_single_batch() {
    let (_server, _client, coll, recorder) = seeded().await;
    let found = coll
        .find_one(doc! {"g": 1})
        .with_options(FindOneOptions::default().sort(doc! {"_id": -1}).skip(1))
        .await
        .unwrap()
        .unwrap();
    // g == 1: 1, 4, 7; descending and skipping one: 4.
    assert_eq!(found.get_i32("_id").unwrap(), 4);
    let sent = last_command(&recorder, "find");
    assert_eq!(sent.get_i32("limit").unwrap(), 1);
    assert!(sent.get_bool("singleBatch").unwrap());
    assert!(!sent.contains_key("batchSize"));
    assert_eq!(
        coll.find_one(doc! {"g": 9}).await.unwrap(),
        None,
        "nothing matches"
    );
}

#[tokio::test]
async fn distinct_and_the_counts() {
    let (_server, client, coll, recorder) = seeded().await;
    let values = coll
        .distinct("g", doc! {"_id": {"$lt": 5}})
        .with_options(DistinctOptions::default().comment("d"))
        .await
        .unwrap();
    assert_eq!(values, [Bson::Int32(0), Bson::Int32(1), Bson::Int32(2)]);
    let values = coll.distinct("g", doc! {"_id": 0}).await.unwrap();
    assert_eq!(values, [Bson::Int32(0)]);
    assert_eq!(
        last_command(&recorder, "distinct").get_str("key").unwrap(),
        "g"
    );

    assert_eq!(coll.count_documents(doc! {"g": 0}).await.unwrap(), 4);
    let counted = coll
        .count_documents(doc! {})
        .with_options(CountOptions::default().skip(3).limit(5))
        .await
        .unwrap();
    assert_eq!(counted, 5);
    let pipeline = last_command(&recorder, "aggregate");
    let stages: Vec<String> = pipeline
        .get_array("pipeline")
        .unwrap()
        .iter()
        .map(|s| s.as_document().unwrap().keys().next().unwrap().clone())
        .collect();
    assert_eq!(stages, ["$match", "$skip", "$limit", "$group"]);
    // An empty collection: no group at all, a count of 0.
    let empty = client
        .database("app")
        .collection::<mongo_client::bson::Document>("nothing");
    assert_eq!(empty.count_documents(doc! {}).await.unwrap(), 0);

    assert_eq!(coll.estimated_document_count().await.unwrap(), 10);
    let sent = last_command(&recorder, "count");
    assert!(!sent.contains_key("query"), "{sent:?}");
}

#[tokio::test]
async fn aggregation_with_out_writes_and_database_aggregation_reads_documents() {
    let (_server, client, coll, recorder) = seeded().await;
    let options: AggregateOptions =
        bson::deserialize_from_document(doc! {"batchSize": 5, "allowDiskUse": true}).unwrap();
    let grouped = coll
        .aggregate([
            doc! {"$group": {"_id": "$g", "n": {"$sum": 1}}},
            doc! {"$sort": {"_id": 1}},
        ])
        .with_options(options.clone())
        .await
        .unwrap()
        .collect_all()
        .await
        .unwrap();
    assert_eq!(
        grouped,
        [
            doc! {"_id": 0, "n": 4},
            doc! {"_id": 1, "n": 3},
            doc! {"_id": 2, "n": 3}
        ]
    );
    let sent = last_command(&recorder, "aggregate");
    assert_eq!(sent.get_document("cursor").unwrap(), &doc! {"batchSize": 5});
    assert!(sent.get_bool("allowDiskUse").unwrap());

    // $out: the results land in the target collection; the cursor asks for no batch size.
    let out = coll
        .aggregate([doc! {"$match": {"g": 2}}, doc! {"$out": "twos"}])
        .with_options(options)
        .await
        .unwrap()
        .collect_all()
        .await
        .unwrap();
    assert!(out.is_empty());
    let sent = last_command(&recorder, "aggregate");
    assert_eq!(sent.get_document("cursor").unwrap(), &doc! {});
    let twos = client
        .database("app")
        .collection::<mongo_client::bson::Document>("twos");
    assert_eq!(twos.count_documents(doc! {}).await.unwrap(), 3);

    // Database-level aggregation: `aggregate: 1` with a collection-less source.
    let docs = client
        .database("app")
        .aggregate([
            doc! {"$documents": [{"x": 1}, {"x": 2}, {"x": 3}]},
            doc! {"$match": {"x": {"$gt": 1}}},
        ])
        .await
        .unwrap()
        .collect_all()
        .await
        .unwrap();
    assert_eq!(docs, [doc! {"x": 2}, doc! {"x": 3}]);
    assert_eq!(
        last_command(&recorder, "aggregate").get("aggregate"),
        Some(&Bson::Int32(1))
    );
}
