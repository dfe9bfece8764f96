//! The replication log: every change to the store's data, in cluster-time order, as mongod's
//! oplog keeps it for change streams (`node/change_stream.rs` reads it).
//!
//! Collections record what their mutators do ([`Collection`](crate::store::Collection)'s
//! `pending` list: inserts, updates, replacements, deletes, their creation and index and
//! option changes); the store records what removes or moves collections (drop, rename,
//! dropDatabase). The store moves both into the log after every access to its committed data
//! ([`Store::publish_pending`](crate::store::Store)), all of one access at one cluster time.
//! A transaction's writes stay in its view until `commitTransaction`, which publishes them at
//! one cluster time with the session's `lsid` and `txnNumber`, as mongod's `applyOps` entry.
//!
//! The store's side of the log lives here too: publishing, and the operations that remove or
//! move collections (drop's and dropDatabase's logging, `renameCollection`).
//!
//! Each entry has a sequence number that never repeats within a store; resume tokens carry
//! it. The log keeps the latest [`CAPACITY`] entries, as a capped oplog: a resume point
//! before the oldest is history lost.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bson::{DateTime, Document, Timestamp};
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::error::{CmdResult, CommandError, codes};
use crate::store::{Collection, Dbs, Store};

/// How many entries the log keeps.
pub(crate) const CAPACITY: usize = 100_000;

/// A collection's UUID (`collectionUUID`, `dropTarget`).
pub(crate) type Uuid = [u8; 16];

/// A fresh random collection UUID (version 4).
pub(crate) fn new_uuid() -> Uuid {
    let mut u: Uuid = rand::random();
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

/// The BSON of a UUID (binary subtype 4).
pub(crate) fn uuid_bson(u: &Uuid) -> bson::Bson {
    bson::Bson::Binary(bson::Binary {
        subtype: bson::spec::BinarySubtype::Uuid,
        bytes: u.to_vec(),
    })
}

/// What one entry did.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    /// A document was inserted.
    Insert { doc: Document },
    /// A document was changed by update operators or an update pipeline.
    Update {
        before: Document,
        after: Document,
        /// The paths update operators set whole (`$set`, `$inc`, `$unset`, ...): the
        /// event's `updateDescription` names them rather than what changed below them, as
        /// mongod's. Empty for an update pipeline, described by its full difference.
        whole: Vec<String>,
        /// The collection had `changeStreamPreAndPostImages` enabled at the write.
        images: bool,
    },
    /// A document was replaced whole.
    Replace {
        before: Document,
        after: Document,
        images: bool,
    },
    /// A document was deleted.
    Delete { before: Document, images: bool },
    /// The collection (or view) was created, with these options.
    Create { options: Document },
    /// Indexes were built.
    CreateIndexes { indexes: Vec<Document> },
    /// Indexes were dropped.
    DropIndexes { indexes: Vec<Document> },
    /// `collMod`: the options given and the collection's options before.
    Modify { changes: Document, before: Document },
    /// `shardCollection` (on a mongos).
    ShardCollection { description: Document },
    /// The collection was dropped.
    Drop,
    /// The collection was renamed; `drop_target` is the UUID of a target it replaced.
    Rename {
        to_db: String,
        to_coll: String,
        drop_target: Option<Uuid>,
    },
    /// The database was dropped (after a `Drop` of each of its collections).
    DropDatabase,
}

impl Op {
    /// Whether a change stream on the entry's collection ends after it (drop and rename).
    pub(crate) fn invalidates_collection(&self) -> bool {
        matches!(self, Op::Drop | Op::Rename { .. })
    }
}

/// An operation recorded by a collection or the store, before it is published.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Recorded {
    /// Global recording order (sorts what several collections recorded).
    pub(crate) order: u64,
    pub(crate) op: Op,
}

impl Recorded {
    /// An operation recorded now.
    pub(crate) fn now(op: Op) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self {
            order: NEXT.fetch_add(1, Ordering::Relaxed),
            op,
        }
    }
}

/// The transaction a committed entry belongs to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TxnInfo {
    pub(crate) lsid: Document,
    pub(crate) txn_number: i64,
}

