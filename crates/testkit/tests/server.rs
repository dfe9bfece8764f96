//! The testkit server driven by a minimal mongo-wire client over real sockets.
#![allow(
    clippy::disallowed_methods,
    reason = "integration tests and benchmarks own their clock and tasks"
)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bson::{Bson, RawDocumentBuf, doc, rawdoc};
use common::{Client, code, ok};
use mongo_testkit::{ReplicaSet, ServerOptions, TestServer, generate_test_certs};
use mongo_wire::{Compressor, MsgFlags, OpMsg};

#[tokio::test]
async fn hello_over_op_msg_and_legacy_op_query() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    assert!(server.uri().starts_with("mongodb://127.0.0.1:"));
    let mut c = Client::connect(server.address()).await;
    let legacy = c.legacy_hello().await;
    assert_eq!(legacy.get_bool("ismaster").ok(), Some(true));
    assert_eq!(legacy.get_bool("helloOk").ok(), Some(true));
    let hello = c.command("admin", doc! { "hello": 1 }).await;
    assert!(ok(&hello));
    assert_eq!(hello.get_bool("isWritablePrimary").ok(), Some(true));
    assert_eq!(hello.get_i32("maxWireVersion").ok(), Some(25));
    assert_eq!(hello.get_i32("minWireVersion").ok(), Some(0));
    assert_eq!(hello.get_i32("maxBsonObjectSize").ok(), Some(16_777_216));
    assert_eq!(hello.get_i32("maxMessageSizeBytes").ok(), Some(48_000_000));
    assert_eq!(hello.get_i32("maxWriteBatchSize").ok(), Some(100_000));
    assert_eq!(hello.get_i32("logicalSessionTimeoutMinutes").ok(), Some(30));
    let tv = hello.get_document("topologyVersion").unwrap();
    assert!(tv.get_object_id("processId").is_ok());
    assert!(tv.get_i64("counter").is_ok());
    assert!(hello.get_i64("connectionId").is_ok());
    assert!(hello.get_datetime("localTime").is_ok());
    let unknown = c.command("admin", doc! { "frobnicate": 1 }).await;
    assert_eq!(code(&unknown), 59);
    assert_eq!(unknown.get_str("codeName").ok(), Some("CommandNotFound"));
    assert!(unknown.get_str("errmsg").is_ok());
    assert_eq!(
        c.command("admin", doc! { "buildInfo": 1 })
            .await
            .get_str("version")
            .ok(),
        Some("8.0.4")
    );
    assert!(ok(&c.command("admin", doc! { "endSessions": [] }).await));
}

#[tokio::test]
async fn load_balancer_mode_reports_a_service_id() {
    let server = TestServer::start(ServerOptions::default().with_load_balancer())
        .await
        .unwrap();
    let mut c = Client::connect(server.address()).await;
    let hello = c
        .command("admin", doc! { "hello": 1, "loadBalanced": true })
        .await;
    assert_eq!(hello.get_str("msg").ok(), Some("isdbgrid"));
    assert!(hello.get("setName").is_none());
    let id = hello.get_object_id("serviceId").unwrap();
    // Another connection to the same mongos: the same service.
    let mut d = Client::connect(server.address()).await;
    let again = d
        .command("admin", doc! { "hello": 1, "loadBalanced": true })
        .await;
    assert_eq!(again.get_object_id("serviceId").ok(), Some(id));
    // A client that did not ask for load balancing sees a plain mongos.
    let mut e = Client::connect(server.address()).await;
    let plain = e.command("admin", doc! { "hello": 1 }).await;
    assert_eq!(plain.get("serviceId"), None::<&Bson>);
    // A restart is a new process, hence a new service id.
    server.restart().await.unwrap();
    let mut f = Client::connect(server.address()).await;
    let after = f
        .command("admin", doc! { "hello": 1, "loadBalanced": true })
        .await;
    assert_ne!(after.get_object_id("serviceId").ok(), Some(id));
}

