//! Runner for the CMAP test format (`connection-monitoring-and-pooling/tests/cmap-format`) and
//! the project's own cases in `spec-tests/data/cmap/`.
//!
//! Each test runs the real tokio driver (`mongo_pool::Pool`) on a current-thread runtime with
//! tokio's clock paused: `wait`, wait-queue timeouts, idle expiry and slow handshakes all run
//! on virtual time, so nothing sleeps for real and no event wait depends on the machine's
//! speed. "Threads" are tasks fed through channels. Integration-style tests (fail points on
//! `hello`) run against a simulated establisher that applies the same fail point: a delay of
//! `blockTimeMS` on the virtual clock, a network error for `closeConnection`, or a command
//! error for `errorCode`. Background establishment errors go to a stand-in for SDAM's error
//! handling, which clears the pool unless the error carries `SystemOverloadedError`. They run a
//! second time, reported as "`<description>` (testkit)", against a real server: the pool opens
//! `mongo_client::Connection`s to a `mongo_testkit::TestServer` that has the file's fail point
//! (see `cmap_testkit.rs`).
//!
//! Extensions used by our own cases (documented in `spec-tests/data/cmap/README.md`): pool
//! options `maxLifetimeMS`, `connectTimeoutMS`, `loadBalanced`; top-level `serviceIds`
//! (connection n reports `serviceIds[(n-1) % len]`); operations `dropCheckOut {afterMS}`,
//! `checkIn {errored}`, `clear {serviceId}`, `assertStats {...}`.
#![allow(
    clippy::disallowed_methods,
    reason = "the runner starts its virtual clock at an arbitrary instant and runs the pool driver's tasks"
)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mongo_events::cmap::CmapEvent;
use mongo_events::{
    ConnectionId, FnListener, Generation, Listener, Listeners, ServerAddress, ServiceId,
};
use mongo_pool::{Establish, Pool, PoolError, PoolOptions, PooledConnection};
use serde_json::{Map, Value, json};
use tokio::sync::{Notify, mpsc};

use crate::{Context, Outcome, Suite, util};

#[path = "cmap_testkit.rs"]
mod testkit;

const DEFAULT_EVENT_TIMEOUT_MS: u64 = 10_000;

/// Runs the official CMAP files (when given) and our own.
pub(crate) fn run(ctx: &Context, out: &mut Outcome) -> bool {
    let mut integration = 0usize;
    if let Some(dir) = ctx.official_dir("connection-monitoring-and-pooling/tests/cmap-format") {
        for file in util::json_files(ctx, &dir) {
            run_file(ctx, &file, out, &mut integration);
        }
    }
    for file in util::json_files(ctx, &ctx.own_dir(Suite::Cmap)) {
        run_file(ctx, &file, out, &mut integration);
    }
    if integration > 0 {
        out.notes.push(format!(
            "cmap: {integration} integration-style tests ran twice: against a simulated \
             establisher (fail points applied to the simulated handshake on a virtual clock) \
             and, as \"<description> (testkit)\", with real connections to a mongo-testkit \
             server carrying the file's fail point, on the real clock"
        ));
    }
    true
}

fn run_file(ctx: &Context, file: &Path, out: &mut Outcome, integration: &mut usize) {
    let test = match util::load_json(file) {
        Ok(t) => t,
        Err(e) => {
            out.fail(file, "(file)", e);
            return;
        }
    };
    let description = test
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("(no description)")
        .to_string();
    if !ctx.wants_test(&description) {
        return;
    }
    let integration_style = test.get("style").and_then(Value::as_str) == Some("integration");
    if integration_style {
        *integration += 1;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build();
    let result = match runtime {
        Ok(rt) => rt.block_on(run_test(&test)),
        Err(e) => Err(format!("cannot build a runtime: {e}")),
    };
    out.record(file, &description, result);
    if integration_style {
        let result = testkit::run(&test);
        out.record(file, &format!("{description} (testkit)"), result);
    }
}

// ---------------------------------------------------------------------------------------------
// The simulated establisher

#[derive(Debug)]
struct MockConn {
    #[allow(dead_code)]
    id: ConnectionId,
    service_id: Option<ServiceId>,
}

#[derive(Debug, Clone)]
enum SimError {
    Network,
    Command(i64),
}

impl std::fmt::Display for SimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SimError::Network => f.write_str("connection closed by the server during hello"),
            SimError::Command(code) => write!(f, "hello failed with error code {code}"),
        }
    }
}

