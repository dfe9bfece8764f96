//! The tasks, their setup, and the interleaved timing loop: for every rep of a task each client
//! runs once, the two in alternating order, so both see the same machine noise.

use std::time::{Duration, Instant};

use bson::{Document, doc};

use crate::data::{DataSets, SMALL_DOC_BYTES, TWEET_BYTES};
use crate::driver::Driver;
use crate::{Error, check_count};

/// Operations (or documents) per iteration: the spec's scale, for every task but
/// find-one-by-id.
pub(crate) const SCALE: usize = 10_000;
/// find-one-by-id's scale (its corpus and its finds): the testkit server finds by `_id` with a
/// collection scan, so the spec's 10,000 finds over 10,000 documents take half a minute per
/// iteration there, nearly all of it in the server.
pub(crate) const BY_ID_SCALE: usize = 1_000;
/// The collection the insert tasks write.
const CORPUS: &str = "corpus";
/// TWEET with `_id`s 1..=BY_ID_SCALE (find-one-by-id).
const BY_ID: &str = "corpus_by_id";
/// TWEET SCALE times with driver-generated `_id`s (find-many and its typed variant).
const MANY: &str = "corpus_many";

/// One benchmark task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Task {
    /// SCALE × `insert_one(SMALL_DOC)`.
    InsertOne,
    /// One `insert_many` of SCALE × SMALL_DOC.
    InsertMany,
    /// BY_ID_SCALE × `find_one({_id: i})` over as many TWEETs.
    FindOneById,
    /// `find({})` over SCALE TWEETs, read as documents.
    FindMany,
    /// `find({})` over SCALE TWEETs, decoded into a serde struct.
    FindManyTyped,
    /// SCALE sequential `{ping: 1}`.
    Ping,
}

impl Task {
    /// Every task, in report order.
    pub(crate) const ALL: [Task; 6] = [
        Task::InsertOne,
        Task::InsertMany,
        Task::FindOneById,
        Task::FindMany,
        Task::FindManyTyped,
        Task::Ping,
    ];

    /// The task's name on the command line and in the report.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Task::InsertOne => "insert-one",
            Task::InsertMany => "insert-many",
            Task::FindOneById => "find-one-by-id",
            Task::FindMany => "find-many",
            Task::FindManyTyped => "find-many-typed",
            Task::Ping => "ping",
        }
    }

    /// The spec task it is (or is modelled on).
    pub(crate) fn spec_task(self) -> &'static str {
        match self {
            Task::InsertOne => "Small doc insertOne",
            Task::InsertMany => "Small doc bulk insert",
            Task::FindOneById => "Find one by ID",
            Task::FindMany => "Find many and empty the cursor",
            Task::FindManyTyped => "(find many, serde struct)",
            Task::Ping => "(Run command, with ping)",
        }
    }

    /// Operations (or documents) per iteration.
    pub(crate) fn scale(self) -> usize {
        match self {
            Task::FindOneById => BY_ID_SCALE,
            _ => SCALE,
        }
    }

    /// The bytes the spec scores the task by (its data set's file size times the scale); `None`
    /// where the spec defines none (`ping`: its Run command task sends `{hello: true}`).
    pub(crate) fn score_bytes(self) -> Option<u64> {
        let per_op = match self {
            Task::InsertOne | Task::InsertMany => SMALL_DOC_BYTES,
            Task::FindOneById | Task::FindMany | Task::FindManyTyped => TWEET_BYTES,
            Task::Ping => return None,
        };
        Some(per_op * self.scale() as u64)
    }

    /// The task named `name`.
    pub(crate) fn from_name(name: &str) -> Option<Task> {
        Task::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// How many reps a task runs, after `warmup` untimed reps: at least `min_reps`, then until both
/// clients did `min_time` of timed work, at most `max_reps` or `max_time` (whichever comes
/// first).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Budget {
    /// Untimed reps first (pools warm, allocator settled).
    pub(crate) warmup: usize,
    /// Timed reps at least.
    pub(crate) min_reps: usize,
    /// Timed reps at most.
    pub(crate) max_reps: usize,
    /// Timed work per client at least (unless `max_reps` comes first).
    pub(crate) min_time: Duration,
    /// Timed work per client at most.
    pub(crate) max_time: Duration,
}

impl Budget {
    /// `--quick`: a few reps, seconds per task.
    pub(crate) fn quick() -> Budget {
        Budget {
            warmup: 1,
            min_reps: 3,
            max_reps: 5,
            min_time: Duration::ZERO,
            max_time: Duration::from_secs(3),
        }
    }

    /// The spec's rule: at least one minute, at most 100 iterations or five minutes.
    pub(crate) fn full() -> Budget {
        Budget {
            warmup: 1,
            min_reps: 1,
            max_reps: 100,
            min_time: Duration::from_secs(60),
            max_time: Duration::from_secs(300),
        }
    }

    /// Whether to stop after `reps` reps that took `spent` per client: `min_reps` always run;
    /// then stop at `max_reps`, when either client reached `max_time`, or when both reached
    /// `min_time`.
    fn done(&self, reps: usize, spent: [Duration; 2]) -> bool {
        let [a, b] = spent;
        reps >= self.max_reps
            || (reps >= self.min_reps && (a.max(b) >= self.max_time || a.min(b) >= self.min_time))
    }
}

