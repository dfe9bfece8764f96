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

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use bson::Document;

use crate::uri::{ConnectionString, HostAddr, UriError};

/// The longest application name the handshake accepts, in bytes (handshake spec).
pub const MAX_APP_NAME_LEN: usize = 128;

/// The default port of a MongoDB server.
pub const DEFAULT_PORT: u16 = 27017;

/// The options of a client: hosts, credential and every URI option, all typed.
///
/// Build one with [`ClientOptions::parse`] or [`ClientOptions::builder`].
#[derive(Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ClientOptions {
    /// The seed list. With `srv`, the single entry is the SRV name (a [`HostAddr::Tcp`] with no
    /// port), not a server.
    pub hosts: Vec<HostAddr>,
    /// Whether the hosts came from a `mongodb+srv://` string. SRV and TXT lookups are NOT done
    /// by this crate yet: the seed list must be resolved by the caller before connecting.
    pub srv: bool,
    /// `srvServiceName`: the SRV service name (default `mongodb`). Only valid with `srv`.
    pub srv_service_name: Option<String>,
    /// `srvMaxHosts`: the most hosts to take from SRV records; `0` means no maximum.
    pub srv_max_hosts: Option<u32>,
    /// The credential, present when the string had user information (`@`) or an
    /// `authMechanism`.
    pub credential: Option<Credential>,
    /// The database named in the path of the connection string.
    pub default_database: Option<String>,
    /// `appname`: sent in the handshake's client metadata; at most 128 bytes.
    pub app_name: Option<String>,
    /// `compressors`: the compressors to offer, in order of preference.
    pub compressors: Option<Vec<Compressor>>,
    /// `zlibCompressionLevel`: -1 (library default) to 9.
    pub zlib_compression_level: Option<i32>,
    /// `connectTimeoutMS`: TCP connect (and handshake) timeout; zero means no timeout.
    pub connect_timeout: Option<Duration>,
    /// `socketTimeoutMS`: per-read/write timeout; zero means no timeout.
    pub socket_timeout: Option<Duration>,
    /// `timeoutMS`: client-side operation timeout; zero means no timeout.
    pub timeout: Option<Duration>,
    /// `serverSelectionTimeoutMS`: how long server selection may wait.
    pub server_selection_timeout: Option<Duration>,
    /// `serverSelectionTryOnce` (single-threaded drivers; kept for completeness).
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
    /// `readConcernLevel`: any string (the server validates it).
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
    /// `waitQueueTimeoutMS` (deprecated in favour of `timeoutMS`): checkout wait limit.
    pub wait_queue_timeout: Option<Duration>,
    /// `maxAdaptiveRetries`: the most overload retries (client backpressure spec).
    pub max_adaptive_retries: Option<u32>,
    /// `enableOverloadRetargeting` (client backpressure spec).
    pub enable_overload_retargeting: Option<bool>,
    /// TLS options (`tls`/`ssl` and the `tls*` family).
    pub tls: TlsOptions,
    /// SOCKS5 proxy options (`proxyHost` and friends).
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
            if let Some(HostAddr::Tcp { port: Some(_), .. }) | Some(HostAddr::Unix(_)) =
                self.hosts.first()
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
            rp.validate()?;
        }
        if let Some(wc) = &self.write_concern
            && wc.w == Some(Acknowledgment::Nodes(0))
            && wc.journal == Some(true)
        {
            return conflict("w=0 cannot be combined with journal=true");
        }
        self.tls.validate()?;
        self.proxy.validate()?;
        if let Some(cred) = &self.credential {
            cred.validate()?;
        }
        Ok(())
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
    pub fn hosts(mut self, hosts: impl IntoIterator<Item = HostAddr>) -> Self {
        self.options.hosts = hosts.into_iter().collect();
        self
    }

    /// Adds one seed.
    pub fn host(mut self, host: HostAddr) -> Self {
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
        /// Sets the credential.
        credential: Credential;
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

/// A compressor for OP_COMPRESSED (compression spec).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Compressor {
    /// Snappy.
    Snappy,
    /// zlib (level from `zlibCompressionLevel`).
    Zlib,
    /// Zstandard.
    Zstd,
}

impl Compressor {
    /// The name used in the connection string and in the handshake.
    pub fn name(self) -> &'static str {
        match self {
            Compressor::Snappy => "snappy",
            Compressor::Zlib => "zlib",
            Compressor::Zstd => "zstd",
        }
    }

    /// Parses a compressor name (case-insensitively).
    pub fn from_name(name: &str) -> Option<Compressor> {
        [Compressor::Snappy, Compressor::Zlib, Compressor::Zstd]
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }
}

