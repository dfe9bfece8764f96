//! Requested immediate checks happen: after a state-change error marks the only server
//! Unknown, the retry's server selection finds it again within a fraction of the default
//! heartbeatFrequencyMS (10 s), whether the monitor polls or streams (an awaited hello in
//! flight must not hold the rediscovery until maxAwaitTimeMS).

use std::time::{Duration, Instant};

use bson::doc;
use mongo_client::event::EventRecorder;
use mongo_client::event::command::CommandEvent;
use mongo_client::event::sdam::HeartbeatEvent;
use mongo_testkit::ReplicaSet;

use crate::common::client_for;

/// A retryable insert gets a writeConcernError ShutdownInProgress (91), which marks the
/// server Unknown; the retry must wait for an immediate check, not the next scheduled one.
async fn state_change_error_is_followed_by_a_prompt_check(mode: &str) {
    let rs = ReplicaSet::start(&format!("rsImm{mode}"), 1).await.unwrap();
    let primary = rs.primary().unwrap().clone();
    let recorder = EventRecorder::shared();
    // Default heartbeatFrequencyMS (10 s).
    let uri = format!("{}&serverMonitoringMode={mode}", rs.uri());
    let client = client_for(&uri, Some(recorder.clone())).await;
    let coll = client.database("db").collection::<bson::Document>("imm");
    coll.insert_one(doc! {"warm": 1}).await.unwrap();
    // Let the monitor settle into its wait (polling) or its awaited hello (streaming).
    tokio::time::sleep(Duration::from_millis(300)).await;
    primary
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": {"times": 1},
            "data": {"failCommands": ["insert"], "errorLabels": ["RetryableWriteError"],
                     "writeConcernError": {"code": 91, "errmsg": "Replication is being shut down"}},
        })
        .unwrap();
    recorder.clear();
    let start = Instant::now();
    coll.insert_one(doc! {"x": 1}).await.unwrap();
    let took = start.elapsed();
    let inserts = recorder
        .command_events()
        .iter()
        .filter(|e| matches!(e, CommandEvent::Started(s) if s.command_name == "insert"))
        .count();
    assert_eq!(inserts, 2, "{mode}: the insert was retried");
    assert!(
        took < Duration::from_secs(5),
        "{mode}: the retry waited {took:?} for the server to be rediscovered"
    );
    // The rediscovery came from a fresh (not awaited) check started after the error.
    let prompt_check = recorder
        .heartbeat_events()
        .iter()
        .any(|e| matches!(e, HeartbeatEvent::Started(s) if !s.awaited));
    assert!(prompt_check, "{mode}: no immediate check started");
    client.shutdown().await;
}

#[tokio::test]
async fn a_state_change_error_is_followed_by_an_immediate_check_when_polling() {
    state_change_error_is_followed_by_a_prompt_check("poll").await;
}

#[tokio::test]
async fn a_state_change_error_is_followed_by_an_immediate_check_when_streaming() {
    state_change_error_is_followed_by_a_prompt_check("stream").await;
}
