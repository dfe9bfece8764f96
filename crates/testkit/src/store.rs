//! The in-memory document store shared by the members of a deployment.

use std::collections::{BTreeMap, HashMap, HashSet};

use bson::{Bson, Document, doc, oid::ObjectId};
use parking_lot::Mutex;

use crate::error::{CmdResult, CommandError, codes};
use crate::oplog::{Op, Oplog, Publish, Recorded};
use crate::query;

/// One collection: documents in insertion order plus an `_id` index.
#[derive(Debug, Default, Clone)]
pub(crate) struct Collection {
    pub(crate) docs: Vec<Document>,
    /// Each document's record id (`showRecordId`), parallel to `docs`: increasing from 1 in
    /// insertion order, never reused, as a WiredTiger collection's.
    record_ids: Vec<i64>,
    last_record_id: i64,
    ids: HashSet<Vec<u8>>,
    pub(crate) indexes: Vec<Document>,
    /// The options given to `create` / `collMod` (reported by `listCollections`).
    pub(crate) options: Document,
    /// The shard key given to `shardCollection` (change events' `documentKey` has its
    /// fields).
    pub(crate) shard_key: Option<Document>,
    /// The collection's UUID (change events' `collectionUUID`).
    pub(crate) uuid: crate::oplog::Uuid,
    /// What was done to the collection and is not yet in the replication log (`oplog.rs`).
    pub(crate) pending: Vec<crate::oplog::Recorded>,
}

/// A canonical key for `_id` values: numbers that are equal map to the same key.
pub(crate) fn id_key(id: &Bson) -> Vec<u8> {
    let norm = match id {
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) => {
            let f = query::as_f64(id).unwrap_or(f64::NAN);
            if f.fract() == 0.0 && f.abs() < 9.0e15 {
                #[allow(clippy::cast_possible_truncation)]
                Bson::Int64(f as i64)
            } else {
                Bson::Double(f)
            }
        }
        other => other.clone(),
    };
    doc! { "": norm }.to_vec().unwrap_or_default()
}