/// One entry of the log.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub(crate) seq: u64,
    pub(crate) ts: Timestamp,
    pub(crate) wall: DateTime,
    pub(crate) db: String,
    /// Empty for a database-level entry (dropDatabase).
    pub(crate) coll: String,
    pub(crate) uuid: Option<Uuid>,
    /// The collection's shard key when it is sharded (`documentKey` carries its fields).
    pub(crate) shard_key: Option<Document>,
    pub(crate) op: Op,
    pub(crate) txn: Option<TxnInfo>,
    /// When the primary logged it: a secondary applies it `lag` later (`replication/`).
    pub(crate) logged: std::time::Instant,
}

/// An operation ready to be logged: its namespace, collection UUID and what it did.
#[derive(Debug, Clone)]
pub(crate) struct Publish {
    pub(crate) order: u64,
    pub(crate) db: String,
    pub(crate) coll: String,
    pub(crate) uuid: Option<Uuid>,
    pub(crate) shard_key: Option<Document>,
    pub(crate) op: Op,
}

/// The log itself.
#[derive(Debug)]
pub(crate) struct Oplog {
    entries: Mutex<Log>,
    /// The next sequence number, for waiters (getMore with awaitData).
    notify: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct Log {
    entries: VecDeque<Arc<Entry>>,
    next_seq: u64,
    /// The first sequence numbers of the latest [`Oplog::truncate_from`] calls (at most
    /// [`REWINDS_KEPT`]), so that a secondary that applied an undone entry notices it.
    rewinds: VecDeque<u64>,
    /// How many truncations there were in all.
    rewind_count: u64,
}

/// How many truncations the log remembers for the secondaries (`replication/`).
const REWINDS_KEPT: usize = 64;

impl Default for Oplog {
    fn default() -> Self {
        Self {
            entries: Mutex::new(Log {
                entries: VecDeque::new(),
                next_seq: 1,
                rewinds: VecDeque::new(),
                rewind_count: 0,
            }),
            notify: watch::Sender::new(1),
        }
    }
}

impl Oplog {
    /// Appends operations at one cluster time (sorted by their recording order).
    pub(crate) fn append(
        &self,
        ts: Timestamp,
        mut ops: Vec<Publish>,
        txn: Option<TxnInfo>,
    ) -> Option<u64> {
        if ops.is_empty() {
            return None;
        }
        ops.sort_by_key(|p| p.order);
        let wall = DateTime::now();
        let logged = std::time::Instant::now();
        let mut log = self.entries.lock();
        for p in ops {
            let seq = log.next_seq;
            log.next_seq += 1;
            log.entries.push_back(Arc::new(Entry {
                seq,
                ts,
                wall,
                db: p.db,
                coll: p.coll,
                uuid: p.uuid,
                shard_key: p.shard_key,
                op: p.op,
                txn: txn.clone(),
                logged,
            }));
            while log.entries.len() > CAPACITY {
                log.entries.pop_front();
            }
        }
        let next = log.next_seq;
        drop(log);
        self.notify.send_replace(next);
        Some(next)
    }

    /// The sequence number the next entry will get.
    pub(crate) fn next_seq(&self) -> u64 {
        self.entries.lock().next_seq
    }

    /// The oldest sequence number still in the log (the next one when it is empty).
    pub(crate) fn first_seq(&self) -> u64 {
        let log = self.entries.lock();
        log.entries.front().map_or(log.next_seq, |e| e.seq)
    }

    /// The entry with this sequence number, if the log still has it.
    pub(crate) fn get(&self, seq: u64) -> Option<Arc<Entry>> {
        let log = self.entries.lock();
        let i = log.entries.binary_search_by_key(&seq, |e| e.seq).ok()?;
        log.entries.get(i).cloned()
    }

    /// Up to `max` entries from sequence number `from` on.
    pub(crate) fn read_from(&self, from: u64, max: usize) -> Vec<Arc<Entry>> {
        let log = self.entries.lock();
        // Sequence numbers grow but may have gaps (entries undone by `truncate_from`).
        let skip = log.entries.partition_point(|e| e.seq < from);
        log.entries.iter().skip(skip).take(max).cloned().collect()
    }

