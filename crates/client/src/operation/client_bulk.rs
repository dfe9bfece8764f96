//! The client-level bulk write's command: `bulkWrite` on `admin` (MongoDB 8.0), as data.
//!
//! [`prepare`] checks and encodes the caller's models once: each becomes its `ops` entry
//! (`insert` / `update` / `delete` with the index of its namespace, `document`, `filter`,
//! `updateMods`, `multi`, and the options the caller set), and each distinct namespace its
//! `nsInfo` entry. [`ClientBulkWrite`] then sends them in as many commands as the selected
//! server's limits need ([`batch_len`]: at most maxWriteBatchSize models, and the command's
//! own fields plus both document sequences within maxMessageSizeBytes less the
//! specification's 1000 bytes of allowance), each command carrying only the namespaces its
//! models use, numbered from 0 in the order they first appear. Each command is its own
//! operation run (its own transaction number when retryable); its reply's summary counts
//! and results cursor come back as a [`BatchReply`] for the caller to read.
//!
//! The results cursor's entries are read by [`Tally`], which turns them into the result,
//! the write errors by model index and the verdict on whether any write succeeded.

use std::collections::BTreeMap;

use bson::{Bson, Document, RawDocumentBuf, doc};
use mongo_wire::{DocumentSequence, SizeLimits};

use super::{
    Command, ConnectionDescription, CursorReply, OpKind, Operation, Step, check_replacement,
    check_update, count, with_id,
};
use crate::crud::{
    ClientBulkWriteOptions, ClientBulkWriteResult, ClientUpdateResult, ClientWriteModel,
    DeleteModel, DeleteResult, InsertOneResult, UpdateModel, VerboseResults, WriteModel,
};
use crate::error::{BsonExt, Error, ErrorKind, Result, WriteConcernError, WriteError};

/// What the specification allows, per message, for everything but the command's own fields
/// and its two document sequences (header, section kinds, `lsid`, `txnNumber`, `$db`,
/// `$clusterTime`, API version …).
pub(crate) const MESSAGE_OVERHEAD_BYTES: usize = 1000;

/// The wire version of MongoDB 8.0, the first with `bulkWrite`.
const BULK_WRITE_WIRE_VERSION: i32 = 25;
/// The wire version of MongoDB 8.2, the first that takes `rawData`.
const RAW_DATA_WIRE_VERSION: i32 = 27;

/// Which result a model has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ModelKind {
    /// insertOne.
    Insert,
    /// updateOne, updateMany, replaceOne.
    Update,
    /// deleteOne, deleteMany.
    Delete,
}

/// One model, encoded.
#[derive(Debug)]
pub(crate) struct PreparedModel {
    /// Which result it has.
    pub(crate) kind: ModelKind,
    /// Its `ops` entry, with namespace index 0: every int32 encodes to four bytes, so its
    /// length is the entry's length in any batch; the batch's index is written in when sent.
    entry: RawDocumentBuf,
    /// Its namespace (index in [`Prepared::namespaces`]).
    ns: usize,
    /// An insert's `_id` (the document's, or one generated and placed first).
    pub(crate) inserted_id: Option<Bson>,
}

/// The caller's models, checked and encoded.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The models, in the caller's order.
    pub(crate) models: Vec<PreparedModel>,
    /// Each distinct namespace's `nsInfo` entry (`{ns: "db.coll"}`), in order of first use.
    namespaces: Vec<RawDocumentBuf>,
    /// A model may write several documents (updateMany, deleteMany): not retryable.
    multi: bool,
}

/// An invalid-argument error naming the model.
fn model_error(index: usize, e: &Error) -> Error {
    let what = match e.kind() {
        ErrorKind::InvalidArgument(m) => m.clone(),
        _ => e.to_string(),
    };
    Error::invalid_argument(format!("client bulk write model {index}: {what}"))
}

