//! A small TCP load balancer: each accepted connection is forwarded, byte for byte, to the
//! next backend in round-robin order (the way an L4 balancer in front of mongoses does).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::error::Error;

/// A running proxy. Dropping it stops the listener and closes every forwarded connection.
#[derive(Debug)]
pub(crate) struct LbProxy {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: parking_lot::Mutex<Option<tokio::task::JoinHandle<()>>>,
    accepted: Arc<AtomicUsize>,
}

impl LbProxy {
    /// Listens on an ephemeral port of `host` and forwards to `backends` in turn.
    pub(crate) async fn start(host: &str, backends: Vec<SocketAddr>) -> Result<Self, Error> {
        if backends.is_empty() {
            return Err(Error::InvalidOptions(
                "a load balancer needs at least one backend".into(),
            ));
        }
        let listener = TcpListener::bind((host, 0)).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = watch::channel(false);
        let accepted = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(accept_loop(listener, backends, rx, accepted.clone()));
        Ok(Self {
            addr,
            shutdown: tx,
            task: parking_lot::Mutex::new(Some(task)),
            accepted,
        })
    }

    /// `HOST:PORT` of the balancer.
    pub(crate) fn host_port(&self) -> String {
        format!("{}:{}", self.addr.ip(), self.addr.port())
    }

    /// Stops listening and closes every forwarded connection; returns once they are closed.
    pub(crate) async fn stop(&self) {
        let _ = self.shutdown.send(true);
        let task = self.task.lock().take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// Connections accepted so far.
    pub(crate) fn connections_accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }
}

async fn accept_loop(
    listener: TcpListener,
    backends: Vec<SocketAddr>,
    mut shutdown: watch::Receiver<bool>,
    accepted: Arc<AtomicUsize>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            res = listener.accept() => {
                let (client, _) = match res {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::debug!(error = %e, "load balancer accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let n = accepted.fetch_add(1, Ordering::Relaxed);
                let Some(&backend) = backends.get(n % backends.len()) else {
                    continue;
                };
                conns.spawn(forward(client, backend));
                while conns.try_join_next().is_some() {}
            }
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

async fn forward(mut client: TcpStream, backend: SocketAddr) {
    let _ = client.set_nodelay(true);
    let mut server = match TcpStream::connect(backend).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(error = %e, %backend, "load balancer could not reach its backend");
            return;
        }
    };
    let _ = server.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}
