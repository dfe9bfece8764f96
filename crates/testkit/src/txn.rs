//! Multi-document transactions at the storage level, as a replica-set primary (or a shard
//! behind mongos) keeps them: each session's transaction with its number and state
//! (in progress, committed, aborted), the transaction's view of the data (a copy of every
//! collection taken when it starts, plus its own writes), the documents it has written (its
//! write locks), and commit, which applies those documents to the store at once.
//!
//! A command of a transaction runs inside [`with_view`]: while it runs, the store's accessors
//! on this thread read and write the transaction's view instead of the committed data, so the
//! command bodies need no change. After a write, [`Transactions::record_writes`] compares the
//! view with its state before the command: a document another open transaction has written,
//! or one committed by someone else since the snapshot, is a `WriteConflict` (the command's
//! effects are undone and the transaction aborted, as mongod does).
//!
//! The routers' per-session state (`node/router.rs`) lives here too, so that a reset of the
//! store forgets it with the rest.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bson::{Bson, Document, oid::ObjectId};
use parking_lot::Mutex;

use crate::error::{CmdResult, CommandError};
use crate::store::{Collection, Dbs, Store, WriteKind, id_key};

/// A namespace: (database, collection).
pub(crate) type Ns = (String, String);

thread_local! {
    /// The view of the transaction whose command runs on this thread, with its store's id.
    static VIEW: RefCell<Option<(u64, Arc<Mutex<Dbs>>)>> = const { RefCell::new(None) };
}

/// The transaction view the store shows on this thread, if a command of a transaction of
/// `store` runs here.
pub(crate) fn current_view(store: &Store) -> Option<Arc<Mutex<Dbs>>> {
    let id = store.txns.id;
    VIEW.with(|v| {
        v.borrow()
            .as_ref()
            .filter(|(owner, _)| *owner == id)
            .map(|(_, view)| view.clone())
    })
}

/// Runs `f` with `view` standing for `store`'s data on this thread (restored afterwards,
/// also on unwinding).
pub(crate) fn with_view<R>(store: &Store, view: Arc<Mutex<Dbs>>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<(u64, Arc<Mutex<Dbs>>)>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            VIEW.with(|v| *v.borrow_mut() = previous);
        }
    }
    let previous = VIEW.with(|v| v.borrow_mut().replace((store.txns.id, view)));
    let _restore = Restore(previous);
    f()
}

/// Where a transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxnState {
    InProgress,
    Committed,
    Aborted,
}

impl TxnState {
    fn name(self) -> &'static str {
        match self {
            Self::InProgress => "TxnState::InProgress",
            Self::Committed => "TxnState::Committed",
            Self::Aborted => "TxnState::Aborted",
        }
    }
}

/// One session's latest transaction.
#[derive(Debug)]
struct Txn {
    number: i64,
    state: TxnState,
    /// The snapshot plus the transaction's own writes.
    view: Arc<Mutex<Dbs>>,
    /// The documents written (their `_id` keys), per namespace: the transaction's locks.
    written: BTreeMap<Ns, HashSet<Vec<u8>>>,
    /// Collections the transaction created.
    created: BTreeSet<Ns>,
    /// When `transactionLifetimeLimitSeconds` runs out.
    expires: Instant,
}

impl Txn {
    fn close(&mut self, state: TxnState) {
        self.state = state;
        self.view = Arc::new(Mutex::new(Dbs::new()));
        self.written.clear();
        self.created.clear();
    }
}

/// A router's (mongos's) knowledge of a session's transaction.
#[derive(Debug, Clone, Default)]
pub(crate) struct RouterTxn {
    /// The transaction number the router saw last.
    pub(crate) number: i64,
    /// Whether a statement was sent to the shard (the shard is a participant).
    pub(crate) participant: bool,
    /// Whether a statement wrote (the shard is the recovery shard).
    pub(crate) wrote: bool,
    /// The first command the router saw for this transaction was a commit: it recovers the
    /// decision with the client's recovery token.
    pub(crate) recovering: bool,
}

