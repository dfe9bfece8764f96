//! Authentication through the client: SCRAM (default, SCRAM-SHA-1, SCRAM-SHA-256) succeeding,
//! a wrong password and missing credentials failing cleanly, and MONGODB-X509 with the client
//! certificate.

use bson::{Bson, doc};
use mongo_client::{Client, ErrorKind};
use mongo_testkit::{ServerOptions, TestCerts, TestServer, generate_test_certs};

use crate::common::client_for;

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
