//! Fail points over real sockets as mongod has them (`failCommand` on the handshake and
//! monitoring hellos, appName, modes, blocking, labels, the other fail points), the stable
//! API checks, and the replica-set behaviour the SDAM suite exercises.
#![allow(
    clippy::disallowed_methods,
    reason = "integration tests own their clock and tasks"
)]

mod common;

use std::time::{Duration, Instant};

use bson::{Bson, Document, doc};
use common::{Client, code, ok};
use mongo_testkit::{Deployment, DeploymentKind, ServerOptions, TestServer};

fn labels(d: &Document) -> Vec<String> {
    d.get_array("errorLabels")
        .map(|a| {
            a.iter()
                .filter_map(|l| l.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn handshake(app: &str) -> Document {
    doc! { "hello": 1, "client": { "application": { "name": app }, "driver": { "name": "t", "version": "0" } } }
}

#[tokio::test]
async fn fail_point_on_hello_with_app_name_hits_only_that_apps_handshakes() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let r = server
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": { "times": 2 },
            "data": { "failCommands": ["hello", "isMaster"], "appName": "victim", "errorCode": 11600 },
        })
        .unwrap();
    assert_eq!(r.get_i32("count").ok(), Some(0));
    // Another application's handshake passes and does not consume an activation.
    let mut other = Client::connect(server.address()).await;
    assert!(ok(&other.command("admin", handshake("bystander")).await));
    // The victim's first handshake fails (before the metadata is even recorded: the fail
    // point sees the appName the command carries).
    let mut v1 = Client::connect(server.address()).await;
    let first = v1.command("admin", handshake("victim")).await;
    assert_eq!(code(&first), 11600, "{first}");
    assert_eq!(
        first.get_str("codeName").ok(),
        Some("InterruptedAtShutdown")
    );
    // A monitoring hello on a connection whose handshake named the app.
    let mut v2 = Client::connect(server.address()).await;
    let hs = v2.command("admin", handshake("victim")).await;
    assert_eq!(code(&hs), 11600);
    // Two activations used: the third passes.
    let mut v3 = Client::connect(server.address()).await;
    assert!(ok(&v3.command("admin", handshake("victim")).await));
    let off = server
        .configure_fail_point(doc! { "configureFailPoint": "failCommand", "mode": "off" })
        .unwrap();
    assert_eq!(off.get_i32("count").ok(), Some(2));
}

#[tokio::test]
async fn monitoring_hellos_after_the_handshake_are_matched_by_app_name() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let mut c = Client::connect(server.address()).await;
    assert!(ok(&c.command("admin", handshake("mon")).await));
    server
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": "alwaysOn",
            "data": { "failCommands": ["hello"], "appName": "mon", "closeConnection": true },
        })
        .unwrap();
    assert!(c.try_command("admin", doc! { "hello": 1 }).await.is_err());
    server.clear_fail_points();
    let mut again = Client::connect(server.address()).await;
    assert!(ok(&again.command("admin", handshake("mon")).await));
}

#[tokio::test]
async fn probability_skip_and_counts() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let mut c = Client::connect(server.address()).await;
    server
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": { "activationProbability": 0.0 },
            "data": { "failCommands": ["ping"], "errorCode": 2 },
        })
        .unwrap();
    for _ in 0..20 {
        assert!(ok(&c.command("admin", doc! { "ping": 1 }).await));
    }
    server
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": { "activationProbability": 1.0 },
            "data": { "failCommands": ["ping"], "errorCode": 2 },
        })
        .unwrap();
    for _ in 0..20 {
        assert_eq!(code(&c.command("admin", doc! { "ping": 1 }).await), 2);
    }
    let r = server
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": { "skip": 1 },
            "data": { "failCommands": ["ping"], "errorCode": 2 },
        })
        .unwrap();
    assert_eq!(r.get_i32("count").ok(), Some(20));
    assert!(ok(&c.command("admin", doc! { "ping": 1 }).await));
    assert_eq!(code(&c.command("admin", doc! { "ping": 1 }).await), 2);
    let bad = c
        .command(
            "admin",
            doc! { "configureFailPoint": "failCommand", "mode": { "activationProbability": 2 } },
        )
        .await;
    assert_eq!(code(&bad), 2);
    let unknown = c
        .command(
            "admin",
            doc! { "configureFailPoint": "noSuchFailPoint", "mode": "alwaysOn" },
        )
        .await;
    assert_eq!(code(&unknown), 266);
}

