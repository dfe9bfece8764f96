//! Runner for the SDAM file-per-case tests (`server-discovery-and-monitoring/tests/{single,
//! rs,sharded,load-balanced,errors,monitoring}`) and our own cases in the same format under
//! `spec-tests/data/sdam/<dir>/`.
//!
//! Each file builds a fresh [`Topology`] from its URI, then per phase feeds the hello replies
//! (`{}` is a failed check) and the application errors into `mongo-sdam`, tracking each
//! server's pool generation as the returned decisions say, and compares the outcome: the
//! topology description, or (monitoring) the SDAM events since the last phase.
#![allow(
    clippy::disallowed_methods,
    reason = "the runner starts its virtual clock at an arbitrary instant and runs the pool driver's tasks"
)]

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use bson::oid::ObjectId;
use bson::{Bson, Document};
use mongo_events::sdam::{ServerEvent, ServerInfo, TopologyEvent, TopologyInfo};
use mongo_events::{Generation, ServerAddress};
use mongo_sdam::{
    AppErrorKind, ApplicationError, SdamEvent, ServerDescription, Topology, TopologyConfig,
    TopologyVersion,
};
use serde_json::{Map, Value, json};

use crate::util::{json_files, load_json, matches};
use crate::{Context, Outcome, Suite};

const DIRS: [&str; 6] = [
    "single",
    "rs",
    "sharded",
    "load-balanced",
    "errors",
    "monitoring",
];

/// Runs the suite.
pub(crate) fn run(ctx: &Context, out: &mut Outcome) -> bool {
    for dir in DIRS {
        let rel = format!("server-discovery-and-monitoring/tests/{dir}");
        if let Some(path) = ctx.official_dir(&rel) {
            run_dir(ctx, out, &path, dir);
        }
        run_dir(ctx, out, &ctx.own_dir(Suite::Sdam).join(dir), dir);
    }
    true
}

fn run_dir(ctx: &Context, out: &mut Outcome, dir: &Path, kind: &str) {
    for file in json_files(ctx, dir) {
        let test = match load_json(&file) {
            Ok(v) => v,
            Err(e) => {
                out.fail(&file, "(load)", e);
                continue;
            }
        };
        let description = test
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("(no description)")
            .to_string();
        if !ctx.wants_test(&description) {
            continue;
        }
        out.record(&file, &description, run_file(&test, kind));
    }
}

