//! Write commands: `insert` (split into batches by the selected server's size limits),
//! `update` and `delete`. Their write errors and write concern errors are judged by the
//! executor, like every write's.

use bson::{Document, RawDocumentBuf, doc};

use mongo_wire::DocumentSequence;

use super::{Command, ConnectionDescription, OpKind, Operation, Step, count};
use crate::error::{Error, Result};

/// Room left in every batch for what the executor adds to the body (`$db`, `lsid`,
/// `txnNumber`, `writeConcern`, `$readPreference`, API version).
const ENVELOPE_RESERVE: usize = 2048;

/// `insert` of already-encoded documents, in as many batches as the server's limits need
/// (maxWriteBatchSize documents, maxMessageSizeBytes bytes, each document at most
/// maxBsonObjectSize); each batch is its own retryable write.
#[derive(Debug)]
pub(crate) struct Insert {
    db: String,
    coll: String,
    ordered: bool,
    documents: Vec<RawDocumentBuf>,
    /// Documents already acknowledged.
    done: usize,
    /// Documents in the batch last built.
    in_flight: usize,
}

impl Insert {
    pub(crate) fn new(db: &str, coll: &str, documents: Vec<RawDocumentBuf>, ordered: bool) -> Self {
        Insert {
            db: db.to_owned(),
            coll: coll.to_owned(),
            ordered,
            documents,
            done: 0,
            in_flight: 0,
        }
    }
}

impl Operation for Insert {
    /// The number of documents inserted.
    type Output = usize;

    fn kind(&self) -> OpKind {
        OpKind::Write
    }

    fn name(&self) -> &str {
        "insert"
    }

    fn is_retryable(&self) -> bool {
        true
    }

    fn takes_write_concern(&self) -> bool {
        true
    }

    fn build(&mut self, conn: &ConnectionDescription) -> Result<Command> {
        let rest = self.documents.get(self.done..).unwrap_or_default();
        if rest.is_empty() {
            return Err(Error::invalid_argument(
                "insert needs at least one document",
            ));
        }
        let body = doc! { "insert": self.coll.clone(), "ordered": self.ordered };
        let body_len = body.to_vec().map_or(0, |b| b.len()) + ENVELOPE_RESERVE;
        let ranges = mongo_wire::batch_ranges(body_len, "documents", rest, false, &conn.limits)
            .map_err(|e| match e {
                mongo_wire::Error::DocumentTooLarge { index, size, max } => {
                    Error::invalid_argument(format!(
                        "document {} is {size} bytes, over maxBsonObjectSize {max}",
                        self.done + index
                    ))
                }
                other => Error::invalid_argument(format!("cannot batch the insert: {other}")),
            })?;
        let first = ranges.first().map_or(0..rest.len(), Clone::clone);
        let batch = rest.get(first).unwrap_or_default().to_vec();
        self.in_flight = batch.len();
        let mut command = Command::new(self.db.clone(), body);
        command.sequence = Some(DocumentSequence {
            identifier: "documents".to_owned(),
            documents: batch,
        });
        Ok(command)
    }

    fn handle_reply(&mut self, _reply: Document, _: &ConnectionDescription) -> Result<Step<usize>> {
        self.done += self.in_flight;
        self.in_flight = 0;
        Ok(if self.done < self.documents.len() {
            Step::More
        } else {
            Step::Done(self.done)
        })
    }
}

/// What an update did, as the reply says.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct UpdateOutcome {
    pub(crate) matched: i64,
    pub(crate) modified: i64,
    pub(crate) upserted_id: Option<bson::Bson>,
}

/// `update` with one statement. Retryable unless it may touch several documents.
#[derive(Debug)]
pub(crate) struct Update {
    db: String,
    coll: String,
    statement: Document,
    multi: bool,
}

impl Update {
    pub(crate) fn new(
        db: &str,
        coll: &str,
        filter: Document,
        update: Document,
        multi: bool,
        upsert: bool,
    ) -> Self {
        Update {
            db: db.to_owned(),
            coll: coll.to_owned(),
            statement: doc! { "q": filter, "u": update, "multi": multi, "upsert": upsert },
            multi,
        }
    }
}

impl Operation for Update {
    type Output = UpdateOutcome;

    fn kind(&self) -> OpKind {
        OpKind::Write
    }

    fn name(&self) -> &str {
        "update"
    }

    fn is_retryable(&self) -> bool {
        // Multi-document updates are not retryable (retryable writes spec).
        !self.multi
    }

    fn takes_write_concern(&self) -> bool {
        true
    }

    fn build(&mut self, _conn: &ConnectionDescription) -> Result<Command> {
        let mut command = Command::new(
            self.db.clone(),
            doc! { "update": self.coll.clone(), "ordered": true },
        );
        command.sequence = Some(DocumentSequence {
            identifier: "updates".to_owned(),
            documents: vec![RawDocumentBuf::try_from(&self.statement)?],
        });
        Ok(command)
    }