#[tokio::test]
async fn compression_is_negotiated_in_client_order_and_used_both_ways() {
    let server = TestServer::start(ServerOptions::default().with_compressors(["zlib", "zstd"]))
        .await
        .unwrap();
    let mut c = Client::connect(server.address()).await;
    let hello = c
        .command(
            "admin",
            doc! { "hello": 1, "compression": ["snappy", "zstd", "zlib"] },
        )
        .await;
    assert_eq!(
        hello.get_array("compression").unwrap(),
        &vec![Bson::from("zstd"), Bson::from("zlib")]
    );
    assert_eq!(c.last_reply_compressor, None, "hello is never compressed");
    for comp in [Compressor::Zstd, Compressor::ZLIB] {
        c.compressor = Some(comp);
        let r = c
            .command(
                "db",
                doc! { "insert": "c", "documents": [{ "pad": "x".repeat(500) }] },
            )
            .await;
        assert!(ok(&r), "{r}");
        assert_eq!(c.last_reply_compressor.map(|c| c.id()), Some(comp.id()));
        let r = c.command("admin", doc! { "hello": 1 }).await;
        assert!(ok(&r));
        assert_eq!(c.last_reply_compressor, None);
    }
}

#[tokio::test]
async fn oversized_message_closes_the_connection() {
    let server = TestServer::start(ServerOptions::default().with_max_message_size(1024))
        .await
        .unwrap();
    let mut c = Client::connect(server.address()).await;
    let big = c
        .try_command(
            "db",
            doc! { "insert": "c", "documents": [{ "pad": "x".repeat(4096) }] },
        )
        .await;
    assert!(big.is_err(), "server must hang up: {big:?}");
    let mut c = Client::connect(server.address()).await;
    assert!(ok(&c.command("admin", doc! { "ping": 1 }).await));
}

#[tokio::test]
async fn scram_sha1_and_sha256_and_access_control() {
    let server = TestServer::start(ServerOptions::default().with_user("app", "secret"))
        .await
        .unwrap();
    let mut c = Client::connect(server.address()).await;
    let hello = c
        .command(
            "admin",
            doc! { "hello": 1, "saslSupportedMechs": "admin.app" },
        )
        .await;
    assert_eq!(hello.get_array("saslSupportedMechs").unwrap().len(), 2);
    assert!(ok(&c.command("admin", doc! { "ping": 1 }).await));
    let refused = c.command("db", doc! { "find": "c" }).await;
    assert_eq!(code(&refused), 13);
    let bad = c.scram("app", "wrong", false).await;
    assert_eq!(code(&bad), 18);
    let good = c.scram("app", "secret", false).await;
    assert!(ok(&good), "{good}");
    assert_eq!(good.get_bool("done").ok(), Some(true));
    assert!(ok(&c.command("db", doc! { "find": "c" }).await));
    assert!(ok(&c.command("admin", doc! { "logout": 1 }).await));
    assert_eq!(code(&c.command("db", doc! { "find": "c" }).await), 13);

    let mut c1 = Client::connect(server.address()).await;
    let r = c1.scram("app", "secret", true).await;
    assert!(ok(&r), "{r}");
    assert!(ok(&c1.command("db", doc! { "count": "c" }).await));
    let mut spec = Client::connect(server.address()).await;
    let payload = bson::Binary {
        subtype: bson::spec::BinarySubtype::Generic,
        bytes: b"n,,n=app,r=SpecNonce".to_vec(),
    };
    let hello = spec
        .command("admin", doc! { "hello": 1, "speculativeAuthenticate": { "saslStart": 1, "mechanism": "SCRAM-SHA-256", "payload": payload, "db": "admin", "options": { "skipEmptyExchange": true } } })
        .await;
    let sa = hello.get_document("speculativeAuthenticate").unwrap();
    assert_eq!(sa.get_i32("conversationId").ok(), Some(1));
    assert_eq!(sa.get_bool("done").ok(), Some(false));
    assert!(
        sa.get_binary_generic("payload")
            .unwrap()
            .starts_with(b"r=SpecNonce")
    );
    let mut unknown = Client::connect(server.address()).await;
    assert_eq!(code(&unknown.scram("nobody", "secret", false).await), 18);
}

