//! Retries and failure recovery: a network error clears the pool and a read is retried; a
//! state-change error marks the server Unknown and the client recovers; a retryable write is
//! retried once with the same txnNumber and a non-retryable one is not; a command future
//! dropped mid-flight closes its connection and leaves the pool consistent; MMAPv1 refuses
//! retryable writes with the spec's message; sharded retries go to another mongos when there
//! is one; a write concern error is given back when the retry wrote nothing; reads waiting
//! in a cleared pool are retried.

use std::time::Duration;

use bson::doc;
use mongo_client::event::EventRecorder;
use mongo_client::event::cmap::{CmapEvent, ConnectionClosedReason};
use mongo_client::event::command::CommandEvent;
use mongo_testkit::{Deployment, DeploymentKind, ReplicaSet, ServerOptions, TestServer};

use crate::common::client_for;

#[tokio::test]
async fn a_network_error_clears_the_pool_and_a_read_is_retried() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let recorder = EventRecorder::shared();
    // Streaming monitors wait up to heartbeatFrequencyMS for a topology change the test
    // server never makes: keep it short.
    let uri = format!("{}&heartbeatFrequencyMS=500", server.uri());
    let client = client_for(&uri, Some(recorder.clone())).await;
    let coll = client.database("db").collection("c");
    coll.insert_one(doc! {"a": 1}).await.unwrap();

    server
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": {"times": 1},
            "data": {"failCommands": ["find"], "closeConnection": true},
        })
        .unwrap();
    // The find fails with a network error, the pool is cleared, the read is retried once.
    let found = coll.find_one(doc! {"a": 1}).await.unwrap();
    assert!(found.is_some());
    let cmap = recorder.cmap_events();
    assert!(
        cmap.iter().any(|e| matches!(e, CmapEvent::PoolCleared(_))),
        "pool cleared"
    );
    assert!(
        cmap.iter()
            .any(|e| matches!(e, CmapEvent::ConnectionClosed(_)))
    );
    let stats = client.pool_stats()[0].stats;
    assert_eq!(stats.in_use, 0);

    // A command error with a state change code marks the server Unknown and clears too.
    server
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": {"times": 1},
            "data": {"failCommands": ["ping"], "errorCode": 91},
        })
        .unwrap();
    let err = client
        .run_command("admin", doc! {"ping": 1})
        .await
        .unwrap_err();
    assert!(err.is_shutdown() && err.is_state_change());
    // The client recovers.
    assert!(client.wait_for_discovery(Duration::from_secs(5)).await);
    client.run_command("admin", doc! {"ping": 1}).await.unwrap();
}

#[tokio::test]
async fn a_dropped_command_future_leaves_the_pool_consistent() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let recorder = EventRecorder::shared();
    let client = client_for(&server.uri(), Some(recorder.clone())).await;
    client.run_command("admin", doc! {"ping": 1}).await.unwrap();
    server
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": {"times": 1},
            "data": {"failCommands": ["ping"], "blockConnection": true, "blockTimeMS": 2000},
        })
        .unwrap();
    let r = tokio::time::timeout(
        Duration::from_millis(200),
        client.run_command("admin", doc! {"ping": 1}),
    )
    .await;
    assert!(r.is_err(), "the command was cancelled");
    // The half-done connection was closed, not returned.
    let stats = client.pool_stats()[0].stats;
    assert_eq!(stats.in_use, 0, "{stats:?}");
    assert_eq!(stats.pending, 0, "{stats:?}");
    assert!(recorder.cmap_events().iter().any(|e| matches!(
        e,
        CmapEvent::ConnectionClosed(c) if c.reason == ConnectionClosedReason::Error
    )));
    // And the pool still works.
    client.run_command("admin", doc! {"ping": 1}).await.unwrap();
    let stats = client.pool_stats()[0].stats;
    assert_eq!(stats.in_use, 0);
    assert_eq!(stats.total, stats.available);
}

