//! [`ConnectionOptions`]: how a pool's connections are opened.

use std::sync::Arc;
use std::time::Duration;

use bson::Document;
use mongo_events::Listeners;
use mongo_wire::Compressor;

use super::handshake::{self, ServerApi, client_metadata};
use super::pending::PENDING_RESPONSE_LIMIT;

/// How connections are opened: everything a handshake needs, shared by a pool's connections.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConnectionOptions {
    /// `appname`, sent in the client metadata.
    pub app_name: Option<String>,
    /// Compressors to offer, in order of preference.
    pub compressors: Vec<Compressor>,
    /// `connectTimeoutMS` (TCP connect and TLS handshake); `None` or zero: no limit.
    pub connect_timeout: Option<Duration>,
    /// `socketTimeoutMS` for each command's round trip; `None` or zero: no limit.
    pub socket_timeout: Option<Duration>,
    /// TLS, when enabled.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The credential to authenticate with during the handshake.
    pub credential: Option<mongo_auth::Credential>,
    /// The declared Stable API version.
    pub server_api: Option<ServerApi>,
    /// Load-balanced mode (`loadBalanced: true` in hello, `serviceId` required).
    pub load_balanced: bool,
    /// Command listeners (with the process-wide ones already folded in).
    pub listeners: Listeners,
    /// The `client` metadata document (already truncated to 512 bytes).
    pub metadata: Document,
    /// A SOCKS5 proxy every connection goes through (`proxyHost` and friends).
    pub proxy: Option<crate::options::ProxyOptions>,
    /// A pooled connection idle for at least this long is checked, without blocking, before
    /// it is handed out (see [`Connection::peer_closed`](super::Connection::peer_closed)); one found closed is discarded.
    /// `None` never checks; the default is one second (PyMongo's interval).
    pub idle_check_threshold: Option<Duration>,
    /// The resolver of host names when the client has its own (explicit name servers);
    /// `None` leaves them to the operating system.
    pub(crate) dns: Option<crate::srv::dns::Dns>,
    /// How long after its operation timed out a late reply may still come (see
    /// [`PENDING_RESPONSE_LIMIT`]); zero closes the connection at the timeout.
    pub pending_response_limit: Duration,
}

/// The default [`ConnectionOptions::idle_check_threshold`]: one second.
pub const DEFAULT_IDLE_CHECK_THRESHOLD: Duration = Duration::from_secs(1);

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            app_name: None,
            compressors: Vec::new(),
            connect_timeout: Some(Duration::from_secs(10)),
            socket_timeout: None,
            tls: None,
            credential: None,
            server_api: None,
            load_balanced: false,
            listeners: Listeners::new(),
            metadata: client_metadata(None, handshake::detect_env()),
            proxy: None,
            idle_check_threshold: Some(DEFAULT_IDLE_CHECK_THRESHOLD),
            dns: None,
            pending_response_limit: PENDING_RESPONSE_LIMIT,
        }
    }
}

impl ConnectionOptions {
    /// Recomputes the metadata after `app_name` changed.
    pub fn refresh_metadata(&mut self) {
        self.metadata = client_metadata(self.app_name.as_deref(), handshake::detect_env());
    }
}
