//! Change streams prose test 19: a change event over 16 MiB, with
//! `$changeStreamSplitLargeEvent` at the end of the pipeline, arrives as two fragments
//! (`splitEvent` 1 of 2, then 2 of 2); a stream resumed from the first fragment's token
//! goes on with the second.

use std::time::Duration;

use mongo_client::FullDocumentBeforeChangeType;
use mongo_client::bson::{Document, doc};
use mongo_testkit::ReplicaSet;

use super::common::client_for;

#[tokio::test]
async fn prose_19_large_events_are_split_with_change_stream_split_large_event() {
    let rs = ReplicaSet::start("rs0", 1).await.unwrap();
    let client = client_for(&rs.uri(), None).await;
    let db = client.database("db");
    db.create_collection("c")
        .change_stream_pre_and_post_images(doc! {"enabled": true})
        .await
        .unwrap();
    let coll = db.collection::<Document>("c");
    coll.insert_one(doc! {"_id": 1, "value": "q".repeat(10 * 1024 * 1024)})
        .await
        .unwrap();
    let mut stream = coll
        .watch([doc! {"$changeStreamSplitLargeEvent": {}}])
        .full_document_before_change(FullDocumentBeforeChangeType::Required)
        .max_await_time(Duration::from_millis(100))
        .with_type::<Document>()
        .await
        .unwrap();
    coll.update_one(
        doc! {},
        doc! {"$set": {"value": "z".repeat(10 * 1024 * 1024)}},
    )
    .await
    .unwrap();
    let first = stream.next().await.unwrap().expect("fragment 1");
    let second = stream.next().await.unwrap().expect("fragment 2");
    let split = |e: &Document| e.get_document("splitEvent").unwrap().clone();
    assert_eq!(split(&first), doc! {"fragment": 1, "of": 2});
    assert_eq!(split(&second), doc! {"fragment": 2, "of": 2});
    // Together the fragments hold the whole event: the update and the pre-image.
    let has = |key: &str| first.contains_key(key) || second.contains_key(key);
    assert!(has("operationType") && has("updateDescription"));
    assert!(has("fullDocumentBeforeChange"));
    assert_ne!(first.get("_id"), second.get("_id"));

    // Resuming after the first fragment returns the second one again.
    let resumed = coll
        .watch([doc! {"$changeStreamSplitLargeEvent": {}}])
        .full_document_before_change(FullDocumentBeforeChangeType::Required)
        .resume_after(first.get_document("_id").unwrap().clone())
        .with_type::<Document>()
        .await
        .unwrap()
        .next()
        .await
        .unwrap()
        .expect("fragment 2 again");
    assert_eq!(
        resumed.get_document("splitEvent").unwrap(),
        &doc! {"fragment": 2, "of": 2}
    );
}
