//! The vocabulary every crate of the workspace speaks: server addresses, connection and service
//! ids, server and topology types, pool generations.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use bson::oid::ObjectId;

/// The default MongoDB port.
pub const DEFAULT_PORT: u16 = 27017;

/// Where a server listens: a host and port, or a unix domain socket.
///
/// Host names are kept lower-cased, as the SDAM specification compares them case-insensitively.
/// IPv6 literals are kept without brackets and shown with them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServerAddress {
    /// A TCP endpoint.
    Tcp {
        /// Host name or IP literal (IPv6 without brackets), lower-cased.
        host: String,
        /// TCP port.
        port: u16,
    },
    /// A unix domain socket path (a path ending in `.sock`).
    Unix {
        /// The socket's path.
        path: PathBuf,
    },
}

/// An address that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressError {
    /// The address was empty.
    Empty,
    /// An IPv6 literal was opened with `[` but not closed.
    UnclosedBracket(String),
    /// The port was not a number from 1 to 65535.
    InvalidPort(String),
    /// A host name contained a character that cannot appear in one.
    InvalidHost(String),
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressError::Empty => f.write_str("empty server address"),
            AddressError::UnclosedBracket(s) => write!(f, "unclosed '[' in address {s:?}"),
            AddressError::InvalidPort(s) => write!(f, "invalid port in address {s:?}"),
            AddressError::InvalidHost(s) => write!(f, "invalid host in address {s:?}"),
        }
    }
}

impl std::error::Error for AddressError {}

impl ServerAddress {
    /// A TCP address; the host is lower-cased and IPv6 brackets are removed.
    pub fn tcp(host: impl AsRef<str>, port: u16) -> Self {
        let host = host.as_ref();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        ServerAddress::Tcp {
            host: host.to_ascii_lowercase(),
            port,
        }
    }

    /// A unix domain socket address.
    pub fn unix(path: impl Into<PathBuf>) -> Self {
        ServerAddress::Unix { path: path.into() }
    }

    /// Parses `host`, `host:port`, `[v6]`, `[v6]:port` or a socket path ending in `.sock`.
    pub fn parse(s: &str) -> Result<Self, AddressError> {
        if s.is_empty() {
            return Err(AddressError::Empty);
        }
        if s.starts_with('/') || s.ends_with(".sock") {
            return Ok(ServerAddress::unix(s));
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let end = rest
                .find(']')
                .ok_or_else(|| AddressError::UnclosedBracket(s.to_string()))?;
            let (host, after) = rest.split_at(end);
            let after = &after[1..];
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(AddressError::InvalidHost(s.to_string())),
            };
            (host, port)
        } else {
            match s.rsplit_once(':') {
                Some((h, _)) if h.contains(':') => {
                    // An IPv6 literal without brackets cannot carry a port.
                    return Err(AddressError::InvalidHost(s.to_string()));
                }
                Some((h, p)) => (h, Some(p)),
                None => (s, None),
            }
        };
        if host.is_empty()
            || host
                .chars()
                .any(|c| c.is_whitespace() || c == '/' || c == '@')
        {
            return Err(AddressError::InvalidHost(s.to_string()));
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 && !p.starts_with('+') => n,
                _ => return Err(AddressError::InvalidPort(s.to_string())),
            },
        };
        Ok(ServerAddress::tcp(host, port))
    }

    /// The host, or the socket path for a unix socket.
    pub fn host(&self) -> std::borrow::Cow<'_, str> {
        match self {
            ServerAddress::Tcp { host, .. } => std::borrow::Cow::Borrowed(host),
            ServerAddress::Unix { path } => path.to_string_lossy(),
        }
    }

    /// The port, if this is a TCP address.
    pub fn port(&self) -> Option<u16> {
        match self {
            ServerAddress::Tcp { port, .. } => Some(*port),
            ServerAddress::Unix { .. } => None,
        }
    }
}

