//! Data-driven runners for the official MongoDB specification tests (JSON) and for the
//! project's own cases written in the same formats under `spec-tests/data/<suite>/`.
//!
//! `cargo xtask spec` is the front end; this crate owns the runners. Each suite lives in its
//! own module and fills in an [`Outcome`]: one pass, failure or skip per test case, every
//! failure naming the file, the test description and the first field that did not match.
//!
//! Every case is classified by the file it came from: official (under [`Context::official`])
//! or the project's own (under [`Context::own`]), so that a summary cannot hide a suite whose
//! official cases did not run behind its own passing ones. A suite given the official folder
//! fails when one of its official folders is missing or holds no case.

use std::fmt;
use std::path::{Path, PathBuf};

mod auth;
mod cmap;
mod connection_string;
mod dns_seedlist;
mod dns_zone;
mod read_write_concern;
mod sdam;
mod server_selection;
pub mod unified;
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
    /// `dns-seedlist`: initial DNS seedlist discovery against an in-process DNS zone and
    /// testkit deployments.
    DnsSeedlist,
    /// Read and write concern, `read-write-concern/tests/document` and
    /// `read-write-concern/tests/connection-string`.
    ReadWriteConcern,
}

impl Suite {
    /// Every suite, in the order they run.
    pub const ALL: [Suite; 8] = [
        Suite::Cmap,
        Suite::Sdam,
        Suite::ServerSelection,
        Suite::ConnectionString,
        Suite::UriOptions,
        Suite::Auth,
        Suite::DnsSeedlist,
        Suite::ReadWriteConcern,
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
            Suite::DnsSeedlist => "dns-seedlist",
            Suite::ReadWriteConcern => "read-write-concern",
        }
    }

    /// Parses a suite name as given on the command line.
    pub fn from_name(name: &str) -> Option<Suite> {
        Suite::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The folders (relative to the specifications' `source/`) that the suite's runner reads
    /// its official cases from. Given the official tests, each must exist.
    pub fn official_dirs(self) -> &'static [&'static str] {
        match self {
            Suite::Cmap => &["connection-monitoring-and-pooling/tests/cmap-format"],
            Suite::Sdam => &[
                "server-discovery-and-monitoring/tests/single",
                "server-discovery-and-monitoring/tests/rs",
                "server-discovery-and-monitoring/tests/sharded",
                "server-discovery-and-monitoring/tests/load-balanced",
                "server-discovery-and-monitoring/tests/errors",
                "server-discovery-and-monitoring/tests/monitoring",
            ],
            Suite::ServerSelection => &[
                "server-selection/tests/server_selection",
                "server-selection/tests/rtt",
                "server-selection/tests/in_window",
                "max-staleness/tests",
            ],
            Suite::ConnectionString => &["connection-string/tests"],
            Suite::UriOptions => &["uri-options/tests"],
            Suite::Auth => &["auth/tests/legacy"],
            Suite::DnsSeedlist => &["initial-dns-seedlist-discovery/tests"],
            Suite::ReadWriteConcern => &[
                "read-write-concern/tests/document",
                "read-write-concern/tests/connection-string",
            ],
        }
    }

    /// The official folders of this suite missing from `source` (the official root).
    pub fn missing_official_dirs(self, source: &Path) -> Vec<&'static str> {
        self.official_dirs()
            .iter()
            .copied()
            .filter(|rel| !source.join(rel).is_dir())
            .collect()
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

/// Pass, fail and skip counts of one kind of case.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Cases that passed.
    pub passed: usize,
    /// Cases that failed.
    pub failed: usize,
    /// Cases skipped.
    pub skipped: usize,
}

impl Counts {
    /// Every case counted: passed, failed and skipped.
    pub fn total(&self) -> usize {
        self.passed + self.failed + self.skipped
    }

    fn add(&mut self, other: Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }

    /// `P/T LABEL`, then `(N failed, N skipped)` for whichever is not zero.
    fn part(&self, label: &str) -> String {
        let mut s = format!("{}/{} {label}", self.passed, self.total());
        let mut extra = Vec::new();
        if self.failed > 0 {
            extra.push(format!("{} failed", self.failed));
        }
        if self.skipped > 0 {
            extra.push(format!("{} skipped", self.skipped));
        }
        if !extra.is_empty() {
            s.push_str(&format!(" ({})", extra.join(", ")));
        }
        s
    }
}