    /// The first sequence number whose entry's cluster time is at least `ts` (the next one
    /// when there is none).
    pub(crate) fn seq_at(&self, ts: Timestamp) -> u64 {
        let log = self.entries.lock();
        log.entries
            .iter()
            .find(|e| (e.ts.time, e.ts.increment) >= (ts.time, ts.increment))
            .map_or(log.next_seq, |e| e.seq)
    }

    /// The cluster time of the oldest entry, if any.
    pub(crate) fn first_ts(&self) -> Option<Timestamp> {
        self.entries.lock().entries.front().map(|e| e.ts)
    }

    /// Removes the entries from `seq` on (a write undone before anyone could read it).
    pub(crate) fn truncate_from(&self, seq: u64) {
        let mut log = self.entries.lock();
        while log.entries.back().is_some_and(|e| e.seq >= seq) {
            log.entries.pop_back();
        }
        log.rewinds.push_back(seq);
        log.rewind_count += 1;
        while log.rewinds.len() > REWINDS_KEPT {
            log.rewinds.pop_front();
        }
    }

    /// Whether an entry from sequence number `from` on may have been undone by a
    /// truncation after the first `seen` ones; returns the truncation count to remember.
    pub(crate) fn rewound_since(&self, seen: u64, from: u64) -> (bool, u64) {
        let log = self.entries.lock();
        let new = log.rewind_count.saturating_sub(seen);
        let kept = u64::try_from(log.rewinds.len()).unwrap_or(u64::MAX);
        let rewound = new > kept
            || log
                .rewinds
                .iter()
                .rev()
                .take(usize::try_from(new).unwrap_or(usize::MAX))
                .any(|s| *s < from);
        (rewound, log.rewind_count)
    }

    /// A receiver that sees the next sequence number change.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.notify.subscribe()
    }
}

impl Store {
    /// Moves what the collections of `dbs` and the store recorded into the replication log,
    /// at one new cluster time (a transaction's writes with its `lsid` and `txnNumber`).
    pub(crate) fn publish_pending(&self, dbs: &mut Dbs, txn: Option<TxnInfo>) {
        let mut ops = if txn.is_none() {
            std::mem::take(&mut *self.dropped.lock())
        } else {
            Vec::new()
        };
        ops.extend(take_pending(dbs));
        if !ops.is_empty() {
            let ts = self.tick_locked(dbs);
            self.oplog.append(ts, ops, txn);
        }
    }

    /// Forgets what the collections of `dbs` recorded (their changes are logged elsewhere, or
    /// were undone).
    pub(crate) fn discard_pending(dbs: &mut Dbs) {
        let _ = take_pending(dbs);
    }

    /// Records a drop, rename or dropDatabase for the replication log.
    pub(crate) fn record_dropped(
        &self,
        db: &str,
        coll: &str,
        uuid: Option<crate::oplog::Uuid>,
        op: Op,
    ) {
        let r = Recorded::now(op);
        self.dropped.lock().push(Publish {
            order: r.order,
            db: db.to_owned(),
            coll: coll.to_owned(),
            uuid,
            shard_key: None,
            op: r.op,
        });
    }

    /// Logs a collection that leaves the data: what it still had pending, then its drop.
    pub(crate) fn log_removed(&self, db: &str, coll: &str, c: &mut Collection) {
        let uuid = c.uuid;
        for r in std::mem::take(&mut c.pending) {
            self.dropped.lock().push(Publish {
                order: r.order,
                db: db.to_owned(),
                coll: coll.to_owned(),
                uuid: Some(uuid),
                shard_key: c.shard_key.clone(),
                op: r.op,
            });
        }
        self.record_dropped(db, coll, Some(uuid), Op::Drop);
    }

