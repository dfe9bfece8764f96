//! Prose tests of the client-side operations timeout spec's test README: 5 (blocking
//! iteration of a tailable cursor and of a change stream) and 9 (endSession). The README's
//! milliseconds are scaled up (blocks of 400 ms under a timeoutMS of 600 ms, where it has
//! 15 and 20; an abort blocked 1 s under 150 ms) so that a loaded machine keeps the order of
//! events the tests are about; the rules checked are the same.

use std::time::{Duration, Instant};

use bson::{Document, doc};
use mongo_client::event::EventRecorder;
use mongo_client::{CreateCollectionOptions, CursorType, FindOptions, SessionOptions};
use mongo_testkit::{ReplicaSet, TestServer};

use super::common::{client_for, started_names};

/// Blocks every `command` for `ms` milliseconds until the fail points are cleared.
fn block(server: &TestServer, command: &str, mode: impl Into<bson::Bson>, ms: i64) {
    server
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": mode.into(),
            "data": {"failCommands": [command], "blockConnection": true, "blockTimeMS": ms},
        })
        .unwrap();
}

/// The names of the commands on `db.coll` (and getMores) the recorder saw.
fn on_coll(recorder: &EventRecorder) -> Vec<String> {
    started_names(recorder)
        .into_iter()
        .filter(|n| ["find", "aggregate", "getMore"].contains(&n.as_str()))
        .collect()
}

/// Prose test 5, tailable cursors: the blocking `next` keeps sending getMores until its one
/// timeoutMS runs out.
#[tokio::test]
async fn prose_5_a_blocking_next_on_a_tailable_cursor_times_out_as_a_whole() {
    let rs = ReplicaSet::start("csot5a", 1).await.unwrap();
    let internal = client_for(&rs.uri(), None).await;
    let db = internal.database("db");
    db.create_collection("coll")
        .with_options(
            CreateCollectionOptions::default()
                .capped(true)
                .size(1 << 20),
        )
        .await
        .unwrap();
    db.collection::<Document>("coll")
        .insert_one(doc! {"x": 1})
        .await
        .unwrap();
    let primary = rs.primary().unwrap();
    block(primary, "getMore", "alwaysOn", 400);

    let recorder = EventRecorder::shared();
    let uri = format!("{}&timeoutMS=600", rs.uri());
    let client = client_for(&uri, Some(recorder.clone())).await;
    let coll = client.database("db").collection::<Document>("coll");
    let mut cursor = coll
        .find(doc! {})
        .with_options(FindOptions::default().cursor_type(CursorType::Tailable))
        .projection(doc! {"_id": 0})
        .await
        .unwrap();
    assert_eq!(cursor.try_next().await.unwrap(), Some(doc! {"x": 1}));
    assert_eq!(
        on_coll(&recorder),
        ["find"],
        "the first batch had the document"
    );
    let err = cursor.try_next().await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(on_coll(&recorder), ["find", "getMore", "getMore"]);
    primary.clear_fail_points();
}

/// Prose test 5, change streams: the blocking `next` of a change stream times out as a
/// whole (its getMores share one timeoutMS).
#[tokio::test]
async fn prose_5_a_blocking_next_on_a_change_stream_times_out_as_a_whole() {
    let rs = ReplicaSet::start("csot5b", 1).await.unwrap();
    let primary = rs.primary().unwrap();
    block(primary, "getMore", "alwaysOn", 400);

    let recorder = EventRecorder::shared();
    let uri = format!("{}&timeoutMS=600", rs.uri());
    let client = client_for(&uri, Some(recorder.clone())).await;
    let coll = client.database("db").collection::<Document>("coll");
    // A short maxAwaitTimeMS: each getMore takes its 400 ms block and little more.
    let mut stream = coll
        .watch([])
        .max_await_time(Duration::from_millis(10))
        .await
        .unwrap();
    let err = stream.next().await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(on_coll(&recorder), ["aggregate", "getMore", "getMore"]);
    assert!(stream.is_alive(), "a timeout does not end the stream");
    primary.clear_fail_points();
}

/// Prose test 9: ending a session aborts its transaction within the session's timeout, from
/// the client's timeoutMS or the session's defaultTimeoutMS. (`end_session_async` reports no
/// error: an abort's outcome is ignored, as the transactions spec says; what is checked is
/// that the abort gives up at the timeout, long before the server answers.)
#[tokio::test]
async fn prose_9_end_session_aborts_within_the_timeout() {
    let rs = ReplicaSet::start("csot9", 1).await.unwrap();
    let primary = rs.primary().unwrap();
    for from_client in [true, false] {
        let recorder = EventRecorder::shared();
        let uri = if from_client {
            format!("{}&timeoutMS=150", rs.uri())
        } else {
            rs.uri()
        };
        let client = client_for(&uri, Some(recorder.clone())).await;
        let coll = client.database("db").collection::<Document>("coll");
        coll.insert_one(doc! {"setup": 1}).await.unwrap();
        let options = if from_client {
            SessionOptions::default()
        } else {
            SessionOptions::default().default_timeout(Duration::from_millis(150))
        };
        let mut session = client.start_session(options).unwrap();
        session.start_transaction(None).unwrap();
        coll.insert_one(doc! {"x": 1})
            .session(&mut session)
            .await
            .unwrap();
        block(primary, "abortTransaction", doc! {"times": 1}, 1_000);
        let began = Instant::now();
        session.end_session_async().await;
        let took = began.elapsed();
        assert!(
            took < Duration::from_millis(800),
            "the abort gave up at the timeout (client timeoutMS: {from_client}): {took:?}"
        );
        assert!(started_names(&recorder).contains(&"abortTransaction".to_owned()));
        assert!(session.has_ended());
        primary.clear_fail_points();
    }
}
