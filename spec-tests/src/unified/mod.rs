//! The unified test format runner (`cargo xtask spec unified`): every unified file of the
//! official specifications (and of `spec-tests/data/unified/`), run against testkit
//! deployments started in-process that match each test's `runOnRequirements`.
//!
//! A test passes, fails (the file, the test and the first operation or expectation that did
//! not hold, and why), is skipped for a reason the format gives (`skipReason`, requirements no
//! deployment meets), or is *unsupported*: it needs an operation or option the client does not
//! have yet, named in the report and never counted as a pass. Files under
//! `unified-test-format/tests/valid-fail` must fail: each failure there is an expected one.
//!
//! Module map: `file.rs` (loading, schema version, requirements), `deployment.rs` (the
//! deployments and the internal client), `entities.rs` (the entity map, client entities),
//! `events.rs` and `logs.rs` (what clients emit, and the expectations on it), `matching.rs`
//! (the format's match rules and `$$` operators), `runner.rs` (one test from setup to
//! outcome), `ops.rs` (entity operations), `special.rs` (the `testRunner` operations),
//! `errors.rs` (`expectError`), `threads.rs`.
#![allow(
    clippy::disallowed_methods,
    reason = "the runner is a test harness: it sleeps, spawns tasks and reads the clock"
)]

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

mod args;
mod client_bulk;
mod cursor_ops;
mod deployment;
mod entities;
mod errors;
mod events;
mod file;
mod gridfs;
mod logs;
mod map_reduce;
mod matching;
mod ops;
mod runner;
mod sessions;
mod special;
mod threads;
mod transactions;

use crate::Context;

/// A boxed, sendable future (operations recurse through threads and `loop`).
pub(crate) type BoxFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// The unified-format folders of the specifications (relative to `source/`), in run order.
pub const UNIFIED_DIRS: &[&str] = &[
    "unified-test-format/tests/valid-pass",
    "unified-test-format/tests/valid-fail",
    "connection-monitoring-and-pooling/tests/logging",
    "server-discovery-and-monitoring/tests/unified",
    "server-selection/tests/logging",
    "command-logging-and-monitoring/tests/logging",
    "command-logging-and-monitoring/tests/monitoring",
    "load-balancers/tests",
    "mongodb-handshake/tests/unified",
    "run-command/tests/unified",
    "versioned-api/tests",
    "client-backpressure/tests",
    "auth/tests/unified",
    "crud/tests/unified",
    "retryable-reads/tests/unified",
    "retryable-writes/tests/unified",
    "read-write-concern/tests/operation",
    "sessions/tests",
    "transactions/tests/unified",
    "transactions-convenient-api/tests/unified",
    "change-streams/tests/unified",
    "gridfs/tests",
    "client-side-operations-timeout/tests",
];

/// The folder whose tests must fail.
const VALID_FAIL: &str = "unified-test-format/tests/valid-fail";

/// Why a test did not pass.
#[derive(Debug, Clone)]
pub(crate) struct Fail {
    unsupported: bool,
    message: String,
}

impl Fail {
    /// A failed assertion or an unexpected error.
    pub(crate) fn runner(message: impl Into<String>) -> Fail {
        Fail {
            unsupported: false,
            message: message.into(),
        }
    }

    /// The test needs something the client does not have yet.
    pub(crate) fn unsupported(message: impl Into<String>) -> Fail {
        Fail {
            unsupported: true,
            message: message.into(),
        }
    }

    /// A client construction error: unsupported when the client refused an option it cannot
    /// honour (`UriError::Unsupported`), a failure otherwise.
    pub(crate) fn from_uri_error(at: impl fmt::Display, e: &mongo_client::UriError) -> Fail {
        let message = format!("{at}: {e}");
        if matches!(e, mongo_client::UriError::Unsupported { .. }) {
            Fail::unsupported(message)
        } else {
            Fail::runner(message)
        }
    }

