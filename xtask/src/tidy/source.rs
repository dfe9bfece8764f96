//! The per-file checks of `cargo xtask tidy`: each takes a file's path (relative to the
//! workspace root, `/`-separated) and its text, and returns the problems it finds. No I/O here,
//! so every check is tested on small in-memory inputs.

/// Longest a `.rs` file may be without a `// tidy: long-file: <reason>` line.
pub(crate) const MAX_LINES: usize = 800;

/// The marker that lets a file be longer than [`MAX_LINES`]; a reason must follow it.
pub(crate) const LONG_FILE_MARKER: &str = "// tidy: long-file:";

/// How many lines from the top the long-file marker may be found in.
const MARKER_WINDOW: usize = 10;

/// The folders whose files prove that the facade is enough: they may only reach the lower
/// crates through `mongo_client` (the testkit, the test server, is allowed).
pub(crate) const FACADE_DIRS: [&str; 2] = ["crates/client/examples/", "crates/client/tests/"];

/// The lower workspace crates that the facade folders must not name.
pub(crate) const LOWER_CRATES: [&str; 5] = [
    "mongo_events",
    "mongo_wire",
    "mongo_auth",
    "mongo_pool",
    "mongo_sdam",
];

/// One row of the forbidden-import table: files under `under` (except the `allowed` ones) must
/// not mention any of `forbidden`.
#[derive(Debug)]
pub(crate) struct Rule {
    /// A path prefix relative to the workspace root, ending in `/`.
    pub(crate) under: &'static str,
    /// Files under `under` that the rule does not apply to.
    pub(crate) allowed: &'static [&'static str],
    /// Paths or names the files must not mention (matched at identifier boundaries, outside
    /// `//` comment lines).
    pub(crate) forbidden: &'static [&'static str],
    /// Why: printed with every finding.
    pub(crate) why: &'static str,
}

/// The forbidden-import table. A folder that does not exist yet simply has no files to check:
/// the row stays so that the rule holds from the first file on.
pub(crate) const RULES: &[Rule] = &[
    Rule {
        under: "crates/client/src/operation/",
        allowed: &[],
        // `Instant::now` also catches `std::time::Instant::now` and tokio's.
        forbidden: &[
            "tokio",
            "crate::conn",
            "crate::topology",
            "crate::client",
            "std::time::Instant::now",
            "Instant::now",
        ],
        why: "operations are data: they build a command and parse a reply, with no I/O, no \
              connection, no topology and no clock",
    },
    Rule {
        under: "crates/events/src/",
        allowed: &[],
        forbidden: &["tokio::"],
        why: "mongo-events never depends on tokio",
    },
    Rule {
        under: "crates/wire/src/",
        allowed: &["crates/wire/src/io.rs"],
        forbidden: &["tokio::"],
        why: "in mongo-wire only io.rs (behind the `tokio` feature) uses tokio",
    },
    Rule {
        under: "crates/auth/src/",
        allowed: &[],
        forbidden: &["tokio::"],
        why: "mongo-auth never depends on tokio",
    },
];

/// Every problem of one `.rs` file.
pub(crate) fn check_file(rel: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    problems.extend(check_doc_first(text));
    problems.extend(check_length(text));
    problems.extend(check_facade(rel, text));
    problems.extend(check_forbidden(RULES, rel, text));
    problems
}

/// (a) The first non-empty line must be a `//!` doc comment.
pub(crate) fn check_doc_first(text: &str) -> Option<String> {
    match text.lines().find(|l| !l.trim().is_empty()) {
        Some(line) if line.trim_start().starts_with("//!") => None,
        Some(line) => Some(format!(
            "does not start with a `//!` doc comment (first line: `{}`)",
            shorten(line.trim())
        )),
        None => Some("is empty: it needs at least a `//!` doc comment".to_string()),
    }
}

/// (c) At most [`MAX_LINES`] lines, unless a `// tidy: long-file: <reason>` line appears within
/// the first ten lines.
pub(crate) fn check_length(text: &str) -> Option<String> {
    let lines = text.lines().count();
    let marker = text
        .lines()
        .take(MARKER_WINDOW)
        .find_map(|l| l.trim().strip_prefix(LONG_FILE_MARKER));
    match marker {
        Some(reason) if reason.trim().is_empty() => Some(format!(
            "`{LONG_FILE_MARKER}` needs a reason after the colon"
        )),
        Some(_) => None,
        None if lines > MAX_LINES => Some(format!(
            "{lines} lines, more than {MAX_LINES}: split it, or say why not with \
             `{LONG_FILE_MARKER} <reason>` within the first {MARKER_WINDOW} lines"
        )),
        None => None,
    }
}