/// How a command may go on after [`Transactions::begin_or_continue`].
#[derive(Debug)]
pub(crate) enum Begun {
    /// Run it in this view.
    Run(Arc<Mutex<Dbs>>),
    /// A commit of an already committed transaction: answer ok again.
    AlreadyCommitted,
}

/// The transaction table of a store.
#[derive(Debug)]
pub(crate) struct Transactions {
    /// Tells this store's views from another's on a thread.
    id: u64,
    sessions: Mutex<HashMap<Vec<u8>, Txn>>,
    routers: Mutex<HashMap<(ObjectId, Vec<u8>), RouterTxn>>,
}

impl Default for Transactions {
    fn default() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            sessions: Mutex::new(HashMap::new()),
            routers: Mutex::new(HashMap::new()),
        }
    }
}

/// mongod's WriteConflict, with its message.
pub(crate) fn write_conflict() -> CommandError {
    CommandError::new(
        112,
        "WriteConflict",
        "Write conflict during plan execution and yielding is disabled. :: Please retry your \
         operation or multi-document transaction.",
    )
}

pub(crate) fn no_such_transaction(msg: impl Into<String>) -> CommandError {
    CommandError::new(251, "NoSuchTransaction", msg)
}

/// How a session id prints in mongod's messages.
pub(crate) fn lsid_text(lsid: &[u8]) -> String {
    Document::from_reader(lsid)
        .map(|d| match d.get("id") {
            Some(Bson::Binary(b)) => {
                let mut text = String::new();
                for (i, x) in b.bytes.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        text.push('-');
                    }
                    text.push_str(&format!("{x:02x}"));
                }
                format!("{text} - ")
            }
            _ => d.to_string(),
        })
        .unwrap_or_default()
}

impl Transactions {
    /// Forgets everything (between tests).
    pub(crate) fn clear(&self) {
        self.sessions.lock().clear();
        self.routers.lock().clear();
    }

    /// The session's transaction number and state, if it ever ran a transaction.
    pub(crate) fn state(&self, lsid: &[u8]) -> Option<(i64, TxnState)> {
        self.sessions.lock().get(lsid).map(|t| (t.number, t.state))
    }