impl std::error::Error for SimError {}

#[derive(Clone, Debug, Default)]
struct FailPoint {
    remaining: Option<u64>,
    block: Option<Duration>,
    close_connection: bool,
    error_code: Option<i64>,
}

struct SimEstablisher {
    fail_point: Mutex<Option<FailPoint>>,
    service_ids: Vec<ServiceId>,
}

impl SimEstablisher {
    fn take_fail_point(&self) -> Option<FailPoint> {
        let mut guard = self.fail_point.lock().unwrap_or_else(|e| e.into_inner());
        let fp = guard.as_mut()?;
        match &mut fp.remaining {
            Some(0) => None,
            Some(n) => {
                *n -= 1;
                Some(fp.clone())
            }
            None => Some(fp.clone()),
        }
    }
}

impl Establish for SimEstablisher {
    type Conn = MockConn;
    type Error = SimError;

    async fn establish(&self, id: ConnectionId, _g: Generation) -> Result<MockConn, SimError> {
        if let Some(fp) = self.take_fail_point() {
            if let Some(block) = fp.block {
                tokio::time::sleep(block).await;
            }
            if fp.close_connection {
                return Err(SimError::Network);
            }
            if let Some(code) = fp.error_code {
                return Err(SimError::Command(code));
            }
        }
        let service_id = if self.service_ids.is_empty() {
            None
        } else {
            let n = usize::try_from(id.0.saturating_sub(1)).unwrap_or(0);
            self.service_ids.get(n % self.service_ids.len()).copied()
        };
        Ok(MockConn { id, service_id })
    }

    fn service_id(&self, conn: &MockConn) -> Option<ServiceId> {
        conn.service_id
    }

    fn is_overload_signal(&self, error: &SimError) -> bool {
        matches!(error, SimError::Network)
    }
}

fn parse_fail_point(test: &Value) -> Result<Option<FailPoint>, String> {
    let Some(fp) = test.get("failPoint") else {
        return Ok(None);
    };
    let remaining = match fp.get("mode") {
        Some(Value::String(s)) if s == "alwaysOn" => None,
        Some(Value::String(s)) if s == "off" => return Ok(None),
        Some(Value::Object(m)) => match m.get("times").and_then(Value::as_u64) {
            Some(n) => Some(n),
            None => {
                return Err(format!(
                    "unsupported fail point mode {}",
                    Value::Object(m.clone())
                ));
            }
        },
        other => return Err(format!("unsupported fail point mode {other:?}")),
    };
    let data = fp.get("data").cloned().unwrap_or(Value::Null);
    let hits_handshake = data
        .get("failCommands")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|n| matches!(n.as_str(), Some("hello" | "isMaster")))
        });
    if !hits_handshake {
        return Err("fail point does not target the handshake; cannot simulate".into());
    }
    let block = if data.get("blockConnection").and_then(Value::as_bool) == Some(true) {
        data.get("blockTimeMS")
            .and_then(Value::as_u64)
            .map(Duration::from_millis)
    } else {
        None
    };
    Ok(Some(FailPoint {
        remaining,
        block,
        close_connection: data.get("closeConnection").and_then(Value::as_bool) == Some(true),
        error_code: data.get("errorCode").and_then(Value::as_i64),
    }))
}

// ---------------------------------------------------------------------------------------------
// Options, events

fn ms(v: Option<&Value>) -> Option<Duration> {
    v.and_then(Value::as_f64)
        .filter(|n| *n >= 0.0)
        .map(|n| Duration::from_secs_f64(n / 1000.0))
}

fn count(v: Option<&Value>) -> Option<u32> {
    v.and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
}

