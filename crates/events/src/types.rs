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
/// One type for every layer: the connection string's hosts, SDAM's server addresses, pool
/// and event labels. Host names are kept lower-cased, as the SDAM specification compares them
/// case-insensitively; IPv6 literals are kept without brackets and shown with them. A TCP
/// address remembers whether its port was written (the connection string spec reports an
/// absent port as absent) but compares, hashes and orders by the port in effect, so
/// `a` and `a:27017` are the same server.
///
/// The representation is private, so an address is always normalised:
///
/// ```
/// use mongo_events::{HostKind, ServerAddress};
///
/// let a = ServerAddress::parse("Example.COM").unwrap();
/// assert_eq!(a, ServerAddress::tcp("example.com", 27017));
/// assert_eq!((a.port(), a.explicit_port()), (Some(27017), None));
/// let s = ServerAddress::parse("%2Ftmp%2Fmongodb-27017.sock").unwrap();
/// assert_eq!(s.kind(), HostKind::Unix);
/// assert_eq!(s.to_string(), "/tmp/mongodb-27017.sock");
/// ```
#[derive(Clone)]
pub struct ServerAddress(Repr);

#[derive(Clone)]
enum Repr {
    Tcp { host: String, port: Option<u16> },
    Unix { path: PathBuf },
}

/// What kind of host a [`ServerAddress`] names (the connection string spec's host `type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostKind {
    /// An IPv4 address.
    Ipv4,
    /// An IPv6 literal (written in brackets).
    IpLiteral,
    /// A host name.
    Hostname,
    /// A UNIX domain socket.
    Unix,
}

/// An address that could not be parsed. Messages name only the host part of the text: in a
/// mistyped connection string the "port" may be a fragment of a password.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressError {
    /// The address was empty.
    Empty,
    /// An IPv6 literal was opened with `[` but not closed.
    UnclosedBracket(String),
    /// The port was not a number from 1 to 65535; holds the host part only.
    InvalidPort(String),
    /// The host is malformed.
    InvalidHost {
        /// The host as written.
        host: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressError::Empty => f.write_str("empty server address"),
            AddressError::UnclosedBracket(s) => write!(f, "unclosed '[' in address '{s}'"),
            AddressError::InvalidPort(host) => write!(
                f,
                "invalid port for host '{host}': the port must be a number from 1 to 65535"
            ),
            AddressError::InvalidHost { host, reason } => {
                write!(f, "invalid host '{host}': {reason}")
            }
        }
    }
}

impl std::error::Error for AddressError {}

fn invalid_host(host: &str, reason: &'static str) -> AddressError {
    AddressError::InvalidHost {
        host: host.to_owned(),
        reason,
    }
}

/// Parses a port: ASCII digits only, 1 to 65535. The error names `host`, never the port text.
fn parse_port(host: &str, port: &str) -> Result<u16, AddressError> {
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddressError::InvalidPort(host.to_owned()));
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(AddressError::InvalidPort(host.to_owned())),
        Ok(p) => Ok(p),
    }
}

/// Characters a host name may hold besides ASCII alphanumerics and non-ASCII (IDN) text.
fn is_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~') || !c.is_ascii()
}

impl ServerAddress {
    /// A TCP address with an explicit port; the host is lower-cased and IPv6 brackets are
    /// removed.
    pub fn tcp(host: impl AsRef<str>, port: u16) -> Self {
        ServerAddress::tcp_with(host, Some(port))
    }