/// Where a test case's file lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Under the official folder ([`Context::official`]).
    Official,
    /// Under the project's own cases ([`Context::own`]).
    Own,
    /// Under neither: a runner bug. Such a case never counts as passed.
    Unclassified,
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
    /// The official cases (files under [`Context::official`]).
    pub official: Counts,
    /// The project's own cases (files under [`Context::own`]).
    pub own: Counts,
    /// Cases from a file under neither folder (always failed or skipped, see [`Outcome::pass`]).
    pub unclassified: Counts,
    /// Every failure.
    pub failures: Vec<Failure>,
    /// Every skip, with its reason.
    pub skips: Vec<Failure>,
    /// Free-form notes printed under the summary line (for example, that integration tests ran
    /// against a simulated establisher).
    pub notes: Vec<String>,
    /// The official root the cases are classified against (`None`: not given).
    official_root: Option<PathBuf>,
    /// The project's own root.
    own_root: Option<PathBuf>,
}

impl Outcome {
    /// An empty outcome that classifies cases by the folders of `ctx`.
    pub fn new(ctx: &Context) -> Outcome {
        Outcome {
            official_root: ctx.official.clone(),
            own_root: Some(ctx.own.clone()),
            ..Outcome::default()
        }
    }

    /// Where `file` lies: official, own or neither.
    pub fn origin(&self, file: &Path) -> Origin {
        if self
            .official_root
            .as_ref()
            .is_some_and(|r| file.starts_with(r))
        {
            Origin::Official
        } else if self.own_root.as_ref().is_some_and(|r| file.starts_with(r)) {
            Origin::Own
        } else {
            Origin::Unclassified
        }
    }

    fn counts(&mut self, origin: Origin) -> &mut Counts {
        match origin {
            Origin::Official => &mut self.official,
            Origin::Own => &mut self.own,
            Origin::Unclassified => &mut self.unclassified,
        }
    }

    /// Records a pass of a case from `file`. A file under neither the official nor the own
    /// folder cannot be classified, so its case is recorded as a failure instead.
    pub fn pass(&mut self, file: &Path) {
        match self.origin(file) {
            Origin::Unclassified => self.fail(
                file,
                "(unclassified)",
                "a case passed from a file under neither the official nor the own folder",
            ),
            origin => {
                self.passed += 1;
                self.counts(origin).passed += 1;
            }
        }
    }

    /// Records a failure.
    pub fn fail(&mut self, file: &Path, test: &str, detail: impl Into<String>) {
        self.failed += 1;
        self.counts(self.origin(file)).failed += 1;
        self.failures.push(Failure {
            file: file.to_path_buf(),
            test: test.to_string(),
            detail: detail.into(),
        });
    }

    /// Records a skip with its reason.
    pub fn skip(&mut self, file: &Path, test: &str, reason: impl Into<String>) {
        self.skipped += 1;
        self.counts(self.origin(file)).skipped += 1;
        self.skips.push(Failure {
            file: file.to_path_buf(),
            test: test.to_string(),
            detail: reason.into(),
        });
    }

    /// Records the result of one test: `Ok` passes, `Err(detail)` fails.
    pub fn record(&mut self, file: &Path, test: &str, result: Result<(), String>) {
        match result {
            Ok(()) => self.pass(file),
            Err(detail) => self.fail(file, test, detail),
        }
    }

    /// Adds another outcome's counts and lists to this one.
    pub fn absorb(&mut self, other: Outcome) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
        self.official.add(other.official);
        self.own.add(other.own);
        self.unclassified.add(other.unclassified);
        self.failures.extend(other.failures);
        self.skips.extend(other.skips);
        self.notes.extend(other.notes);
    }

    /// The per-suite line: `LABEL: P/T official, P/T own`, each part followed by
    /// `(N failed, N skipped)` where those are not zero; `(not given)` after the official part
    /// when no official folder was given; an `unclassified` part only when there is one.
    pub fn suite_line(&self, label: &str) -> String {
        let mut official = self.official.part("official");
        if self.official_root.is_none() && self.official.total() == 0 {
            official.push_str(" (not given)");
        }
        let mut s = format!("{label}: {official}, {}", self.own.part("own"));
        if self.unclassified.total() > 0 {
            s.push_str(&format!(", {}", self.unclassified.part("unclassified")));
        }
        s
    }

    /// The closing line, exactly `LABEL: N passed, N failed, N skipped`.
    pub fn summary(&self, label: &str) -> String {
        format!(
            "{label}: {} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        )
    }
}