/// Converts extended JSON (as the spec files write it) into BSON.
pub(crate) fn to_bson(value: &Value) -> Bson {
    match value {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                match i32::try_from(i) {
                    Ok(small) => Bson::Int32(small),
                    Err(_) => Bson::Int64(i),
                }
            } else {
                Bson::Double(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => Bson::String(s.clone()),
        Value::Array(items) => Bson::Array(items.iter().map(to_bson).collect()),
        Value::Object(map) => {
            if map.len() == 1 {
                if let Some(Value::String(hex)) = map.get("$oid") {
                    if let Ok(oid) = ObjectId::parse_str(hex) {
                        return Bson::ObjectId(oid);
                    }
                }
                if let Some(Value::String(n)) = map.get("$numberLong") {
                    if let Ok(n) = n.parse::<i64>() {
                        return Bson::Int64(n);
                    }
                }
                if let Some(Value::String(n)) = map.get("$numberInt") {
                    if let Ok(n) = n.parse::<i32>() {
                        return Bson::Int32(n);
                    }
                }
                if let Some(date) = map.get("$date") {
                    let millis = match date {
                        Value::Object(d) => d
                            .get("$numberLong")
                            .and_then(Value::as_str)
                            .and_then(|s| s.parse::<i64>().ok()),
                        Value::Number(n) => n.as_i64(),
                        _ => None,
                    };
                    if let Some(ms) = millis {
                        return Bson::DateTime(bson::DateTime::from_millis(ms));
                    }
                }
            }
            Bson::Document(to_document(map))
        }
    }
}

pub(crate) fn to_document(map: &Map<String, Value>) -> Document {
    map.iter().map(|(k, v)| (k.clone(), to_bson(v))).collect()
}

/// The parts of a test URI the runner needs: hosts, `replicaSet`, `directConnection`,
/// `loadBalanced`, `heartbeatFrequencyMS`.
fn config_from_uri(uri: &str, kind: &str) -> Result<TopologyConfig, String> {
    let rest = uri
        .strip_prefix("mongodb://")
        .ok_or_else(|| format!("unsupported uri {uri}"))?;
    let (hosts, query) = match rest.split_once('/') {
        Some((h, q)) => (h, q.trim_start_matches('?')),
        None => (rest, ""),
    };
    let seeds = hosts
        .split(',')
        .map(|h| ServerAddress::parse(h).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut config = TopologyConfig::new(seeds);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k.to_ascii_lowercase().as_str() {
            "replicaset" => config.set_name = Some(v.to_string()),
            "directconnection" => config.direct_connection = Some(v == "true"),
            "loadbalanced" => config.load_balanced = v == "true",
            "heartbeatfrequencyms" => {
                if let Ok(ms) = v.parse::<u64>() {
                    config.heartbeat_frequency = std::time::Duration::from_millis(ms);
                }
            }
            _ => {}
        }
    }
    // The README: files under "single" start as Single (those with one seed; a file there
    // with several seeds tests discovery from Unknown).
    if kind == "single" && config.direct_connection.is_none() && config.seeds.len() == 1 {
        config.direct_connection = Some(true);
    }
    Ok(config)
}

struct Runner {
    topology: Topology,
    generations: HashMap<ServerAddress, u32>,
}

impl Runner {
    fn generation(&self, address: &ServerAddress) -> u32 {
        self.generations.get(address).copied().unwrap_or(0)
    }

    fn bump(&mut self, address: &ServerAddress) {
        *self.generations.entry(address.clone()).or_insert(0) += 1;
    }

    fn response(&mut self, address: &ServerAddress, reply: &Value) -> Result<(), String> {
        let reply = match reply {
            Value::Object(m) => to_document(m),
            other => return Err(format!("response is not an object: {other}")),
        };
        if reply.is_empty() {
            // A network error during the check: Unknown, and the pool is cleared.
            let sd = ServerDescription::unknown_with_error(
                address.clone(),
                "network error during server check",
            );
            let update = self.topology.apply(sd);
            if !update.ignored {
                self.bump(address);
            }
        } else {
            let sd = ServerDescription::from_hello(address.clone(), &reply, None, Instant::now());
            self.topology.apply(sd);
        }
        Ok(())
    }

    fn application_error(&mut self, e: &Value) -> Result<(), String> {
        let address = e
            .get("address")
            .and_then(Value::as_str)
            .ok_or("applicationError without address")
            .and_then(|a| ServerAddress::parse(a).map_err(|_| "bad address"))?;
        let current = self.generation(&address);
        let generation = e
            .get("generation")
            .and_then(Value::as_u64)
            .and_then(|g| u32::try_from(g).ok())
            .unwrap_or(current);
        let completed = e.get("when").and_then(Value::as_str) == Some("afterHandshakeCompletes");
        let kind = e.get("type").and_then(Value::as_str).unwrap_or("");
        let mut error = match kind {
            "network" => ApplicationError::new(
                address.clone(),
                AppErrorKind::Network,
                Generation(generation),
            ),
            "timeout" => ApplicationError::new(
                address.clone(),
                AppErrorKind::Timeout,
                Generation(generation),
            ),
            "command" => {
                let reply = match e.get("response") {
                    Some(Value::Object(m)) => to_document(m),
                    _ => return Err("command error without response".into()),
                };
                match ApplicationError::from_reply(address.clone(), &reply, Generation(generation))
                {
                    Some(err) => err,
                    // No command error nor write concern error (e.g. only writeErrors).
                    None => return Ok(()),
                }
            }
            other => return Err(format!("unknown applicationError type {other}")),
        };
        error.completed_handshake = completed;
        // Whether the pool labels the error SystemOverloadedError (CMAP "backpressure-enabled";
        // SDAM then leaves the server be) is the driver's decision, not the runner's: the
        // error is built as the connection would report it (a reset or a timeout of the
        // connect or the hello; a command error otherwise) and the driver classifies it.
        error.system_overloaded = !completed
            && match kind {
                "network" => mongo_client::Error::from(std::io::Error::from(
                    std::io::ErrorKind::ConnectionReset,
                ))
                .is_establishment_overload_signal(),
                "timeout" => {
                    mongo_client::Error::from(std::io::Error::from(std::io::ErrorKind::TimedOut))
                        .is_establishment_overload_signal()
                }
                _ => false,
            };
        error.max_wire_version = e
            .get("maxWireVersion")
            .and_then(Value::as_i64)
            .and_then(|v| i32::try_from(v).ok());
        let decision = self
            .topology
            .handle_application_error(&error, Generation(current));
        if decision.clear_pool.is_some() {
            self.bump(&address);
        }
        Ok(())
    }
}

fn run_file(test: &Value, kind: &str) -> Result<(), String> {
    let uri = test.get("uri").and_then(Value::as_str).ok_or("no uri")?;
    let config = config_from_uri(uri, kind)?;
    let topology = Topology::new(&config).map_err(|e| e.to_string())?;
    let mut runner = Runner {
        topology,
        generations: HashMap::new(),
    };
    let phases = test
        .get("phases")
        .and_then(Value::as_array)
        .ok_or("no phases")?;
    for (i, phase) in phases.iter().enumerate() {
        for r in phase
            .get("responses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let pair = r.as_array().ok_or("response is not a pair")?;
            let (Some(addr), Some(reply)) = (pair.first().and_then(Value::as_str), pair.get(1))
            else {
                return Err(format!("phase {i}: malformed response"));
            };
            let address = ServerAddress::parse(addr).map_err(|e| format!("phase {i}: {e}"))?;
            runner
                .response(&address, reply)
                .map_err(|e| format!("phase {i}: {e}"))?;
        }
        for e in phase
            .get("applicationErrors")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            runner
                .application_error(e)
                .map_err(|e| format!("phase {i}: {e}"))?;
        }
        let outcome = phase
            .get("outcome")
            .ok_or_else(|| format!("phase {i}: no outcome"))?;
        let events: Vec<SdamEvent> = std::iter::from_fn(|| runner.topology.poll_event()).collect();
        let result = if let Some(expected) = outcome.get("events") {
            let actual = Value::Array(events.iter().map(event_json).collect());
            matches(expected, &actual)
        } else {
            check_topology(outcome, &runner)
        };
        result.map_err(|e| format!("phase {i}: {e}"))?;
    }
    Ok(())
}

