//! The test zone of the initial DNS seedlist discovery tests, served by an in-process
//! authoritative DNS server (hickory-server) on a loopback port.
//!
//! The records are read from the `dns` block of the suite's `tests/README.md` (never copied
//! into the project): `A`, `SRV` and `TXT` lines. Each SRV port is passed through a port map,
//! since the testkit's servers listen on ephemeral ports rather than 27017, 27018, ... The
//! zone is `test.build.10gen.cc.`; its A records point at 127.0.0.1 as the README says.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server;
use hickory_server::proto::rr::rdata::{A, SOA, SRV, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};

/// The zone the README's records live in.
pub(crate) const ORIGIN: &str = "test.build.10gen.cc.";

/// One record of the README's table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ZoneRecord {
    /// `name ttl IN A address`
    A { name: String, ttl: u32, ip: [u8; 4] },
    /// `name ttl IN SRV port target`
    Srv {
        name: String,
        ttl: u32,
        port: u16,
        target: String,
    },
    /// `name ttl IN TXT "s1" "s2" ...`
    Txt {
        name: String,
        ttl: u32,
        strings: Vec<String>,
    },
}

/// Reads the records of the first ```` ```dns ```` block of `readme`.
pub(crate) fn parse_readme(readme: &str) -> Result<Vec<ZoneRecord>, String> {
    let start = readme.find("```dns").ok_or("the README has no dns block")?;
    let block = readme
        .get(start + 6..)
        .and_then(|rest| rest.split("```").next())
        .ok_or("the dns block is not closed")?;
    let mut records = Vec::new();
    for line in block.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        if tokens.first() == Some(&"Record") {
            continue; // a column header
        }
        let [name, ttl, class, kind, rest @ ..] = tokens.as_slice() else {
            return Err(format!("unreadable record line: {line}"));
        };
        if *class != "IN" {
            return Err(format!("not an IN record: {line}"));
        }
        let name = fqdn(name);
        let ttl: u32 = ttl.parse().map_err(|_| format!("bad TTL: {line}"))?;
        let record = match (*kind, rest) {
            ("A", [ip]) => {
                let ip: std::net::Ipv4Addr =
                    ip.parse().map_err(|_| format!("bad address: {line}"))?;
                ZoneRecord::A {
                    name,
                    ttl,
                    ip: ip.octets(),
                }
            }
            ("SRV", [port, target]) => ZoneRecord::Srv {
                name,
                ttl,
                port: port.parse().map_err(|_| format!("bad port: {line}"))?,
                target: fqdn(target),
            },
            ("TXT", _) => ZoneRecord::Txt {
                name,
                ttl,
                strings: quoted_strings(line)?,
            },
            _ => return Err(format!("unsupported record: {line}")),
        };
        records.push(record);
    }
    Ok(records)
}

fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    }
}

/// The `"..."` strings of a TXT line, in order.
fn quoted_strings(line: &str) -> Result<Vec<String>, String> {
    let parts: Vec<&str> = line.split('"').collect();
    if parts.len() < 3 || parts.len() % 2 == 0 {
        return Err(format!("unbalanced quotes: {line}"));
    }
    Ok(parts
        .iter()
        .skip(1)
        .step_by(2)
        .map(|s| (*s).to_owned())
        .collect())
}

/// A running DNS server; dropping it stops it.
pub(crate) struct DnsServer {
    addr: SocketAddr,
    server: Server<Catalog>,
}

impl DnsServer {
    /// Serves `records` (SRV ports through `ports`) on 127.0.0.1, UDP and TCP on one port.
    pub(crate) async fn start(
        records: &[ZoneRecord],
        ports: &HashMap<u16, u16>,
    ) -> Result<DnsServer, String> {
        let origin = name(ORIGIN)?;
        let mut zone: InMemoryZoneHandler =
            InMemoryZoneHandler::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
        let soa = SOA::new(
            name(&format!("ns.{ORIGIN}"))?,
            name(&format!("admin.{ORIGIN}"))?,
            1,
            3600,
            600,
            86_400,
            60,
        );
        zone.upsert_mut(Record::from_rdata(origin.clone(), 3600, RData::SOA(soa)), 1);
        for r in records {
            let record = match r {
                ZoneRecord::A { name: n, ttl, ip } => {
                    let [a, b, c, d] = *ip;
                    Record::from_rdata(name(n)?, *ttl, RData::A(A::new(a, b, c, d)))
                }
                ZoneRecord::Srv {
                    name: n,
                    ttl,
                    port,
                    target,
                } => {
                    let port = ports.get(port).copied().unwrap_or(*port);
                    let srv = SRV::new(0, 0, port, name(target)?);
                    Record::from_rdata(name(n)?, *ttl, RData::SRV(srv))
                }
                ZoneRecord::Txt {
                    name: n,
                    ttl,
                    strings,
                } => Record::from_rdata(name(n)?, *ttl, RData::TXT(TXT::new(strings.clone()))),
            };
            if !zone.upsert_mut(record, 1) {
                return Err(format!("the zone refused {r:?}"));
            }
        }
        let mut catalog = Catalog::new();
        catalog.upsert(LowerName::new(&origin), vec![Arc::new(zone)]);
        let (udp, tcp) = bind_pair().await?;
        let addr = udp
            .local_addr()
            .map_err(|e| format!("DNS server address: {e}"))?;
        let mut server = Server::new(catalog);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 64);
        Ok(DnsServer { addr, server })
    }

    /// Where the server listens (UDP and TCP).
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server.
    pub(crate) async fn stop(mut self) {
        let _ = self.server.shutdown_gracefully().await;
    }
}

fn name(s: &str) -> Result<Name, String> {
    Name::from_ascii(s).map_err(|e| format!("bad DNS name {s}: {e}"))
}

/// A UDP socket and a TCP listener on the same loopback port.
async fn bind_pair() -> Result<(tokio::net::UdpSocket, tokio::net::TcpListener), String> {
    let mut last = String::new();
    for _ in 0..20 {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("DNS UDP bind: {e}"))?;
        let port = udp.local_addr().map_err(|e| e.to_string())?.port();
        match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!(
        "no loopback port free for both UDP and TCP: {last}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_srv_and_txt_lines_and_skips_headers() {
        let readme = "intro\n```dns\nRecord TTL Class Address\nh.example. 60 IN A 127.0.0.1\n\n\
                      Record TTL Class Port Target\n_s._tcp.x.example 60 IN SRV 27017 h.example.\n\
                      x.example. 60 IN TXT \"a=b\" \"c\"\n```\nmore";
        let r = parse_readme(readme).unwrap();
        assert_eq!(r.len(), 3);
        assert!(matches!(
            &r[0],
            ZoneRecord::A {
                ip: [127, 0, 0, 1],
                ..
            }
        ));
        assert!(
            matches!(&r[1], ZoneRecord::Srv { name, port: 27017, .. } if name == "_s._tcp.x.example.")
        );
        assert!(matches!(&r[2], ZoneRecord::Txt { strings, .. } if strings == &["a=b", "c"]));
        assert!(parse_readme("no block").is_err());
        assert!(parse_readme("```dns\nx 1 IN MX 5 y\n```").is_err());
    }
}
