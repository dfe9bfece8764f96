//! No option is silently dropped: every field of [`ClientOptions`] is either honoured (a test
//! here shows it changing what the client does, against the testkit server) or refused by
//! [`ClientOptions::check_supported`] with an error naming it.
//!
//! [`every_field_is_listed`] destructures `ClientOptions` without `..`: adding a field fails
//! to compile until it is listed there with the test that covers it.
#![allow(
    clippy::disallowed_methods,
    reason = "tests measure elapsed wall time and wait for servers"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bson::{Bson, doc};
use mongo_events::cmap::CmapEvent;
use mongo_events::command::CommandEvent;
use mongo_events::sdam::HeartbeatEvent;
use mongo_events::{EventRecorder, Listeners, ServerType, TopologyType};
use mongo_testkit::{ReplicaSet, ServerOptions, TestServer, generate_test_certs};

use crate::client::{Backoff, BackoffSleep};
use crate::options::{ClientOptions, Compressor, ReadMode, TlsOptions};
use crate::uri::UriError;
use crate::{Client, ErrorKind};

/// Lists every field and the test that proves it is honoured or refused.
#[test]
fn every_field_is_listed() {
    #[rustfmt::skip]
    let ClientOptions {
        hosts: _,                       // hosts_and_server_selection_timeout
        srv: _,                         // srv::tests (prose tests), xtask spec dns-seedlist
        srv_service_name: _,            // srv::tests::polling_13_…, dns-seedlist
        srv_max_hosts: _,               // srv::tests::polling_10_… / _12_…, dns-seedlist
        credential: _,                  // credential_and_default_database
        auth_source: _,                 // srv::rules_tests::txt_options_apply_under_the_…
        resolver: _,                    // xtask spec dns-seedlist (explicit name servers)
        default_database: _,            // credential_and_default_database
        app_name: _,                    // app_name_compressors_and_zlib_level
        compressors: _,                 // app_name_compressors_and_zlib_level
        zlib_compression_level: _,      // app_name_compressors_and_zlib_level, refused_…
        connect_timeout: _,             // connect_timeout_bounds_establishment
        socket_timeout: _,              // socket_timeout_and_timeout_ms_bound_round_trips
        timeout: _,                     // socket_timeout_and_timeout_ms_bound_round_trips
        server_selection_timeout: _,    // hosts_and_server_selection_timeout
        server_selection_try_once: _,   // refused_options_name_themselves (true), selection_…
        local_threshold: _,             // topology_settings_reach_sdam
        heartbeat_frequency: _,         // topology_settings_reach_sdam
        server_monitoring_mode: _,      // monitoring_mode_poll_never_awaits
        direct_connection: _,           // replica_set_options
        load_balanced: _,               // load_balanced_mode
        replica_set: _,                 // replica_set_options
        read_preference: _,             // replica_set_options
        read_concern_level: _,          // concerns_are_sent
        write_concern: _,               // concerns_are_sent
        retry_reads: _,                 // retry_reads_and_retry_writes
        retry_writes: _,                // retry_reads_and_retry_writes
        max_pool_size: _,               // pool_options_reach_the_pools
        min_pool_size: _,               // pool_options_reach_the_pools
        max_connecting: _,              // pool_options_reach_the_pools
        max_idle_time: _,               // pool_options_reach_the_pools
        max_lifetime: _,                // lifetime_tests.rs
        idle_check_threshold: _,        // tests/client/liveness.rs
        wait_queue_timeout: _,          // pool_options_reach_the_pools
        max_adaptive_retries: _,        // max_adaptive_retries_bounds_overload_retries
        enable_overload_retargeting: _, // overload_retargeting_moves_the_retry
        tls: _,                         // tls_options, refused_options_name_themselves
        proxy: _,                       // tests/socks5.rs
    } = ClientOptions::default();
    let TlsOptions {
        enabled: _,                              // tls_options
        ca_file: _,                              // tls_options
        certificate_key_file: _,                 // tls_options
        certificate_key_file_password: _,        // refused_options_name_themselves
        allow_invalid_certificates: _,           // tls_options
        allow_invalid_hostnames: _,              // tls_options
        insecure: _,                             // tls_options
        disable_ocsp_endpoint_check: _,          // tls_options (true), refused_… (false)
        disable_certificate_revocation_check: _, // tls_options (true), refused_… (false)
    } = TlsOptions::default();
}