impl Collection {
    fn new(ns: &str) -> Self {
        Self {
            docs: Vec::new(),
            record_ids: Vec::new(),
            last_record_id: 0,
            ids: HashSet::new(),
            indexes: vec![doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_", "ns": ns }],
            options: Document::new(),
            shard_key: None,
            uuid: crate::oplog::new_uuid(),
            pending: vec![Recorded::now(Op::Create {
                options: Document::new(),
            })],
        }
    }

    /// An empty collection as a secondary creates it from the replication log: the
    /// primary's UUID, nothing to log.
    pub(crate) fn replica(ns: &str, uuid: crate::oplog::Uuid) -> Self {
        let mut c = Self::new(ns);
        c.uuid = uuid;
        c.pending.clear();
        c
    }

    /// Writes a document as a secondary applies a logged insert, update or replacement:
    /// in place of the document with its `_id`, else at the end. Nothing is logged.
    pub(crate) fn apply_upsert(&mut self, d: Document) {
        let Some(id) = d.get("_id").map(id_key) else {
            return;
        };
        if self.ids.contains(&id) {
            let at = self
                .docs
                .iter()
                .position(|x| x.get("_id").map(id_key).as_ref() == Some(&id));
            if let Some(slot) = at.and_then(|i| self.docs.get_mut(i)) {
                *slot = d;
            }
            return;
        }
        self.ids.insert(id);
        self.docs.push(d);
        self.last_record_id += 1;
        self.record_ids.push(self.last_record_id);
    }

    /// Removes the document with this `_id`, as a secondary applies a logged delete.
    pub(crate) fn apply_delete(&mut self, id: &Bson) {
        let key = id_key(id);
        if !self.ids.remove(&key) {
            return;
        }
        if let Some(i) = self
            .docs
            .iter()
            .position(|x| x.get("_id").map(id_key).as_ref() == Some(&key))
        {
            self.docs.remove(i);
            if i < self.record_ids.len() {
                self.record_ids.remove(i);
            }
        }
    }

    /// Records an operation for the replication log.
    pub(crate) fn record(&mut self, op: Op) {
        self.pending.push(Recorded::now(op));
    }

    /// Whether the collection keeps pre- and post-images for change streams
    /// (`changeStreamPreAndPostImages: {enabled: true}` given to `create` or `collMod`).
    pub(crate) fn keeps_images(&self) -> bool {
        self.options
            .get_document("changeStreamPreAndPostImages")
            .is_ok_and(|o| o.get("enabled").is_some_and(query::truthy))
    }

    /// Inserts one document; a missing `_id` gets an ObjectId (placed first).
    pub(crate) fn insert(&mut self, ns: &str, mut d: Document) -> CmdResult<Bson> {
        let id = match d.get("_id") {
            Some(Bson::Array(_)) => {
                return Err(CommandError::new(
                    53,
                    "InvalidIdField",
                    "The '_id' value cannot be of type array",
                ));
            }
            Some(id) => id.clone(),
            None => {
                let id = Bson::ObjectId(ObjectId::new());
                let mut with_id = doc! { "_id": id.clone() };
                with_id.extend(std::mem::take(&mut d));
                d = with_id;
                id
            }
        };
        if let Bson::Document(fields) = &id
            && let Some(bad) = fields.keys().find(|k| k.starts_with('$'))
        {
            return Err(CommandError::new(
                codes::DOLLAR_PREFIXED_FIELD_NAME,
                "DollarPrefixedFieldName",
                format!(
                    "_id fields may not contain '$'-prefixed fields: {bad} is not valid for storage."
                ),
            ));
        }
        let key = id_key(&id);
        if self.ids.contains(&key) {
            return Err(duplicate_key(ns, &id));
        }
        self.check_unique(ns, &d, None)?;
        self.ids.insert(key);
        self.record(Op::Insert { doc: d.clone() });
        self.docs.push(d);
        self.last_record_id += 1;
        self.record_ids.push(self.last_record_id);
        Ok(id)
    }

    /// Replaces the document at `idx` (its `_id` cannot change); fails on a unique index
    /// another document already holds the new key of. `how` tells the replication log what
    /// kind of write it was.
    pub(crate) fn replace_at(
        &mut self,
        ns: &str,
        idx: usize,
        d: Document,
        how: WriteKind<'_>,
    ) -> CmdResult<()> {
        self.check_unique(ns, &d, Some(idx))?;
        let images = self.keeps_images();
        if let Some(slot) = self.docs.get_mut(idx) {
            let before = std::mem::replace(slot, d.clone());
            let op = match how {
                WriteKind::Replacement => Op::Replace {
                    before,
                    after: d,
                    images,
                },
                WriteKind::Pipeline => Op::Update {
                    before,
                    after: d,
                    whole: Vec::new(),
                    images,
                },
                WriteKind::Operators(update) => Op::Update {
                    before,
                    after: d,
                    whole: whole_value_paths(update),
                    images,
                },
            };
            self.record(op);
        }
        Ok(())
    }

    /// The unique indexes (other than `_id_`, checked by the id set): a document whose key
    /// another document (not the one at `skip`) has is a DuplicateKey error.
    fn check_unique(&self, ns: &str, d: &Document, skip: Option<usize>) -> CmdResult<()> {
        for ix in &self.indexes {
            if !ix.get("unique").is_some_and(query::truthy) {
                continue;
            }
            let (Ok(name), Ok(pattern)) = (ix.get_str("name"), ix.get_document("key")) else {
                continue;
            };
            if name == "_id_" {
                continue;
            }
            let key = index_key(d, pattern);
            let sparse = ix.get("sparse").is_some_and(query::truthy);
            if sparse && pattern.keys().all(|f| query::lookup(d, f).is_empty()) {
                continue;
            }
            let taken = self.docs.iter().enumerate().any(|(i, other)| {
                Some(i) != skip
                    && !(sparse && pattern.keys().all(|f| query::lookup(other, f).is_empty()))
                    && key
                        .values()
                        .zip(index_key(other, pattern).values())
                        .all(|(a, b)| query::values_equal(a, b))
            });
            if taken {
                let shown: Vec<String> = key.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                return Err(CommandError::new(
                    codes::DUPLICATE_KEY,
                    "DuplicateKey",
                    format!(
                        "E11000 duplicate key error collection: {ns} index: {name} dup key: {{ {} }}",
                        shown.join(", ")
                    ),
                )
                .with_info(doc! { "keyPattern": pattern.clone(), "keyValue": key }));
            }
        }
        Ok(())
    }

    /// Checks a document against the collection's `validator` (set by `create` or
    /// `collMod`), as mongod does with `validationLevel` strict (every insert and update),
    /// moderate (not the updates of documents that already failed it) or off, and
    /// `validationAction` error (the write fails with DocumentValidationFailure, 121) or
    /// warn (it goes through). `old` is the document before an update.
    pub(crate) fn validate(&self, new: &Document, old: Option<&Document>) -> CmdResult<()> {
        let Ok(validator) = self.options.get_document("validator") else {
            return Ok(());
        };
        let level = self.options.get_str("validationLevel").unwrap_or("strict");
        let action = self.options.get_str("validationAction").unwrap_or("error");
        if level == "off" || action == "warn" {
            return Ok(());
        }
        if level == "moderate"
            && let Some(old) = old
            && !query::matches(old, validator)?
        {
            return Ok(());
        }
        if query::matches(new, validator)? {
            return Ok(());
        }
        let mut info = doc! {};
        if let Some(id) = new.get("_id") {
            info.insert("failingDocumentId", id.clone());
        }
        info.insert("details", validation_details(new, validator)?);
        Err(CommandError::new(
            codes::DOCUMENT_VALIDATION_FAILURE,
            "DocumentValidationFailure",
            "Document failed validation",
        )
        .with_info(doc! { "errInfo": info }))
    }

    /// Removes the documents at the given (ascending) positions.
    pub(crate) fn remove_positions(&mut self, positions: &[usize]) {
        let set: HashSet<usize> = positions.iter().copied().collect();
        let mut i = 0usize;
        self.record_ids.retain(|_| {
            let keep = !set.contains(&i);
            i += 1;
            keep
        });
        let images = self.keeps_images();
        let mut i = 0usize;
        let ids = &mut self.ids;
        let mut removed = Vec::new();
        self.docs.retain(|d| {
            let keep = !set.contains(&i);
            i += 1;
            if !keep {
                if let Some(id) = d.get("_id") {
                    ids.remove(&id_key(id));
                }
                removed.push(d.clone());
            }
            keep
        });
        for before in removed {
            self.record(Op::Delete { before, images });
        }
    }

    /// The record id of the document at `idx`.
    pub(crate) fn record_id(&self, idx: usize) -> Option<i64> {
        self.record_ids.get(idx).copied()
    }

    /// Positions of matching documents.
    pub(crate) fn matching(
        &self,
        filter: &Document,
        ctx: &query::QueryCtx,
    ) -> CmdResult<Vec<usize>> {
        let mut out = Vec::new();
        for (i, d) in self.docs.iter().enumerate() {
            if query::matches_in(d, filter, ctx)? {
                out.push(i);
            }
        }
        Ok(out)
    }
}

/// What kind of write changed a document (for the replication log).
#[derive(Debug, Clone, Copy)]
pub(crate) enum WriteKind<'a> {
    /// The whole document was replaced.
    Replacement,
    /// An update pipeline (or a merge) changed it: described by the full difference.
    Pipeline,
    /// These update operators (with concrete paths) changed it.
    Operators(&'a Document),
}

/// The paths an operator update sets or removes whole: every operator's fields but
/// `$push` / `$addToSet`'s, which append array elements (described one by one), and both
/// sides of a `$rename`.
fn whole_value_paths(update: &Document) -> Vec<String> {
    let mut out = Vec::new();
    for (op, fields) in update {
        let Bson::Document(fields) = fields else {
            continue;
        };
        if matches!(op.as_str(), "$push" | "$addToSet") {
            continue;
        }
        for (path, arg) in fields {
            out.push(path.clone());
            if op == "$rename"
                && let Bson::String(to) = arg
            {
                out.push(to.clone());
            }
        }
    }
    out
}

/// The duplicate `_id` error, with mongod's `keyPattern` and `keyValue`.
pub(crate) fn duplicate_key(ns: &str, id: &Bson) -> CommandError {
    CommandError::new(
        codes::DUPLICATE_KEY,
        "DuplicateKey",
        format!("E11000 duplicate key error collection: {ns} index: _id_ dup key: {{ _id: {id} }}"),
    )
    .with_info(doc! { "keyPattern": { "_id": 1 }, "keyValue": { "_id": id.clone() } })
}

/// A document's key in an index: the first value at each field of the pattern, null when
/// missing.
fn index_key(d: &Document, pattern: &Document) -> Document {
    pattern
        .keys()
        .map(|f| {
            let v = query::lookup(d, f)
                .first()
                .map_or(Bson::Null, |v| (*v).clone());
            (f.clone(), v)
        })
        .collect()
}

/// The `details` of a validation failure: the top-level clauses of the validator the
/// document does not satisfy, in the shape mongod reports (`operatorName`,
/// `clausesNotSatisfied` / `specifiedAs`). A simplification: mongod explains each clause
/// down to the failing value.
fn validation_details(d: &Document, validator: &Document) -> CmdResult<Document> {
    let mut failing = Vec::new();
    for (i, (k, v)) in validator.iter().enumerate() {
        let clause = doc! { k.clone(): v.clone() };
        if !query::matches(d, &clause)? {
            let operator = match v {
                Bson::Document(ops) if !k.starts_with('$') => ops
                    .keys()
                    .next()
                    .filter(|o| o.starts_with('$'))
                    .cloned()
                    .unwrap_or_else(|| "$eq".to_owned()),
                _ if k.starts_with('$') => k.clone(),
                _ => "$eq".to_owned(),
            };
            failing.push(doc! {
                "index": i32::try_from(i).unwrap_or(i32::MAX),
                "details": { "operatorName": operator, "specifiedAs": clause, "reason": "expression did not match" },
            });
        }
    }
    Ok(match (validator.len(), failing.pop()) {
        (1, Some(only)) => only.get_document("details").cloned().unwrap_or_default(),
        (_, last) => {
            failing.extend(last);
            doc! { "operatorName": "$and", "clausesNotSatisfied": failing }
        }
    })
}

/// Databases → collections, plus the session table of retryable writes (which replicates
/// with the data on a replica set). One store per deployment.
#[derive(Debug, Default)]
pub struct Store {
    dbs: Mutex<Dbs>,
    /// Per session (the encoded `lsid`): the latest txnNumber and the reply it got.
    sessions: Mutex<HashMap<Vec<u8>, (i64, Document)>>,
    /// The deployment's logical clock (`$clusterTime`, `operationTime`).
    cluster_time: Mutex<(u32, u32)>,
    /// Multi-document transactions: each session's transaction, its view of the data and
    /// the documents it has written (`txn.rs`).
    pub(crate) txns: crate::txn::Transactions,
    /// The versions snapshot reads at an `atClusterTime` see (`history.rs`).
    history: crate::history::History,
    /// The replication log change streams read (`oplog.rs`).
    pub(crate) oplog: Oplog,
    /// In a replica set, the secondaries' own data, applied from the log (`replication/`).
    pub(crate) repl: crate::replication::Replication,
    /// What removed or moved collections (drop, rename, dropDatabase) and is not yet in the
    /// log (the collections' own operations wait in their `pending` lists).
    pub(crate) dropped: Mutex<Vec<Publish>>,
}

/// Every database's collections: the store's data, or a transaction's view of it.
pub(crate) type Dbs = BTreeMap<String, BTreeMap<String, Collection>>;

/// What the session table says about a retryable write.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RetryableWrite {
    /// Not seen: run it.
    New,
    /// Already executed: this was its reply.
    Executed(Document),
    /// A newer txnNumber was already used on the session.
    TooOld(i64),
}

