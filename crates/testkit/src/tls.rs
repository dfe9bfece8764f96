//! TLS for the test server: certificate generation for tests and the rustls acceptor.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::Error;
use crate::options::TlsFiles;

/// PEM files of a generated test PKI: a CA, a server certificate for `localhost` and
/// `127.0.0.1`, and a client certificate, all signed by the CA.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TestCerts {
    /// The directory holding the files.
    pub dir: PathBuf,
    /// CA certificate (PEM) — the client's trust anchor.
    pub ca_cert: PathBuf,
    /// Server certificate chain (PEM: leaf then CA).
    pub server_cert: PathBuf,
    /// Server private key (PEM, PKCS#8).
    pub server_key: PathBuf,
    /// Client certificate (PEM, subject `CN=client,OU=testkit,O=mongo-rs`).
    pub client_cert: PathBuf,
    /// Client private key (PEM, PKCS#8).
    pub client_key: PathBuf,
    /// Client certificate and key concatenated in one PEM file (the `tlsCertificateKeyFile`
    /// form).
    pub client_pem: PathBuf,
}

impl TestCerts {
    /// The server side of these certificates, verifying client certificates against the CA.
    pub fn server_tls(&self) -> TlsFiles {
        TlsFiles::new(&self.server_cert, &self.server_key).with_client_ca(&self.ca_cert)
    }
}

fn cert_err(e: impl std::fmt::Display) -> Error {
    Error::CertGen(e.to_string())
}

/// Generates a fresh CA, server and client certificate into a new directory under the
/// system temp dir and returns the paths. The files stay until the caller removes `dir`.
///
/// # Errors
/// [`Error::CertGen`] when generation fails, [`Error::Io`] when the files cannot be written.
pub fn generate_test_certs() -> Result<TestCerts, Error> {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "mongo-testkit-certs-{}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir)?;
    generate_test_certs_in(&dir)
}

/// Like [`generate_test_certs`], into an existing directory.
///
/// # Errors
/// As [`generate_test_certs`].
pub fn generate_test_certs_in(dir: &Path) -> Result<TestCerts, Error> {
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "mongo-testkit test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().map_err(cert_err)?;
    let ca_cert = ca.self_signed(&ca_key).map_err(cert_err)?;

    let mut server = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .map_err(cert_err)?;
    server
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let server_key = KeyPair::generate().map_err(cert_err)?;
    let server_cert = server
        .signed_by(&server_key, &ca_cert, &ca_key)
        .map_err(cert_err)?;

    let mut client = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
    client.distinguished_name.push(DnType::CommonName, "client");
    client
        .distinguished_name
        .push(DnType::OrganizationalUnitName, "testkit");
    client
        .distinguished_name
        .push(DnType::OrganizationName, "mongo-rs");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    client.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let client_key = KeyPair::generate().map_err(cert_err)?;
    let client_cert = client
        .signed_by(&client_key, &ca_cert, &ca_key)
        .map_err(cert_err)?;

    let certs = TestCerts {
        dir: dir.to_path_buf(),
        ca_cert: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
        client_cert: dir.join("client.crt"),
        client_key: dir.join("client.key"),
        client_pem: dir.join("client.pem"),
    };
    std::fs::write(&certs.ca_cert, ca_cert.pem())?;
    std::fs::write(
        &certs.server_cert,
        format!("{}{}", server_cert.pem(), ca_cert.pem()),
    )?;
    std::fs::write(&certs.server_key, server_key.serialize_pem())?;
    std::fs::write(&certs.client_cert, client_cert.pem())?;
    std::fs::write(&certs.client_key, client_key.serialize_pem())?;
    std::fs::write(
        &certs.client_pem,
        format!("{}{}", client_cert.pem(), client_key.serialize_pem()),
    )?;
    Ok(certs)
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let data = std::fs::read(path)?;
    let certs = rustls_pemfile::certs(&mut data.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Tls(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::Tls(format!(
            "{}: no certificate found",
            path.display()
        )));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    let data = std::fs::read(path)?;
    rustls_pemfile::private_key(&mut data.as_slice())
        .map_err(|e| Error::Tls(format!("{}: {e}", path.display())))?
        .ok_or_else(|| Error::Tls(format!("{}: no private key found", path.display())))
}

/// Builds the rustls acceptor for the given files.
pub(crate) fn acceptor(files: &TlsFiles) -> Result<tokio_rustls::TlsAcceptor, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in read_certs(ca)? {
                roots.add(c).map_err(|e| Error::Tls(e.to_string()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .allow_unauthenticated()
            .build()
            .map_err(|e| Error::Tls(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(read_certs(&files.cert)?, read_key(&files.key)?)
        .map_err(|e| Error::Tls(e.to_string()))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
