//! `Connection` on its own, the heir of PyMongo's SocketInfo: `command`, `write_command`,
//! `check_auth` bringing the connection's credential set up to date, a network error that
//! breaks it for good, and the handshake refusing a wrong password or a load-balanced server
//! without a serviceId.

use std::sync::Arc;

use bson::doc;
use mongo_client::event::Generation;
use mongo_client::{Compressor, Connection, ConnectionId, ConnectionOptions, Credential};
use mongo_testkit::{ServerOptions, TestServer};

use crate::common::{address, connect};

#[tokio::test]
async fn connection_commands_write_command_and_check_auth() {
    let server = TestServer::start(ServerOptions::default().with_user("app", "pw"))
        .await
        .unwrap();
    let mut options = ConnectionOptions::default();
    options.compressors = vec![Compressor::Zstd];
    let mut conn = connect(&server, options).await;
    assert_eq!(conn.compressor(), Some(Compressor::Zstd));
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
    let cred = Credential::builder()
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
        Credential::builder()
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
