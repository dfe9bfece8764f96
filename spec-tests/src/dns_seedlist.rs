//! Runner for the initial DNS seedlist discovery tests
//! (`initial-dns-seedlist-discovery/tests/{replica-set,load-balanced,sharded}`), for real:
//! the README's zone is served by an in-process DNS server (`dns_zone.rs`) that each client
//! is pointed at (`ResolverConfig::with_name_servers`), and the hosts are testkit
//! deployments with TLS — a replica set named `repl0`, two mongos routers, two
//! load-balanced mongoses behind the testkit's balancer.
//!
//! The testkit listens on ephemeral ports, so each folder's zone maps the README's ports to
//! its deployment's (replica set: 27017, 27018, 27019 to members 0, 1, 2; sharded: 27017,
//! 27018 to the routers; load balanced: 8000 to the balancer) and the expected `seeds` and
//! `hosts` are mapped the same way. Replica-set members name themselves by address, so an
//! expected `localhost:P` is `127.0.0.1:map(P)`. A file that turns TLS off (`ssl=false`)
//! runs against a second deployment without TLS, served by a zone of its own.
//!
//! Each file: parse the URI, point it at the zone (and at the testkit CA when TLS is on),
//! build the client; `error: true` expects this to fail. Then `seeds` / `numSeeds` are
//! checked against the client's initial seed list, `options` and `parsed_options` against
//! its options, `hosts` / `numHosts` against the topology once discovery settles, and a
//! `ping` runs unless `ping` is false.
#![allow(
    clippy::disallowed_methods,
    reason = "a runner of live deployments: it waits on real time for discovery to settle"
)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mongo_client::bson::doc;
use mongo_client::{Client, ClientOptions, ResolverConfig};
use mongo_testkit::{
    Deployment, DeploymentKind, ReplicaSet, ServerOptions, TestCerts, generate_test_certs_for,
};
use serde_json::Value;

use crate::dns_zone::{DnsServer, ZoneRecord, parse_readme};
use crate::util::{load_json, suite_files};
use crate::{Context, Outcome, Suite};

/// The suite's folder, under the official root.
const ROOT: &str = "initial-dns-seedlist-discovery/tests";

/// How long discovery may take to reach the expected hosts.
const DISCOVERY_LIMIT: Duration = Duration::from_secs(10);

/// The folders and the deployment each needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    ReplicaSet,
    Sharded,
    LoadBalanced,
}

impl Kind {
    fn of(file: &Path) -> Option<Kind> {
        let dir = file.parent()?.file_name()?.to_str()?;
        match dir {
            "replica-set" => Some(Kind::ReplicaSet),
            "sharded" => Some(Kind::Sharded),
            "load-balanced" => Some(Kind::LoadBalanced),
            _ => None,
        }
    }
}

/// A deployment, its zone and how the README's ports map onto it.
struct Env {
    ports: HashMap<u16, u16>,
    dns: DnsServer,
    deployment: Running,
}

enum Running {
    Rs(ReplicaSet),
    Other(Deployment),
}

/// Runs the official files (there are no own cases: they would need a zone of their own).
pub(crate) fn run(ctx: &Context, out: &mut Outcome) -> bool {
    let files = suite_files(ctx, ROOT, Suite::DnsSeedlist);
    if files.is_empty() {
        return true;
    }
    let Some(readme) = ctx.official_dir(ROOT).map(|d| d.join("README.md")) else {
        for f in &files {
            out.fail(
                f,
                "(zone)",
                "the zone is read from the official README, not given",
            );
        }
        return true;
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            out.fail(&readme, "(runtime)", format!("cannot build a runtime: {e}"));
            return true;
        }
    };
    runtime.block_on(run_files(&readme, &files, out));
    true
}