#[tokio::test]
async fn retryable_write_is_retried_once_with_the_same_txn_number() {
    let rs = ReplicaSet::start("rs1", 2).await.unwrap();
    let recorder = EventRecorder::shared();
    let uri = format!("{}&heartbeatFrequencyMS=500", rs.uri());
    let client = client_for(&uri, Some(recorder.clone())).await;
    let coll = client.database("db").collection("retry");
    coll.insert_one(doc! {"warm": true}).await.unwrap();
    let primary = rs.primary().unwrap();
    primary
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": {"times": 1},
            "data": {"failCommands": ["insert"], "errorCode": 189,
                     "errorLabels": ["RetryableWriteError"]},
        })
        .unwrap();
    recorder.clear();
    coll.insert_one(doc! {"x": 1}).await.unwrap();
    let inserts: Vec<_> = recorder
        .command_events()
        .into_iter()
        .filter_map(|e| match e {
            CommandEvent::Started(s) if s.command_name == "insert" => Some(s.command),
            _ => None,
        })
        .collect();
    assert_eq!(inserts.len(), 2, "one retry");
    assert_eq!(inserts[0].get("txnNumber"), inserts[1].get("txnNumber"));
    assert!(inserts[0].contains_key("lsid"));

    // A non-retryable error is not retried.
    primary
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": {"times": 1},
            "data": {"failCommands": ["insert"], "errorCode": 2},
        })
        .unwrap();
    recorder.clear();
    let err = coll.insert_one(doc! {"x": 2}).await.unwrap_err();
    assert_eq!(err.code(), Some(2));
    let n = recorder
        .command_events()
        .iter()
        .filter(|e| matches!(e, CommandEvent::Started(s) if s.command_name == "insert"))
        .count();
    assert_eq!(n, 1);
    tokio::time::sleep(Duration::from_millis(10)).await;
    client.shutdown().await;
}

