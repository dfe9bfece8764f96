//! Integration tests against the in-process testkit server: single server, events, auth,
//! compression, TLS, fail points, pool clears, cancellation, replica set failover.
#![allow(
    clippy::disallowed_methods,
    reason = "integration tests and benchmarks own their clock and tasks"
)]

use std::sync::Arc;
use std::time::Duration;

use bson::doc;
use mongo_client::event::cmap::CmapEvent;
use mongo_client::event::command::CommandEvent;
use mongo_client::event::{EventRecorder, Listeners};
use mongo_client::{Client, ClientOptions, ErrorKind, FindOptions};
use mongo_testkit::{ReplicaSet, ServerOptions, TestServer};

fn started(r: &EventRecorder) -> Vec<mongo_client::event::command::CommandStartedEvent> {
    r.command_events()
        .into_iter()
        .filter_map(|e| match e {
            CommandEvent::Started(s) => Some(s),
            _ => None,
        })
        .collect()
}

fn started_names(r: &EventRecorder) -> Vec<String> {
    started(r).into_iter().map(|e| e.command_name).collect()
}

fn failed_names(r: &EventRecorder) -> Vec<String> {
    r.command_events()
        .into_iter()
        .filter_map(|e| match e {
            CommandEvent::Failed(f) => Some(f.command_name),
            _ => None,
        })
        .collect()
}

async fn client_for(uri: &str, recorder: Option<Arc<EventRecorder>>) -> Client {
    let options = ClientOptions::parse(uri).expect("uri");
    let mut listeners = Listeners::new();
    if let Some(r) = recorder {
        listeners.add_all(r);
    }
    Client::builder()
        .options(options)
        .listeners(listeners)
        .build()
        .await
        .expect("client")
}

#[tokio::test]
async fn single_server_crud_cursor_and_events() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let recorder = EventRecorder::shared();
    let client = client_for(&server.uri(), Some(recorder.clone())).await;

    let pong = client.run_command("admin", doc! {"ping": 1}).await.unwrap();
    assert_eq!(
        pong.get_f64("ok")
            .ok()
            .or(pong.get_i32("ok").ok().map(f64::from)),
        Some(1.0)
    );

    let coll = client.database("app").collection("items");
    let ids = coll
        .insert_many((0..10).map(|i| doc! {"i": i, "even": i % 2 == 0}))
        .await
        .unwrap();
    assert_eq!(ids.inserted_ids.len(), 10);
    assert_eq!(coll.count_documents(doc! {"even": true}).await.unwrap(), 5);

    // A small batch size forces getMores.
    let cursor = coll
        .find(
            doc! {},
            FindOptions::default().batch_size(3).sort(doc! {"i": 1}),
        )
        .await
        .unwrap();
    let all = cursor.collect_all().await.unwrap();
    assert_eq!(all.len(), 10);
    assert_eq!(all[9].get_i32("i").ok(), Some(9));
    let names = started_names(&recorder);
    assert!(
        names.iter().filter(|n| *n == "getMore").count() >= 3,
        "{names:?}"
    );

    let u = coll
        .update_one(doc! {"i": 1}, doc! {"$set": {"tag": "one"}})
        .await
        .unwrap();
    assert_eq!((u.matched_count, u.modified_count), (1, 1));
    let m = coll
        .update_many(doc! {"even": true}, doc! {"$set": {"tag": "even"}})
        .await
        .unwrap();
    assert_eq!(m.matched_count, 5);
    assert_eq!(
        coll.find_one(doc! {"i": 1})
            .await
            .unwrap()
            .unwrap()
            .get_str("tag")
            .ok(),
        Some("one")
    );
    assert_eq!(
        coll.delete_one(doc! {"i": 0}).await.unwrap().deleted_count,
        1
    );
    assert_eq!(
        coll.delete_many(doc! {"even": true})
            .await
            .unwrap()
            .deleted_count,
        4
    );
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 5);

    // A cursor dropped unfinished kills itself.
    let mut cursor = coll
        .find(doc! {}, FindOptions::default().batch_size(2))
        .await
        .unwrap();
    assert!(cursor.try_next().await.unwrap().is_some());
    assert_ne!(cursor.id(), 0);
    drop(cursor);
    let mut killed = false;
    for _ in 0..50 {
        if started_names(&recorder).iter().any(|n| n == "killCursors") {
            killed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(killed, "killCursors was sent");

    // Command events carry the spec's fields; failed commands are reported.
    let err = client
        .run_command("app", doc! {"noSuchCommand": 1})
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Command(_)), "{err:?}");
    assert!(failed_names(&recorder).iter().any(|n| n == "noSuchCommand"));

    // The pool is consistent: everything back in.
    let stats = client.pool_stats();
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0].stats.in_use, 0);
    assert!(stats[0].stats.total >= 1);
    assert!(recorder.cmap_names().contains(&"ConnectionCheckedIn"));
    client.shutdown().await;
    let after = client
        .run_command("admin", doc! {"ping": 1})
        .await
        .unwrap_err();
    assert!(after.is_shutdown(), "{after:?}");
}