    /// A TCP address whose port may be absent (then [`DEFAULT_PORT`] is in effect).
    pub fn tcp_with(host: impl AsRef<str>, port: Option<u16>) -> Self {
        let host = host.as_ref();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        ServerAddress(Repr::Tcp {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// A unix domain socket address.
    pub fn unix(path: impl Into<PathBuf>) -> Self {
        ServerAddress(Repr::Unix { path: path.into() })
    }

    /// Parses one host as a connection string writes it (and as servers report members):
    /// `host`, `host:port`, `[v6]`, `[v6]:port`, or a unix socket path ending in `.sock`,
    /// percent-encoded in a connection string (`%2Ftmp%2Fm.sock`) and plain elsewhere.
    /// Host names may hold ASCII letters, digits, `-._~` and non-ASCII text; ports are 1 to
    /// 65535. Never panics.
    pub fn parse(s: &str) -> Result<Self, AddressError> {
        if s.is_empty() {
            return Err(AddressError::Empty);
        }
        if let Some(rest) = s.strip_prefix('[') {
            let Some((literal, after)) = rest.split_once(']') else {
                return Err(AddressError::UnclosedBracket(s.to_owned()));
            };
            if literal.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(invalid_host(s, "not a valid IPv6 address"));
            }
            let port = match after {
                "" => None,
                _ => match after.strip_prefix(':') {
                    Some(p) => Some(parse_port(&format!("[{literal}]"), p)?),
                    None => return Err(invalid_host(s, "unexpected text after the IPv6 literal")),
                },
            };
            return Ok(ServerAddress::tcp_with(literal, port));
        }
        let (host_part, port) = match s.split_once(':') {
            None => (s, None),
            Some((h, p)) => {
                if p.contains(':') {
                    return Err(invalid_host(
                        h,
                        "too many colons (IPv6 addresses must be in brackets)",
                    ));
                }
                (h, Some(parse_port(h, p)?))
            }
        };
        let host = crate::percent::decode(host_part)
            .ok_or_else(|| invalid_host(host_part, "invalid percent-encoding"))?;
        if host.contains('/') {
            if !host.ends_with(".sock") {
                return Err(invalid_host(
                    s,
                    "a path must be a UNIX domain socket ending in .sock",
                ));
            }
            if port.is_some() {
                return Err(invalid_host(host_part, "a UNIX domain socket has no port"));
            }
            return Ok(ServerAddress::unix(host));
        }
        if host.is_empty() {
            return Err(invalid_host(s, "empty host"));
        }
        if !host.chars().all(is_host_char) {
            return Err(invalid_host(host_part, "invalid character in host name"));
        }
        Ok(ServerAddress::tcp_with(&host, port))
    }

    /// Parses a host as a server reports it (`hosts`, `passives`, `arbiters`, `primary` and
    /// `me` of a `hello` reply): `host`, `host:port`, `[v6]` or `[v6]:port`, never a unix
    /// socket path and never percent-encoded. Only the user's connection string may name a
    /// unix socket: a server must not make the client open local sockets.
    pub fn parse_reported(s: &str) -> Result<Self, AddressError> {
        if s.contains(['/', '%', '\\']) {
            return Err(invalid_host(
                s,
                "a server-reported host must be a host name or IP address, not a path",
            ));
        }
        let address = ServerAddress::parse(s)?;
        if address.unix_path().is_some() {
            return Err(invalid_host(
                s,
                "a server-reported host must be a host name or IP address, not a path",
            ));
        }
        Ok(address)
    }

    /// The host, or the socket path for a unix socket.
    pub fn host(&self) -> std::borrow::Cow<'_, str> {
        match &self.0 {
            Repr::Tcp { host, .. } => std::borrow::Cow::Borrowed(host),
            Repr::Unix { path } => path.to_string_lossy(),
        }
    }

    /// The port in effect for a TCP address (the written one, else [`DEFAULT_PORT`]); `None`
    /// for a unix socket.
    pub fn port(&self) -> Option<u16> {
        match &self.0 {
            Repr::Tcp { port, .. } => Some(port.unwrap_or(DEFAULT_PORT)),
            Repr::Unix { .. } => None,
        }
    }

    /// The port as written, if it was.
    pub fn explicit_port(&self) -> Option<u16> {
        match &self.0 {
            Repr::Tcp { port, .. } => *port,
            Repr::Unix { .. } => None,
        }
    }

    /// The socket path, for a unix socket address.
    pub fn unix_path(&self) -> Option<&std::path::Path> {
        match &self.0 {
            Repr::Tcp { .. } => None,
            Repr::Unix { path } => Some(path),
        }
    }

    /// What kind of host this is.
    pub fn kind(&self) -> HostKind {
        match &self.0 {
            Repr::Unix { .. } => HostKind::Unix,
            Repr::Tcp { host, .. } if host.parse::<std::net::Ipv4Addr>().is_ok() => HostKind::Ipv4,
            Repr::Tcp { host, .. } if host.parse::<std::net::Ipv6Addr>().is_ok() => {
                HostKind::IpLiteral
            }
            Repr::Tcp { .. } => HostKind::Hostname,
        }
    }

    /// The identity the address compares by: (is unix, host or path, port in effect).
    fn key(&self) -> (bool, std::borrow::Cow<'_, str>, u16) {
        match &self.0 {
            Repr::Tcp { host, port } => (
                false,
                std::borrow::Cow::Borrowed(host.as_str()),
                port.unwrap_or(DEFAULT_PORT),
            ),
            Repr::Unix { path } => (true, path.to_string_lossy(), 0),
        }
    }
}

impl PartialEq for ServerAddress {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for ServerAddress {}

impl std::hash::Hash for ServerAddress {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl PartialOrd for ServerAddress {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ServerAddress {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl Default for ServerAddress {
    fn default() -> Self {
        ServerAddress::tcp("localhost", DEFAULT_PORT)
    }
}

impl fmt::Display for ServerAddress {
    /// `host:port` (the default port filled in), `[v6]:port`, or the socket path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Tcp { host, port } => {
                let port = port.unwrap_or(DEFAULT_PORT);
                if host.contains(':') {
                    write!(f, "[{host}]:{port}")
                } else {
                    write!(f, "{host}:{port}")
                }
            }
            Repr::Unix { path } => write!(f, "{}", path.display()),
        }
    }
}

impl fmt::Debug for ServerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerAddress({self})")
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
    fn a_server_reported_host_is_never_a_socket_path() {
        for bad in [
            "/tmp/mongodb-27017.sock",
            "%2Ftmp%2Fmongodb-27017.sock",
            "a/b.sock",
            "..\\x.sock",
        ] {
            assert!(ServerAddress::parse_reported(bad).is_err(), "{bad}");
        }
        // The connection string's parser still takes them.
        assert!(
            ServerAddress::parse("%2Ftmp%2Fm.sock")
                .unwrap()
                .unix_path()
                .is_some()
        );
        assert_eq!(
            ServerAddress::parse_reported("A.example:27018").unwrap(),
            ServerAddress::tcp("a.example", 27018)
        );
        assert_eq!(
            ServerAddress::parse_reported("[::1]").unwrap().host(),
            "::1"
        );
    }

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
        assert_eq!(v6.host(), "::1");
        assert_eq!(v6.port(), Some(27018));
        assert_eq!(v6.kind(), HostKind::IpLiteral);
        assert_eq!(v6.to_string(), "[::1]:27018");
        assert_eq!(ServerAddress::parse("[::1]").unwrap().port(), Some(27017));
        assert_eq!(
            ServerAddress::parse("[::1]").unwrap().to_string(),
            "[::1]:27017"
        );
        assert_eq!(
            ServerAddress::parse("/tmp/mongodb-27017.sock").unwrap(),
            ServerAddress::unix("/tmp/mongodb-27017.sock")
        );
        let sock = ServerAddress::parse("%2Ftmp%2Fm.sock").unwrap();
        assert_eq!(sock.kind(), HostKind::Unix);
        assert_eq!(sock.unix_path(), Some(std::path::Path::new("/tmp/m.sock")));
        assert_eq!(sock.port(), None);
        assert_eq!(
            ServerAddress::parse("127.0.0.1:27018").unwrap().kind(),
            HostKind::Ipv4
        );
        // A host name that merely ends in .sock is a host name.
        assert_eq!(
            ServerAddress::parse("m.sock").unwrap().kind(),
            HostKind::Hostname
        );
    }

