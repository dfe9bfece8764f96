//! SOCKS5 (the SOCKS5 support spec's prose tests): a replica set, with and without TLS,
//! reached through two in-process SOCKS5 proxies (fast-socks5) on loopback — one that
//! requires `username` / `p4ssw0rd`, one that requires nothing. The proxies map the made-up
//! `localhost:12345` to one member, as the spec's test proxy does, count the connections they
//! relay and record the targets they were asked for (host names arrive unresolved).
#![allow(
    clippy::disallowed_methods,
    reason = "integration tests spawn the proxies' tasks"
)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bson::doc;
use fast_socks5::server::{Socks5ServerProtocol, run_tcp_proxy};
use fast_socks5::util::target_addr::TargetAddr;
use mongo_client::event::command::CommandEvent;
use mongo_client::event::{EventRecorder, Listeners};
use mongo_client::{Client, ClientOptions, ProxyOptions};
use mongo_testkit::{ReplicaSet, ServerOptions, TestCerts, generate_test_certs};
use parking_lot::Mutex;

const USER: &str = "username";
const PASS: &str = "p4ssw0rd";
const MAPPED: &str = "localhost:12345";

struct Proxy {
    port: u16,
    relayed: Arc<AtomicUsize>,
    targets: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A SOCKS5 proxy on loopback; `auth` makes it require those credentials; `map` sends the
/// named `host:port` targets elsewhere.
async fn proxy(
    auth: Option<(&'static str, &'static str)>,
    map: HashMap<String, SocketAddr>,
) -> Proxy {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let relayed = Arc::new(AtomicUsize::new(0));
    let targets = Arc::new(Mutex::new(Vec::new()));
    let (r, t) = (relayed.clone(), targets.clone());
    let map = Arc::new(map);
    let task = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (r, t, map) = (r.clone(), t.clone(), map.clone());
            tokio::spawn(async move {
                let proto = match auth {
                    None => Socks5ServerProtocol::accept_no_auth(socket).await,
                    Some((u, p)) => {
                        Socks5ServerProtocol::accept_password_auth(socket, |user, pass| {
                            user == u && pass == p
                        })
                        .await
                        .map(|(proto, _)| proto)
                    }
                };
                let Ok(proto) = proto else { return };
                let Ok((proto, _cmd, target)) = proto.read_command().await else {
                    return;
                };
                let named = match &target {
                    TargetAddr::Domain(h, p) => format!("{h}:{p}"),
                    TargetAddr::Ip(a) => a.to_string(),
                };
                t.lock().push(named.clone());
                let target = match map.get(&named) {
                    Some(a) => TargetAddr::Ip(*a),
                    None => match target.resolve_dns().await {
                        Ok(t) => t,
                        Err(_) => return,
                    },
                };
                r.fetch_add(1, Ordering::SeqCst);
                let _ = run_tcp_proxy(proto, &target, Duration::from_secs(5), true).await;
            });
        }
    });
    Proxy {
        port,
        relayed,
        targets,
        task,
    }
}

struct Setup {
    rs: ReplicaSet,
    auth: Proxy,
    open: Proxy,
    certs: Option<TestCerts>,
}

async fn setup(tls: bool) -> Setup {
    let certs = tls.then(|| generate_test_certs().unwrap());
    let mut options = ServerOptions::default();
    if let Some(c) = &certs {
        options = options.with_tls(c.server_tls());
    }
    let rs = ReplicaSet::start_with("repl0", 3, options).await.unwrap();
    let member = rs.members()[0].address();
    let map: HashMap<String, SocketAddr> = [(MAPPED.to_owned(), member)].into();
    Setup {
        auth: proxy(Some((USER, PASS)), map.clone()).await,
        open: proxy(None, map).await,
        rs,
        certs,
    }
}

impl Setup {
    fn tls_query(&self) -> String {
        match &self.certs {
            Some(c) => format!(
                "&tls=true&tlsCAFile={}&tlsCertificateKeyFile={}",
                c.ca_cert.display(),
                c.client_pem.display()
            ),
            None => String::new(),
        }
    }

