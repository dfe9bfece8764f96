//! Cursor commands: `find`, `aggregate`, `listCollections`, `listIndexes` and a user's cursor
//! command open a cursor ([`OpenCursor`]), `getMore` reads the next batch, `killCursors`
//! closes it; [`CursorReply`] is what their replies carry.

use std::collections::VecDeque;
use std::time::Duration;

use bson::{Bson, Document, doc};

use super::{Command, ConnectionDescription, OpKind, Operation, Step, compact_int};
use crate::crud::{
    AggregateOptions, CursorType, FindOptions, Hint, ListCollectionsOptions, ListIndexesOptions,
    millis_bson,
};
use crate::error::{BsonExt, Error, Result};

/// A cursor reply's id, namespace and batch, the documents moved out of the reply.
#[derive(Debug)]
pub(crate) struct CursorReply {
    /// The cursor id (0: exhausted).
    pub(crate) id: i64,
    /// The id as the server sent it (some servers use int32 ids and want them back so).
    pub(crate) id_bson: Bson,
    /// `db.collection`, when the reply names it.
    pub(crate) ns: Option<(String, String)>,
    /// The batch.
    pub(crate) batch: Batch,
    /// `postBatchResumeToken` (a change stream's cursor).
    pub(crate) post_batch_resume_token: Option<Document>,
}

/// A cursor's batch. A batch the connection left undecoded (see
/// [`Operation::lazy_batch`](super::Operation::lazy_batch)) is one copy of the reply's batch
/// array plus each document's place in it, and each document is decoded when it is taken: a
/// reply packed with tiny documents costs about its own size, where a decoded `Document` tree
/// costs 12 to 30 times as much. Documents decoded up front (monitored commands, replies of
/// other operations) are kept as they are.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    docs: VecDeque<Document>,
    raw: Vec<u8>,
    /// Each raw document's offset and length in `raw` (a message is under 4 GiB).
    spans: VecDeque<(u32, u32)>,
}

impl Batch {
    /// A batch of decoded documents.
    pub(crate) fn from_docs(docs: VecDeque<Document>) -> Self {
        Batch {
            docs,
            ..Batch::default()
        }
    }

    /// A batch from the bytes of a BSON array of documents, decoded as they are taken. Every
    /// entry must be a document.
    pub(crate) fn from_raw_array(raw: Vec<u8>) -> Result<Self> {
        let mut spans = VecDeque::new();
        {
            let array = bson::RawDocument::from_bytes(&raw)
                .map_err(|e| Error::invalid_reply(format!("undecodable batch: {e}")))?;
            let base = raw.as_ptr() as usize;
            for element in array {
                let (_, value) =
                    element.map_err(|e| Error::invalid_reply(format!("undecodable batch: {e}")))?;
                let bson::RawBsonRef::Document(d) = value else {
                    return Err(Error::invalid_reply("a batch entry is not a document"));
                };
                let bytes = d.as_bytes();
                let span = u32::try_from(bytes.as_ptr() as usize - base)
                    .ok()
                    .zip(u32::try_from(bytes.len()).ok())
                    .ok_or_else(|| Error::invalid_reply("batch too large"))?;
                spans.push_back(span);
            }
        }
        Ok(Batch {
            docs: VecDeque::new(),
            raw,
            spans,
        })
    }

    /// How many documents are left.
    pub(crate) fn len(&self) -> usize {
        self.docs.len() + self.spans.len()
    }

    /// Whether no document is left.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the next document, decoding it if it is still raw.
    ///
    /// # Errors
    /// A document that does not decode (an invalid reply).
    pub(crate) fn pop_front(&mut self) -> Result<Option<Document>> {
        if let Some(d) = self.docs.pop_front() {
            return Ok(Some(d));
        }
        let Some((start, len)) = self.spans.pop_front() else {
            return Ok(None);
        };
        let (start, len) = (start as usize, len as usize);
        let decoded = self
            .raw
            .get(start..start.saturating_add(len))
            .ok_or_else(|| Error::invalid_reply("batch document out of range"))
            .and_then(|bytes| {
                bson::RawDocument::from_bytes(bytes)
                    .and_then(Document::try_from)
                    .map_err(|e| Error::invalid_reply(format!("undecodable batch document: {e}")))
            });
        if self.spans.is_empty() {
            self.raw = Vec::new();
            self.spans = VecDeque::new();
        }
        decoded.map(Some)
    }

