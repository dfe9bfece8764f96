//! Options for starting a test server or replica set.

use std::path::PathBuf;
use std::time::Duration;

/// Certificate and key files for a TLS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsFiles {
    /// PEM file with the server's certificate chain.
    pub cert: PathBuf,
    /// PEM file with the server's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM file with a CA: when set, client certificates signed by it are verified (and
    /// accepted when present; clients without a certificate are still let in).
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    /// A server certificate and key, without client-certificate verification.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            cert: cert.into(),
            key: key.into(),
            client_ca: None,
        }
    }

    /// Verifies client certificates against this CA.
    pub fn with_client_ca(mut self, ca: impl Into<PathBuf>) -> Self {
        self.client_ca = Some(ca.into());
        self
    }
}

/// How a test server is started.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerOptions {
    /// Interface to bind (default `127.0.0.1`).
    pub host: String,
    /// Port to bind; `0` (default) picks an ephemeral port.
    pub port: u16,
    /// Users created on the `admin` database; when non-empty, authentication is required.
    pub users: Vec<(String, String)>,
    /// TLS listener files; `None` for plain TCP.
    pub tls: Option<TlsFiles>,
    /// Compressors the server accepts, in its preference order (default zlib, snappy, zstd).
    pub compressors: Vec<String>,
    /// maxMessageSizeBytes, advertised and enforced by the frame reader (default 48,000,000).
    pub max_message_size: usize,
    /// maxWireVersion advertised in hello (default 25, MongoDB 8.0).
    pub max_wire_version: i32,
    /// Version string reported by buildInfo and serverStatus (default "8.0.4").
    pub version: String,
    /// Default `maxAwaitTimeMS` cap for awaitable hello (a request's own value wins when smaller).
    pub max_await_time: Duration,
    /// Behave as a mongos behind a load balancer: hello says `msg: "isdbgrid"` and, to a
    /// client that sends `loadBalanced: true`, reports a `serviceId`.
    pub load_balancer: bool,
    /// Server parameters set at startup (as `--setParameter name=value`): they override the
    /// defaults `getParameter` reports (`enableTestCommands: true`, `requireApiVersion: false`,
    /// `acceptApiVersion2: false`, ...) and `setParameter` can change them at run time.
    pub parameters: bson::Document,
    /// The storage engine serverStatus reports (default `wiredTiger`). `mmapv1` has no
    /// document-level locking: like mongod on it, the server refuses every `txnNumber`
    /// (IllegalOperation 20), so retryable writes and transactions fail.
    pub storage_engine: String,
    /// Whether hello reports `logicalSessionTimeoutMinutes` (default true). Off, the server
    /// looks like one without sessions (as mongocryptd): drivers send it no `lsid`.
    pub sessions: bool,
    /// In a replica set, how long after the primary logs a write its secondaries apply it
    /// (default zero: before the write is acknowledged). With a lag, a secondary's reads
    /// are stale until then, `afterClusterTime` reads and `w: N` writes wait for it, and a
    /// failover loses the writes the new primary had not applied.
    pub replication_lag: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_string(),
            port: 0,
            users: Vec::new(),
            tls: None,
            compressors: vec!["zlib".into(), "snappy".into(), "zstd".into()],
            max_message_size: 48_000_000,
            max_wire_version: 25,
            version: "8.0.4".to_string(),
            max_await_time: Duration::from_secs(60),
            load_balancer: false,
            parameters: bson::Document::new(),
            storage_engine: "wiredTiger".to_string(),
            sessions: true,
            replication_lag: Duration::ZERO,
        }
    }
}

impl ServerOptions {
    /// Adds a user on `admin` (turns authentication on).
    pub fn with_user(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.users.push((user.into(), password.into()));
        self
    }

    /// Listens with TLS.
    pub fn with_tls(mut self, tls: TlsFiles) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Binds this port instead of an ephemeral one.
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Binds this interface.
    pub fn with_host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }

    /// Replaces the list of supported compressors (names: zlib, snappy, zstd).
    pub fn with_compressors<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.compressors = names.into_iter().map(Into::into).collect();
        self
    }

    /// Sets maxMessageSizeBytes.
    pub fn with_max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Reports this storage engine (see [`ServerOptions::storage_engine`]).
    pub fn with_storage_engine(mut self, name: impl Into<String>) -> Self {
        self.storage_engine = name.into();
        self
    }

    /// Reports no `logicalSessionTimeoutMinutes` (see [`ServerOptions::sessions`]).
    pub fn without_sessions(mut self) -> Self {
        self.sessions = false;
        self
    }

    /// Acts as a mongos behind a load balancer (see [`ServerOptions::load_balancer`]).
    pub fn with_load_balancer(mut self) -> Self {
        self.load_balancer = true;
        self
    }

    /// Reports this server version (buildInfo `version` / `versionArray`, serverStatus) and
    /// this maxWireVersion in hello. Keep the two consistent (e.g. "7.0.0" with 21, "8.0.4"
    /// with 25): drivers and test runners read both.
    pub fn with_version(mut self, version: impl Into<String>, max_wire_version: i32) -> Self {
        self.version = version.into();
        self.max_wire_version = max_wire_version;
        self
    }

    /// Sets a server parameter at startup (see [`ServerOptions::parameters`]).
    pub fn with_parameter(mut self, name: impl Into<String>, value: impl Into<bson::Bson>) -> Self {
        self.parameters.insert(name.into(), value.into());
        self
    }

    /// Secondaries apply writes this late (see [`ServerOptions::replication_lag`]).
    pub fn with_replication_lag(mut self, lag: Duration) -> Self {
        self.replication_lag = lag;
        self
    }

    /// Whether authentication is required.
    pub fn auth_enabled(&self) -> bool {
        !self.users.is_empty()
    }
}
