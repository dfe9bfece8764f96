//! Runner for the server selection tests (`server-selection/tests/{server_selection,rtt,
//! in_window}`), the max staleness tests (`max-staleness/tests`), and our own cases in those
//! formats under `spec-tests/data/server-selection/`. The kind of a file is read from its keys.
#![allow(
    clippy::disallowed_methods,
    reason = "the runner starts its virtual clock at an arbitrary instant and runs the pool driver's tasks"
)]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use mongo_events::{ServerAddress, ServerType, TopologyType};
use mongo_sdam::{
    DEFAULT_HEARTBEAT_FREQUENCY, Operation, ReadMode, ReadPreference, ServerDescription,
    TopologyDescription, next_average,
};
use serde_json::Value;

use crate::util::{json_files, load_json};
use crate::{Context, Outcome, Suite};

const OFFICIAL: [&str; 4] = [
    "server-selection/tests/server_selection",
    "server-selection/tests/rtt",
    "server-selection/tests/in_window",
    "max-staleness/tests",
];

/// Runs the suite.
pub(crate) fn run(ctx: &Context, out: &mut Outcome) -> bool {
    for rel in OFFICIAL {
        if let Some(dir) = ctx.official_dir(rel) {
            run_dir(ctx, out, &dir);
        }
    }
    run_dir(ctx, out, &ctx.own_dir(Suite::ServerSelection));
    true
}

fn run_dir(ctx: &Context, out: &mut Outcome, dir: &Path) {
    for file in json_files(ctx, dir) {
        let name = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let test = match load_json(&file) {
            Ok(v) => v,
            Err(e) => {
                out.fail(&file, &name, e);
                continue;
            }
        };
        let description = test
            .get("description")
            .and_then(Value::as_str)
            .map_or(name, str::to_string);
        if !ctx.wants_test(&description) {
            continue;
        }
        let result = if test.get("new_rtt_ms").is_some() {
            run_rtt(&test)
        } else if test.get("mocked_topology_state").is_some() {
            run_in_window(&test)
        } else {
            run_selection(&test)
        };
        out.record(&file, &description, result);
    }
}

fn ms_f64(v: &Value) -> Option<Duration> {
    v.as_f64()
        .filter(|f| f.is_finite() && *f >= 0.0)
        .map(|f| Duration::from_secs_f64(f / 1000.0))
}

fn read_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::Object(m) => m
            .get("$numberLong")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok()),
        _ => None,
    }
}

fn server_from_json(v: &Value, base: Instant) -> Result<ServerDescription, String> {
    let address = v
        .get("address")
        .and_then(Value::as_str)
        .ok_or("server without address")?;
    let address = ServerAddress::parse(address).map_err(|e| e.to_string())?;
    let type_name = v
        .get("type")
        .and_then(Value::as_str)
        .ok_or("server without type")?;
    let server_type = ServerType::from_name(type_name)
        .ok_or_else(|| format!("unknown server type {type_name}"))?;
    let mut sd = ServerDescription::new(address);
    sd.server_type = server_type;
    sd.round_trip_time = v.get("avg_rtt_ms").and_then(ms_f64);
    if let Some(Value::Object(tags)) = v.get("tags") {
        sd.tags = tags
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
            .collect();
    }
    if let Some(ms) = v.get("lastUpdateTime").and_then(read_i64) {
        let offset =
            Duration::from_millis(u64::try_from(ms).map_err(|_| "negative lastUpdateTime")?);
        sd.last_update_time = Some(base + offset);
    }
    sd.last_write_date = v
        .get("lastWrite")
        .and_then(|w| w.get("lastWriteDate"))
        .and_then(read_i64);
    // Selection files leave wire versions out: assume a compatible server.
    sd.max_wire_version = Some(
        v.get("maxWireVersion")
            .and_then(Value::as_i64)
            .and_then(|n| i32::try_from(n).ok())
            .unwrap_or(21),
    );
    sd.min_wire_version = Some(0);
    Ok(sd)
}