#[tokio::test]
async fn crud_with_document_sequences_and_cursors() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let mut c = Client::connect(server.address()).await;
    let docs: Vec<RawDocumentBuf> = (0..25).map(|i| rawdoc! { "_id": i, "v": i % 3 }).collect();
    let msg = OpMsg::new(rawdoc! { "insert": "items", "$db": "t", "ordered": false })
        .with_sequence("documents", docs);
    c.send(&msg).await.unwrap();
    let r = c.receive().await.unwrap();
    assert_eq!(r.get_i32("n").ok(), Some(25));

    let dup = c
        .command(
            "t",
            doc! { "insert": "items", "documents": [{ "_id": 100 }, { "_id": 3 }, { "_id": 101 }] },
        )
        .await;
    assert_eq!(
        dup.get_i32("n").ok(),
        Some(1),
        "ordered insert stops at the duplicate"
    );
    let err = &dup.get_array("writeErrors").unwrap()[0];
    let err = err.as_document().unwrap();
    assert_eq!(err.get_i32("index").ok(), Some(1));
    assert_eq!(err.get_i32("code").ok(), Some(11000));

    let found = c
        .command("t", doc! { "find": "items", "filter": { "v": { "$in": [0, 2] }, "_id": { "$lt": 25 } }, "sort": { "_id": -1 }, "batchSize": 4, "projection": { "v": 0 } })
        .await;
    let cursor = found.get_document("cursor").unwrap();
    assert_eq!(cursor.get_str("ns").ok(), Some("t.items"));
    let first = cursor.get_array("firstBatch").unwrap();
    assert_eq!(first.len(), 4);
    assert_eq!(first[0].as_document().unwrap(), &doc! { "_id": 24 });
    let id = cursor.get_i64("id").unwrap();
    assert_ne!(id, 0);
    let mut total = first.len();
    let mut cid = id;
    while cid != 0 {
        let more = c
            .command(
                "t",
                doc! { "getMore": cid, "collection": "items", "batchSize": 5 },
            )
            .await;
        let cur = more.get_document("cursor").unwrap();
        total += cur.get_array("nextBatch").unwrap().len();
        cid = cur.get_i64("id").unwrap();
    }
    assert_eq!(total, 17);
    let gone = c
        .command("t", doc! { "getMore": id, "collection": "items" })
        .await;
    assert_eq!(code(&gone), 43);

    let open = c
        .command("t", doc! { "find": "items", "batchSize": 2 })
        .await;
    let id = open.get_document("cursor").unwrap().get_i64("id").unwrap();
    let killed = c
        .command("t", doc! { "killCursors": "items", "cursors": [id] })
        .await;
    assert_eq!(
        killed.get_array("cursorsKilled").unwrap(),
        &vec![Bson::Int64(id)]
    );
    assert_eq!(
        code(
            &c.command("t", doc! { "getMore": id, "collection": "items" })
                .await
        ),
        43
    );

    let up = c
        .command("t", doc! { "update": "items", "updates": [
            { "q": { "v": 1 }, "u": { "$set": { "s": true }, "$inc": { "v": 10 } }, "multi": true },
            { "q": { "_id": "new" }, "u": { "$set": { "x": 1 } }, "upsert": true },
        ] })
        .await;
    assert_eq!(up.get_i32("n").ok(), Some(9));
    assert_eq!(up.get_i32("nModified").ok(), Some(8));
    let ups = up.get_array("upserted").unwrap()[0]
        .as_document()
        .unwrap()
        .clone();
    assert_eq!(ups, doc! { "index": 1, "_id": "new" });
    let n = c
        .command("t", doc! { "count": "items", "query": { "v": 11 } })
        .await;
    assert_eq!(n.get_i32("n").ok(), Some(8));
    let del = c
        .command("t", doc! { "delete": "items", "deletes": [{ "q": { "s": true }, "limit": 1 }, { "q": { "v": 0 }, "limit": 0 }] })
        .await;
    assert_eq!(del.get_i32("n").ok(), Some(10));

    let agg = c
        .command("t", doc! { "aggregate": "items", "pipeline": [{ "$match": { "v": 2 } }, { "$sort": { "_id": 1 } }, { "$skip": 1 }, { "$limit": 2 }, { "$project": { "_id": 1 } }], "cursor": {} })
        .await;
    let batch = agg
        .get_document("cursor")
        .unwrap()
        .get_array("firstBatch")
        .unwrap()
        .clone();
    assert_eq!(
        batch,
        vec![
            Bson::Document(doc! { "_id": 5 }),
            Bson::Document(doc! { "_id": 8 })
        ]
    );

    c.command("t", doc! { "insert": "noid", "documents": [{ "a": 1 }] })
        .await;
    assert!(
        server.store().documents("t", "noid")[0]
            .get_object_id("_id")
            .is_ok()
    );
    let dbs = c.command("admin", doc! { "listDatabases": 1 }).await;
    assert_eq!(dbs.get_array("databases").unwrap().len(), 1);
    let colls = c.command("t", doc! { "listCollections": 1 }).await;
    assert_eq!(
        colls
            .get_document("cursor")
            .unwrap()
            .get_array("firstBatch")
            .unwrap()
            .len(),
        2
    );
    assert!(ok(&c.command("t", doc! { "drop": "noid" }).await));
    assert_eq!(code(&c.command("t", doc! { "create": "items" }).await), 48);
    assert!(ok(&c.command("t", doc! { "dropDatabase": 1 }).await));
    assert!(server.store().documents("t", "items").is_empty());

    // moreToCome (w:0): no reply, but the write happens.
    let msg = OpMsg::new(rawdoc! { "insert": "w0", "$db": "t", "documents": [{ "_id": 1 }], "writeConcern": { "w": 0 } })
        .with_flags(MsgFlags::MORE_TO_COME);
    c.send(&msg).await.unwrap();
    assert!(ok(&c.command("admin", doc! { "ping": 1 }).await));
    assert_eq!(server.store().documents("t", "w0").len(), 1);
}

