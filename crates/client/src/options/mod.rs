//! Typed client options: [`ClientOptions`], its builder and the value types its fields use.
//!
//! Every field is optional (`None` means "not set: the spec default applies"), so that a
//! connection string, a builder and the defaults can be layered. [`ClientOptions::parse`] fills
//! them from a connection string (see [`crate::uri`]); [`ClientOptionsBuilder`] fills them
//! from code. Both run the same cross-option validation ([`ClientOptions::validate`]).
//!
//! Durations given in milliseconds in the connection string (`connectTimeoutMS` and friends)
//! are [`Duration`]s here. Where the spec gives `0` a meaning ("no timeout", "no maximum"), the
//! field holds [`Duration::ZERO`] / `0` and the field's documentation says what it means.
//!
//! One vocabulary: each concept has one type, owned by the crate that owns the concept and
//! re-exported here, and each type parses its own URI spelling. [`ServerAddress`] and
//! [`HostKind`] come from `mongo-events`, [`Compressor`] from `mongo-wire`, [`Credential`] and
//! [`AuthMechanism`] from `mongo-auth`, [`ReadPreference`], [`ReadMode`], [`TagSet`] and
//! [`ServerMonitoringMode`] from `mongo-sdam`. Nothing is mapped by hand between layers.
//!
//! Options that parse but that the client cannot honour are refused when a client is built
//! with them (see [`ClientOptions::check_supported`]), naming the option: nothing set is
//! silently dropped.

use std::fmt;
use std::time::Duration;

mod concern;
mod resolver;
mod tls;

pub use concern::{Acknowledgment, WriteConcern};
pub use mongo_auth::{AuthMechanism, Credential};
pub use mongo_events::sdam::ReadMode;
pub use mongo_events::{DEFAULT_PORT, HostKind, ServerAddress};
pub use mongo_sdam::{ReadPreference, ServerMonitoringMode, TagSet};
pub use mongo_wire::Compressor;
pub use resolver::ResolverConfig;
pub use tls::{ProxyOptions, TlsOptions};

use crate::uri::{ConnectionString, UriError};

/// The longest application name the handshake accepts, in bytes (handshake spec).
pub const MAX_APP_NAME_LEN: usize = 128;