fn topology_from_json(test: &Value) -> Result<TopologyDescription, String> {
    let td = test
        .get("topology_description")
        .ok_or("no topology_description")?;
    let type_name = td
        .get("type")
        .and_then(Value::as_str)
        .ok_or("no topology type")?;
    let topology_type = TopologyType::from_name(type_name)
        .ok_or_else(|| format!("unknown topology type {type_name}"))?;
    let base = Instant::now();
    let servers = td
        .get("servers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|s| server_from_json(s, base))
        .collect::<Result<Vec<_>, _>>()?;
    let heartbeat = test
        .get("heartbeatFrequencyMS")
        .and_then(Value::as_u64)
        .map_or(DEFAULT_HEARTBEAT_FREQUENCY, Duration::from_millis);
    Ok(TopologyDescription::from_servers(
        topology_type,
        servers,
        heartbeat,
    ))
}

fn mode_from_name(name: &str) -> Option<ReadMode> {
    Some(match name {
        "Primary" | "primary" => ReadMode::Primary,
        "PrimaryPreferred" | "primaryPreferred" => ReadMode::PrimaryPreferred,
        "Secondary" | "secondary" => ReadMode::Secondary,
        "SecondaryPreferred" | "secondaryPreferred" => ReadMode::SecondaryPreferred,
        "Nearest" | "nearest" => ReadMode::Nearest,
        _ => return None,
    })
}

fn read_preference(v: Option<&Value>) -> Result<ReadPreference, String> {
    let Some(v) = v else {
        return Ok(ReadPreference::new(ReadMode::Primary));
    };
    let mode = match v.get("mode").and_then(Value::as_str) {
        Some(m) => mode_from_name(m).ok_or_else(|| format!("unknown mode {m}"))?,
        None => ReadMode::Primary,
    };
    let tag_sets = v
        .get("tag_sets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|t| {
            t.as_object()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                        .collect::<BTreeMap<_, _>>()
                })
                .unwrap_or_default()
        })
        .collect();
    let max_staleness = match v.get("maxStalenessSeconds").and_then(Value::as_i64) {
        None | Some(-1) => None,
        Some(n) => Some(Duration::from_secs(
            u64::try_from(n).map_err(|_| format!("bad maxStalenessSeconds {n}"))?,
        )),
    };
    Ok(ReadPreference::new(mode)
        .with_tag_sets(tag_sets)
        .with_max_staleness(max_staleness))
}

