//! [`ResolverConfig`]: which DNS servers the client asks for `mongodb+srv` records and, when
//! they are given explicitly, for the addresses of host names.

use std::net::SocketAddr;

/// Where DNS questions go.
///
/// The default is the system's configuration (`/etc/resolv.conf` on Unix, the registry on
/// Windows), used for the SRV and TXT lookups of `mongodb+srv`; host names are then resolved
/// by the operating system as for any socket. With explicit name servers
/// ([`ResolverConfig::with_name_servers`]) every DNS question of the client goes to them:
/// SRV, TXT, and the A / AAAA lookups of each host it connects to (servers and the SOCKS5
/// proxy), so that a zone can name its own hosts (a test zone served on loopback, or a
/// private resolver).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResolverConfig {
    name_servers: Vec<SocketAddr>,
}

impl ResolverConfig {
    /// The system's resolver configuration.
    pub fn system() -> Self {
        Self::default()
    }

    /// These name servers (UDP, falling back to TCP), asked in order, for every lookup.
    pub fn with_name_servers(name_servers: impl IntoIterator<Item = SocketAddr>) -> Self {
        ResolverConfig {
            name_servers: name_servers.into_iter().collect(),
        }
    }

    /// The explicit name servers; empty for the system configuration.
    pub fn name_servers(&self) -> &[SocketAddr] {
        &self.name_servers
    }

    /// Whether this is the system configuration.
    pub fn is_system(&self) -> bool {
        self.name_servers.is_empty()
    }
}
