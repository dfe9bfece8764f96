//! TLS with rustls: trusting a CA file, a client certificate, an unknown CA failing server
//! selection, tlsAllowInvalidCertificates, and a missing CA file as a configuration error.

use bson::doc;
use mongo_client::{Client, ErrorKind};
use mongo_testkit::{ServerOptions, TestServer, generate_test_certs};

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
