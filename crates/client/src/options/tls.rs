//! TLS and SOCKS5 proxy options: [`TlsOptions`] (`tls` and the `tls*` family) and
//! [`ProxyOptions`] (`proxyHost` and friends), with the URI options spec's conflict rules.

use std::fmt;

use crate::uri::UriError;

/// TLS options. `enabled` is `tls` (or its alias `ssl`).
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsOptions {
    /// `tls` / `ssl`. Unset means off for `mongodb://`, on for `mongodb+srv://`.
    pub enabled: Option<bool>,
    /// `tlsCAFile`: PEM file of trusted certificate authorities.
    pub ca_file: Option<String>,
    /// `tlsCertificateKeyFile`: PEM file with the client certificate and key.
    pub certificate_key_file: Option<String>,
    /// `tlsCertificateKeyFilePassword`: the key's password. Never printed by `Debug`.
    pub certificate_key_file_password: Option<String>,
    /// `tlsAllowInvalidCertificates`.
    pub allow_invalid_certificates: Option<bool>,
    /// `tlsAllowInvalidHostnames`.
    pub allow_invalid_hostnames: Option<bool>,
    /// `tlsInsecure`: relaxes both certificate and host name checks.
    pub insecure: Option<bool>,
    /// `tlsDisableOCSPEndpointCheck`.
    pub disable_ocsp_endpoint_check: Option<bool>,
    /// `tlsDisableCertificateRevocationCheck`.
    pub disable_certificate_revocation_check: Option<bool>,
}

impl TlsOptions {
    /// The URI options spec's conflicting pairs, checked on what is set.
    pub fn validate(&self) -> Result<(), UriError> {
        let pairs = [
            (
                self.insecure.is_some(),
                self.allow_invalid_certificates.is_some(),
                "tlsInsecure and tlsAllowInvalidCertificates",
            ),
            (
                self.insecure.is_some(),
                self.allow_invalid_hostnames.is_some(),
                "tlsInsecure and tlsAllowInvalidHostnames",
            ),
            (
                self.insecure.is_some(),
                self.disable_ocsp_endpoint_check.is_some(),
                "tlsInsecure and tlsDisableOCSPEndpointCheck",
            ),
            (
                self.insecure.is_some(),
                self.disable_certificate_revocation_check.is_some(),
                "tlsInsecure and tlsDisableCertificateRevocationCheck",
            ),
            (
                self.allow_invalid_certificates.is_some(),
                self.disable_ocsp_endpoint_check.is_some(),
                "tlsAllowInvalidCertificates and tlsDisableOCSPEndpointCheck",
            ),
            (
                self.allow_invalid_certificates.is_some(),
                self.disable_certificate_revocation_check.is_some(),
                "tlsAllowInvalidCertificates and tlsDisableCertificateRevocationCheck",
            ),
            (
                self.disable_ocsp_endpoint_check.is_some(),
                self.disable_certificate_revocation_check.is_some(),
                "tlsDisableOCSPEndpointCheck and tlsDisableCertificateRevocationCheck",
            ),
        ];
        for (a, b, what) in pairs {
            if a && b {
                return Err(UriError::Conflict(format!(
                    "{what} cannot both be specified"
                )));
            }
        }
        Ok(())
    }
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("enabled", &self.enabled)
            .field("ca_file", &self.ca_file)
            .field("certificate_key_file", &self.certificate_key_file)
            .field(
                "certificate_key_file_password",
                &self
                    .certificate_key_file_password
                    .as_ref()
                    .map(|_| "<redacted>"),
            )
            .field(
                "allow_invalid_certificates",
                &self.allow_invalid_certificates,
            )
            .field("allow_invalid_hostnames", &self.allow_invalid_hostnames)
            .field("insecure", &self.insecure)
            .field(
                "disable_ocsp_endpoint_check",
                &self.disable_ocsp_endpoint_check,
            )
            .field(
                "disable_certificate_revocation_check",
                &self.disable_certificate_revocation_check,
            )
            .finish()
    }
}

/// SOCKS5 proxy options (SOCKS5 support spec).
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyOptions {
    /// `proxyHost`: host name or address of the proxy.
    pub host: Option<String>,
    /// `proxyPort` (default 1080).
    pub port: Option<u16>,
    /// `proxyUsername`.
    pub username: Option<String>,
    /// `proxyPassword`. Never printed by `Debug`.
    pub password: Option<String>,
}

impl ProxyOptions {
    /// A proxy at `host` (port 1080 unless [`ProxyOptions::with_port`] says otherwise), no
    /// authentication.
    pub fn new(host: impl Into<String>) -> Self {
        ProxyOptions {
            host: Some(host.into()),
            ..ProxyOptions::default()
        }
    }

    /// Sets `proxyPort`.
    #[must_use]
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Sets `proxyUsername` and `proxyPassword` (username/password authentication, offered
    /// besides no authentication).
    #[must_use]
    pub fn with_credentials(
        mut self,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.username = Some(username.into());
        self.password = Some(password.into());
        self
    }

    /// The port to use: `proxyPort` or 1080.
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(1080)
    }

    /// Every other proxy option needs `proxyHost`; username and password go together.
    pub fn validate(&self) -> Result<(), UriError> {
        let conflict = |msg: &str| Err(UriError::Conflict(msg.to_owned()));
        if self.host.is_none() && (self.port.is_some() || self.username.is_some()) {
            return conflict("proxyPort and proxyUsername require proxyHost");
        }
        if self.host.is_none() && self.password.is_some() {
            return conflict("proxyPassword requires proxyHost");
        }
        if self.username.is_some() != self.password.is_some() {
            return conflict("proxyUsername and proxyPassword must be given together");
        }
        Ok(())
    }
}

impl fmt::Debug for ProxyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}