impl Store {
    /// Creates an empty store.
    pub fn new() -> Self {
        let store = Self::default();
        store.tick();
        store
    }

    /// Runs `f` on the data the current command sees: the open transaction's view while a
    /// command of a transaction runs on this thread (`txn::with_view`), else the store's own.
    ///
    /// On the committed data, what `f` did goes into the replication log right after it.
    pub(crate) fn with_dbs<R>(&self, f: impl FnOnce(&mut Dbs) -> R) -> R {
        if let Some(view) = crate::txn::current_view(self) {
            return f(&mut view.lock());
        }
        match crate::replication::current_view(self) {
            // A secondary's own data: it only reads (writes are refused before they run).
            Some(view) => {
                let mut dbs = view.lock();
                let out = f(&mut dbs);
                Self::discard_pending(&mut dbs);
                out
            }
            None => {
                let mut dbs = self.dbs.lock();
                let out = f(&mut dbs);
                self.publish_pending(&mut dbs, None);
                out
            }
        }
    }

    /// Runs `f` on the store's committed data, whatever transaction is running.
    pub(crate) fn with_base<R>(&self, f: impl FnOnce(&mut Dbs) -> R) -> R {
        f(&mut self.dbs.lock())
    }

    /// Runs `f` on a collection, creating it (and its database) when `create` is set.
    pub(crate) fn with_coll<R>(
        &self,
        db: &str,
        coll: &str,
        create: bool,
        f: impl FnOnce(Option<&mut Collection>) -> R,
    ) -> R {
        self.with_dbs(|dbs| Self::coll_in(dbs, db, coll, create, f))
    }