fn pool_options(test: &Value) -> PoolOptions {
    let o = test.get("poolOptions").cloned().unwrap_or(json!({}));
    let mut options = PoolOptions::default();
    options.max_pool_size = count(o.get("maxPoolSize"));
    options.min_pool_size = count(o.get("minPoolSize"));
    options.max_idle_time = ms(o.get("maxIdleTimeMS"));
    options.max_connecting = count(o.get("maxConnecting"));
    options.wait_queue_timeout = ms(o.get("waitQueueTimeoutMS"));
    options.max_lifetime = ms(o.get("maxLifetimeMS"));
    options.connect_timeout = ms(o.get("connectTimeoutMS"));
    options.load_balanced = o.get("loadBalanced").and_then(Value::as_bool) == Some(true);
    options
}

fn millis(d: Duration) -> Value {
    json!(d.as_secs_f64() * 1000.0)
}

fn opt_ms(d: Option<Duration>) -> Option<Value> {
    d.map(|d| json!(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
}

/// The JSON view of an event that the MATCH rule compares against.
fn event_json(e: &CmapEvent) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), json!(e.name()));
    m.insert("address".into(), json!(e.address().to_string()));
    if let Some(id) = e.connection_id() {
        m.insert("connectionId".into(), json!(id.0));
    }
    if let Some(d) = e.duration() {
        m.insert("duration".into(), millis(d));
    }
    match e {
        CmapEvent::PoolCreated(c) => {
            let o = &c.options;
            let mut opts = Map::new();
            let mut put = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    opts.insert(k.into(), v);
                }
            };
            put("maxPoolSize", o.max_pool_size.map(|n| json!(n)));
            put("minPoolSize", o.min_pool_size.map(|n| json!(n)));
            put("maxIdleTimeMS", opt_ms(o.max_idle_time));
            put("maxConnecting", o.max_connecting.map(|n| json!(n)));
            put("waitQueueTimeoutMS", opt_ms(o.wait_queue_timeout));
            put("maxLifetimeMS", opt_ms(o.max_lifetime));
            put("connectTimeoutMS", opt_ms(o.connect_timeout));
            m.insert("options".into(), Value::Object(opts));
        }
        CmapEvent::PoolCleared(c) => {
            m.insert(
                "interruptInUseConnections".into(),
                json!(c.interrupt_in_use_connections),
            );
            if let Some(s) = c.service_id {
                m.insert("serviceId".into(), json!(s.to_string()));
            }
        }
        CmapEvent::ConnectionClosed(c) => {
            m.insert("reason".into(), json!(c.reason.name()));
            if let Some(err) = &c.error {
                m.insert("error".into(), json!(err.to_string()));
            }
        }
        CmapEvent::ConnectionCheckOutFailed(c) => {
            m.insert("reason".into(), json!(c.reason.name()));
            if let Some(err) = &c.error {
                m.insert("error".into(), json!(err.to_string()));
            }
        }
        _ => {}
    }
    Value::Object(m)
}

#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<Value>>,
    notify: Notify,
}

impl Recorder {
    fn snapshot(&self) -> Vec<Value> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn count(&self, name: &str) -> usize {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|e| e.get("type").and_then(Value::as_str) == Some(name))
            .count()
    }
}

fn error_json(e: &PoolError) -> Value {
    json!({"type": e.type_name(), "message": e.to_string(), "labels": e.labels()})
}

// ---------------------------------------------------------------------------------------------
// Operations

type Labels<E> = Arc<Mutex<HashMap<String, PooledConnection<E>>>>;

struct Env<E: Establish> {
    pool: Pool<E>,
    recorder: Arc<Recorder>,
    labels: Labels<E>,
}

enum OpError {
    /// The operation failed the way a driver operation fails (the test's `error`).
    Pool(PoolError),
    /// The runner could not do what the test asked.
    Runner(String),
}

fn str_field<'a>(op: &'a Value, key: &str) -> Result<&'a str, OpError> {
    op.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| OpError::Runner(format!("operation {op} lacks {key}")))
}