    /// Every document left, decoded.
    ///
    /// # Errors
    /// As [`Batch::pop_front`].
    pub(crate) fn into_docs(mut self) -> Result<VecDeque<Document>> {
        let mut out = VecDeque::with_capacity(self.len());
        while let Some(d) = self.pop_front()? {
            out.push_back(d);
        }
        Ok(out)
    }

    /// The bytes the batch holds on the heap (raw bytes and spans; decoded documents are
    /// counted by their number only), for tests of its memory.
    #[cfg(test)]
    pub(crate) fn raw_heap_bytes(&self) -> usize {
        self.raw.capacity() + self.spans.capacity() * std::mem::size_of::<(u32, u32)>()
    }
}

impl CursorReply {
    /// Takes the cursor out of `reply`; `key` is `firstBatch` or `nextBatch`.
    pub(crate) fn parse(reply: Document, key: &str) -> Result<Self> {
        Self::parse_with(reply, key, None)
    }

    /// [`CursorReply::parse`], with the batch array the connection left undecoded, if any
    /// (the reply then has no `key`).
    pub(crate) fn parse_with(mut reply: Document, key: &str, raw: Option<Vec<u8>>) -> Result<Self> {
        let Some(Bson::Document(mut cursor)) = reply.remove("cursor") else {
            return Err(Error::invalid_reply("reply has no cursor document"));
        };
        let id_bson = cursor.remove("id").unwrap_or(Bson::Null);
        let id = id_bson
            .as_i64_lossy()
            .ok_or_else(|| Error::invalid_reply("cursor has no id"))?;
        let ns = match cursor.remove("ns") {
            Some(Bson::String(ns)) => match ns.split_once('.') {
                Some((d, c)) if !d.is_empty() && !c.is_empty() => {
                    Some((d.to_owned(), c.to_owned()))
                }
                _ => None,
            },
            _ => None,
        };
        let batch = match (raw, cursor.remove(key)) {
            (Some(raw), _) => Batch::from_raw_array(raw)?,
            (None, Some(Bson::Array(a))) => Batch::from_docs(
                a.into_iter()
                    .map(|d| match d {
                        Bson::Document(d) => Ok(d),
                        _ => Err(Error::invalid_reply("a batch entry is not a document")),
                    })
                    .collect::<Result<VecDeque<_>>>()?,
            ),
            (None, _) => Batch::default(),
        };
        let post_batch_resume_token = match cursor.remove("postBatchResumeToken") {
            Some(Bson::Document(d)) => Some(d),
            _ => None,
        };
        Ok(CursorReply {
            id,
            id_bson,
            ns,
            batch,
            post_batch_resume_token,
        })
    }
}

/// What a cursor's getMores carry besides the id: `batchSize`, `maxTimeMS` (a tailable
/// await cursor's `maxAwaitTimeMS`, or runCursorCommand's getMore `maxTimeMS`) and `comment`;
/// and whether they go out with `exhaustAllowed` (an exhaust cursor).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct GetMoreOptions {
    pub(crate) batch_size: Option<i32>,
    pub(crate) max_time: Option<Duration>,
    pub(crate) comment: Option<Bson>,
    /// An exhaust cursor: its getMores set the OP_MSG `exhaustAllowed` flag, and the server
    /// may stream the following batches without further getMores.
    pub(crate) exhaust: bool,
}

/// Inserts `key: value` when there is a value.
pub(crate) fn put(body: &mut Document, key: &str, value: Option<impl Into<Bson>>) {
    if let Some(v) = value {
        body.insert(key, v.into());
    }
}

/// Inserts `key: true` when the flag is set (a false flag is the server's default).
pub(crate) fn put_flag(body: &mut Document, key: &str, value: Option<bool>) {
    if value == Some(true) {
        body.insert(key, true);
    }
}

/// Whether a pipeline ends in a write stage (`$out`, `$merge`).
pub(crate) fn writes_output(pipeline: &[Document]) -> bool {
    pipeline
        .last()
        .and_then(|s| s.keys().next())
        .is_some_and(|k| k == "$out" || k == "$merge")
}

