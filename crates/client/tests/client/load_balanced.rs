//! Load-balanced mode through the client: a cursor pins its connection until exhausted, its
//! getMores reuse it, and no monitor runs (no heartbeats).

use std::time::Duration;

use bson::doc;
use mongo_client::FindOptions;
use mongo_client::event::EventRecorder;
use mongo_client::event::cmap::CmapEvent;

use crate::common::load_balanced_with_docs;

#[tokio::test]
async fn load_balanced_mode_pins_cursors_and_runs_no_monitor() {
    let (_server, recorder, client, coll) = load_balanced_with_docs().await;
    client.run_command("admin", doc! {"ping": 1}).await.unwrap();

    let checked_out = |r: &EventRecorder| {
        r.cmap_events()
            .iter()
            .filter(|e| matches!(e, CmapEvent::ConnectionCheckedOut(_)))
            .count()
    };
    let checked_in = |r: &EventRecorder| {
        r.cmap_events()
            .iter()
            .filter(|e| matches!(e, CmapEvent::ConnectionCheckedIn(_)))
            .count()
    };
    let before = checked_out(&recorder);
    let mut cursor = coll
        .find(doc! {})
        .with_options(FindOptions::default().batch_size(2))
        .await
        .unwrap();
    assert!(
        cursor.is_pinned(),
        "a load-balanced cursor pins its connection"
    );
    assert_eq!(
        checked_out(&recorder),
        checked_in(&recorder) + 1,
        "the pinned connection is still out: {:?}",
        recorder.cmap_names()
    );
    let mut seen = 0;
    while let Some(_d) = cursor.try_next().await.unwrap() {
        seen += 1;
    }
    assert_eq!(seen, 5);
    assert!(!cursor.is_pinned(), "an exhausted cursor unpins");
    drop(cursor);
    // Give a possible asynchronous check-in a moment.
    for _ in 0..50 {
        if checked_out(&recorder) == checked_in(&recorder) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(checked_out(&recorder), checked_in(&recorder));
    // The getMores went over the pinned connection: one check-out for the find, no more.
    assert_eq!(checked_out(&recorder), before + 1);
    let names = recorder.cmap_names();
    assert!(names.contains(&"ConnectionReady"), "{names:?}");
    // No monitoring in load-balanced mode: no heartbeats at all.
    assert!(
        recorder.heartbeat_events().is_empty(),
        "{:?}",
        recorder.heartbeat_events()
    );
}

#[tokio::test]
async fn a_cursor_keeps_its_connection_after_a_network_error_until_closed() {
    let (_server, recorder, client, coll) = load_balanced_with_docs().await;
    client
        .run_command(
            "admin",
            doc! {
                "configureFailPoint": "failCommand", "mode": {"times": 1},
                "data": {"failCommands": ["getMore"], "closeConnection": true},
            },
        )
        .await
        .unwrap();
    let out = |r: &EventRecorder| {
        r.cmap_events()
            .iter()
            .map(|e| match e {
                CmapEvent::ConnectionCheckedOut(_) => 1,
                CmapEvent::ConnectionCheckedIn(_) => -1,
                _ => 0,
            })
            .sum::<i32>()
    };
    let mut cursor = coll
        .find(doc! {})
        .with_options(FindOptions::default().batch_size(2))
        .await
        .unwrap();
    assert_eq!(out(&recorder), 1);
    cursor.try_next().await.unwrap();
    cursor.try_next().await.unwrap();
    let e = cursor.try_next().await.unwrap_err();
    assert!(e.is_network_error(), "{e}");
    // The load balancers spec: the connection stays pinned until the cursor is closed.
    assert_eq!(out(&recorder), 1, "{:?}", recorder.cmap_names());
    let started = crate::common::started_names(&recorder);
    cursor.close().await;
    assert_eq!(out(&recorder), 0, "{:?}", recorder.cmap_names());
    // No killCursors on the dead connection; it is closed once checked in.
    assert_eq!(crate::common::started_names(&recorder), started);
    let names = recorder.cmap_names();
    assert_eq!(
        names[names.len() - 2..],
        ["ConnectionCheckedIn", "ConnectionClosed"],
        "{names:?}"
    );
}
