//! Client backpressure: commands that fail with a retryable overload error (labels
//! `SystemOverloadedError` and `RetryableError`, set here by the `failCommand` fail point) are
//! retried — reads, writes the retryable writes rules would not retry, runCommand, getMore —
//! at most `maxAdaptiveRetries` times, after an exponential backoff with jitter, each attempt
//! on a connection checked out afresh; a deadline (`timeoutMS`) that leaves no room for the
//! next backoff ends the retries; `enableOverloadRetargeting` moves retries to other servers;
//! the caller gets the last error with its labels.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bson::{Bson, Document, doc};
use mongo_client::event::cmap::CmapEvent;
use mongo_client::event::command::CommandEvent;
use mongo_client::event::{EventRecorder, Listeners};
use mongo_client::{
    Backoff, BackoffSleep, Client, ClientOptions, FindOptions, RandomBackoff, ServerType,
};
use mongo_testkit::{ReplicaSet, ServerOptions, TestServer};

use crate::common::{failed_names, started, started_names};

/// Pins the jitter and records every backoff; sleeps for real only when `sleeps`.
#[derive(Debug)]
struct Recorded {
    jitter: f64,
    sleeps: bool,
    waits: Mutex<Vec<Duration>>,
}

impl Recorded {
    fn new(jitter: f64, sleeps: bool) -> Arc<Self> {
        Arc::new(Recorded {
            jitter,
            sleeps,
            waits: Mutex::new(Vec::new()),
        })
    }

    fn waits(&self) -> Vec<Duration> {
        self.waits.lock().unwrap().clone()
    }
}

impl Backoff for Recorded {
    fn jitter(&self) -> f64 {
        self.jitter
    }

    fn sleep(&self, duration: Duration) -> BackoffSleep {
        self.waits.lock().unwrap().push(duration);
        if self.sleeps {
            RandomBackoff.sleep(duration)
        } else {
            Box::pin(std::future::ready(()))
        }
    }
}

/// A client for `uri` recording every event, with `backoff`.
async fn open(uri: &str, backoff: Arc<Recorded>) -> (Client, Arc<EventRecorder>) {
    let recorder = EventRecorder::shared();
    let mut listeners = Listeners::new();
    listeners.add_all(recorder.clone());
    let client = Client::builder()
        .options(ClientOptions::parse(uri).expect("uri"))
        .listeners(listeners)
        .backoff(backoff)
        .build()
        .await
        .expect("client");
    (client, recorder)
}

/// Makes `server` fail `commands` with a retryable overload error of `code`; `mode` as the
/// fail point takes it ("alwaysOn", `{times: n}`).
fn overload(server: &TestServer, commands: &[&str], mode: impl Into<Bson>, code: i32) {
    server
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": mode.into(),
            "data": {"failCommands": commands, "errorCode": code,
                     "errorLabels": ["RetryableError", "SystemOverloadedError"]},
        })
        .unwrap();
}

fn times(n: i32) -> Document {
    doc! {"times": n}
}

/// The outcome of each `name` command the recorder saw: `true` for succeeded.
fn outcomes(recorder: &EventRecorder, name: &str) -> Vec<bool> {
    recorder
        .command_events()
        .into_iter()
        .filter_map(|e| match e {
            CommandEvent::Succeeded(s) if s.command_name == name => Some(true),
            CommandEvent::Failed(f) if f.command_name == name => Some(false),
            _ => None,
        })
        .collect()
}

/// The servers the `name` commands went to, in order.
fn servers_of(recorder: &EventRecorder, name: &str) -> Vec<String> {
    started(recorder)
        .into_iter()
        .filter(|s| s.command_name == name)
        .map(|s| s.connection.address.to_string())
        .collect()
}

