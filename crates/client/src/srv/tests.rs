//! The prose tests of the initial DNS seedlist discovery spec (1 to 4) and of the polling SRV
//! records spec (1 to 13), on real clients whose DNS questions a stub answers, the polling
//! ones on tokio's paused clock (no real waiting).
#![allow(
    clippy::disallowed_methods,
    reason = "the polling tests sleep on tokio's paused clock to let rescans happen"
)]

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use super::SrvRecord;
use super::dns::{BoxFuture, Dns, DnsLookup, LookupFailure};
use crate::options::ClientOptions;
use crate::{Client, ErrorKind};

/// Answers from tables a test can change while a client runs.
#[derive(Debug, Default)]
struct StubDns {
    srv: Mutex<HashMap<String, Result<Vec<SrvRecord>, LookupFailure>>>,
    txt: Mutex<HashMap<String, Vec<Vec<Vec<u8>>>>>,
    srv_questions: AtomicUsize,
}

impl StubDns {
    fn set_srv(&self, name: &str, answer: Result<Vec<SrvRecord>, LookupFailure>) {
        self.srv.lock().insert(name.to_owned(), answer);
    }

    fn set_hosts(&self, name: &str, targets: &[(&str, u16)]) {
        self.set_srv(name, Ok(records(targets)));
    }
}

impl DnsLookup for StubDns {
    fn srv<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<SrvRecord>, LookupFailure>> {
        self.srv_questions.fetch_add(1, Ordering::SeqCst);
        let answer = self
            .srv
            .lock()
            .get(name)
            .cloned()
            .unwrap_or(Err(LookupFailure::NoRecords));
        Box::pin(async move { answer })
    }

    fn txt<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<Vec<Vec<u8>>>, LookupFailure>> {
        let answer = self
            .txt
            .lock()
            .get(name)
            .cloned()
            .ok_or(LookupFailure::NoRecords);
        Box::pin(async move { answer })
    }

    fn ips<'a>(&'a self, _host: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, LookupFailure>> {
        // No server runs in these tests: every connection attempt fails at once.
        Box::pin(async { Err(LookupFailure::NoRecords) })
    }
}

/// The TTL of the stub's records: the rescan interval is then one minute.
const TTL: u32 = 60;
const RESCAN: Duration = Duration::from_secs(60);
const TEST1: &str = "_mongodb._tcp.test1.test.build.10gen.cc.";
const HOST: &str = "localhost.test.build.10gen.cc.";

fn records(targets: &[(&str, u16)]) -> Vec<SrvRecord> {
    targets
        .iter()
        .map(|(t, p)| SrvRecord {
            target: (*t).to_owned(),
            port: *p,
            ttl: TTL,
        })
        .collect()
}

async fn client(uri: &str, stub: &Arc<StubDns>) -> crate::Result<Client> {
    let mut builder = Client::builder().options(ClientOptions::parse(uri)?);
    builder.dns = Some(Dns::new(stub.clone()));
    builder.build().await
}

fn hosts_of(client: &Client) -> Vec<String> {
    let mut hosts: Vec<String> = client
        .topology_description()
        .servers()
        .map(|s| s.address.to_string())
        .collect();
    hosts.sort();
    hosts
}

fn ports(list: &[u16]) -> Vec<String> {
    let mut v: Vec<String> = list
        .iter()
        .map(|p| format!("localhost.test.build.10gen.cc:{p}"))
        .collect();
    v.sort();
    v
}

// ----- initial DNS seedlist discovery, prose tests -----

#[tokio::test]
async fn prose_1_srv_names_with_fewer_than_three_parts_are_allowed() {
    let stub = Arc::new(StubDns::default());
    stub.set_hosts("_mongodb._tcp.localhost.", &[("test.localhost.", 27017)]);
    stub.set_hosts("_mongodb._tcp.mongo.local.", &[("a.mongo.local.", 27017)]);
    for (uri, seed) in [
        ("mongodb+srv://localhost", "test.localhost:27017"),
        ("mongodb+srv://mongo.local", "a.mongo.local:27017"),
    ] {
        let c = client(uri, &stub)
            .await
            .unwrap_or_else(|e| panic!("{uri}: {e}"));
        let seeds: Vec<String> = c.initial_seeds().iter().map(ToString::to_string).collect();
        assert_eq!(seeds, vec![seed.to_owned()]);
        c.shutdown().await;
    }
}