/// Checks and encodes `models` (the specification's update and replacement rules; an `_id`
/// for each insert that has none).
///
/// # Errors
/// No models; an update document whose first key is not an operator; an empty pipeline; a
/// replacement with an operator; `sort` on an updateMany; a model that cannot be encoded.
pub(crate) fn prepare(models: Vec<ClientWriteModel>) -> Result<Prepared> {
    if models.is_empty() {
        return Err(Error::invalid_argument(
            "a client bulk write needs at least one model",
        ));
    }
    let mut prepared = Prepared {
        models: Vec::with_capacity(models.len()),
        namespaces: Vec::new(),
        multi: false,
    };
    let mut ns_index: BTreeMap<String, usize> = BTreeMap::new();
    for (i, m) in models.into_iter().enumerate() {
        prepared.multi |= m.is_multi();
        let name = m.namespace.to_string();
        let ns = match ns_index.get(&name) {
            Some(n) => *n,
            None => {
                let n = prepared.namespaces.len();
                let entry = RawDocumentBuf::try_from(&doc! {"ns": name.as_str()})
                    .map_err(|e| model_error(i, &Error::invalid_argument(e.to_string())))?;
                prepared.namespaces.push(entry);
                ns_index.insert(name, n);
                n
            }
        };
        let (kind, entry, inserted_id) = ops_entry(m.model).map_err(|e| model_error(i, &e))?;
        let entry = RawDocumentBuf::try_from(&entry)
            .map_err(|e| model_error(i, &Error::invalid_argument(e.to_string())))?;
        prepared.models.push(PreparedModel {
            kind,
            entry,
            ns,
            inserted_id,
        });
    }
    Ok(prepared)
}

/// A model's `ops` entry (namespace index 0).
fn ops_entry(model: WriteModel) -> Result<(ModelKind, Document, Option<Bson>)> {
    Ok(match model {
        WriteModel::InsertOne(m) => {
            let (id, document) = with_id(m.document);
            (
                ModelKind::Insert,
                doc! {"insert": 0_i32, "document": document},
                Some(id),
            )
        }
        WriteModel::UpdateOne(m) => (ModelKind::Update, update_entry(m, false)?, None),
        WriteModel::UpdateMany(m) => {
            if m.sort.is_some() {
                return Err(Error::invalid_argument(
                    "sort applies to updateOne and replaceOne only, not to updateMany",
                ));
            }
            (ModelKind::Update, update_entry(m, true)?, None)
        }
        WriteModel::ReplaceOne(m) => {
            let mut d = doc! {
                "update": 0_i32,
                "filter": m.filter,
                "updateMods": check_replacement(&m.replacement)?,
                "multi": false,
            };
            put(&mut d, "upsert", m.upsert.map(Bson::Boolean));
            put(&mut d, "hint", m.hint.map(|h| h.to_bson()));
            put(&mut d, "collation", m.collation.map(Bson::Document));
            put(&mut d, "sort", m.sort.map(Bson::Document));
            (ModelKind::Update, d, None)
        }
        WriteModel::DeleteOne(m) => (ModelKind::Delete, delete_entry(m, false), None),
        WriteModel::DeleteMany(m) => (ModelKind::Delete, delete_entry(m, true), None),
    })
}

fn put(d: &mut Document, key: &str, value: Option<Bson>) {
    if let Some(v) = value {
        d.insert(key, v);
    }
}

fn update_entry(m: UpdateModel, multi: bool) -> Result<Document> {
    let mut d = doc! {
        "update": 0_i32,
        "filter": m.filter,
        "updateMods": check_update(&m.update)?,
        "multi": multi,
    };
    put(&mut d, "upsert", m.upsert.map(Bson::Boolean));
    put(
        &mut d,
        "arrayFilters",
        m.array_filters
            .map(|f| Bson::Array(f.into_iter().map(Bson::Document).collect())),
    );
    put(&mut d, "hint", m.hint.map(|h| h.to_bson()));
    put(&mut d, "collation", m.collation.map(Bson::Document));
    put(&mut d, "sort", m.sort.map(Bson::Document));
    Ok(d)
}

fn delete_entry(m: DeleteModel, multi: bool) -> Document {
    let mut d = doc! {"delete": 0_i32, "filter": m.filter, "multi": multi};
    put(&mut d, "hint", m.hint.map(|h| h.to_bson()));
    put(&mut d, "collation", m.collation.map(Bson::Document));
    d
}

/// `entry` with its namespace index (the first element, an int32) set to `index`.
fn with_ns_index(entry: &RawDocumentBuf, index: i32) -> Result<RawDocumentBuf> {
    let mut bytes = entry.as_bytes().to_vec();
    // Length (4), element type (1), the key and its NUL, then the int32.
    let key_len = entry
        .iter()
        .next()
        .and_then(std::result::Result::ok)
        .map(|(k, _)| k.len())
        .ok_or_else(|| Error::invalid_argument("an empty ops entry"))?;
    let at = 4 + 1 + key_len + 1;
    bytes
        .get_mut(at..at + 4)
        .ok_or_else(|| Error::invalid_argument("a truncated ops entry"))?
        .copy_from_slice(&index.to_le_bytes());
    RawDocumentBuf::from_bytes(bytes).map_err(|e| Error::invalid_argument(e.to_string()))
}

