//! Change streams against a one-member testkit replica set: typed events through the
//! `Stream`, `fullDocument: updateLookup`, the resume token, and a resume (in the same
//! session, after the last token) when the server has killed the cursor.

use std::time::Duration;

use futures_util::StreamExt;
use mongo_client::bson::{Document, doc};
use mongo_client::event::EventRecorder;
use mongo_client::{ChangeStreamEvent, FullDocumentType, OperationType};
use mongo_testkit::ReplicaSet;

use super::common::{client_for, started};

#[tokio::test]
async fn events_arrive_typed_and_the_stream_resumes_after_its_cursor_is_killed() {
    let rs = ReplicaSet::start("rs0", 1).await.unwrap();
    let recorder = EventRecorder::shared();
    let client = client_for(&rs.uri(), Some(recorder.clone())).await;
    let coll = client.database("db").collection::<Document>("c");
    coll.insert_one(doc! {"_id": 0}).await.unwrap();

    let mut stream = coll
        .watch([])
        .full_document(FullDocumentType::UpdateLookup)
        .max_await_time(Duration::from_millis(50))
        .await
        .unwrap();
    // Nothing yet: one getMore, an empty batch.
    assert!(stream.next_if_any().await.unwrap().is_none());

    coll.insert_one(doc! {"_id": 1, "x": 1}).await.unwrap();
    coll.update_one(doc! {"_id": 1}, doc! {"$set": {"x": 2}})
        .await
        .unwrap();
    let insert: ChangeStreamEvent = stream.next().await.unwrap().expect("an insert");
    assert_eq!(insert.operation_type, OperationType::Insert);
    assert_eq!(insert.full_document, Some(doc! {"_id": 1, "x": 1}));
    let update = StreamExt::next(&mut stream)
        .await
        .expect("an update")
        .unwrap();
    assert_eq!(update.operation_type, OperationType::Update);
    assert_eq!(update.full_document, Some(doc! {"_id": 1, "x": 2}));
    let token = stream.resume_token().expect("a resume token");

    // Another client kills every cursor of the collection: the next getMore fails with
    // CursorNotFound and the stream resumes after the last token.
    let killer = client_for(&rs.uri(), None).await;
    let cursors = started(&recorder)
        .into_iter()
        .filter(|e| e.command_name == "getMore")
        .filter_map(|e| e.command.get_i64("getMore").ok())
        .collect::<Vec<_>>();
    let id = *cursors.last().expect("a getMore ran");
    killer
        .database("db")
        .run_command(doc! {"killCursors": "c", "cursors": [id]})
        .await
        .unwrap();
    coll.insert_one(doc! {"_id": 2}).await.unwrap();
    let after: ChangeStreamEvent = stream
        .next()
        .await
        .unwrap()
        .expect("an insert after resume");
    assert_eq!(after.document_key, Some(doc! {"_id": 2}));

    let events = started(&recorder);
    let aggregates: Vec<_> = events
        .iter()
        .filter(|e| e.command_name == "aggregate")
        .collect();
    assert_eq!(aggregates.len(), 2, "the first aggregate and one resume");
    let stage = aggregates[1].command.get_array("pipeline").unwrap()[0]
        .as_document()
        .unwrap()
        .get_document("$changeStream")
        .unwrap()
        .clone();
    assert_eq!(
        stage,
        doc! {"fullDocument": "updateLookup", "resumeAfter": token.into_document()}
    );
    assert_eq!(
        aggregates[0].command.get_document("lsid").ok(),
        aggregates[1].command.get_document("lsid").ok(),
        "the resume runs in the same implicit session"
    );
    stream.close().await;
    assert_eq!(
        started(&recorder).last().map(|e| e.command_name.clone()),
        Some("killCursors".to_owned())
    );
}

#[tokio::test]
async fn a_dropped_collection_invalidates_and_ends_the_stream() {
    let rs = ReplicaSet::start("rs0", 1).await.unwrap();
    let client = client_for(&rs.uri(), None).await;
    let coll = client.database("db").collection::<Document>("c");
    coll.insert_one(doc! {"_id": 0}).await.unwrap();
    let mut stream = coll
        .watch([doc! {"$match": {"operationType": {"$ne": "insert"}}}])
        .max_await_time(Duration::from_millis(50))
        .await
        .unwrap();
    coll.insert_one(doc! {"_id": 1}).await.unwrap();
    coll.drop().await.unwrap();
    let kinds: Vec<OperationType> = stream
        .by_ref()
        .map(|e| e.unwrap().operation_type)
        .collect()
        .await;
    assert_eq!(kinds, vec![OperationType::Drop, OperationType::Invalidate]);
    assert!(!stream.is_alive());
    assert!(stream.next().await.unwrap().is_none());
}
