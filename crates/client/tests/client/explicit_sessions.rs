//! Explicit sessions (sessions spec) through `Client::start_session` and
//! `db.run_command(..).session(..)`: the session's lsid on its commands, its cluster and
//! operation times, snapshot sessions' read concern, a dirty session discarded after a
//! network error, the server session back in the pool at `end_session`, and the misuse
//! errors (an ended session, another client's session, an unacknowledged write).

use bson::{Document, Timestamp, doc};
use mongo_client::event::EventRecorder;
use mongo_client::{ErrorKind, SessionOptions};
use mongo_testkit::{ReplicaSet, ServerOptions, TestServer};

use crate::common::{client_for, started};

/// The `lsid` of every started command named `name`, in order.
fn lsids(r: &EventRecorder, name: &str) -> Vec<Option<Document>> {
    started(r)
        .into_iter()
        .filter(|e| e.command_name == name)
        .map(|e| e.command.get_document("lsid").ok().cloned())
        .collect()
}

/// The started commands named `name`, in order.
fn commands(r: &EventRecorder, name: &str) -> Vec<Document> {
    started(r)
        .into_iter()
        .filter(|e| e.command_name == name)
        .map(|e| e.command)
        .collect()
}

#[tokio::test]
async fn commands_carry_the_sessions_lsid_and_replies_advance_its_times() {
    let rs = ReplicaSet::start("sessLsid", 1).await.unwrap();
    let recorder = EventRecorder::shared();
    let client = client_for(&rs.uri(), Some(recorder.clone())).await;
    let db = client.database("app");
    let mut session = client.start_session(None).unwrap();
    assert_eq!(session.cluster_time(), None);
    assert_eq!(session.operation_time(), None);
    db.run_command(doc! {"insert": "c", "documents": [{"_id": 1}]})
        .session(&mut session)
        .await
        .unwrap();
    db.run_command(doc! {"find": "c"})
        .session(&mut session)
        .await
        .unwrap();
    let id = session.id();
    assert_eq!(lsids(&recorder, "insert"), [Some(id.clone())]);
    assert_eq!(lsids(&recorder, "find"), [Some(id.clone())]);
    // The replica set's replies carry $clusterTime and operationTime: the session took them.
    let op_time = session.operation_time().expect("an operation time");
    let ct = session.cluster_time().expect("a cluster time");
    assert!(ct.get_timestamp("clusterTime").is_ok(), "{ct}");
    // runCommand adds no read concern, even in a causally consistent session (run command
    // spec): the user's command is sent as written.
    assert!(!commands(&recorder, "find")[0].contains_key("readConcern"));
    // A cluster time advanced past the client's is the one sent, in this session only.
    let ahead = doc! {
        "clusterTime": Timestamp { time: op_time.time + 1000, increment: 1 },
        "signature": {"hash": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![0; 20] }, "keyId": 0_i64},
    };
    session.advance_cluster_time(&ahead);
    db.run_command(doc! {"ping": 1})
        .session(&mut session)
        .await
        .unwrap();
    db.run_command(doc! {"ping": 1}).await.unwrap();
    let pings = commands(&recorder, "ping");
    assert_eq!(pings[0].get_document("$clusterTime").unwrap(), &ahead);
    assert_ne!(pings[1].get_document("$clusterTime").unwrap(), &ahead);
    // Operation times only move forward.
    session.advance_operation_time(Timestamp {
        time: 1,
        increment: 0,
    });
    assert!(session.operation_time().unwrap() >= op_time);
    client.shutdown().await;
}