#[tokio::test]
async fn sensitive_commands_are_redacted_and_hello_is_not_published() {
    let server = TestServer::start(ServerOptions::default().with_user("u", "pw"))
        .await
        .unwrap();
    let recorder = EventRecorder::shared();
    let uri = format!(
        "mongodb://u:pw@{}/?directConnection=true",
        server.host_port()
    );
    let client = client_for(&uri, Some(recorder.clone())).await;
    client.run_command("admin", doc! {"ping": 1}).await.unwrap();
    // Handshake and auth commands are not published.
    let names = started_names(&recorder);
    assert!(
        !names
            .iter()
            .any(|n| n == "hello" || n == "isMaster" || n == "saslStart"),
        "{names:?}"
    );
    // A sensitive command run by the user is redacted.
    let _ = client
        .run_command(
            "admin",
            doc! {"saslStart": 1, "mechanism": "PLAIN", "payload": "x"},
        )
        .await;
    let started = started(&recorder);
    let sasl = started
        .iter()
        .find(|e| e.command_name == "saslStart")
        .expect("saslStart event");
    assert!(sasl.command.is_empty());
}

#[tokio::test]
async fn authentication_succeeds_and_fails_cleanly() {
    let server = TestServer::start(ServerOptions::default().with_user("app", "s3cret"))
        .await
        .unwrap();
    for mech in [
        "",
        "&authMechanism=SCRAM-SHA-1",
        "&authMechanism=SCRAM-SHA-256",
    ] {
        let uri = format!(
            "mongodb://app:s3cret@{}/?directConnection=true{mech}",
            server.host_port()
        );
        let client = client_for(&uri, None).await;
        let coll = client.database("db").collection("c");
        coll.insert_one(doc! {"x": 1}).await.unwrap();
        client.shutdown().await;
    }
    let uri = format!(
        "mongodb://app:wrong@{}/?directConnection=true&serverSelectionTimeoutMS=2000",
        server.host_port()
    );
    let client = client_for(&uri, None).await;
    let err = client
        .run_command("admin", doc! {"ping": 1})
        .await
        .unwrap_err();
    assert!(err.is_auth_error(), "{err:?}");
    // Without credentials, commands that need auth fail with Unauthorized (13).
    let client = client_for(&server.uri(), None).await;
    let err = client
        .database("db")
        .collection("c")
        .insert_one(doc! {"x": 1})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(13), "{err:?}");
}

#[tokio::test]
async fn compression_is_negotiated() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    for name in ["zlib", "snappy", "zstd"] {
        let uri = format!("{}&compressors={name}", server.uri());
        let client = client_for(&uri, None).await;
        let mut request = client.start_request().await.unwrap();
        let reply = request
            .run_command("admin", doc! {"ping": 1})
            .await
            .unwrap();
        assert!(reply.contains_key("ok"));
        // Large documents go through the compressor both ways.
        let coll = client.database("z").collection(name);
        let big = "x".repeat(100_000);
        coll.insert_one(doc! {"big": big.clone()}).await.unwrap();
        let back = coll.find_one(doc! {}).await.unwrap().unwrap();
        assert_eq!(back.get_str("big").ok(), Some(big.as_str()));
        drop(request);
        client.shutdown().await;
    }
}

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
        CmapEvent::ConnectionClosed(c) if c.reason == mongo_client::event::cmap::ConnectionClosedReason::Error
    )));
    // And the pool still works.
    client.run_command("admin", doc! {"ping": 1}).await.unwrap();
    let stats = client.pool_stats()[0].stats;
    assert_eq!(stats.in_use, 0);
    assert_eq!(stats.total, stats.available);
}