/// (d) Files under [`FACADE_DIRS`] never name a lower crate as a path root.
pub(crate) fn check_facade(rel: &str, text: &str) -> Vec<String> {
    if !FACADE_DIRS.iter().any(|d| rel.starts_with(d)) {
        return Vec::new();
    }
    LOWER_CRATES
        .iter()
        .filter_map(|krate| {
            let lines = lines_mentioning(text, krate, true);
            (!lines.is_empty()).then(|| {
                format!(
                    "names `{krate}` ({}): examples and client tests must reach \
                     everything through `mongo_client`",
                    join_lines(&lines)
                )
            })
        })
        .collect()
}

/// (e) The forbidden-import table: one problem per rule, file and forbidden name.
pub(crate) fn check_forbidden(rules: &[Rule], rel: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for rule in rules {
        if !rel.starts_with(rule.under) || rule.allowed.contains(&rel) {
            continue;
        }
        for name in rule.forbidden {
            let lines = lines_mentioning(text, name, false);
            if !lines.is_empty() {
                problems.push(format!(
                    "mentions `{name}` ({}): {}",
                    join_lines(&lines),
                    rule.why
                ));
            }
        }
    }
    problems
}

/// The 1-based numbers of the lines (outside `//` comment lines) where `name` appears at
/// identifier boundaries. With `root_only`, only where it starts a path: not after `x::` (so
/// `mongo_client::mongo_events` is not the crate, but `::mongo_events` is).
fn lines_mentioning(text: &str, name: &str, root_only: bool) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
        .filter(|(_, line)| mentions(line, name, root_only))
        .map(|(i, _)| i + 1)
        .collect()
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn mentions(line: &str, name: &str, root_only: bool) -> bool {
    let ends_in_ident = name.chars().last().is_some_and(is_ident);
    let mut from = 0;
    while let Some(pos) = line[from..].find(name) {
        let start = from + pos;
        let end = start + name.len();
        let before = &line[..start];
        let boundary_before = match before.chars().last() {
            None => true,
            Some(':') if root_only => {
                // `::name` is a path root only when nothing names a parent before it.
                let parent = before.trim_end_matches(':');
                parent.len() + 2 == before.len()
                    && !parent.chars().last().is_some_and(is_ident)
                    && !parent.ends_with('>')
            }
            Some(c) => !is_ident(c),
        };
        let boundary_after = !ends_in_ident || !line[end..].chars().next().is_some_and(is_ident);
        if boundary_before && boundary_after {
            return true;
        }
        from = end;
    }
    false
}

/// `line 3` or `lines 1, 2, 5` (at most eight numbers, then how many more).
fn join_lines(lines: &[usize]) -> String {
    const SHOWN: usize = 8;
    let mut numbers = lines
        .iter()
        .take(SHOWN)
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if lines.len() > SHOWN {
        numbers.push_str(&format!(" and {} more", lines.len() - SHOWN));
    }
    let word = if lines.len() == 1 { "line" } else { "lines" };
    format!("{word} {numbers}")
}

