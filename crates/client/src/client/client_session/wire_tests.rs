//! Explicit sessions on the wire, against a testkit replica set, through the executor the way
//! the collection API will bind them: a causally consistent session's second read waits for
//! its operation time, writes do not; a cursor opened in a session runs its getMores in it
//! and leaves the server session with the session.

use bson::{Document, doc};
use mongo_events::EventRecorder;
use mongo_events::command::CommandEvent;
use mongo_testkit::ReplicaSet;

use crate::client::Client;
use crate::client::cursor::CursorCore;
use crate::client::executor::Route;
use crate::client::executor::SessionUse;
use crate::crud::FindOptions;
use crate::operation::{GetMoreOptions, OpenCursor, RunCommand};
use crate::options::ClientOptions;

use super::{ClientSession, SessionOptions};

async fn client(uri: &str, recorder: &std::sync::Arc<EventRecorder>) -> Client {
    let mut listeners = mongo_events::Listeners::new();
    listeners.add_all(recorder.clone());
    Client::builder()
        .options(ClientOptions::parse(uri).unwrap())
        .listeners(listeners)
        .build()
        .await
        .unwrap()
}

/// The started commands named `name`, in order.
fn commands(r: &EventRecorder, name: &str) -> Vec<Document> {
    r.command_events()
        .into_iter()
        .filter_map(|e| match e {
            CommandEvent::Started(s) if s.command_name == name => Some(s.command),
            _ => None,
        })
        .collect()
}

/// A find in `session` (as the collection API's builders will run it), its cursor.
async fn find_in(client: &Client, session: &mut ClientSession, batch_size: i32) -> CursorCore {
    let options = FindOptions::default().batch_size(batch_size);
    let mut op = OpenCursor::find("app", "c", doc! {}, &options);
    let mut ctx = client.read_context();
    ctx.session = SessionUse::Explicit(session.shared());
    let executed = client.execute(&mut op, ctx, None).await.unwrap();
    let get_more = GetMoreOptions {
        batch_size: Some(batch_size),
        ..GetMoreOptions::default()
    };
    CursorCore::new(client, executed, "app", "c", get_more)
}

async fn write_in(client: &Client, session: &mut ClientSession, id: i32) {
    let mut op = RunCommand::new("app", doc! {"insert": "c", "documents": [{"_id": id}]});
    let mut ctx = client.context(Route::Select);
    ctx.session = SessionUse::Explicit(session.shared());
    client.execute(&mut op, ctx, None).await.unwrap();
}

#[tokio::test]
async fn reads_after_the_first_carry_after_cluster_time_and_cursors_stay_in_the_session() {
    let rs = ReplicaSet::start("sessCausal", 1).await.unwrap();
    let recorder = EventRecorder::shared();
    let client = client(&rs.uri(), &recorder).await;
    let mut session = client.start_session(None).unwrap();
    write_in(&client, &mut session, 1).await;
    write_in(&client, &mut session, 2).await;
    write_in(&client, &mut session, 3).await;
    let inserts = commands(&recorder, "insert");
    // The first write has no operation time to wait for; the later ones wait for it.
    assert!(!inserts[0].contains_key("readConcern"));
    assert!(inserts[1..].iter().all(|c| {
        c.get_document("readConcern")
            .is_ok_and(|rc| rc.len() == 1 && rc.contains_key("afterClusterTime"))
    }));
    let after_write = session.operation_time().unwrap();
    // The first read after the writes waits for them.
    let cursor = find_in(&client, &mut session, 2).await;
    let docs = cursor.collect_all().await.unwrap();
    assert_eq!(docs.len(), 3);
    let find = &commands(&recorder, "find")[0];
    assert_eq!(
        find.get_document("readConcern").unwrap(),
        &doc! {"afterClusterTime": after_write}
    );
    // Its getMores ran in the session, without a read concern.
    let id = session.id();
    let get_mores = commands(&recorder, "getMore");
    assert_eq!(get_mores.len(), 1);
    assert_eq!(get_mores[0].get_document("lsid").unwrap(), &id);
    assert!(!get_mores[0].contains_key("readConcern"));
    // The exhausted cursor did not give the session's server session back: an implicit
    // operation gets another one.
    client.run_command("app", doc! {"ping": 1}).await.unwrap();
    let ping = &commands(&recorder, "ping")[0];
    assert_ne!(ping.get_document("lsid").unwrap(), &id);
    // A session without causal consistency sends no afterClusterTime.
    let mut plain = client
        .start_session(SessionOptions::default().causal_consistency(false))
        .unwrap();
    write_in(&client, &mut plain, 4).await;
    find_in(&client, &mut plain, 10).await;
    let finds = commands(&recorder, "find");
    assert!(!finds[1].contains_key("readConcern"), "{}", finds[1]);
    // A cursor of an ended session cannot go on.
    let mut cursor = find_in(&client, &mut session, 1).await;
    session.end_session();
    cursor.try_next().await.unwrap();
    assert!(cursor.try_next().await.is_err());
    client.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_pooled_sessions_ten_thousand_at_a_time() {
    let rs = ReplicaSet::start("sessEnd", 1).await.unwrap();
    let recorder = EventRecorder::shared();
    let client = client(&rs.uri(), &recorder).await;
    client.run_command("app", doc! {"ping": 1}).await.unwrap();
    let now = crate::conn::clock();
    let timeout = client.session_timeout();
    let taken: Vec<_> = (0..10_001)
        .map(|_| client.inner.sessions.take(now, timeout))
        .collect();
    for s in taken {
        client.inner.sessions.give_back(s, now, timeout);
    }
    client.shutdown().await;
    let sizes: Vec<usize> = commands(&recorder, "endSessions")
        .iter()
        .map(|c| c.get_array("endSessions").unwrap().len())
        .collect();
    assert_eq!(sizes, [10_000, 1]);
}