#[tokio::test]
async fn a_read_is_retried_with_backoff_until_it_succeeds() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let backoff = Recorded::new(1.0, false);
    let (client, recorder) = open(&server.uri(), backoff.clone()).await;
    let coll = client.database("db").collection("c");
    coll.insert_one(doc! {"a": 1}).await.unwrap();
    overload(&server, &["find"], times(2), 2);
    recorder.clear();
    assert!(coll.find_one(doc! {"a": 1}).await.unwrap().is_some());
    assert_eq!(outcomes(&recorder, "find"), [false, false, true]);
    // jitter * min(10 s, 100 ms * 2^attempt), attempt counting from 1.
    assert_eq!(
        backoff.waits(),
        [Duration::from_millis(200), Duration::from_millis(400)]
    );
    // Each attempt checked a connection out and back in before the next one.
    let checks: Vec<&str> = recorder
        .cmap_events()
        .iter()
        .filter_map(|e| match e {
            CmapEvent::ConnectionCheckedOut(_) => Some("out"),
            CmapEvent::ConnectionCheckedIn(_) => Some("in"),
            _ => None,
        })
        .collect();
    assert_eq!(checks, ["out", "in", "out", "in", "out", "in"]);
    client.shutdown().await;
}

#[tokio::test]
async fn writes_the_retryable_writes_rules_skip_and_run_command_are_retried() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let (client, recorder) = open(&server.uri(), Recorded::new(0.0, false)).await;
    let coll = client.database("db").collection("c");
    coll.insert_many(vec![doc! {"a": 1}, doc! {"a": 1}])
        .await
        .unwrap();
    // updateMany is not a retryable write; an overload error retries it all the same.
    overload(&server, &["update"], times(1), 462);
    recorder.clear();
    let updated = coll
        .update_many(doc! {"a": 1}, doc! {"$set": {"b": 2}})
        .await
        .unwrap();
    assert_eq!(updated.modified_count, 2);
    assert_eq!(outcomes(&recorder, "update"), [false, true]);
    // Neither retry carried a transaction number: still not a retryable write.
    assert!(
        started(&recorder)
            .iter()
            .all(|s| !s.command.contains_key("txnNumber"))
    );
    // A user's command (runCommand), never retryable otherwise.
    overload(&server, &["ping"], times(2), 462);
    recorder.clear();
    client.run_command("admin", doc! {"ping": 1}).await.unwrap();
    assert_eq!(outcomes(&recorder, "ping"), [false, false, true]);
    client.shutdown().await;
}

#[tokio::test]
async fn retry_reads_and_retry_writes_gate_overload_retries() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    for option in ["retryReads=false", "retryWrites=false"] {
        let uri = format!("{}&{option}", server.uri());
        let (client, recorder) = open(&uri, Recorded::new(0.0, false)).await;
        let coll = client.database("db").collection("c");
        let (command, other) = if option == "retryReads=false" {
            ("find", "insert")
        } else {
            ("insert", "find")
        };
        overload(&server, &[command], times(1), 462);
        let first = match command {
            "find" => coll.find_one(doc! {}).await.map(drop),
            _ => coll.insert_one(doc! {"x": 1}).await.map(drop),
        };
        assert!(first.is_err(), "{option}: {command} not retried");
        // runCommand needs both options.
        overload(&server, &["ping"], times(1), 462);
        assert!(client.run_command("admin", doc! {"ping": 1}).await.is_err());
        // The other kind still is retried.
        overload(&server, &[other], times(1), 462);
        let second = match other {
            "find" => coll.find_one(doc! {}).await.map(drop),
            _ => coll.insert_one(doc! {"x": 1}).await.map(drop),
        };
        assert!(second.is_ok(), "{option}: {other} retried: {second:?}");
        let names = started_names(&recorder);
        let count = |n: &str| names.iter().filter(|s| *s == n).count();
        assert_eq!(
            (count(command), count("ping"), count(other)),
            (1, 1, 2),
            "{option}: {names:?}"
        );
        client.shutdown().await;
    }
}