#[tokio::test]
async fn writes_waiting_in_a_cleared_pool_are_retried() {
    // The pool-cleared-error scenario: one connection, six inserts; the first one's network
    // error marks the primary Unknown and clears the pool, failing the five waiting
    // check-outs with PoolClearedError. Whether those writes may be retried is decided by the
    // server they were selected for (a primary with sessions), not by the topology after the
    // failure (no primary).
    let rs = ReplicaSet::start("rsPoolCleared", 2).await.unwrap();
    let recorder = EventRecorder::shared();
    let uri = format!(
        "{}&heartbeatFrequencyMS=500&maxPoolSize=1&appname=poolCleared",
        rs.uri()
    );
    let client = client_for(&uri, Some(recorder.clone())).await;
    let coll = client.database("db").collection("cleared");
    coll.insert_one(doc! {"_id": 0}).await.unwrap();
    rs.primary()
        .unwrap()
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": {"times": 1},
            "data": {"failCommands": ["insert"], "blockConnection": true, "blockTimeMS": 100,
                     "closeConnection": true, "appName": "poolCleared"},
        })
        .unwrap();
    let tasks: Vec<_> = (1..=6)
        .map(|i| {
            let coll = coll.clone();
            tokio::spawn(async move { coll.insert_one(doc! {"_id": i}).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let clears = recorder
        .cmap_events()
        .iter()
        .filter(|e| matches!(e, CmapEvent::PoolCleared(_)))
        .count();
    assert_eq!(clears, 1);
    client.shutdown().await;
}

/// Retryable writes prose test 1: on a storage engine without document-level locking
/// (MMAPv1) the server refuses `txnNumber` with IllegalOperation; the client says to turn
/// retryable writes off, keeping code 20. With retryWrites=false the write goes through.
#[tokio::test]
async fn retryable_writes_on_mmapv1_tell_to_turn_them_off() {
    let rs = ReplicaSet::start_with(
        "rsMmap",
        1,
        ServerOptions::default().with_storage_engine("mmapv1"),
    )
    .await
    .unwrap();
    let client = client_for(&rs.uri(), None).await;
    let err = client
        .database("db")
        .collection("c")
        .insert_one(doc! {"x": 1})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(20), "{err}");
    match err.kind() {
        mongo_client::ErrorKind::Command(c) => assert_eq!(
            c.message,
            "This MongoDB deployment does not support retryable writes. Please add \
             retryWrites=false to your connection string."
        ),
        other => panic!("not a command error: {other:?}"),
    }
    let off = client_for(&format!("{}&retryWrites=false", rs.uri()), None).await;
    off.database("db")
        .collection("c")
        .insert_one(doc! {"x": 2})
        .await
        .unwrap();
}

/// The servers of each `name` command that failed, then of each that succeeded.
fn outcomes_by_server(recorder: &EventRecorder, name: &str) -> (Vec<String>, Vec<String>) {
    let (mut failed, mut succeeded) = (Vec::new(), Vec::new());
    for e in recorder.command_events() {
        match e {
            CommandEvent::Failed(f) if f.command_name == name => {
                failed.push(f.connection.address.to_string());
            }
            CommandEvent::Succeeded(s) if s.command_name == name => {
                succeeded.push(s.connection.address.to_string());
            }
            _ => {}
        }
    }
    (failed, succeeded)
}

/// Makes every router of `d` fail `command` once with HostUnreachable and the retryable
/// write label (the prose tests' fail point).
fn fail_once_on_every_router(d: &Deployment, command: &str) {
    for server in d.servers() {
        server
            .configure_fail_point(doc! {
                "configureFailPoint": "failCommand", "mode": {"times": 1},
                "data": {"failCommands": [command], "errorCode": 6,
                         "errorLabels": ["RetryableWriteError"]},
            })
            .unwrap();
    }
}

/// Retryable writes prose tests 4 and 5, retryable reads prose tests 2.1 and 2.2: in a
/// sharded cluster the retry goes to another mongos when there is one (both attempts fail,
/// on two routers), else to the same one (it fails there, then succeeds there).
#[tokio::test]
async fn sharded_retries_go_to_another_mongos_when_there_is_one() {
    let d = Deployment::start(
        DeploymentKind::Sharded { routers: 2 },
        ServerOptions::default(),
    )
    .await
    .unwrap();
    for command in ["insert", "find"] {
        let recorder = EventRecorder::shared();
        let client = client_for(&d.uri(), Some(recorder.clone())).await;
        let coll = client
            .database("db")
            .collection::<bson::Document>("sharded");
        coll.find_one(doc! {}).await.unwrap();
        fail_once_on_every_router(&d, command);
        recorder.clear();
        let err = match command {
            "insert" => coll.insert_one(doc! {"x": 1}).await.map(drop).unwrap_err(),
            _ => coll.find_one(doc! {}).await.map(drop).unwrap_err(),
        };
        assert_eq!(err.code(), Some(6), "{command}: {err}");
        let (failed, _) = outcomes_by_server(&recorder, command);
        assert_eq!(failed.len(), 2, "{command}: {failed:?}");
        assert_ne!(
            failed[0], failed[1],
            "{command}: the retry went to the other mongos"
        );
        client.shutdown().await;

        let recorder = EventRecorder::shared();
        let client = client_for(&d.single_mongos_uri(), Some(recorder.clone())).await;
        let coll = client
            .database("db")
            .collection::<bson::Document>("sharded");
        coll.find_one(doc! {}).await.unwrap();
        fail_once_on_every_router(&d, command);
        recorder.clear();
        match command {
            "insert" => coll.insert_one(doc! {"x": 1}).await.map(drop).unwrap(),
            _ => coll.find_one(doc! {}).await.map(drop).unwrap(),
        }
        let (failed, succeeded) = outcomes_by_server(&recorder, command);
        assert_eq!((failed.len(), succeeded.len()), (1, 1), "{command}");
        assert_eq!(
            failed[0], succeeded[0],
            "{command}: retried on the only mongos"
        );
        client.shutdown().await;
        for server in d.servers() {
            server
                .configure_fail_point(doc! {"configureFailPoint": "failCommand", "mode": "off"})
                .unwrap();
        }
    }
}

/// Sets the NotWritablePrimary + NoWritesPerformed fail point when an insert's reply with a
/// write concern error arrives, so that it fires on the retry.
struct ArmOnWriteConcernError(TestServer);

impl mongo_client::event::CommandListener for ArmOnWriteConcernError {
    fn succeeded(&self, e: &mongo_client::event::command::CommandSucceededEvent) {
        let wce_code = e
            .reply
            .get_document("writeConcernError")
            .ok()
            .and_then(|w| w.get_i32("code").ok());
        if e.command_name == "insert" && wce_code == Some(91) {
            self.0
                .configure_fail_point(doc! {
                    "configureFailPoint": "failCommand", "mode": {"times": 1},
                    "data": {"failCommands": ["insert"], "errorCode": 10107,
                             "errorLabels": ["RetryableWriteError", "NoWritesPerformed"]},
                })
                .unwrap();
        }
    }
}

/// Retryable writes prose test 3: after a write concern error labelled RetryableWriteError,
/// a retry that fails with NoWritesPerformed gives back the original error (code 91).
#[tokio::test]
async fn a_retry_without_writes_returns_the_original_write_concern_error() {
    let rs = ReplicaSet::start("rsWce", 1).await.unwrap();
    let primary = rs.primary().unwrap().clone();
    let mut listeners = mongo_client::event::Listeners::new();
    listeners.add(mongo_client::event::Listener::Command(std::sync::Arc::new(
        ArmOnWriteConcernError(primary.clone()),
    )));
    let client = mongo_client::Client::builder()
        .options(
            mongo_client::options::ClientOptions::parse(&format!(
                "{}&heartbeatFrequencyMS=500",
                rs.uri()
            ))
            .unwrap(),
        )
        .listeners(listeners)
        .build()
        .await
        .unwrap();
    let coll = client.database("db").collection::<bson::Document>("wce");
    coll.find_one(doc! {}).await.unwrap();
    primary
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": {"times": 1},
            "data": {"failCommands": ["insert"], "errorLabels": ["RetryableWriteError"],
                     "writeConcernError": {"code": 91, "errmsg": "Replication is being shut down"}},
        })
        .unwrap();
    let err = coll.insert_one(doc! {"x": 1}).await.unwrap_err();
    primary
        .configure_fail_point(doc! {"configureFailPoint": "failCommand", "mode": "off"})
        .unwrap();
    assert_eq!(err.code(), Some(91), "{err}");
    assert!(!err.has_label("NoWritesPerformed"), "{err}");
}