pub(super) fn recorded() -> (Arc<EventRecorder>, Listeners) {
    let recorder = EventRecorder::shared();
    let mut listeners = Listeners::new();
    listeners.add_all(recorder.clone());
    (recorder, listeners)
}

pub(super) async fn client_with(uri: &str, listeners: Listeners) -> Client {
    Client::builder()
        .options(ClientOptions::parse(uri).expect("uri"))
        .listeners(listeners)
        .build()
        .await
        .expect("client")
}

pub(super) fn started(recorder: &EventRecorder, name: &str) -> Vec<CommandEvent> {
    recorder
        .command_events()
        .into_iter()
        .filter(|e| matches!(e, CommandEvent::Started(s) if s.command_name == name))
        .collect()
}

pub(super) fn started_command(e: &CommandEvent) -> &bson::Document {
    match e {
        CommandEvent::Started(s) => &s.command,
        other => panic!("not a started event: {other:?}"),
    }
}

/// Building a client from `uri` fails, naming `option`.
async fn assert_refused(uri: &str, option: &str) {
    let err = Client::with_uri_str(uri)
        .await
        .expect_err("the option must be refused");
    match err.kind() {
        ErrorKind::Uri(UriError::Unsupported { option: named, .. }) => {
            assert_eq!(named, option, "{uri}: {err}");
        }
        other => panic!("{uri}: expected Unsupported {option}, got {other:?}"),
    }
    assert!(err.to_string().contains(option), "{err}");
}

#[tokio::test]
async fn refused_options_name_themselves() {
    let h = "mongodb://127.0.0.1:1";
    // (connection string, or the query to append to `h`; the option the error must name)
    let cases = [
        ("/?serverSelectionTryOnce=true", "serverSelectionTryOnce"),
        (
            "mongodb://u@127.0.0.1:1/?authMechanism=GSSAPI",
            "authMechanism",
        ),
        ("/?tlsCAFile=/tmp/ca.pem", "tlsCAFile"),
        (
            "/?tlsAllowInvalidHostnames=true",
            "tlsAllowInvalidHostnames",
        ),
        (
            "/?tls=true&tlsCertificateKeyFilePassword=secret",
            "tlsCertificateKeyFilePassword",
        ),
        (
            "/?tls=true&tlsDisableOCSPEndpointCheck=false",
            "tlsDisableOCSPEndpointCheck",
        ),
        (
            "/?tls=true&tlsDisableCertificateRevocationCheck=false",
            "tlsDisableCertificateRevocationCheck",
        ),
        (
            "/?compressors=snappy&zlibCompressionLevel=5",
            "zlibCompressionLevel",
        ),
    ];
    for (uri, option) in cases {
        let uri = if uri.starts_with("mongodb") {
            uri.to_owned()
        } else {
            format!("{h}{uri}")
        };
        assert_refused(&uri, option).await;
    }
    // serverSelectionTryOnce=false is what this client does: accepted.
    let ok = Client::with_uri_str(&format!("{h}/?serverSelectionTryOnce=false"))
        .await
        .expect("false is honoured");
    ok.shutdown().await;
}

#[tokio::test]
async fn hosts_and_server_selection_timeout() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let client = Client::with_uri_str(&server.uri()).await.unwrap();
    client.run_command("admin", doc! {"ping": 1}).await.unwrap();
    let reached = client.pool_stats();
    assert_eq!(reached.len(), 1);
    assert_eq!(reached[0].address.to_string(), server.host_port());
    client.shutdown().await;

    // No server at this address: selection gives up after serverSelectionTimeoutMS.
    let started_at = Instant::now();
    let client = Client::with_uri_str("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300")
        .await
        .unwrap();
    let err = client
        .run_command("admin", doc! {"ping": 1})
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::ServerSelection(_)),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("serverSelectionTimeoutMS"),
        "{err}"
    );
    assert!(started_at.elapsed() < Duration::from_secs(10));
    client.shutdown().await;
}