async fn run_op<E: Establish>(env: &Env<E>, op: &Value) -> Result<(), OpError> {
    let name = str_field(op, "name")?;
    match name {
        "wait" => {
            let d = ms(op.get("ms")).unwrap_or_default();
            tokio::time::sleep(d).await;
        }
        "waitForEvent" => {
            let event = str_field(op, "event")?;
            let target = op
                .get("count")
                .and_then(Value::as_u64)
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(1);
            let timeout =
                ms(op.get("timeout")).unwrap_or(Duration::from_millis(DEFAULT_EVENT_TIMEOUT_MS));
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                let notified = env.recorder.notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if env.recorder.count(event) >= target {
                    break;
                }
                if tokio::time::timeout_at(deadline, notified).await.is_err() {
                    return Err(OpError::Runner(format!(
                        "waitForEvent: saw {} of {target} {event} events within {timeout:?}",
                        env.recorder.count(event)
                    )));
                }
            }
        }
        "checkOut" => {
            let conn = env.pool.checkout().await.map_err(OpError::Pool)?;
            if let Some(label) = op.get("label").and_then(Value::as_str) {
                env.labels
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(label.to_string(), conn);
            } else {
                // An unlabelled connection stays checked out until the test ends.
                let key = format!("__unlabelled_{}", conn.id());
                env.labels
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, conn);
            }
        }
        "dropCheckOut" => {
            let d = ms(op.get("afterMS")).unwrap_or_default();
            // Starts a check-out and drops it after `afterMS` (a connection it got before
            // then is checked back in at once).
            let _ = tokio::time::timeout(d, env.pool.checkout()).await;
        }
        "checkIn" => {
            let label = str_field(op, "connection")?;
            let conn = env
                .labels
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(label);
            let Some(mut conn) = conn else {
                return Err(OpError::Runner(format!("no connection labelled {label}")));
            };
            if op.get("errored").and_then(Value::as_bool) == Some(true) {
                conn.mark_errored();
            }
            drop(conn);
        }
        "clear" => {
            let interrupt = op
                .get("interruptInUseConnections")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let service_id = match op.get("serviceId").and_then(Value::as_str) {
                Some(hex) => Some(parse_service_id(hex).map_err(OpError::Runner)?),
                None => None,
            };
            env.pool.clear(service_id, interrupt);
        }
        "close" => env.pool.close(),
        "ready" => env.pool.ready(),
        "assertStats" => {
            let s = env.pool.stats();
            let actual = json!({
                "total": s.total, "available": s.available, "pending": s.pending,
                "inUse": s.in_use, "waiters": s.waiters, "generation": s.generation.0,
            });
            let expected = op.get("stats").cloned().unwrap_or(json!({}));
            util::matches(&expected, &actual)
                .map_err(|e| OpError::Runner(format!("assertStats: stats{e} (actual {actual})")))?;
        }
        other => return Err(OpError::Runner(format!("unknown operation {other}"))),
    }
    Ok(())
}

fn parse_service_id(hex: &str) -> Result<ServiceId, String> {
    bson::oid::ObjectId::parse_str(hex)
        .map(ServiceId)
        .map_err(|e| format!("bad serviceId {hex}: {e}"))
}

struct Thread {
    tx: mpsc::UnboundedSender<Value>,
    handle: tokio::task::JoinHandle<Option<OpError>>,
}