async fn assert_domain_mismatch(host: &str, target: &str) {
    let stub = Arc::new(StubDns::default());
    stub.set_hosts(&format!("_mongodb._tcp.{host}."), &[(target, 27017)]);
    let err = client(&format!("mongodb+srv://{host}"), &stub)
        .await
        .expect_err("the target must be refused");
    assert!(
        matches!(
            err.kind(),
            ErrorKind::Srv(super::SrvError::DomainMismatch { .. })
        ),
        "{host} -> {target}: {err}"
    );
}

#[tokio::test]
async fn prose_2_targets_must_end_with_the_srv_domain() {
    assert_domain_mismatch("localhost", "localhost.mongodb").await;
    assert_domain_mismatch("mongo.local", "test_1.evil.local").await;
    assert_domain_mismatch("blogs.mongodb.com", "blogs.evil.com").await;
}

#[tokio::test]
async fn prose_3_targets_identical_to_a_short_srv_host_are_refused() {
    assert_domain_mismatch("localhost", "localhost").await;
    assert_domain_mismatch("mongo.local", "mongo.local").await;
}

#[tokio::test]
async fn prose_4_targets_must_have_a_dot_before_the_shared_domain() {
    assert_domain_mismatch("localhost", "test_1.cluster_1localhost").await;
    assert_domain_mismatch("mongo.local", "test_1.my_hostmongo.local").await;
    assert_domain_mismatch("blogs.mongodb.com", "cluster.testmongodb.com").await;
}

#[tokio::test]
async fn dns_errors_and_bad_answers_end_in_clear_errors() {
    let stub = Arc::new(StubDns::default());
    let err = client("mongodb+srv://test4.test.build.10gen.cc", &stub)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::Srv(super::SrvError::NoRecords { .. })
        ),
        "{err}"
    );
    stub.set_srv(TEST1, Err(LookupFailure::Failed("SERVFAIL".into())));
    let err = client("mongodb+srv://test1.test.build.10gen.cc", &stub)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("SERVFAIL"), "{err}");
    let many: Vec<(String, u16)> = (0..5000)
        .map(|i| (format!("h{i}.test.build.10gen.cc."), 1))
        .collect();
    let many: Vec<(&str, u16)> = many.iter().map(|(h, p)| (h.as_str(), *p)).collect();
    stub.set_hosts(TEST1, &many);
    let err = client("mongodb+srv://test1.test.build.10gen.cc", &stub)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::Srv(super::SrvError::TooManyRecords { .. })
        ),
        "{err}"
    );
    stub.set_hosts(TEST1, &[(HOST, 27017)]);
    stub.txt.lock().insert(
        "test1.test.build.10gen.cc.".into(),
        vec![vec![b"maxPoolSize=1".to_vec()]],
    );
    let err = client("mongodb+srv://test1.test.build.10gen.cc", &stub)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("maxPoolSize"), "{err}");
}

// ----- polling SRV records for mongos discovery, prose tests -----

/// A client of `test1` (or `uri`) with the stub's starting records (27017, 27018).
async fn polled(query: &str) -> (Arc<StubDns>, Client) {
    let stub = Arc::new(StubDns::default());
    stub.set_hosts(TEST1, &[(HOST, 27017), (HOST, 27018)]);
    stub.set_hosts("_mongodb._tcp.test3.test.build.10gen.cc.", &[(HOST, 27017)]);
    stub.set_hosts(
        "_customname._tcp.test22.test.build.10gen.cc.",
        &[(HOST, 27017)],
    );
    let uri = if query.starts_with("mongodb") {
        query.to_owned()
    } else {
        format!("mongodb+srv://test1.test.build.10gen.cc/{query}")
    };
    let c = client(&uri, &stub)
        .await
        .unwrap_or_else(|e| panic!("{uri}: {e}"));
    (stub, c)
}

