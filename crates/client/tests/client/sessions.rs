//! Implicit sessions (sessions spec): every operation on a server that supports sessions
//! sends an `lsid`; a cursor's getMores and killCursors use the session of the command that
//! opened it; the session goes back to the pool when the operation ends or the cursor is
//! exhausted or closed (and is then reused, last in first out); unacknowledged writes carry
//! none; `endSessions` at shutdown names the pooled sessions; the monitors' hello replies
//! are not gossiped; with one connection, concurrent operations share fewer sessions than
//! there are operations; a server without sessions gets no `lsid` and explicit sessions
//! fail on it.
//!
//! Prose tests that do not apply to this driver, and why (each says "skip if"):
//! - 7 (multiple users suppress implicit sessions), 16 (a second user after
//!   `startSession`) and 17 (the session's owner logs out): a `Client` authenticates as the
//!   one credential of its `ClientOptions`, fixed when it is built; there is no call that adds
//!   a user, logs out or changes the credential. What stays testable — one authenticated user
//!   keeps implicit and explicit sessions — is `one_authenticated_user_keeps_sessions`.
//! - 12 and 13 (the session pool after `fork`): the driver has no fork support; a process
//!   that forks runs no Tokio runtime of its parent in the child, so a client cannot be used
//!   there at all.

use bson::{Document, doc};
use mongo_client::event::EventRecorder;
use mongo_client::{FindOptions, RunCursorCommandOptions};
use mongo_testkit::{ServerOptions, TestServer};

use crate::common::{client_for, started};

/// The `lsid` of every started command named `name`, in order.
fn lsids(r: &EventRecorder, name: &str) -> Vec<Option<Document>> {
    started(r)
        .into_iter()
        .filter(|e| e.command_name == name)
        .map(|e| e.command.get_document("lsid").ok().cloned())
        .collect()
}

async fn seeded() -> (
    TestServer,
    mongo_client::Client,
    std::sync::Arc<EventRecorder>,
) {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let recorder = EventRecorder::shared();
    let client = client_for(&server.uri(), Some(recorder.clone())).await;
    client
        .database("app")
        .collection("items")
        .insert_many((0..5).map(|i| doc! {"_id": i}))
        .await
        .unwrap();
    (server, client, recorder)
}

#[tokio::test]
async fn every_operation_sends_an_implicit_session_and_cursors_keep_theirs() {
    let (_server, client, recorder) = seeded().await;
    let db = client.database("app");
    let coll = db.collection::<mongo_client::bson::Document>("items");
    // The insert got one.
    let insert = lsids(&recorder, "insert");
    assert!(insert[0].is_some(), "{insert:?}");
    // A find cursor's getMores use the find's session.
    let docs = coll
        .find(doc! {})
        .with_options(FindOptions::default().batch_size(2))
        .await
        .unwrap()
        .collect_all()
        .await
        .unwrap();
    assert_eq!(docs.len(), 5);
    let find = lsids(&recorder, "find");
    let get_mores = lsids(&recorder, "getMore");
    assert_eq!(get_mores.len(), 2);
    assert!(find[0].is_some());
    assert!(get_mores.iter().all(|l| *l == find[0]), "{get_mores:?}");
    // The exhausted cursor gave the session back: the next operation reuses it.
    client.list_databases().await.unwrap();
    assert_eq!(lsids(&recorder, "listDatabases"), [find[0].clone()]);
    // runCursorCommand too, and a closed cursor's killCursors.
    let mut cursor = db
        .run_cursor_command(doc! {"find": "items", "batchSize": 2})
        .with_options(RunCursorCommandOptions::default())
        .await
        .unwrap();
    cursor.try_next().await.unwrap();
    cursor.close().await;
    let opened = lsids(&recorder, "find");
    let killed = lsids(&recorder, "killCursors");
    assert_eq!(killed.len(), 1);
    assert!(opened[1].is_some());
    assert_eq!(killed[0], opened[1]);
    // A user's command gets one too.
    client.run_command("app", doc! {"ping": 1}).await.unwrap();
    assert!(lsids(&recorder, "ping")[0].is_some());
}

