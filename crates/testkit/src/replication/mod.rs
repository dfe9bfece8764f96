//! Replication in a replica set: every member has its own data, as mongod's members do.
//!
//! The primary's data is the store's own (`Store::with_dbs`). Each other member keeps a copy
//! that it builds by applying the primary's replication log (`oplog.rs`) in order, each entry
//! once it is `lag` old (the replica set's option, per member; default zero: an entry is due
//! at once, so a secondary has every acknowledged write, as before members had their own data).
//! A member applies what is due lazily, whenever something asks about it (a command it runs,
//! its hello, a write concern or `afterClusterTime` waiting for it): the result is the same as
//! a steady applier's, without a task per member.
//!
//! What a member has applied is its optime: the `afterClusterTime` / `afterOpTime` of a read
//! waits for it (`wait.rs`), `w: N` / `majority` writes wait until enough members have it, and
//! hello reports it as `lastWrite`. A stopped member applies nothing until it is restarted.
//!
//! A new primary (election, step-down) keeps what it had applied: with a lag, writes the old
//! primary took and it had not applied are lost (the log is cut back, as a rollback does),
//! and the members that had them sync again. A member that missed entries the log no longer
//! holds (its budget, [`crate::oplog::CAPACITY`] entries, bounds the memory a lagging member
//! can cost) copies the primary's data whole, as an initial sync.
//!
//! Simplifications: change streams and snapshot reads on a secondary read the primary's log
//! and history; a `majority` read returns what the member has (mongod would serve its
//! majority-committed snapshot, older than the primary's latest writes under a lag); the
//! session table (retryable writes), the transaction table and the cluster clock are shared.
//! Commands run through `TestServer::handle` (no network) apply what is due but never wait.

mod wait;

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bson::{DateTime, Timestamp};
use parking_lot::Mutex;

use crate::oplog::{Entry, Op};
use crate::store::{Collection, Dbs, Store};

pub(crate) use wait::{ReadWait, Waited, WriteWait, last_write};

thread_local! {
    /// The member data a secondary's command reads on this thread, with its store's address.
    static VIEW: RefCell<Option<(usize, Arc<Mutex<Dbs>>)>> = const { RefCell::new(None) };
}

fn store_key(store: &Store) -> usize {
    std::ptr::from_ref(store) as usize
}

/// The secondary's data `store` stands for on this thread, if a secondary's command runs here.
pub(crate) fn current_view(store: &Store) -> Option<Arc<Mutex<Dbs>>> {
    let key = store_key(store);
    VIEW.with(|v| {
        v.borrow()
            .as_ref()
            .filter(|(owner, _)| *owner == key)
            .map(|(_, view)| view.clone())
    })
}

/// Runs `f` with a secondary's data standing for `store`'s (restored afterwards, also on
/// unwinding).
pub(crate) fn with_view<R>(store: &Store, view: Arc<Mutex<Dbs>>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<(usize, Arc<Mutex<Dbs>>)>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            VIEW.with(|v| *v.borrow_mut() = previous);
        }
    }
    let previous = VIEW.with(|v| v.borrow_mut().replace((store_key(store), view)));
    let _restore = Restore(previous);
    f()
}

/// The members' replication state (none outside a replica set).
#[derive(Debug, Default)]
pub(crate) struct Replication {
    members: Mutex<Vec<Replica>>,
}

/// One member's copy of the data and how far it has applied the log.
#[derive(Debug)]
struct Replica {
    data: Arc<Mutex<Dbs>>,
    lag: Duration,
    /// The sequence number of the next entry to apply.
    next: u64,
    /// The optime and wall time of the last entry applied (or of the last sync).
    ts: Timestamp,
    wall: DateTime,
    /// The log truncations seen so far (`Oplog::rewound_since`).
    rewinds: u64,
}

/// How many entries a member applies per read of the log.
const BATCH: usize = 1000;

fn key(ts: Timestamp) -> (u32, u32) {
    (ts.time, ts.increment)
}

impl Replica {
    /// A copy of the primary's data as it is now.
    fn synced(store: &Store, lag: Duration) -> Self {
        let (mut data, next) = store.with_base(|d| (d.clone(), store.oplog.next_seq()));
        Store::discard_pending(&mut data);
        Self {
            data: Arc::new(Mutex::new(data)),
            lag,
            next,
            ts: store.cluster_time(),
            wall: DateTime::now(),
            rewinds: store.oplog.rewound_since(0, 0).1,
        }
    }

