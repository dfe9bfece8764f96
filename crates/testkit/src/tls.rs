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
    /// Client certificate (PEM; subject, in RFC 2253 form, `O=mongo-rs,OU=testkit,CN=client`,
    /// see [`TestCerts::CLIENT_SUBJECT`]).
    pub client_cert: PathBuf,
    /// Client private key (PEM, PKCS#8).
    pub client_key: PathBuf,
    /// Client certificate and key concatenated in one PEM file (the `tlsCertificateKeyFile`
    /// form).
    pub client_pem: PathBuf,
}

impl TestCerts {
    /// The client certificate's subject in RFC 2253 form: the MONGODB-X509 user name.
    pub const CLIENT_SUBJECT: &'static str = "O=mongo-rs,OU=testkit,CN=client";

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
    generate_test_certs_for(dir, &[])
}

/// Like [`generate_test_certs_in`], with more names the server certificate is valid for
/// (besides `localhost` and `127.0.0.1`): for example the host names a test DNS zone gives
/// the servers.
///
/// # Errors
/// As [`generate_test_certs`].
pub fn generate_test_certs_for(dir: &Path, extra_names: &[&str]) -> Result<TestCerts, Error> {
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

    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    names.extend(extra_names.iter().map(|n| (*n).to_string()));
    let mut server = CertificateParams::new(names).map_err(cert_err)?;
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

/// One DER TLV: tag, contents, and what follows. `None` on malformed input.
fn der_next(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, rest) = rest.split_at(n);
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (content, rest) = rest.split_at(len);
    Some((tag, content, rest))
}

/// Short names RFC 2253 (and RFC 4514) give attribute types; others print as dotted OIDs.
fn attribute_name(oid: &[u8]) -> Option<&'static str> {
    Some(match oid {
        [0x55, 0x04, 0x03] => "CN",
        [0x55, 0x04, 0x06] => "C",
        [0x55, 0x04, 0x07] => "L",
        [0x55, 0x04, 0x08] => "ST",
        [0x55, 0x04, 0x09] => "STREET",
        [0x55, 0x04, 0x0a] => "O",
        [0x55, 0x04, 0x0b] => "OU",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01] => "UID",
        _ => return None,
    })
}

fn dotted_oid(oid: &[u8]) -> Option<String> {
    let (&first, rest) = oid.split_first()?;
    let mut parts = vec![u64::from(first / 40), u64::from(first % 40)];
    let mut acc: u64 = 0;
    for &b in rest {
        acc = acc.checked_mul(128)? | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            parts.push(acc);
            acc = 0;
        }
    }
    Some(
        parts
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// Escapes an attribute value as RFC 2253 section 2.4 asks.
fn escape_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn attribute(atv: &[u8]) -> Option<String> {
    let (tag, seq, _) = der_next(atv)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, oid, rest) = der_next(seq)?;
    if tag != 0x06 {
        return None;
    }
    let (vtag, value, _) = der_next(rest)?;
    let name = match attribute_name(oid) {
        Some(n) => n.to_string(),
        None => dotted_oid(oid)?,
    };
    // UTF8String, PrintableString, IA5String, TeletexString (read as Latin-ish bytes).
    let text = match vtag {
        0x0c | 0x13 | 0x16 | 0x14 => Some(String::from_utf8_lossy(value).into_owned()),
        _ => None,
    };
    Some(match text {
        Some(t) => format!("{name}={}", escape_value(&t)),
        None => {
            let hex: String = [vtag]
                .iter()
                .chain(std::iter::once(
                    &u8::try_from(value.len()).ok().filter(|l| *l < 0x80)?,
                ))
                .chain(value)
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("{name}=#{hex}")
        }
    })
}

/// The subject of a DER certificate as an RFC 2253 string (last RDN first, multi-valued RDNs
/// joined with `+`), the user name MONGODB-X509 authenticates. `None` when the certificate
/// cannot be read.
pub(crate) fn subject_rfc2253(cert: &[u8]) -> Option<String> {
    let (tag, certificate, _) = der_next(cert)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, tbs, _) = der_next(certificate)?;
    if tag != 0x30 {
        return None;
    }
    let mut rest = tbs;
    let (tag, _, after) = der_next(rest)?;
    if tag == 0xa0 {
        rest = after; // explicit version
    }
    // serialNumber, signature, issuer, validity, then subject.
    for _ in 0..4 {
        rest = der_next(rest)?.2;
    }
    let (tag, mut name, _) = der_next(rest)?;
    if tag != 0x30 {
        return None;
    }
    let mut rdns = Vec::new();
    while !name.is_empty() {
        let (tag, set, next) = der_next(name)?;
        if tag != 0x31 {
            return None;
        }
        let mut atvs = Vec::new();
        let mut s = set;
        while !s.is_empty() {
            let (_, _, after) = der_next(s)?;
            let len = s.len().checked_sub(after.len())?;
            atvs.push(attribute(s.get(..len)?)?);
            s = after;
        }
        rdns.push(atvs.join("+"));
        name = next;
    }
    rdns.reverse();
    Some(rdns.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_of_the_generated_client_certificate() {
        let certs = generate_test_certs().unwrap();
        let der = read_certs(&certs.client_cert).unwrap();
        let subject = subject_rfc2253(der[0].as_ref()).unwrap();
        assert_eq!(subject, "O=mongo-rs,OU=testkit,CN=client");
        let _ = std::fs::remove_dir_all(&certs.dir);
    }

    #[test]
    fn malformed_certificates_give_none() {
        assert_eq!(subject_rfc2253(&[]), None);
        assert_eq!(subject_rfc2253(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(subject_rfc2253(&[0x30, 0x03, 0x30, 0x01]), None);
    }

    #[test]
    fn values_are_escaped() {
        assert_eq!(escape_value(" a,b "), "\\ a\\,b\\ ");
        assert_eq!(dotted_oid(&[0x2a, 0x86, 0x48]).as_deref(), Some("1.2.840"));
    }
}
