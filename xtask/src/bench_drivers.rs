//! `cargo xtask bench drivers [--quick] [--suite DIR] [ARG...]`: builds the `bench/drivers`
//! workspace (our client next to the official `mongodb` crate, which must never enter the main
//! workspace) and the testkit server in release mode, into `<target>/bench-drivers`, then runs
//! the bench against that server.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use crate::workspace_root;

/// The spec's data set the bench reads (from the specifications' `source/` folder).
const DATA: &str = "benchmarking/data/single_and_multi_document.tgz";

/// Runs the drivers benchmark; `args` come after `bench drivers`.
pub(crate) fn bench_drivers(args: &[String]) -> ExitCode {
    let root = workspace_root();
    let mut specs: Option<PathBuf> = std::env::var_os("MONGO_SPECS_DIR").map(PathBuf::from);
    let mut pass = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--suite" => match it.next() {
                Some(dir) => specs = Some(PathBuf::from(dir)),
                None => {
                    eprintln!("--suite needs the specifications' source/ folder");
                    return ExitCode::from(2);
                }
            },
            _ => pass.push(arg.clone()),
        }
    }
    let specs = specs.unwrap_or_else(|| root.join("../shared/specs/source"));
    let data = specs.join(DATA);
    if !data.is_file() {
        eprintln!(
            "{} is missing: give the specifications' source/ folder (--suite DIR or \
             MONGO_SPECS_DIR)",
            data.display()
        );
        return ExitCode::from(2);
    }
    let target = target_dir(&root).join("bench-drivers");
    let manifest = root.join("bench/drivers/Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());

    // One build in the bench's own workspace and target folder: the bench and the testkit
    // server (a dependency of the bench) share their release dependencies.
    let build = |extra: &[&str]| {
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(&root)
            .args(["build", "--release", "--manifest-path"])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(&target)
            .args(extra);
        run(&mut cmd, "cargo build")
    };
    if !build(&[]) || !build(&["-p", "mongo-testkit", "--bin", "mongo-testkit-server"]) {
        return ExitCode::FAILURE;
    }
    let exe = |name: &str| {
        target
            .join("release")
            .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
    };
    let mut cmd = Command::new(exe("bench-drivers"));
    cmd.current_dir(&root)
        .arg("--data")
        .arg(&data)
        .arg("--server")
        .arg(exe("mongo-testkit-server"))
        .arg("--out")
        .arg(target.join("report.md"))
        .args(&pass);
    if run(&mut cmd, "bench-drivers") {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `CARGO_TARGET_DIR` (made absolute) or the workspace's `target/`.
fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir,
        Some(dir) => std::env::current_dir().map_or(dir.clone(), |cwd| cwd.join(dir)),
        None => root.join("target"),
    }
}

fn run(cmd: &mut Command, what: &str) -> bool {
    match cmd.status() {
        Ok(s) => s.success(),
        Err(e) => {
            eprintln!("cannot run {what}: {e}");
            false
        }
    }
}
