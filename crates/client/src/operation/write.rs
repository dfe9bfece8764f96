//! Write commands: `insert`, `update` and `delete` as [`WriteBatches`], one command's
//! statements split into batches by the selected server's size limits (maxWriteBatchSize
//! statements, maxMessageSizeBytes per message, each statement at most maxBsonObjectSize);
//! the statements of each kind ([`UpdateStatement`], [`DeleteStatement`]); the update and
//! replacement checks of the CRUD specification; and the counts a write reply carries
//! ([`WriteCounts`]). Write errors and write concern errors are judged by the executor, like
//! every write's; the caller of a multi-batch write decides whether to go on after one.

use bson::{Bson, Document, RawDocumentBuf, doc};

use mongo_wire::DocumentSequence;

use super::{Command, ConnectionDescription, OpKind, Operation, Step, count};
use crate::crud::{Hint, UpdateModifications};
use crate::error::{Error, Result};

/// Room left in every batch for what the executor adds to the body (`$db`, `lsid`,
/// `txnNumber`, `writeConcern`, `$readPreference`, API version).
const ENVELOPE_RESERVE: usize = 2048;

/// The counts of a write reply: `n`, `nModified` and the `upserted` entries (index in the
/// command's statements, `_id`).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct WriteCounts {
    /// `n`: documents inserted, matched (upserts included) or deleted.
    pub(crate) n: i64,
    /// `nModified`.
    pub(crate) n_modified: i64,
    /// `upserted`: the statement's index and the new document's `_id`.
    pub(crate) upserted: Vec<(usize, Bson)>,
}

