//! The DNS questions the client asks: SRV and TXT records for `mongodb+srv`, and the
//! addresses of host names when name servers are configured explicitly. [`Dns`] wraps a
//! [`DnsLookup`]: hickory-resolver's ([`Dns::from_config`]) or a stub in tests.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolverConfig as HickoryConfig, ResolverOpts,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::{Resolver, TokioResolver};

use super::SrvRecord;
use crate::error::{Error, Result};
use crate::options::ResolverConfig;

/// A boxed, sendable future.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How long one DNS question may take, retries included, before it counts as failed.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a question got no usable answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LookupFailure {
    /// The name exists with no record of that type, or does not exist.
    NoRecords,
    /// The question failed (timeout, server failure, unreachable server).
    Failed(String),
}

impl fmt::Display for LookupFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookupFailure::NoRecords => f.write_str("no records"),
            LookupFailure::Failed(reason) => f.write_str(reason),
        }
    }
}

/// The questions, answered by a resolver or by a test's stub.
pub(crate) trait DnsLookup: Send + Sync + fmt::Debug {
    /// The SRV records of `name` (a fully qualified name).
    fn srv<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<SrvRecord>, LookupFailure>>;
    /// The TXT records of `name`, each as its strings.
    fn txt<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<Vec<Vec<u8>>>, LookupFailure>>;
    /// The addresses of `host`.
    fn ips<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, LookupFailure>>;
}

/// A shared [`DnsLookup`].
#[derive(Clone, Debug)]
pub(crate) struct Dns(Arc<dyn DnsLookup>);

impl Dns {
    /// Wraps a lookup (tests pass their stub).
    #[cfg(test)]
    pub(crate) fn new(lookup: Arc<dyn DnsLookup>) -> Dns {
        Dns(lookup)
    }

    /// hickory-resolver with the system configuration, or with the explicit name servers.
    pub(crate) fn from_config(config: &ResolverConfig) -> Result<Dns> {
        let resolver = if config.is_system() {
            TokioResolver::builder_tokio()
                .map_err(|e| {
                    Error::invalid_argument(format!(
                        "cannot read the system DNS configuration: {e}"
                    ))
                })?
                .build()
        } else {
            let servers = config.name_servers().iter().map(name_server).collect();
            let mut opts = ResolverOpts::default();
            opts.timeout = Duration::from_secs(2);
            opts.attempts = 2;
            Resolver::builder_with_config(
                HickoryConfig::from_name_servers(servers),
                TokioRuntimeProvider::default(),
            )
            .with_options(opts)
            .build()
        }
        .map_err(|e| Error::invalid_argument(format!("cannot build the DNS resolver: {e}")))?;
        Ok(Dns(Arc::new(Hickory { resolver })))
    }

    /// The SRV records of `name`.
    pub(crate) async fn srv(&self, name: &str) -> Result<Vec<SrvRecord>, LookupFailure> {
        bounded(self.0.srv(name)).await
    }

    /// The TXT records of `name`.
    pub(crate) async fn txt(&self, name: &str) -> Result<Vec<Vec<Vec<u8>>>, LookupFailure> {
        bounded(self.0.txt(name)).await
    }

    /// The socket addresses of `host:port`: the address itself when `host` is an IP
    /// literal, else the host's A / AAAA records.
    pub(crate) async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        match bounded(self.0.ips(host)).await {
            Ok(ips) if !ips.is_empty() => Ok(ips
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect()),
            Ok(_) | Err(LookupFailure::NoRecords) => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no address found for '{host}'"),
            )),
            Err(LookupFailure::Failed(reason)) => Err(std::io::Error::other(format!(
                "cannot resolve '{host}': {reason}"
            ))),
        }
    }
}

/// `fut` within [`LOOKUP_TIMEOUT`]: a resolver that never answers must not hang a client.
async fn bounded<T>(
    fut: impl Future<Output = Result<T, LookupFailure>>,
) -> Result<T, LookupFailure> {
    tokio::time::timeout(LOOKUP_TIMEOUT, fut)
        .await
        .unwrap_or_else(|_| {
            Err(LookupFailure::Failed(format!(
                "no answer within {LOOKUP_TIMEOUT:?}"
            )))
        })
}

fn name_server(addr: &SocketAddr) -> NameServerConfig {
    let mut udp = ConnectionConfig::udp();
    udp.port = addr.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = addr.port();
    NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
}

/// hickory-resolver behind [`DnsLookup`].
struct Hickory {
    resolver: TokioResolver,
}

impl fmt::Debug for Hickory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HickoryResolver")
    }
}

fn failure(e: &NetError) -> LookupFailure {
    if e.is_no_records_found() || e.is_nx_domain() {
        LookupFailure::NoRecords
    } else {
        LookupFailure::Failed(e.to_string())
    }
}

impl DnsLookup for Hickory {
    fn srv<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<SrvRecord>, LookupFailure>> {
        Box::pin(async move {
            let lookup = self
                .resolver
                .srv_lookup(name)
                .await
                .map_err(|e| failure(&e))?;
            Ok(lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::SRV(srv) => Some(SrvRecord {
                        target: srv.target.to_ascii(),
                        port: srv.port,
                        ttl: r.ttl,
                    }),
                    _ => None,
                })
                .collect())
        })
    }

    fn txt<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<Vec<Vec<u8>>>, LookupFailure>> {
        Box::pin(async move {
            let lookup = self
                .resolver
                .txt_lookup(name)
                .await
                .map_err(|e| failure(&e))?;
            Ok(lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::TXT(txt) => Some(txt.txt_data.iter().map(|s| s.to_vec()).collect()),
                    _ => None,
                })
                .collect())
        })
    }

    fn ips<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, LookupFailure>> {
        Box::pin(async move {
            let lookup = self
                .resolver
                .lookup_ip(host)
                .await
                .map_err(|e| failure(&e))?;
            Ok(lookup.iter().collect())
        })
    }
}