    /// [`Store::with_coll`] on given data.
    pub(crate) fn coll_in<R>(
        dbs: &mut Dbs,
        db: &str,
        coll: &str,
        create: bool,
        f: impl FnOnce(Option<&mut Collection>) -> R,
    ) -> R {
        if create {
            let ns = format!("{db}.{coll}");
            let c = dbs
                .entry(db.to_string())
                .or_default()
                .entry(coll.to_string())
                .or_insert_with(|| Collection::new(&ns));
            f(Some(c))
        } else {
            f(dbs.get_mut(db).and_then(|d| d.get_mut(coll)))
        }
    }

    /// A snapshot of a collection's documents (empty when it does not exist).
    pub fn documents(&self, db: &str, coll: &str) -> Vec<Document> {
        self.with_coll(db, coll, false, |c| {
            c.map(|c| c.docs.clone()).unwrap_or_default()
        })
    }

    /// Inserts documents directly (test seeding); returns the `_id`s. Stops at the first
    /// duplicate `_id` and reports it as an error message.
    pub fn insert_many(
        &self,
        db: &str,
        coll: &str,
        docs: impl IntoIterator<Item = Document>,
    ) -> Result<Vec<Bson>, String> {
        let ns = format!("{db}.{coll}");
        self.with_coll(db, coll, true, |c| {
            let mut ids = Vec::new();
            if let Some(c) = c {
                for d in docs {
                    ids.push(c.insert(&ns, d).map_err(|e| e.errmsg)?);
                }
            }
            Ok(ids)
        })
        .inspect(|_| {
            self.tick();
        })
    }