fn shorten(line: &str) -> String {
    const MAX: usize = 60;
    match line.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_comment_must_come_first() {
        assert_eq!(check_doc_first("//! Docs.\nfn main() {}\n"), None);
        assert_eq!(check_doc_first("\n\n//! Docs after blank lines.\n"), None);
        let p = check_doc_first("#![allow(dead_code)]\n//! Docs.\n").unwrap();
        assert!(p.contains("#![allow(dead_code)]"), "{p}");
        assert!(check_doc_first("use std::fmt;\n").is_some());
        assert!(check_doc_first("/// An item doc, not a module doc.\n").is_some());
        assert!(check_doc_first("// a plain comment\n//! Docs.\n").is_some());
        assert!(check_doc_first("").is_some());
        assert!(check_doc_first("\n  \n").is_some());
    }

    fn file_of(lines: usize, header: &str) -> String {
        let mut s = String::from(header);
        while s.lines().count() < lines {
            s.push_str("fn f() {}\n");
        }
        s
    }

    #[test]
    fn long_files_need_a_reason() {
        assert_eq!(check_length(&file_of(MAX_LINES, "//! Docs.\n")), None);
        let p = check_length(&file_of(MAX_LINES + 1, "//! Docs.\n")).unwrap();
        assert!(p.starts_with("801 lines"), "{p}");
        let ok = "//! Docs.\n//!\n// tidy: long-file: one state machine, split would scatter it\n";
        assert_eq!(check_length(&file_of(MAX_LINES + 200, ok)), None);
        let empty = "//! Docs.\n// tidy: long-file:   \n";
        assert!(check_length(&file_of(MAX_LINES + 1, empty)).is_some());
        // The marker only counts within the first ten lines.
        let late = format!(
            "{}// tidy: long-file: too late\n",
            "//! Docs.\n".repeat(MARKER_WINDOW)
        );
        assert!(check_length(&file_of(MAX_LINES + 1, &late)).is_some());
    }

    #[test]
    fn facade_files_must_not_name_lower_crates() {
        let text = "//! Test.\nuse mongo_client::Client;\nuse mongo_events::cmap::CmapEvent;\n\
                    // mongo_wire in a comment is fine\nlet c = mongo_wire::Compressor::Zstd;\n\
                    let x = ::mongo_pool::PoolError::Closed;\n";
        let p = check_facade("crates/client/tests/a.rs", text);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(
            p[0].starts_with("names `mongo_events` (line 3)"),
            "{}",
            p[0]
        );
        assert!(p[1].starts_with("names `mongo_wire` (line 5)"), "{}", p[1]);
        assert!(p[2].starts_with("names `mongo_pool` (line 6)"), "{}", p[2]);
        assert_eq!(check_facade("crates/client/examples/q.rs", text).len(), 3);
        // Other folders may name them; the facade's own re-exports are not path roots.
        assert!(check_facade("crates/client/src/lib.rs", text).is_empty());
        let ok = "//! Test.\nuse mongo_client::events::cmap;\nuse mongo_client::mongo_events::X;\nuse mongo_testkit::Server;\n\
                  let s = my_mongo_events_helper();\nlet t = mongo_eventsx;\n";
        assert!(check_facade("crates/client/tests/b.rs", ok).is_empty());
    }

    #[test]
    fn facade_finding_lists_every_line() {
        let text = "use mongo_sdam::A;\nuse mongo_sdam::B;\n";
        let p = check_facade("crates/client/tests/c.rs", text);
        assert_eq!(p.len(), 1);
        assert!(
            p[0].starts_with("names `mongo_sdam` (lines 1, 2)"),
            "{}",
            p[0]
        );
    }

    #[test]
    fn forbidden_table_is_path_scoped() {
        let op = "//! An operation.\nuse crate::conn::Connection;\nuse crate::connection_string;\n\
                  // tokio is not used here\nlet t = std::time::Instant::now();\n";
        let p = check_forbidden(RULES, "crates/client/src/operation/find.rs", op);
        let names: Vec<&str> = p
            .iter()
            .map(|s| s.split('`').nth(1).unwrap_or(""))
            .collect();
        assert_eq!(
            names,
            ["crate::conn", "std::time::Instant::now", "Instant::now"],
            "{p:?}"
        );
        // The same text elsewhere in the client is fine.
        assert!(check_forbidden(RULES, "crates/client/src/executor.rs", op).is_empty());
        let with_tokio =
            "//! Op.\nuse tokio::time::sleep;\nuse crate::topology::X;\nuse crate::client::Y;\n";
        assert_eq!(
            check_forbidden(RULES, "crates/client/src/operation/mod.rs", with_tokio).len(),
            3
        );
    }

    #[test]
    fn only_wire_io_may_use_tokio_in_the_leaves() {
        let text = "//! X.\nuse tokio::io::AsyncRead;\n#[cfg(feature = \"tokio\")]\n";
        assert!(check_forbidden(RULES, "crates/wire/src/io.rs", text).is_empty());
        for f in [
            "crates/wire/src/frame.rs",
            "crates/events/src/lib.rs",
            "crates/auth/src/scram/mod.rs",
        ] {
            let p = check_forbidden(RULES, f, text);
            assert_eq!(p.len(), 1, "{f}: {p:?}");
            assert!(p[0].starts_with("mentions `tokio::` (line 2)"), "{}", p[0]);
        }
        // A feature name is not a use of tokio.
        let cfg_only = "//! X.\n#[cfg(feature = \"tokio\")]\nmod io;\n";
        assert!(check_forbidden(RULES, "crates/wire/src/lib.rs", cfg_only).is_empty());
        assert!(check_forbidden(RULES, "crates/pool/src/driver.rs", text).is_empty());
    }

    #[test]
    fn the_table_keeps_its_rows() {
        let unders: Vec<&str> = RULES.iter().map(|r| r.under).collect();
        assert_eq!(
            unders,
            [
                "crates/client/src/operation/",
                "crates/events/src/",
                "crates/wire/src/",
                "crates/auth/src/"
            ]
        );
        assert!(RULES.iter().all(|r| r.under.ends_with('/')));
    }

    #[test]
    fn check_file_runs_every_check() {
        let mut text = String::from("use mongo_events::X;\nuse tokio::spawn;\n");
        while text.lines().count() <= MAX_LINES {
            text.push_str("fn f() {}\n");
        }
        assert_eq!(check_file("crates/client/tests/t.rs", &text).len(), 3);
        assert_eq!(check_file("crates/events/src/t.rs", &text).len(), 3);
    }
}