/// How many of `models` (from the first) fit in one `bulkWrite` command whose own fields
/// take `body_len` bytes: at most maxWriteBatchSize, and the `ops` entries plus the `nsInfo`
/// entries they need within maxMessageSizeBytes less the overhead allowance and the body
/// (the specification's batch-splitting rule). 0 when not even the first fits.
pub(crate) fn batch_len(
    models: &[PreparedModel],
    namespaces: &[RawDocumentBuf],
    body_len: usize,
    limits: &SizeLimits,
) -> usize {
    let room = limits
        .max_message_size_bytes
        .saturating_sub(MESSAGE_OVERHEAD_BYTES.saturating_add(body_len));
    let max_count = limits.max_write_batch_size.max(1);
    let mut used = 0usize;
    let mut seen: Vec<usize> = Vec::new();
    let mut n = 0;
    for m in models.iter().take(max_count) {
        let mut added = m.entry.as_bytes().len();
        let new_ns = !seen.contains(&m.ns);
        if new_ns {
            added = added.saturating_add(namespaces.get(m.ns).map_or(0, |d| d.as_bytes().len()));
        }
        let total = used.saturating_add(added);
        if total > room {
            break;
        }
        used = total;
        if new_ns {
            seen.push(m.ns);
        }
        n += 1;
    }
    n
}

/// The summary counts of a `bulkWrite` reply.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Summary {
    pub(crate) n_errors: i64,
    pub(crate) n_inserted: i64,
    pub(crate) n_upserted: i64,
    pub(crate) n_matched: i64,
    pub(crate) n_modified: i64,
    pub(crate) n_deleted: i64,
}

impl Summary {
    fn from_reply(reply: &Document) -> Self {
        Summary {
            n_errors: count(reply, "nErrors"),
            n_inserted: count(reply, "nInserted"),
            n_upserted: count(reply, "nUpserted"),
            n_matched: count(reply, "nMatched"),
            n_modified: count(reply, "nModified"),
            n_deleted: count(reply, "nDeleted"),
        }
    }
}

/// What one `bulkWrite` command came back with.
#[derive(Debug)]
pub(crate) struct BatchReply {
    /// The index of its first model in the caller's models.
    pub(crate) start: usize,
    /// How many models it carried.
    pub(crate) len: usize,
    /// The reply's counts.
    pub(crate) summary: Summary,
    /// The results cursor (`None`: an unacknowledged write, no reply).
    pub(crate) cursor: Option<CursorReply>,
    /// The reply's write concern error, with the error's labels.
    pub(crate) write_concern_error: Option<WriteConcernError>,
}

/// A client bulk write's commands: one batch per run, from the first model not yet sent.
#[derive(Debug)]
pub(crate) struct ClientBulkWrite {
    prepared: Prepared,
    /// `bulkWrite: 1` and the options (`errorsOnly`, `ordered`, …, an own `writeConcern`).
    body: Document,
    raw_data: bool,
    acknowledged: bool,
    /// The first model of the next batch.
    next: usize,
    /// The models of the batch last built.
    in_flight: usize,
}

impl ClientBulkWrite {
    /// The commands of `prepared` with `options`; `write_concern` is the bulk write's own
    /// (sent in the body), `acknowledged` whether the write concern in effect is.
    pub(crate) fn new(
        prepared: Prepared,
        options: &ClientBulkWriteOptions,
        write_concern: Option<Document>,
        acknowledged: bool,
    ) -> Self {
        let mut body = doc! {
            "bulkWrite": 1_i32,
            "errorsOnly": !options.verbose_results.unwrap_or(false),
            "ordered": options.ordered.unwrap_or(true),
        };
        if let Some(b) = options.bypass_document_validation {
            body.insert("bypassDocumentValidation", b);
        }
        if let Some(c) = &options.comment {
            body.insert("comment", c.clone());
        }
        if let Some(l) = &options.let_vars {
            body.insert("let", l.clone());
        }
        if let Some(wc) = write_concern {
            body.insert("writeConcern", wc);
        }
        ClientBulkWrite {
            prepared,
            body,
            raw_data: options.raw_data == Some(true),
            acknowledged,
            next: 0,
            in_flight: 0,
        }
    }

    /// Whether every model was sent.
    pub(crate) fn is_finished(&self) -> bool {
        self.next >= self.prepared.models.len()
    }

    /// The models, for reading the results.
    pub(crate) fn models(&self) -> &[PreparedModel] {
        &self.prepared.models
    }

    /// The models of the batch last built: their range in the caller's models.
    pub(crate) fn in_flight(&self) -> std::ops::Range<usize> {
        self.next..self.next.saturating_add(self.in_flight)
    }