    /// Creates a collection with its options; error 48 when it exists.
    pub(crate) fn create(&self, db: &str, coll: &str, options: Document) -> CmdResult<()> {
        self.with_dbs(|dbs| {
            let d = dbs.entry(db.to_string()).or_default();
            if d.contains_key(coll) {
                return Err(CommandError::new(
                    codes::NAMESPACE_EXISTS,
                    "NamespaceExists",
                    format!("Collection {db}.{coll} already exists."),
                ));
            }
            let mut c = Collection::new(&format!("{db}.{coll}"));
            c.options = options;
            d.insert(coll.to_string(), c);
            Ok(())
        })
    }

    /// Drops a collection; returns the number of indexes it had, or `None`.
    pub(crate) fn drop_collection(&self, db: &str, coll: &str) -> Option<usize> {
        self.with_dbs(|dbs| {
            let d = dbs.get_mut(db)?;
            let mut c = d.remove(coll)?;
            if d.is_empty() {
                dbs.remove(db);
            }
            self.log_removed(db, coll, &mut c);
            Some(c.indexes.len())
        })
    }

    /// Drops a database; returns whether it existed. Each collection's drop is logged
    /// before the database's, as mongod does.
    pub(crate) fn drop_database(&self, db: &str) -> bool {
        self.with_dbs(|dbs| {
            let Some(colls) = dbs.remove(db) else {
                return false;
            };
            for (name, mut c) in colls {
                self.log_removed(db, &name, &mut c);
            }
            self.record_dropped(db, "", None, Op::DropDatabase);
            true
        })
    }