impl Default for ServerAddress {
    fn default() -> Self {
        ServerAddress::tcp("localhost", DEFAULT_PORT)
    }
}

impl fmt::Display for ServerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerAddress::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            ServerAddress::Tcp { host, port } => write!(f, "{host}:{port}"),
            ServerAddress::Unix { path } => write!(f, "{}", path.display()),
        }
    }
}

impl FromStr for ServerAddress {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ServerAddress::parse(s)
    }
}

/// The driver's id for a connection, unique within its pool, starting at 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ConnectionId(pub u64);

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A pool generation: bumped each time the pool (or, in load-balanced mode, one service's
/// connections) is cleared; connections of an older generation are stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Generation(pub u32);

impl Generation {
    /// The generation after this one.
    #[must_use]
    pub fn next(self) -> Generation {
        Generation(self.0.wrapping_add(1))
    }
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The `serviceId` a load balancer's backend reports in hello (an ObjectId).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceId(pub ObjectId);

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.to_hex())
    }
}

/// A server's type, as SDAM determines it from a hello reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ServerType {
    /// A standalone mongod.
    Standalone,
    /// A mongos router.
    Mongos,
    /// A replica-set primary.
    RsPrimary,
    /// A replica-set secondary.
    RsSecondary,
    /// A replica-set arbiter.
    RsArbiter,
    /// Another replica-set member (hidden, starting up, recovering, ...).
    RsOther,
    /// A replica-set member that is not configured yet.
    RsGhost,
    /// A load balancer.
    LoadBalancer,
    /// Not known (not contacted yet, or the last check failed).
    #[default]
    Unknown,
    /// A server that may be the primary (Single topology before contact).
    PossiblePrimary,
}

impl ServerType {
    /// The name the specifications use (`RSPrimary`, `Standalone`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ServerType::Standalone => "Standalone",
            ServerType::Mongos => "Mongos",
            ServerType::RsPrimary => "RSPrimary",
            ServerType::RsSecondary => "RSSecondary",
            ServerType::RsArbiter => "RSArbiter",
            ServerType::RsOther => "RSOther",
            ServerType::RsGhost => "RSGhost",
            ServerType::LoadBalancer => "LoadBalancer",
            ServerType::Unknown => "Unknown",
            ServerType::PossiblePrimary => "PossiblePrimary",
        }
    }

    /// Parses a spec name such as `RSSecondary`.
    pub fn from_name(name: &str) -> Option<ServerType> {
        Some(match name {
            "Standalone" => ServerType::Standalone,
            "Mongos" => ServerType::Mongos,
            "RSPrimary" => ServerType::RsPrimary,
            "RSSecondary" => ServerType::RsSecondary,
            "RSArbiter" => ServerType::RsArbiter,
            "RSOther" => ServerType::RsOther,
            "RSGhost" => ServerType::RsGhost,
            "LoadBalancer" => ServerType::LoadBalancer,
            "Unknown" => ServerType::Unknown,
            "PossiblePrimary" => ServerType::PossiblePrimary,
            _ => return None,
        })
    }

    /// Whether the server holds data (primary, secondary, standalone, mongos, load balancer).
    pub fn is_data_bearing(self) -> bool {
        matches!(
            self,
            ServerType::Standalone
                | ServerType::Mongos
                | ServerType::RsPrimary
                | ServerType::RsSecondary
                | ServerType::LoadBalancer
        )
    }

    /// Whether writes may go to this server.
    pub fn is_writable(self) -> bool {
        matches!(
            self,
            ServerType::Standalone
                | ServerType::Mongos
                | ServerType::RsPrimary
                | ServerType::LoadBalancer
        )
    }
}

impl fmt::Display for ServerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A topology's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum TopologyType {
    /// One server, connected to directly.
    Single,
    /// A replica set with no known primary.
    ReplicaSetNoPrimary,
    /// A replica set with a known primary.
    ReplicaSetWithPrimary,
    /// One or more mongos routers.
    Sharded,
    /// Not known yet.
    #[default]
    Unknown,
    /// Behind a load balancer.
    LoadBalanced,
}