fn opt_str(s: Option<&str>) -> Value {
    s.map_or(Value::Null, |s| Value::String(s.to_string()))
}

fn opt_i64(n: Option<i64>) -> Value {
    n.map_or(Value::Null, |n| json!(n))
}

fn oid_json(oid: Option<ObjectId>) -> Value {
    oid.map_or(Value::Null, |o| json!({"$oid": o.to_hex()}))
}

fn tv_json(tv: Option<&TopologyVersion>) -> Value {
    tv.map_or(Value::Null, |tv| {
        json!({"processId": {"$oid": tv.process_id.to_hex()}, "counter": {"$numberLong": tv.counter.to_string()}})
    })
}

fn check_topology(expected: &Value, runner: &Runner) -> Result<(), String> {
    let td = runner.topology.description();
    let mut servers = Map::new();
    for s in td.servers() {
        servers.insert(
            s.address.to_string(),
            json!({
                "type": s.server_type.name(),
                "setName": opt_str(s.set_name.as_deref()),
                "setVersion": opt_i64(s.set_version),
                "electionId": oid_json(s.election_id),
                "logicalSessionTimeoutMinutes": opt_i64(s.logical_session_timeout_minutes),
                "minWireVersion": s.min_wire_version.map_or(Value::Null, |v| json!(v)),
                "maxWireVersion": s.max_wire_version.map_or(Value::Null, |v| json!(v)),
                "topologyVersion": tv_json(s.topology_version.as_ref()),
                "pool": {"generation": runner.generation(&s.address)},
                "error": opt_str(s.error.as_deref()),
            }),
        );
    }
    let actual = json!({
        "topologyType": td.topology_type().name(),
        "setName": opt_str(td.set_name()),
        "logicalSessionTimeoutMinutes": opt_i64(td.logical_session_timeout_minutes()),
        "maxSetVersion": opt_i64(td.max_set_version()),
        "maxElectionId": oid_json(td.max_election_id()),
        "compatible": td.compatible(),
    });
    let mut expected_top = expected.as_object().cloned().unwrap_or_default();
    let expected_servers = expected_top.remove("servers");
    matches(&Value::Object(expected_top), &actual)?;
    let Some(Value::Object(expected_servers)) = expected_servers else {
        return Ok(());
    };
    let mut want: Vec<&String> = expected_servers.keys().collect();
    let mut have: Vec<&String> = servers.keys().collect();
    want.sort();
    have.sort();
    if want != have {
        return Err(format!(".servers: expected {want:?}, got {have:?}"));
    }
    for (address, exp) in &expected_servers {
        let act = servers
            .get(address)
            .ok_or_else(|| format!(".servers.{address}: missing"))?;
        let mut exp = exp.as_object().cloned().unwrap_or_default();
        if let Some(Value::String(substring)) = exp.remove("error") {
            let have = act.get("error").and_then(Value::as_str).unwrap_or("");
            if !have.contains(substring.as_str()) {
                return Err(format!(
                    ".servers.{address}.error: expected to contain {substring:?}, got {have:?}"
                ));
            }
        }
        matches(&Value::Object(exp), act).map_err(|e| format!(".servers.{address}{e}"))?;
    }
    Ok(())
}