async fn run_files(readme: &Path, files: &[PathBuf], out: &mut Outcome) {
    let zone = match std::fs::read_to_string(readme)
        .map_err(|e| e.to_string())
        .and_then(|t| parse_readme(&t))
        .map(with_second_customname_record)
    {
        Ok(z) => z,
        Err(e) => {
            for f in files {
                out.fail(f, "(zone)", format!("{}: {e}", readme.display()));
            }
            return;
        }
    };
    let certs = match cert_dir().and_then(|d| {
        generate_test_certs_for(
            &d,
            &[
                "localhost.test.build.10gen.cc",
                "localhost.sub.test.build.10gen.cc",
            ],
        )
        .map_err(|e| e.to_string())
    }) {
        Ok(c) => c,
        Err(e) => {
            for f in files {
                out.fail(f, "(certificates)", e.clone());
            }
            return;
        }
    };
    let mut envs: HashMap<(Kind, bool), Env> = HashMap::new();
    for file in files {
        let Some(kind) = Kind::of(file) else {
            out.skip(file, "(file)", "not in one of the suite's three folders");
            continue;
        };
        let case = match load_json(file) {
            Ok(c) => c,
            Err(e) => {
                out.fail(file, "(file)", e);
                continue;
            }
        };
        let tls = tls_wanted(&case);
        if let std::collections::hash_map::Entry::Vacant(slot) = envs.entry((kind, tls)) {
            match start_env(kind, tls, &certs, &zone).await {
                Ok(env) => {
                    slot.insert(env);
                }
                Err(e) => {
                    out.fail(file, "(deployment)", e);
                    continue;
                }
            }
        }
        let Some(env) = envs.get(&(kind, tls)) else {
            continue;
        };
        let name = file
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        out.record(file, &name, run_case(&case, env, &certs, kind).await);
    }
    for (_, env) in envs.drain() {
        env.dns.stop().await;
        match env.deployment {
            Running::Rs(rs) => rs.stop().await,
            Running::Other(d) => d.stop().await,
        }
    }
    let _ = std::fs::remove_dir_all(&certs.dir);
}

/// The README lists one `_customname._tcp.test22` record (port 27017), but
/// `srv-service-name.json` expects the seeds 27017 and 27018, and the SRV polling tests speak
/// of "both records" of test22: the zone the files were written against has two. The second
/// one is added when the README's table lacks it.
fn with_second_customname_record(mut zone: Vec<ZoneRecord>) -> Vec<ZoneRecord> {
    let name = "_customname._tcp.test22.test.build.10gen.cc.";
    let existing: Vec<(u32, String)> = zone
        .iter()
        .filter_map(|r| match r {
            ZoneRecord::Srv {
                name: n,
                ttl,
                target,
                ..
            } if n == name => Some((*ttl, target.clone())),
            _ => None,
        })
        .collect();
    if let [(ttl, target)] = existing.as_slice() {
        zone.push(ZoneRecord::Srv {
            name: name.to_owned(),
            ttl: *ttl,
            port: 27018,
            target: target.clone(),
        });
    }
    zone
}