impl TopologyType {
    /// The name the specifications use.
    pub fn name(self) -> &'static str {
        match self {
            TopologyType::Single => "Single",
            TopologyType::ReplicaSetNoPrimary => "ReplicaSetNoPrimary",
            TopologyType::ReplicaSetWithPrimary => "ReplicaSetWithPrimary",
            TopologyType::Sharded => "Sharded",
            TopologyType::Unknown => "Unknown",
            TopologyType::LoadBalanced => "LoadBalanced",
        }
    }

    /// Parses a spec name such as `ReplicaSetNoPrimary`.
    pub fn from_name(name: &str) -> Option<TopologyType> {
        Some(match name {
            "Single" => TopologyType::Single,
            "ReplicaSetNoPrimary" => TopologyType::ReplicaSetNoPrimary,
            "ReplicaSetWithPrimary" => TopologyType::ReplicaSetWithPrimary,
            "Sharded" => TopologyType::Sharded,
            "Unknown" => TopologyType::Unknown,
            "LoadBalanced" => TopologyType::LoadBalanced,
            _ => return None,
        })
    }
}

impl fmt::Display for TopologyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_ports_ipv6_and_sockets() {
        assert_eq!(
            ServerAddress::parse("Example.COM").unwrap(),
            ServerAddress::tcp("example.com", 27017)
        );
        assert_eq!(
            ServerAddress::parse("a:1").unwrap(),
            ServerAddress::tcp("a", 1)
        );
        let v6 = ServerAddress::parse("[::1]:27018").unwrap();
        assert_eq!(
            v6,
            ServerAddress::Tcp {
                host: "::1".into(),
                port: 27018
            }
        );
        assert_eq!(v6.to_string(), "[::1]:27018");
        assert_eq!(ServerAddress::parse("[::1]").unwrap().port(), Some(27017));
        assert_eq!(
            ServerAddress::parse("/tmp/mongodb-27017.sock").unwrap(),
            ServerAddress::unix("/tmp/mongodb-27017.sock")
        );
    }

    #[test]
    fn rejects_bad_addresses() {
        assert_eq!(ServerAddress::parse(""), Err(AddressError::Empty));
        assert!(matches!(
            ServerAddress::parse("[::1"),
            Err(AddressError::UnclosedBracket(_))
        ));
        assert!(matches!(
            ServerAddress::parse("a:0"),
            Err(AddressError::InvalidPort(_))
        ));
        assert!(matches!(
            ServerAddress::parse("a:70000"),
            Err(AddressError::InvalidPort(_))
        ));
        assert!(matches!(
            ServerAddress::parse("a:x"),
            Err(AddressError::InvalidPort(_))
        ));
        assert!(matches!(
            ServerAddress::parse("::1"),
            Err(AddressError::InvalidHost(_))
        ));
        assert!(matches!(
            ServerAddress::parse("[::1]x"),
            Err(AddressError::InvalidHost(_))
        ));
    }

    #[test]
    fn type_names_round_trip() {
        for t in [
            ServerType::Standalone,
            ServerType::Mongos,
            ServerType::RsPrimary,
            ServerType::RsSecondary,
            ServerType::RsArbiter,
            ServerType::RsOther,
            ServerType::RsGhost,
            ServerType::LoadBalancer,
            ServerType::Unknown,
            ServerType::PossiblePrimary,
        ] {
            assert_eq!(ServerType::from_name(t.name()), Some(t));
        }
        for t in [
            TopologyType::Single,
            TopologyType::ReplicaSetNoPrimary,
            TopologyType::ReplicaSetWithPrimary,
            TopologyType::Sharded,
            TopologyType::Unknown,
            TopologyType::LoadBalanced,
        ] {
            assert_eq!(TopologyType::from_name(t.name()), Some(t));
        }
        assert_eq!(ServerType::from_name("nope"), None);
    }
}