    /// The spec's table: (hosts, query, expected to succeed). `1080` is the proxy that
    /// requires authentication, `1081` the one that does not.
    fn cases(&self) -> Vec<(String, String, bool)> {
        let rs = self.rs.hosts().join(",");
        let m = MAPPED.to_owned();
        let (a, o) = (self.auth.port, self.open.port);
        let bad = "&proxyUsername=nonexistentuser&proxyPassword=badauth";
        let good = format!("&proxyUsername={USER}&proxyPassword={PASS}");
        vec![
            (
                m.clone(),
                format!("proxyHost=localhost&proxyPort={a}&directConnection=true"),
                false,
            ),
            (
                m.clone(),
                format!("proxyHost=localhost&proxyPort={o}&directConnection=true"),
                true,
            ),
            (
                rs.clone(),
                format!("proxyHost=localhost&proxyPort={a}"),
                false,
            ),
            (
                rs.clone(),
                format!("proxyHost=localhost&proxyPort={o}"),
                true,
            ),
            (
                m.clone(),
                format!("proxyHost=localhost&proxyPort={a}{bad}&directConnection=true"),
                false,
            ),
            (
                m.clone(),
                format!("proxyHost=localhost&proxyPort={o}{bad}&directConnection=true"),
                true,
            ),
            (
                rs.clone(),
                format!("proxyHost=localhost&proxyPort={o}{bad}"),
                true,
            ),
            (
                m.clone(),
                format!("proxyHost=localhost&proxyPort={a}{good}&directConnection=true"),
                true,
            ),
            (
                m,
                format!("proxyHost=localhost&proxyPort={o}&directConnection=true"),
                true,
            ),
            (
                rs.clone(),
                format!("proxyHost=localhost&proxyPort={a}{good}"),
                true,
            ),
            (rs, format!("proxyHost=localhost&proxyPort={o}"), true),
        ]
    }
}

async fn hello(options: ClientOptions, listeners: Listeners) -> mongo_client::Result<()> {
    let client = Client::builder()
        .options(options)
        .listeners(listeners)
        .build()
        .await?;
    let r = client
        .run_command("admin", doc! {"hello": 1})
        .await
        .map(|_| ());
    client.shutdown().await;
    r
}

async fn run_table(tls: bool) {
    let s = setup(tls).await;
    for (hosts, query, succeeds) in s.cases() {
        let uri = format!(
            "mongodb://{hosts}/?serverSelectionTimeoutMS=1500&{query}{}",
            s.tls_query()
        );
        let options = ClientOptions::parse(&uri).unwrap_or_else(|e| panic!("{uri}: {e}"));
        let result = hello(options.clone(), Listeners::new()).await;
        assert_eq!(result.is_ok(), succeeds, "{uri}: {result:?}");

        // The same with the proxy given as client options instead of in the string.
        let mut proxy = ProxyOptions::new("localhost");
        if let Some(port) = options.proxy.port {
            proxy = proxy.with_port(port);
        }
        if let (Some(u), Some(p)) = (&options.proxy.username, &options.proxy.password) {
            proxy = proxy.with_credentials(u.clone(), p.clone());
        }
        let mut plain = options.clone();
        plain.proxy = ProxyOptions::default();
        let from_code = mongo_client::ClientOptionsBuilder::from_options(plain)
            .proxy(proxy)
            .build()
            .unwrap();
        let result = hello(from_code, Listeners::new()).await;
        assert_eq!(result.is_ok(), succeeds, "{uri} (as options): {result:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spec_table_without_tls() {
    run_table(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spec_table_with_tls() {
    run_table(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_goes_through_the_proxy_and_events_name_the_server() {
    let s = setup(false).await;
    let recorder = EventRecorder::shared();
    let mut listeners = Listeners::new();
    listeners.add_all(recorder.clone());
    let uri = format!(
        "mongodb://{MAPPED}/?directConnection=true&proxyHost=127.0.0.1&proxyPort={}",
        s.open.port
    );
    hello(ClientOptions::parse(&uri).unwrap(), listeners)
        .await
        .unwrap();
    // The monitor's connection and the application's both went through the proxy, asking
    // for the host name as written.
    assert!(s.open.relayed.load(Ordering::SeqCst) >= 2);
    let targets = s.open.targets.lock().clone();
    assert!(targets.iter().all(|t| t == MAPPED), "{targets:?}");
    // Command events name the server, never the proxy.
    let events = recorder.command_events();
    let started: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            CommandEvent::Started(s) => Some(s.connection.address.to_string()),
            _ => None,
        })
        .collect();
    assert!(!started.is_empty());
    assert!(started.iter().all(|a| a == MAPPED), "{started:?}");
    assert_eq!(s.auth.relayed.load(Ordering::SeqCst), 0);
}