/// Runs one suite: the official files (when `ctx.official` is set) and the project's own cases.
///
/// A suite whose runner does not exist yet reports one failure saying so. Given the official
/// folder, a suite reports one failure per official folder of its that is missing, and one
/// when its official folders hold no case at all (unless `SPEC_FILE` / `SPEC_TEST` filter).
pub fn run(suite: Suite, ctx: &Context) -> Outcome {
    let mut out = Outcome::new(ctx);
    if let Some(source) = &ctx.official {
        for rel in suite.missing_official_dirs(source) {
            out.fail(
                &source.join(rel),
                "(official folder)",
                format!(
                    "missing: the official {suite} cases of {rel} cannot run (is {} the \
                     specifications' source/ folder?)",
                    source.display()
                ),
            );
        }
    }
    let implemented = match suite {
        Suite::Cmap => cmap::run(ctx, &mut out),
        Suite::Sdam => sdam::run(ctx, &mut out),
        Suite::ServerSelection => server_selection::run(ctx, &mut out),
        Suite::ConnectionString => connection_string::run(ctx, &mut out),
        Suite::UriOptions => uri_options::run(ctx, &mut out),
        Suite::Auth => auth::run(ctx, &mut out),
        Suite::DnsSeedlist => dns_seedlist::run(ctx, &mut out),
        Suite::ReadWriteConcern => read_write_concern::run(ctx, &mut out),
    };
    if !implemented {
        out.fail(
            &ctx.own_dir(suite),
            "(runner)",
            format!("the {suite} runner does not exist yet"),
        );
    }
    let filtered = ctx.file_filter.is_some() || ctx.test_filter.is_some();
    if let Some(source) = &ctx.official {
        if out.official.total() == 0 && !filtered {
            out.fail(
                source,
                "(official folder)",
                format!("no official {suite} case ran from {}", source.display()),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch folder removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("spec-tests-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn context(official: Option<&Path>, own: &Path) -> Context {
        Context {
            official: official.map(Path::to_path_buf),
            own: own.to_path_buf(),
            ..Context::default()
        }
    }

    fn counts(passed: usize, failed: usize, skipped: usize) -> Counts {
        Counts {
            passed,
            failed,
            skipped,
        }
    }

    #[test]
    fn every_case_is_classified_by_its_file() {
        let ctx = context(Some(Path::new("/specs/source")), Path::new("/repo/data"));
        let mut out = Outcome::new(&ctx);
        let official = Path::new("/specs/source/cmap/a.json");
        let own = Path::new("/repo/data/cmap/b.json");
        out.pass(official);
        out.record(own, "t", Ok(()));
        out.record(official, "t", Err("x".into()));
        out.skip(own, "t", "why");
        out.skip(official, "t", "why");
        assert_eq!(out.official, counts(1, 1, 1));
        assert_eq!(out.own, counts(1, 0, 1));
        assert_eq!((out.passed, out.failed, out.skipped), (2, 1, 2));
        assert_eq!(out.origin(official), Origin::Official);
        assert_eq!(out.origin(own), Origin::Own);
    }

    #[test]
    fn an_unclassified_case_never_passes() {
        let ctx = context(None, Path::new("/repo/data"));
        let mut out = Outcome::new(&ctx);
        // Without an official folder, a file elsewhere is neither official nor own.
        out.pass(Path::new("/specs/source/cmap/a.json"));
        assert_eq!(out.passed, 0);
        assert_eq!(out.failed, 1);
        assert_eq!(out.unclassified, counts(0, 1, 0));
        assert_eq!(
            out.suite_line("cmap"),
            "cmap: 0/0 official (not given), 0/0 own, 0/1 unclassified (1 failed)"
        );
        // An outcome built without a context classifies nothing.
        let mut bare = Outcome::default();
        bare.pass(Path::new("/repo/data/x.json"));
        assert_eq!((bare.passed, bare.failed), (0, 1));
    }

    #[test]
    fn suite_lines_count_official_and_own_apart() {
        let mut out = Outcome::new(&context(Some(Path::new("/s")), Path::new("/o")));
        out.official = counts(33, 0, 0);
        out.own = counts(7, 0, 0);
        assert_eq!(out.suite_line("cmap"), "cmap: 33/33 official, 7/7 own");
        out.official = counts(65, 0, 2);
        out.own = counts(12, 0, 0);
        assert_eq!(
            out.suite_line("auth"),
            "auth: 65/67 official (2 skipped), 12/12 own"
        );
        out.official = counts(185, 1, 0);
        out.own = counts(4, 0, 0);
        assert_eq!(
            out.suite_line("sdam"),
            "sdam: 185/186 official (1 failed), 4/4 own"
        );
        out.official = counts(1, 2, 3);
        out.own = counts(0, 1, 0);
        assert_eq!(
            out.suite_line("x"),
            "x: 1/6 official (2 failed, 3 skipped), 0/1 own (1 failed)"
        );
        let own_only = Outcome::new(&context(None, Path::new("/o")));
        assert_eq!(
            own_only.suite_line("cmap"),
            "cmap: 0/0 official (not given), 0/0 own"
        );
    }

    #[test]
    fn absorb_adds_every_count_and_keeps_the_total_line() {
        let ctx = context(Some(Path::new("/s")), Path::new("/o"));
        let mut a = Outcome::new(&ctx);
        a.pass(Path::new("/s/a.json"));
        a.skip(Path::new("/o/b.json"), "t", "r");
        let mut b = Outcome::new(&ctx);
        b.fail(Path::new("/s/c.json"), "t", "d");
        let mut total = Outcome::default();
        total.absorb(a);
        total.absorb(b);
        assert_eq!(total.official, counts(1, 1, 0));
        assert_eq!(total.own, counts(0, 0, 1));
        assert_eq!(
            total.summary("total"),
            "total: 1 passed, 1 failed, 1 skipped"
        );
    }

    #[test]
    fn every_runner_reads_each_of_its_official_folders() {
        let own = Scratch::new("own-empty");
        for suite in Suite::ALL {
            let source = Scratch::new(&format!("official-{suite}"));
            for rel in suite.official_dirs() {
                let dir = source.0.join(rel);
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(dir.join("broken.json"), "{ not json").unwrap();
            }
            let out = run(suite, &context(Some(&source.0), &own.0));
            // One load failure per folder, each counted as official: the runner read them all.
            assert_eq!(
                out.official,
                counts(0, suite.official_dirs().len(), 0),
                "{suite}: {:?}",
                out.failures
            );
            assert_eq!(out.own.total(), 0, "{suite}");
            assert_eq!(out.unclassified.total(), 0, "{suite}");
        }
    }

    #[test]
    fn a_missing_official_folder_fails_the_suite() {
        let own = Scratch::new("own-missing");
        let source = Scratch::new("official-missing");
        for suite in Suite::ALL {
            let out = run(suite, &context(Some(&source.0), &own.0));
            let missing = suite.official_dirs().len();
            // One official failure per missing folder.
            assert_eq!(out.official, counts(0, missing, 0), "{suite}");
            assert_eq!(out.failed, missing, "{suite}");
            assert!(
                out.failures
                    .iter()
                    .all(|f| f.detail.starts_with("missing: ")),
                "{suite}: {:?}",
                out.failures
            );
        }
    }

    #[test]
    fn official_folders_without_cases_fail_the_suite() {
        let own = Scratch::new("own-nocase");
        for suite in Suite::ALL {
            let source = Scratch::new(&format!("official-nocase-{suite}"));
            for rel in suite.official_dirs() {
                std::fs::create_dir_all(source.0.join(rel)).unwrap();
            }
            let out = run(suite, &context(Some(&source.0), &own.0));
            assert_eq!(out.official, counts(0, 1, 0), "{suite}: {:?}", out.failures);
            assert!(out.failures[0].detail.starts_with("no official"), "{suite}");
            // Unless a filter asked for fewer cases.
            let filtered = Context {
                test_filter: Some("nothing matches this".into()),
                ..context(Some(&source.0), &own.0)
            };
            assert_eq!(run(suite, &filtered).failed, 0, "{suite}");
        }
    }

    #[test]
    fn own_cases_alone_are_not_a_failure() {
        let own = Scratch::new("own-alone");
        let out = run(Suite::ConnectionString, &context(None, &own.0));
        assert_eq!(out.failed, 0);
    }
}
