//! MONGODB-X509 authentication from a TLS client certificate, also speculative in hello.

mod common;

use std::sync::Arc;

use bson::doc;
use common::{Client, code, ok};
use mongo_testkit::{ServerOptions, TestCerts, TestServer, generate_test_certs};

async fn tls_client(server: &TestServer, certs: &TestCerts, with_cert: bool) -> Client {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(&certs.ca_cert).unwrap();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = if with_cert {
        let pem = std::fs::read(&certs.client_pem).unwrap();
        let chain = rustls_pemfile::certs(&mut pem.as_slice())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = rustls_pemfile::private_key(&mut pem.as_slice())
            .unwrap()
            .unwrap();
        builder.with_client_auth_cert(chain, key).unwrap()
    } else {
        builder.with_no_client_auth()
    };
    let tcp = tokio::net::TcpStream::connect(server.address())
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    Client::over(Box::new(tls))
}

#[tokio::test]
async fn x509_authentication_uses_the_certificate_subject() {
    let certs = generate_test_certs().unwrap();
    let server = TestServer::start(
        ServerOptions::default()
            .with_tls(certs.server_tls())
            .with_user("admin", "pw"),
    )
    .await
    .unwrap();
    let x509 = doc! { "authenticate": 1, "mechanism": "MONGODB-X509" };

    // Without a client certificate: code 18, and commands stay refused.
    let mut anon = tls_client(&server, &certs, false).await;
    let r = anon.command("$external", x509.clone()).await;
    assert_eq!(code(&r), 18, "{r}");
    let r = anon.command("db", doc! { "find": "c" }).await;
    assert_eq!(code(&r), 13);

    // With one: the user is the subject in RFC 2253 form.
    let mut c = tls_client(&server, &certs, true).await;
    let r = c.command("admin", x509.clone()).await;
    assert_eq!(code(&r), 18, "only $external: {r}");
    let mut wrong = x509.clone();
    wrong.insert("user", "CN=someone-else");
    assert_eq!(code(&c.command("$external", wrong).await), 18);
    let mut named = x509.clone();
    named.insert("user", TestCerts::CLIENT_SUBJECT);
    let r = c.command("$external", named).await;
    assert!(ok(&r), "{r}");
    assert_eq!(r.get_str("user").ok(), Some(TestCerts::CLIENT_SUBJECT));
    assert!(ok(&c.command("db", doc! { "find": "c" }).await));

    // Speculative, in the handshake.
    let mut s = tls_client(&server, &certs, true).await;
    let mut spec = x509.clone();
    spec.insert("db", "$external");
    let hello = s
        .command(
            "admin",
            doc! { "hello": 1, "speculativeAuthenticate": spec },
        )
        .await;
    let sa = hello.get_document("speculativeAuthenticate").unwrap();
    assert_eq!(sa.get_str("user").ok(), Some(TestCerts::CLIENT_SUBJECT));
    assert!(ok(&s.command("db", doc! { "find": "c" }).await));
    let _ = std::fs::remove_dir_all(&certs.dir);
}