/// Retryable reads prose test 1: one connection, two finds; the first fails with
/// ShutdownInProgress after holding the connection, the pool is cleared and the waiting
/// check-out fails with PoolClearedError; both finds are retried and succeed.
#[tokio::test]
async fn reads_waiting_in_a_cleared_pool_are_retried() {
    let rs = ReplicaSet::start("rsReadCleared", 1).await.unwrap();
    let recorder = EventRecorder::shared();
    let uri = format!(
        "{}&heartbeatFrequencyMS=500&maxPoolSize=1&appname=readCleared",
        rs.uri()
    );
    let client = client_for(&uri, Some(recorder.clone())).await;
    let coll = client
        .database("db")
        .collection::<bson::Document>("cleared");
    coll.find_one(doc! {}).await.unwrap();
    rs.primary()
        .unwrap()
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": {"times": 1},
            "data": {"failCommands": ["find"], "blockConnection": true, "blockTimeMS": 200,
                     "errorCode": 91, "appName": "readCleared"},
        })
        .unwrap();
    recorder.clear();
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let coll = coll.clone();
            tokio::spawn(async move { coll.find_one(doc! {}).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let cmap = recorder.cmap_events();
    let count = |f: fn(&CmapEvent) -> bool| cmap.iter().filter(|e| f(e)).count();
    assert_eq!(count(|e| matches!(e, CmapEvent::PoolCleared(_))), 1);
    assert!(count(|e| matches!(e, CmapEvent::ConnectionCheckOutFailed(_))) >= 1);
    let (failed, succeeded) = outcomes_by_server(&recorder, "find");
    assert_eq!(
        (failed.len(), succeeded.len()),
        (1, 2),
        "one failure, two successes"
    );
    client.shutdown().await;
}