impl WriteCounts {
    /// Reads the counts of a write reply (missing fields count 0).
    pub(crate) fn from_reply(reply: &Document) -> Self {
        let upserted = reply
            .get_array("upserted")
            .map(|a| {
                a.iter()
                    .filter_map(Bson::as_document)
                    .filter_map(|u| {
                        let index = usize::try_from(count(u, "index")).ok()?;
                        Some((index, u.get("_id")?.clone()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        WriteCounts {
            n: count(reply, "n"),
            n_modified: count(reply, "nModified"),
            upserted,
        }
    }

    /// Adds `other`, whose statement indexes start at `offset`.
    pub(crate) fn add(&mut self, other: &WriteCounts, offset: usize) {
        self.n = self.n.saturating_add(other.n);
        self.n_modified = self.n_modified.saturating_add(other.n_modified);
        self.upserted.extend(
            other
                .upserted
                .iter()
                .map(|(i, id)| (i.saturating_add(offset), id.clone())),
        );
    }

    /// Documents matched by updates: `n` counts the upserted ones too.
    pub(crate) fn matched(&self) -> i64 {
        let upserted = i64::try_from(self.upserted.len()).unwrap_or(i64::MAX);
        self.n.saturating_sub(upserted)
    }
}

/// The three write commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WriteKind {
    /// `insert` with `documents`.
    Insert,
    /// `update` with `updates`.
    Update,
    /// `delete` with `deletes`.
    Delete,
}

impl WriteKind {
    fn command(self) -> &'static str {
        match self {
            WriteKind::Insert => "insert",
            WriteKind::Update => "update",
            WriteKind::Delete => "delete",
        }
    }

    fn sequence(self) -> &'static str {
        match self {
            WriteKind::Insert => "documents",
            WriteKind::Update => "updates",
            WriteKind::Delete => "deletes",
        }
    }
}

/// One write command's statements, sent in as many batches as the server's limits need;
/// each batch is its own retryable write (unless a statement may touch several documents).
///
/// When a batch fails with write errors (or a write concern error) the executor stops with
/// the error; a caller that goes on (an unordered bulk write) calls
/// [`skip_failed_batch`](Self::skip_failed_batch) and runs the operation again for the rest.
#[derive(Debug)]
pub(crate) struct WriteBatches {
    db: String,
    coll: String,
    kind: WriteKind,
    ordered: bool,
    statements: Vec<RawDocumentBuf>,
    /// Fields added to the command body (`bypassDocumentValidation`, `comment`, `let`).
    extras: Document,
    retryable: bool,
    /// Statements already acknowledged (or skipped after a failure).
    done: usize,
    /// Statements in the batch last built.
    in_flight: usize,
    counts: WriteCounts,
}

impl WriteBatches {
    /// `kind` of `statements` on `db.coll`: retryable, no extra fields.
    pub(crate) fn new(
        db: &str,
        coll: &str,
        kind: WriteKind,
        statements: Vec<RawDocumentBuf>,
        ordered: bool,
    ) -> Self {
        WriteBatches {
            db: db.to_owned(),
            coll: coll.to_owned(),
            kind,
            ordered,
            statements,
            extras: Document::new(),
            retryable: true,
            done: 0,
            in_flight: 0,
            counts: WriteCounts::default(),
        }
    }

    /// Adds these fields to every command's body.
    #[must_use]
    pub(crate) fn with_extras(mut self, extras: Document) -> Self {
        self.extras = extras;
        self
    }

    /// Marks the write not retryable (a statement may touch several documents).
    #[must_use]
    pub(crate) fn not_retryable(mut self) -> Self {
        self.retryable = false;
        self
    }

    /// After the batch last built failed with write errors or a write concern error (whose
    /// reply's counts are `counts`): counts what it did, moves past it and returns the index
    /// of its first statement (to which the errors' indexes are relative).
    pub(crate) fn skip_failed_batch(&mut self, counts: &WriteCounts) -> usize {
        let start = self.done;
        self.counts.add(counts, start);
        self.done = self.done.saturating_add(self.in_flight);
        self.in_flight = 0;
        start
    }

    /// How many statements were acknowledged (or skipped after a failure).
    pub(crate) fn done(&self) -> usize {
        self.done
    }

    /// Whether every statement was sent.
    pub(crate) fn is_finished(&self) -> bool {
        self.done >= self.statements.len()
    }

    /// The counts so far (statement indexes relative to this command's statements).
    pub(crate) fn counts(&self) -> &WriteCounts {
        &self.counts
    }
}

impl Operation for WriteBatches {
    /// The counts of every batch.
    type Output = WriteCounts;

    fn kind(&self) -> OpKind {
        OpKind::Write
    }

    fn name(&self) -> &str {
        self.kind.command()
    }

    fn is_retryable(&self) -> bool {
        self.retryable
    }

    fn takes_write_concern(&self) -> bool {
        true
    }

    fn build(&mut self, conn: &ConnectionDescription) -> Result<Command> {
        let rest = self.statements.get(self.done..).unwrap_or_default();
        if rest.is_empty() {
            return Err(Error::invalid_argument(format!(
                "{} needs at least one statement",
                self.kind.command()
            )));
        }
        let mut body = doc! { self.kind.command(): self.coll.clone(), "ordered": self.ordered };
        body.extend(self.extras.clone());
        let body_len = body.to_vec().map_or(0, |b| b.len()) + ENVELOPE_RESERVE;
        let ranges =
            mongo_wire::batch_ranges(body_len, self.kind.sequence(), rest, false, &conn.limits)
                .map_err(|e| match e {
                    mongo_wire::Error::DocumentTooLarge { index, size, max } => {
                        Error::invalid_argument(format!(
                            "{} statement {} is {size} bytes, over maxBsonObjectSize {max}",
                            self.kind.command(),
                            self.done + index
                        ))
                    }
                    other => Error::invalid_argument(format!(
                        "cannot batch the {}: {other}",
                        self.kind.command()
                    )),
                })?;
        let first = ranges.first().map_or(0..rest.len(), Clone::clone);
        let batch = rest.get(first).unwrap_or_default().to_vec();
        self.in_flight = batch.len();
        let mut command = Command::new(self.db.clone(), body);
        command.sequences.push(DocumentSequence {
            identifier: self.kind.sequence().to_owned(),
            documents: batch,
        });
        Ok(command)
    }

    fn handle_reply(
        &mut self,
        reply: Document,
        _: &ConnectionDescription,
    ) -> Result<Step<WriteCounts>> {
        let counts = WriteCounts::from_reply(&reply);
        self.counts.add(&counts, self.done);
        self.done += self.in_flight;
        self.in_flight = 0;
        Ok(if self.is_finished() {
            Step::Done(self.counts.clone())
        } else {
            Step::More
        })
    }
}

/// One `updates` entry.
#[derive(Clone, Debug)]
pub(crate) struct UpdateStatement {
    /// `q`.
    pub(crate) filter: Document,
    /// `u`: an update document, a pipeline or a replacement.
    pub(crate) update: Bson,
    /// `multi`.
    pub(crate) multi: bool,
    /// `upsert`.
    pub(crate) upsert: Option<bool>,
    /// `arrayFilters`.
    pub(crate) array_filters: Option<Vec<Document>>,
    /// `collation`.
    pub(crate) collation: Option<Document>,
    /// `hint`.
    pub(crate) hint: Option<Hint>,
    /// `sort`.
    pub(crate) sort: Option<Document>,
}

impl UpdateStatement {
    /// The statement document.
    pub(crate) fn to_document(&self) -> Document {
        let mut d = doc! { "q": self.filter.clone(), "u": self.update.clone() };
        if self.multi {
            d.insert("multi", true);
        }
        if let Some(u) = self.upsert {
            d.insert("upsert", u);
        }
        if let Some(f) = &self.array_filters {
            d.insert(
                "arrayFilters",
                f.iter().cloned().map(Bson::Document).collect::<Vec<_>>(),
            );
        }
        if let Some(c) = &self.collation {
            d.insert("collation", c.clone());
        }
        if let Some(h) = &self.hint {
            d.insert("hint", h.to_bson());
        }
        if let Some(s) = &self.sort {
            d.insert("sort", s.clone());
        }
        d
    }
}

/// One `deletes` entry.
#[derive(Clone, Debug)]
pub(crate) struct DeleteStatement {
    /// `q`.
    pub(crate) filter: Document,
    /// `limit` 0 (every match) when true, else 1.
    pub(crate) many: bool,
    /// `collation`.
    pub(crate) collation: Option<Document>,
    /// `hint`.
    pub(crate) hint: Option<Hint>,
}

impl DeleteStatement {
    /// The statement document.
    pub(crate) fn to_document(&self) -> Document {
        let limit: i32 = if self.many { 0 } else { 1 };
        let mut d = doc! { "q": self.filter.clone(), "limit": limit };
        if let Some(c) = &self.collation {
            d.insert("collation", c.clone());
        }
        if let Some(h) = &self.hint {
            d.insert("hint", h.to_bson());
        }
        d
    }
}

/// The CRUD specification's update validation: an update document's first key must be an
/// operator (`$set`, …); a pipeline must not be empty.
pub(crate) fn check_update(update: &UpdateModifications) -> Result<Bson> {
    match update {
        UpdateModifications::Document(d) => match d.keys().next() {
            Some(k) if k.starts_with('$') => Ok(Bson::Document(d.clone())),
            _ => Err(Error::invalid_argument(
                "an update document must start with an update operator such as $set",
            )),
        },
        UpdateModifications::Pipeline(p) if p.is_empty() => Err(Error::invalid_argument(
            "an update pipeline must have at least one stage",
        )),
        UpdateModifications::Pipeline(_) => Ok(update.to_bson()),
    }
}

/// The CRUD specification's replacement validation: a replacement's first key must not be an
/// operator.
pub(crate) fn check_replacement(replacement: &Document) -> Result<Bson> {
    match replacement.keys().next() {
        Some(k) if k.starts_with('$') => Err(Error::invalid_argument(
            "a replacement document must not contain update operators",
        )),
        _ => Ok(Bson::Document(replacement.clone())),
    }
}

/// A document to insert with its `_id`: the one it has, or a new ObjectId placed first (the
/// CRUD specification's generated identifiers).
pub(crate) fn with_id(mut document: Document) -> (Bson, Document) {
    if let Some(id) = document.get("_id") {
        return (id.clone(), document);
    }
    let id = Bson::ObjectId(bson::oid::ObjectId::new());
    let mut with = doc! { "_id": id.clone() };
    with.extend(std::mem::take(&mut document));
    (id, with)
}

#[cfg(test)]
mod tests {
    use mongo_events::{ServerAddress, ServerType};
    use mongo_wire::SizeLimits;

    use super::*;

    fn conn(limits: SizeLimits) -> ConnectionDescription {
        ConnectionDescription {
            address: ServerAddress::tcp("a", 1),
            server_type: ServerType::RsPrimary,
            max_wire_version: 21,
            limits,
            service_id: None,
            logical_session_timeout_minutes: Some(30),
        }
    }

    fn raw(d: Document) -> RawDocumentBuf {
        RawDocumentBuf::try_from(&d).unwrap()
    }

    fn inserts(docs: Vec<RawDocumentBuf>) -> WriteBatches {
        WriteBatches::new("db", "c", WriteKind::Insert, docs, true)
    }

    #[test]
    fn inserts_are_split_by_count_and_by_message_size() {
        let limits = SizeLimits {
            max_write_batch_size: 3,
            ..SizeLimits::default()
        };
        let docs: Vec<RawDocumentBuf> = (0..7).map(|i| raw(doc! {"_id": i})).collect();
        let mut op = inserts(docs);
        let mut sizes = Vec::new();
        loop {
            let mut c = op.build(&conn(limits)).unwrap();
            let n = c.sequences.remove(0).documents.len();
            sizes.push(n);
            let reply = doc! {"ok": 1, "n": i32::try_from(n).unwrap()};
            match op.handle_reply(reply, &conn(limits)).unwrap() {
                Step::More => {}
                Step::Done(counts) => {
                    assert_eq!(counts.n, 7);
                    break;
                }
            }
        }
        assert_eq!(sizes, [3, 3, 1]);

        // 10 documents of ~100 KB with a 48 MB message: one batch; with a 350 KB message
        // (room for 3 after the envelope reserve): four batches.
        let big = |i: i32| raw(doc! {"_id": i, "s": "x".repeat(100_000)});
        let small_messages = SizeLimits {
            max_message_size_bytes: 350_000,
            ..SizeLimits::default()
        };
        let mut op = inserts((0..10).map(big).collect());
        let mut sizes = Vec::new();
        loop {
            let mut c = op.build(&conn(small_messages)).unwrap();
            sizes.push(c.sequences.remove(0).documents.len());
            if let Step::Done(_) = op
                .handle_reply(doc! {"ok": 1}, &conn(small_messages))
                .unwrap()
            {
                break;
            }
        }
        assert_eq!(sizes, [3, 3, 3, 1]);
    }

    #[test]
    fn a_failed_batch_is_rebuilt_identically_for_its_retry_or_skipped() {
        let limits = SizeLimits {
            max_write_batch_size: 2,
            ..SizeLimits::default()
        };
        let docs: Vec<RawDocumentBuf> = (0..3).map(|i| raw(doc! {"_id": i})).collect();
        let mut op = inserts(docs);
        let a = op
            .build(&conn(limits))
            .unwrap()
            .sequences
            .remove(0)
            .documents;
        let b = op
            .build(&conn(limits))
            .unwrap()
            .sequences
            .remove(0)
            .documents;
        assert_eq!(a, b);
        // The batch failed on its second document: one inserted; the rest goes on.
        let start = op.skip_failed_batch(&WriteCounts {
            n: 1,
            ..WriteCounts::default()
        });
        assert_eq!(start, 0);
        assert!(!op.is_finished());
        let c = op
            .build(&conn(limits))
            .unwrap()
            .sequences
            .remove(0)
            .documents;
        assert_eq!(c, vec![raw(doc! {"_id": 2})]);
        let Step::Done(counts) = op
            .handle_reply(doc! {"ok": 1, "n": 1}, &conn(limits))
            .unwrap()
        else {
            panic!("done")
        };
        assert_eq!(counts.n, 2);
    }

    #[test]
    fn an_oversized_statement_is_refused_with_its_index() {
        let limits = SizeLimits {
            max_bson_object_size: 1000,
            ..SizeLimits::default()
        };
        let docs = vec![raw(doc! {"_id": 0}), raw(doc! {"s": "x".repeat(2000)})];
        let err = inserts(docs).build(&conn(limits)).unwrap_err();
        assert!(err.to_string().contains("statement 1"), "{err}");
    }

    #[test]
    fn counts_keep_upserted_indexes_across_batches() {
        let mut op = WriteBatches::new(
            "db",
            "c",
            WriteKind::Update,
            (0..3)
                .map(|i| raw(doc! {"q": {"_id": i}, "u": {}}))
                .collect(),
            false,
        )
        .with_extras(doc! {"let": {"v": 1}})
        .not_retryable();
        assert!(!op.is_retryable());
        let limits = SizeLimits {
            max_write_batch_size: 2,
            ..SizeLimits::default()
        };
        let c = op.build(&conn(limits)).unwrap();
        assert_eq!(c.body.get_document("let").unwrap(), &doc! {"v": 1});
        assert!(!c.body.get_bool("ordered").unwrap());
        let reply = doc! {"ok": 1, "n": 2, "nModified": 1, "upserted": [{"index": 1, "_id": "u"}]};
        assert!(matches!(
            op.handle_reply(reply, &conn(limits)).unwrap(),
            Step::More
        ));
        op.build(&conn(limits)).unwrap();
        let reply = doc! {"ok": 1, "n": 1, "nModified": 0, "upserted": [{"index": 0, "_id": "v"}]};
        let Step::Done(counts) = op.handle_reply(reply, &conn(limits)).unwrap() else {
            panic!("done")
        };
        assert_eq!(counts.upserted, vec![(1, "u".into()), (2, "v".into())]);
        assert_eq!((counts.n, counts.n_modified, counts.matched()), (3, 1, 1));
    }

    #[test]
    fn updates_and_replacements_are_validated() {
        assert!(check_update(&doc! {"$set": {"a": 1}}.into()).is_ok());
        assert!(check_update(&doc! {"a": 1}.into()).is_err());
        assert!(check_update(&doc! {}.into()).is_err());
        assert!(check_update(&Vec::<Document>::new().into()).is_err());
        assert!(check_update(&vec![doc! {"$set": {"a": 1}}].into()).is_ok());
        assert!(check_replacement(&doc! {"a": 1}).is_ok());
        assert!(check_replacement(&doc! {}).is_ok());
        assert!(check_replacement(&doc! {"$set": {"a": 1}}).is_err());
        let (id, d) = with_id(doc! {"x": 1});
        assert_eq!(d.keys().next().map(String::as_str), Some("_id"));
        assert_eq!(d.get("_id"), Some(&id));
        assert_eq!(with_id(doc! {"x": 1, "_id": 5}).0, Bson::Int32(5));
    }

    #[test]
    fn statements_carry_only_what_is_set() {
        let s = UpdateStatement {
            filter: doc! {"a": 1},
            update: Bson::Document(doc! {"$set": {"b": 1}}),
            multi: false,
            upsert: Some(true),
            array_filters: Some(vec![doc! {"e.x": 1}]),
            collation: None,
            hint: Some(Hint::Name("a_1".into())),
            sort: None,
        };
        assert_eq!(
            s.to_document(),
            doc! {"q": {"a": 1}, "u": {"$set": {"b": 1}}, "upsert": true,
            "arrayFilters": [{"e.x": 1}], "hint": "a_1"}
        );
        let d = DeleteStatement {
            filter: doc! {},
            many: true,
            collation: Some(doc! {"locale": "fr"}),
            hint: None,
        };
        assert_eq!(
            d.to_document(),
            doc! {"q": {}, "limit": 0, "collation": {"locale": "fr"}}
        );
    }
}