#[tokio::test]
async fn end_session_gives_the_server_session_back_for_the_next_operation() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let recorder = EventRecorder::shared();
    let client = client_for(&server.uri(), Some(recorder.clone())).await;
    let db = client.database("app");
    let mut session = client.start_session(None).unwrap();
    db.run_command(doc! {"ping": 1})
        .session(&mut session)
        .await
        .unwrap();
    let id = session.id();
    // While the session lives, implicit operations get another server session.
    db.run_command(doc! {"ping": 1}).await.unwrap();
    session.end_session();
    session.end_session();
    assert!(session.has_ended());
    db.run_command(doc! {"ping": 1}).await.unwrap();
    let pings = lsids(&recorder, "ping");
    assert_eq!(pings.len(), 3);
    assert_ne!(pings[1], Some(id.clone()));
    assert_eq!(
        pings[2],
        Some(id.clone()),
        "the ended session's server session is reused"
    );
    // An ended session cannot run anything, and keeps its id.
    let err = db
        .run_command(doc! {"ping": 1})
        .session(&mut session)
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Usage(_)), "{err}");
    assert_eq!(session.id(), id);
    // Dropping a session ends it too.
    let mut dropped = client.start_session(None).unwrap();
    db.run_command(doc! {"ping": 1})
        .session(&mut dropped)
        .await
        .unwrap();
    let dropped_id = dropped.id();
    drop(dropped);
    db.run_command(doc! {"ping": 1}).await.unwrap();
    assert_eq!(
        lsids(&recorder, "ping").last().cloned().flatten(),
        Some(dropped_id)
    );
    client.shutdown().await;
}

#[tokio::test]
async fn a_network_error_makes_the_session_dirty_and_it_is_not_reused() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let recorder = EventRecorder::shared();
    let client = client_for(&server.uri(), Some(recorder.clone())).await;
    let db = client.database("app");
    let mut session = client.start_session(None).unwrap();
    client
        .run_command(
            "admin",
            doc! {"configureFailPoint": "failCommand", "mode": {"times": 1},
            "data": {"failCommands": ["insert"], "closeConnection": true}},
        )
        .await
        .unwrap();
    assert!(!session.is_dirty());
    let err = db
        .run_command(doc! {"insert": "c", "documents": [{"_id": 1}]})
        .session(&mut session)
        .await
        .unwrap_err();
    assert!(err.is_network_error(), "{err}");
    assert!(session.is_dirty());
    // Still usable, still dirty.
    db.run_command(doc! {"ping": 1})
        .session(&mut session)
        .await
        .unwrap();
    assert!(session.is_dirty());
    let id = session.id();
    session.end_session();
    db.run_command(doc! {"ping": 1}).await.unwrap();
    let pings = lsids(&recorder, "ping");
    assert_eq!(pings[0], Some(id.clone()));
    assert_ne!(pings[1], Some(id), "a dirty server session is discarded");
    client.shutdown().await;
}

#[tokio::test]
async fn snapshot_sessions_send_their_read_concern_on_every_command() {
    let rs = ReplicaSet::start("sessSnap", 1).await.unwrap();
    let recorder = EventRecorder::shared();
    let client = client_for(&rs.uri(), Some(recorder.clone())).await;
    let db = client.database("app");
    let at = Timestamp {
        time: 42,
        increment: 7,
    };
    let mut session = client
        .start_session(SessionOptions::default().snapshot(true).snapshot_time(at))
        .unwrap();
    assert_eq!(session.snapshot_time().unwrap(), Some(at));
    // Sessions spec prose test 22: no snapshot time on a session without snapshot reads.
    let plain = client.start_session(SessionOptions::default()).unwrap();
    assert!(plain.snapshot_time().is_err());
    // A time this old is past the server's history, as on mongod: SnapshotTooOld.
    let too_old = db
        .run_command(doc! {"find": "c"})
        .session(&mut session)
        .await
        .unwrap_err();
    assert_eq!(too_old.code(), Some(239), "{too_old}");
    let find = &commands(&recorder, "find")[0];
    assert_eq!(
        find.get_document("readConcern").unwrap(),
        &doc! {"level": "snapshot", "atClusterTime": at}
    );
    // Without a snapshot time the first read's atClusterTime becomes the session's.
    let mut fresh = client
        .start_session(SessionOptions::default().snapshot(true))
        .unwrap();
    db.run_command(doc! {"distinct": "c", "key": "x"})
        .session(&mut fresh)
        .await
        .unwrap();
    let first = &commands(&recorder, "distinct")[0];
    assert_eq!(
        first.get_document("readConcern").unwrap(),
        &doc! {"level": "snapshot"}
    );
    let snapshot = fresh
        .snapshot_time()
        .unwrap()
        .expect("the first read's atClusterTime");
    db.run_command(doc! {"find": "c"})
        .session(&mut fresh)
        .await
        .unwrap();
    assert_eq!(
        commands(&recorder, "find")[1]
            .get_document("readConcern")
            .unwrap(),
        &doc! {"level": "snapshot", "atClusterTime": snapshot}
    );
    // Writes go out with it too, and the server refuses them.
    let err = db
        .run_command(doc! {"insert": "c", "documents": [{"_id": 1}]})
        .session(&mut fresh)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(72), "{err}");
    assert_eq!(
        commands(&recorder, "insert")[0]
            .get_document("readConcern")
            .unwrap(),
        &doc! {"level": "snapshot", "atClusterTime": snapshot}
    );
    // Options that contradict each other are refused at the start.
    let both = SessionOptions::default()
        .snapshot(true)
        .causal_consistency(true);
    assert!(client.start_session(both).is_err());
    let time_alone = SessionOptions::default().snapshot_time(at);
    assert!(client.start_session(time_alone).is_err());
    client.shutdown().await;
}

