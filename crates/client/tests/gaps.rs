//! Client features the testkit could not serve before: legacy write opcodes with
//! getLastError, MONGODB-X509 authentication, and load-balanced mode.
#![allow(
    clippy::disallowed_methods,
    reason = "integration tests and benchmarks own their clock and tasks"
)]

use std::sync::Arc;
use std::time::Duration;

use bson::{Bson, doc};
use mongo_client::conn::{ConnectionOptions, LegacyWrite};
use mongo_client::event::cmap::CmapEvent;
use mongo_client::event::{ConnectionId, EventRecorder, Generation, Listeners, ServerAddress};
use mongo_client::{Client, ClientOptions, Connection, ErrorKind, FindOptions};
use mongo_testkit::{ServerOptions, TestCerts, TestServer, generate_test_certs};

fn address(server: &TestServer) -> ServerAddress {
    ServerAddress::parse(&server.host_port()).unwrap()
}

async fn connect(server: &TestServer, options: ConnectionOptions) -> Connection {
    Connection::connect(
        address(server),
        ConnectionId(1),
        Generation(0),
        Arc::new(options),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn legacy_writes_with_and_without_get_last_error() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let mut conn = connect(&server, ConnectionOptions::default()).await;
    let gle = Some(doc! {});

    // Unacknowledged: nothing comes back, the write still lands.
    let none = conn
        .legacy_write(
            "db",
            "c",
            LegacyWrite::Insert {
                documents: vec![doc! {"_id": 1, "x": 1}, doc! {"_id": 2, "x": 1}],
                continue_on_error: false,
            },
            None,
        )
        .await
        .unwrap();
    assert!(none.is_none());
    assert!(conn.is_reusable());
    // Acknowledged insert.
    let reply = conn
        .legacy_write(
            "db",
            "c",
            LegacyWrite::Insert {
                documents: vec![doc! {"_id": 3, "x": 2}],
                continue_on_error: false,
            },
            gle.clone(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.get("err"), Some(&Bson::Null), "{reply}");
    let found = conn
        .command("db", doc! {"find": "c", "filter": {}, "sort": {"_id": 1}})
        .await
        .unwrap();
    let batch = found
        .get_document("cursor")
        .unwrap()
        .get_array("firstBatch")
        .unwrap();
    assert_eq!(batch.len(), 3);

    // A duplicate key is reported through getLastError as an error with its code.
    let err = conn
        .legacy_write(
            "db",
            "c",
            LegacyWrite::Insert {
                documents: vec![doc! {"_id": 1}],
                continue_on_error: false,
            },
            gle.clone(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(11000), "{err:?}");
    assert!(conn.is_reusable(), "a write error keeps the connection");

    // Multi update, acknowledged.
    let reply = conn
        .legacy_write(
            "db",
            "c",
            LegacyWrite::Update {
                selector: doc! {"x": 1},
                update: doc! {"$set": {"y": true}},
                upsert: false,
                multi: true,
            },
            gle.clone(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.get_i32("n").ok(), Some(2), "{reply}");
    assert_eq!(reply.get_bool("updatedExisting").ok(), Some(true));
    // Upsert, unacknowledged.
    conn.legacy_write(
        "db",
        "c",
        LegacyWrite::Update {
            selector: doc! {"_id": 10},
            update: doc! {"$set": {"x": 9}},
            upsert: true,
            multi: false,
        },
        None,
    )
    .await
    .unwrap();
    // The unacknowledged write has no reply: a round trip on the same connection orders it.
    conn.command("admin", doc! {"ping": 1}).await.unwrap();
    let docs = server.store().documents("db", "c");
    assert_eq!(docs.len(), 4);
    assert_eq!(docs.iter().filter(|d| d.get_bool("y").is_ok()).count(), 2);
    assert!(docs.contains(&doc! {"_id": 10, "x": 9}));

    // Single delete, acknowledged; then delete everything, unacknowledged.
    let reply = conn
        .legacy_write(
            "db",
            "c",
            LegacyWrite::Delete {
                selector: doc! {"x": 1},
                single: true,
            },
            gle.clone(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.get_i32("n").ok(), Some(1), "{reply}");
    assert_eq!(server.store().documents("db", "c").len(), 3);
    conn.legacy_write(
        "db",
        "c",
        LegacyWrite::Delete {
            selector: doc! {},
            single: false,
        },
        None,
    )
    .await
    .unwrap();
    let count = conn
        .command("db", doc! {"count": "c"})
        .await
        .unwrap()
        .get_i32("n")
        .unwrap();
    assert_eq!(count, 0);
}

#[tokio::test]
async fn x509_authentication_with_the_client_certificate() {
    let certs = generate_test_certs().unwrap();
    let server = TestServer::start(
        ServerOptions::default()
            .with_tls(certs.server_tls())
            .with_user("admin", "pw"),
    )
    .await
    .unwrap();
    let base = format!(
        "mongodb://localhost:{}/?directConnection=true&tls=true&tlsCAFile={}&serverSelectionTimeoutMS=2000&authMechanism=MONGODB-X509",
        server.address().port(),
        certs.ca_cert.display(),
    );
    let uri = format!(
        "{base}&tlsCertificateKeyFile={}",
        certs.client_pem.display()
    );
    let client = Client::with_uri_str(&uri).await.unwrap();
    client
        .database("db")
        .collection("c")
        .insert_one(doc! {"a": 1})
        .await
        .unwrap();
    let status = client
        .run_command("admin", doc! {"connectionStatus": 1})
        .await
        .unwrap();
    let users = status
        .get_document("authInfo")
        .unwrap()
        .get_array("authenticatedUsers")
        .unwrap();
    assert_eq!(
        users.first().and_then(Bson::as_document),
        Some(&doc! {"user": TestCerts::CLIENT_SUBJECT, "db": "$external"})
    );

    // The subject given explicitly as the user name works too (URL-encoded).
    let named = format!(
        "mongodb://{}@localhost:{}/?directConnection=true&tls=true&tlsCAFile={}&serverSelectionTimeoutMS=2000&authMechanism=MONGODB-X509&tlsCertificateKeyFile={}",
        TestCerts::CLIENT_SUBJECT
            .replace('=', "%3D")
            .replace(',', "%2C"),
        server.address().port(),
        certs.ca_cert.display(),
        certs.client_pem.display(),
    );
    let client = Client::with_uri_str(&named).await.unwrap();
    client.run_command("db", doc! {"count": "c"}).await.unwrap();

    // Without a certificate the server refuses with code 18.
    let client = Client::with_uri_str(&base).await.unwrap();
    let err = client
        .run_command("db", doc! {"count": "c"})
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Auth(_)), "{err:?}");
    assert_eq!(err.code(), Some(18), "{err:?}");
    let _ = std::fs::remove_dir_all(&certs.dir);
}

#[tokio::test]
async fn load_balanced_mode_pins_cursors_and_runs_no_monitor() {
    let server = TestServer::start(ServerOptions::default().with_load_balancer())
        .await
        .unwrap();
    let recorder = EventRecorder::shared();
    let mut listeners = Listeners::new();
    listeners.add_all(recorder.clone());
    let uri = format!(
        "mongodb://{}/?loadBalanced=true&serverSelectionTimeoutMS=2000",
        server.host_port()
    );
    let client = Client::builder()
        .options(ClientOptions::parse(&uri).unwrap())
        .listeners(listeners)
        .build()
        .await
        .unwrap();
    let coll = client.database("db").collection("c");
    coll.insert_many((0..5).map(|i| doc! {"i": i}))
        .await
        .unwrap();
    client.run_command("admin", doc! {"ping": 1}).await.unwrap();

    let checked_out = |r: &EventRecorder| {
        r.cmap_events()
            .iter()
            .filter(|e| matches!(e, CmapEvent::ConnectionCheckedOut(_)))
            .count()
    };
    let checked_in = |r: &EventRecorder| {
        r.cmap_events()
            .iter()
            .filter(|e| matches!(e, CmapEvent::ConnectionCheckedIn(_)))
            .count()
    };
    let before = checked_out(&recorder);
    let mut cursor = coll
        .find(doc! {}, FindOptions::default().batch_size(2))
        .await
        .unwrap();
    assert!(
        cursor.is_pinned(),
        "a load-balanced cursor pins its connection"
    );
    assert_eq!(
        checked_out(&recorder),
        checked_in(&recorder) + 1,
        "the pinned connection is still out: {:?}",
        recorder.cmap_names()
    );
    let mut seen = 0;
    while let Some(_d) = cursor.try_next().await.unwrap() {
        seen += 1;
    }
    assert_eq!(seen, 5);
    assert!(!cursor.is_pinned(), "an exhausted cursor unpins");
    drop(cursor);
    // Give a possible asynchronous check-in a moment.
    for _ in 0..50 {
        if checked_out(&recorder) == checked_in(&recorder) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(checked_out(&recorder), checked_in(&recorder));
    // The getMores went over the pinned connection: one check-out for the find, no more.
    assert_eq!(checked_out(&recorder), before + 1);
    let names = recorder.cmap_names();
    assert!(names.contains(&"ConnectionReady"), "{names:?}");
    // No monitoring in load-balanced mode: no heartbeats at all.
    assert!(
        recorder.heartbeat_events().is_empty(),
        "{:?}",
        recorder.heartbeat_events()
    );
}

#[tokio::test]
async fn load_balanced_connection_requires_a_service_id() {
    let lb = TestServer::start(ServerOptions::default().with_load_balancer())
        .await
        .unwrap();
    let mut options = ConnectionOptions::default();
    options.load_balanced = true;
    let conn = connect(&lb, options.clone()).await;
    assert!(conn.service_id().is_some());

    // A server that is not behind a load balancer reports no serviceId: refused.
    let plain = TestServer::start(ServerOptions::default()).await.unwrap();
    let result = Connection::connect(
        address(&plain),
        ConnectionId(2),
        Generation(0),
        Arc::new(options),
    )
    .await;
    let Err(err) = result else {
        panic!("no serviceId must fail the handshake");
    };
    assert!(format!("{err}").contains("serviceId"), "{err}");
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