    /// Applies every entry that is due; syncs again when entries it needs are gone.
    fn catch_up(&mut self, store: &Store) {
        let (rewound, seen) = store.oplog.rewound_since(self.rewinds, self.next);
        self.rewinds = seen;
        let missed = self.next < store.oplog.first_seq();
        if rewound || missed {
            let lag = self.lag;
            *self = Self::synced(store, lag);
            return;
        }
        let now = Instant::now();
        loop {
            let batch = store.oplog.read_from(self.next, BATCH);
            let mut data = self.data.lock();
            let mut applied = 0;
            for e in &batch {
                if !self.is_due(e, now) {
                    return;
                }
                apply(&mut data, e);
                self.next = e.seq + 1;
                self.ts = e.ts;
                self.wall = e.wall;
                applied += 1;
            }
            if applied < BATCH {
                return;
            }
        }
    }

    fn is_due(&self, e: &Entry, now: Instant) -> bool {
        e.logged.checked_add(self.lag).is_none_or(|due| due <= now)
    }

    /// The first entry not applied yet.
    fn first_pending(&self, store: &Store) -> Option<Arc<Entry>> {
        store.oplog.read_from(self.next, 1).into_iter().next()
    }
}

impl Replication {
    /// Makes `members` members, each with a copy of the store's data, the secondaries
    /// applying the log `lag` late.
    pub(crate) fn configure(&self, store: &Store, members: usize, lag: Duration) {
        let replicas = (0..members).map(|_| Replica::synced(store, lag)).collect();
        *self.members.lock() = replicas;
    }

    /// Whether the store belongs to a replica set.
    pub(crate) fn is_active(&self) -> bool {
        !self.members.lock().is_empty()
    }

    /// Sets the lag of one member, or of all when `member` is `None`.
    pub(crate) fn set_lag(&self, member: Option<usize>, lag: Duration) {
        for (i, r) in self.members.lock().iter_mut().enumerate() {
            if member.is_none_or(|m| m == i) {
                r.lag = lag;
            }
        }
    }

    /// Between tests (the store was cleared): every member has the primary's (empty) data.
    pub(crate) fn reset(&self, store: &Store) {
        let mut members = self.members.lock();
        for r in members.iter_mut() {
            let lag = r.lag;
            *r = Replica::synced(store, lag);
        }
    }

    /// Secondary `member` applies what is due; returns its data.
    pub(crate) fn catch_up(&self, store: &Store, member: usize) -> Option<Arc<Mutex<Dbs>>> {
        let mut members = self.members.lock();
        let r = members.get_mut(member)?;
        r.catch_up(store);
        Some(r.data.clone())
    }

    /// Whether secondary `member` has applied every entry up to cluster time `t` (it
    /// applies what is due first). A member outside the set has everything.
    pub(crate) fn has_applied(&self, store: &Store, member: usize, t: Timestamp) -> bool {
        let mut members = self.members.lock();
        let Some(r) = members.get_mut(member) else {
            return true;
        };
        r.catch_up(store);
        r.first_pending(store).is_none_or(|e| key(e.ts) > key(t))
    }

    /// When secondary `member`'s next entry is due (`None`: it has everything).
    pub(crate) fn next_due(&self, store: &Store, member: usize) -> Option<Instant> {
        let members = self.members.lock();
        let r = members.get(member)?;
        let e = r.first_pending(store)?;
        Some(e.logged.checked_add(r.lag).unwrap_or(e.logged))
    }

    /// How many members have applied every entry before sequence number `target`: the
    /// primary, and the running secondaries that caught up so far.
    pub(crate) fn acknowledged(
        &self,
        store: &Store,
        target: u64,
        primary: Option<usize>,
        running: &[bool],
    ) -> usize {
        let mut members = self.members.lock();
        let mut n = 0;
        for (i, r) in members.iter_mut().enumerate() {
            if primary == Some(i) {
                n += 1;
            } else if running.get(i).copied().unwrap_or(false) {
                r.catch_up(store);
                if r.next >= target {
                    n += 1;
                }
            }
        }
        n
    }

    /// The optime and wall time of the last write secondary `member` applied, when it has
    /// not caught up with the primary (`None`: it has everything the primary has).
    pub(crate) fn last_applied(
        &self,
        store: &Store,
        member: usize,
    ) -> Option<(Timestamp, DateTime)> {
        let mut members = self.members.lock();
        let r = members.get_mut(member)?;
        r.catch_up(store);
        r.first_pending(store).map(|_| (r.ts, r.wall))
    }

