//! The bodies of the fuzz targets, one function per target, each taking arbitrary bytes.
//!
//! A target must never panic on any input: a decoder answers bad bytes with a typed error.
//! The only assertions are invariants (a value that decodes re-encodes to itself).
//!
//! The thin binaries in `fuzz_targets/` hand these functions to libFuzzer; `cargo xtask fuzz`
//! builds them on the stable toolchain with LLVM's coverage instrumentation (stable `-C`
//! flags, no sanitizer) and runs them. `tests/replay.rs` runs every corpus file through its
//! target as a normal test, with no fuzzer at all.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bson::spec::BinarySubtype;
use bson::{Binary, Bson, Document, doc};
use mongo_auth::scram::{ServerFinal, ServerFirst};
use mongo_auth::{AuthMechanism, Credential, ScramConversation};
use mongo_client::ConnectionString;
use mongo_events::ServerAddress;
use mongo_sdam::{ServerDescription, TopologyConfig, TopologyDescription};
use mongo_testkit::{ServerOptions, TestServer};
use parking_lot_free::Mutex;

/// Every target, by name (the names of the binaries and of the corpus folders).
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("frame_reader", frame_reader),
    ("op_msg", op_msg),
    ("query_reply", query_reply),
    ("legacy", legacy),
    ("compressed", compressed),
    ("scram_server_messages", scram_server_messages),
    ("hello_description", hello_description),
    ("connection_string", connection_string),
    ("testkit_dispatch", testkit_dispatch),
];

/// Wire frames fed in data-chosen chunks to `FrameReader`, each frame decoded.
pub fn frame_reader(data: &[u8]) {
    mongo_wire::fuzzing::frame_reader(data);
}

/// OP_MSG decode and round trip.
pub fn op_msg(data: &[u8]) {
    mongo_wire::fuzzing::op_msg(data);
}

/// OP_QUERY and OP_REPLY decode and round trip.
pub fn query_reply(data: &[u8]) {
    mongo_wire::fuzzing::query_reply(data);
}

/// The legacy write and cursor opcodes: decode and round trip.
pub fn legacy(data: &[u8]) {
    mongo_wire::fuzzing::legacy(data);
}

/// OP_COMPRESSED (zlib, snappy, zstd) decode and bounded decompression.
pub fn compressed(data: &[u8]) {
    mongo_wire::fuzzing::compressed(data);
}

/// SCRAM server-first and server-final parsing, then a whole SCRAM-SHA-256 conversation
/// driven by the input (split at the first newline into the two server messages).
///
/// Inputs demanding more than 4096 iterations are parsed only: PBKDF2 is what the iteration
/// bound exists for, and the fuzzer should measure parsing.
pub fn scram_server_messages(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = ServerFirst::parse(text);
    let _ = ServerFinal::parse(text);
    let (first, last) = text.split_once('\n').unwrap_or((text, text));
    let cheap = ServerFirst::parse(first).map_or(true, |m| m.iterations <= 4096);
    if !cheap {
        return;
    }
    // One credential for the process: its salted-password cache makes a salt the fuzzer
    // repeats cost one PBKDF2, not one per input.
    static CREDENTIAL: OnceLock<Option<Credential>> = OnceLock::new();
    let Some(cred) = CREDENTIAL.get_or_init(|| {
        Credential::builder()
            .username("u")
            .password("p")
            .build()
            .ok()
    }) else {
        return;
    };
    // The last byte picks the mechanism: one PBKDF2 per input at most.
    let mechanism = if data.last().is_some_and(|b| b % 2 == 0) {
        AuthMechanism::ScramSha256
    } else {
        AuthMechanism::ScramSha1
    };
    let Ok(mut conv) = ScramConversation::start(cred, mechanism, "abc") else {
        return;
    };
    let payload = |s: &str| {
        Bson::Binary(Binary {
            subtype: BinarySubtype::Generic,
            bytes: s.as_bytes().to_vec(),
        })
    };
    let first_reply = doc! {"conversationId": 1, "done": false, "payload": payload(first)};
    if let Err(e) = conv.handle_reply(&first_reply) {
        let _ = e.to_string();
        return;
    }
    let last_reply = doc! {"conversationId": 1, "done": true, "payload": payload(last)};
    if let Err(e) = conv.handle_reply(&last_reply) {
        let _ = format!("{e} {e:?}");
    }
}