fn addresses(list: Option<&Value>) -> Result<Vec<String>, String> {
    let mut v = list
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|s| {
            s.get("address")
                .and_then(Value::as_str)
                .and_then(|a| ServerAddress::parse(a).ok())
                .map(|a| a.to_string())
                .ok_or_else(|| "server without address".to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    v.sort();
    Ok(v)
}

fn run_selection(test: &Value) -> Result<(), String> {
    let td = topology_from_json(test)?;
    let rp = read_preference(test.get("read_preference"))?;
    let operation = match test.get("operation").and_then(Value::as_str) {
        Some("write") => Operation::Write,
        _ => Operation::Read(&rp),
    };
    let deprioritized: Vec<ServerAddress> = addresses(test.get("deprioritized_servers"))?
        .iter()
        .filter_map(|a| ServerAddress::parse(a).ok())
        .collect();
    let expect_error = test.get("error").and_then(Value::as_bool) == Some(true);
    let names = |v: Vec<&ServerDescription>| {
        let mut n: Vec<String> = v.iter().map(|s| s.address.to_string()).collect();
        n.sort();
        n
    };
    let suitable = td.suitable_servers(operation, &deprioritized);
    let window = td.servers_in_latency_window(operation, &deprioritized);
    match (expect_error, suitable, window) {
        (true, Err(_), Err(_)) => Ok(()),
        (true, Ok(s), _) => Err(format!(
            "error: expected an error, got suitable servers {:?}",
            names(s)
        )),
        (false, Err(e), _) | (false, _, Err(e)) => Err(format!("error: unexpected {e}")),
        (true, Err(_), Ok(_)) => Err("error: latency window did not fail".into()),
        (false, Ok(suitable), Ok(window)) => {
            if let Some(expected) = test.get("suitable_servers") {
                let expected = addresses(Some(expected))?;
                let got = names(suitable);
                if expected != got {
                    return Err(format!(
                        "suitable_servers: expected {expected:?}, got {got:?}"
                    ));
                }
            }
            let expected = addresses(test.get("in_latency_window"))?;
            let got = names(window);
            if expected != got {
                return Err(format!(
                    "in_latency_window: expected {expected:?}, got {got:?}"
                ));
            }
            Ok(())
        }
    }
}

fn run_rtt(test: &Value) -> Result<(), String> {
    let previous = match test.get("avg_rtt_ms") {
        Some(Value::String(s)) if s == "NULL" => None,
        Some(v) => Some(ms_f64(v).ok_or("bad avg_rtt_ms")?),
        None => return Err("no avg_rtt_ms".into()),
    };
    let sample = test
        .get("new_rtt_ms")
        .and_then(ms_f64)
        .ok_or("bad new_rtt_ms")?;
    let expected = test
        .get("new_avg_rtt")
        .and_then(Value::as_f64)
        .ok_or("bad new_avg_rtt")?;
    let got = next_average(previous, sample).as_secs_f64() * 1000.0;
    if (got - expected).abs() > 1e-6 {
        return Err(format!("new_avg_rtt: expected {expected}, got {got}"));
    }
    Ok(())
}

/// A small seeded generator (xorshift64*), so the statistical tests are repeatable.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let n64 = u64::try_from(n).unwrap_or(u64::MAX).max(1);
        usize::try_from(x % n64).unwrap_or(0)
    }
}

fn run_in_window(test: &Value) -> Result<(), String> {
    let td = topology_from_json(test)?;
    let mut counts: HashMap<ServerAddress, u64> = HashMap::new();
    for s in test
        .get("mocked_topology_state")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let a = s
            .get("address")
            .and_then(Value::as_str)
            .and_then(|a| ServerAddress::parse(a).ok())
            .ok_or("mocked state without address")?;
        counts.insert(
            a,
            s.get("operation_count")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        );
    }
    let iterations = test
        .get("iterations")
        .and_then(Value::as_u64)
        .ok_or("no iterations")?;
    let outcome = test.get("outcome").ok_or("no outcome")?;
    let tolerance = outcome
        .get("tolerance")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let expected = outcome
        .get("expected_frequencies")
        .and_then(Value::as_object)
        .ok_or("no expected_frequencies")?;
    let nearest = ReadPreference::new(ReadMode::Nearest);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut random = |n: usize| rng.below(n);
    let mut picked: HashMap<String, u64> = HashMap::new();
    for _ in 0..iterations {
        let chosen = td
            .select_server(
                Operation::Read(&nearest),
                &[],
                |a| counts.get(a).copied().unwrap_or(0),
                &mut random,
            )
            .map_err(|e| e.to_string())?
            .ok_or("no server selected")?;
        *picked.entry(chosen.address.to_string()).or_insert(0) += 1;
    }
    for (address, want) in expected {
        let want = want.as_f64().ok_or("bad expected frequency")?;
        let key = ServerAddress::parse(address)
            .map(|a| a.to_string())
            .unwrap_or_else(|_| address.clone());
        #[allow(clippy::cast_precision_loss)]
        let got = picked.get(&key).copied().unwrap_or(0) as f64 / iterations as f64;
        let ok = if want == 0.0 || want == 1.0 {
            got == want
        } else {
            (got - want).abs() <= tolerance
        };
        if !ok {
            return Err(format!(
                "expected_frequencies.{address}: expected {want} (tolerance {tolerance}), got {got}"
            ));
        }
    }
    Ok(())
}