/// One task's timings, per client (in the order the clients were given).
#[derive(Debug)]
pub(crate) struct TaskTimes {
    /// The task.
    pub(crate) task: Task,
    /// Each client's name and iteration times.
    pub(crate) clients: [(&'static str, Vec<Duration>); 2],
}

/// Setup of the read tasks: drops the client's database and seeds the find collections.
///
/// # Errors
/// The client's errors.
pub(crate) async fn setup<D: Driver>(d: &D, data: &DataSets) -> Result<(), Error> {
    d.drop_database().await?;
    let by_id: Vec<Document> = (1..=i32::try_from(BY_ID_SCALE)?)
        .map(|i| {
            let mut t = doc! {"_id": i};
            t.extend(data.tweet.clone());
            t
        })
        .collect();
    d.seed(BY_ID, by_id).await?;
    d.seed(MANY, vec![data.tweet.clone(); SCALE]).await?;
    Ok(())
}

/// Runs `task` for both clients, interleaved rep by rep, within `budget`.
///
/// # Errors
/// The first error of either client (a benchmark that failed measures nothing).
pub(crate) async fn run_task<A: Driver, B: Driver>(
    task: Task,
    a: &A,
    b: &B,
    data: &DataSets,
    budget: Budget,
) -> Result<TaskTimes, Error> {
    for _ in 0..budget.warmup {
        once(a, task, data).await?;
        once(b, task, data).await?;
    }
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    let mut spent = [Duration::ZERO; 2];
    let mut reps = 0;
    while !budget.done(reps, spent) {
        let (da, db) = if reps % 2 == 0 {
            let da = once(a, task, data).await?;
            (da, once(b, task, data).await?)
        } else {
            let db = once(b, task, data).await?;
            (once(a, task, data).await?, db)
        };
        ta.push(da);
        tb.push(db);
        spent[0] += da;
        spent[1] += db;
        reps += 1;
    }
    Ok(TaskTimes {
        task,
        clients: [(a.name(), ta), (b.name(), tb)],
    })
}

/// One iteration: the untimed "before task", then the timed "do task".
async fn once<D: Driver>(d: &D, task: Task, data: &DataSets) -> Result<Duration, Error> {
    let mut docs = Vec::new();
    match task {
        Task::InsertOne => d.recreate(CORPUS).await?,
        Task::InsertMany => {
            d.recreate(CORPUS).await?;
            docs = vec![data.small.clone(); SCALE];
        }
        Task::FindOneById | Task::FindMany | Task::FindManyTyped | Task::Ping => {}
    }
    #[allow(
        clippy::disallowed_methods,
        reason = "a benchmark reads the wall clock: the spec times each iteration so"
    )]
    let started = Instant::now();
    match task {
        Task::InsertOne => d.insert_one_each(CORPUS, &data.small, SCALE).await?,
        Task::InsertMany => d.insert_many(CORPUS, docs).await?,
        Task::FindOneById => d.find_one_by_id(BY_ID, i32::try_from(BY_ID_SCALE)?).await?,
        Task::FindMany => check_count("find", d.find_many(MANY).await?, SCALE)?,
        Task::FindManyTyped => check_count("typed find", d.find_many_typed(MANY).await?, SCALE)?,
        Task::Ping => d.ping(SCALE).await?,
    }
    Ok(started.elapsed())
}

/// The median (the middle time, or the mean of the two middle ones); `None` when empty.
pub(crate) fn median(times: &[Duration]) -> Option<Duration> {
    let mut t = times.to_vec();
    t.sort_unstable();
    let n = t.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => t.get(n / 2).copied(),
        _ => Some((*t.get(n / 2 - 1)? + *t.get(n / 2)?) / 2),
    }
}

/// The spec's nearest-rank percentile `p` (1..=100): index `int(N * p / 100) - 1` of the
/// sorted times, clamped to the first one for small N.
pub(crate) fn percentile(times: &[Duration], p: usize) -> Option<Duration> {
    let mut t = times.to_vec();
    t.sort_unstable();
    let i = (t.len() * p / 100).saturating_sub(1);
    t.get(i).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn median_is_the_middle_or_the_mean_of_the_two_middles() {
        assert_eq!(median(&ms(&[5, 1, 3])), Some(Duration::from_millis(3)));
        assert_eq!(
            median(&ms(&[4, 1, 2, 3])),
            Some(Duration::from_micros(2500))
        );
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn percentiles_use_the_specs_nearest_rank() {
        let t = ms(&(1..=100).rev().collect::<Vec<_>>());
        assert_eq!(percentile(&t, 10), Some(Duration::from_millis(10)));
        assert_eq!(percentile(&t, 99), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&ms(&[7, 9]), 10), Some(Duration::from_millis(7)));
    }

    #[test]
    fn the_budget_stops_at_max_reps_max_time_or_when_both_minimums_are_met() {
        let b = Budget {
            warmup: 0,
            min_reps: 2,
            max_reps: 4,
            min_time: Duration::from_secs(1),
            max_time: Duration::from_secs(10),
        };
        let s = |a, b| [Duration::from_secs(a), Duration::from_secs(b)];
        assert!(!b.done(1, s(5, 5)), "min_reps is a floor");
        assert!(
            !b.done(1, s(0, 10)),
            "min_reps is a floor even past max_time"
        );
        assert!(!b.done(2, s(5, 0)), "both clients need min_time");
        assert!(b.done(2, s(1, 1)));
        assert!(b.done(2, s(0, 10)), "one client at max_time stops both");
        assert!(b.done(4, s(0, 0)));
    }

    #[test]
    fn every_task_has_a_name_that_parses_back() {
        for t in Task::ALL {
            assert_eq!(Task::from_name(t.name()), Some(t));
        }
        assert_eq!(Task::InsertOne.score_bytes(), Some(2_750_000));
        assert_eq!(Task::FindMany.score_bytes(), Some(16_220_000));
        assert_eq!(Task::FindOneById.score_bytes(), Some(1_622_000));
        assert_eq!(Task::Ping.score_bytes(), None);
    }
}
