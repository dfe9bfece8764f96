//! `cargo xtask fuzz [TARGET...] [--time S] [--runs N] [--merge]`: builds the `fuzz/`
//! workspace with LLVM's coverage instrumentation and runs each libFuzzer target.
//!
//! It needs neither nightly nor cargo-fuzz: the instrumentation flags cargo-fuzz passes
//! (`-Cpasses=sancov-module` and the `-sanitizer-coverage-*` LLVM options) are stable `-C`
//! flags; only the address sanitizer (`-Zsanitizer`, which cargo-fuzz adds by default) is
//! nightly-only, and the fuzzed code is safe Rust. Builds go to `<target>/fuzz` (beside the
//! workspace's own artifacts, never mixed with them: the flags differ).
//!
//! Each run starts from the corpus kept in the repository (`fuzz/corpus/<target>`, read only)
//! plus a working corpus under the target folder that the fuzzer grows; `--merge` adds to the
//! repository corpus the inputs of the working one that reach new coverage. A crash leaves
//! its input under `<target>/fuzz/artifacts/<target>/` and fails the command.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

/// Every target of `fuzz/Cargo.toml`, in the order they run.
const TARGETS: &[&str] = &[
    "frame_reader",
    "op_msg",
    "query_reply",
    "legacy",
    "compressed",
    "scram_server_messages",
    "hello_description",
    "connection_string",
    "testkit_dispatch",
];

/// The flags cargo-fuzz gives rustc for a libFuzzer build without a sanitizer.
const RUSTFLAGS: &[&str] = &[
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
    "-Cdebug-assertions",
    "-Coverflow-checks",
    "--cfg",
    "fuzzing",
];

struct Args {
    targets: Vec<&'static str>,
    time: u64,
    runs: Option<u64>,
    merge: bool,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut out = Args {
        targets: Vec::new(),
        time: 10,
        runs: None,
        merge: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--time" => {
                out.time = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or("--time needs a number of seconds")?;
            }
            "--runs" => {
                out.runs = Some(
                    it.next()
                        .and_then(|s| s.parse().ok())
                        .ok_or("--runs needs a number of executions")?,
                );
            }
            "--merge" => out.merge = true,
            name => match TARGETS.iter().find(|t| **t == name) {
                Some(t) => out.targets.push(t),
                None => {
                    return Err(format!(
                        "unknown fuzz target `{name}` (targets: {})",
                        TARGETS.join(", ")
                    ));
                }
            },
        }
    }
    if out.targets.is_empty() {
        out.targets = TARGETS.to_vec();
    }
    Ok(out)
}

/// The host's target triple (`rustc -vV`): building with `--target` keeps the
/// instrumentation flags off build scripts and proc macros.
fn host_triple() -> Result<String, String> {
    let out = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("-vV")
        .output()
        .map_err(|e| format!("running rustc -vV: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .ok_or_else(|| "rustc -vV printed no host line".to_string())
}

fn fuzz_target_dir(root: &Path) -> PathBuf {
    let base =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    base.join("fuzz")
}

/// Runs `cargo xtask fuzz`.
pub(crate) fn run(root: &Path, args: &[String]) -> ExitCode {
    match try_run(root, args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("fuzz: {e}");
            ExitCode::from(2)
        }
    }
}

fn try_run(root: &Path, args: &[String]) -> Result<bool, String> {
    let args = parse(args)?;
    let triple = host_triple()?;
    let target_dir = fuzz_target_dir(root);
    let manifest = root.join("fuzz").join("Cargo.toml");
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build
        .args(["build", "--release", "--manifest-path"])
        .arg(&manifest)
        .args(["--target", &triple])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("CARGO_ENCODED_RUSTFLAGS", RUSTFLAGS.join("\x1f"))
        .env_remove("RUSTFLAGS");
    for t in &args.targets {
        build.args(["--bin", t]);
    }
    let status = build
        .status()
        .map_err(|e| format!("running cargo build: {e}"))?;
    if !status.success() {
        return Err("building the fuzz targets failed".into());
    }
    let bin_dir = target_dir.join(&triple).join("release");
    let mut ok = true;
    let mut lines = Vec::new();
    for t in &args.targets {
        let line = run_target(root, &target_dir, &bin_dir, t, &args)?;
        ok &= line.crashed.is_none();
        lines.push(line);
    }
    for l in &lines {
        match &l.crashed {
            None => println!(
                "fuzz {}: {} executions in {} s, corpus {} inputs, no crash",
                l.name, l.execs, l.secs, l.corpus
            ),
            Some(what) => println!(
                "fuzz {}: {} executions in {} s, CRASH ({what})",
                l.name, l.execs, l.secs
            ),
        }
    }
    let crashed = lines.iter().filter(|l| l.crashed.is_some()).count();
    // A target passes when it ran its time (or runs) without a crash.
    println!("fuzz: {} passed, {crashed} failed", lines.len() - crashed);
    Ok(ok)
}

struct Line {
    name: &'static str,
    execs: u64,
    secs: u64,
    corpus: u64,
    crashed: Option<String>,
}

fn run_target(
    root: &Path,
    target_dir: &Path,
    bin_dir: &Path,
    name: &'static str,
    args: &Args,
) -> Result<Line, String> {
    let kept = root.join("fuzz").join("corpus").join(name);
    let work = target_dir.join("corpus-work").join(name);
    let artifacts = target_dir.join("artifacts").join(name);
    for d in [&kept, &work, &artifacts] {
        std::fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
    }
    let mut cmd = Command::new(bin_dir.join(name));
    cmd.arg(&work)
        .arg(&kept)
        .arg(format!("-max_total_time={}", args.time))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .args(["-print_final_stats=1", "-timeout=20", "-rss_limit_mb=2048"])
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped());
    if let Some(n) = args.runs {
        cmd.arg(format!("-runs={n}"));
    }
    #[allow(
        clippy::disallowed_methods,
        reason = "a command-line tool timing a child process, not a sans-I/O core"
    )]
    let start = Instant::now();
    eprintln!("==> fuzz {name} ({} s max)", args.time);
    let out = cmd
        .output()
        .map_err(|e| format!("running the {name} target: {e}"))?;
    let log = String::from_utf8_lossy(&out.stderr);
    let stat = |key: &str| {
        log.lines()
            .rev()
            .filter_map(|l| l.strip_prefix(key))
            .find_map(|v| v.trim().parse::<u64>().ok())
    };
    let execs = stat("stat::number_of_executed_units:").unwrap_or(0);
    let corpus = std::fs::read_dir(&work).map_or(0, |d| d.count() as u64);
    let crashed = if out.status.success() {
        None
    } else {
        // libFuzzer's report (the panic message and the artifact's path) is what to read.
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        for l in tail.iter().rev() {
            eprintln!("  {name}: {l}");
        }
        Some(format!(
            "exit {}; input under {}",
            out.status,
            artifacts.display()
        ))
    };
    if args.merge && crashed.is_none() {
        let status = Command::new(bin_dir.join(name))
            .arg("-merge=1")
            .arg(&kept)
            .arg(&work)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("merging the {name} corpus: {e}"))?;
        if !status.success() {
            return Err(format!("merging the {name} corpus failed: {status}"));
        }
    }
    Ok(Line {
        name,
        execs,
        secs: start.elapsed().as_secs(),
        corpus,
        crashed,
    })
}