#[tokio::test]
async fn block_connection_delays_the_reply() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let mut c = Client::connect(server.address()).await;
    server
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": { "times": 1 },
            "data": { "failCommands": ["find"], "blockConnection": true, "blockTimeMS": 300 },
        })
        .unwrap();
    let start = Instant::now();
    let r = c.command("db", doc! { "find": "c" }).await;
    assert!(ok(&r), "blocking alone does not fail the command: {r}");
    assert!(start.elapsed() >= Duration::from_millis(290));
    let start = Instant::now();
    assert!(ok(&c.command("db", doc! { "find": "c" }).await));
    assert!(start.elapsed() < Duration::from_millis(250));
}

#[tokio::test]
async fn a_client_that_hangs_up_during_a_block_interrupts_its_command() {
    // mongod kills an operation whose client disconnected at its next interrupt check: the
    // blocked insert never runs. Without that, a client's socket timeout would leave the write
    // to land later, behind the back of whatever the client did next.
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    server
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": { "times": 1 },
            "data": { "failCommands": ["insert"], "blockConnection": true, "blockTimeMS": 400 },
        })
        .unwrap();
    let mut c = Client::connect(server.address()).await;
    let insert = doc! { "insert": "gone", "documents": [{ "_id": 1 }], "$db": "db" };
    c.send(&mongo_wire::OpMsg::new(
        bson::RawDocumentBuf::try_from(&insert).unwrap(),
    ))
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(c);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut other = Client::connect(server.address()).await;
    let found = other.command("db", doc! { "count": "gone" }).await;
    assert_eq!(
        found.get_i32("n").ok(),
        Some(0),
        "the blocked insert ran: {found}"
    );
    // The same insert from a client that waits for it does run.
    let r = other
        .command("db", doc! { "insert": "gone", "documents": [{ "_id": 1 }] })
        .await;
    assert_eq!(r.get_i32("n").ok(), Some(1), "{r}");
}

#[tokio::test]
async fn commands_the_suites_fail_are_reachable_by_the_fail_point() {
    let server = TestServer::start(ServerOptions::default().with_user("u", "p"))
        .await
        .unwrap();
    for name in [
        "saslStart",
        "getnonce",
        "ping",
        "endSessions",
        "killCursors",
    ] {
        server
            .configure_fail_point(doc! {
                "configureFailPoint": "failCommand", "mode": { "times": 1 },
                "data": { "failCommands": [name], "errorCode": 18 },
            })
            .unwrap();
        let mut c = Client::connect(server.address()).await;
        let mut cmd = Document::new();
        cmd.insert(name, Bson::Int32(1));
        let r = c.command("admin", cmd).await;
        assert_eq!(code(&r), 18, "{name}: {r}");
        assert_eq!(r.get_str("codeName").ok(), Some("AuthenticationFailed"));
    }
    // A code mongod has no name for is named Location<code>.
    server
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": { "times": 1 },
            "data": { "failCommands": ["ping"], "errorCode": 12345 },
        })
        .unwrap();
    let mut c = Client::connect(server.address()).await;
    let r = c.command("admin", doc! { "ping": 1 }).await;
    assert_eq!(r.get_str("codeName").ok(), Some("Location12345"));
    // Without the fail point getnonce is gone, as on modern mongod.
    let mut c = Client::connect(server.address()).await;
    let r = c.command("admin", doc! { "getnonce": 1 }).await;
    assert_eq!(code(&r), 59);
    assert_eq!(r.get_str("codeName").ok(), Some("CommandNotFound"));
}