    /// Database names with their approximate sizes.
    pub(crate) fn database_sizes(&self) -> Vec<(String, i64)> {
        self.with_dbs(|dbs| {
            dbs.iter()
                .map(|(name, colls)| {
                    let size: usize = colls
                        .values()
                        .flat_map(|c| c.docs.iter())
                        .map(|d| d.to_vec().map(|v| v.len()).unwrap_or(0))
                        .sum();
                    (name.clone(), i64::try_from(size).unwrap_or(i64::MAX))
                })
                .collect()
        })
    }

    /// Collection names of a database.
    pub(crate) fn collection_names(&self, db: &str) -> Vec<String> {
        self.with_dbs(|dbs| {
            dbs.get(db)
                .map(|d| d.keys().cloned().collect())
                .unwrap_or_default()
        })
    }

    /// Removes every database and forgets every session (and its transaction).
    pub fn clear(&self) {
        self.dbs.lock().clear();
        self.dropped.lock().clear();
        self.sessions.lock().clear();
        self.txns.clear();
        self.history.clear();
        self.repl.reset(self);
    }

    /// Forgets the snapshot history (a new primary rolled back writes it recorded).
    pub(crate) fn clear_history(&self) {
        self.history.clear();
    }

    /// The current cluster time.
    pub(crate) fn cluster_time(&self) -> bson::Timestamp {
        let (time, increment) = *self.cluster_time.lock();
        bson::Timestamp { time, increment }
    }

    /// Advances the cluster time (a write happened) and returns the new value: the wall
    /// clock's second, with an increment that keeps it growing within a second.
    pub(crate) fn tick(&self) -> bson::Timestamp {
        let now = self.advance_cluster_time();
        self.history.record(now, &self.dbs);
        now
    }

    /// As [`tick`](Self::tick), for a caller that holds the store's data (`dbs`): the
    /// history records it as it is, without locking it again.
    pub(crate) fn tick_locked(&self, dbs: &Dbs) -> bson::Timestamp {
        let now = self.advance_cluster_time();
        self.history.record_locked(now, dbs);
        now
    }

