//! `bench-drivers`: our client (`mongo-client`) next to the official `mongodb` crate, against
//! the same server in the same run. Usually started by `cargo xtask bench drivers [--quick]`,
//! which builds the testkit server and this binary; see `bench/drivers/README.md`.
//!
//! ```text
//! bench-drivers --data TGZ (--server PATH | --uri URI) [--quick] [--out FILE]
//!               [--reps N] [--min-time S] [--max-time S] [--tasks a,b,...]
//! ```

mod data;
mod driver;
mod official;
mod ours;
mod report;
mod runner;

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use runner::{Budget, Task};

/// The bench's error: any error, with its message.
pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "\
usage: bench-drivers --data TGZ (--server PATH | --uri URI) [--quick] [--out FILE]
                     [--reps N] [--min-time S] [--max-time S] [--tasks a,b,...]

--data      the spec's benchmarking/data/single_and_multi_document.tgz
--server    the mongo-testkit-server binary, started in its own process for the run
--uri       a running server instead (each client uses its own database and drops it)
--quick     a few reps per task (default: the spec's 1 to 5 minutes per task and client)
--reps N    exactly N timed reps per task
--min-time, --max-time   seconds of timed work per client at least / at most
--tasks     among insert-one, insert-many, find-one-by-id, find-many, find-many-typed, ping
--out       also write the markdown report there";

/// Fails unless `got == want`: every task checks it did all its work.
pub(crate) fn check_count(what: &str, got: usize, want: usize) -> Result<(), Error> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: {got} documents, expected {want}").into())
    }
}

#[derive(Debug)]
struct Args {
    data: PathBuf,
    server: Option<PathBuf>,
    uri: Option<String>,
    out: Option<PathBuf>,
    mode: String,
    budget: Budget,
    tasks: Vec<Task>,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, Error> {
    let mut it = args.into_iter();
    let (mut data, mut server, mut uri, mut out) = (None, None, None, None);
    let mut budget = Budget::full();
    let mut mode = "full".to_string();
    let mut custom = false;
    let mut tasks = Vec::new();
    let secs = |v: String| -> Result<Duration, Error> {
        Ok(Duration::try_from_secs_f64(v.parse::<f64>()?)?)
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--data" => data = Some(PathBuf::from(value()?)),
            "--server" => server = Some(PathBuf::from(value()?)),
            "--uri" => uri = Some(value()?),
            "--out" => out = Some(PathBuf::from(value()?)),
            "--quick" => {
                budget = Budget::quick();
                mode = "quick".to_string();
            }
            "--reps" => {
                budget.max_reps = value()?.parse()?;
                budget.min_reps = budget.max_reps;
                custom = true;
            }
            "--min-time" => {
                budget.min_time = secs(value()?)?;
                custom = true;
            }
            "--max-time" => {
                budget.max_time = secs(value()?)?;
                custom = true;
            }
            "--tasks" => {
                for name in value()?.split(',').filter(|n| !n.is_empty()) {
                    tasks.push(Task::from_name(name).ok_or_else(|| format!("no task {name:?}"))?);
                }
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}").into()),
        }
    }
    if custom {
        mode = format!(
            "{mode}, custom budget ({} to {} reps, {:?} to {:?} per client)",
            budget.min_reps, budget.max_reps, budget.min_time, budget.max_time
        );
    }
    if tasks.is_empty() {
        tasks = Task::ALL.to_vec();
    }
    let data = data.ok_or_else(|| format!("--data is required\n\n{USAGE}"))?;
    if server.is_none() == uri.is_none() {
        return Err(format!("give one of --server and --uri\n\n{USAGE}").into());
    }
    Ok(Args {
        data,
        server,
        uri,
        out,
        mode,
        budget,
        tasks,
    })
}