#[tokio::test]
async fn attempts_are_bounded_by_max_adaptive_retries_and_the_last_error_is_returned() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    overload(&server, &["find"], "alwaysOn", 462);
    for (option, attempts) in [("", 3), ("&maxAdaptiveRetries=1", 2)] {
        let uri = format!("{}{option}", server.uri());
        let (client, recorder) = open(&uri, Recorded::new(0.0, false)).await;
        let err = client
            .database("db")
            .collection::<mongo_client::bson::Document>("c")
            .find_one(doc! {})
            .await
            .unwrap_err();
        assert!(err.has_label("RetryableError") && err.has_label("SystemOverloadedError"));
        assert_eq!(err.code(), Some(462));
        assert_eq!(failed_names(&recorder), vec!["find"; attempts], "{option}");
        client.shutdown().await;
    }
    server.clear_fail_points();
}

#[tokio::test]
async fn get_more_is_retried_on_its_server() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let (client, recorder) = open(&server.uri(), Recorded::new(0.0, false)).await;
    let coll = client.database("db").collection("c");
    coll.insert_many(vec![doc! {"a": 1}, doc! {"a": 2}, doc! {"a": 3}])
        .await
        .unwrap();
    let options = FindOptions::default().batch_size(2).sort(doc! {"a": 1});
    overload(&server, &["getMore"], times(2), 2);
    recorder.clear();
    let all = coll
        .find(doc! {})
        .with_options(options.clone())
        .await
        .unwrap()
        .collect_all()
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(outcomes(&recorder, "getMore"), [false, false, true]);

    // Always overloaded: three getMores, then the error; the cursor is killed when dropped.
    overload(&server, &["getMore"], "alwaysOn", 2);
    recorder.clear();
    let mut cursor = coll.find(doc! {}).with_options(options).await.unwrap();
    let mut seen = 0;
    let err = loop {
        match cursor.try_next().await {
            Ok(Some(_)) => seen += 1,
            Ok(None) => panic!("the getMore must fail"),
            Err(e) => break e,
        }
    };
    assert_eq!(seen, 2);
    assert!(err.is_retryable_overload_error(), "{err:?}");
    drop(cursor);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !started_names(&recorder).contains(&"killCursors".to_owned()) {
        assert!(Instant::now() < deadline, "{:?}", started_names(&recorder));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        started_names(&recorder),
        ["find", "getMore", "getMore", "getMore", "killCursors"]
    );
    server.clear_fail_points();
    client.shutdown().await;
}

