//! Topology and server selection: selection timing out when nothing listens, replica-set
//! discovery and failover to a new primary, and huge timeouts that must not overflow deadlines.

use std::time::Duration;

use bson::doc;
use mongo_client::event::EventRecorder;
use mongo_client::{Client, ClientOptions, ErrorKind, ServerType, TopologyType};
use mongo_testkit::{ReplicaSet, ServerOptions, TestServer};

use crate::common::client_for;

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
    assert_eq!(d.topology_type(), TopologyType::ReplicaSetWithPrimary);
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
        .find(|s| s.server_type == ServerType::RsPrimary)
        .map(|s| s.address.clone())
        .unwrap();
    let expected = rs.member(after).unwrap().host_port();
    assert_eq!(primary.to_string(), expected);
    assert!(!recorder.topology_events().is_empty());
    client.shutdown().await;
}

#[tokio::test]
async fn huge_timeouts_do_not_overflow_deadlines() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let mut options = ClientOptions::parse(&server.uri()).unwrap();
    options.server_selection_timeout = Some(Duration::MAX);
    let client = Client::with_options(options).await.unwrap();
    assert!(client.wait_for_discovery(Duration::MAX).await);
    let pong = client.run_command("admin", doc! {"ping": 1}).await.unwrap();
    assert!(pong.get("ok").is_some(), "{pong:?}");
    client.shutdown().await;
}