/// The testkit server's process, killed when dropped.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `mongo-testkit-server` on an ephemeral port; its URI once it listens.
fn start_server(path: &PathBuf) -> Result<(ServerProcess, String), Error> {
    let mut child = Command::new(path)
        .args(["--host", "127.0.0.1", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", path.display()))?;
    let stdout = child.stdout.take();
    let proc = ServerProcess(child);
    let mut line = String::new();
    if let Some(out) = stdout {
        BufReader::new(out).read_line(&mut line)?;
    }
    match line.trim().strip_prefix("listening on ") {
        Some(hp) => Ok((proc, format!("mongodb://{hp}/"))),
        None => Err(format!("the testkit server said {line:?}, not `listening on ...`").into()),
    }
}

/// The official crate's version, from the bench's lock file.
fn official_version() -> String {
    let lock = include_str!("../Cargo.lock");
    lock.split("[[package]]")
        .find(|p| p.contains("name = \"mongodb\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
        .map_or_else(
            || "(version unknown)".to_string(),
            |v| v.trim_matches('"').to_string(),
        )
}

async fn run(args: Args) -> Result<(), Error> {
    let data = data::load(&args.data)?;
    let (_server, uri, where_) = match (&args.server, &args.uri) {
        (Some(path), _) => {
            let (proc, uri) = start_server(path)?;
            let w = format!("`mongo-testkit-server` in its own process at {uri}");
            (Some(proc), uri, w)
        }
        (None, Some(uri)) => (None, uri.clone(), format!("{uri} (given)")),
        (None, None) => return Err(USAGE.into()),
    };
    eprintln!("bench: server at {uri}; loading both clients");
    let ours = ours::Ours::connect(&uri, "perftest_ours").await?;
    let official = official::Official::connect(&uri, "perftest_official").await?;
    let needs_seed = args
        .tasks
        .iter()
        .any(|t| matches!(t, Task::FindOneById | Task::FindMany | Task::FindManyTyped));
    if needs_seed {
        runner::setup(&ours, &data).await?;
        runner::setup(&official, &data).await?;
    }
    let mut results = Vec::new();
    for &task in &args.tasks {
        let t = runner::run_task(task, &ours, &official, &data, args.budget).await?;
        let m = |i: usize| {
            t.clients
                .get(i)
                .and_then(|(_, v)| runner::median(v))
                .unwrap_or_default()
        };
        eprintln!(
            "bench: {:<16} {} reps, medians ours {:?}, official {:?}",
            task.name(),
            t.clients.first().map_or(0, |(_, v)| v.len()),
            m(0),
            m(1)
        );
        results.push(t);
    }
    use driver::Driver as _;
    ours.drop_database().await?;
    official.drop_database().await?;
    ours.shutdown().await;
    official.shutdown().await;

    let info = report::RunInfo {
        mode: args.mode.clone(),
        server: where_,
        official_version: official_version(),
    };
    let text = report::render(&info, &results);
    println!("{text}");
    if let Some(out) = &args.out {
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(out, &text).map_err(|e| format!("{}: {e}", out.display()))?;
        eprintln!("bench: report written to {}", out.display());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-drivers: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Result<Args, Error> {
        parse_args(v.iter().map(|s| (*s).to_string()))
    }

    #[test]
    fn arguments_pick_the_budget_tasks_and_server() {
        let a = args(&[
            "--data",
            "d.tgz",
            "--server",
            "s",
            "--quick",
            "--tasks",
            "ping,find-many",
        ]);
        let a = a.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.mode, "quick");
        assert_eq!(a.tasks, vec![Task::Ping, Task::FindMany]);
        assert_eq!(a.budget.max_reps, Budget::quick().max_reps);
        let a = args(&["--data", "d", "--uri", "mongodb://h", "--reps", "9"]);
        let a = a.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((a.budget.min_reps, a.budget.max_reps), (9, 9));
        assert!(a.mode.starts_with("full, custom budget"), "{}", a.mode);
        assert_eq!(a.tasks.len(), Task::ALL.len());
        assert!(args(&["--data", "d"]).is_err());
        assert!(args(&["--data", "d", "--server", "s", "--uri", "u"]).is_err());
        assert!(args(&["--server", "s"]).is_err());
        assert!(args(&["--data", "d", "--server", "s", "--tasks", "nope"]).is_err());
    }

    #[test]
    fn the_official_version_comes_from_the_lock_file() {
        let v = official_version();
        assert!(v.starts_with('3'), "{v}");
    }
}