#[tokio::test]
async fn retryable_write_errors_get_mongods_labels_unless_the_fail_point_sets_them() {
    let d = Deployment::start(
        DeploymentKind::ReplicaSet { members: 2 },
        ServerOptions::default(),
    )
    .await
    .unwrap();
    let primary = d.fail_point_target().unwrap().clone();
    let mut c = Client::connect(primary.address()).await;
    let write = |txn: i64| {
        doc! { "insert": "c", "documents": [{ "x": txn }], "lsid": { "id": 1 }, "txnNumber": txn }
    };
    d.configure_fail_point(doc! {
        "configureFailPoint": "failCommand", "mode": { "times": 1 },
        "data": { "failCommands": ["insert"], "errorCode": 10107 },
    })
    .unwrap();
    let r = c.command("db", write(1)).await;
    assert_eq!(code(&r), 10107);
    assert_eq!(labels(&r), ["RetryableWriteError"]);
    assert!(r.get_document("topologyVersion").is_ok(), "{r}");
    // Not a retryable write (no txnNumber): no label.
    d.configure_fail_point(doc! {
        "configureFailPoint": "failCommand", "mode": { "times": 1 },
        "data": { "failCommands": ["insert"], "errorCode": 10107 },
    })
    .unwrap();
    let r = c
        .command("db", doc! { "insert": "c", "documents": [{}] })
        .await;
    assert!(labels(&r).is_empty(), "{r}");
    // A non-retryable code: no label.
    d.configure_fail_point(doc! {
        "configureFailPoint": "failCommand", "mode": { "times": 1 },
        "data": { "failCommands": ["insert"], "errorCode": 2 },
    })
    .unwrap();
    assert!(labels(&c.command("db", write(2)).await).is_empty());
    // Explicit (even empty) labels replace mongod's.
    d.configure_fail_point(doc! {
        "configureFailPoint": "failCommand", "mode": { "times": 1 },
        "data": { "failCommands": ["insert"], "errorCode": 91, "errorLabels": [] },
    })
    .unwrap();
    let r = c.command("db", write(3)).await;
    assert_eq!(code(&r), 91);
    assert!(r.get("errorLabels").is_none(), "{r}");
    // A writeConcernError with a retryable code on a retryable write: labelled.
    d.configure_fail_point(doc! {
        "configureFailPoint": "failCommand", "mode": { "times": 1 },
        "data": { "failCommands": ["insert"], "writeConcernError": { "code": 91, "errmsg": "Replication is being shut down" } },
    })
    .unwrap();
    let r = c.command("db", write(4)).await;
    assert!(ok(&r), "{r}");
    assert_eq!(
        r.get_document("writeConcernError")
            .unwrap()
            .get_i32("code")
            .ok(),
        Some(91)
    );
    assert_eq!(labels(&r), ["RetryableWriteError"]);
    // Writes to a secondary: NotWritablePrimary with the node's topologyVersion.
    let mut s = Client::connect(d.servers()[1].address()).await;
    let r = s.command("db", write(5)).await;
    assert_eq!(code(&r), 10107);
    assert_eq!(labels(&r), ["RetryableWriteError"]);
    assert!(r.get_document("topologyVersion").is_ok());
}