#[tokio::test]
async fn unacknowledged_writes_carry_no_session_and_shutdown_ends_the_pooled_ones() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let recorder = EventRecorder::shared();
    let uri = format!(
        "{}{}w=0",
        server.uri(),
        if server.uri().contains('?') {
            "&"
        } else {
            "/?"
        }
    );
    let client = client_for(&uri, Some(recorder.clone())).await;
    let coll = client.database("app").collection("items");
    coll.insert_one(doc! {"_id": 1}).await.unwrap();
    assert_eq!(lsids(&recorder, "insert"), [None]);
    let n = coll.count_documents(doc! {}).await.unwrap();
    assert!(n <= 1);
    let used = lsids(&recorder, "aggregate");
    assert!(used[0].is_some(), "{used:?}");
    client.shutdown().await;
    let ended: Vec<Document> = started(&recorder)
        .into_iter()
        .filter(|e| e.command_name == "endSessions")
        .flat_map(|e| e.command.get_array("endSessions").unwrap().clone())
        .filter_map(|b| b.as_document().cloned())
        .collect();
    assert_eq!(ended, [used[0].clone().unwrap()]);
    assert_eq!(
        lsids(&recorder, "endSessions"),
        [None],
        "endSessions takes no session"
    );
}

/// Sessions spec prose test 20: the `$clusterTime` of the monitors' hello replies is not
/// gossiped; a command after another client's write, and after heartbeats that saw it,
/// still sends the cluster time of the client's own last reply.
#[tokio::test]
async fn monitoring_replies_are_not_gossiped() {
    let rs = mongo_testkit::ReplicaSet::start("sessGossip", 1)
        .await
        .unwrap();
    let recorder = EventRecorder::shared();
    let uri = format!("{}&heartbeatFrequencyMS=500", rs.uri());
    let client = client_for(&uri, Some(recorder.clone())).await;
    let db = client.database("app");
    let reply = db.run_command(doc! {"ping": 1}).await.unwrap();
    let first = reply.get_document("$clusterTime").unwrap().clone();
    let other = client_for(&rs.uri(), None).await;
    other
        .database("app")
        .collection("c")
        .insert_one(doc! {"x": 1})
        .await
        .unwrap();
    // Long enough for several heartbeats, whose replies carry the later cluster time.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    db.run_command(doc! {"ping": 1}).await.unwrap();
    let pings: Vec<_> = started(&recorder)
        .into_iter()
        .filter(|e| e.command_name == "ping")
        .collect();
    assert_eq!(
        pings[1].command.get_document("$clusterTime").ok(),
        Some(&first),
        "the second ping gossips the first ping's cluster time"
    );
    client.shutdown().await;
    other.shutdown().await;
}