#[tokio::test]
async fn fail_points_error_close_block_and_app_name() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let mut c = Client::connect(server.address()).await;
    c.command(
        "admin",
        doc! { "hello": 1, "client": { "application": { "name": "myapp" } } },
    )
    .await;
    let r = c
        .command("admin", doc! { "configureFailPoint": "failCommand", "mode": { "times": 1 }, "data": { "failCommands": ["find"], "errorCode": 11600, "errorLabels": ["RetryableWriteError"], "appName": "myapp" } })
        .await;
    assert!(ok(&r), "{r}");
    let failed = c.command("db", doc! { "find": "c" }).await;
    assert_eq!(code(&failed), 11600);
    assert_eq!(failed.get_array("errorLabels").unwrap().len(), 1);
    assert!(
        ok(&c.command("db", doc! { "find": "c" }).await),
        "times: 1 is spent"
    );

    server
        .configure_fail_point(doc! { "configureFailPoint": "failCommand", "mode": "alwaysOn", "data": { "failCommands": ["ping"], "closeConnection": true } })
        .unwrap();
    assert!(c.try_command("admin", doc! { "ping": 1 }).await.is_err());
    let mut c = Client::connect(server.address()).await;
    assert!(c.try_command("admin", doc! { "ping": 1 }).await.is_err());
    let mut c = Client::connect(server.address()).await;
    c.command(
        "admin",
        doc! { "configureFailPoint": "failCommand", "mode": "off" },
    )
    .await;
    assert!(ok(&c.command("admin", doc! { "ping": 1 }).await));

    // Blocking and the writeConcernError are two evaluations of the fail point (as on
    // mongod: before and after the command runs), so each takes an activation.
    c.command("admin", doc! { "configureFailPoint": "failCommand", "mode": { "times": 2 }, "data": { "failCommands": ["insert"], "blockConnection": true, "blockTimeMS": 150, "writeConcernError": { "code": 64, "errmsg": "waiting for replication timed out" } } }).await;
    let start = Instant::now();
    let r = c
        .command("db", doc! { "insert": "c", "documents": [{}] })
        .await;
    assert!(start.elapsed() >= Duration::from_millis(140));
    assert_eq!(
        r.get_document("writeConcernError")
            .unwrap()
            .get_i32("code")
            .ok(),
        Some(64)
    );
    assert_eq!(r.get_i32("n").ok(), Some(1));

    server.delay_next_reply(Duration::from_millis(120));
    let start = Instant::now();
    assert!(ok(&c.command("admin", doc! { "ping": 1 }).await));
    assert!(start.elapsed() >= Duration::from_millis(110));
    server.drop_next_reply();
    assert!(c.try_command("admin", doc! { "ping": 1 }).await.is_err());
}

