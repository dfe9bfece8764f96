//! `Connection` on its own, TLS, and retryable writes, against the testkit server.
#![allow(
    clippy::disallowed_methods,
    reason = "integration tests and benchmarks own their clock and tasks"
)]

use std::sync::Arc;
use std::time::Duration;

use bson::doc;
use mongo_client::conn::ConnectionOptions;
use mongo_client::event::command::CommandEvent;
use mongo_client::event::{ConnectionId, EventRecorder, Generation, Listeners, ServerAddress};
use mongo_client::{Client, ClientOptions, Connection, ErrorKind};
use mongo_testkit::{ReplicaSet, ServerOptions, TestServer, generate_test_certs};

fn address(server: &TestServer) -> ServerAddress {
    ServerAddress::parse(&server.host_port()).unwrap()
}

#[tokio::test]
async fn connection_commands_write_command_and_check_auth() {
    let server = TestServer::start(ServerOptions::default().with_user("app", "pw"))
        .await
        .unwrap();
    let mut options = ConnectionOptions::default();
    options.compressors = vec![mongo_client::Compressor::Zstd];
    let mut conn = Connection::connect(
        address(&server),
        ConnectionId(1),
        Generation(0),
        Arc::new(options),
    )
    .await
    .unwrap();
    assert_eq!(conn.compressor(), Some(mongo_client::Compressor::Zstd));
    assert!(conn.hello().max_wire_version >= 6);
    conn.command("admin", doc! {"ping": 1}).await.unwrap();
    // Not logged in yet: writes are refused.
    let err = conn
        .write_command(
            "db",
            doc! {"insert": "c"},
            "documents",
            vec![doc! {"a": 1}],
            true,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(13));
    assert!(conn.is_reusable(), "a command error keeps the connection");

    // check_auth brings the connection up to date with the client's credentials.
    let cred = mongo_client::Credential::builder()
        .username("app")
        .password("pw")
        .build()
        .unwrap();
    conn.check_auth(std::slice::from_ref(&cred)).await.unwrap();
    assert!(conn.credential_set().has(&cred));
    let reply = conn
        .write_command(
            "db",
            doc! {"insert": "c"},
            "documents",
            vec![doc! {"a": 1}, doc! {"a": 2}],
            true,
        )
        .await
        .unwrap();
    assert_eq!(reply.get_i32("n").ok(), Some(2));
    // Asking again is a no-op; an empty set logs out.
    conn.check_auth(std::slice::from_ref(&cred)).await.unwrap();
    conn.check_auth(&[]).await.unwrap();
    assert!(conn.credential_set().is_empty());

    // A network error closes the connection for good.
    server.stop().await;
    let err = conn.command("admin", doc! {"ping": 1}).await.unwrap_err();
    assert!(err.is_network_error(), "{err:?}");
    assert!(conn.is_broken() && !conn.is_reusable());
}

#[tokio::test]
async fn wrong_password_fails_the_handshake() {
    let server = TestServer::start(ServerOptions::default().with_user("app", "pw"))
        .await
        .unwrap();
    let mut options = ConnectionOptions::default();
    options.credential = Some(
        mongo_client::Credential::builder()
            .username("app")
            .password("nope")
            .build()
            .unwrap(),
    );
    let err = Connection::connect(
        address(&server),
        ConnectionId(1),
        Generation(0),
        Arc::new(options),
    )
    .await
    .unwrap_err();
    assert!(err.is_auth_error(), "{err:?}");
}

#[tokio::test]
async fn tls_with_ca_client_certificate_and_invalid_certificates_allowed() {
    let certs = generate_test_certs().unwrap();
    let server = TestServer::start(ServerOptions::default().with_tls(certs.server_tls()))
        .await
        .unwrap();
    let base = format!(
        "mongodb://localhost:{}/?directConnection=true&tls=true",
        server.address().port()
    );

    // Trusting the test CA, with a client certificate.
    let uri = format!(
        "{base}&tlsCAFile={}&tlsCertificateKeyFile={}",
        certs.ca_cert.display(),
        certs.client_pem.display()
    );
    let client = Client::with_uri_str(&uri).await.unwrap();
    client.run_command("admin", doc! {"ping": 1}).await.unwrap();
    client.shutdown().await;

    // The webpki roots do not know the test CA: selection fails with the TLS error inside.
    let uri = format!(
        "{base}&serverSelectionTimeoutMS=500&tlsCertificateKeyFile={}",
        certs.client_pem.display()
    );
    let client = Client::with_uri_str(&uri).await.unwrap();
    let err = client
        .run_command("admin", doc! {"ping": 1})
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::ServerSelection(_)),
        "{err:?}"
    );
    client.shutdown().await;

    // tlsAllowInvalidCertificates accepts it.
    let uri = format!(
        "{base}&tlsAllowInvalidCertificates=true&tlsCertificateKeyFile={}",
        certs.client_pem.display()
    );
    let client = Client::with_uri_str(&uri).await.unwrap();
    client.run_command("admin", doc! {"ping": 1}).await.unwrap();
    client.shutdown().await;

    // A CA file that does not exist is a configuration error.
    let err = Client::with_uri_str(&format!("{base}&tlsCAFile=/no/such/file.pem"))
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::TlsConfig(_)), "{err:?}");
    let _ = std::fs::remove_dir_all(&certs.dir);
}

#[tokio::test]
async fn retryable_write_is_retried_once_with_the_same_txn_number() {
    let rs = ReplicaSet::start("rs1", 2).await.unwrap();
    let recorder = EventRecorder::shared();
    let mut listeners = Listeners::new();
    listeners.add_all(recorder.clone());
    let uri = format!("{}&heartbeatFrequencyMS=500", rs.uri());
    let client = Client::builder()
        .options(ClientOptions::parse(&uri).unwrap())
        .listeners(listeners)
        .build()
        .await
        .unwrap();
    let coll = client.database("db").collection("retry");
    coll.insert_one(doc! {"warm": true}).await.unwrap();
    let primary = rs.primary().unwrap();
    primary
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": {"times": 1},
            "data": {"failCommands": ["insert"], "errorCode": 189,
                     "errorLabels": ["RetryableWriteError"]},
        })
        .unwrap();
    recorder.clear();
    coll.insert_one(doc! {"x": 1}).await.unwrap();
    let inserts: Vec<_> = recorder
        .command_events()
        .into_iter()
        .filter_map(|e| match e {
            CommandEvent::Started(s) if s.command_name == "insert" => Some(s.command),
            _ => None,
        })
        .collect();
    assert_eq!(inserts.len(), 2, "one retry");
    assert_eq!(inserts[0].get("txnNumber"), inserts[1].get("txnNumber"));
    assert!(inserts[0].contains_key("lsid"));

    // A non-retryable error is not retried.
    primary
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": {"times": 1},
            "data": {"failCommands": ["insert"], "errorCode": 2},
        })
        .unwrap();
    recorder.clear();
    let err = coll.insert_one(doc! {"x": 2}).await.unwrap_err();
    assert_eq!(err.code(), Some(2));
    let n = recorder
        .command_events()
        .iter()
        .filter(|e| matches!(e, CommandEvent::Started(s) if s.command_name == "insert"))
        .count();
    assert_eq!(n, 1);
    tokio::time::sleep(Duration::from_millis(10)).await;
    client.shutdown().await;
}