    /// mongod's `beginOrContinue` for a command with `autocommit: false`, after its checks
    /// of the command itself. `retryable` is the session's latest retryable-write number;
    /// `sharded` allows restarting the active number (a shard does, for its routers).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn begin_or_continue(
        &self,
        store: &Store,
        lsid: &[u8],
        number: i64,
        start: bool,
        command: &str,
        retryable: Option<i64>,
        sharded: bool,
        lifetime: Duration,
    ) -> CmdResult<Begun> {
        let now = Instant::now();
        let mut sessions = self.sessions.lock();
        for t in sessions.values_mut() {
            if t.state == TxnState::InProgress && t.expires <= now {
                t.close(TxnState::Aborted);
            }
        }
        let txn = sessions.get(lsid);
        let txn_number = txn.map(|t| t.number);
        let active = txn_number.unwrap_or(-1).max(retryable.unwrap_or(-1));
        // The session's latest number belongs to a retryable write, not a transaction.
        let retryable_mode = match (retryable, txn_number) {
            (Some(r), Some(t)) => r > t,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if number < active {
            let what = if retryable_mode {
                "retryable write"
            } else {
                "transaction"
            };
            return Err(CommandError::new(
                225,
                "TransactionTooOld",
                format!(
                    "Cannot start transaction with {{ txnNumber: {number}, txnRetryCounter: 0 }} \
                     on session {} because a newer {what} with txnNumberAndRetryCounter \
                     {{ txnNumber: {active}, txnRetryCounter: 0 }} has already started on this \
                     session.",
                    lsid_text(lsid)
                ),
            ));
        }
        if !start {
            let Some(t) = txn.filter(|t| t.number == number && !retryable_mode) else {
                return Err(no_such_transaction(format!(
                    "Given transaction number {number} does not match any in-progress \
                     transactions. The active transaction number is {active}"
                )));
            };
            return match t.state {
                TxnState::Aborted => Err(no_such_transaction(format!(
                    "Transaction {number} has been aborted."
                ))),
                TxnState::Committed if command == "commitTransaction" => {
                    Ok(Begun::AlreadyCommitted)
                }
                TxnState::Committed => Err(CommandError::new(
                    256,
                    "TransactionCommitted",
                    format!("Transaction {number} has been committed."),
                )),
                TxnState::InProgress => Ok(Begun::Run(t.view.clone())),
            };
        }
        if number == active {
            if !sharded {
                return Err(CommandError::new(
                    117,
                    "ConflictingOperationInProgress",
                    "Only servers in a sharded cluster can start a new transaction at the active \
                     transaction number",
                ));
            }
            if let Some(t) = txn.filter(|t| t.number == number && t.state == TxnState::Committed) {
                return Err(CommandError::new(
                    50911,
                    "",
                    format!(
                        "Cannot start a transaction with session id {} and transaction number \
                         {number} because a transaction with the same transaction number is in \
                         state {}",
                        lsid_text(lsid),
                        t.state.name()
                    ),
                ));
            }
        }
        // A new transaction: any open one on the session is aborted; the snapshot is taken.
        let view = Arc::new(Mutex::new(store.with_base(|dbs| dbs.clone())));
        sessions.insert(
            lsid.to_vec(),
            Txn {
                number,
                state: TxnState::InProgress,
                view: view.clone(),
                written: BTreeMap::new(),
                created: BTreeSet::new(),
                expires: now + lifetime,
            },
        );
        Ok(Begun::Run(view))
    }

    /// A retryable write (or a new transaction number) on the session: an open transaction
    /// with a lower number is aborted; the same number is mongod's
    /// IncompleteTransactionHistory, a higher one TransactionTooOld.
    pub(crate) fn check_retryable_write(&self, lsid: &[u8], number: i64) -> CmdResult<()> {
        let mut sessions = self.sessions.lock();
        let Some(t) = sessions.get_mut(lsid) else {
            return Ok(());
        };
        if t.number > number {
            return Err(CommandError::new(
                225,
                "TransactionTooOld",
                format!(
                    "Retryable write with txnNumber {number} is prohibited on session {} \
                     because a newer transaction with txnNumber {} has already started on this \
                     session.",
                    lsid_text(lsid),
                    t.number
                ),
            ));
        }
        if t.number == number {
            return Err(CommandError::new(
                217,
                "IncompleteTransactionHistory",
                "Cannot retry a retryable write that has been converted into a transaction",
            ));
        }
        if t.state == TxnState::InProgress {
            t.close(TxnState::Aborted);
        }
        Ok(())
    }

    /// Aborts the session's transaction `number` if it is open (an error in one of its
    /// commands, `abortTransaction`, a recovery that finds it undecided).
    pub(crate) fn abort(&self, lsid: &[u8], number: i64) {
        if let Some(t) = self.sessions.lock().get_mut(lsid) {
            if t.number == number && t.state == TxnState::InProgress {
                t.close(TxnState::Aborted);
            }
        }
    }

    /// Aborts the open transactions of these sessions (`endSessions`, `killSessions`), or of
    /// every session when `lsids` is `None` (`killAllSessions`).
    pub(crate) fn abort_sessions(&self, lsids: Option<&[Vec<u8>]>) {
        for (lsid, t) in self.sessions.lock().iter_mut() {
            let hit = lsids.is_none_or(|l| l.iter().any(|x| x == lsid));
            if hit && t.state == TxnState::InProgress {
                t.close(TxnState::Aborted);
            }
        }
    }

    /// Notes what the last write command of the transaction changed in its view (`before`
    /// is the view as it was before the command). A document another open transaction wrote,
    /// or one that changed in the store since the snapshot, undoes the command, aborts the
    /// transaction and is a WriteConflict.
    pub(crate) fn record_writes(
        &self,
        store: &Store,
        lsid: &[u8],
        number: i64,
        before: Dbs,
    ) -> CmdResult<()> {
        let mut sessions = self.sessions.lock();
        let Some(mine) = sessions.get(lsid).filter(|t| t.number == number) else {
            return Ok(());
        };
        let after = mine.view.lock().clone();
        let (changed, created) = diff(&before, &after);
        let mut conflict = false;
        store.with_base(|base| {
            for (ns, key) in &changed {
                if mine.written.get(ns).is_some_and(|w| w.contains(key)) {
                    continue;
                }
                let locked = sessions.iter().any(|(other, t)| {
                    other.as_slice() != lsid
                        && t.state == TxnState::InProgress
                        && t.written.get(ns).is_some_and(|w| w.contains(key))
                });
                let snapshot = find_doc(&before, ns, key);
                let current = find_doc(base, ns, key);
                if locked || snapshot != current {
                    conflict = true;
                    return;
                }
            }
        });
        let Some(mine) = sessions.get_mut(lsid) else {
            return Ok(());
        };
        if conflict {
            *mine.view.lock() = before;
            mine.close(TxnState::Aborted);
            return Err(write_conflict());
        }
        for (ns, key) in changed {
            mine.written.entry(ns).or_default().insert(key);
        }
        mine.created.extend(created);
        Ok(())
    }

    /// Commits the session's open transaction `number`: its written documents and created
    /// collections go into the store at once.
    pub(crate) fn commit(&self, store: &Store, lsid: &[u8], number: i64) -> CmdResult<()> {
        let mut sessions = self.sessions.lock();
        let Some(t) = sessions
            .get_mut(lsid)
            .filter(|t| t.number == number && t.state == TxnState::InProgress)
        else {
            return Err(no_such_transaction(format!(
                "Transaction {number} has been aborted."
            )));
        };
        let mut view = t.view.lock().clone();
        store.with_base(|base| {
            apply(base, &view, &t.created, &t.written);
            // The transaction's own statements are what the log shows, not how commit
            // applied their outcome.
            Store::discard_pending(base);
        });
        let txn = crate::oplog::TxnInfo {
            lsid: Document::from_reader(lsid).unwrap_or_default(),
            txn_number: number,
        };
        store.publish_pending(&mut view, Some(txn));
        t.close(TxnState::Committed);
        Ok(())
    }

    /// Whether the session's open transaction created this collection.
    pub(crate) fn created_in(&self, lsid: &[u8], ns: &Ns) -> bool {
        self.sessions
            .lock()
            .get(lsid)
            .is_some_and(|t| t.created.contains(ns))
    }

    /// Whether a non-transactional write may change this document: not while an open
    /// transaction holds it.
    pub(crate) fn is_locked(&self, ns: &Ns, key: &[u8]) -> bool {
        self.sessions.lock().values().any(|t| {
            t.state == TxnState::InProgress && t.written.get(ns).is_some_and(|w| w.contains(key))
        })
    }

    /// Whether any open transaction holds a document.
    pub(crate) fn any_locks(&self) -> bool {
        self.sessions
            .lock()
            .values()
            .any(|t| t.state == TxnState::InProgress && t.written.values().any(|w| !w.is_empty()))
    }

    /// Runs `f` on a router's state for a session.
    pub(crate) fn with_router<R>(
        &self,
        router: ObjectId,
        lsid: &[u8],
        f: impl FnOnce(&mut Option<RouterTxn>) -> R,
    ) -> R {
        let mut routers = self.routers.lock();
        let key = (router, lsid.to_vec());
        let mut entry = routers.remove(&key);
        let out = f(&mut entry);
        if let Some(e) = entry {
            routers.insert(key, e);
        }
        out
    }
}