#[tokio::test]
async fn the_backoff_waits_between_attempts() {
    // The backpressure prose test "operation retry uses exponential backoff": jitter 0, then
    // jitter 1 (real sleeps): the second run takes the two backoffs (200 + 400 ms) longer.
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    overload(&server, &["insert"], "alwaysOn", 2);
    let mut took = Vec::new();
    for jitter in [0.0, 1.0] {
        let (client, _) = open(&server.uri(), Recorded::new(jitter, true)).await;
        client.run_command("admin", doc! {"ping": 1}).await.unwrap();
        let coll = client.database("db").collection("c");
        let started_at = Instant::now();
        assert!(coll.insert_one(doc! {"a": 1}).await.is_err());
        took.push(started_at.elapsed());
        client.shutdown().await;
    }
    server.clear_fail_points();
    let extra = took[1].saturating_sub(took[0]);
    assert!(
        extra >= Duration::from_millis(600) && extra < Duration::from_millis(1200),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_deadline_too_close_for_the_next_backoff_ends_the_retries() {
    // timeoutMS=350 with jitter 1: the first backoff (200 ms) fits, the second (400 ms) does
    // not; the caller gets the overload error, not a timeout.
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let backoff = Recorded::new(1.0, false);
    let uri = format!("{}&timeoutMS=350", server.uri());
    let (client, recorder) = open(&uri, backoff.clone()).await;
    client.run_command("admin", doc! {"ping": 1}).await.unwrap();
    overload(&server, &["find"], "alwaysOn", 462);
    let err = client
        .database("db")
        .collection::<mongo_client::bson::Document>("c")
        .find_one(doc! {})
        .await
        .unwrap_err();
    assert!(err.is_retryable_overload_error(), "{err:?}");
    assert_eq!(failed_names(&recorder), ["find", "find"]);
    assert_eq!(backoff.waits(), [Duration::from_millis(200)]);
    server.clear_fail_points();
    client.shutdown().await;
}

#[tokio::test]
async fn retargeting_moves_read_retries_to_other_members() {
    let rs = ReplicaSet::start("overload", 3).await.unwrap();
    let primary = rs.primary_index().unwrap();
    let secondaries: Vec<usize> = (0..3).filter(|i| *i != primary).collect();
    // Each secondary is overloaded once, with its own code.
    for (i, code) in secondaries.iter().zip([462, 463]) {
        overload(rs.member(*i).unwrap(), &["find"], times(1), code);
    }
    let uri = format!(
        "{}&readPreference=secondaryPreferred&enableOverloadRetargeting=true\
         &heartbeatFrequencyMS=500",
        rs.uri()
    );
    let (client, recorder) = open(&uri, Recorded::new(0.0, false)).await;
    let both_known = |d: &mongo_client::TopologyDescription| {
        d.servers()
            .filter(|s| s.server_type == ServerType::RsSecondary)
            .count()
            == 2
    };
    assert!(
        client
            .wait_for_topology(Duration::from_secs(10), both_known)
            .await
    );
    let coll = client
        .database("db")
        .collection::<mongo_client::bson::Document>("c");
    // Secondary, the other secondary (the first is deprioritized), then the primary (both
    // are): three servers, the last one answers.
    coll.find_one(doc! {}).await.unwrap();
    let went = servers_of(&recorder, "find");
    let member = |i: usize| rs.member(i).unwrap().host_port();
    assert_eq!(went.len(), 3, "{went:?}");
    assert!(went[..2].contains(&member(secondaries[0])), "{went:?}");
    assert!(went[..2].contains(&member(secondaries[1])), "{went:?}");
    assert_eq!(went[2], member(primary));
    client.shutdown().await;

    // With one retry allowed, the caller gets the second (last) server's error.
    for (i, code) in secondaries.iter().zip([462, 463]) {
        overload(rs.member(*i).unwrap(), &["find"], times(1), code);
    }
    let (client, recorder) = open(
        &format!("{uri}&maxAdaptiveRetries=1"),
        Recorded::new(0.0, false),
    )
    .await;
    assert!(
        client
            .wait_for_topology(Duration::from_secs(10), both_known)
            .await
    );
    let err = client
        .database("db")
        .collection::<mongo_client::bson::Document>("c")
        .find_one(doc! {})
        .await
        .unwrap_err();
    let went = servers_of(&recorder, "find");
    assert_eq!(went.len(), 2, "{went:?}");
    assert_eq!(
        err.address().map(ToString::to_string),
        Some(went[1].clone())
    );
    let last = secondaries
        .iter()
        .position(|i| member(*i) == went[1])
        .unwrap();
    assert_eq!(err.code(), Some([462, 463][last]));
    client.shutdown().await;
    rs.stop().await;
}

#[tokio::test]
async fn a_pinned_connection_retries_on_itself() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let (client, recorder) = open(&server.uri(), Recorded::new(0.0, false)).await;
    let mut request = client.start_request().await.unwrap();
    overload(&server, &["ping"], times(1), 462);
    request
        .run_command("admin", doc! {"ping": 1})
        .await
        .unwrap();
    let connections: Vec<_> = started(&recorder)
        .into_iter()
        .filter(|s| s.command_name == "ping")
        .map(|s| s.connection.driver_connection_id)
        .collect();
    assert_eq!(connections.len(), 2, "{connections:?}");
    assert_eq!(Some(connections[0]), request.connection_id());
    assert_eq!(connections[0], connections[1]);
    drop(request);
    client.shutdown().await;
}