#[tokio::test]
async fn credential_and_default_database() {
    let server = TestServer::start(ServerOptions::default().with_user("app", "secret"))
        .await
        .unwrap();
    let hp = server.host_port();
    let good = Client::with_uri_str(&format!(
        "mongodb://app:secret@{hp}/appdb?authSource=admin&directConnection=true"
    ))
    .await
    .unwrap();
    good.run_command("admin", doc! {"listDatabases": 1})
        .await
        .expect("authenticated");
    assert_eq!(good.default_database().unwrap().name(), "appdb");
    good.shutdown().await;

    let bad = Client::with_uri_str(&format!(
        "mongodb://app:wrong@{hp}/?directConnection=true&serverSelectionTimeoutMS=2000"
    ))
    .await
    .unwrap();
    let err = bad
        .run_command("admin", doc! {"listDatabases": 1})
        .await
        .unwrap_err();
    assert!(err.is_auth_error(), "{err:?}");
    assert!(bad.default_database().is_none());
    bad.shutdown().await;
}

#[tokio::test]
async fn app_name_compressors_and_zlib_level() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let uri = format!(
        "{}&appname=coverage&compressors=zlib,snappy&zlibCompressionLevel=7",
        server.uri()
    );
    let client = Client::with_uri_str(&uri).await.unwrap();
    let mut request = client.start_request().await.unwrap();
    request
        .run_command("admin", doc! {"ping": 1})
        .await
        .unwrap();
    let conn = request.conn.as_ref().unwrap();
    // The first compressor both sides know, at the configured level.
    assert_eq!(
        conn.compressor(),
        Some(Compressor::zlib_with_level(7).unwrap())
    );
    let options = client.inner.topology.connection_options();
    let metadata = &options.metadata;
    assert_eq!(
        metadata
            .get_document("application")
            .unwrap()
            .get_str("name")
            .ok(),
        Some("coverage")
    );
    drop(request);
    client.shutdown().await;

    let plain = Client::with_uri_str(&server.uri()).await.unwrap();
    let mut request = plain.start_request().await.unwrap();
    request
        .run_command("admin", doc! {"ping": 1})
        .await
        .unwrap();
    assert_eq!(request.conn.as_ref().unwrap().compressor(), None);
    drop(request);
    plain.shutdown().await;
}

#[tokio::test]
async fn connect_timeout_bounds_establishment() {
    // A listener that accepts and never answers: the handshake hangs.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let (recorder, listeners) = recorded();
    let uri = format!(
        "mongodb://127.0.0.1:{port}/?directConnection=true&connectTimeoutMS=200&serverSelectionTimeoutMS=1500"
    );
    let client = client_with(&uri, listeners).await;
    let started_at = Instant::now();
    let err = client
        .run_command("admin", doc! {"ping": 1})
        .await
        .unwrap_err();
    assert!(started_at.elapsed() < Duration::from_secs(10), "{err:?}");
    // The monitor's hello timed out after connectTimeoutMS: the heartbeat failed with a
    // timeout, long before serverSelectionTimeoutMS.
    let failed_heartbeats = recorder
        .heartbeat_events()
        .into_iter()
        .filter(|e| matches!(e, HeartbeatEvent::Failed(_)))
        .count();
    assert!(failed_heartbeats >= 1, "{:?}", recorder.heartbeat_events());
    // The pool's connections are bounded too: the connection enforces connectTimeoutMS over
    // its whole establishment (`conn::establish`'s tests).
    client.shutdown().await;
    hold.abort();
}

pub(super) fn block(server: &TestServer, command: &str, ms: i32) {
    server
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": {"times": 1},
            "data": {"failCommands": [command], "blockConnection": true, "blockTimeMS": ms},
        })
        .unwrap();
}