/// The options of a client: hosts, credential and every URI option, all typed.
///
/// Build one with [`ClientOptions::parse`] or [`ClientOptions::builder`].
#[derive(Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ClientOptions {
    /// The seed list. With `srv`, the single entry is the SRV name (a host name without a
    /// port), not a server.
    pub hosts: Vec<ServerAddress>,
    /// Whether the hosts came from a `mongodb+srv://` string: the client looks up the SRV
    /// and TXT records of the single host when it is built (initial DNS seedlist discovery)
    /// and, in a sharded cluster, rescans the SRV records while it runs.
    pub srv: bool,
    /// `srvServiceName`: the SRV service name (default `mongodb`). Only valid with `srv`.
    pub srv_service_name: Option<String>,
    /// `srvMaxHosts`: the most hosts to take from SRV records; `0` means no maximum.
    pub srv_max_hosts: Option<u32>,
    /// The credential, present when the string had user information (`@`) or an
    /// `authMechanism`; validated by `mongo-auth` when it was built.
    pub credential: Option<Credential>,
    /// `authSource` as the connection string (or code) gave it; the credential holds the
    /// source in effect. Kept so that a `mongodb+srv` TXT record's `authSource` applies only
    /// when none was given (a credential set with the builder counts as given).
    pub auth_source: Option<String>,
    /// Where the client's DNS questions go (`mongodb+srv` lookups, and every host name when
    /// name servers are given explicitly); the system configuration by default.
    pub resolver: ResolverConfig,
    /// The database named in the path of the connection string.
    pub default_database: Option<String>,
    /// `appname`: sent in the handshake's client metadata; at most 128 bytes.
    pub app_name: Option<String>,
    /// `compressors`: the compressors to offer, in order of preference (`zlib` at the level
    /// of `zlibCompressionLevel`).
    pub compressors: Option<Vec<Compressor>>,
    /// `zlibCompressionLevel`: -1 (library default) to 9; needs `zlib` among the compressors.
    pub zlib_compression_level: Option<i32>,
    /// `connectTimeoutMS`: TCP connect (and handshake) timeout; zero means no timeout.
    pub connect_timeout: Option<Duration>,
    /// `socketTimeoutMS`: per-read/write timeout; zero means no timeout.
    pub socket_timeout: Option<Duration>,
    /// `timeoutMS`: one deadline per operation, bounding server selection, connection
    /// check-out and the socket I/O of every attempt; zero means no timeout.
    pub timeout: Option<Duration>,
    /// `serverSelectionTimeoutMS`: how long server selection may wait.
    pub server_selection_timeout: Option<Duration>,
    /// `serverSelectionTryOnce`: a single-threaded drivers' mode the server selection spec
    /// forbids multi-threaded ones; `false` is what this client does, `true` is refused.
    pub server_selection_try_once: Option<bool>,
    /// `localThresholdMS`: the latency window of server selection.
    pub local_threshold: Option<Duration>,
    /// `heartbeatFrequencyMS`: the interval between monitor checks; at least 500 ms.
    pub heartbeat_frequency: Option<Duration>,
    /// `serverMonitoringMode`.
    pub server_monitoring_mode: Option<ServerMonitoringMode>,
    /// `directConnection`: connect to the single seed as a Single topology.
    pub direct_connection: Option<bool>,
    /// `loadBalanced`: the deployment is behind a load balancer.
    pub load_balanced: Option<bool>,
    /// `replicaSet`: the expected replica set name.
    pub replica_set: Option<String>,
    /// `readPreference`, `readPreferenceTags` and `maxStalenessSeconds`.
    pub read_preference: Option<ReadPreference>,
    /// `readConcernLevel`: any string (the server validates it); sent as `readConcern` with
    /// every read command that takes one.
    pub read_concern_level: Option<String>,
    /// `w`, `journal` and `wTimeoutMS`.
    pub write_concern: Option<WriteConcern>,
    /// `retryReads`.
    pub retry_reads: Option<bool>,
    /// `retryWrites`.
    pub retry_writes: Option<bool>,
    /// `maxPoolSize`: the most connections per server pool; `0` means no maximum.
    pub max_pool_size: Option<u32>,
    /// `minPoolSize`: connections each pool keeps open.
    pub min_pool_size: Option<u32>,
    /// `maxConnecting`: the most connections a pool establishes at once; positive.
    pub max_connecting: Option<u32>,
    /// `maxIdleTimeMS`: idle connections older than this are closed; zero means never.
    pub max_idle_time: Option<Duration>,
    /// `maxLifeTimeMS` (the Java driver's name; not in the URI spec): a connection older than
    /// this is closed when it is checked in or found idle, and replaced; zero or absent means
    /// connections live for ever.
    pub max_lifetime: Option<Duration>,
    /// A pooled connection idle at least this long is checked for a closed peer (a
    /// non-blocking read that sees end of stream or a reset) before it is handed out, and
    /// replaced if dead. Not a URI option; default one second (PyMongo's); zero checks every
    /// connection at every check-out.
    pub idle_check_threshold: Option<Duration>,
    /// `waitQueueTimeoutMS` (deprecated in favour of `timeoutMS`): checkout wait limit.
    pub wait_queue_timeout: Option<Duration>,
    /// `maxAdaptiveRetries`: the most retries of a command once an attempt failed with an
    /// overload error (client backpressure spec; default 2, `0` turns overload retries off).
    pub max_adaptive_retries: Option<u32>,
    /// `enableOverloadRetargeting`: a retry after an overload error avoids the server that
    /// sent it when another one is suitable (client backpressure spec; default `false`, as it
    /// can send `primaryPreferred` reads to secondaries).
    pub enable_overload_retargeting: Option<bool>,
    /// TLS options (`tls`/`ssl` and the `tls*` family).
    pub tls: TlsOptions,
    /// SOCKS5 proxy options (`proxyHost` and friends): every connection, monitoring
    /// included, goes through the proxy, which resolves the server's host name itself.
    pub proxy: ProxyOptions,
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Every field is printed; the secrets are redacted by the Debug impls of `Credential`,
        // `TlsOptions` and `ProxyOptions`.
        f.debug_struct("ClientOptions")
            .field("hosts", &self.hosts)
            .field("srv", &self.srv)
            .field("srv_service_name", &self.srv_service_name)
            .field("srv_max_hosts", &self.srv_max_hosts)
            .field("credential", &self.credential)
            .field("auth_source", &self.auth_source)
            .field("resolver", &self.resolver)
            .field("default_database", &self.default_database)
            .field("app_name", &self.app_name)
            .field("compressors", &self.compressors)
            .field("zlib_compression_level", &self.zlib_compression_level)
            .field("connect_timeout", &self.connect_timeout)
            .field("socket_timeout", &self.socket_timeout)
            .field("timeout", &self.timeout)
            .field("server_selection_timeout", &self.server_selection_timeout)
            .field("server_selection_try_once", &self.server_selection_try_once)
            .field("local_threshold", &self.local_threshold)
            .field("heartbeat_frequency", &self.heartbeat_frequency)
            .field("server_monitoring_mode", &self.server_monitoring_mode)
            .field("direct_connection", &self.direct_connection)
            .field("load_balanced", &self.load_balanced)
            .field("replica_set", &self.replica_set)
            .field("read_preference", &self.read_preference)
            .field("read_concern_level", &self.read_concern_level)
            .field("write_concern", &self.write_concern)
            .field("retry_reads", &self.retry_reads)
            .field("retry_writes", &self.retry_writes)
            .field("max_pool_size", &self.max_pool_size)
            .field("min_pool_size", &self.min_pool_size)
            .field("max_connecting", &self.max_connecting)
            .field("max_idle_time", &self.max_idle_time)
            .field("max_lifetime", &self.max_lifetime)
            .field("idle_check_threshold", &self.idle_check_threshold)
            .field("wait_queue_timeout", &self.wait_queue_timeout)
            .field("max_adaptive_retries", &self.max_adaptive_retries)
            .field(
                "enable_overload_retargeting",
                &self.enable_overload_retargeting,
            )
            .field("tls", &self.tls)
            .field("proxy", &self.proxy)
            .finish()
    }
}

