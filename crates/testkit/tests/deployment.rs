//! `Deployment`: each topology answers hello like its role, the URIs, shared data across
//! mongos routers, the load balancer's forwarding and serviceIds, per-node fail points and
//! the reset between tests.
#![allow(
    clippy::disallowed_methods,
    reason = "integration tests own their clock and tasks"
)]

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;

use bson::{Bson, doc};
use common::{Client, code, ok};
use mongo_testkit::{Deployment, DeploymentKind, ServerOptions};

/// The first `host:port` of a connection string.
fn first_host(uri: &str) -> SocketAddr {
    let rest = uri.strip_prefix("mongodb://").unwrap();
    let hosts = rest.split('/').next().unwrap();
    hosts.split(',').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn single_is_a_standalone() {
    let d = Deployment::start(DeploymentKind::Single, ServerOptions::default())
        .await
        .unwrap();
    assert_eq!(d.topology_name(), "single");
    assert_eq!(d.server_version(), "8.0.4");
    assert_eq!(d.servers().len(), 1);
    assert_eq!(d.uri(), d.single_mongos_uri());
    assert_eq!(d.uri(), format!("mongodb://{}/", d.hosts()[0]));
    let mut c = Client::connect(first_host(&d.uri())).await;
    let hello = c.command("admin", doc! { "hello": 1 }).await;
    assert_eq!(hello.get_bool("isWritablePrimary").ok(), Some(true));
    assert!(hello.get("setName").is_none());
    assert!(hello.get("msg").is_none());
    assert_eq!(hello.get_i32("maxWireVersion").ok(), Some(25));
    let info = c.command("admin", doc! { "buildInfo": 1 }).await;
    assert_eq!(info.get_str("version").ok(), Some("8.0.4"));
    let parts: Vec<i32> = info
        .get_array("versionArray")
        .unwrap()
        .iter()
        .map(|b| b.as_i32().unwrap())
        .collect();
    assert_eq!(parts, [8, 0, 4, 0]);
    // Retryable writes are a replica-set / mongos feature.
    let w = c
        .command(
            "db",
            doc! { "insert": "c", "documents": [{}], "lsid": { "id": 1 }, "txnNumber": 1_i64 },
        )
        .await;
    assert_eq!(code(&w), 20, "{w}");
}

#[tokio::test]
async fn configurable_version() {
    let d = Deployment::start(
        DeploymentKind::Single,
        ServerOptions::default().with_version("7.0.12", 21),
    )
    .await
    .unwrap();
    assert_eq!(d.server_version(), "7.0.12");
    let mut c = Client::connect(d.servers()[0].address()).await;
    let hello = c.command("admin", doc! { "hello": 1 }).await;
    assert_eq!(hello.get_i32("maxWireVersion").ok(), Some(21));
    let p = c
        .command(
            "admin",
            doc! { "getParameter": 1, "featureCompatibilityVersion": 1 },
        )
        .await;
    assert_eq!(
        p.get_document("featureCompatibilityVersion")
            .unwrap()
            .get_str("version")
            .ok(),
        Some("7.0")
    );
}

#[tokio::test]
async fn replica_set_members_answer_like_members() {
    let d = Deployment::start(
        DeploymentKind::ReplicaSet { members: 3 },
        ServerOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(d.topology_name(), "replicaset");
    assert_eq!(d.servers().len(), 3);
    assert!(d.uri().contains("replicaSet=rs0"), "{}", d.uri());
    for h in d.hosts() {
        assert!(d.uri().contains(&h));
    }
    assert_eq!(d.single_mongos_uri(), d.uri());
    let hosts = d.hosts();
    for (i, s) in d.servers().iter().enumerate() {
        let mut c = Client::connect(s.address()).await;
        let hello = c.command("admin", doc! { "hello": 1 }).await;
        assert_eq!(hello.get_str("setName").ok(), Some("rs0"));
        assert_eq!(hello.get_bool("isWritablePrimary").ok(), Some(i == 0));
        assert_eq!(hello.get_bool("secondary").ok(), Some(i != 0));
        assert_eq!(hello.get_str("me").ok(), Some(hosts[i].as_str()));
        assert_eq!(hello.get_str("primary").ok(), Some(hosts[0].as_str()));
        assert_eq!(hello.get_array("hosts").unwrap().len(), 3);
        assert!(hello.get_i32("setVersion").is_ok());
        assert!(hello.get_document("topologyVersion").is_ok());
        assert!(hello.get_document("lastWrite").is_ok());
        assert_eq!(hello.get_object_id("electionId").is_ok(), i == 0);
        assert!(hello.get("msg").is_none());
    }
    // The failPoint target is the primary; the other members are untouched.
    assert_eq!(d.fail_point_target().unwrap().host_port(), hosts[0]);
}

#[tokio::test]
async fn sharded_routers_are_mongos_that_share_data() {
    let d = Deployment::start(
        DeploymentKind::Sharded { routers: 2 },
        ServerOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(d.topology_name(), "sharded");
    let hosts = d.hosts();
    assert_eq!(hosts.len(), 2);
    assert_eq!(d.uri(), format!("mongodb://{},{}/", hosts[0], hosts[1]));
    assert_eq!(d.single_mongos_uri(), format!("mongodb://{}/", hosts[0]));
    let mut a = Client::connect(d.servers()[0].address()).await;
    let mut b = Client::connect(d.servers()[1].address()).await;
    let mut process_ids = HashSet::new();
    for c in [&mut a, &mut b] {
        let hello = c.command("admin", doc! { "hello": 1 }).await;
        assert_eq!(hello.get_str("msg").ok(), Some("isdbgrid"));
        assert_eq!(hello.get_bool("isWritablePrimary").ok(), Some(true));
        assert!(hello.get("setName").is_none());
        assert!(hello.get("hosts").is_none());
        assert!(hello.get("serviceId").is_none());
        let tv = hello.get_document("topologyVersion").unwrap();
        process_ids.insert(tv.get_object_id("processId").unwrap());
    }
    assert_eq!(process_ids.len(), 2, "each mongos is its own process");
    let w = a
        .command("db", doc! { "insert": "c", "documents": [{ "_id": 1 }] })
        .await;
    assert!(ok(&w), "{w}");
    let f = b.command("db", doc! { "find": "c" }).await;
    let batch = f
        .get_document("cursor")
        .unwrap()
        .get_array("firstBatch")
        .unwrap();
    assert_eq!(batch.len(), 1);
    assert_eq!(d.store().documents("db", "c").len(), 1);
    // Sharding commands exist on a mongos; replica-set ones do not.
    let sc = a
        .command(
            "admin",
            doc! { "shardCollection": "db.c", "key": { "_id": 1 } },
        )
        .await;
    assert!(ok(&sc), "{sc}");
    assert_eq!(
        code(&a.command("admin", doc! { "replSetStepDown": 1 }).await),
        59
    );
    // A fail point is per process: set on router 1 only.
    let r = d
        .configure_fail_point_on(
            &hosts[1],
            doc! { "configureFailPoint": "failCommand", "mode": "alwaysOn",
            "data": { "failCommands": ["find"], "errorCode": 2 } },
        )
        .unwrap();
    assert_eq!(r.get_i32("count").ok(), Some(0));
    assert!(ok(&a.command("db", doc! { "find": "c" }).await));
    assert_eq!(code(&b.command("db", doc! { "find": "c" }).await), 2);
    assert!(
        d.configure_fail_point_on(
            "127.0.0.1:1",
            doc! { "configureFailPoint": "failCommand", "mode": "off" }
        )
        .is_err()
    );
    // reset: data, fail points and cursors are gone.
    d.reset();
    assert!(d.store().documents("db", "c").is_empty());
    assert!(ok(&b.command("db", doc! { "find": "c" }).await));
}

#[tokio::test]
async fn load_balancer_forwards_and_routers_have_distinct_service_ids() {
    let d = Deployment::start(DeploymentKind::LoadBalanced, ServerOptions::default())
        .await
        .unwrap();
    assert_eq!(d.topology_name(), "load-balanced");
    assert!(d.uri().ends_with("/?loadBalanced=true"), "{}", d.uri());
    assert!(d.single_mongos_uri().ends_with("/?loadBalanced=true"));
    assert_ne!(d.uri(), d.single_mongos_uri());
    let multi = first_host(&d.uri());
    let single = first_host(&d.single_mongos_uri());
    // Neither balancer is one of the routers.
    for s in d.servers() {
        assert_ne!(s.address(), multi);
        assert_ne!(s.address(), single);
    }
    let hello = doc! { "hello": 1, "loadBalanced": true };
    let mut multi_ids = HashSet::new();
    let mut clients = Vec::new();
    for _ in 0..4 {
        let mut c = Client::connect(multi).await;
        let h = c.command("admin", hello.clone()).await;
        assert_eq!(h.get_str("msg").ok(), Some("isdbgrid"));
        multi_ids.insert(h.get_object_id("serviceId").unwrap());
        clients.push(c);
    }
    assert_eq!(multi_ids.len(), 2, "round robin over two mongoses");
    let mut single_ids = HashSet::new();
    for _ in 0..3 {
        let mut c = Client::connect(single).await;
        let h = c.command("admin", hello.clone()).await;
        single_ids.insert(h.get_object_id("serviceId").unwrap());
    }
    assert_eq!(single_ids.len(), 1, "one mongos behind the single balancer");
    assert!(multi_ids.is_superset(&single_ids));
    assert_eq!(d.load_balancer_connections(), (3, 4));
    // Data written through one router is read through the other.
    let w = clients[0]
        .command("db", doc! { "insert": "c", "documents": [{ "_id": 7 }] })
        .await;
    assert!(ok(&w), "{w}");
    let f = clients[1].command("db", doc! { "count": "c" }).await;
    assert_eq!(f.get_i32("n").ok(), Some(1), "{f}");
    // The failPoint target is router 0, the one behind the single balancer.
    d.configure_fail_point(doc! {
        "configureFailPoint": "failCommand", "mode": { "times": 1 },
        "data": { "failCommands": ["ping"], "errorCode": 91 },
    })
    .unwrap();
    let mut c = Client::connect(single).await;
    let p = c.command("admin", doc! { "ping": 1 }).await;
    assert_eq!(code(&p), 91);
    assert_eq!(p.get_str("codeName").ok(), Some("ShutdownInProgress"));
    d.stop().await;
    assert!(tokio::net::TcpStream::connect(single).await.is_err());
    assert!(tokio::net::TcpStream::connect(multi).await.is_err());
}

#[tokio::test]
async fn get_parameter_and_set_parameter() {
    let d = Deployment::start(
        DeploymentKind::Single,
        ServerOptions::default().with_parameter("acceptApiVersion2", true),
    )
    .await
    .unwrap();
    assert_eq!(
        d.server_parameter("enableTestCommands"),
        Some(Bson::Boolean(true))
    );
    assert_eq!(
        d.server_parameter("acceptApiVersion2"),
        Some(Bson::Boolean(true))
    );
    assert_eq!(d.server_parameter("nope"), None);
    let mut c = Client::connect(d.servers()[0].address()).await;
    let p = c
        .command(
            "admin",
            doc! { "getParameter": 1, "enableTestCommands": 1, "requireApiVersion": 1 },
        )
        .await;
    assert_eq!(p.get_bool("enableTestCommands").ok(), Some(true));
    assert_eq!(p.get_bool("requireApiVersion").ok(), Some(false));
    assert!(p.get("acceptApiVersion2").is_none());
    let star = c.command("admin", doc! { "getParameter": "*" }).await;
    assert!(star.get_bool("acceptApiVersion2").is_ok());
    let none = c
        .command("admin", doc! { "getParameter": 1, "noSuchParameter": 1 })
        .await;
    assert_eq!(code(&none), 72);
    assert_eq!(
        code(
            &c.command("db", doc! { "getParameter": 1, "enableTestCommands": 1 })
                .await
        ),
        13
    );
    let set = c
        .command(
            "admin",
            doc! { "setParameter": 1, "requireApiVersion": true },
        )
        .await;
    assert_eq!(set.get_bool("was").ok(), Some(false));
    assert_eq!(
        d.server_parameter("requireApiVersion"),
        Some(Bson::Boolean(true))
    );
    let refused = c.command("db", doc! { "find": "c" }).await;
    assert_eq!(code(&refused), 498_870);
    assert!(ok(&c
        .command("db", doc! { "find": "c", "apiVersion": "1" })
        .await));
}

#[tokio::test]
async fn replica_sets_and_mongos_gossip_the_cluster_time() {
    let cluster_time = |d: &bson::Document| {
        d.get_document("$clusterTime")
            .unwrap()
            .get_timestamp("clusterTime")
            .unwrap()
    };
    for kind in [
        DeploymentKind::ReplicaSet { members: 1 },
        DeploymentKind::Sharded { routers: 1 },
    ] {
        let d = Deployment::start(kind, ServerOptions::default())
            .await
            .unwrap();
        let mut c = Client::connect(d.servers()[0].address()).await;
        let before = c.command("db", doc! { "find": "c" }).await;
        let t0 = cluster_time(&before);
        assert_eq!(before.get_timestamp("operationTime").ok(), Some(t0));
        let w = c
            .command("db", doc! { "insert": "c", "documents": [{}] })
            .await;
        assert!(cluster_time(&w) > t0, "a write advances the cluster time");
        assert_eq!(
            w.get_timestamp("operationTime").ok(),
            Some(cluster_time(&w))
        );
        let err = c.command("db", doc! { "nope": 1 }).await;
        assert!(err.get_document("$clusterTime").is_ok());
    }
    let d = Deployment::start(DeploymentKind::Single, ServerOptions::default())
        .await
        .unwrap();
    let mut c = Client::connect(d.servers()[0].address()).await;
    assert!(
        c.command("db", doc! { "find": "c" })
            .await
            .get("$clusterTime")
            .is_none()
    );
}