async fn run_test(test: &Value) -> Result<(), String> {
    let service_ids = match test.get("serviceIds").and_then(Value::as_array) {
        Some(ids) => ids
            .iter()
            .map(|v| parse_service_id(v.as_str().unwrap_or_default()))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let establisher = SimEstablisher {
        fail_point: Mutex::new(parse_fail_point(test)?),
        service_ids,
    };
    run_with(test, ServerAddress::tcp("localhost", 27017), establisher).await
}

/// Runs a test's operations on a pool of `establisher`'s connections to `address` and checks
/// the error and the events.
async fn run_with<E: Establish>(
    test: &Value,
    address: ServerAddress,
    establisher: E,
) -> Result<(), String> {
    let recorder = Arc::new(Recorder::default());
    let rec = Arc::clone(&recorder);
    let listeners = Listeners::new().with(Listener::pool(FnListener(move |e: &CmapEvent| {
        rec.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event_json(e));
        rec.notify.notify_waiters();
    })));
    let pool = Pool::new(address, pool_options(test), establisher, listeners)
        .map_err(|e| format!("cannot create the pool: {e}"))?;
    // Stand-in for SDAM's handling of background establishment errors: clear the pool unless
    // the error signals an overloaded server.
    let weak = pool.downgrade();
    pool.on_background_error(move |e| {
        if !e.has_label(mongo_pool::SYSTEM_OVERLOADED_ERROR) {
            if let Some(p) = weak.upgrade() {
                p.clear(None, false);
            }
        }
    });
    let env = Arc::new(Env {
        pool,
        recorder: Arc::clone(&recorder),
        labels: Arc::new(Mutex::new(HashMap::new())),
    });

    let mut threads: HashMap<String, Thread> = HashMap::new();
    let mut main_error: Option<PoolError> = None;
    let ops = test
        .get("operations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for op in &ops {
        let name = op.get("name").and_then(Value::as_str).unwrap_or_default();
        if let Some(thread) = op.get("thread").and_then(Value::as_str) {
            let Some(t) = threads.get(thread) else {
                return Err(format!("operation on unknown thread {thread}"));
            };
            t.tx.send(op.clone())
                .map_err(|_| format!("thread {thread} has ended"))?;
            continue;
        }
        match name {
            "start" => {
                let target = op.get("target").and_then(Value::as_str).unwrap_or_default();
                let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
                let env = Arc::clone(&env);
                let handle = tokio::spawn(async move {
                    let mut error = None;
                    while let Some(op) = rx.recv().await {
                        if error.is_none() {
                            if let Err(e) = run_op(&env, &op).await {
                                error = Some(e);
                            }
                        }
                    }
                    error
                });
                threads.insert(target.to_string(), Thread { tx, handle });
            }
            "waitForThread" => {
                let target = op.get("target").and_then(Value::as_str).unwrap_or_default();
                let Some(t) = threads.remove(target) else {
                    return Err(format!("waitForThread: unknown thread {target}"));
                };
                drop(t.tx);
                match t.handle.await {
                    Ok(None) => {}
                    Ok(Some(OpError::Pool(e))) => {
                        main_error = Some(e);
                        break;
                    }
                    Ok(Some(OpError::Runner(e))) => return Err(format!("thread {target}: {e}")),
                    Err(e) => return Err(format!("thread {target} panicked: {e}")),
                }
            }
            _ => match run_op(&env, op).await {
                Ok(()) => {}
                Err(OpError::Pool(e)) => {
                    main_error = Some(e);
                    break;
                }
                Err(OpError::Runner(e)) => return Err(e),
            },
        }
    }
    let actual_all = recorder.snapshot();
    for (_, t) in threads.drain() {
        t.handle.abort();
    }

    match (test.get("error"), &main_error) {
        (Some(expected), Some(actual)) => util::matches(expected, &error_json(actual))
            .map_err(|e| format!("error{e} (actual error: {actual})"))?,
        (Some(expected), None) => {
            return Err(format!(
                "expected error {expected}, but no error was raised"
            ));
        }
        (None, Some(actual)) => return Err(format!("unexpected error: {actual}")),
        (None, None) => {}
    }

    let ignore: Vec<&str> = test
        .get("ignore")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let actual: Vec<&Value> = actual_all
        .iter()
        .filter(|e| {
            !e.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| ignore.contains(&t))
        })
        .collect();
    let expected = test
        .get("events")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let names = || {
        actual
            .iter()
            .map(|e| e.get("type").and_then(Value::as_str).unwrap_or("?"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (i, exp) in expected.iter().enumerate() {
        let Some(act) = actual.get(i) else {
            return Err(format!(
                "events[{i}]: expected {exp}, but only {} events were seen: [{}]",
                actual.len(),
                names()
            ));
        };
        util::matches(exp, act)
            .map_err(|e| format!("events[{i}]{e} (actual {act}; all: [{}])", names()))?;
    }
    Ok(())
}
