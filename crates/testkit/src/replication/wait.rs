//! What waits for replication, as on mongod: a read's `afterClusterTime` / `afterOpTime`
//! (or a snapshot read's `atClusterTime`) on a secondary (until it has applied that far, bounded by `maxTimeMS`: MaxTimeMSExpired 50),
//! a `linearizable` read on the primary (until a majority has its writes), a write's
//! `w: N` / `majority` (until that many members have applied it, bounded by `wtimeout`:
//! WriteConcernFailed 64 with `errInfo.wtimeout`); and hello's `lastWrite`.

use std::time::{Duration, Instant};

use bson::{Bson, DateTime, Document, Timestamp, doc};
use tokio::sync::watch;

use crate::node::Node;
use crate::topology::Role;

/// How often a wait looks again at members that have nothing due (a restart, a step-down).
const POLL: Duration = Duration::from_millis(20);

/// MaxTimeMSExpired.
const MAX_TIME_MS_EXPIRED: i32 = 50;
/// NotWritablePrimary, as mongod refuses a linearizable read on a secondary.
const NOT_WRITABLE_PRIMARY: i32 = 10107;
/// UnsatisfiableWriteConcern.
const UNSATISFIABLE_WRITE_CONCERN: i32 = 100;
/// UnknownReplWriteConcern.
const UNKNOWN_REPL_WRITE_CONCERN: i32 = 79;
/// WriteConcernFailed.
const WRITE_CONCERN_FAILED: i32 = 64;

/// How a wait before a command ended.
#[derive(Debug)]
pub(crate) enum Waited {
    /// The command runs.
    Done,
    /// The server shuts down: hang up.
    Closed,
    /// The command fails with this error instead.
    Failed(i32, String),
}

fn millis(v: Option<&Bson>) -> Option<Duration> {
    positive(v).map(Duration::from_millis)
}

/// A positive number (`maxTimeMS`, `wtimeout`, `w`).
fn positive(v: Option<&Bson>) -> Option<u64> {
    let n = match v? {
        Bson::Int32(v) => i64::from(*v),
        Bson::Int64(v) => *v,
        #[allow(clippy::cast_possible_truncation)]
        Bson::Double(v) => *v as i64,
        _ => return None,
    };
    u64::try_from(n).ok().filter(|n| *n > 0)
}

fn deadline(limit: Option<Duration>) -> Option<Instant> {
    limit.and_then(|d| Instant::now().checked_add(d))
}

/// The read-concern wait of a command.
#[derive(Debug)]
pub(crate) struct ReadWait;

impl ReadWait {
    /// Waits until this member may serve the command's read concern.
    pub(crate) async fn run(
        node: &Node,
        cmd: &Document,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Waited {
        let Ok(rc) = cmd.get_document("readConcern") else {
            return Waited::Done;
        };
        if !node.store.repl.is_active() {
            return Waited::Done;
        }
        let role = node.topology.role(node.member);
        let limit = deadline(millis(cmd.get("maxTimeMS")));
        let expired = |what: String| {
            Waited::Failed(
                MAX_TIME_MS_EXPIRED,
                format!("Error waiting for {what}: operation exceeded time limit"),
            )
        };
        if rc.get_str("level").ok() == Some("linearizable") {
            if role == Role::Secondary {
                return Waited::Failed(
                    NOT_WRITABLE_PRIMARY,
                    "cannot satisfy linearizable read concern on non-primary node".into(),
                );
            }
            let target = node.store.oplog.next_seq();
            let need = majority(node);
            return match wait_acks(node, target, need, limit, shutdown).await {
                None => Waited::Closed,
                Some(true) => Waited::Done,
                Some(false) => expired("a majority to confirm the primary's writes".into()),
            };
        }
        // A snapshot read at a given time waits for it too, as mongod's does.
        let after = rc
            .get_timestamp("afterClusterTime")
            .or_else(|_| rc.get_timestamp("atClusterTime"))
            .ok()
            .or_else(|| {
                rc.get_document("afterOpTime")
                    .ok()
                    .and_then(|o| o.get_timestamp("ts").ok())
            });
        let Some(after) = after else {
            return Waited::Done;
        };
        if role != Role::Secondary {
            return Waited::Done;
        }
        let repl = &node.store.repl;
        loop {
            if repl.has_applied(&node.store, node.member, after) {
                return Waited::Done;
            }
            let now = Instant::now();
            if limit.is_some_and(|d| d <= now) {
                return expired(format!("snapshot not less than {after}"));
            }
            let mut until = now + POLL;
            if let Some(due) = repl.next_due(&node.store, node.member) {
                until = until.min(due.max(now));
            }
            if let Some(d) = limit {
                until = until.min(d);
            }
            tokio::select! {
                () = tokio::time::sleep_until(until.into()) => {}
                _ = shutdown.changed() => return Waited::Closed,
            }
        }
    }
}

/// A write's `w: N` / `majority` to wait for after it ran.
#[derive(Debug)]
pub(crate) struct WriteWait {
    need: usize,
    /// A `w` naming a tag set (the set's configuration defines none).
    unknown_mode: Option<String>,
    wtimeout: Option<Duration>,
    concern: Document,
}

fn majority(node: &Node) -> usize {
    node.topology.rs().map_or(1, |rs| rs.hosts.len() / 2 + 1)
}

impl WriteWait {
    /// The wait a write command asks for (`None`: `w` 0 or 1, tags, or not a replica set).
    pub(crate) fn of(node: &Node, name: &str, cmd: &Document) -> Option<Self> {
        if !node.store.repl.is_active() || !crate::node::takes_write_concern(name, cmd) {
            return None;
        }
        let wc = cmd.get_document("writeConcern").ok()?;
        let need = match wc.get("w")? {
            Bson::String(s) if s == "majority" => majority(node),
            Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) => {
                usize::try_from(positive(wc.get("w"))?).ok()?
            }
            Bson::String(mode) => {
                // A tag set's name: the set's configuration has none.
                return Some(Self {
                    need: 0,
                    unknown_mode: Some(mode.clone()),
                    wtimeout: None,
                    concern: wc.clone(),
                });
            }
            _ => return None,
        };
        (need > 1).then(|| Self {
            need,
            unknown_mode: None,
            wtimeout: millis(wc.get("wtimeout")),
            concern: wc.clone(),
        })
    }