/// The documents (by `_id` key) that differ between two states of the data, and the
/// collections that appeared.
pub(crate) fn diff(before: &Dbs, after: &Dbs) -> (Vec<(Ns, Vec<u8>)>, Vec<Ns>) {
    let mut changed = Vec::new();
    let mut created = Vec::new();
    let empty = Collection::default();
    let mut names: BTreeSet<Ns> = BTreeSet::new();
    for dbs in [before, after] {
        for (db, colls) in dbs {
            for coll in colls.keys() {
                names.insert((db.clone(), coll.clone()));
            }
        }
    }
    for ns in names {
        let old = lookup(before, &ns);
        let new = lookup(after, &ns);
        if old.is_none() && new.is_some() {
            created.push(ns.clone());
        }
        let old = by_id(old.unwrap_or(&empty));
        let new = by_id(new.unwrap_or(&empty));
        for (key, d) in &new {
            if old.get(key) != Some(d) {
                changed.push((ns.clone(), key.clone()));
            }
        }
        for key in old.keys() {
            if !new.contains_key(key) {
                changed.push((ns.clone(), key.clone()));
            }
        }
    }
    (changed, created)
}

fn lookup<'a>(dbs: &'a Dbs, ns: &Ns) -> Option<&'a Collection> {
    dbs.get(&ns.0).and_then(|d| d.get(&ns.1))
}