/// A `hello` reply (a BSON document) into a server description, then into a topology
/// description of each starting type.
pub fn hello_description(data: &[u8]) {
    let Ok(reply) = Document::from_reader(data) else {
        return;
    };
    let Ok(address) = ServerAddress::parse("a:27017") else {
        return;
    };
    let now = Instant::now();
    let sd =
        ServerDescription::from_hello(address.clone(), &reply, Some(Duration::from_millis(5)), now);
    let _ = format!("{sd:?}");
    let _ = sd.is_known();
    let _ = sd.is_data_bearing();
    let _ = sd.members().count();
    let _ = sd.to_info();
    let _ = mongo_sdam::server_type_from_hello(&reply);

    let mut configs = vec![TopologyConfig::new(vec![address.clone()])];
    let mut direct = TopologyConfig::new(vec![address.clone()]);
    direct.direct_connection = Some(true);
    configs.push(direct);
    let mut set = TopologyConfig::new(vec![address.clone()]);
    set.set_name = Some("rs".to_string());
    configs.push(set);
    for config in configs {
        let mut topology = TopologyDescription::new(&config);
        let _ = topology.apply(sd.clone());
        // A second check of the same reply: the update must be idempotent enough not to fail.
        let _ = topology.apply(sd.clone());
        let _ = format!("{topology:?}");
    }
}

/// A connection string: parse, format what parses, and parse what it formats.
pub fn connection_string(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ConnectionString::parse(text) {
        Ok(cs) => {
            let _ = format!("{cs:?}");
        }
        Err(e) => {
            let _ = format!("{e} {e:?}");
        }
    }
}

/// One server shared by the iterations of a process, replaced every `RESET_EVERY` inputs so
/// that the data the fuzzer writes stays small.
struct Kit {
    runtime: tokio::runtime::Runtime,
    server: Option<TestServer>,
}

const RESET_EVERY: u64 = 2_000;

static KIT: OnceLock<Mutex<Kit>> = OnceLock::new();
static RUNS: AtomicU64 = AtomicU64::new(0);

/// The testkit's command dispatch: the first byte picks the database, the rest is the command
/// document, run as a fresh connection would (`TestServer::handle`: access checks, fail
/// points, sessions, transactions and every command's argument parsing).
pub fn testkit_dispatch(data: &[u8]) {
    const DATABASES: [&str; 6] = ["admin", "test", "local", "config", "$external", "db"];
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(cmd) = Document::from_reader(rest) else {
        return;
    };
    let db = DATABASES[usize::from(pick) % DATABASES.len()];
    let kit = KIT.get_or_init(|| {
        // A worker thread runs what the commands spawn (timers, session and cursor reapers):
        // on a runtime nobody drives those tasks would pile up, each holding its server.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime for the testkit");
        Mutex::new(Kit {
            runtime,
            server: None,
        })
    });
    let mut kit = kit.lock();
    let runs = RUNS.fetch_add(1, Ordering::Relaxed);
    if kit.server.is_none() || runs % RESET_EVERY == 0 {
        let old = kit.server.take();
        let server = kit.runtime.block_on(async {
            if let Some(old) = old {
                old.stop().await;
            }
            TestServer::start(ServerOptions::default()).await
        });
        kit.server = Some(server.expect("the testkit server starts"));
    }
    let Kit { runtime, server } = &mut *kit;
    let Some(server) = server.as_ref() else {
        return;
    };
    let _guard = runtime.enter();
    let mut conn = server.new_conn_state();
    let reply = server.handle(db, cmd, &mut conn);
    let mut out = Vec::new();
    let _ = reply.to_writer(&mut out);
}

/// A mutex from std that shrugs off poisoning (a panicking input already fails the run).
mod parking_lot_free {
    /// `std::sync::Mutex` whose `lock` ignores poisoning.
    pub struct Mutex<T>(std::sync::Mutex<T>);

    impl<T> Mutex<T> {
        /// Wraps `value`.
        pub const fn new(value: T) -> Self {
            Self(std::sync::Mutex::new(value))
        }

        /// Locks, ignoring poisoning.
        pub fn lock(&self) -> std::sync::MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(|p| p.into_inner())
        }
    }
}