    /// Waits for the write's members after it ran; adds a `writeConcernError` when they
    /// are not there in time. Returns false when the server shuts down meanwhile.
    pub(crate) async fn run(
        self,
        node: &Node,
        reply: &mut Document,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        let ok = reply.get("ok").is_some_and(crate::query::truthy);
        if !ok || reply.contains_key("writeConcernError") {
            return true;
        }
        if let Some(mode) = &self.unknown_mode {
            reply.insert(
                "writeConcernError",
                doc! {
                    "code": UNKNOWN_REPL_WRITE_CONCERN,
                    "codeName": "UnknownReplWriteConcern",
                    "errmsg": format!("No write concern mode named '{mode}' found in replica set configuration"),
                },
            );
            return true;
        }
        let members = node.topology.rs().map_or(1, |rs| rs.hosts.len());
        if self.need > members {
            reply.insert(
                "writeConcernError",
                doc! {
                    "code": UNSATISFIABLE_WRITE_CONCERN,
                    "codeName": "UnsatisfiableWriteConcern",
                    "errmsg": "Not enough data-bearing nodes",
                },
            );
            return true;
        }
        let target = node.store.oplog.next_seq();
        match wait_acks(node, target, self.need, deadline(self.wtimeout), shutdown).await {
            None => false,
            Some(true) => true,
            Some(false) => {
                let mut concern = self.concern;
                concern.insert("provenance", "clientSupplied");
                reply.insert(
                    "writeConcernError",
                    doc! {
                        "code": WRITE_CONCERN_FAILED,
                        "codeName": "WriteConcernFailed",
                        "errmsg": "waiting for replication timed out",
                        "errInfo": { "wtimeout": true, "writeConcern": concern },
                    },
                );
                true
            }
        }
    }
}

/// Waits until `need` members have applied every entry before `target`: `Some(true)`, or
/// `Some(false)` when `limit` passes first, `None` when the server shuts down.
async fn wait_acks(
    node: &Node,
    target: u64,
    need: usize,
    limit: Option<Instant>,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<bool> {
    let repl = &node.store.repl;
    loop {
        let Some(rs) = node.topology.rs() else {
            return Some(true);
        };
        if repl.acknowledged(&node.store, target, rs.primary, &rs.running) >= need {
            return Some(true);
        }
        let now = Instant::now();
        if limit.is_some_and(|d| d <= now) {
            return Some(false);
        }
        let mut until = now + POLL;
        for i in (0..rs.hosts.len()).filter(|i| Some(*i) != rs.primary) {
            if let Some(due) = repl.next_due(&node.store, i) {
                until = until.min(due.max(now));
            }
        }
        if let Some(d) = limit {
            until = until.min(d);
        }
        tokio::select! {
            () = tokio::time::sleep_until(until.into()) => {}
            _ = shutdown.changed() => return None,
        }
    }
}

/// hello's `lastWrite`: the optime and date of this member's last applied write, and those
/// a majority of the members have.
pub(crate) fn last_write(node: &Node, term: i64) -> Document {
    let store = &node.store;
    let newest = (store.cluster_time(), DateTime::now());
    let of = |member: usize, role: Role| {
        if role == Role::Secondary {
            store.repl.last_applied(store, member).unwrap_or(newest)
        } else {
            newest
        }
    };
    let (ts, wall) = of(node.member, node.topology.role(node.member));
    let (majority_ts, majority_wall) = node
        .topology
        .rs()
        .and_then(|rs| {
            let mut all: Vec<(Timestamp, DateTime)> = (0..rs.hosts.len())
                .filter(|i| rs.running.get(*i).copied().unwrap_or(false))
                .map(|i| {
                    let role = if rs.primary == Some(i) {
                        Role::Primary
                    } else {
                        Role::Secondary
                    };
                    of(i, role)
                })
                .collect();
            all.sort_by_key(|(ts, _)| std::cmp::Reverse((ts.time, ts.increment)));
            all.get(rs.hosts.len() / 2).copied()
        })
        .unwrap_or((
            Timestamp {
                time: 0,
                increment: 0,
            },
            DateTime::from_millis(0),
        ));
    doc! {
        "opTime": { "ts": ts, "t": term },
        "lastWriteDate": wall,
        "majorityOpTime": { "ts": majority_ts, "t": term },
        "majorityWriteDate": majority_wall,
    }
}