fn by_id(c: &Collection) -> HashMap<Vec<u8>, &Document> {
    c.docs
        .iter()
        .filter_map(|d| d.get("_id").map(|id| (id_key(id), d)))
        .collect()
}

/// The document with this `_id` key in a namespace.
pub(crate) fn find_doc(dbs: &Dbs, ns: &Ns, key: &[u8]) -> Option<Document> {
    position(lookup(dbs, ns)?, key).and_then(|p| lookup(dbs, ns)?.docs.get(p).cloned())
}

fn position(c: &Collection, key: &[u8]) -> Option<usize> {
    c.docs
        .iter()
        .position(|d| d.get("_id").is_some_and(|id| id_key(id) == key))
}

/// Applies a committed transaction's effects to the store's data.
fn apply(
    base: &mut Dbs,
    view: &Dbs,
    created: &BTreeSet<Ns>,
    written: &BTreeMap<Ns, HashSet<Vec<u8>>>,
) {
    // A collection the transaction created goes in whole (documents, indexes, options).
    let mut copied = BTreeSet::new();
    for ns in created {
        if lookup(base, ns).is_none() {
            if let Some(c) = lookup(view, ns) {
                base.entry(ns.0.clone())
                    .or_default()
                    .insert(ns.1.clone(), c.clone());
                copied.insert(ns);
            }
        }
    }
    for (ns, keys) in written {
        if copied.contains(ns) {
            continue;
        }
        let full = format!("{}.{}", ns.0, ns.1);
        for key in keys {
            let wanted = find_doc(view, ns, key);
            Store::coll_in(base, &ns.0, &ns.1, true, |c| {
                let Some(c) = c else { return };
                match (position(c, key), wanted) {
                    (Some(p), Some(d)) => {
                        // The transaction's writes were checked when they ran.
                        let _ = c.replace_at(&full, p, d, WriteKind::Replacement);
                    }
                    (Some(p), None) => c.remove_positions(&[p]),
                    (None, Some(d)) => {
                        let _ = c.insert(&full, d);
                    }
                    (None, None) => {}
                }
            });
        }
    }
}

/// Puts these documents back as they are in `before` (a write undone).
pub(crate) fn restore(base: &mut Dbs, before: &Dbs, docs: &[(Ns, Vec<u8>)]) {
    let mut written: BTreeMap<Ns, HashSet<Vec<u8>>> = BTreeMap::new();
    for (ns, key) in docs {
        written.entry(ns.clone()).or_default().insert(key.clone());
    }
    apply(base, before, &BTreeSet::new(), &written);
}

/// mongod's rule for the commands a transaction may run, and on which databases.
pub(crate) fn check_command_allowed(db: &str, name: &str, coll: Option<&str>) -> CmdResult<()> {
    let not_supported =
        |msg: String| CommandError::new(263, "OperationNotSupportedInTransaction", msg);
    if name == "count" {
        return Err(not_supported(
            "Cannot run 'count' in a multi-document transaction. Please see \
             http://dochub.mongodb.org/core/transaction-count for a recommended alternative."
                .into(),
        ));
    }
    if !ALLOWED_IN_TRANSACTIONS.contains(&name) {
        return Err(not_supported(format!(
            "Cannot run '{name}' in a multi-document transaction."
        )));
    }
    let admin_ok = matches!(name, "commitTransaction" | "abortTransaction" | "bulkWrite");
    if db == "local" || db == "config" || (db == "admin" && !admin_ok) {
        return Err(not_supported(format!(
            "Cannot run command against the '{db}' database in a transaction."
        )));
    }
    if let Some(c) = coll.filter(|c| c.starts_with("system.")) {
        return Err(not_supported(format!(
            "Cannot run command against the '{db}.{c}' collection in a transaction."
        )));
    }
    Ok(())
}

