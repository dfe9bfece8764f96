//! Change streams against a one-member testkit replica set: typed events through the
//! `Stream`, `fullDocument: updateLookup`, the resume token, and a resume (in the same
//! session, after the last token) when the server has killed the cursor.

use std::time::Duration;

use futures_util::StreamExt;
use mongo_client::bson::{Document, doc};
use mongo_client::event::EventRecorder;
use mongo_client::event::command::CommandEvent;
use mongo_client::{ChangeStreamEvent, Client, FullDocumentType, OperationType};
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

/// The `$changeStream` stage of the `n`th aggregate `r` saw start.
fn stage_of(r: &EventRecorder, n: usize) -> Document {
    let aggregates: Vec<_> = started(r)
        .into_iter()
        .filter(|e| e.command_name == "aggregate")
        .collect();
    aggregates[n].command.get_array("pipeline").unwrap()[0]
        .as_document()
        .unwrap()
        .get_document("$changeStream")
        .unwrap()
        .clone()
}

/// The `postBatchResumeToken` of the last cursor reply `r` saw succeed.
fn last_post_batch_token(r: &EventRecorder) -> Option<Document> {
    r.command_events().into_iter().rev().find_map(|e| match e {
        CommandEvent::Succeeded(s)
            if s.command_name == "getMore" || s.command_name == "aggregate" =>
        {
            s.reply
                .get_document("cursor")
                .ok()?
                .get_document("postBatchResumeToken")
                .ok()
                .cloned()
        }
        _ => None,
    })
}

/// Fails the next `times` `command`s on the primary with `code`.
async fn fail_next(client: &Client, command: &str, code: i32, times: i32) {
    client
        .database("admin")
        .run_command(doc! {
            "configureFailPoint": "failCommand", "mode": {"times": times},
            "data": {"failCommands": [command], "errorCode": code},
        })
        .await
        .unwrap();
}

/// Prose tests 1, 11 and 13: the token is the last event's `_id` inside a batch, and the
/// batch's `postBatchResumeToken` after its last event.
#[tokio::test]
async fn prose_the_resume_token_follows_events_and_post_batch_tokens() {
    let rs = ReplicaSet::start("rs0", 1).await.unwrap();
    let recorder = EventRecorder::shared();
    let client = client_for(&rs.uri(), Some(recorder.clone())).await;
    let coll = client.database("db").collection::<Document>("c");
    coll.insert_one(doc! {"_id": 0}).await.unwrap();
    let mut stream = coll
        .watch([])
        .max_await_time(Duration::from_millis(50))
        .await
        .unwrap();
    assert!(stream.next_if_any().await.unwrap().is_none());
    // An empty batch: its postBatchResumeToken (prose 11).
    let pbrt = last_post_batch_token(&recorder).expect("a postBatchResumeToken");
    assert_eq!(stream.resume_token().map(|t| t.into_document()), Some(pbrt));
    for i in 1..=3 {
        coll.insert_one(doc! {"_id": i}).await.unwrap();
    }
    let first = stream.next().await.unwrap().unwrap();
    // Inside the batch: the event's _id (prose 13).
    assert_eq!(stream.resume_token(), Some(first.id.clone()));
    let second = stream.next().await.unwrap().unwrap();
    assert_eq!(stream.resume_token(), Some(second.id.clone()));
    let third = stream.next().await.unwrap().unwrap();
    assert_eq!(third.document_key, Some(doc! {"_id": 3}));
    // The batch's last event: the batch's postBatchResumeToken (prose 11).
    let pbrt = last_post_batch_token(&recorder).expect("a postBatchResumeToken");
    assert_eq!(stream.resume_token().map(|t| t.into_document()), Some(pbrt));

    // Prose 14: before iterating, the token is the start option given, or none.
    let resumed = coll.watch([]).resume_after(first.id.clone()).await.unwrap();
    assert_eq!(resumed.resume_token(), Some(first.id.clone()));
    let started_after = coll.watch([]).start_after(second.id.clone()).await.unwrap();
    assert_eq!(started_after.resume_token(), Some(second.id.clone()));
    // Prose 7: a cursor with an id and an empty first batch stays open.
    assert!(started_after.is_alive());
}