async fn after_two_rescans() {
    tokio::time::sleep(RESCAN * 2 + Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn polling_1_to_5_hosts_follow_the_records() {
    let cases: [(&[u16], &[u16]); 5] = [
        (&[27017, 27018, 27019], &[27017, 27018, 27019]),
        (&[27017], &[27017]),
        (&[27017, 27019], &[27017, 27019]),
        (&[27019], &[27019]),
        (&[27019, 27020], &[27019, 27020]),
    ];
    for (records, expected) in cases {
        let (stub, c) = polled("").await;
        assert_eq!(hosts_of(&c), ports(&[27017, 27018]));
        let targets: Vec<(&str, u16)> = records.iter().map(|p| (HOST, *p)).collect();
        stub.set_hosts(TEST1, &targets);
        after_two_rescans().await;
        assert_eq!(hosts_of(&c), ports(expected), "records {records:?}");
        c.shutdown().await;
    }
}

#[tokio::test(start_paused = true)]
async fn polling_6_to_8_errors_and_empty_answers_keep_the_hosts() {
    let answers = [
        Err(LookupFailure::Failed("timed out".into())),
        Err(LookupFailure::NoRecords),
        Ok(Vec::new()),
    ];
    for answer in answers {
        let (stub, c) = polled("").await;
        stub.set_srv(TEST1, answer.clone());
        after_two_rescans().await;
        assert_eq!(hosts_of(&c), ports(&[27017, 27018]), "{answer:?}");
        c.shutdown().await;
    }
}

#[tokio::test(start_paused = true)]
async fn polling_9_load_balanced_clients_do_not_poll() {
    let (stub, c) = polled("mongodb+srv://test3.test.build.10gen.cc/?loadBalanced=true").await;
    let asked = stub.srv_questions.load(Ordering::SeqCst);
    stub.set_hosts(
        "_mongodb._tcp.test3.test.build.10gen.cc.",
        &[(HOST, 27017), (HOST, 27018)],
    );
    after_two_rescans().await;
    assert_eq!(hosts_of(&c), ports(&[27017]));
    assert_eq!(stub.srv_questions.load(Ordering::SeqCst), asked);
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn polling_10_and_11_srv_max_hosts_zero_or_large_takes_every_host() {
    let (stub, c) = polled("?srvMaxHosts=0").await;
    stub.set_hosts(TEST1, &[(HOST, 27017), (HOST, 27019), (HOST, 27020)]);
    after_two_rescans().await;
    assert_eq!(hosts_of(&c), ports(&[27017, 27019, 27020]));
    c.shutdown().await;

    let (stub, c) = polled("?srvMaxHosts=2").await;
    stub.set_hosts(TEST1, &[(HOST, 27019), (HOST, 27020)]);
    after_two_rescans().await;
    assert_eq!(hosts_of(&c), ports(&[27019, 27020]));
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn polling_12_new_hosts_are_drawn_up_to_srv_max_hosts() {
    let (stub, c) = polled("?srvMaxHosts=2").await;
    stub.set_hosts(TEST1, &[(HOST, 27017), (HOST, 27019), (HOST, 27020)]);
    after_two_rescans().await;
    let hosts = hosts_of(&c);
    assert_eq!(hosts.len(), 2, "{hosts:?}");
    assert!(hosts.contains(&"localhost.test.build.10gen.cc:27017".to_owned()));
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn polling_13_custom_service_names_are_polled() {
    let (stub, c) =
        polled("mongodb+srv://test22.test.build.10gen.cc/?srvServiceName=customname").await;
    stub.set_hosts(
        "_customname._tcp.test22.test.build.10gen.cc.",
        &[(HOST, 27019), (HOST, 27020)],
    );
    after_two_rescans().await;
    assert_eq!(hosts_of(&c), ports(&[27019, 27020]));
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn failed_rescans_retry_at_heartbeat_frequency_good_ones_at_the_ttl() {
    let (stub, c) = polled("?heartbeatFrequencyMS=10000").await;
    let start = stub.srv_questions.load(Ordering::SeqCst);
    // Good answers: one rescan a minute.
    tokio::time::sleep(RESCAN * 3 + Duration::from_secs(1)).await;
    assert_eq!(stub.srv_questions.load(Ordering::SeqCst) - start, 3);
    // Failed answers: every heartbeatFrequencyMS (10 s) until one succeeds.
    stub.set_srv(TEST1, Err(LookupFailure::Failed("timed out".into())));
    let before = stub.srv_questions.load(Ordering::SeqCst);
    tokio::time::sleep(RESCAN * 2 + Duration::from_secs(1)).await;
    let failed = stub.srv_questions.load(Ordering::SeqCst) - before;
    assert!(
        failed >= 6,
        "{failed} rescans in two minutes, the second of failures"
    );
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn polling_stops_when_the_client_shuts_down() {
    let (stub, c) = polled("").await;
    c.shutdown().await;
    let asked = stub.srv_questions.load(Ordering::SeqCst);
    after_two_rescans().await;
    assert_eq!(stub.srv_questions.load(Ordering::SeqCst), asked);
}