impl ClientOptions {
    /// Parses a connection string into options. Warnings (unknown options, ignored invalid
    /// values) are logged with `tracing::warn!`; use [`ConnectionString::parse`] to get them.
    pub fn parse(uri: &str) -> Result<ClientOptions, UriError> {
        ConnectionString::parse(uri).map(|cs| cs.options)
    }

    /// A builder starting from no options at all.
    pub fn builder() -> ClientOptionsBuilder {
        ClientOptionsBuilder {
            options: ClientOptions::default(),
        }
    }

    /// Whether TLS is on: `tls`/`ssl` if given, otherwise on for `mongodb+srv`, off otherwise.
    /// TLS is never enabled implicitly by other `tls*` options.
    pub fn tls_enabled(&self) -> bool {
        self.tls.enabled.unwrap_or(self.srv)
    }

    /// Checks the rules that span several options: the ones the URI options, load balancer,
    /// SRV, SOCKS5, read preference, write concern and CMAP specs put on a whole client
    /// configuration. [`ClientOptions::parse`] and [`ClientOptionsBuilder::build`] call it.
    pub fn validate(&self) -> Result<(), UriError> {
        let conflict = |msg: &str| Err(UriError::Conflict(msg.to_owned()));
        if self.hosts.is_empty() {
            return Err(UriError::NoHosts);
        }
        if let Some(name) = &self.app_name
            && name.len() > MAX_APP_NAME_LEN
        {
            return Err(UriError::InvalidOption {
                option: "appname".to_owned(),
                reason: format!("{} bytes long, the limit is {MAX_APP_NAME_LEN}", name.len()),
            });
        }
        if self.direct_connection == Some(true) {
            if self.srv {
                return conflict("directConnection=true cannot be used with mongodb+srv");
            }
            if self.hosts.len() > 1 {
                return conflict("directConnection=true cannot be used with multiple hosts");
            }
        }
        if self.srv {
            if self.hosts.len() != 1 {
                return conflict("mongodb+srv requires exactly one host name");
            }
            if self
                .hosts
                .first()
                .is_some_and(|h| h.explicit_port().is_some() || h.kind() == HostKind::Unix)
            {
                return conflict("mongodb+srv requires a host name without a port");
            }
            if self.srv_max_hosts.is_some_and(|n| n > 0) && self.replica_set.is_some() {
                return conflict("srvMaxHosts cannot be used with replicaSet");
            }
        } else {
            if self.srv_service_name.is_some() {
                return conflict("srvServiceName requires mongodb+srv");
            }
            if self.srv_max_hosts.is_some() {
                return conflict("srvMaxHosts requires mongodb+srv");
            }
        }
        if self.load_balanced == Some(true) {
            if self.hosts.len() > 1 {
                return conflict("loadBalanced=true cannot be used with multiple hosts");
            }
            if self.replica_set.is_some() {
                return conflict("loadBalanced=true cannot be used with replicaSet");
            }
            if self.direct_connection == Some(true) {
                return conflict("loadBalanced=true cannot be used with directConnection=true");
            }
            if self.srv_max_hosts.is_some_and(|n| n > 0) {
                return conflict("loadBalanced=true cannot be used with a positive srvMaxHosts");
            }
        }
        if let (Some(min), Some(max)) = (self.min_pool_size, self.max_pool_size)
            && max != 0
            && min > max
        {
            return conflict("minPoolSize is greater than maxPoolSize");
        }
        if self.max_connecting == Some(0) {
            return Err(UriError::InvalidOption {
                option: "maxConnecting".to_owned(),
                reason: "must be positive".to_owned(),
            });
        }
        if let Some(level) = self.zlib_compression_level
            && !(-1..=9).contains(&level)
        {
            return Err(UriError::InvalidOption {
                option: "zlibCompressionLevel".to_owned(),
                reason: "must be between -1 and 9".to_owned(),
            });
        }
        if let Some(hb) = self.heartbeat_frequency
            && hb < Duration::from_millis(500)
        {
            return Err(UriError::InvalidOption {
                option: "heartbeatFrequencyMS".to_owned(),
                reason: "must be at least 500".to_owned(),
            });
        }
        if let Some(rp) = &self.read_preference {
            rp.validate()
                .map_err(|e| UriError::Conflict(format!("invalid read preference: {e}")))?;
            if rp
                .max_staleness
                .is_some_and(|d| d < mongo_sdam::SMALLEST_MAX_STALENESS)
            {
                return Err(UriError::InvalidOption {
                    option: "maxStalenessSeconds".to_owned(),
                    reason: "must be -1 or at least 90".to_owned(),
                });
            }
        }
        if let Some(wc) = &self.write_concern
            && wc.w == Some(Acknowledgment::Nodes(0))
            && wc.journal == Some(true)
        {
            return conflict("w=0 cannot be combined with journal=true");
        }
        self.tls.validate()?;
        self.proxy.validate()?;
        Ok(())
    }
}