#[tokio::test]
async fn stop_and_restart_on_the_same_port() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let addr = server.address();
    let mut c = Client::connect(addr).await;
    let pid1 = c
        .command("admin", doc! { "hello": 1 })
        .await
        .get_document("topologyVersion")
        .unwrap()
        .get_object_id("processId")
        .unwrap();
    server.stop().await;
    assert!(server.is_stopped());
    assert!(c.try_command("admin", doc! { "ping": 1 }).await.is_err());
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    server.restart().await.unwrap();
    assert_eq!(server.address(), addr);
    let mut c = Client::connect(addr).await;
    let pid2 = c
        .command("admin", doc! { "hello": 1 })
        .await
        .get_document("topologyVersion")
        .unwrap()
        .get_object_id("processId")
        .unwrap();
    assert_ne!(pid1, pid2);
}

#[tokio::test]
async fn tls_with_generated_certificates() {
    let certs = generate_test_certs().unwrap();
    let server = TestServer::start(ServerOptions::default().with_tls(certs.server_tls()))
        .await
        .unwrap();
    assert!(server.uri().contains("tls=true"));
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(&certs.ca_cert).unwrap();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(server.address())
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    let mut c = Client::over(Box::new(tls));
    assert!(ok(&c.command("admin", doc! { "hello": 1 }).await));
    assert!(ok(&c
        .command("db", doc! { "insert": "c", "documents": [{ "x": 1 }] })
        .await));
    // A plain-text client is not answered.
    let mut plain = Client::connect(server.address()).await;
    assert!(
        tokio::time::timeout(
            Duration::from_secs(5),
            plain.try_command("admin", doc! { "ping": 1 })
        )
        .await
        .map(|r| r.is_err())
        .unwrap_or(true)
    );
    let _ = std::fs::remove_dir_all(&certs.dir);
}