/// The server's code for "ns not found".
const NAMESPACE_NOT_FOUND: i32 = 26;

/// A command that opens a cursor: `find`, `aggregate` (on a collection or a database),
/// `listCollections`, `listIndexes`, or a user's cursor command. The command's body is built
/// once, by its constructor, and resent as it is on a retry. In load-balanced mode the
/// connection stays with an open cursor.
#[derive(Debug)]
pub(crate) struct OpenCursor {
    name: String,
    db: String,
    body: Document,
    kind: OpKind,
    retryable: bool,
    read_concern: bool,
    write_concern: bool,
    /// A missing namespace is an empty result (`listIndexes`).
    missing_is_empty: bool,
    /// The batch array the connection left undecoded for the last reply.
    raw_batch: Option<Vec<u8>>,
    /// `timeoutMS` applies to each iteration (`timeoutMode: iteration`): the command
    /// carries no `maxTimeMS` of it.
    pub(crate) per_iteration: bool,
    /// The `timeoutMode` the caller asked for.
    pub(crate) timeout_mode: Option<crate::crud::TimeoutMode>,
    /// A change stream's aggregate: its cursor is a tailable awaitData cursor without the
    /// command saying so (client-side operation timeouts treat it as one).
    pub(crate) change_stream: bool,
}

/// An operation that opens a cursor: [`OpenCursor`] itself, or one that wraps it (a change
/// stream's aggregate). `Client::open_cursor_with` runs every such operation through one
/// path (the `timeoutMode` / `maxAwaitTimeMS` rules, the lifetime deadline).
pub(crate) trait OpensCursor: Operation<Output = CursorReply> {
    /// The cursor-opening command it runs.
    fn opener(&mut self) -> &mut OpenCursor;
}

impl OpensCursor for OpenCursor {
    fn opener(&mut self) -> &mut OpenCursor {
        self
    }
}

impl OpenCursor {
    /// Whether the command opens a tailable cursor (`tailable: true`, or a change stream).
    pub(crate) fn is_tailable(&self) -> bool {
        self.change_stream || self.body.get_bool("tailable").unwrap_or(false)
    }

    /// Whether its getMores wait for data (`awaitData: true`, or a change stream).
    pub(crate) fn is_await_data(&self) -> bool {
        self.change_stream || self.body.get_bool("awaitData").unwrap_or(false)
    }

    /// A retryable read that takes a read concern.
    fn read(name: &str, db: &str, body: Document) -> Self {
        OpenCursor {
            name: name.to_owned(),
            db: db.to_owned(),
            body,
            kind: OpKind::Read,
            retryable: true,
            read_concern: true,
            write_concern: false,
            missing_is_empty: false,
            raw_batch: None,
            per_iteration: false,
            timeout_mode: None,
            change_stream: false,
        }
    }

    /// `find` on `db.coll` with the CRUD specification's options: a negative `limit` asks
    /// for a single batch; a `batchSize` equal to `limit` is sent as `limit + 1`, so that the
    /// server closes the cursor.
    pub(crate) fn find(db: &str, coll: &str, filter: Document, o: &FindOptions) -> Self {
        let mut body = doc! { "find": coll, "filter": filter };
        put(&mut body, "sort", o.sort.clone());
        put(&mut body, "projection", o.projection.clone());
        put(&mut body, "hint", o.hint.as_ref().map(Hint::to_bson));
        put(&mut body, "skip", o.skip.map(compact_int));
        let mut single_batch = false;
        if let Some(limit) = o.limit.filter(|l| *l != 0) {
            single_batch = limit < 0;
            body.insert("limit", compact_int(limit.saturating_abs()));
        }
        let batch_size = match (o.batch_size, o.limit) {
            (Some(b), Some(l)) if i64::from(b) == l => Some(b.saturating_add(1)),
            (b, _) => b,
        };
        put(&mut body, "batchSize", batch_size);
        if single_batch {
            body.insert("singleBatch", true);
        }
        put(&mut body, "comment", o.comment.clone());
        put(&mut body, "maxTimeMS", o.max_time.map(millis_bson));
        put(&mut body, "max", o.max.clone());
        put(&mut body, "min", o.min.clone());
        put_flag(&mut body, "returnKey", o.return_key);
        put_flag(&mut body, "showRecordId", o.show_record_id);
        match o.cursor_type {
            Some(CursorType::Tailable) => {
                body.insert("tailable", true);
            }
            Some(CursorType::TailableAwait) => {
                body.insert("tailable", true);
                body.insert("awaitData", true);
            }
            Some(CursorType::NonTailable) | None => {}
        }
        put_flag(&mut body, "noCursorTimeout", o.no_cursor_timeout);
        put_flag(&mut body, "allowPartialResults", o.allow_partial_results);
        put(&mut body, "collation", o.collation.clone());
        put(&mut body, "allowDiskUse", o.allow_disk_use);
        put(&mut body, "let", o.let_vars.clone());
        put_flag(&mut body, "rawData", o.raw_data);
        OpenCursor::read("find", db, body)
    }