    /// The reply of the batch last built (or the one a write concern error carried): moves
    /// past it.
    fn take_reply(
        &mut self,
        reply: &mut Document,
        write_concern_error: Option<WriteConcernError>,
    ) -> Result<BatchReply> {
        let start = self.next;
        let len = self.in_flight;
        self.next = self.next.saturating_add(self.in_flight);
        self.in_flight = 0;
        let summary = Summary::from_reply(reply);
        let cursor = if self.acknowledged {
            Some(CursorReply::parse(std::mem::take(reply), "firstBatch")?)
        } else {
            None
        };
        Ok(BatchReply {
            start,
            len,
            summary,
            cursor,
            write_concern_error,
        })
    }
}

impl Operation for ClientBulkWrite {
    type Output = BatchReply;

    fn kind(&self) -> OpKind {
        OpKind::Write
    }

    fn name(&self) -> &str {
        "bulkWrite"
    }

    fn is_retryable(&self) -> bool {
        !self.prepared.multi
    }

    fn takes_write_concern(&self) -> bool {
        true
    }

    fn build(&mut self, conn: &ConnectionDescription) -> Result<Command> {
        if conn.max_wire_version < BULK_WRITE_WIRE_VERSION {
            return Err(Error::new(ErrorKind::IncompatibleServer(format!(
                "the client bulk write needs MongoDB 8.0 or later; {} has wire version {}",
                conn.address, conn.max_wire_version
            ))));
        }
        let mut body = self.body.clone();
        if self.raw_data && conn.max_wire_version >= RAW_DATA_WIRE_VERSION {
            body.insert("rawData", true);
        }
        let body_len = body.to_vec().map_or(0, |b| b.len());
        let rest = self.prepared.models.get(self.next..).unwrap_or_default();
        let n = batch_len(rest, &self.prepared.namespaces, body_len, &conn.limits);
        if n == 0 {
            let size = rest.first().map_or(0, |m| m.entry.as_bytes().len());
            return Err(Error::invalid_argument(format!(
                "client bulk write model {} ({size} bytes) does not fit in a message of \
                 maxMessageSizeBytes {}",
                self.next, conn.limits.max_message_size_bytes
            )));
        }
        let batch = rest.get(..n).unwrap_or_default();
        // This batch's namespaces, numbered in order of first use.
        let mut numbers: BTreeMap<usize, i32> = BTreeMap::new();
        let mut ns_info = Vec::new();
        let mut ops = Vec::with_capacity(batch.len());
        for m in batch {
            let number = match numbers.get(&m.ns) {
                Some(k) => *k,
                None => {
                    let k = i32::try_from(ns_info.len())
                        .map_err(|_| Error::invalid_argument("too many namespaces"))?;
                    let entry =
                        self.prepared.namespaces.get(m.ns).ok_or_else(|| {
                            Error::invalid_argument("a model without a namespace")
                        })?;
                    ns_info.push(entry.clone());
                    numbers.insert(m.ns, k);
                    k
                }
            };
            ops.push(if number == 0 {
                m.entry.clone()
            } else {
                with_ns_index(&m.entry, number)?
            });
        }
        self.in_flight = n;
        let mut command = Command::new("admin", body);
        command.sequences.push(DocumentSequence {
            identifier: "ops".to_owned(),
            documents: ops,
        });
        command.sequences.push(DocumentSequence {
            identifier: "nsInfo".to_owned(),
            documents: ns_info,
        });
        command.acknowledged = self.acknowledged;
        Ok(command)
    }

    fn handle_reply(
        &mut self,
        mut reply: Document,
        _: &ConnectionDescription,
    ) -> Result<Step<BatchReply>> {
        self.take_reply(&mut reply, None).map(Step::Done)
    }

    /// A write concern error comes as an error (so that the retry rules see it) carrying its
    /// reply: the batch's results are in that reply's cursor.
    fn handle_error(&mut self, error: Error) -> Result<BatchReply> {
        let Some(failure) = error.write_failure() else {
            return Err(error);
        };
        let (Some(wce), Some(reply)) = (&failure.write_concern_error, &failure.reply) else {
            return Err(error);
        };
        if !reply.contains_key("cursor") {
            return Err(error);
        }
        let mut wce = wce.clone();
        for label in error.labels() {
            if !wce.labels.iter().any(|l| l == label) {
                wce.labels.push(label.to_owned());
            }
        }
        let mut reply = (**reply).clone();
        self.take_reply(&mut reply, Some(wce))
    }

    fn keeps_session(&self, output: &BatchReply) -> bool {
        output.cursor.as_ref().is_some_and(|c| c.id != 0)
    }