#[tokio::test]
async fn replica_set_roles_awaitable_hello_and_step_down() {
    let rs = ReplicaSet::start("rs0", 3).await.unwrap();
    assert_eq!(rs.primary_index(), Some(0));
    assert!(rs.uri().ends_with("/?replicaSet=rs0"));
    let mut p = Client::connect(rs.member(0).unwrap().address()).await;
    let mut s = Client::connect(rs.member(1).unwrap().address()).await;
    let hp = p.command("admin", doc! { "hello": 1 }).await;
    assert_eq!(hp.get_str("setName").ok(), Some("rs0"));
    assert_eq!(hp.get_bool("isWritablePrimary").ok(), Some(true));
    assert_eq!(hp.get_array("hosts").unwrap().len(), 3);
    let election1 = hp.get_object_id("electionId").unwrap();
    let hs = s.command("admin", doc! { "hello": 1 }).await;
    assert_eq!(hs.get_bool("secondary").ok(), Some(true));
    assert_eq!(hs.get_str("primary").ok(), Some(rs.hosts()[0].as_str()));
    let tv = hs.get_document("topologyVersion").unwrap().clone();

    // Writes on the primary are read on the secondary; the secondary refuses writes.
    assert!(ok(&p
        .command("d", doc! { "insert": "c", "documents": [{ "_id": 1 }] })
        .await));
    let read = s
        .command(
            "d",
            doc! { "find": "c", "$readPreference": { "mode": "secondaryPreferred" } },
        )
        .await;
    assert_eq!(
        read.get_document("cursor")
            .unwrap()
            .get_array("firstBatch")
            .unwrap()
            .len(),
        1
    );
    assert_eq!(code(&s.command("d", doc! { "find": "c" }).await), 13435);
    let refused = s
        .command("d", doc! { "insert": "c", "documents": [{ "_id": 2 }] })
        .await;
    assert_eq!(code(&refused), 10107);
    assert_eq!(refused.get_str("errmsg").ok(), Some("not primary"));

    // Awaitable hello with an old topologyVersion answers at once; with the current one it
    // waits for maxAwaitTimeMS.
    let start = Instant::now();
    s.command(
        "admin",
        doc! { "hello": 1, "topologyVersion": tv.clone(), "maxAwaitTimeMS": 200 },
    )
    .await;
    assert!(start.elapsed() >= Duration::from_millis(190));

    // Streaming hello on member 2, then a step-down through the command on the primary.
    let mut m = Client::connect(rs.member(2).unwrap().address()).await;
    let tv2 = m
        .command("admin", doc! { "hello": 1 })
        .await
        .get_document("topologyVersion")
        .unwrap()
        .clone();
    let stream = OpMsg::new(RawDocumentBuf::try_from(&doc! { "hello": 1, "topologyVersion": tv2.clone(), "maxAwaitTimeMS": 10_000, "$db": "admin" }).unwrap())
        .with_flags(MsgFlags::EXHAUST_ALLOWED);
    let req = m.send(&stream).await.unwrap();

    let stepped = p.command("admin", doc! { "replSetStepDown": 60 }).await;
    assert!(ok(&stepped), "{stepped}");
    assert_eq!(rs.primary_index(), Some(1));
    let pushed = tokio::time::timeout(Duration::from_secs(5), m.receive())
        .await
        .unwrap()
        .unwrap();
    assert!(m.last_flags.contains(MsgFlags::MORE_TO_COME));
    assert_eq!(m.last_response_to, req);
    assert_eq!(pushed.get_str("primary").ok(), Some(rs.hosts()[1].as_str()));
    let counter = pushed
        .get_document("topologyVersion")
        .unwrap()
        .get_i64("counter")
        .unwrap();
    assert!(counter > tv2.get_i64("counter").unwrap());

    let hs = s.command("admin", doc! { "hello": 1 }).await;
    assert_eq!(hs.get_bool("isWritablePrimary").ok(), Some(true));
    assert!(hs.get_object_id("electionId").unwrap() > election1);
    assert_eq!(
        code(
            &p.command("d", doc! { "insert": "c", "documents": [{ "_id": 3 }] })
                .await
        ),
        10107
    );
    assert!(ok(&s
        .command("d", doc! { "insert": "c", "documents": [{ "_id": 3 }] })
        .await));

    // A later change is streamed too, without a new request.
    rs.elect(2).unwrap();
    let next = tokio::time::timeout(Duration::from_secs(5), m.receive())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.get_bool("isWritablePrimary").ok(), Some(true));

    // Stop and restart a member on the same port.
    rs.stop_member(0).await.unwrap();
    assert!(
        tokio::net::TcpStream::connect(rs.member(0).unwrap().address())
            .await
            .is_err()
    );
    rs.restart_member(0).await.unwrap();
    let mut back = Client::connect(rs.member(0).unwrap().address()).await;
    assert_eq!(
        back.command("admin", doc! { "hello": 1 })
            .await
            .get_bool("secondary")
            .ok(),
        Some(true)
    );
    assert_eq!(rs.step_down().unwrap(), 0);
}