    /// `aggregate` of `pipeline` on `target` (a collection name, or 1 for a database-level
    /// aggregation). A pipeline ending in `$out` or `$merge` is a write (CRUD specification,
    /// "Aggregation Pipelines with Write Stages"): it runs on the primary, takes a write
    /// concern, is not retried, and its cursor asks for no batch size.
    pub(crate) fn aggregate(
        db: &str,
        target: Bson,
        pipeline: Vec<Document>,
        o: &AggregateOptions,
    ) -> Self {
        let write = writes_output(&pipeline);
        let stages: Vec<Bson> = pipeline.into_iter().map(Bson::Document).collect();
        let mut cursor = Document::new();
        if !write {
            put(&mut cursor, "batchSize", o.batch_size);
        }
        let mut body = doc! { "aggregate": target, "pipeline": stages, "cursor": cursor };
        put(&mut body, "allowDiskUse", o.allow_disk_use);
        put(
            &mut body,
            "bypassDocumentValidation",
            o.bypass_document_validation,
        );
        put(&mut body, "collation", o.collation.clone());
        put(&mut body, "maxTimeMS", o.max_time.map(millis_bson));
        put(&mut body, "comment", o.comment.clone());
        put(&mut body, "hint", o.hint.as_ref().map(Hint::to_bson));
        put(&mut body, "let", o.let_vars.clone());
        put_flag(&mut body, "rawData", o.raw_data);
        let mut op = OpenCursor::read("aggregate", db, body);
        if write {
            op.kind = OpKind::Write;
            op.retryable = false;
            op.write_concern = true;
        }
        op
    }

    /// `listCollections` on `db` (enumerate collections): a retryable read without a read
    /// concern.
    pub(crate) fn list_collections(
        db: &str,
        filter: Option<Document>,
        o: &ListCollectionsOptions,
    ) -> Self {
        let mut cursor = Document::new();
        put(&mut cursor, "batchSize", o.batch_size);
        let mut body = doc! { "listCollections": 1, "cursor": cursor };
        put(&mut body, "filter", filter);
        put_flag(&mut body, "nameOnly", o.name_only);
        put_flag(&mut body, "authorizedCollections", o.authorized_collections);
        put(&mut body, "comment", o.comment.clone());
        let mut op = OpenCursor::read("listCollections", db, body);
        op.read_concern = false;
        op
    }

    /// `listIndexes` on `db.coll`: a retryable read without a read concern; a collection
    /// that does not exist has no indexes (an empty cursor, not an error).
    pub(crate) fn list_indexes(db: &str, coll: &str, o: &ListIndexesOptions) -> Self {
        let mut cursor = Document::new();
        put(&mut cursor, "batchSize", o.batch_size);
        let mut body = doc! { "listIndexes": coll, "cursor": cursor };
        put(&mut body, "maxTimeMS", o.max_time.map(millis_bson));
        put(&mut body, "comment", o.comment.clone());
        let mut op = OpenCursor::read("listIndexes", db, body);
        op.read_concern = false;
        op.missing_is_empty = true;
        op
    }

    /// A user's cursor command (run command specification, runCursorCommand): sent as it is,
    /// never retried, no concern added.
    pub(crate) fn command(db: &str, body: Document) -> Self {
        let name = body.keys().next().cloned().unwrap_or_default();
        let mut op = OpenCursor::read(&name, db, body);
        op.kind = OpKind::Command;
        op.retryable = false;
        op.read_concern = false;
        op
    }
}

