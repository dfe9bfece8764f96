//! The byte stream under a connection: TCP (with connect timeout, `TCP_NODELAY` and
//! keepalive), TLS over TCP, or a unix domain socket. With a SOCKS5 proxy the TCP stream is
//! a tunnel through it (`socks5.rs`); with the client's own resolver host names are
//! resolved through it instead of the operating system.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use mongo_events::ServerAddress;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::error::{Error, Result};

/// A failure of the stream's set-up that cannot signal an overloaded server (CMAP's
/// backpressure rules): resolving the host name, or reaching and talking to the SOCKS5 proxy.
/// Carried inside the `io::Error` so that the error keeps its kind and message.
#[derive(Debug)]
pub(crate) struct NotOverload {
    what: String,
    source: io::Error,
}

impl std::fmt::Display for NotOverload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.what, self.source)
    }
}

impl std::error::Error for NotOverload {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

fn not_overload(what: impl Into<String>, source: io::Error) -> io::Error {
    io::Error::new(
        source.kind(),
        NotOverload {
            what: what.into(),
            source,
        },
    )
}

/// Whether an I/O error of a connection's set-up may signal an overloaded server: yes for
/// network errors and timeouts (of TCP and of the I/O inside the TLS handshake), no for DNS
/// failures, SOCKS5 proxy failures and TLS errors that are not I/O (certificate validation,
/// host name mismatch, protocol errors), which tokio-rustls reports as a `rustls::Error`
/// inside the `io::Error`.
pub(crate) fn may_signal_overload(e: &io::Error) -> bool {
    match e.get_ref() {
        Some(inner) => !(inner.is::<NotOverload>() || inner.is::<rustls::Error>()),
        None => true,
    }
}

/// TCP keepalive idle time (the handshake spec suggests at most 120 seconds).
const KEEPALIVE_TIME: Duration = Duration::from_secs(120);

/// A connected stream.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

impl Stream {
    /// Whether the peer closed or reset the connection, or sent bytes nobody asked for: a
    /// non-blocking peek at the socket (under TLS, at the TCP socket: a close_notify is
    /// bytes too). Never blocks and consumes nothing.
    pub(crate) fn peer_closed(&self) -> bool {
        let sock = match self {
            Stream::Tcp(s) => socket2::SockRef::from(s),
            Stream::Tls(s) => socket2::SockRef::from(s.get_ref().0),
            #[cfg(unix)]
            Stream::Unix(s) => socket2::SockRef::from(s),
        };
        let mut byte = [std::mem::MaybeUninit::<u8>::uninit()];
        match sock.peek(&mut byte) {
            // Readable while idle: end of stream, or bytes no request asked for.
            Ok(_) => true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => false,
            Err(_) => true,
        }
    }
}

/// What [`connect`] needs to know.
#[derive(Clone, Debug)]
pub(crate) struct StreamConfig {
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    pub(crate) proxy: Option<crate::options::ProxyOptions>,
    pub(crate) dns: Option<crate::srv::dns::Dns>,
}

async fn with_timeout<T>(
    limit: Option<Duration>,
    what: &str,
    fut: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    match limit.filter(|d| !d.is_zero()) {
        Some(d) => tokio::time::timeout(d, fut).await.map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{what} timed out after {d:?}"),
            )
        })?,
        None => fut.await,
    }
}

/// Opens a stream to `address`, TLS when configured. The connect timeout covers the TCP
/// connect and the TLS handshake.
pub(crate) async fn connect(address: &ServerAddress, config: &StreamConfig) -> Result<Stream> {
    let limit = config.connect_timeout;
    if let Some(path) = address.unix_path() {
        #[cfg(unix)]
        {
            let s = with_timeout(limit, "connect", tokio::net::UnixStream::connect(path))
                .await
                .map_err(Error::io)?;
            return Ok(Stream::Unix(s));
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            return Err(Error::invalid_argument(
                "unix domain sockets are not supported on this platform",
            ));
        }
    }
    let host = address.host();
    let port = address.port().unwrap_or(mongo_events::DEFAULT_PORT);
    let tcp = match &config.proxy {
        Some(proxy) => with_timeout(
            limit,
            "connect through the SOCKS5 proxy",
            super::socks5::connect(proxy, &host, port, config.dns.as_ref()),
        )
        .await
        .map_err(|e| not_overload("SOCKS5 proxy", e)),
        None => {
            // Resolving first, within the connect timeout: a DNS failure, a timeout included,
            // never signals an overloaded server; the connect then gets what is left.
            let started = super::clock();
            let resolved = with_timeout(
                limit,
                "resolving the host name",
                resolve(&host, port, config.dns.as_ref()),
            )
            .await
            .map_err(|e| match e.get_ref() {
                Some(inner) if inner.is::<NotOverload>() => e,
                _ => not_overload(format!("resolving {host}"), e),
            })?;
            let left = limit.filter(|d| !d.is_zero()).map(|l| {
                l.saturating_sub(super::clock().saturating_duration_since(started))
                    .max(Duration::from_millis(1))
            });
            with_timeout(left, "connect", connect_to(&resolved)).await
        }
    }
    .map_err(Error::io)?;
    match &config.tls {
        None => Ok(Stream::Tcp(tcp)),
        Some(tls) => {
            let name = super::tls::server_name(&host)?;
            let connector = tokio_rustls::TlsConnector::from(tls.clone());
            let tls = with_timeout(limit, "TLS handshake", connector.connect(name, tcp))
                .await
                .map_err(Error::io)?;
            Ok(Stream::Tls(Box::new(tls)))
        }
    }
}

/// A TCP connection to `host:port` (resolved by `dns` when given, else by the operating
/// system), with `TCP_NODELAY` and keepalive.
pub(crate) async fn tcp_connect(
    host: &str,
    port: u16,
    dns: Option<&crate::srv::dns::Dns>,
) -> io::Result<TcpStream> {
    let resolved = resolve(host, port, dns).await?;
    connect_to(&resolved).await
}

/// The addresses of `host:port` (by `dns` when given, else by the operating system); its
/// errors are DNS failures ([`NotOverload`]).
async fn resolve(
    host: &str,
    port: u16,
    dns: Option<&crate::srv::dns::Dns>,
) -> io::Result<Vec<std::net::SocketAddr>> {
    let resolved: Vec<std::net::SocketAddr> = match dns {
        Some(dns) => dns.resolve(host, port).await,
        None => tokio::net::lookup_host((host, port))
            .await
            .map(Iterator::collect),
    }
    .map_err(|e| not_overload(format!("resolving {host}"), e))?;
    if resolved.is_empty() {
        return Err(not_overload(
            format!("resolving {host}"),
            io::Error::new(io::ErrorKind::NotFound, "no address found"),
        ));
    }
    Ok(resolved)
}

/// A TCP connection to the first of `addresses` that accepts, with `TCP_NODELAY` and
/// keepalive.
async fn connect_to(addresses: &[std::net::SocketAddr]) -> io::Result<TcpStream> {
    let tcp = TcpStream::connect(addresses).await?;
    tcp.set_nodelay(true)?;
    let keepalive = socket2::TcpKeepalive::new().with_time(KEEPALIVE_TIME);
    // Keepalive is best effort: some platforms refuse some settings.
    let _ = socket2::SockRef::from(&tcp).set_tcp_keepalive(&keepalive);
    Ok(tcp)
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