/// `serverMonitoringMode` (SDAM monitoring spec).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServerMonitoringMode {
    /// Streaming where the runtime allows it (the default).
    Auto,
    /// Always polling.
    Poll,
    /// Streaming (awaitable hello) when the server supports it.
    Stream,
}

impl ServerMonitoringMode {
    /// The name used in the connection string.
    pub fn name(self) -> &'static str {
        match self {
            ServerMonitoringMode::Auto => "auto",
            ServerMonitoringMode::Poll => "poll",
            ServerMonitoringMode::Stream => "stream",
        }
    }

    /// Parses a mode name (exactly as the spec spells it).
    pub fn from_name(name: &str) -> Option<ServerMonitoringMode> {
        match name {
            "auto" => Some(ServerMonitoringMode::Auto),
            "poll" => Some(ServerMonitoringMode::Poll),
            "stream" => Some(ServerMonitoringMode::Stream),
            _ => None,
        }
    }
}

/// The mode of a read preference (server selection spec).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReadPreferenceMode {
    /// Only the primary.
    Primary,
    /// The primary if available, else a secondary.
    PrimaryPreferred,
    /// Only secondaries.
    Secondary,
    /// A secondary if available, else the primary.
    SecondaryPreferred,
    /// Any data-bearing member within the latency window.
    Nearest,
}

impl ReadPreferenceMode {
    /// The name used in the connection string (camelCase).
    pub fn name(self) -> &'static str {
        match self {
            ReadPreferenceMode::Primary => "primary",
            ReadPreferenceMode::PrimaryPreferred => "primaryPreferred",
            ReadPreferenceMode::Secondary => "secondary",
            ReadPreferenceMode::SecondaryPreferred => "secondaryPreferred",
            ReadPreferenceMode::Nearest => "nearest",
        }
    }

    /// Parses a mode name, ignoring ASCII case.
    pub fn from_name(name: &str) -> Option<ReadPreferenceMode> {
        [
            ReadPreferenceMode::Primary,
            ReadPreferenceMode::PrimaryPreferred,
            ReadPreferenceMode::Secondary,
            ReadPreferenceMode::SecondaryPreferred,
            ReadPreferenceMode::Nearest,
        ]
        .into_iter()
        .find(|m| m.name().eq_ignore_ascii_case(name))
    }
}

/// One tag set: every tag must match. The empty set matches any server.
pub type TagSet = BTreeMap<String, String>;

/// A read preference: mode, tag sets and maximum staleness.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadPreference {
    /// The mode.
    pub mode: ReadPreferenceMode,
    /// Tag sets, tried in order.
    pub tag_sets: Vec<TagSet>,
    /// `maxStalenessSeconds`; `None` means no maximum (also what `-1` in the URI means).
    pub max_staleness: Option<Duration>,
}

impl ReadPreference {
    /// A read preference with the given mode, no tags and no maximum staleness.
    pub fn new(mode: ReadPreferenceMode) -> Self {
        ReadPreference {
            mode,
            tag_sets: Vec::new(),
            max_staleness: None,
        }
    }

    /// Replaces the tag sets.
    pub fn with_tag_sets(mut self, tag_sets: Vec<TagSet>) -> Self {
        self.tag_sets = tag_sets;
        self
    }

    /// Sets the maximum staleness.
    pub fn with_max_staleness(mut self, max_staleness: Duration) -> Self {
        self.max_staleness = Some(max_staleness);
        self
    }

    /// Mode `primary` admits neither tags nor a maximum staleness (server selection and max
    /// staleness specs); a maximum staleness must be at least 90 seconds.
    pub fn validate(&self) -> Result<(), UriError> {
        if self.mode == ReadPreferenceMode::Primary {
            if self.tag_sets.iter().any(|t| !t.is_empty()) {
                return Err(UriError::Conflict(
                    "read preference mode primary cannot have tag sets".to_owned(),
                ));
            }
            if self.max_staleness.is_some() {
                return Err(UriError::Conflict(
                    "read preference mode primary cannot have maxStalenessSeconds".to_owned(),
                ));
            }
        }
        if self
            .max_staleness
            .is_some_and(|d| d < Duration::from_secs(90))
        {
            return Err(UriError::InvalidOption {
                option: "maxStalenessSeconds".to_owned(),
                reason: "must be -1 or at least 90".to_owned(),
            });
        }
        Ok(())
    }
}

/// The `w` of a write concern.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Acknowledgment {
    /// Acknowledged by this many members (`0` = unacknowledged).
    Nodes(u32),
    /// `"majority"`.
    Majority,
    /// A custom write concern name (a tag set defined on the replica set).
    Custom(String),
}