    /// `renameCollection`: moves `from` to `to`, replacing an existing target when
    /// `drop_target` is set.
    pub(crate) fn rename_collection(
        &self,
        from: (&str, &str),
        to: (&str, &str),
        drop_target: bool,
    ) -> CmdResult<()> {
        self.with_dbs(|dbs| {
            if !dbs.get(from.0).is_some_and(|d| d.contains_key(from.1)) {
                return Err(CommandError::new(
                    codes::NAMESPACE_NOT_FOUND,
                    "NamespaceNotFound",
                    format!("Source collection {}.{} does not exist", from.0, from.1),
                ));
            }
            if from == to {
                return Err(CommandError::new(
                    20,
                    "IllegalOperation",
                    "Can't rename a collection to itself",
                ));
            }
            let target_uuid = dbs.get(to.0).and_then(|d| d.get(to.1)).map(|c| c.uuid);
            if target_uuid.is_some() && !drop_target {
                return Err(CommandError::new(
                    codes::NAMESPACE_EXISTS,
                    "NamespaceExists",
                    "target namespace exists",
                ));
            }
            let Some(source) = dbs.get_mut(from.0) else {
                return Ok(());
            };
            let Some(mut c) = source.remove(from.1) else {
                return Ok(());
            };
            if source.is_empty() {
                dbs.remove(from.0);
            }
            let uuid = c.uuid;
            for r in std::mem::take(&mut c.pending) {
                self.dropped.lock().push(Publish {
                    order: r.order,
                    db: from.0.to_owned(),
                    coll: from.1.to_owned(),
                    uuid: Some(uuid),
                    shard_key: c.shard_key.clone(),
                    op: r.op,
                });
            }
            let ns = format!("{}.{}", to.0, to.1);
            for ix in &mut c.indexes {
                ix.insert("ns", ns.clone());
            }
            dbs.entry(to.0.to_owned())
                .or_default()
                .insert(to.1.to_owned(), c);
            self.record_dropped(
                from.0,
                from.1,
                Some(uuid),
                Op::Rename {
                    to_db: to.0.to_owned(),
                    to_coll: to.1.to_owned(),
                    drop_target: target_uuid,
                },
            );
            Ok(())
        })
    }
}

/// Takes what the collections of `dbs` recorded, as log entries of their namespaces. A
/// `create` is logged with the collection's options as they are now (`create` sets them just
/// after making the collection).
fn take_pending(dbs: &mut Dbs) -> Vec<Publish> {
    let mut out = Vec::new();
    for (db, colls) in dbs.iter_mut() {
        for (name, c) in colls.iter_mut() {
            if c.pending.is_empty() {
                continue;
            }
            for r in std::mem::take(&mut c.pending) {
                let op = match r.op {
                    Op::Create { .. } => Op::Create {
                        options: c.options.clone(),
                    },
                    other => other,
                };
                out.push(Publish {
                    order: r.order,
                    db: db.clone(),
                    coll: name.clone(),
                    uuid: Some(c.uuid),
                    shard_key: c.shard_key.clone(),
                    op,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(n: u64, coll: &str) -> Publish {
        Publish {
            order: n,
            db: "db".into(),
            coll: coll.into(),
            uuid: None,
            shard_key: None,
            op: Op::Drop,
        }
    }

    #[test]
    fn entries_keep_order_and_numbers() {
        let log = Oplog::default();
        let ts = Timestamp {
            time: 10,
            increment: 1,
        };
        let rx = log.subscribe();
        assert_eq!(
            log.append(ts, vec![publish(2, "b"), publish(1, "a")], None),
            Some(3)
        );
        assert_eq!(*rx.borrow(), 3);
        let all = log.read_from(0, 10);
        assert_eq!(
            all.iter()
                .map(|e| (e.seq, e.coll.as_str()))
                .collect::<Vec<_>>(),
            [(1, "a"), (2, "b")]
        );
        assert_eq!(log.get(2).map(|e| e.coll.clone()).as_deref(), Some("b"));
        assert!(log.get(3).is_none());
        let later = Timestamp {
            time: 11,
            increment: 1,
        };
        log.append(later, vec![publish(3, "c")], None);
        assert_eq!(log.seq_at(later), 3);
        assert_eq!(log.seq_at(ts), 1);
        log.truncate_from(3);
        assert_eq!(log.read_from(3, 10).len(), 0);
        assert_eq!(log.first_seq(), 1);
        assert_eq!(log.first_ts(), Some(ts));
        assert!(log.append(ts, Vec::new(), None).is_none());
    }
}