impl Operation for OpenCursor {
    type Output = CursorReply;

    fn kind(&self) -> OpKind {
        self.kind
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn is_retryable(&self) -> bool {
        self.retryable
    }

    fn takes_read_concern(&self) -> bool {
        self.read_concern
    }

    fn takes_write_concern(&self) -> bool {
        self.write_concern
    }

    fn write_uses_read_preference(&self) -> bool {
        // An aggregate with `$out` / `$merge` (CRUD spec, "Read preferences and server
        // selection"): 5.0+ secondaries run it.
        self.kind == OpKind::Write
    }

    fn build(&mut self, _conn: &ConnectionDescription) -> Result<Command> {
        if self.body.is_empty() {
            return Err(Error::invalid_argument("empty command"));
        }
        Ok(Command::new(self.db.clone(), self.body.clone()))
    }

    fn lazy_batch(&self) -> Option<&'static str> {
        Some("firstBatch")
    }

    fn set_raw_batch(&mut self, array: Vec<u8>) {
        self.raw_batch = Some(array);
    }

    fn handle_reply(
        &mut self,
        reply: Document,
        _: &ConnectionDescription,
    ) -> Result<Step<CursorReply>> {
        CursorReply::parse_with(reply, "firstBatch", self.raw_batch.take()).map(Step::Done)
    }

    fn handle_error(&mut self, error: Error) -> Result<CursorReply> {
        if self.missing_is_empty && error.code() == Some(NAMESPACE_NOT_FOUND) {
            return Ok(CursorReply {
                id: 0,
                id_bson: Bson::Int64(0),
                ns: None,
                batch: Batch::default(),
                post_batch_resume_token: None,
            });
        }
        Err(error)
    }

    fn keeps_session(&self, output: &CursorReply) -> bool {
        output.id != 0
    }

    fn sends_max_time(&self) -> bool {
        !self.per_iteration && (!self.is_tailable() || self.is_await_data())
    }

    fn pins_connection(&self, output: &CursorReply) -> bool {
        output.id != 0
    }
}

/// `getMore`: the next batch of an open cursor, on the cursor's server (or pinned
/// connection). Not retryable under the retryable reads rules (a cursor lives on one
/// server); the executor retries it there on overload errors (client backpressure spec).
#[derive(Debug)]
pub(crate) struct GetMore {
    db: String,
    coll: String,
    id: Bson,
    options: GetMoreOptions,
    /// The batch array the connection left undecoded for the last reply.
    raw_batch: Option<Vec<u8>>,
}

impl GetMore {
    pub(crate) fn new(db: &str, coll: &str, id: Bson, options: GetMoreOptions) -> Self {
        GetMore {
            db: db.to_owned(),
            coll: coll.to_owned(),
            id,
            options,
            raw_batch: None,
        }
    }
}

impl Operation for GetMore {
    type Output = CursorReply;

    fn kind(&self) -> OpKind {
        OpKind::Read
    }

    fn name(&self) -> &str {
        "getMore"
    }

    fn sends_max_time(&self) -> bool {
        false
    }

    fn caps_max_time(&self) -> bool {
        true
    }

    fn build(&mut self, conn: &ConnectionDescription) -> Result<Command> {
        let mut body = doc! { "getMore": self.id.clone(), "collection": self.coll.clone() };
        put(&mut body, "batchSize", self.options.batch_size);
        put(
            &mut body,
            "maxTimeMS",
            self.options.max_time.map(millis_bson),
        );
        // getMore takes a comment from server 4.4 (wire version 9) on.
        if conn.max_wire_version >= 9 {
            put(&mut body, "comment", self.options.comment.clone());
        }
        Ok(Command::new(self.db.clone(), body))
    }

    fn lazy_batch(&self) -> Option<&'static str> {
        Some("nextBatch")
    }

    fn exhaust_allowed(&self) -> bool {
        self.options.exhaust
    }

    fn set_raw_batch(&mut self, array: Vec<u8>) {
        self.raw_batch = Some(array);
    }

    fn handle_reply(
        &mut self,
        reply: Document,
        _: &ConnectionDescription,
    ) -> Result<Step<CursorReply>> {
        CursorReply::parse_with(reply, "nextBatch", self.raw_batch.take()).map(Step::Done)
    }
}

