//! Host identifiers: `host[:port]`, `[ipv6][:port]` and percent-encoded UNIX socket paths.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::UriError;
use super::percent;
use crate::options::DEFAULT_PORT;

/// The address of one server (or of the SRV name, for `mongodb+srv`).
///
/// Will be unified with `mongo-events`' `ServerAddress`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HostAddr {
    /// A host name, IPv4 address or IPv6 address (without brackets) and an optional port.
    /// Host names are stored in ASCII lower case.
    Tcp {
        /// The host name or address.
        host: String,
        /// The port; `None` means the default, 27017.
        port: Option<u16>,
    },
    /// A UNIX domain socket path (ends in `.sock`).
    Unix(String),
}

/// What kind of host a [`HostAddr`] names (the connection string tests' `type`).
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

impl HostAddr {
    /// A TCP address.
    pub fn tcp(host: impl Into<String>, port: Option<u16>) -> Self {
        HostAddr::Tcp {
            host: host.into(),
            port,
        }
    }

    /// The port, with the default (27017) applied; `None` for a UNIX socket.
    pub fn port_or_default(&self) -> Option<u16> {
        match self {
            HostAddr::Tcp { port, .. } => Some(port.unwrap_or(DEFAULT_PORT)),
            HostAddr::Unix(_) => None,
        }
    }

    /// The host name, address or socket path.
    pub fn host(&self) -> &str {
        match self {
            HostAddr::Tcp { host, .. } => host,
            HostAddr::Unix(path) => path,
        }
    }

    /// What kind of host this is.
    pub fn kind(&self) -> HostKind {
        match self {
            HostAddr::Unix(_) => HostKind::Unix,
            HostAddr::Tcp { host, .. } if host.parse::<Ipv4Addr>().is_ok() => HostKind::Ipv4,
            HostAddr::Tcp { host, .. } if host.parse::<Ipv6Addr>().is_ok() => HostKind::IpLiteral,
            HostAddr::Tcp { .. } => HostKind::Hostname,
        }
    }
}

impl fmt::Display for HostAddr {
    /// `host:port` (default port filled in), `[v6]:port`, or the socket path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostAddr::Unix(path) => f.write_str(path),
            HostAddr::Tcp { host, port } => {
                let port = port.unwrap_or(DEFAULT_PORT);
                if host.contains(':') {
                    write!(f, "[{host}]:{port}")
                } else {
                    write!(f, "{host}:{port}")
                }
            }
        }
    }
}

fn invalid(host: &str, reason: &str) -> UriError {
    UriError::InvalidHost {
        host: host.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Parses a port: digits only, 1 to 65535. Errors name only the host part: when a password
/// holds an unescaped `/` or `?`, the "port" is a piece of it and must not be echoed.
fn parse_port(raw_host: &str, port: &str) -> Result<u16, UriError> {
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(raw_host, "the port must be a number"));
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(invalid(raw_host, "the port must be between 1 and 65535")),
        Ok(p) => Ok(p),
    }
}

/// Characters a host name may hold besides ASCII alphanumerics and non-ASCII (IDN) text.
fn is_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~') || !c.is_ascii()
}

/// Parses one raw (still percent-encoded) host identifier.
pub(crate) fn parse_host(raw: &str) -> Result<HostAddr, UriError> {
    if raw.is_empty() {
        return Err(invalid(raw, "empty host"));
    }
    if let Some(rest) = raw.strip_prefix('[') {
        let Some((literal, after)) = rest.split_once(']') else {
            return Err(invalid(raw, "unterminated IPv6 literal"));
        };
        if literal.parse::<Ipv6Addr>().is_err() {
            return Err(invalid(raw, "not a valid IPv6 address"));
        }
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(p) => Some(parse_port(&format!("[{literal}]"), p)?),
                None => return Err(invalid(raw, "unexpected text after the IPv6 literal")),
            },
        };
        return Ok(HostAddr::Tcp {
            host: literal.to_ascii_lowercase(),
            port,
        });
    }
    let (host_part, port) = match raw.split_once(':') {
        None => (raw, None),
        Some((h, p)) => {
            if p.contains(':') {
                return Err(invalid(
                    h,
                    "too many colons (IPv6 addresses must be in brackets)",
                ));
            }
            (h, Some(parse_port(h, p)?))
        }
    };
    let host = percent::decode(host_part, "host")?;
    if host.contains('/') {
        if !host.ends_with(".sock") {
            return Err(invalid(
                raw,
                "a path must be a UNIX domain socket ending in .sock",
            ));
        }
        if port.is_some() {
            return Err(invalid(raw, "a UNIX domain socket has no port"));
        }
        return Ok(HostAddr::Unix(host));
    }
    if host.is_empty() {
        return Err(invalid(raw, "empty host"));
    }
    if !host.chars().all(is_host_char) {
        return Err(invalid(raw, "invalid character in host name"));
    }
    Ok(HostAddr::Tcp {
        host: host.to_ascii_lowercase(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kinds() {
        let h = parse_host("127.0.0.1:27018").unwrap();
        assert_eq!(h, HostAddr::tcp("127.0.0.1", Some(27018)));
        assert_eq!(h.kind(), HostKind::Ipv4);
        let h = parse_host("[::1]").unwrap();
        assert_eq!(h.kind(), HostKind::IpLiteral);
        assert_eq!(h.to_string(), "[::1]:27017");
        let h = parse_host("%2Ftmp%2Fm.sock").unwrap();
        assert_eq!(h, HostAddr::Unix("/tmp/m.sock".into()));
        assert_eq!(h.kind(), HostKind::Unix);
        assert_eq!(parse_host("Example.COM").unwrap().host(), "example.com");
        assert_eq!(parse_host("m.sock").unwrap().kind(), HostKind::Hostname);
    }

    #[test]
    fn rejects_bad_hosts() {
        for bad in [
            "",
            "h:",
            "h:0",
            "h:65536",
            "h:-1",
            "h:x",
            "h::1",
            "::",
            "[::1",
            "[::1]x",
            "[nope]",
            "%2Ftmp%2Fnot-a-socket",
            "%2Fa.sock:1",
            "a b",
            "%zz",
        ] {
            assert!(parse_host(bad).is_err(), "{bad}");
        }
    }
}