impl ClientOptions {
    /// Refuses the options this client parses but cannot honour, naming the option and what
    /// to do instead. [`Client`](crate::Client) runs it before opening anything, so that no
    /// option a user set is silently dropped. Checked, in this order:
    ///
    /// - `serverSelectionTryOnce=true` (a single-threaded mode the server selection spec
    ///   forbids multi-threaded drivers; `false` is honoured: selection retries until
    ///   serverSelectionTimeoutMS);
    /// - an `authMechanism` whose conversation `mongo-auth` does not have (GSSAPI,
    ///   MONGODB-AWS, MONGODB-OIDC);
    /// - `tls*` options while TLS is off (they would change nothing);
    /// - `tlsCertificateKeyFilePassword` (encrypted keys are not supported);
    /// - `tlsDisableOCSPEndpointCheck=false` / `tlsDisableCertificateRevocationCheck=false`
    ///   (rustls does no OCSP or revocation checks, so they cannot be turned on; `true` is
    ///   what the client does anyway);
    /// - a compressor this build has no feature for, and `zlibCompressionLevel` without
    ///   `zlib` among the compressors.
    pub fn check_supported(&self) -> Result<(), UriError> {
        let refuse = |option: &str, reason: &str| {
            Err(UriError::Unsupported {
                option: option.to_owned(),
                reason: reason.to_owned(),
            })
        };
        if self.server_selection_try_once == Some(true) {
            return refuse(
                "serverSelectionTryOnce",
                "it is a single-threaded drivers' mode; this client keeps selecting until \
                 serverSelectionTimeoutMS (leave it out or set it to false)",
            );
        }
        if let Some(mechanism) = self.credential.as_ref().and_then(Credential::mechanism)
            && !mechanism.is_supported()
        {
            return refuse(
                "authMechanism",
                &format!("{mechanism} authentication is not implemented"),
            );
        }
        let tls = &self.tls;
        if !self.tls_enabled() {
            let set = [
                ("tlsCAFile", tls.ca_file.is_some()),
                ("tlsCertificateKeyFile", tls.certificate_key_file.is_some()),
                (
                    "tlsCertificateKeyFilePassword",
                    tls.certificate_key_file_password.is_some(),
                ),
                (
                    "tlsAllowInvalidCertificates",
                    tls.allow_invalid_certificates.is_some(),
                ),
                (
                    "tlsAllowInvalidHostnames",
                    tls.allow_invalid_hostnames.is_some(),
                ),
                ("tlsInsecure", tls.insecure.is_some()),
                (
                    "tlsDisableOCSPEndpointCheck",
                    tls.disable_ocsp_endpoint_check.is_some(),
                ),
                (
                    "tlsDisableCertificateRevocationCheck",
                    tls.disable_certificate_revocation_check.is_some(),
                ),
            ];
            if let Some((name, _)) = set.iter().find(|(_, set)| *set) {
                return refuse(
                    name,
                    "TLS is off, so it would change nothing (add tls=true)",
                );
            }
        }
        if tls.certificate_key_file_password.is_some() {
            return refuse(
                "tlsCertificateKeyFilePassword",
                "encrypted client keys are not supported; use an unencrypted PEM key",
            );
        }
        for (name, value) in [
            (
                "tlsDisableOCSPEndpointCheck",
                tls.disable_ocsp_endpoint_check,
            ),
            (
                "tlsDisableCertificateRevocationCheck",
                tls.disable_certificate_revocation_check,
            ),
        ] {
            if value == Some(false) {
                return refuse(
                    name,
                    "this client does no OCSP or revocation checks (rustls), so they cannot be \
                     turned on",
                );
            }
        }
        let compressors = self.compressors.as_deref().unwrap_or_default();
        if let Some(c) = compressors.iter().find(|c| !c.is_enabled()) {
            return refuse(
                "compressors",
                &format!(
                    "this build of mongo-client has the {} feature off",
                    c.name()
                ),
            );
        }
        if self.zlib_compression_level.is_some()
            && !compressors
                .iter()
                .any(|c| matches!(c, Compressor::Zlib { .. }))
        {
            return refuse(
                "zlibCompressionLevel",
                "zlib is not among the compressors (add compressors=zlib)",
            );
        }
        Ok(())
    }

