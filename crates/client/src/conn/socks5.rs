//! SOCKS5 (SOCKS5 support spec): a TCP connection to the proxy, then the SOCKS5 handshake
//! (tokio-socks) asking it to connect to the server. The server's host name goes to the
//! proxy unresolved (the proxy resolves it); the proxy's own name is resolved like any host.
//! No-auth is always offered; username/password too when `proxyUsername` is set, so a proxy
//! that needs no authentication still accepts a client that has credentials.

use std::io;

use tokio::net::TcpStream;
use tokio_socks::tcp::Socks5Stream;

use super::stream::tcp_connect;
use crate::options::ProxyOptions;
use crate::srv::dns::Dns;

/// A TCP stream tunnelled through the proxy to `host:port`, ready for TLS or the wire
/// protocol.
pub(crate) async fn connect(
    proxy: &ProxyOptions,
    host: &str,
    port: u16,
    dns: Option<&Dns>,
) -> io::Result<TcpStream> {
    let proxy_host = proxy
        .host
        .as_deref()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "proxyHost is not set"))?;
    let socket = tcp_connect(proxy_host, proxy.port_or_default(), dns).await?;
    let target = (host, port);
    let tunnel = match (&proxy.username, &proxy.password) {
        (Some(user), Some(pass)) => {
            Socks5Stream::connect_with_password_and_socket(socket, target, user, pass).await
        }
        _ => Socks5Stream::connect_with_socket(socket, target).await,
    }
    .map_err(|e| {
        io::Error::new(
            io::ErrorKind::ConnectionRefused,
            format!(
                "SOCKS5 proxy {proxy_host}:{} could not connect to {host}:{port}: {e}",
                proxy.port_or_default()
            ),
        )
    })?;
    Ok(tunnel.into_inner())
}