#[tokio::test]
async fn socket_timeout_and_timeout_ms_bound_round_trips() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    for (option, needle) in [
        ("socketTimeoutMS=300", "socket timeout"),
        ("timeoutMS=300", "timeoutMS"),
    ] {
        let client = Client::with_uri_str(&format!("{}&{option}", server.uri()))
            .await
            .unwrap();
        client.run_command("admin", doc! {"ping": 1}).await.unwrap();
        block(&server, "ping", 3000);
        let started_at = Instant::now();
        let err = client
            .run_command("admin", doc! {"ping": 1})
            .await
            .unwrap_err();
        let took = started_at.elapsed();
        // timeoutMS: the timeout error (a socket deadline, or the server's MaxTimeMSExpired).
        let timed_out = err.is_network_timeout() || err.is_timeout();
        assert!(timed_out, "{option}: {err:?}");
        assert!(err.to_string().contains(needle), "{option}: {err}");
        assert!(
            took < Duration::from_millis(2500),
            "{option}: took {took:?}"
        );
        server.clear_fail_points();
        client.shutdown().await;
    }

    // Without either, the same blocked command waits and succeeds.
    let client = Client::with_uri_str(&server.uri()).await.unwrap();
    client.run_command("admin", doc! {"ping": 1}).await.unwrap();
    block(&server, "ping", 300);
    client.run_command("admin", doc! {"ping": 1}).await.unwrap();
    client.shutdown().await;

    // timeoutMS also bounds server selection, whatever serverSelectionTimeoutMS says.
    let client =
        Client::with_uri_str("mongodb://127.0.0.1:1/?timeoutMS=300&serverSelectionTimeoutMS=60000")
            .await
            .unwrap();
    let started_at = Instant::now();
    let err = client
        .run_command("admin", doc! {"ping": 1})
        .await
        .unwrap_err();
    // The timeout error, with the selection error as its source.
    match err.kind() {
        ErrorKind::Timeout(t) => {
            assert_eq!(
                t.stage,
                crate::error::TimeoutStage::ServerSelection,
                "{err:?}"
            );
            assert!(
                matches!(
                    t.source.as_ref().map(crate::Error::kind),
                    Some(ErrorKind::ServerSelection(_))
                ),
                "{err:?}"
            );
        }
        other => panic!("expected a timeout error, got {other:?}"),
    }
    assert!(err.to_string().contains("timeoutMS"), "{err}");
    assert!(started_at.elapsed() < Duration::from_secs(10));
    client.shutdown().await;
}

#[tokio::test]
async fn topology_settings_reach_sdam() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let uri = format!(
        "{}&localThresholdMS=42&heartbeatFrequencyMS=700",
        server.uri()
    );
    let client = Client::with_uri_str(&uri).await.unwrap();
    let desc = client.topology_description();
    assert_eq!(desc.local_threshold(), Duration::from_millis(42));
    assert_eq!(desc.heartbeat_frequency(), Duration::from_millis(700));
    client.shutdown().await;
}

#[tokio::test]
async fn monitoring_mode_poll_never_awaits() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let mut awaited_by_mode = Vec::new();
    for mode in ["poll", "stream"] {
        let (recorder, listeners) = recorded();
        let uri = format!(
            "{}&heartbeatFrequencyMS=500&serverMonitoringMode={mode}",
            server.uri()
        );
        let client = client_with(&uri, listeners).await;
        client.run_command("admin", doc! {"ping": 1}).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1300)).await;
        let awaited = recorder
            .heartbeat_events()
            .into_iter()
            .filter(|e| matches!(e, HeartbeatEvent::Started(s) if s.awaited))
            .count();
        awaited_by_mode.push((mode, awaited));
        client.shutdown().await;
    }
    assert_eq!(awaited_by_mode[0], ("poll", 0), "{awaited_by_mode:?}");
    assert!(awaited_by_mode[1].1 > 0, "{awaited_by_mode:?}");
}