/// The commands mongod runs inside a multi-document transaction.
const ALLOWED_IN_TRANSACTIONS: &[&str] = &[
    "abortTransaction",
    "aggregate",
    "bulkWrite",
    "commitTransaction",
    "create",
    "createIndexes",
    "delete",
    "distinct",
    "find",
    "findAndModify",
    "findandmodify",
    "getMore",
    "insert",
    "killCursors",
    "update",
];

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn begin(store: &Store, n: i64, start: bool, cmd: &str) -> CmdResult<Begun> {
        store.txns.begin_or_continue(
            store,
            b"s",
            n,
            start,
            cmd,
            store.latest_retryable(b"s"),
            false,
            Duration::from_secs(60),
        )
    }

    #[test]
    fn diff_finds_changed_documents_and_new_collections() {
        let store = Store::new();
        store
            .insert_many("db", "a", [doc! { "_id": 1, "x": 1 }, doc! { "_id": 2 }])
            .unwrap();
        let before = store.with_base(|b| b.clone());
        store.with_coll("db", "a", false, |c| {
            let c = c.unwrap();
            c.replace_at("db.a", 0, doc! { "_id": 1, "x": 2 }, WriteKind::Pipeline)
                .unwrap();
            c.remove_positions(&[1]);
        });
        store.insert_many("db", "b", [doc! { "_id": 1.0 }]).unwrap();
        let after = store.with_base(|b| b.clone());
        let (changed, created) = diff(&before, &after);
        let ns = |c: &str| ("db".to_string(), c.to_string());
        assert_eq!(created, vec![ns("b")]);
        assert_eq!(changed.len(), 3, "{changed:?}");
        // Equal numbers are one `_id`.
        assert!(changed.contains(&(ns("b"), id_key(&Bson::Int32(1)))));
        // Undone: the documents are back as they were.
        let mut undone = after.clone();
        restore(&mut undone, &before, &changed);
        assert_eq!(
            lookup(&undone, &ns("a")).map(|c| c.docs.clone()),
            lookup(&before, &ns("a")).map(|c| c.docs.clone())
        );
        assert_eq!(lookup(&undone, &ns("b")).map(|c| c.docs.len()), Some(0));
    }

    #[test]
    fn transaction_numbers_follow_mongod() {
        let store = Store::new();
        let code = |r: CmdResult<Begun>| r.err().map(|e| e.code);
        assert_eq!(code(begin(&store, 1, false, "find")), Some(251));
        assert!(matches!(begin(&store, 2, true, "find"), Ok(Begun::Run(_))));
        assert_eq!(code(begin(&store, 2, true, "find")), Some(117));
        assert_eq!(code(begin(&store, 1, true, "find")), Some(225));
        store.txns.commit(&store, b"s", 2).unwrap();
        assert!(matches!(
            begin(&store, 2, false, "commitTransaction"),
            Ok(Begun::AlreadyCommitted)
        ));
        assert_eq!(code(begin(&store, 2, false, "insert")), Some(256));
        // A retryable write moves the session on; the transaction number is then too old.
        assert_eq!(
            store
                .txns
                .check_retryable_write(b"s", 2)
                .err()
                .map(|e| e.code),
            Some(217)
        );
        store.txns.check_retryable_write(b"s", 3).unwrap();
        store.record_retryable_write(b"s", 3, doc! { "ok": 1 });
        assert_eq!(code(begin(&store, 3, false, "find")), Some(251));
        assert!(matches!(begin(&store, 4, true, "find"), Ok(Begun::Run(_))));
        store.txns.abort_sessions(None);
        assert_eq!(code(begin(&store, 4, false, "find")), Some(251));
        assert_eq!(
            lsid_text(&doc! { "id": Bson::Binary(bson::Binary { subtype: bson::spec::BinarySubtype::Uuid, bytes: vec![0xab; 16] }) }.to_vec().unwrap()),
            "abababab-abab-abab-abab-abababababab - "
        );
    }
}