/// `killCursors` for one cursor, on its server (or pinned connection).
#[derive(Debug)]
pub(crate) struct KillCursors {
    db: String,
    coll: String,
    id: Bson,
}

impl KillCursors {
    pub(crate) fn new(db: &str, coll: &str, id: Bson) -> Self {
        KillCursors {
            db: db.to_owned(),
            coll: coll.to_owned(),
            id,
        }
    }
}

impl Operation for KillCursors {
    type Output = ();

    fn kind(&self) -> OpKind {
        OpKind::Read
    }

    fn name(&self) -> &str {
        "killCursors"
    }

    fn build(&mut self, _conn: &ConnectionDescription) -> Result<Command> {
        Ok(Command::new(
            self.db.clone(),
            doc! { "killCursors": self.coll.clone(), "cursors": [self.id.clone()] },
        ))
    }

    fn handle_reply(&mut self, _reply: Document, _: &ConnectionDescription) -> Result<Step<()>> {
        Ok(Step::Done(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_replies_move_their_documents_and_keep_the_id_type() {
        let reply = doc! {"ok": 1, "cursor": {"id": 5_i32, "ns": "db.c", "firstBatch": [{"a": 1}, {"a": 2}]}};
        let c = CursorReply::parse(reply, "firstBatch").unwrap();
        assert_eq!(c.id, 5);
        assert_eq!(c.id_bson, Bson::Int32(5));
        assert_eq!(c.ns, Some(("db".to_owned(), "c".to_owned())));
        assert_eq!(c.batch.len(), 2);
    }

    #[test]
    fn malformed_cursor_replies_are_typed_errors() {
        for bad in [
            doc! {"ok": 1},
            doc! {"ok": 1, "cursor": {"firstBatch": []}},
            doc! {"ok": 1, "cursor": {"id": 0, "firstBatch": [1]}},
        ] {
            assert!(CursorReply::parse(bad, "firstBatch").is_err());
        }
        // A namespace without a dot is ignored, not an error.
        let c = CursorReply::parse(
            doc! {"ok": 1, "cursor": {"id": 0_i64, "ns": "nodot", "nextBatch": []}},
            "nextBatch",
        )
        .unwrap();
        assert_eq!(c.ns, None);
    }

    #[test]
    fn only_open_cursors_pin_their_connection() {
        let find = OpenCursor::find("db", "c", doc! {}, &FindOptions::default());
        let open = CursorReply::parse(
            doc! {"cursor": {"id": 3_i64, "firstBatch": []}},
            "firstBatch",
        )
        .unwrap();
        let closed = CursorReply::parse(
            doc! {"cursor": {"id": 0_i64, "firstBatch": []}},
            "firstBatch",
        )
        .unwrap();
        assert!(find.pins_connection(&open) && find.keeps_session(&open));
        assert!(!find.pins_connection(&closed) && !find.keeps_session(&closed));
    }

    fn conn(max_wire_version: i32) -> ConnectionDescription {
        ConnectionDescription {
            address: mongo_events::ServerAddress::tcp("a", 1),
            server_type: mongo_events::ServerType::RsPrimary,
            max_wire_version,
            limits: mongo_wire::SizeLimits::default(),
            service_id: None,
            logical_session_timeout_minutes: Some(30),
        }
    }

    #[test]
    fn find_sends_every_option_under_the_server_names() {
        let o: FindOptions = bson::deserialize_from_document(doc! {
            "sort": {"a": 1}, "projection": {"b": 0}, "hint": "a_1", "skip": 2, "limit": 5,
            "batchSize": 5, "comment": "c", "maxTimeMS": 10, "max": {"a": 9}, "min": {"a": 0},
            "returnKey": true, "showRecordId": true, "cursorType": "tailableAwait",
            "noCursorTimeout": true, "allowPartialResults": true, "collation": {"locale": "fr"},
            "allowDiskUse": false, "let": {"v": 1}, "rawData": true,
        })
        .unwrap();
        let mut op = OpenCursor::find("db", "c", doc! {"x": 1}, &o);
        assert_eq!(
            op.build(&conn(21)).unwrap().body,
            doc! {
                "find": "c", "filter": {"x": 1}, "sort": {"a": 1}, "projection": {"b": 0},
                "hint": "a_1", "skip": 2, "limit": 5, "batchSize": 6, "comment": "c",
                "maxTimeMS": 10, "max": {"a": 9}, "min": {"a": 0}, "returnKey": true,
                "showRecordId": true, "tailable": true, "awaitData": true,
                "noCursorTimeout": true, "allowPartialResults": true,
                "collation": {"locale": "fr"}, "allowDiskUse": false, "let": {"v": 1},
                "rawData": true,
            }
        );
        assert_eq!(op.kind(), OpKind::Read);
        assert!(op.is_retryable() && op.takes_read_concern() && !op.takes_write_concern());
    }

    #[test]
    fn an_aggregate_that_writes_is_a_write() {
        let o = AggregateOptions::default().batch_size(3);
        let read = OpenCursor::aggregate("db", Bson::from("c"), vec![doc! {"$match": {}}], &o);
        assert_eq!(read.kind(), OpKind::Read);
        assert!(read.is_retryable() && !read.takes_write_concern());
        assert_eq!(
            read.body.get_document("cursor").unwrap(),
            &doc! {"batchSize": 3}
        );
        for stage in [doc! {"$out": "o"}, doc! {"$merge": {"into": "o"}}] {
            let w =
                OpenCursor::aggregate("db", Bson::from("c"), vec![doc! {"$match": {}}, stage], &o);
            assert_eq!(w.kind(), OpKind::Write);
            assert!(!w.is_retryable() && w.takes_write_concern() && w.takes_read_concern());
            assert_eq!(w.body.get_document("cursor").unwrap(), &doc! {});
        }
        let db = OpenCursor::aggregate("db", Bson::Int32(1), vec![], &AggregateOptions::default());
        assert_eq!(db.body.get("aggregate"), Some(&Bson::Int32(1)));
    }

    #[test]
    fn enumeration_cursors_take_no_read_concern_and_missing_indexes_are_empty() {
        let lc = OpenCursor::list_collections(
            "db",
            Some(doc! {"name": "x"}),
            &ListCollectionsOptions::default()
                .name_only(true)
                .batch_size(2),
        );
        assert!(lc.is_retryable() && !lc.takes_read_concern());
        assert_eq!(
            lc.body,
            doc! {"listCollections": 1, "cursor": {"batchSize": 2}, "filter": {"name": "x"},
            "nameOnly": true}
        );
        let mut li = OpenCursor::list_indexes("db", "c", &ListIndexesOptions::default());
        assert!(li.is_retryable() && !li.takes_read_concern());
        let missing = Error::from_reply(&doc! {"ok": 0, "code": 26, "errmsg": "ns does not exist"});
        let empty = li.handle_error(missing).unwrap();
        assert_eq!((empty.id, empty.batch.len()), (0, 0));
        let other = Error::from_reply(&doc! {"ok": 0, "code": 13, "errmsg": "no"});
        assert!(li.handle_error(other).is_err());
        let mut find = OpenCursor::find("db", "c", doc! {}, &FindOptions::default());
        let missing = Error::from_reply(&doc! {"ok": 0, "code": 26, "errmsg": "ns does not exist"});
        assert!(find.handle_error(missing).is_err());
        let cmd = OpenCursor::command("db", doc! {"find": "c"});
        assert_eq!(cmd.kind(), OpKind::Command);
        assert!(!cmd.is_retryable() && !cmd.takes_read_concern());
        assert!(OpenCursor::command("db", doc! {}).build(&conn(21)).is_err());
    }

    #[test]
    fn get_mores_carry_their_options_and_a_comment_from_4_4_on() {
        let options = GetMoreOptions {
            batch_size: Some(4),
            max_time: Some(Duration::from_millis(250)),
            comment: Some(Bson::from("c")),
            exhaust: false,
        };
        let mut op = GetMore::new("db", "c", Bson::Int64(7), options);
        assert_eq!(
            op.build(&conn(9)).unwrap().body,
            doc! {"getMore": 7_i64, "collection": "c", "batchSize": 4, "maxTimeMS": 250,
            "comment": "c"}
        );
        assert!(!op.build(&conn(8)).unwrap().body.contains_key("comment"));
    }
}