    fn pins_connection(&self, output: &BatchReply) -> bool {
        output.cursor.as_ref().is_some_and(|c| c.id != 0)
    }
}

/// The results of a client bulk write as its cursors' entries come in.
#[derive(Debug)]
pub(crate) struct Tally {
    /// The counts and, when verbose, each model's result.
    pub(crate) result: ClientBulkWriteResult,
    /// The write errors by model index.
    pub(crate) write_errors: BTreeMap<usize, WriteError>,
    /// Whether some write is known to have succeeded (the specification's rule for a
    /// partial result).
    pub(crate) any_success: bool,
}

impl Tally {
    /// An empty tally; `verbose` keeps each model's result.
    pub(crate) fn new(verbose: bool, acknowledged: bool) -> Self {
        Tally {
            result: ClientBulkWriteResult {
                acknowledged,
                verbose_results: verbose.then(VerboseResults::default),
                ..ClientBulkWriteResult::default()
            },
            write_errors: BTreeMap::new(),
            any_success: false,
        }
    }

    /// Adds a batch's summary counts, if it is known to have written anything (ordered: no
    /// error, or the first error after the first model; unordered: fewer errors than
    /// models). The cursor must be read before (`entry`) for an ordered batch's verdict.
    pub(crate) fn add_summary(&mut self, batch: &BatchReply, ordered: bool) {
        let s = &batch.summary;
        let wrote = if s.n_errors == 0 {
            true
        } else if ordered {
            self.write_errors
                .keys()
                .any(|i| *i > batch.start && *i < batch.start.saturating_add(batch.len))
        } else {
            usize::try_from(s.n_errors).is_ok_and(|e| e < batch.len)
        };
        if !wrote {
            return;
        }
        self.any_success = true;
        let r = &mut self.result;
        r.inserted_count = r.inserted_count.saturating_add(s.n_inserted);
        r.upserted_count = r.upserted_count.saturating_add(s.n_upserted);
        r.matched_count = r.matched_count.saturating_add(s.n_matched);
        r.modified_count = r.modified_count.saturating_add(s.n_modified);
        r.deleted_count = r.deleted_count.saturating_add(s.n_deleted);
    }

    /// Reads one cursor entry of the batch starting at model `start`. Returns the model
    /// index of a write error.
    ///
    /// # Errors
    /// An entry whose `idx` is missing or names no model of the batch.
    pub(crate) fn entry(
        &mut self,
        entry: &Document,
        start: usize,
        len: usize,
        models: &[PreparedModel],
    ) -> Result<Option<usize>> {
        let idx = entry
            .get("idx")
            .and_then(Bson::as_i64_lossy)
            .and_then(|i| usize::try_from(i).ok())
            .filter(|i| *i < len)
            .ok_or_else(|| {
                Error::invalid_reply(format!("bulkWrite result without a valid idx: {entry}"))
            })?;
        let index = start.saturating_add(idx);
        let model = models.get(index).ok_or_else(|| {
            Error::invalid_reply(format!("bulkWrite result for no model: {entry}"))
        })?;
        if !super::is_ok(entry) {
            self.write_errors.insert(
                index,
                WriteError {
                    index: i64::try_from(index).unwrap_or(i64::MAX),
                    code: entry
                        .get("code")
                        .and_then(Bson::as_i64_lossy)
                        .and_then(|c| i32::try_from(c).ok())
                        .unwrap_or(0),
                    code_name: entry.get_str("codeName").ok().map(str::to_owned),
                    message: entry.get_str("errmsg").unwrap_or_default().to_owned(),
                    details: entry.get_document("errInfo").ok().cloned(),
                },
            );
            return Ok(Some(index));
        }
        let Some(verbose) = &mut self.result.verbose_results else {
            return Ok(None);
        };
        let n = count(entry, "n");
        match model.kind {
            ModelKind::Insert => {
                if let Some(id) = &model.inserted_id
                    && n == 1
                {
                    verbose.insert_results.insert(
                        index,
                        InsertOneResult {
                            inserted_id: id.clone(),
                        },
                    );
                }
            }
            ModelKind::Update => {
                let upserted_id = entry
                    .get_document("upserted")
                    .ok()
                    .and_then(|u| u.get("_id").cloned());
                verbose.update_results.insert(
                    index,
                    ClientUpdateResult {
                        matched_count: n,
                        modified_count: count(entry, "nModified"),
                        upserted_id,
                    },
                );
            }
            ModelKind::Delete => {
                verbose
                    .delete_results
                    .insert(index, DeleteResult { deleted_count: n });
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
#[path = "client_bulk_tests.rs"]
mod tests;