/// A write concern from `w`, `journal` and `wTimeoutMS`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteConcern {
    /// `w`.
    pub w: Option<Acknowledgment>,
    /// `journal` (the `j` field).
    pub journal: Option<bool>,
    /// `wTimeoutMS`; zero means no timeout.
    pub w_timeout: Option<Duration>,
}

impl WriteConcern {
    /// A write concern with only `w` set.
    pub fn with_w(w: Acknowledgment) -> Self {
        WriteConcern {
            w: Some(w),
            ..WriteConcern::default()
        }
    }
}

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

/// An authentication mechanism named by `authMechanism` (auth spec).
///
/// The client-side name of [`mongo_auth::AuthMechanism`], which owns the spec's names and
/// rules; convert with [`From`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMechanism {
    /// SCRAM-SHA-1.
    ScramSha1,
    /// SCRAM-SHA-256.
    ScramSha256,
    /// PLAIN (LDAP).
    Plain,
    /// GSSAPI (Kerberos).
    Gssapi,
    /// MONGODB-X509.
    MongoDbX509,
    /// MONGODB-AWS.
    MongoDbAws,
    /// MONGODB-OIDC.
    MongoDbOidc,
}

impl From<AuthMechanism> for mongo_auth::AuthMechanism {
    fn from(m: AuthMechanism) -> Self {
        match m {
            AuthMechanism::ScramSha1 => mongo_auth::AuthMechanism::ScramSha1,
            AuthMechanism::ScramSha256 => mongo_auth::AuthMechanism::ScramSha256,
            AuthMechanism::Plain => mongo_auth::AuthMechanism::Plain,
            AuthMechanism::Gssapi => mongo_auth::AuthMechanism::Gssapi,
            AuthMechanism::MongoDbX509 => mongo_auth::AuthMechanism::MongoDbX509,
            AuthMechanism::MongoDbAws => mongo_auth::AuthMechanism::MongoDbAws,
            AuthMechanism::MongoDbOidc => mongo_auth::AuthMechanism::MongoDbOidc,
        }
    }
}

impl AuthMechanism {
    /// Every mechanism.
    pub const ALL: [AuthMechanism; 7] = [
        AuthMechanism::ScramSha1,
        AuthMechanism::ScramSha256,
        AuthMechanism::Plain,
        AuthMechanism::Gssapi,
        AuthMechanism::MongoDbX509,
        AuthMechanism::MongoDbAws,
        AuthMechanism::MongoDbOidc,
    ];

    /// The mechanism's name as the server and the connection string spell it.
    pub fn name(self) -> &'static str {
        mongo_auth::AuthMechanism::from(self).as_str()
    }

    /// Parses a mechanism name, ignoring ASCII case.
    pub fn from_name(name: &str) -> Option<AuthMechanism> {
        AuthMechanism::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for AuthMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A credential as configured by the connection string or by code, with the auth spec's
/// defaults applied (source, GSSAPI `SERVICE_NAME`). `Debug` never prints the password.
///
/// The spec's rules (default sources, which mechanisms need or forbid a username, password or
/// properties) are `mongo-auth`'s: [`Credential::resolve`] and [`Credential::validate`] build a
/// [`mongo_auth::Credential`] and read its results back.
#[derive(Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Credential {
    /// The user name (for MONGODB-X509 it may be absent: the certificate's subject is used).
    pub username: Option<String>,
    /// The password.
    pub password: Option<String>,
    /// The database to authenticate against (the auth spec's "source"), defaults applied.
    pub source: Option<String>,
    /// The mechanism; `None` means negotiate (SCRAM-SHA-256 or SCRAM-SHA-1).
    pub mechanism: Option<AuthMechanism>,
    /// Mechanism properties (string values, canonical upper-case keys).
    pub mechanism_properties: Option<Document>,
}

impl Credential {
    /// Builds a credential from its parts, applying the auth spec's defaults (source from
    /// `auth_source`, else the URI database or `admin` / `$external` by mechanism; GSSAPI's
    /// `SERVICE_NAME`), then validates it.
    pub fn resolve(
        username: Option<String>,
        password: Option<String>,
        mechanism: Option<AuthMechanism>,
        auth_source: Option<String>,
        database: Option<&str>,
        mechanism_properties: Option<Document>,
    ) -> Result<Credential, UriError> {
        let auth = build_auth_credential(
            mongo_auth::Credential::builder()
                .source_opt(auth_source)
                .uri_database(database.map(str::to_owned)),
            username.clone(),
            password.clone(),
            mechanism,
            mechanism_properties,
        )?;
        Ok(Credential {
            username,
            password,
            source: Some(auth.source().to_owned()),
            mechanism,
            mechanism_properties: auth.mechanism_properties().cloned(),
        })
    }