#[tokio::test]
async fn retryable_writes_are_answered_once_and_on_primary_transactional_write() {
    let d = Deployment::start(
        DeploymentKind::ReplicaSet { members: 2 },
        ServerOptions::default(),
    )
    .await
    .unwrap();
    let addr = d.fail_point_target().unwrap().address();
    let insert = |id: i32, txn: i64| {
        doc! { "insert": "c", "documents": [{ "_id": id }], "lsid": { "id": 9 }, "txnNumber": txn }
    };
    // The write commits, then the server hangs up; the retry gets the first reply.
    d.configure_fail_point(
        doc! { "configureFailPoint": "onPrimaryTransactionalWrite", "mode": { "times": 1 } },
    )
    .unwrap();
    let mut c = Client::connect(addr).await;
    assert!(c.try_command("db", insert(1, 1)).await.is_err());
    assert_eq!(d.store().documents("db", "c").len(), 1);
    let mut c = Client::connect(addr).await;
    let retry = c.command("db", insert(1, 1)).await;
    assert!(ok(&retry), "{retry}");
    assert_eq!(retry.get_i32("n").ok(), Some(1));
    assert_eq!(d.store().documents("db", "c").len(), 1);
    // failBeforeCommitExceptionCode: nothing is written, and the connection is closed.
    d.configure_fail_point(doc! {
        "configureFailPoint": "onPrimaryTransactionalWrite", "mode": { "times": 1 },
        "data": { "failBeforeCommitExceptionCode": 1 },
    })
    .unwrap();
    assert!(c.try_command("db", insert(2, 2)).await.is_err());
    assert_eq!(d.store().documents("db", "c").len(), 1);
    let mut c = Client::connect(addr).await;
    assert!(ok(&c.command("db", insert(2, 2)).await));
    assert_eq!(d.store().documents("db", "c").len(), 2);
    // ... and without closing: the error comes back.
    d.configure_fail_point(doc! {
        "configureFailPoint": "onPrimaryTransactionalWrite", "mode": { "times": 1 },
        "data": { "failBeforeCommitExceptionCode": 1, "closeConnection": false },
    })
    .unwrap();
    assert_eq!(code(&c.command("db", insert(3, 3)).await), 1);
    // An older txnNumber is refused.
    assert_eq!(code(&c.command("db", insert(4, 1)).await), 225);
    // failGetMoreAfterCursorCheckout fails the getMore and kills the cursor.
    d.store()
        .insert_many("db", "g", (0..5).map(|i| doc! { "_id": i }))
        .unwrap();
    let f = c.command("db", doc! { "find": "g", "batchSize": 2 }).await;
    let id = f.get_document("cursor").unwrap().get_i64("id").unwrap();
    d.configure_fail_point(doc! {
        "configureFailPoint": "failGetMoreAfterCursorCheckout", "mode": { "times": 1 },
        "data": { "errorCode": 237 },
    })
    .unwrap();
    let g = c
        .command("db", doc! { "getMore": id, "collection": "g" })
        .await;
    assert_eq!(code(&g), 237);
    assert_eq!(g.get_str("codeName").ok(), Some("CursorKilled"));
    let g = c
        .command("db", doc! { "getMore": id, "collection": "g" })
        .await;
    assert_eq!(code(&g), 43);
}