fn cert_dir() -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("dns-seedlist-certs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

/// Whether the file's client uses TLS: on for `mongodb+srv` unless the URI turns it off.
fn tls_wanted(case: &Value) -> bool {
    let uri = case.get("uri").and_then(Value::as_str).unwrap_or_default();
    ClientOptions::parse(uri).map_or(true, |o| o.tls_enabled())
}

async fn start_env(
    kind: Kind,
    tls: bool,
    certs: &TestCerts,
    zone: &[ZoneRecord],
) -> Result<Env, String> {
    let mut options = ServerOptions::default();
    if tls {
        options = options.with_tls(certs.server_tls());
    }
    let err = |e: mongo_testkit::Error| format!("cannot start the {kind:?} deployment: {e}");
    let (ports, deployment): (Vec<(u16, u16)>, Running) = match kind {
        Kind::ReplicaSet => {
            let rs = ReplicaSet::start_with("repl0", 3, options)
                .await
                .map_err(err)?;
            let p: Vec<u16> = rs.members().iter().map(|m| m.address().port()).collect();
            (
                vec![27017, 27018, 27019].into_iter().zip(p).collect(),
                Running::Rs(rs),
            )
        }
        Kind::Sharded => {
            let d = Deployment::start(DeploymentKind::Sharded { routers: 2 }, options)
                .await
                .map_err(err)?;
            let p: Vec<u16> = d.servers().iter().map(|s| s.address().port()).collect();
            (
                vec![27017, 27018].into_iter().zip(p).collect(),
                Running::Other(d),
            )
        }
        Kind::LoadBalanced => {
            let d = Deployment::start(DeploymentKind::LoadBalanced, options)
                .await
                .map_err(err)?;
            let lb = balancer_port(&d.uri()).ok_or("the balancer's port is unknown")?;
            (vec![(8000, lb)], Running::Other(d))
        }
    };
    let ports: HashMap<u16, u16> = ports.into_iter().collect();
    let dns = DnsServer::start(zone, &ports).await?;
    Ok(Env {
        ports,
        dns,
        deployment,
    })
}

/// The port of `mongodb://HOST:PORT/...`.
fn balancer_port(uri: &str) -> Option<u16> {
    let rest = uri.strip_prefix("mongodb://")?;
    let host_port = rest.split(['/', '?']).next()?;
    host_port.rsplit_once(':')?.1.parse().ok()
}

/// An expected `host:port` as the testkit deployment spells it.
fn map_host(expected: &str, env: &Env) -> String {
    let Some((host, port)) = expected.rsplit_once(':') else {
        return expected.to_owned();
    };
    let port = port
        .parse::<u16>()
        .map(|p| env.ports.get(&p).copied().unwrap_or(p).to_string())
        .unwrap_or_else(|_| port.to_owned());
    let host = if host == "localhost" {
        "127.0.0.1"
    } else {
        host
    };
    format!("{host}:{port}")
}

fn string_list(case: &Value, key: &str, env: &Env) -> Option<Vec<String>> {
    let mut v: Vec<String> = case
        .get(key)?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .map(|h| map_host(h, env))
        .collect();
    v.sort();
    Some(v)
}

async fn run_case(case: &Value, env: &Env, certs: &TestCerts, kind: Kind) -> Result<(), String> {
    let uri = case
        .get("uri")
        .and_then(Value::as_str)
        .ok_or("the file has no `uri`")?;
    let expect_error = case.get("error").and_then(Value::as_bool).unwrap_or(false);
    let client = match build(uri, env, certs).await {
        Ok(c) if expect_error => {
            c.shutdown().await;
            return Err("error: expected the client to fail, it was built".to_owned());
        }
        Ok(c) => c,
        Err(_) if expect_error => return Ok(()),
        Err(e) => return Err(format!("error: expected a client, got: {e}")),
    };
    let result = check(case, env, &client, kind).await;
    client.shutdown().await;
    result
}

async fn build(uri: &str, env: &Env, certs: &TestCerts) -> Result<Client, String> {
    let mut options = ClientOptions::parse(uri).map_err(|e| e.to_string())?;
    options.resolver = ResolverConfig::with_name_servers([env.dns.addr()]);
    options.server_selection_timeout = Some(DISCOVERY_LIMIT);
    if options.tls_enabled() {
        options.tls.ca_file = Some(certs.ca_cert.to_string_lossy().into_owned());
        options.tls.certificate_key_file = Some(certs.client_pem.to_string_lossy().into_owned());
    }
    Client::with_options(options)
        .await
        .map_err(|e| e.to_string())
}

async fn check(case: &Value, env: &Env, client: &Client, kind: Kind) -> Result<(), String> {
    let mut seeds: Vec<String> = client
        .initial_seeds()
        .iter()
        .map(ToString::to_string)
        .collect();
    seeds.sort();
    if let Some(expected) = string_list(case, "seeds", env) {
        // With srvMaxHosts the seeds are a random subset of the expected ones.
        let subset = case.get("numSeeds").is_some();
        let ok = if subset {
            seeds.iter().all(|s| expected.contains(s))
        } else {
            seeds == expected
        };
        if !ok {
            return Err(format!("seeds: expected {expected:?}, got {seeds:?}"));
        }
    }
    if let Some(n) = case.get("numSeeds").and_then(Value::as_u64) {
        if seeds.len() as u64 != n {
            return Err(format!("numSeeds: expected {n}, got {seeds:?}"));
        }
    }
    if let Some(options) = case.get("options").and_then(Value::as_object) {
        for (key, want) in options {
            let got = option_value(client, key)?;
            if &got != want {
                return Err(format!("options.{key}: expected {want}, got {got}"));
            }
        }
    }
    if let Some(parsed) = case.get("parsed_options").and_then(Value::as_object) {
        for (key, want) in parsed {
            let got = parsed_value(client, key)?;
            if &got != want {
                return Err(format!("parsed_options.{key}: expected {want}, got {got}"));
            }
        }
    }
    let expected_hosts = string_list(case, "hosts", env);
    let num_hosts = case.get("numHosts").and_then(Value::as_u64);
    if expected_hosts.is_some() || num_hosts.is_some() {
        let hosts = settle(client, expected_hosts.as_deref(), num_hosts, kind).await;
        if let Some(expected) = &expected_hosts {
            if &hosts != expected {
                return Err(format!("hosts: expected {expected:?}, got {hosts:?}"));
            }
        }
        if let Some(n) = num_hosts {
            if hosts.len() as u64 != n {
                return Err(format!("numHosts: expected {n}, got {hosts:?}"));
            }
        }
    }
    if case.get("ping").and_then(Value::as_bool).unwrap_or(true) {
        client
            .run_command("admin", doc! {"ping": 1})
            .await
            .map_err(|e| format!("ping: {e}"))?;
    }
    Ok(())
}

/// The topology's hosts once they match (or [`DISCOVERY_LIMIT`] passed).
async fn settle(
    client: &Client,
    expected: Option<&[String]>,
    count: Option<u64>,
    kind: Kind,
) -> Vec<String> {
    let started = Instant::now();
    loop {
        let desc = client.topology_description();
        let mut hosts: Vec<String> = desc.servers().map(|s| s.address.to_string()).collect();
        hosts.sort();
        let discovered = kind != Kind::ReplicaSet || desc.has_primary();
        let done = discovered
            && expected.is_none_or(|e| e == hosts.as_slice())
            && count.is_none_or(|n| hosts.len() as u64 == n);
        if done || started.elapsed() > DISCOVERY_LIMIT {
            return hosts;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A client option as the test format names it.
fn option_value(client: &Client, key: &str) -> Result<Value, String> {
    let o = client.options();
    Ok(match key {
        "ssl" | "tls" => Value::from(o.tls_enabled()),
        "replicaSet" => o.replica_set.clone().map_or(Value::Null, Value::from),
        "authSource" => o
            .credential
            .as_ref()
            .map(|c| c.source().to_owned())
            .or_else(|| o.auth_source.clone())
            .map_or(Value::Null, Value::from),
        "loadBalanced" => Value::from(o.load_balanced.unwrap_or(false)),
        "directConnection" => Value::from(o.direct_connection.unwrap_or(false)),
        "srvMaxHosts" => Value::from(o.srv_max_hosts.unwrap_or(0)),
        "srvServiceName" => Value::from(o.srv_service_name.as_deref().unwrap_or("mongodb")),
        other => {
            return Err(format!(
                "options.{other}: the runner does not know this option"
            ));
        }
    })
}

/// A part of the connection string other than its options.
fn parsed_value(client: &Client, key: &str) -> Result<Value, String> {
    let o = client.options();
    let c = o.credential.as_ref();
    Ok(match key {
        "user" => c
            .and_then(|c| c.username())
            .map_or(Value::Null, Value::from),
        "password" => c
            .and_then(|c| c.password())
            .map_or(Value::Null, Value::from),
        "db" | "auth_database" | "defaultDatabase" => {
            o.default_database.clone().map_or(Value::Null, Value::from)
        }
        other => {
            return Err(format!(
                "parsed_options.{other}: the runner does not know this part"
            ));
        }
    })
}