    /// The compressors to offer, with `zlibCompressionLevel` applied to zlib.
    pub(crate) fn effective_compressors(&self) -> Vec<Compressor> {
        self.compressors
            .iter()
            .flatten()
            .map(|c| match (c, self.zlib_compression_level) {
                (Compressor::Zlib { .. }, Some(level)) => {
                    Compressor::zlib_with_level(level).unwrap_or(*c)
                }
                _ => *c,
            })
            .collect()
    }
}

/// Builds [`ClientOptions`] from code; [`ClientOptionsBuilder::build`] validates them.
#[derive(Clone, Debug)]
pub struct ClientOptionsBuilder {
    options: ClientOptions,
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, value: $ty) -> Self {
                self.options.$name = Some(value);
                self
            }
        )*
    };
}

macro_rules! string_setters {
    ($($(#[$doc:meta])* $name:ident;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, value: impl Into<String>) -> Self {
                self.options.$name = Some(value.into());
                self
            }
        )*
    };
}

impl ClientOptionsBuilder {
    /// Starts from options already parsed (for example from a connection string) so that
    /// code can override some of them.
    pub fn from_options(options: ClientOptions) -> Self {
        ClientOptionsBuilder { options }
    }

    /// Sets the seed list.
    pub fn hosts(mut self, hosts: impl IntoIterator<Item = ServerAddress>) -> Self {
        self.options.hosts = hosts.into_iter().collect();
        self
    }