    /// Member `new` became primary, `old` (if any) stepped down: the new primary's data
    /// becomes the store's, without the writes it had not applied (they are lost, and cut
    /// from the log); the old primary's copy becomes the primary's data.
    pub(crate) fn promote(&self, store: &Store, new: usize, old: Option<usize>) {
        let mut members = self.members.lock();
        if old == Some(new) {
            return;
        }
        let Some(r) = members.get_mut(new) else {
            return;
        };
        r.catch_up(store);
        if r.first_pending(store).is_some() {
            let mut data = r.data.lock().clone();
            Store::discard_pending(&mut data);
            let cut = r.next;
            store.with_base(|base| *base = data);
            store.oplog.truncate_from(cut);
            store.clear_history();
            tracing::debug!(
                new,
                cut,
                "new primary rolled back writes it had not applied"
            );
        }
        if let Some(r) = old.and_then(|o| members.get_mut(o)) {
            let lag = r.lag;
            *r = Replica::synced(store, lag);
        }
    }
}

/// Applies one logged operation to a secondary's data. Applying an entry twice gives the
/// same data (a sync may copy a write whose entry it then applies).
fn apply(dbs: &mut Dbs, e: &Entry) {
    let ns = format!("{}.{}", e.db, e.coll);
    match &e.op {
        Op::Insert { doc } => with_coll(dbs, e, |c| c.apply_upsert(doc.clone())),
        Op::Update { after, .. } | Op::Replace { after, .. } => {
            with_coll(dbs, e, |c| c.apply_upsert(after.clone()));
        }
        Op::Delete { before, .. } => {
            if let (Some(c), Some(id)) = (existing(dbs, &e.db, &e.coll), before.get("_id")) {
                c.apply_delete(id);
            }
        }
        Op::Create { options } => with_coll(dbs, e, |c| c.options = options.clone()),
        Op::CreateIndexes { indexes } => with_coll(dbs, e, |c| {
            for ix in indexes {
                let name = ix.get_str("name").ok();
                if !c.indexes.iter().any(|i| i.get_str("name").ok() == name) {
                    let mut ix = ix.clone();
                    ix.insert("ns", ns.clone());
                    c.indexes.push(ix);
                }
            }
        }),
        Op::DropIndexes { indexes } => {
            if let Some(c) = existing(dbs, &e.db, &e.coll) {
                let names: Vec<_> = indexes
                    .iter()
                    .filter_map(|i| i.get_str("name").ok())
                    .collect();
                c.indexes
                    .retain(|i| !i.get_str("name").is_ok_and(|n| names.contains(&n)));
            }
        }
        Op::Modify { changes, .. } => with_coll(dbs, e, |c| {
            for (k, v) in changes {
                c.options.insert(k.clone(), v.clone());
            }
        }),
        Op::ShardCollection { description } => with_coll(dbs, e, |c| {
            c.shard_key = description.get_document("shardKey").ok().cloned();
        }),
        Op::Drop => {
            remove(dbs, &e.db, &e.coll);
        }
        Op::Rename { to_db, to_coll, .. } => {
            if let Some(mut c) = remove(dbs, &e.db, &e.coll) {
                let to_ns = format!("{to_db}.{to_coll}");
                for ix in &mut c.indexes {
                    ix.insert("ns", to_ns.clone());
                }
                dbs.entry(to_db.clone())
                    .or_default()
                    .insert(to_coll.clone(), c);
            }
        }
        Op::DropDatabase => {
            dbs.remove(&e.db);
        }
    }
}

/// Runs `f` on the entry's collection, creating it (with the primary's UUID) when missing.
fn with_coll(dbs: &mut Dbs, e: &Entry, f: impl FnOnce(&mut Collection)) {
    let ns = format!("{}.{}", e.db, e.coll);
    let c = dbs
        .entry(e.db.clone())
        .or_default()
        .entry(e.coll.clone())
        .or_insert_with(|| Collection::replica(&ns, e.uuid.unwrap_or_default()));
    f(c);
}

fn existing<'a>(dbs: &'a mut Dbs, db: &str, coll: &str) -> Option<&'a mut Collection> {
    dbs.get_mut(db).and_then(|d| d.get_mut(coll))
}

fn remove(dbs: &mut Dbs, db: &str, coll: &str) -> Option<Collection> {
    let d = dbs.get_mut(db)?;
    let c = d.remove(coll);
    if d.is_empty() {
        dbs.remove(db);
    }
    c
}

#[cfg(test)]
mod tests;