/// Sessions spec prose test 14: with one connection, eight concurrent operations share
/// fewer than eight server sessions (a session is taken only after the connection), and
/// at least once across the tries exactly one.
#[tokio::test]
async fn implicit_sessions_are_taken_after_the_connection() {
    use mongo_client::WriteModel;
    let rs = mongo_testkit::ReplicaSet::start("sessAlloc", 1)
        .await
        .unwrap();
    let mut one_session = false;
    for _ in 0..5 {
        let recorder = EventRecorder::shared();
        let uri = format!("{}&maxPoolSize=1&retryWrites=true", rs.uri());
        let client = client_for(&uri, Some(recorder.clone())).await;
        let coll = client.database("app").collection::<Document>("alloc");
        let set = doc! {"$set": {"a": 1}};
        let (a, b, c, d, e, f, g, h) = tokio::join!(
            coll.insert_one(doc! {}),
            coll.delete_one(doc! {}),
            coll.update_one(doc! {}, set.clone()),
            coll.bulk_write([WriteModel::update_one(doc! {}, set.clone())]),
            coll.find_one_and_delete(doc! {}),
            coll.find_one_and_update(doc! {}, set.clone()),
            coll.find_one_and_replace(doc! {}, doc! {"a": 1}),
            async { coll.find(doc! {}).await?.collect_all().await },
        );
        a.unwrap();
        b.unwrap();
        c.unwrap();
        d.unwrap();
        e.unwrap();
        f.unwrap();
        g.unwrap();
        h.unwrap();
        let mut ids: Vec<Document> = started(&recorder)
            .into_iter()
            .filter_map(|e| e.command.get_document("lsid").ok().cloned())
            .collect();
        ids.dedup();
        let mut distinct: Vec<Document> = Vec::new();
        for id in ids {
            if !distinct.contains(&id) {
                distinct.push(id);
            }
        }
        assert!(
            distinct.len() < 8,
            "{} sessions for 8 operations",
            distinct.len()
        );
        one_session |= distinct.len() == 1;
        client.shutdown().await;
    }
    assert!(one_session, "never a single session across five tries");
}

/// Sessions spec prose tests 18 and 19, against a server whose hello reports no
/// `logicalSessionTimeoutMinutes`: implicit sessions are left out, and an explicit session
/// (which starts fine) makes a read and a write fail on the client side.
#[tokio::test]
async fn a_server_without_sessions_gets_no_lsid_and_refuses_explicit_sessions() {
    let server = TestServer::start(ServerOptions::default().without_sessions())
        .await
        .unwrap();
    let recorder = EventRecorder::shared();
    let client = client_for(&server.uri(), Some(recorder.clone())).await;
    let coll = client.database("app").collection::<Document>("nosessions");
    coll.find_one(doc! {}).await.unwrap();
    coll.insert_one(doc! {"x": 1}).await.unwrap();
    assert_eq!(lsids(&recorder, "find"), vec![None]);
    assert_eq!(lsids(&recorder, "insert"), vec![None]);
    let mut session = client.start_session(None).unwrap();
    let read = coll
        .find_one(doc! {})
        .session(&mut session)
        .await
        .unwrap_err();
    let write = coll
        .insert_one(doc! {"x": 2})
        .session(&mut session)
        .await
        .unwrap_err();
    for err in [read, write] {
        assert!(
            !matches!(err.kind(), mongo_client::ErrorKind::Command(_)),
            "a client-side error: {err}"
        );
        assert!(err.to_string().contains("session"), "{err}");
    }
    assert_eq!(lsids(&recorder, "find").len(), 1, "nothing more was sent");
    assert_eq!(lsids(&recorder, "insert").len(), 1, "nothing more was sent");
    client.shutdown().await;
}

/// Sessions spec prose test 7's other side (7 itself needs two users at once, which a
/// `Client` cannot have): with the one credential a client has, operations still send an
/// implicit `lsid`, and an explicit session starts and is used.
#[tokio::test]
async fn one_authenticated_user_keeps_sessions() {
    let server = TestServer::start(ServerOptions::default().with_user("app", "pw"))
        .await
        .unwrap();
    let recorder = EventRecorder::shared();
    let uri = format!(
        "mongodb://app:pw@{}/?directConnection=true",
        server.host_port()
    );
    let client = client_for(&uri, Some(recorder.clone())).await;
    let coll = client.database("app").collection::<Document>("authed");
    coll.find_one(doc! {}).await.unwrap();
    let mut session = client.start_session(None).unwrap();
    coll.find_one(doc! {}).session(&mut session).await.unwrap();
    let finds = lsids(&recorder, "find");
    assert_eq!(finds.len(), 2, "{finds:?}");
    assert!(finds.iter().all(Option::is_some), "{finds:?}");
    assert_eq!(
        finds[1].as_ref(),
        Some(&session.id()),
        "the explicit session's lsid"
    );
    drop(session);
    client.shutdown().await;
}