    /// Adds one seed.
    pub fn host(mut self, host: ServerAddress) -> Self {
        self.options.hosts.push(host);
        self
    }

    /// Sets the TLS options.
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.options.tls = tls;
        self
    }

    /// Sets the SOCKS5 proxy options.
    pub fn proxy(mut self, proxy: ProxyOptions) -> Self {
        self.options.proxy = proxy;
        self
    }

    /// Sets where DNS questions go (see [`ResolverConfig`]).
    pub fn resolver(mut self, resolver: ResolverConfig) -> Self {
        self.options.resolver = resolver;
        self
    }

    /// Sets the credential. Its source counts as given: a `mongodb+srv` TXT record's
    /// `authSource` does not replace it.
    pub fn credential(mut self, credential: Credential) -> Self {
        self.options.auth_source = Some(credential.source().to_owned());
        self.options.credential = Some(credential);
        self
    }

    /// Sets `srvServiceName` (needs `mongodb+srv`).
    pub fn srv_service_name(mut self, name: impl Into<String>) -> Self {
        self.options.srv_service_name = Some(name.into());
        self
    }

    /// Sets `srvMaxHosts` (needs `mongodb+srv`; `0` means no maximum).
    pub fn srv_max_hosts(mut self, max: u32) -> Self {
        self.options.srv_max_hosts = Some(max);
        self
    }

    string_setters! {
        /// Sets the default database.
        default_database;
        /// Sets `appname`.
        app_name;
        /// Sets `replicaSet`.
        replica_set;
        /// Sets `readConcernLevel`.
        read_concern_level;
    }

    setters! {
        /// Sets `compressors`.
        compressors: Vec<Compressor>;
        /// Sets `zlibCompressionLevel`.
        zlib_compression_level: i32;
        /// Sets `connectTimeoutMS`.
        connect_timeout: Duration;
        /// Sets `socketTimeoutMS`.
        socket_timeout: Duration;
        /// Sets `timeoutMS`.
        timeout: Duration;
        /// Sets `serverSelectionTimeoutMS`.
        server_selection_timeout: Duration;
        /// Sets `localThresholdMS`.
        local_threshold: Duration;
        /// Sets `heartbeatFrequencyMS`.
        heartbeat_frequency: Duration;
        /// Sets `serverMonitoringMode`.
        server_monitoring_mode: ServerMonitoringMode;
        /// Sets `directConnection`.
        direct_connection: bool;
        /// Sets `loadBalanced`.
        load_balanced: bool;
        /// Sets the read preference.
        read_preference: ReadPreference;
        /// Sets the write concern.
        write_concern: WriteConcern;
        /// Sets `retryReads`.
        retry_reads: bool;
        /// Sets `retryWrites`.
        retry_writes: bool;
        /// Sets `maxPoolSize`.
        max_pool_size: u32;
        /// Sets `minPoolSize`.
        min_pool_size: u32;
        /// Sets `maxConnecting`.
        max_connecting: u32;
        /// Sets `maxIdleTimeMS`.
        max_idle_time: Duration;
        /// Sets `maxLifeTimeMS`.
        max_lifetime: Duration;
        /// Sets the idle time after which a connection is checked before check-out.
        idle_check_threshold: Duration;
        /// Sets `waitQueueTimeoutMS`.
        wait_queue_timeout: Duration;
        /// Sets `maxAdaptiveRetries`.
        max_adaptive_retries: u32;
        /// Sets `enableOverloadRetargeting`.
        enable_overload_retargeting: bool;
    }

    /// Validates and returns the options.
    pub fn build(self) -> Result<ClientOptions, UriError> {
        self.options.validate()?;
        Ok(self.options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str) -> ServerAddress {
        ServerAddress::tcp_with(host, None)
    }

    #[test]
    fn builder_sets_fields_and_validates() {
        let opts = ClientOptions::builder()
            .host(tcp("a"))
            .app_name("app")
            .max_pool_size(5)
            .min_pool_size(2)
            .connect_timeout(Duration::from_secs(3))
            .build()
            .unwrap();
        assert_eq!(opts.app_name.as_deref(), Some("app"));
        assert_eq!(opts.max_pool_size, Some(5));
        assert_eq!(opts.connect_timeout, Some(Duration::from_secs(3)));

        let err = ClientOptions::builder()
            .host(tcp("a"))
            .max_pool_size(1)
            .min_pool_size(2)
            .build()
            .unwrap_err();
        assert!(matches!(err, UriError::Conflict(_)), "{err}");
        assert!(ClientOptions::builder().build().is_err(), "no hosts");
    }

    #[test]
    fn builder_rejects_long_app_name_zero_max_connecting_and_bad_read_preferences() {
        let long = "x".repeat(MAX_APP_NAME_LEN + 1);
        assert!(
            ClientOptions::builder()
                .host(tcp("a"))
                .app_name(long)
                .build()
                .is_err()
        );
        assert!(
            ClientOptions::builder()
                .host(tcp("a"))
                .max_connecting(0)
                .build()
                .is_err()
        );
        let primary_with_staleness = ReadPreference::new(ReadMode::Primary)
            .with_max_staleness(Some(Duration::from_secs(120)));
        assert!(matches!(
            ClientOptions::builder()
                .host(tcp("a"))
                .read_preference(primary_with_staleness)
                .build(),
            Err(UriError::Conflict(_))
        ));
        let small = ReadPreference::new(ReadMode::Nearest)
            .with_max_staleness(Some(Duration::from_secs(60)));
        assert!(matches!(
            ClientOptions::builder()
                .host(tcp("a"))
                .read_preference(small)
                .build(),
            Err(UriError::InvalidOption { .. })
        ));
    }

    #[test]
    fn debug_never_prints_secrets() {
        let c = Credential::builder()
            .username("user")
            .password("hunter2")
            .build()
            .unwrap();
        let opts = ClientOptions {
            credential: Some(c),
            tls: TlsOptions {
                certificate_key_file_password: Some("hunter3".into()),
                ..TlsOptions::default()
            },
            proxy: ProxyOptions {
                host: Some("p".into()),
                username: Some("pu".into()),
                password: Some("hunter4".into()),
                ..ProxyOptions::default()
            },
            ..ClientOptions::default()
        };
        let shown = format!("{opts:?}");
        assert!(shown.contains("user"));
        for secret in ["hunter2", "hunter3", "hunter4"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn tls_enabled_defaults_by_scheme() {
        let mut opts = ClientOptions::default();
        assert!(!opts.tls_enabled());
        opts.srv = true;
        assert!(opts.tls_enabled());
        opts.tls.enabled = Some(false);
        assert!(!opts.tls_enabled());
    }

    #[test]
    fn zlib_level_applies_to_zlib_only() {
        let o = ClientOptions::parse("mongodb://h/?compressors=snappy,zlib&zlibCompressionLevel=4")
            .unwrap();
        assert_eq!(
            o.effective_compressors(),
            vec![Compressor::Snappy, Compressor::zlib_with_level(4).unwrap()]
        );
    }
}