    fn handle_reply(
        &mut self,
        reply: Document,
        _: &ConnectionDescription,
    ) -> Result<Step<UpdateOutcome>> {
        let upserted_id = reply
            .get_array("upserted")
            .ok()
            .and_then(|a| a.first())
            .and_then(|u| u.as_document())
            .and_then(|u| u.get("_id"))
            .cloned();
        let n = count(&reply, "n");
        Ok(Step::Done(UpdateOutcome {
            // `n` counts the upserted document too; it comes from the server: no overflow.
            matched: if upserted_id.is_some() {
                n.saturating_sub(1)
            } else {
                n
            },
            modified: count(&reply, "nModified"),
            upserted_id,
        }))
    }
}

/// `delete` with one statement (`limit` 1: one document, retryable; 0: every match).
#[derive(Debug)]
pub(crate) struct Delete {
    db: String,
    coll: String,
    statement: Document,
    many: bool,
}

impl Delete {
    pub(crate) fn new(db: &str, coll: &str, filter: Document, many: bool) -> Self {
        let limit: i32 = if many { 0 } else { 1 };
        Delete {
            db: db.to_owned(),
            coll: coll.to_owned(),
            statement: doc! { "q": filter, "limit": limit },
            many,
        }
    }
}

impl Operation for Delete {
    /// The number of documents deleted.
    type Output = i64;

    fn kind(&self) -> OpKind {
        OpKind::Write
    }

    fn name(&self) -> &str {
        "delete"
    }

    fn is_retryable(&self) -> bool {
        !self.many
    }

    fn takes_write_concern(&self) -> bool {
        true
    }

    fn build(&mut self, _conn: &ConnectionDescription) -> Result<Command> {
        let mut command = Command::new(
            self.db.clone(),
            doc! { "delete": self.coll.clone(), "ordered": true },
        );
        command.sequence = Some(DocumentSequence {
            identifier: "deletes".to_owned(),
            documents: vec![RawDocumentBuf::try_from(&self.statement)?],
        });
        Ok(command)
    }

    fn handle_reply(&mut self, reply: Document, _: &ConnectionDescription) -> Result<Step<i64>> {
        Ok(Step::Done(count(&reply, "n")))
    }
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

    #[test]
    fn inserts_are_split_by_count_and_by_message_size() {
        let limits = SizeLimits {
            max_write_batch_size: 3,
            ..SizeLimits::default()
        };
        let docs: Vec<RawDocumentBuf> = (0..7).map(|i| raw(doc! {"_id": i})).collect();
        let mut op = Insert::new("db", "c", docs, true);
        let mut sizes = Vec::new();
        loop {
            let c = op.build(&conn(limits)).unwrap();
            sizes.push(c.sequence.unwrap().documents.len());
            match op
                .handle_reply(doc! {"ok": 1, "n": 1}, &conn(limits))
                .unwrap()
            {
                Step::More => {}
                Step::Done(n) => {
                    assert_eq!(n, 7);
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
        let mut op = Insert::new("db", "c", (0..10).map(big).collect(), true);
        let mut sizes = Vec::new();
        loop {
            let c = op.build(&conn(small_messages)).unwrap();
            sizes.push(c.sequence.unwrap().documents.len());
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
    fn a_failed_batch_is_rebuilt_identically_for_its_retry() {
        let limits = SizeLimits {
            max_write_batch_size: 2,
            ..SizeLimits::default()
        };
        let docs: Vec<RawDocumentBuf> = (0..3).map(|i| raw(doc! {"_id": i})).collect();
        let mut op = Insert::new("db", "c", docs, true);
        let a = op.build(&conn(limits)).unwrap().sequence.unwrap().documents;
        let b = op.build(&conn(limits)).unwrap().sequence.unwrap().documents;
        assert_eq!(a, b);
    }

    #[test]
    fn an_oversized_document_is_refused_with_its_index() {
        let limits = SizeLimits {
            max_bson_object_size: 1000,
            ..SizeLimits::default()
        };
        let docs = vec![raw(doc! {"_id": 0}), raw(doc! {"s": "x".repeat(2000)})];
        let err = Insert::new("db", "c", docs, true)
            .build(&conn(limits))
            .unwrap_err();
        assert!(err.to_string().contains("document 1"), "{err}");
    }

    #[test]
    fn update_counts_exclude_the_upsert_and_multi_is_not_retryable() {
        let mut op = Update::new("db", "c", doc! {}, doc! {"$set": {"a": 1}}, false, true);
        assert!(op.is_retryable());
        let out = op
            .handle_reply(
                doc! {"ok": 1, "n": 1, "nModified": 0, "upserted": [{"index": 0, "_id": 9}]},
                &conn(SizeLimits::default()),
            )
            .unwrap();
        let Step::Done(out) = out else { panic!("done") };
        assert_eq!((out.matched, out.modified), (0, 0));
        assert_eq!(out.upserted_id, Some(bson::Bson::Int32(9)));
        assert!(!Update::new("db", "c", doc! {}, doc! {}, true, false).is_retryable());
        assert!(!Delete::new("db", "c", doc! {}, true).is_retryable());
        assert!(Delete::new("db", "c", doc! {}, false).is_retryable());
    }
}