#[tokio::test]
async fn replica_set_options() {
    let rs = ReplicaSet::start("cov", 3).await.unwrap();
    // replicaSet: the right name finds the primary.
    let client = Client::with_uri_str(&format!("{}&heartbeatFrequencyMS=500", rs.uri()))
        .await
        .unwrap();
    assert!(
        client
            .wait_for_topology(Duration::from_secs(10), |d| d.topology_type()
                == TopologyType::ReplicaSetWithPrimary)
            .await
    );
    client.shutdown().await;

    // A wrong replicaSet name: every member is removed, nothing is selectable.
    let hosts = rs.hosts().join(",");
    let wrong = Client::with_uri_str(&format!(
        "mongodb://{hosts}/?replicaSet=other&serverSelectionTimeoutMS=500"
    ))
    .await
    .unwrap();
    assert!(wrong.run_command("admin", doc! {"ping": 1}).await.is_err());
    wrong.shutdown().await;

    // directConnection=true to one secondary: a Single topology of that member.
    let primary = rs.primary_index().unwrap();
    let secondary = (0..3).find(|i| *i != primary).unwrap();
    let member = rs.member(secondary).unwrap().host_port();
    let direct = Client::with_uri_str(&format!("mongodb://{member}/?directConnection=true"))
        .await
        .unwrap();
    direct.run_command("admin", doc! {"ping": 1}).await.unwrap();
    assert_eq!(
        direct.topology_description().topology_type(),
        TopologyType::Single
    );
    direct.shutdown().await;
    let discovered = Client::with_uri_str(&format!(
        "mongodb://{member}/?directConnection=false&heartbeatFrequencyMS=500"
    ))
    .await
    .unwrap();
    assert!(
        discovered
            .wait_for_topology(Duration::from_secs(10), |d| d.topology_type()
                == TopologyType::ReplicaSetWithPrimary)
            .await
    );
    discovered.shutdown().await;

    // readPreference=secondary: reads go to a secondary.
    let (recorder, listeners) = recorded();
    let reader = client_with(
        &format!(
            "{}&readPreference=secondary&heartbeatFrequencyMS=500",
            rs.uri()
        ),
        listeners,
    )
    .await;
    assert_eq!(
        reader.options().read_preference.as_ref().unwrap().mode,
        ReadMode::Secondary
    );
    reader
        .database("db")
        .collection::<bson::Document>("c")
        .find_one(doc! {})
        .await
        .unwrap();
    let finds: Vec<_> = recorder
        .command_events()
        .into_iter()
        .filter_map(|e| match e {
            CommandEvent::Started(s) if s.command_name == "find" => {
                Some(s.connection.address.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(finds.len(), 1);
    let primary_address = rs.primary().unwrap().host_port();
    assert_ne!(finds[0].to_string(), primary_address);
    reader.shutdown().await;
    rs.stop().await;
}

#[tokio::test]
async fn load_balanced_mode() {
    let lb = TestServer::start(ServerOptions::default().with_load_balancer())
        .await
        .unwrap();
    let client = Client::with_uri_str(&format!("mongodb://{}/?loadBalanced=true", lb.host_port()))
        .await
        .unwrap();
    client.run_command("admin", doc! {"ping": 1}).await.unwrap();
    assert_eq!(
        client.topology_description().topology_type(),
        TopologyType::LoadBalanced
    );
    client.shutdown().await;
}

#[tokio::test]
async fn concerns_are_sent() {
    let rs = ReplicaSet::start("concerns", 2).await.unwrap();
    let (recorder, listeners) = recorded();
    let uri = format!(
        "{}&readConcernLevel=majority&w=majority&wTimeoutMS=1000&journal=true",
        rs.uri()
    );
    let client = client_with(&uri, listeners).await;
    let coll = client.database("db").collection("c");
    coll.insert_one(doc! {"x": 1}).await.unwrap();
    coll.find_one(doc! {}).await.unwrap();
    let insert = started(&recorder, "insert");
    assert_eq!(
        started_command(&insert[0])
            .get_document("writeConcern")
            .unwrap(),
        &doc! {"w": "majority", "j": true, "wtimeout": 1000_i64}
    );
    let find = started(&recorder, "find");
    assert_eq!(
        started_command(&find[0])
            .get_document("readConcern")
            .unwrap(),
        &doc! {"level": "majority"}
    );
    // A user's command gets neither.
    client.run_command("db", doc! {"count": "c"}).await.unwrap();
    let count = started(&recorder, "count");
    assert!(!started_command(&count[0]).contains_key("readConcern"));
    client.shutdown().await;
    rs.stop().await;
}

#[tokio::test]
async fn retry_reads_and_retry_writes() {
    let rs = ReplicaSet::start("retries", 2).await.unwrap();
    for retry in [true, false] {
        let (recorder, listeners) = recorded();
        let uri = format!(
            "{}&retryReads={retry}&retryWrites={retry}&heartbeatFrequencyMS=500",
            rs.uri()
        );
        let client = client_with(&uri, listeners).await;
        let coll = client.database("db").collection("r");
        coll.insert_one(doc! {"warm": 1}).await.unwrap();
        let insert = started(&recorder, "insert");
        assert_eq!(
            started_command(&insert[0]).contains_key("txnNumber"),
            retry,
            "retryWrites={retry}"
        );
        rs.primary()
            .unwrap()
            .configure_fail_point(doc! {
                "configureFailPoint": "failCommand", "mode": {"times": 1},
                "data": {"failCommands": ["find"], "errorCode": 91},
            })
            .unwrap();
        recorder.clear();
        let result = coll.find_one(doc! {}).await;
        assert_eq!(result.is_ok(), retry, "retryReads={retry}: {result:?}");
        assert_eq!(started(&recorder, "find").len(), if retry { 2 } else { 1 });
        rs.primary().unwrap().clear_fail_points();
        client.shutdown().await;
    }
    rs.stop().await;
}

/// A backoff with no jitter: overload retries do not wait.
#[derive(Debug)]
struct NoJitter;

impl Backoff for NoJitter {
    fn jitter(&self) -> f64 {
        0.0
    }
    fn sleep(&self, _: Duration) -> BackoffSleep {
        Box::pin(std::future::ready(()))
    }
}

/// Makes `server` answer `command` with a retryable overload error (`mode` as the fail point
/// takes it).
fn overload(server: &TestServer, command: &str, mode: Bson) {
    server
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": mode,
            "data": {"failCommands": [command], "errorCode": 462,
                     "errorLabels": ["SystemOverloadedError", "RetryableError"]},
        })
        .unwrap();
}

#[tokio::test]
async fn max_adaptive_retries_bounds_overload_retries() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    overload(&server, "find", Bson::from("alwaysOn"));
    for (option, attempts) in [
        ("", 3),
        ("&maxAdaptiveRetries=1", 2),
        ("&maxAdaptiveRetries=0", 1),
    ] {
        let (recorder, listeners) = recorded();
        let client = Client::builder()
            .options(ClientOptions::parse(&format!("{}{option}", server.uri())).unwrap())
            .listeners(listeners)
            .backoff(Arc::new(NoJitter))
            .build()
            .await
            .unwrap();
        let coll = client.database("db").collection::<bson::Document>("c");
        let err = coll.find_one(doc! {}).await.unwrap_err();
        assert!(err.is_retryable_overload_error(), "{option}: {err:?}");
        assert_eq!(started(&recorder, "find").len(), attempts, "{option}");
        client.shutdown().await;
    }
}

#[tokio::test]
async fn overload_retargeting_moves_the_retry() {
    let rs = ReplicaSet::start("retarget", 3).await.unwrap();
    let primary = rs.primary().unwrap().host_port();
    for retarget in [false, true] {
        overload(rs.primary().unwrap(), "find", Bson::from(doc! {"times": 1}));
        let (recorder, listeners) = recorded();
        let uri = format!(
            "{}&readPreference=primaryPreferred&heartbeatFrequencyMS=500\
             &enableOverloadRetargeting={retarget}",
            rs.uri()
        );
        let client = Client::builder()
            .options(ClientOptions::parse(&uri).unwrap())
            .listeners(listeners)
            .backoff(Arc::new(NoJitter))
            .build()
            .await
            .unwrap();
        let secondaries = |d: &mongo_sdam::TopologyDescription| {
            d.servers()
                .filter(|s| s.server_type == ServerType::RsSecondary)
                .count()
                == 2
        };
        assert!(
            client
                .wait_for_topology(Duration::from_secs(10), secondaries)
                .await
        );
        let coll = client.database("db").collection::<bson::Document>("c");
        coll.find_one(doc! {}).await.unwrap();
        let servers: Vec<String> = started(&recorder, "find")
            .iter()
            .map(|e| match e {
                CommandEvent::Started(s) => s.connection.address.to_string(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(servers.len(), 2, "{servers:?}");
        assert_eq!(servers[0], primary);
        assert_eq!(servers[1] != primary, retarget, "{servers:?}");
        client.shutdown().await;
    }
    rs.stop().await;
}

#[tokio::test]
async fn pool_options_reach_the_pools() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let (recorder, listeners) = recorded();
    let uri = format!(
        "{}&maxPoolSize=7&minPoolSize=2&maxConnecting=1&maxIdleTimeMS=60000&waitQueueTimeoutMS=900",
        server.uri()
    );
    let client = client_with(&uri, listeners).await;
    client.run_command("admin", doc! {"ping": 1}).await.unwrap();
    let created = recorder
        .cmap_events()
        .into_iter()
        .find_map(|e| match e {
            CmapEvent::PoolCreated(c) => Some(c.options),
            _ => None,
        })
        .expect("PoolCreated");
    assert_eq!(created.max_pool_size, Some(7));
    assert_eq!(created.min_pool_size, Some(2));
    assert_eq!(created.max_connecting, Some(1));
    assert_eq!(created.max_idle_time, Some(Duration::from_secs(60)));
    assert_eq!(created.wait_queue_timeout, Some(Duration::from_millis(900)));
    // minPoolSize at work: the pool fills itself to two connections.
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.pool_stats()[0].stats.total < 2 {
        assert!(Instant::now() < deadline, "{:?}", client.pool_stats());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client.shutdown().await;
}

#[tokio::test]
async fn tls_options() {
    let certs = generate_test_certs().unwrap();
    let server = TestServer::start(ServerOptions::default().with_tls(certs.server_tls()))
        .await
        .unwrap();
    let port = server.address().port();
    let ca = certs.ca_cert.display().to_string();
    let cert = certs.client_pem.display().to_string();
    let ping = |uri: String| async move {
        let client = Client::with_uri_str(&uri).await?;
        let r = client.run_command("admin", doc! {"ping": 1}).await;
        client.shutdown().await;
        r
    };
    let base =
        format!("mongodb://localhost:{port}/?directConnection=true&serverSelectionTimeoutMS=1000");
    // tls=false (unset) against a TLS server: no connection.
    assert!(ping(base.clone()).await.is_err());
    // tls + the test CA (and a client certificate): works; without the CA: refused.
    ping(format!(
        "{base}&tls=true&tlsCAFile={ca}&tlsCertificateKeyFile={cert}"
    ))
    .await
    .expect("trusted");
    assert!(
        ping(format!("{base}&tls=true")).await.is_err(),
        "unknown CA"
    );
    for relaxed in ["tlsAllowInvalidCertificates=true", "tlsInsecure=true"] {
        ping(format!("{base}&tls=true&{relaxed}"))
            .await
            .unwrap_or_else(|e| panic!("{relaxed}: {e:?}"));
    }
    // A server on 127.0.0.2, which its certificate (localhost, 127.0.0.1) does not name:
    // refused, unless tlsAllowInvalidHostnames.
    let other = TestServer::start(
        ServerOptions::default()
            .with_host("127.0.0.2")
            .with_tls(certs.server_tls()),
    )
    .await
    .unwrap();
    let by_ip = format!(
        "mongodb://127.0.0.2:{}/?directConnection=true&serverSelectionTimeoutMS=1000&tls=true&tlsCAFile={ca}",
        other.address().port()
    );
    assert!(ping(by_ip.clone()).await.is_err(), "host name mismatch");
    ping(format!("{by_ip}&tlsAllowInvalidHostnames=true"))
        .await
        .expect("host name check relaxed");
    // The revocation options set to true are what the client does anyway: accepted.
    ping(format!(
        "{base}&tls=true&tlsCAFile={ca}&tlsDisableOCSPEndpointCheck=true"
    ))
    .await
    .expect("OCSP endpoint check disabled");
    ping(format!(
        "{base}&tls=true&tlsCAFile={ca}&tlsDisableCertificateRevocationCheck=true"
    ))
    .await
    .expect("revocation check disabled");
    let _ = std::fs::remove_dir_all(&certs.dir);
}