#[tokio::test]
async fn misuse_is_refused_before_anything_is_sent() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let recorder = EventRecorder::shared();
    let client = client_for(&server.uri(), Some(recorder.clone())).await;
    let other = client_for(&server.uri(), None).await;
    let mut theirs = other.start_session(None).unwrap();
    let err = client
        .database("app")
        .run_command(doc! {"ping": 1})
        .session(&mut theirs)
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::InvalidArgument(_)), "{err}");
    // An unacknowledged write cannot run in an explicit session.
    let mut session = client.start_session(None).unwrap();
    let err = client
        .database("app")
        .run_command(doc! {"insert": "c", "documents": [{"_id": 1}], "writeConcern": {"w": 0}})
        .session(&mut session)
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::InvalidArgument(_)), "{err}");
    assert!(commands(&recorder, "ping").is_empty());
    assert!(commands(&recorder, "insert").is_empty());
    client.shutdown().await;
    other.shutdown().await;
}

#[tokio::test]
async fn collection_actions_run_in_the_session_they_are_given() {
    let rs = ReplicaSet::start("sessActions", 1).await.unwrap();
    let recorder = EventRecorder::shared();
    let client = client_for(&rs.uri(), Some(recorder.clone())).await;
    let coll = client.database("app").collection::<Document>("c");
    let mut session = client.start_session(None).unwrap();
    coll.insert_many((0..3).map(|i| doc! {"_id": i}))
        .session(&mut session)
        .await
        .unwrap();
    let mut cursor = coll
        .find(doc! {})
        .batch_size(1)
        .session(&mut session)
        .await
        .unwrap();
    let mut seen = 0;
    while cursor.try_next().await.unwrap().is_some() {
        seen += 1;
    }
    assert_eq!(seen, 3);
    // Without a session, the next operation takes an implicit one.
    coll.count_documents(doc! {}).await.unwrap();
    let id = session.id();
    for name in ["insert", "find", "getMore"] {
        let sent = lsids(&recorder, name);
        assert!(!sent.is_empty(), "{name}");
        assert!(
            sent.iter().all(|l| l.as_ref() == Some(&id)),
            "{name}: {sent:?}"
        );
    }
    // The find read after the insert: causally consistent by default.
    let find = commands(&recorder, "find").remove(0);
    assert!(
        find.get_document("readConcern")
            .is_ok_and(|rc| rc.contains_key("afterClusterTime")),
        "{find}"
    );
    let count = commands(&recorder, "aggregate").remove(0);
    assert_ne!(count.get_document("lsid").ok(), Some(&id));
    // A session is the client's own: another client's operation refuses it.
    let other = client_for(&rs.uri(), None).await;
    let e = other
        .database("app")
        .collection::<Document>("c")
        .find_one(doc! {})
        .session(&mut session)
        .await
        .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::InvalidArgument(_)), "{e}");
}