    /// Prefixes the message with where it happened.
    pub(crate) fn context(mut self, at: impl fmt::Display) -> Fail {
        self.message = format!("{at}: {}", self.message);
        self
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What became of one test.
#[derive(Debug, Clone)]
pub enum TestResult {
    /// It passed.
    Passed,
    /// A valid-fail test failed, as it must: counted as passed, the reason kept.
    ExpectedFailure(String),
    /// It failed, with the reason.
    Failed(String),
    /// Skipped for a reason the format allows.
    Skipped(String),
    /// It needs an operation or option the client does not have yet.
    Unsupported(String),
}

/// The results of one folder.
#[derive(Debug, Clone, Default)]
pub struct DirReport {
    /// (file, test, result) of every test.
    pub tests: Vec<(PathBuf, String, TestResult)>,
}

impl DirReport {
    fn count(&self, f: impl Fn(&TestResult) -> bool) -> usize {
        self.tests.iter().filter(|(_, _, r)| f(r)).count()
    }

    /// Passed tests.
    pub fn passed(&self) -> usize {
        self.count(|r| matches!(r, TestResult::Passed | TestResult::ExpectedFailure(_)))
    }

    /// Failed tests.
    pub fn failed(&self) -> usize {
        self.count(|r| matches!(r, TestResult::Failed(_)))
    }

    /// Skipped tests.
    pub fn skipped(&self) -> usize {
        self.count(|r| matches!(r, TestResult::Skipped(_)))
    }

    /// Unsupported tests.
    pub fn unsupported(&self) -> usize {
        self.count(|r| matches!(r, TestResult::Unsupported(_)))
    }

    /// `N passed, N failed, N skipped, unsupported: N`.
    pub fn line(&self) -> String {
        format!(
            "{} passed, {} failed, {} skipped, unsupported: {}",
            self.passed(),
            self.failed(),
            self.skipped(),
            self.unsupported()
        )
    }
}

/// The whole run: one report per folder (relative name → report).
#[derive(Debug, Default)]
pub struct Report {
    /// Per folder, in run order.
    pub dirs: BTreeMap<usize, (String, DirReport)>,
}

impl Report {
    /// Failed tests in every folder.
    pub fn failed(&self) -> usize {
        self.dirs.values().map(|(_, r)| r.failed()).sum()
    }
}

/// The folders to run: `dirs` as given (relative to the official root, or paths), or every
/// unified folder.
fn resolve_dirs(ctx: &Context, dirs: &[String]) -> Vec<(String, PathBuf)> {
    let root = ctx.official.clone();
    let mut out = Vec::new();
    let names: Vec<String> = if dirs.is_empty() {
        UNIFIED_DIRS.iter().map(|s| (*s).to_string()).collect()
    } else {
        dirs.to_vec()
    };
    for n in names {
        let p = Path::new(&n);
        let ours: Vec<&str> = UNIFIED_DIRS
            .iter()
            .copied()
            .filter(|d| d.starts_with(n.as_str()))
            .collect();
        match &root {
            Some(r) if !ours.is_empty() => {
                for d in ours {
                    out.push((d.to_string(), r.join(d)));
                }
            }
            Some(r) if r.join(&n).is_dir() => out.push((n.clone(), r.join(&n))),
            _ => out.push((n.clone(), p.to_path_buf())),
        }
    }
    let own = ctx.own.join("unified");
    if dirs.is_empty() && own.is_dir() {
        out.push(("spec-tests/data/unified".into(), own));
    }
    out
}

/// Runs the unified files of `dirs` (every unified folder when empty).
pub fn run(ctx: &Context, dirs: &[String]) -> Report {
    logs::install();
    // A 3-member replica set's hello reply (mongod's or the testkit's) is about 1050
    // characters of relaxed JSON, and the SDAM logging tests parse heartbeat replies from log
    // messages: raise the 1000-character default unless the environment sets a length. The
    // default's truncation is tested in crates/events.
    if std::env::var_os(mongo_client::event::log::MAX_DOCUMENT_LENGTH_ENV).is_none() {
        mongo_client::event::log::set_max_document_length(Some(4000));
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let mut report = Report::default();
            let mut d = DirReport::default();
            d.tests.push((
                PathBuf::new(),
                "(runtime)".into(),
                TestResult::Failed(e.to_string()),
            ));
            report.dirs.insert(0, ("(runner)".into(), d));
            return report;
        }
    };
    rt.block_on(async {
        let mut deployments = deployment::Deployments::default();
        let mut report = Report::default();
        for (i, (name, path)) in resolve_dirs(ctx, dirs).into_iter().enumerate() {
            let mut dir = DirReport::default();
            if !path.is_dir() {
                dir.tests.push((
                    path.clone(),
                    "(folder)".into(),
                    TestResult::Failed("no such folder".into()),
                ));
            } else {
                let expect_failure = path.ends_with(VALID_FAIL);
                let mut files: Vec<PathBuf> = std::fs::read_dir(&path)
                    .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
                    .unwrap_or_default();
                files.retain(|f| f.extension().is_some_and(|e| e == "json") && ctx.wants_file(f));
                files.sort();
                for f in files {
                    for (test, result) in runner::run_file(&f, ctx, &mut deployments).await {
                        let result = if expect_failure {
                            invert(result)
                        } else {
                            result
                        };
                        dir.tests.push((f.clone(), test, result));
                    }
                }
            }
            report.dirs.insert(i, (name, dir));
        }
        deployments.stop().await;
        report
    })
}

/// In valid-fail, a failure (or an unsupported operation, which the format says must raise
/// an error) is the expected outcome; a pass is a runner bug.
fn invert(r: TestResult) -> TestResult {
    match r {
        TestResult::Failed(why) | TestResult::Unsupported(why) => TestResult::ExpectedFailure(why),
        TestResult::Passed => {
            TestResult::Failed("this valid-fail test must fail, but it passed".into())
        }
        other => other,
    }
}
