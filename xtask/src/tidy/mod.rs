//! `cargo xtask tidy`: checks of the workspace that neither rustc nor clippy make.
//!
//! - every `.rs` file starts with a `//!` doc comment;
//! - the crate graph (`cargo metadata`) matches the block in ARCHITECTURE.md;
//! - no `.rs` file is longer than 800 lines without a `// tidy: long-file: <reason>` line;
//! - the client's examples and tests reach everything through `mongo_client` (the facade);
//! - the path-scoped forbidden-import table ([`source::RULES`]).
//!
//! Each problem is printed as `tidy: <file>: <problem>`; with none, `tidy: ok`. The checks
//! themselves are pure functions in [`source`] and [`graph`]; this module walks the tree.

mod graph;
mod source;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The folders (relative to the workspace root) whose `.rs` files are checked.
const ROOTS: [&str; 3] = ["crates", "spec-tests", "xtask"];

/// Runs every check on the workspace at `root` and prints the findings.
pub(crate) fn run(root: &Path) -> ExitCode {
    let mut problems: Vec<(String, String)> = Vec::new();

    let mut files = Vec::new();
    for dir in ROOTS {
        collect_rs(&root.join(dir), &mut files);
    }
    files.sort();
    if files.is_empty() {
        problems.push((".".to_string(), "found no .rs files to check".to_string()));
    }
    for path in &files {
        let rel = relative(root, path);
        match std::fs::read_to_string(path) {
            Ok(text) => {
                for p in source::check_file(&rel, &text) {
                    problems.push((rel.clone(), p));
                }
            }
            Err(e) => problems.push((rel, format!("cannot read: {e}"))),
        }
    }

    for p in check_crate_graph(root) {
        problems.push(("ARCHITECTURE.md".to_string(), p));
    }

    for (file, problem) in &problems {
        println!("tidy: {file}: {problem}");
    }
    if problems.is_empty() {
        println!("tidy: ok");
        ExitCode::SUCCESS
    } else {
        println!(
            "tidy: {} problems in {} files checked",
            problems.len(),
            files.len()
        );
        ExitCode::FAILURE
    }
}

/// Every `.rs` file under `dir`, skipping `target` folders (the workspace's and the fuzz
/// workspace's) and hidden folders.
fn collect_rs(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if name != "target" && !name.starts_with("target-") && !name.starts_with('.') {
                collect_rs(&path, files);
            }
        } else if name.ends_with(".rs") {
            files.push(path);
        }
    }
}

/// `path` relative to `root`, with `/` separators.
fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Compares `cargo metadata` with the block in ARCHITECTURE.md.
fn check_crate_graph(root: &Path) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let output = Command::new(cargo)
        .current_dir(root)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .output();
    let json = match output {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) => {
            return vec![format!(
                "cargo metadata failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            )];
        }
        Err(e) => return vec![format!("cannot run cargo metadata: {e}")],
    };
    let (actual, order) = match graph::from_metadata(&json) {
        Ok(g) => g,
        Err(e) => return vec![e],
    };
    let text = match std::fs::read_to_string(root.join("ARCHITECTURE.md")) {
        Ok(t) => t,
        Err(e) => return vec![format!("cannot read: {e}")],
    };
    match graph::from_architecture(&text) {
        Ok(documented) => graph::compare(&documented, &actual, &order),
        Err(errors) => errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_use_slashes() {
        let root = Path::new("/w");
        assert_eq!(
            relative(root, &root.join("crates").join("a.rs")),
            "crates/a.rs"
        );
    }

    #[test]
    fn the_walk_skips_target_folders() {
        let dir = std::env::temp_dir().join(format!("xtask-tidy-walk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["src", "target/debug", "fuzz/target", ".hidden"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
            std::fs::write(dir.join(sub).join("x.rs"), "//! x\n").unwrap();
        }
        std::fs::write(dir.join("src").join("notes.txt"), "").unwrap();
        let mut files = Vec::new();
        collect_rs(&dir, &mut files);
        let rel: Vec<String> = files.iter().map(|f| relative(&dir, f)).collect();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(rel, ["src/x.rs"]);
    }
}