    /// Moves the cluster time one step on.
    fn advance_cluster_time(&self) -> bson::Timestamp {
        let secs = u32::try_from(bson::DateTime::now().timestamp_millis() / 1000).unwrap_or(0);
        let mut t = self.cluster_time.lock();
        *t = if secs > t.0 {
            (secs, 1)
        } else {
            (t.0, t.1.saturating_add(1))
        };
        let (time, increment) = *t;
        drop(t);
        bson::Timestamp { time, increment }
    }

    /// The data a snapshot read sees: at `at`, or at the current cluster time when not given;
    /// with the time read. The first snapshot read starts the history (`history.rs`).
    ///
    /// # Errors
    /// `at` is in the future or older than the history kept.
    pub(crate) fn snapshot_at(
        &self,
        at: Option<bson::Timestamp>,
    ) -> CmdResult<(bson::Timestamp, crate::history::Snapshot)> {
        let now = self.cluster_time();
        self.history.enable(now, &self.dbs);
        let at = at.unwrap_or(now);
        Ok((at, self.history.at(at, now)?))
    }

    /// Looks a retryable write up in the session table.
    pub(crate) fn retryable_write(&self, lsid: &[u8], txn_number: i64) -> RetryableWrite {
        match self.sessions.lock().get(lsid) {
            Some((latest, _)) if *latest > txn_number => RetryableWrite::TooOld(*latest),
            Some((latest, reply)) if *latest == txn_number => {
                RetryableWrite::Executed(reply.clone())
            }
            _ => RetryableWrite::New,
        }
    }

    /// The latest retryable-write number of a session, if it ran one.
    pub(crate) fn latest_retryable(&self, lsid: &[u8]) -> Option<i64> {
        self.sessions.lock().get(lsid).map(|(n, _)| *n)
    }

    /// Records the reply of an executed retryable write.
    pub(crate) fn record_retryable_write(&self, lsid: &[u8], txn_number: i64, reply: Document) {
        self.sessions
            .lock()
            .insert(lsid.to_vec(), (txn_number, reply));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_ids_are_detected_across_numeric_types() {
        let s = Store::new();
        s.insert_many("db", "c", [doc! { "_id": 1 }]).unwrap();
        let err = s.insert_many("db", "c", [doc! { "_id": 1.0 }]).unwrap_err();
        assert!(err.contains("E11000"), "{err}");
        let ids = s.insert_many("db", "c", [doc! { "x": 1 }]).unwrap();
        assert!(matches!(ids[0], Bson::ObjectId(_)));
        let docs = s.documents("db", "c");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].keys().next().map(String::as_str), Some("_id"));
        s.with_coll("db", "c", false, |c| c.unwrap().remove_positions(&[0]));
        s.insert_many("db", "c", [doc! { "_id": 1_i64 }]).unwrap();
    }

    #[test]
    fn validation_levels_and_actions() {
        let mut c = Collection::new("db.c");
        c.options = doc! { "validator": { "x": { "$type": "string" }, "y": { "$exists": true } } };
        let bad = doc! { "_id": 1, "x": 1 };
        let err = c.validate(&bad, None).unwrap_err();
        assert_eq!(err.code, codes::DOCUMENT_VALIDATION_FAILURE);
        let info = err.info.unwrap();
        let details = info
            .get_document("errInfo")
            .unwrap()
            .get_document("details")
            .unwrap();
        assert_eq!(details.get_str("operatorName").ok(), Some("$and"));
        assert_eq!(details.get_array("clausesNotSatisfied").unwrap().len(), 2);
        assert!(c.validate(&doc! { "x": "s", "y": 1 }, None).is_ok());
        c.options.insert("validationLevel", "moderate");
        assert!(c.validate(&bad, Some(&bad)).is_ok(), "already invalid");
        assert!(c.validate(&bad, Some(&doc! { "x": "s", "y": 1 })).is_err());
        c.options.insert("validationLevel", "strict");
        c.options.insert("validationAction", "warn");
        assert!(c.validate(&bad, None).is_ok());
    }
}