fn server_info_json(s: &ServerInfo) -> Value {
    let mut v = json!({
        "address": s.address.to_string(),
        "type": s.server_type.name(),
        // ServerInfo keeps hosts, passives and arbiters in one list.
        "hosts": s.hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
        "passives": [],
        "arbiters": [],
    });
    if let Some(obj) = v.as_object_mut() {
        if let Some(p) = &s.primary {
            obj.insert("primary".into(), json!(p.to_string()));
        }
        if let Some(n) = &s.set_name {
            obj.insert("setName".into(), json!(n));
        }
    }
    v
}

fn topology_info_json(t: &TopologyInfo) -> Value {
    let mut v = json!({
        "topologyType": t.topology_type.name(),
        "servers": t.servers.iter().map(server_info_json).collect::<Vec<_>>(),
    });
    if let (Some(obj), Some(n)) = (v.as_object_mut(), &t.set_name) {
        obj.insert("setName".into(), json!(n));
    }
    v
}

fn event_json(e: &SdamEvent) -> Value {
    match e {
        SdamEvent::Topology(TopologyEvent::Opening(o)) => {
            json!({"topology_opening_event": {"topologyId": o.topology_id.to_hex()}})
        }
        SdamEvent::Topology(TopologyEvent::DescriptionChanged(c)) => json!({
            "topology_description_changed_event": {
                "topologyId": c.topology_id.to_hex(),
                "previousDescription": topology_info_json(&c.previous_description),
                "newDescription": topology_info_json(&c.new_description),
            }
        }),
        SdamEvent::Topology(TopologyEvent::Closed(c)) => {
            json!({"topology_closed_event": {"topologyId": c.topology_id.to_hex()}})
        }
        SdamEvent::Server(ServerEvent::Opening(o)) => json!({
            "server_opening_event": {"topologyId": o.topology_id.to_hex(), "address": o.address.to_string()}
        }),
        SdamEvent::Server(ServerEvent::Closed(o)) => json!({
            "server_closed_event": {"topologyId": o.topology_id.to_hex(), "address": o.address.to_string()}
        }),
        SdamEvent::Server(ServerEvent::DescriptionChanged(c)) => json!({
            "server_description_changed_event": {
                "topologyId": c.topology_id.to_hex(),
                "address": c.address.to_string(),
                "previousDescription": server_info_json(&c.previous_description),
                "newDescription": server_info_json(&c.new_description),
            }
        }),
    }
}
