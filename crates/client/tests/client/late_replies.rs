//! A timed-out operation does not cost a connection (client-side operation timeouts): when
//! `timeoutMS` expires after the request was written, the connection waits for the late
//! reply, and the next check-out reads and drops it before reusing the connection. A burst
//! of timeouts against a slow server then opens a handful of connections, where closing each
//! timed-out connection opens one per operation. Replies are never mixed up: after the burst
//! every command on the reused connections gets its own reply.

use std::sync::Arc;
use std::time::Duration;

use bson::doc;
use mongo_client::event::cmap::CmapEvent;
use mongo_client::event::{EventRecorder, Listeners};
use mongo_client::{Client, ClientOptions, Collection};
use mongo_testkit::{ServerOptions, TestServer};

/// Operations per run, and how many tasks run them side by side.
const OPERATIONS: usize = 1_000;
const TASKS: usize = 10;

/// A client on `server` with `timeoutMS` = 15 ms, recording CMAP events; `limit` is its
/// pending-response limit (zero: a timed-out connection is closed at once).
async fn client(server: &TestServer, limit: Duration) -> (Client, Arc<EventRecorder>) {
    let recorder = EventRecorder::shared();
    let mut listeners = Listeners::new();
    listeners.add_all(recorder.clone());
    let uri = format!("{}&timeoutMS=15&maxPoolSize={}", server.uri(), TASKS);
    let client = Client::builder()
        .options(ClientOptions::parse(&uri).expect("uri"))
        .listeners(listeners)
        .pending_response_limit(limit)
        .build()
        .await
        .expect("client");
    (client, recorder)
}

fn created(recorder: &EventRecorder) -> usize {
    recorder
        .cmap_events()
        .iter()
        .filter(|e| matches!(e, CmapEvent::ConnectionCreated(_)))
        .count()
}

/// Runs `OPERATIONS` finds, `TASKS` at a time, while every find takes 25 ms on the server;
/// each must fail with a timeout. Returns how many connections were created.
async fn burst(server: &TestServer, limit: Duration) -> (usize, Client, Collection) {
    let (client, recorder) = client(server, limit).await;
    let coll: Collection = client.database("db").collection("c");
    server
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": "alwaysOn",
            "data": {"failCommands": ["find"], "blockConnection": true, "blockTimeMS": 25},
        })
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let coll = coll.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..OPERATIONS / TASKS {
                let err = coll
                    .find_one(doc! {})
                    .await
                    .expect_err("the server is slower");
                assert!(err.is_timeout(), "{err:?}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    server.clear_fail_points();
    (created(&recorder), client, coll)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_timeouts_reuse_their_connections() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let seed: Collection = Client::with_uri_str(&server.uri())
        .await
        .unwrap()
        .database("db")
        .collection("c");
    seed.insert_many((0..20).map(|i| doc! {"_id": i}))
        .await
        .unwrap();

    let (closing, _, _) = burst(&server, Duration::ZERO).await;
    let (waiting, client, coll) = burst(&server, Duration::from_secs(3)).await;
    println!("connections created for {OPERATIONS} timeouts: {closing} closing, {waiting} waiting");
    // Not one per operation exactly: an operation whose time runs out while its connection is
    // still being opened fails without using it, and the next one takes it from the pool.
    assert!(
        closing >= OPERATIONS / 5,
        "closing every timed-out connection opens a new one for most operations: {closing}"
    );
    assert!(
        waiting <= 3 * TASKS,
        "waiting for late replies keeps about one connection per task: {waiting}"
    );

    // The late replies were dropped, never taken for a later command's: each find gets its
    // own document back on the reused connections.
    for round in 0..5 {
        let mut tasks = Vec::new();
        for task in 0..TASKS {
            let coll = coll.clone();
            tasks.push(tokio::spawn(async move {
                let id = i32::try_from((round * TASKS + task) % 20).unwrap();
                let got = coll.find_one(doc! {"_id": id}).await.unwrap();
                assert_eq!(got, Some(doc! {"_id": id}));
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }
    drop(client);
}