    /// The auth spec's per-mechanism rules on which fields must, may and must not be set.
    pub fn validate(&self) -> Result<(), UriError> {
        self.to_auth_credential().map(drop)
    }

    /// The `mongo-auth` credential for these settings (validated; a missing source gets the
    /// mechanism's default).
    pub fn to_auth_credential(&self) -> Result<mongo_auth::Credential, UriError> {
        build_auth_credential(
            mongo_auth::Credential::builder().source_opt(self.source.clone()),
            self.username.clone(),
            self.password.clone(),
            self.mechanism,
            self.mechanism_properties.clone(),
        )
    }
}

/// Finishes `builder` with the credential's parts; an [`mongo_auth::AuthError`] becomes
/// [`UriError::InvalidCredential`].
fn build_auth_credential(
    builder: mongo_auth::CredentialBuilder,
    username: Option<String>,
    password: Option<String>,
    mechanism: Option<AuthMechanism>,
    mechanism_properties: Option<Document>,
) -> Result<mongo_auth::Credential, UriError> {
    builder
        .username_opt(username)
        .password_opt(password)
        .mechanism(mechanism.map(Into::into))
        .mechanism_properties(mechanism_properties)
        .build()
        .map_err(|e| UriError::InvalidCredential(e.to_string()))
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("source", &self.source)
            .field("mechanism", &self.mechanism)
            .field(
                "mechanism_properties",
                &self.mechanism_properties.as_ref().map(|p| {
                    p.keys().cloned().collect::<Vec<_>>() // values may be secrets
                }),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str) -> HostAddr {
        HostAddr::Tcp {
            host: host.to_owned(),
            port: None,
        }
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
    fn builder_rejects_long_app_name_and_zero_max_connecting() {
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
    }

    #[test]
    fn credential_defaults_follow_the_auth_spec() {
        let c = Credential::resolve(Some("u".into()), Some("p".into()), None, None, None, None)
            .unwrap();
        assert_eq!(c.source.as_deref(), Some("admin"));
        let c = Credential::resolve(
            Some("u".into()),
            Some("p".into()),
            Some(AuthMechanism::Plain),
            None,
            Some("db"),
            None,
        )
        .unwrap();
        assert_eq!(c.source.as_deref(), Some("db"));
        let c = Credential::resolve(
            Some("u".into()),
            None,
            Some(AuthMechanism::Gssapi),
            None,
            Some("db"),
            None,
        )
        .unwrap();
        assert_eq!(c.source.as_deref(), Some("$external"));
        assert_eq!(
            c.mechanism_properties
                .unwrap()
                .get_str("SERVICE_NAME")
                .unwrap(),
            "mongodb"
        );
    }

    #[test]
    fn credential_rules_come_from_mongo_auth() {
        let invalid = |r: Result<Credential, UriError>| {
            assert!(matches!(r, Err(UriError::InvalidCredential(_))), "{r:?}");
        };
        invalid(Credential::resolve(None, None, None, None, None, None));
        invalid(Credential::resolve(
            Some("u".into()),
            Some("p".into()),
            Some(AuthMechanism::MongoDbX509),
            None,
            None,
            None,
        ));
        invalid(Credential::resolve(
            Some("u".into()),
            None,
            Some(AuthMechanism::Gssapi),
            Some("db".into()),
            None,
            None,
        ));
        let oidc = |env: &str| {
            Credential::resolve(
                None,
                None,
                Some(AuthMechanism::MongoDbOidc),
                None,
                None,
                Some(bson::doc! { "ENVIRONMENT": env }),
            )
        };
        assert_eq!(oidc("k8s").unwrap().source.as_deref(), Some("$external"));
        invalid(oidc("azure"));
        invalid(oidc("nowhere"));

        // Built from code without a source: validation applies the mechanism's default.
        let c = Credential {
            username: Some("u".into()),
            password: Some("p".into()),
            mechanism: Some(AuthMechanism::Plain),
            ..Credential::default()
        };
        let auth = c.to_auth_credential().unwrap();
        assert_eq!(auth.source(), "$external");
        assert_eq!(auth.mechanism(), Some(mongo_auth::AuthMechanism::Plain));
        let no_password = Credential {
            password: None,
            ..c
        };
        assert!(matches!(
            no_password.validate(),
            Err(UriError::InvalidCredential(_))
        ));
        for m in AuthMechanism::ALL {
            assert_eq!(AuthMechanism::from_name(&m.name().to_lowercase()), Some(m));
        }
    }

    #[test]
    fn debug_never_prints_secrets() {
        let c = Credential::resolve(
            Some("user".into()),
            Some("hunter2".into()),
            None,
            None,
            None,
            None,
        )
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
}
