//! The markdown report: one row per task with each client's median, MB/s (as the spec scores
//! it, where it does) and the ratio ours/official; the spread; the typed-versus-untyped
//! comparison.

use std::fmt::Write as _;
use std::time::Duration;

use crate::runner::{BY_ID_SCALE, SCALE, Task, TaskTimes, median, percentile};

/// What the report's heading says about the run.
#[derive(Debug)]
pub(crate) struct RunInfo {
    /// `quick`, `full` or `custom`.
    pub(crate) mode: String,
    /// Where the server was (the testkit server's address, or the URI given).
    pub(crate) server: String,
    /// The official crate's version (from the bench's Cargo.lock).
    pub(crate) official_version: String,
}

fn millis(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn mb_per_s(bytes: u64, d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs > 0.0 {
        #[allow(clippy::cast_precision_loss, reason = "a report, not arithmetic")]
        let mb = bytes as f64 / 1e6;
        format!("{:.2}", mb / secs)
    } else {
        "—".to_string()
    }
}

fn ops_per_s(scale: usize, d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs > 0.0 {
        #[allow(clippy::cast_precision_loss, reason = "a report, not arithmetic")]
        let ops = scale as f64 / secs;
        format!("{ops:.0}")
    } else {
        "—".to_string()
    }
}

/// `a / b` with a word on who is faster (times: below 1, the first client is faster).
fn ratio(a: Duration, b: Duration) -> String {
    let (a, b) = (a.as_secs_f64(), b.as_secs_f64());
    if b <= 0.0 {
        return "—".to_string();
    }
    let r = a / b;
    let word = if r < 0.97 {
        "ours faster"
    } else if r > 1.03 {
        "ours slower"
    } else {
        "even"
    };
    format!("{r:.2} ({word})")
}

fn times_of<'a>(t: &'a TaskTimes, client: &str) -> &'a [Duration] {
    t.clients
        .iter()
        .find(|(name, _)| *name == client)
        .map_or(&[], |(_, v)| v.as_slice())
}

/// The report as markdown.
pub(crate) fn render(info: &RunInfo, results: &[TaskTimes]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## Drivers benchmark: ours (`mongo-client`) and the official `mongodb` {}\n",
        info.official_version
    );
    let _ = writeln!(
        s,
        "Mode {}; server {}; one client task at a time (concurrency 1); the two clients \
         interleaved rep by rep, in alternating order. {} operations or documents per \
         iteration ({} for find-one-by-id: the testkit finds by `_id` with a collection \
         scan); times are medians of the iterations; MB/s is the spec's score (data-set file \
         size × operations, over the median). Ratio: our median time over the official one \
         (below 1: ours faster).\n",
        info.mode, info.server, SCALE, BY_ID_SCALE
    );
    s.push_str(
        "| task | spec task | reps | ours median | official median | ours MB/s | official MB/s | ours/official |\n\
         |---|---|---:|---:|---:|---:|---:|---|\n",
    );
    for t in results {
        let (ours, official) = (times_of(t, "ours"), times_of(t, "official"));
        let (Some(mo), Some(mf)) = (median(ours), median(official)) else {
            continue;
        };
        let (bo, bf) = match t.task.score_bytes() {
            Some(bytes) => (mb_per_s(bytes, mo), mb_per_s(bytes, mf)),
            None => ("—".to_string(), "—".to_string()),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            t.task.name(),
            t.task.spec_task(),
            ours.len(),
            millis(mo),
            millis(mf),
            bo,
            bf,
            ratio(mo, mf)
        );
    }
    s.push_str(
        "\nSpread (the spec's nearest-rank percentiles) and operations per second at the median:\n\n\
         | task | ours p10 | ours p90 | official p10 | official p90 | ours ops/s | official ops/s |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for t in results {
        let (ours, official) = (times_of(t, "ours"), times_of(t, "official"));
        let cell = |v: Option<Duration>| v.map_or_else(|| "—".to_string(), millis);
        let scale = t.task.scale();
        let ops = |v: Option<Duration>| v.map_or_else(|| "—".to_string(), |d| ops_per_s(scale, d));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |",
            t.task.name(),
            cell(percentile(ours, 10)),
            cell(percentile(ours, 90)),
            cell(percentile(official, 10)),
            cell(percentile(official, 90)),
            ops(median(ours)),
            ops(median(official)),
        );
    }
    decode_table(&mut s, results);
    s
}

/// Typed (serde struct) against untyped (`Document`) reads through the cursor, per client.
fn decode_table(s: &mut String, results: &[TaskTimes]) {
    let find = |task: Task| results.iter().find(|t| t.task == task);
    let (Some(untyped), Some(typed)) = (find(Task::FindMany), find(Task::FindManyTyped)) else {
        return;
    };
    s.push_str(
        "\nDecoding through the cursor, typed (serde struct) against untyped (`Document`):\n\n\
         | client | untyped median | typed median | typed/untyped |\n\
         |---|---:|---:|---:|\n",
    );
    for client in ["ours", "official"] {
        let (Some(u), Some(t)) = (
            median(times_of(untyped, client)),
            median(times_of(typed, client)),
        ) else {
            continue;
        };
        let r = t.as_secs_f64() / u.as_secs_f64().max(f64::MIN_POSITIVE);
        let _ = writeln!(s, "| {client} | {} | {} | {r:.2} |", millis(u), millis(t));
    }
    s.push_str(
        "\nOurs reads a typed `Collection<Tweet>`: each reply is decoded into documents, then \
         each document into the struct as the cursor yields it; the official client decodes \
         the raw reply straight into the struct.\n",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_has_a_row_per_task_and_the_ratio_names_the_faster_client() {
        let ms = |v: u64| Duration::from_millis(v);
        let results = vec![
            TaskTimes {
                task: Task::FindMany,
                clients: [("ours", vec![ms(100)]), ("official", vec![ms(200)])],
            },
            TaskTimes {
                task: Task::FindManyTyped,
                clients: [("ours", vec![ms(150)]), ("official", vec![ms(220)])],
            },
            TaskTimes {
                task: Task::Ping,
                clients: [("ours", vec![ms(300)]), ("official", vec![ms(250)])],
            },
        ];
        let info = RunInfo {
            mode: "quick".into(),
            server: "testkit".into(),
            official_version: "9.9.9".into(),
        };
        let r = render(&info, &results);
        assert!(r.contains("| find-many | Find many and empty the cursor | 1 | 100.00 ms | 200.00 ms | 162.20 | 81.10 | 0.50 (ours faster) |"), "{r}");
        assert!(r.contains("| ping | (Run command, with ping) | 1 | 300.00 ms | 250.00 ms | — | — | 1.20 (ours slower) |"), "{r}");
        assert!(r.contains("| ours | 100.00 ms | 150.00 ms | 1.50 |"), "{r}");
        assert!(r.contains("9.9.9"));
    }
}