/// Prose tests 3, 4 and 8: a resumable getMore error resumes once with the same pipeline
/// and options plus the token, even when the old cursor's killCursors fails; an aggregate
/// error is never resumed.
#[tokio::test]
async fn prose_resumes_once_after_a_getmore_error_and_never_after_an_aggregate_error() {
    let rs = ReplicaSet::start("rs0", 1).await.unwrap();
    let recorder = EventRecorder::shared();
    let uri = format!("{}&retryReads=false", rs.uri());
    let client = client_for(&uri, Some(recorder.clone())).await;
    let coll = client.database("db").collection::<Document>("c");
    coll.insert_one(doc! {"_id": 0}).await.unwrap();

    // An aggregate that fails with a resumable code: the error, and nothing more.
    fail_next(&client, "aggregate", 43, 1).await;
    let err = coll.watch([]).await.unwrap_err();
    assert_eq!(err.code(), Some(43));
    let names: Vec<String> = started(&recorder)
        .into_iter()
        .map(|e| e.command_name)
        .filter(|n| n == "aggregate")
        .collect();
    assert_eq!(names.len(), 1, "no resume after an aggregate error");

    let pipeline = [doc! {"$match": {"operationType": "insert"}}];
    let mut stream = coll
        .watch(pipeline.clone())
        .batch_size(5)
        .max_await_time(Duration::from_millis(50))
        .await
        .unwrap();
    coll.insert_one(doc! {"_id": 1}).await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.document_key, Some(doc! {"_id": 1}));
    let token = stream.resume_token().expect("a token");
    // The getMore fails with CursorNotFound, and so does the killCursors of the resume (one
    // fail point: configuring failCommand again replaces it).
    client
        .database("admin")
        .run_command(doc! {
            "configureFailPoint": "failCommand", "mode": {"times": 2},
            "data": {"failCommands": ["getMore", "killCursors"], "errorCode": 43},
        })
        .await
        .unwrap();
    coll.insert_one(doc! {"_id": 2}).await.unwrap();
    let second = stream.next().await.unwrap().unwrap();
    assert_eq!(second.document_key, Some(doc! {"_id": 2}));
    let aggregates: Vec<_> = started(&recorder)
        .into_iter()
        .filter(|e| e.command_name == "aggregate")
        .collect();
    assert_eq!(aggregates.len(), 3);
    let (before, after) = (&aggregates[1].command, &aggregates[2].command);
    assert_eq!(before.get("cursor"), after.get("cursor"));
    assert_eq!(
        before.get_array("pipeline").unwrap()[1..],
        after.get_array("pipeline").unwrap()[1..]
    );
    assert_eq!(
        stage_of(&recorder, 2),
        doc! {"resumeAfter": token.into_document()}
    );
    assert!(
        started(&recorder)
            .iter()
            .any(|e| e.command_name == "killCursors"),
        "the old cursor was killed"
    );
}

/// Prose tests 17 and 18: a stream started with `startAfter` resumes with `startAfter`
/// until it has returned an event, then with `resumeAfter`.
#[tokio::test]
async fn prose_start_after_until_an_event_is_returned() {
    let rs = ReplicaSet::start("rs0", 1).await.unwrap();
    let recorder = EventRecorder::shared();
    let client = client_for(&rs.uri(), Some(recorder.clone())).await;
    let coll = client.database("db").collection::<Document>("c");
    let mut probe = coll
        .watch([])
        .max_await_time(Duration::from_millis(50))
        .await
        .unwrap();
    coll.insert_one(doc! {"_id": 0}).await.unwrap();
    let token = probe.next().await.unwrap().unwrap().id;
    probe.close().await;

    let mut stream = coll
        .watch([])
        .start_after(token)
        .max_await_time(Duration::from_millis(50))
        .await
        .unwrap();
    fail_next(&client, "getMore", 43, 1).await;
    assert!(stream.next_if_any().await.unwrap().is_none());
    let stage = stage_of(&recorder, 2);
    assert!(
        stage.contains_key("startAfter") && !stage.contains_key("resumeAfter"),
        "{stage}"
    );

    coll.insert_one(doc! {"_id": 1}).await.unwrap();
    let event = stream.next().await.unwrap().unwrap();
    fail_next(&client, "getMore", 43, 1).await;
    coll.insert_one(doc! {"_id": 2}).await.unwrap();
    let next = stream.next().await.unwrap().unwrap();
    assert_eq!(next.document_key, Some(doc! {"_id": 2}));
    let stage = stage_of(&recorder, 3);
    assert!(
        stage.contains_key("resumeAfter") && !stage.contains_key("startAfter"),
        "{stage}"
    );
    assert_ne!(event.id, next.id);
}
