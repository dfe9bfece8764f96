//! Data-driven runners for the official MongoDB specification tests (JSON) and for the
//! project's own cases written in the same formats under `spec-tests/data/<suite>/`.
//!
//! `cargo xtask spec` is the front end; this crate owns the runners. Each suite lives in its
//! own module and fills in an [`Outcome`]: one pass, failure or skip per test case, every
//! failure naming the file, the test description and the first field that did not match.

use std::fmt;
use std::path::{Path, PathBuf};

mod auth;
mod cmap;
mod connection_string;
mod sdam;
mod server_selection;
mod uri_options;
pub mod util;

/// A test suite that `cargo xtask spec` can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Suite {
    /// Connection Monitoring and Pooling, `connection-monitoring-and-pooling/tests/cmap-format`.
    Cmap,
    /// Server Discovery and Monitoring, `server-discovery-and-monitoring/tests/*` (not unified).
    Sdam,
    /// Server selection, including the max-staleness tests.
    ServerSelection,
    /// Connection string parsing, `connection-string/tests`.
    ConnectionString,
    /// URI options, `uri-options/tests`.
    UriOptions,
    /// Credentials from connection strings, `auth/tests/legacy`.
    Auth,
}

impl Suite {
    /// Every suite, in the order they run.
    pub const ALL: [Suite; 6] = [
        Suite::Cmap,
        Suite::Sdam,
        Suite::ServerSelection,
        Suite::ConnectionString,
        Suite::UriOptions,
        Suite::Auth,
    ];

    /// The suite's name on the command line and in the summary lines.
    pub fn name(self) -> &'static str {
        match self {
            Suite::Cmap => "cmap",
            Suite::Sdam => "sdam",
            Suite::ServerSelection => "server-selection",
            Suite::ConnectionString => "connection-string",
            Suite::UriOptions => "uri-options",
            Suite::Auth => "auth",
        }
    }

    /// Parses a suite name as given on the command line.
    pub fn from_name(name: &str) -> Option<Suite> {
        Suite::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the tests come from and which of them to run.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// The official `specifications/source` folder, if one was given.
    pub official: Option<PathBuf>,
    /// The project's own cases: the folder holding `<suite>/` subfolders.
    pub own: PathBuf,
    /// Only files whose path contains this text (`SPEC_FILE`).
    pub file_filter: Option<String>,
    /// Only tests whose description contains this text (`SPEC_TEST`).
    pub test_filter: Option<String>,
}

impl Context {
    /// Whether a file passes the `SPEC_FILE` filter.
    pub fn wants_file(&self, path: &Path) -> bool {
        match &self.file_filter {
            Some(f) => path.to_string_lossy().contains(f.as_str()),
            None => true,
        }
    }

    /// Whether a test description passes the `SPEC_TEST` filter.
    pub fn wants_test(&self, description: &str) -> bool {
        match &self.test_filter {
            Some(f) => description.contains(f.as_str()),
            None => true,
        }
    }

    /// The official folder `rel` (relative to `source/`), if the official suite was given and
    /// the folder exists.
    pub fn official_dir(&self, rel: &str) -> Option<PathBuf> {
        let dir = self.official.as_ref()?.join(rel);
        dir.is_dir().then_some(dir)
    }

    /// The project's own cases for `suite`.
    pub fn own_dir(&self, suite: Suite) -> PathBuf {
        self.own.join(suite.name())
    }
}

/// One failed test case.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The file the test came from.
    pub file: PathBuf,
    /// The test's description.
    pub test: String,
    /// What went wrong: the first mismatching field, or the error.
    pub detail: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.file.display(), self.test, self.detail)
    }
}

/// The result of running one suite.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Test cases that passed.
    pub passed: usize,
    /// Test cases that failed; see `failures`.
    pub failed: usize,
    /// Test cases skipped, each for a reason given in `skips`.
    pub skipped: usize,
    /// Every failure.
    pub failures: Vec<Failure>,
    /// Every skip, with its reason.
    pub skips: Vec<Failure>,
    /// Free-form notes printed under the summary line (for example, that integration tests ran
    /// against a simulated establisher).
    pub notes: Vec<String>,
}

impl Outcome {
    /// Records a pass.
    pub fn pass(&mut self) {
        self.passed += 1;
    }

    /// Records a failure.
    pub fn fail(&mut self, file: &Path, test: &str, detail: impl Into<String>) {
        self.failed += 1;
        self.failures.push(Failure {
            file: file.to_path_buf(),
            test: test.to_string(),
            detail: detail.into(),
        });
    }

    /// Records a skip with its reason.
    pub fn skip(&mut self, file: &Path, test: &str, reason: impl Into<String>) {
        self.skipped += 1;
        self.skips.push(Failure {
            file: file.to_path_buf(),
            test: test.to_string(),
            detail: reason.into(),
        });
    }

    /// Records the result of one test: `Ok` passes, `Err(detail)` fails.
    pub fn record(&mut self, file: &Path, test: &str, result: Result<(), String>) {
        match result {
            Ok(()) => self.pass(),
            Err(detail) => self.fail(file, test, detail),
        }
    }

    /// Adds another outcome's counts and lists to this one.
    pub fn absorb(&mut self, other: Outcome) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
        self.failures.extend(other.failures);
        self.skips.extend(other.skips);
        self.notes.extend(other.notes);
    }

    /// The summary line, exactly `LABEL: N passed, N failed, N skipped`.
    pub fn summary(&self, label: &str) -> String {
        format!(
            "{label}: {} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        )
    }
}

/// Runs one suite: the official files (when `ctx.official` is set) and the project's own cases.
///
/// A suite whose runner does not exist yet reports one failure saying so.
pub fn run(suite: Suite, ctx: &Context) -> Outcome {
    let mut out = Outcome::default();
    let implemented = match suite {
        Suite::Cmap => cmap::run(ctx, &mut out),
        Suite::Sdam => sdam::run(ctx, &mut out),
        Suite::ServerSelection => server_selection::run(ctx, &mut out),
        Suite::ConnectionString => connection_string::run(ctx, &mut out),
        Suite::UriOptions => uri_options::run(ctx, &mut out),
        Suite::Auth => auth::run(ctx, &mut out),
    };
    if !implemented {
        out.fail(
            &ctx.own_dir(suite),
            "(runner)",
            format!("the {suite} runner does not exist yet"),
        );
    }
    out
}