#[tokio::test]
async fn server_selection_times_out() {
    // Nothing listens on this port.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let uri = format!(
        "mongodb://127.0.0.1:{port}/?directConnection=true&serverSelectionTimeoutMS=300&connectTimeoutMS=200"
    );
    let client = client_for(&uri, None).await;
    let started = std::time::Instant::now();
    let err = client
        .run_command("admin", doc! {"ping": 1})
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::ServerSelection(_)),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn replica_set_discovery_and_failover() {
    let rs = ReplicaSet::start("rs0", 3).await.unwrap();
    let recorder = EventRecorder::shared();
    let uri = format!(
        "{}&heartbeatFrequencyMS=500&serverSelectionTimeoutMS=10000",
        rs.uri()
    );
    let client = client_for(&uri, Some(recorder.clone())).await;
    let coll = client.database("db").collection("c");
    coll.insert_one(doc! {"n": 1}).await.unwrap();
    let d = client.topology_description();
    assert_eq!(
        d.topology_type(),
        mongo_client::event::TopologyType::ReplicaSetWithPrimary
    );
    assert_eq!(d.servers().count(), 3);
    assert_eq!(client.pool_stats().len(), 3);

    let before = rs.primary_index().unwrap();
    let after = rs.step_down().unwrap();
    assert_ne!(before, after);
    // The next write finds the new primary (after a NotWritablePrimary error or a check).
    let mut ok = false;
    for _ in 0..20 {
        match coll.insert_one(doc! {"n": 2}).await {
            Ok(_) => {
                ok = true;
                break;
            }
            Err(e) => assert!(
                e.is_state_change()
                    || e.is_network_error()
                    || matches!(e.kind(), ErrorKind::ServerSelection(_)),
                "{e:?}"
            ),
        }
    }
    assert!(ok, "a write succeeded after failover");
    let primary = client
        .topology_description()
        .servers()
        .find(|s| s.server_type == mongo_client::event::ServerType::RsPrimary)
        .map(|s| s.address.clone())
        .unwrap();
    let expected = rs.member(after).unwrap().host_port();
    assert_eq!(primary.to_string(), expected);
    assert!(!recorder.topology_events().is_empty());
    client.shutdown().await;
}

#[tokio::test]
async fn a_request_pins_one_connection_and_global_listeners_are_included() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static GLOBAL_PINGS: AtomicUsize = AtomicUsize::new(0);
    mongo_client::event::register(mongo_client::event::Listener::command(
        mongo_client::event::FnListener(|e: &CommandEvent| {
            if matches!(e, CommandEvent::Succeeded(s) if s.command_name == "buildInfo") {
                GLOBAL_PINGS.fetch_add(1, Ordering::SeqCst);
            }
        }),
    ));
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let client = client_for(&server.uri(), None).await;
    let mut request = client.start_request().await.unwrap();
    let id = request.connection_id();
    assert!(id.is_some());
    for _ in 0..3 {
        request
            .run_command("admin", doc! {"buildInfo": 1})
            .await
            .unwrap();
        assert_eq!(request.connection_id(), id);
    }
    assert_eq!(client.pool_stats()[0].stats.in_use, 1);
    // Another operation meanwhile uses another connection.
    client.run_command("admin", doc! {"ping": 1}).await.unwrap();
    assert_eq!(client.pool_stats()[0].stats.total, 2);
    drop(request);
    assert_eq!(client.pool_stats()[0].stats.in_use, 0);
    assert_eq!(GLOBAL_PINGS.load(Ordering::SeqCst), 3);
}