    #[test]
    fn an_absent_port_is_remembered_but_compares_as_the_default() {
        use std::collections::HashSet;
        let bare = ServerAddress::parse("a").unwrap();
        let full = ServerAddress::parse("a:27017").unwrap();
        assert_eq!(bare.explicit_port(), None);
        assert_eq!(full.explicit_port(), Some(27017));
        assert_eq!(bare, full);
        assert_eq!(bare.cmp(&full), std::cmp::Ordering::Equal);
        let set: HashSet<ServerAddress> = [bare.clone(), full].into_iter().collect();
        assert_eq!(set.len(), 1);
        assert_eq!(bare.to_string(), "a:27017");
        assert_ne!(bare, ServerAddress::tcp("a", 27018));
        assert_ne!(ServerAddress::unix("a"), ServerAddress::tcp_with("a", None));
    }

    #[test]
    fn rejects_bad_addresses() {
        assert_eq!(ServerAddress::parse(""), Err(AddressError::Empty));
        assert!(matches!(
            ServerAddress::parse("[::1"),
            Err(AddressError::UnclosedBracket(_))
        ));
        for bad_port in ["a:0", "a:70000", "a:x", "a:", "a:-1", "a:+1"] {
            assert!(
                matches!(
                    ServerAddress::parse(bad_port),
                    Err(AddressError::InvalidPort(_))
                ),
                "{bad_port}"
            );
        }
        for bad in [
            "::1",
            "h::1",
            "[::1]x",
            "[nope]",
            "%2Ftmp%2Fnot-a-socket",
            "%2Fa.sock:1",
            "a b",
            "%zz",
            "a@b",
        ] {
            assert!(
                matches!(
                    ServerAddress::parse(bad),
                    Err(AddressError::InvalidHost { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn port_errors_never_show_the_port_text() {
        // In `mongodb://u:sek/rit@h` the host list ends at '/', leaving `u:sek`.
        let e = ServerAddress::parse("u:sek").unwrap_err();
        assert!(!e.to_string().contains("sek"), "{e}");
        assert!(e.to_string().contains("'u'"), "{e}");
    }

    #[test]
    fn parse_never_panics_on_odd_input() {
        for s in [
            "[",
            "]",
            "[]",
            ":",
            "%",
            "%2",
            "[::1]:",
            "\u{e9}:1",
            "\u{e9}.com",
        ] {
            let _ = ServerAddress::parse(s);
        }
        assert_eq!(
            ServerAddress::parse("\u{e9}.com").unwrap().kind(),
            HostKind::Hostname
        );
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