#[tokio::test]
async fn stable_api_checks() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let mut c = Client::connect(server.address()).await;
    let r = c
        .command(
            "db",
            doc! { "testVersion2": 1, "apiVersion": "1", "apiStrict": true },
        )
        .await;
    assert_eq!(code(&r), 323);
    assert_eq!(r.get_str("codeName").ok(), Some("APIStrictError"));
    assert!(
        r.get_str("errmsg")
            .unwrap()
            .contains("command testVersion2 is not in API Version 1")
    );
    let r = c
        .command(
            "db",
            doc! { "distinct": "c", "key": "x", "apiVersion": "1", "apiStrict": true },
        )
        .await;
    assert!(
        r.get_str("errmsg")
            .unwrap()
            .contains("command distinct is not in API Version 1")
    );
    let r = c
        .command(
            "db",
            doc! { "aggregate": 1, "pipeline": [{ "$listLocalSessions": {} }], "cursor": {}, "apiVersion": "1", "apiStrict": true },
        )
        .await;
    assert_eq!(code(&r), 323);
    assert!(ok(&c
        .command(
            "db",
            doc! { "find": "c", "apiVersion": "1", "apiStrict": true }
        )
        .await));
    assert!(ok(&c
        .command(
            "db",
            doc! { "distinct": "c", "key": "x", "apiVersion": "1" }
        )
        .await));
    let r = c
        .command(
            "db",
            doc! { "ping": 1, "apiVersion": "server_will_never_support_this_api_version" },
        )
        .await;
    assert_eq!(code(&r), 322);
    assert_eq!(
        code(&c.command("db", doc! { "ping": 1, "apiStrict": true }).await),
        322
    );
    // API version 2 only with acceptApiVersion2.
    let two =
        doc! { "testDeprecationInVersion2": 1, "apiVersion": "2", "apiDeprecationErrors": true };
    assert_eq!(code(&c.command("db", two.clone()).await), 322);
    let r = c
        .command(
            "admin",
            doc! { "setParameter": 1, "acceptApiVersion2": true },
        )
        .await;
    assert!(ok(&r), "{r}");
    let r = c.command("db", two).await;
    assert_eq!(code(&r), 324);
    assert!(
        r.get_str("errmsg")
            .unwrap()
            .contains("command testDeprecationInVersion2 is deprecated in API Version 2")
    );
    assert!(ok(&c
        .command(
            "db",
            doc! { "testVersion2": 1, "apiVersion": "2", "apiStrict": true }
        )
        .await));
    let unknown = c.command("db", doc! { "frobnicate": 1 }).await;
    assert_eq!(unknown.get_str("codeName").ok(), Some("CommandNotFound"));
}

#[tokio::test]
async fn step_down_and_freeze() {
    let d = Deployment::start(
        DeploymentKind::ReplicaSet { members: 3 },
        ServerOptions::default(),
    )
    .await
    .unwrap();
    let rs = d.replica_set().unwrap().clone();
    let mut p = Client::connect(d.servers()[0].address()).await;
    let mut s1 = Client::connect(d.servers()[1].address()).await;
    let before = p.command("admin", doc! { "hello": 1 }).await;
    let counter = |h: &Document| {
        h.get_document("topologyVersion")
            .unwrap()
            .get_i64("counter")
            .unwrap()
    };
    // A primary cannot be frozen; a secondary can.
    assert_eq!(
        code(&p.command("admin", doc! { "replSetFreeze": 30 }).await),
        95
    );
    let f = s1.command("admin", doc! { "replSetFreeze": 30 }).await;
    assert!(ok(&f), "{f}");
    // Member 1 is frozen, so member 2 is elected.
    let r = p
        .command(
            "admin",
            doc! { "replSetStepDown": 30, "secondaryCatchUpPeriodSecs": 10, "force": false },
        )
        .await;
    assert!(ok(&r), "{r}");
    assert_eq!(rs.primary_index(), Some(2));
    let after = p.command("admin", doc! { "hello": 1 }).await;
    assert_eq!(after.get_bool("isWritablePrimary").ok(), Some(false));
    assert!(counter(&after) > counter(&before));
    // Member 0 stepped down for 30s and member 1 is frozen: no electable secondary.
    let mut p2 = Client::connect(d.servers()[2].address()).await;
    let r = p2.command("admin", doc! { "replSetStepDown": 30 }).await;
    assert_eq!(code(&r), 262, "{r}");
    // Unfreezing member 1 makes it electable.
    assert!(ok(&s1.command("admin", doc! { "replSetFreeze": 0 }).await));
    assert!(ok(&p2
        .command("admin", doc! { "replSetStepDown": 30 })
        .await));
    assert_eq!(rs.primary_index(), Some(1));
    // Step-down on a secondary and outside admin fail like mongod.
    assert_eq!(
        code(&p.command("admin", doc! { "replSetStepDown": 30 }).await),
        10107
    );
    assert_eq!(
        code(&p.command("db", doc! { "replSetStepDown": 30 }).await),
        13
    );
    let r = s1
        .command(
            "admin",
            doc! { "replSetStepDown": 5, "secondaryCatchUpPeriodSecs": 10 },
        )
        .await;
    assert_eq!(code(&r), 2);
}
