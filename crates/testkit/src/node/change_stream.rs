//! Change streams: `aggregate` with a first `$changeStream` stage on a collection, a database
//! (`aggregate: 1`) or the deployment (`allChangesForCluster` on admin), and the `getMore`s
//! of its tailable, awaitData cursor. Events come from the store's replication log
//! (`crate::oplog`) in mongod's shapes; the stages after `$changeStream` run on each event.
//!
//! Resume tokens are `{_data: <hex>}`: a version byte, the entry's cluster time, its
//! sequence number in the log and a kind (a high-water mark, an event, or the invalidate that
//! follows an event). They sort as mongod's do: by cluster time, then position.

use std::collections::VecDeque;

use bson::{Bson, Document, Timestamp, doc};

use super::args::{non_negative, ok, opt_doc};
use super::reads::DEFAULT_BATCH;
use super::{Cursor, Node};
use crate::error::{CmdResult, CommandError, codes};
use crate::oplog::{Entry, Op, uuid_bson};
use crate::query;
use crate::topology::Role;

/// ChangeStreamFatalError.
const FATAL: i32 = 280;
/// ChangeStreamHistoryLost.
const HISTORY_LOST: i32 = 286;
/// InvalidResumeToken.
const INVALID_RESUME_TOKEN: i32 = 260;
/// NoMatchingDocument (a required pre- or post-image is missing).
const NO_MATCHING_DOCUMENT: i32 = 47;
/// InvalidNamespace.
const INVALID_NAMESPACE: i32 = 73;
/// How many log entries one poll reads at most.
const SCAN: usize = 10_000;
/// The awaitData wait of a getMore without maxTimeMS, as mongod's.
pub(crate) const DEFAULT_AWAIT_MS: u64 = 1000;

/// The stages mongod allows after `$changeStream`.
const ALLOWED_STAGES: &[&str] = &[
    "$match",
    "$project",
    "$addFields",
    "$set",
    "$unset",
    "$replaceRoot",
    "$replaceWith",
];

/// What a change stream watches.
#[derive(Debug, Clone, PartialEq)]
enum Scope {
    Collection { db: String, coll: String },
    Database { db: String },
    Cluster,
}

/// The `fullDocument` option.
#[derive(Debug, Clone, Copy, PartialEq)]
enum FullDocument {
    Default,
    UpdateLookup,
    WhenAvailable,
    Required,
}

/// The `fullDocumentBeforeChange` option.
#[derive(Debug, Clone, Copy, PartialEq)]
enum BeforeChange {
    Off,
    WhenAvailable,
    Required,
}

/// Where a token says a stream goes on.
#[derive(Debug, Clone, Copy, PartialEq)]
enum TokenKind {
    /// Everything from `seq` on.
    HighWaterMark,
    /// After the event of entry `seq` (its invalidate, if it has one, is still to come).
    Event,
    /// After the invalidate that followed entry `seq`.
    Invalidate,
}

/// A decoded resume token.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Token {
    ts: Timestamp,
    seq: u64,
    kind: TokenKind,
}

impl Token {
    fn to_doc(self) -> Document {
        let kind = match self.kind {
            TokenKind::HighWaterMark => 0u8,
            TokenKind::Event => 1,
            TokenKind::Invalidate => 2,
        };
        let data = format!(
            "82{:08X}{:08X}{:016X}{kind:02X}",
            self.ts.time, self.ts.increment, self.seq
        );
        doc! { "_data": data }
    }

    fn parse(token: &Bson) -> CmdResult<Token> {
        let bad = || {
            CommandError::new(
                INVALID_RESUME_TOKEN,
                "InvalidResumeToken",
                format!("Bad resume token: {token}"),
            )
        };
        let data = match token {
            Bson::Document(d) => d.get_str("_data").map_err(|_| bad())?,
            _ => return Err(bad()),
        };
        if data.len() != 36 || !data.is_ascii() || !data.starts_with("82") {
            return Err(bad());
        }
        let hex = |range: std::ops::Range<usize>| {
            data.get(range)
                .and_then(|s| u64::from_str_radix(s, 16).ok())
                .ok_or_else(bad)
        };
        let time = u32::try_from(hex(2..10)?).map_err(|_| bad())?;
        let increment = u32::try_from(hex(10..18)?).map_err(|_| bad())?;
        let seq = hex(18..34)?;
        let kind = match hex(34..36)? {
            0 => TokenKind::HighWaterMark,
            1 => TokenKind::Event,
            2 => TokenKind::Invalidate,
            _ => return Err(bad()),
        };
        Ok(Token {
            ts: Timestamp { time, increment },
            seq,
            kind,
        })
    }
}

/// A change stream cursor's state.
#[derive(Debug)]
pub(super) struct Stream {
    scope: Scope,
    full_document: FullDocument,
    before_change: BeforeChange,
    expanded: bool,
    stages: Vec<Bson>,
    ctx: query::QueryCtx,
    /// The next log entry to read.
    next: u64,
    /// Read entry `next` only for the invalidate that follows its event.
    only_invalidate: bool,
    /// Entries before this cluster time are skipped (`startAtOperationTime`).
    min_ts: Option<Timestamp>,
    /// Events read and not yet returned.
    buffer: VecDeque<Document>,
    /// The stream was invalidated: it ends once the buffer is returned.
    invalidated: bool,
    /// The latest postBatchResumeToken.
    resume_token: Document,
    /// An event the stream failed on: every later read reports it (the getMore that reads
    /// it after a waiting getMore found it).
    failed: Option<CommandError>,
}

impl Node {
    /// `aggregate` whose first stage is `$changeStream` (`arg`), `stages` the rest.
    pub(super) fn change_stream(
        &self,
        db: &str,
        coll: Option<&str>,
        arg: &Bson,
        stages: &[Bson],
        cmd: &Document,
    ) -> CmdResult<Document> {
        if self.topology.role(self.member) == Role::Standalone {
            return Err(CommandError::new(
                40573,
                "Location40573",
                "The $changeStream stage is only supported on replica sets",
            ));
        }
        let Bson::Document(spec) = arg else {
            return Err(CommandError::new(
                50808,
                "Location50808",
                "$changeStream stage expects a document as argument",
            ));
        };
        let mut full_document = FullDocument::Default;
        let mut before_change = BeforeChange::Off;
        let mut expanded = false;
        let mut cluster = false;
        let mut start: Option<(&str, &Bson)> = None;
        for (k, v) in spec {
            match k.as_str() {
                "fullDocument" => {
                    full_document = match v.as_str() {
                        Some("default") => FullDocument::Default,
                        Some("updateLookup") => FullDocument::UpdateLookup,
                        Some("whenAvailable") => FullDocument::WhenAvailable,
                        Some("required") => FullDocument::Required,
                        _ => return Err(bad_enum(k, v)),
                    }
                }
                "fullDocumentBeforeChange" => {
                    before_change = match v.as_str() {
                        Some("off") => BeforeChange::Off,
                        Some("whenAvailable") => BeforeChange::WhenAvailable,
                        Some("required") => BeforeChange::Required,
                        _ => return Err(bad_enum(k, v)),
                    }
                }
                "showExpandedEvents" => expanded = bool_arg(k, v)?,
                "allChangesForCluster" => cluster = bool_arg(k, v)?,
                "resumeAfter" | "startAfter" | "startAtOperationTime" => {
                    if start.is_some() {
                        return Err(CommandError::new(
                            40674,
                            "Location40674",
                            "Only one type of resume option is allowed, but multiple were found.",
                        ));
                    }
                    start = Some((k.as_str(), v));
                }
                // Options mongod takes that change nothing here.
                "allowToRunOnConfigDB"
                | "allowToRunOnSystemNS"
                | "showSystemEvents"
                | "showMigrationEvents"
                | "showRawUpdateDescription" => {}
                other => {
                    return Err(CommandError::new(
                        40415,
                        "Location40415",
                        format!("BSON field '$changeStream.{other}' is an unknown field."),
                    ));
                }
            }
        }
        let scope = scope_of(db, coll, cluster)?;
        if crate::txn::current_view(&self.store).is_some() {
            return Err(CommandError::new(
                263,
                "OperationNotSupportedInTransaction",
                "Operation not permitted in transaction :: caused by :: $changeStream",
            ));
        }
        if let Some(c) = coll
            && self.view_of(db, c).is_some()
        {
            return Err(CommandError::new(
                codes::COMMAND_NOT_SUPPORTED_ON_VIEW,
                "CommandNotSupportedOnView",
                format!("Namespace {db}.{c} is a view, not a collection"),
            ));
        }
        let ctx = query::QueryCtx::of_command(cmd)?;
        check_stages(stages, &ctx)?;
        let batch = match opt_doc(cmd, "cursor")? {
            Some(c) => non_negative(c, "batchSize")?.unwrap_or(DEFAULT_BATCH),
            None => {
                return Err(CommandError::failed_to_parse(
                    "The 'cursor' option is required, except for aggregate with the explain argument",
                ));
            }
        };
        let oplog = &self.store.oplog;
        let mut stream = Stream {
            scope,
            full_document,
            before_change,
            expanded,
            stages: stages.to_vec(),
            ctx,
            next: oplog.next_seq(),
            only_invalidate: false,
            min_ts: None,
            buffer: VecDeque::new(),
            invalidated: false,
            resume_token: Document::new(),
            failed: None,
        };
        match start {
            None => {}
            Some(("startAtOperationTime", v)) => {
                let Bson::Timestamp(ts) = v else {
                    return Err(CommandError::type_mismatch(
                        "BSON field '$changeStream.startAtOperationTime' is the wrong type, expected type 'timestamp'",
                    ));
                };
                if oplog.first_seq() > 1 && oplog.first_ts().is_some_and(|f| older(*ts, f)) {
                    return Err(history_lost());
                }
                stream.next = oplog.seq_at(*ts);
                stream.min_ts = Some(*ts);
            }
            Some((option, v)) => {
                let token = Token::parse(v)?;
                self.check_resume(&token, option)?;
                stream.resume_token = token.to_doc();
                match token.kind {
                    TokenKind::HighWaterMark => stream.next = token.seq,
                    TokenKind::Event => {
                        stream.next = token.seq;
                        stream.only_invalidate = true;
                    }
                    TokenKind::Invalidate => stream.next = token.seq + 1,
                }
            }
        }
        let ns = match &stream.scope {
            Scope::Collection { db, coll } => format!("{db}.{coll}"),
            Scope::Database { db } => format!("{db}.$cmd.aggregate"),
            Scope::Cluster => "admin.$cmd.aggregate".to_owned(),
        };
        self.poll(&mut stream)?;
        let (first, token, done) = self.take_batch(&mut stream, batch);
        let id = if done {
            0
        } else {
            self.new_cursor_id(Cursor {
                ns: ns.clone(),
                docs: VecDeque::new(),
                tail: None,
                stream: Some(Box::new(stream)),
            })
        };
        Ok(ok(doc! {
            "cursor": { "firstBatch": first, "postBatchResumeToken": token, "id": id, "ns": ns },
        }))
    }

    /// mongod's checks of a resume token: it must still be in the log, name an entry that is
    /// there, and `resumeAfter` cannot follow an invalidate.
    fn check_resume(&self, token: &Token, option: &str) -> CmdResult<()> {
        if token.kind == TokenKind::Invalidate && option == "resumeAfter" {
            return Err(CommandError::new(
                INVALID_RESUME_TOKEN,
                "InvalidResumeToken",
                "Attempting to resume a change stream using 'resumeAfter' is not allowed from an \
                 invalidate notification.",
            ));
        }
        let oplog = &self.store.oplog;
        if token.seq < oplog.first_seq() {
            return Err(history_lost());
        }
        if token.kind == TokenKind::HighWaterMark {
            return Ok(());
        }
        match oplog.get(token.seq) {
            Some(e) if e.ts == token.ts => Ok(()),
            _ => Err(CommandError::new(
                FATAL,
                "ChangeStreamFatalError",
                "cannot resume stream; the resume token was not found.",
            )
            .labelled()),
        }
    }

    /// Reads the log from the stream's position into its buffer (stops at an invalidate).
    fn poll(&self, stream: &mut Stream) -> CmdResult<()> {
        if let Some(e) = &stream.failed {
            return Err(e.clone());
        }
        let read = self.read_log(stream);
        if let Err(e) = &read {
            stream.failed = Some(e.clone());
        }
        read
    }

    fn read_log(&self, stream: &mut Stream) -> CmdResult<()> {
        if stream.invalidated {
            return Ok(());
        }
        loop {
            let entries = self.store.oplog.read_from(stream.next, SCAN);
            let Some(last) = entries.last().map(|e| e.seq) else {
                return Ok(());
            };
            for e in entries {
                let only_invalidate = stream.only_invalidate && e.seq == stream.next;
                stream.only_invalidate = false;
                stream.next = e.seq + 1;
                if stream.min_ts.is_some_and(|min| older(e.ts, min)) {
                    continue;
                }
                let (event, invalidate) = self.events_of(stream, &e)?;
                for raw in event
                    .filter(|_| !only_invalidate)
                    .into_iter()
                    .chain(invalidate.clone())
                {
                    self.push_event(stream, raw)?;
                }
                if invalidate.is_some() {
                    stream.invalidated = true;
                    return Ok(());
                }
            }
            if last + 1 >= self.store.oplog.next_seq() {
                return Ok(());
            }
        }
    }

    /// Runs the stream's stages on one event and keeps what comes out.
    fn push_event(&self, stream: &mut Stream, raw: Document) -> CmdResult<()> {
        let id = raw.get("_id").cloned();
        for out in query::run_pipeline_in(vec![raw], &stream.stages, &stream.ctx)? {
            if out.get("_id") != id.as_ref() {
                return Err(CommandError::new(
                    FATAL,
                    "ChangeStreamFatalError",
                    "Encountered an event whose _id field, which contains the resume token, was \
                     modified by the pipeline. Modifying the _id field of an event makes it \
                     impossible to resume the stream from that point. Only transformations that \
                     retain the unmodified _id field are allowed.",
                )
                .labelled());
            }
            stream.buffer.push_back(out);
        }
        Ok(())
    }

    /// Takes a batch from the buffer: the documents, the postBatchResumeToken, and whether
    /// the stream has ended (the cursor closes).
    fn take_batch(&self, stream: &mut Stream, batch: usize) -> (Vec<Bson>, Document, bool) {
        let n = batch.min(stream.buffer.len());
        let docs: Vec<Document> = stream.buffer.drain(..n).collect();
        if let Some(last) = docs.last().and_then(|d| d.get_document("_id").ok()) {
            stream.resume_token = last.clone();
        }
        if stream.buffer.is_empty() && !stream.invalidated {
            // Everything read: the high-water mark is where the next read starts.
            stream.resume_token = Token {
                ts: self.store.cluster_time(),
                seq: stream.next,
                kind: TokenKind::HighWaterMark,
            }
            .to_doc();
        }
        let done = stream.invalidated && stream.buffer.is_empty();
        (
            docs.into_iter().map(Bson::Document).collect(),
            stream.resume_token.clone(),
            done,
        )
    }

    /// The getMore of a change stream cursor (`cursor` is checked out of the table).
    pub(super) fn change_stream_get_more(
        &self,
        stream: &mut Stream,
        batch: usize,
    ) -> CmdResult<(Vec<Bson>, Document, bool)> {
        self.poll(stream)?;
        Ok(self.take_batch(stream, if batch == 0 { usize::MAX } else { batch }))
    }

    /// For a `getMore` on a change stream cursor: whether it has events to return now
    /// (reading the log), `None` when the command is no such getMore.
    pub(crate) fn change_stream_ready(&self, db: &str, cmd: &Document) -> Option<bool> {
        let id = match cmd.get("getMore")? {
            Bson::Int64(v) => *v,
            Bson::Int32(v) => i64::from(*v),
            _ => return None,
        };
        let coll = cmd.get_str("collection").ok()?;
        let ns = format!("{db}.{coll}");
        let mut cursors = self.cursors.lock();
        let cursor = cursors.get_mut(&id).filter(|c| c.ns == ns)?;
        let stream = cursor.stream.as_mut()?;
        // An error is the getMore's to report: answer now.
        Some(self.poll(stream).is_err() || !stream.buffer.is_empty() || stream.invalidated)
    }

    /// The event of one log entry for this stream, and the invalidate that follows it.
    fn events_of(
        &self,
        stream: &Stream,
        e: &Entry,
    ) -> CmdResult<(Option<Document>, Option<Document>)> {
        if !relevant(stream, e) {
            return Ok((None, None));
        }
        let invalidates = match &stream.scope {
            Scope::Collection { .. } => e.op.invalidates_collection(),
            Scope::Database { db } => matches!(e.op, Op::DropDatabase) && e.db == *db,
            Scope::Cluster => false,
        };
        let event = self.render(stream, e)?;
        let invalidate = invalidates.then(|| {
            doc! {
                "_id": Token { ts: e.ts, seq: e.seq, kind: TokenKind::Invalidate }.to_doc(),
                "operationType": "invalidate",
                "clusterTime": e.ts,
                "wallTime": e.wall,
            }
        });
        Ok((event, invalidate))
    }

    /// One entry as mongod's change event, `None` for what the stream does not show.
    fn render(&self, stream: &Stream, e: &Entry) -> CmdResult<Option<Document>> {
        let (op_type, expanded_only) = match &e.op {
            Op::Insert { .. } => ("insert", false),
            Op::Update { .. } => ("update", false),
            Op::Replace { .. } => ("replace", false),
            Op::Delete { .. } => ("delete", false),
            Op::Drop => ("drop", false),
            Op::Rename { .. } => ("rename", false),
            Op::DropDatabase => ("dropDatabase", false),
            Op::Create { .. } => ("create", true),
            Op::CreateIndexes { .. } => ("createIndexes", true),
            Op::DropIndexes { .. } => ("dropIndexes", true),
            Op::Modify { .. } => ("modify", true),
            Op::ShardCollection { .. } => ("shardCollection", true),
        };
        if expanded_only && !stream.expanded {
            return Ok(None);
        }
        let mut d = doc! {
            "_id": Token { ts: e.ts, seq: e.seq, kind: TokenKind::Event }.to_doc(),
            "operationType": op_type,
            "clusterTime": e.ts,
            "wallTime": e.wall,
        };
        let is_view = matches!(&e.op, Op::Create { options } if options.contains_key("viewOn"));
        if stream.expanded
            && !is_view
            && let Some(uuid) = &e.uuid
        {
            d.insert("collectionUUID", uuid_bson(uuid));
        }
        let ns = if e.coll.is_empty() {
            doc! { "db": e.db.clone() }
        } else {
            doc! { "db": e.db.clone(), "coll": e.coll.clone() }
        };
        let key = |doc: &Document| document_key(doc, e.shard_key.as_ref());
        match &e.op {
            Op::Insert { doc } => {
                d.insert("fullDocument", doc.clone());
                d.insert("ns", ns);
                d.insert("documentKey", key(doc));
            }
            Op::Update {
                before,
                after,
                images,
            } => {
                d.insert("ns", ns);
                d.insert("documentKey", key(after));
                d.insert(
                    "updateDescription",
                    describe_update(before, after, stream.expanded),
                );
                match stream.full_document {
                    FullDocument::Default => {}
                    FullDocument::UpdateLookup => {
                        let current = self.lookup(&e.db, &e.coll, after.get("_id"));
                        d.insert("fullDocument", current.map_or(Bson::Null, Bson::Document));
                    }
                    FullDocument::WhenAvailable | FullDocument::Required => {
                        let image = images.then(|| after.clone());
                        if image.is_none() && stream.full_document == FullDocument::Required {
                            return Err(missing_image("post", e));
                        }
                        d.insert("fullDocument", image.map_or(Bson::Null, Bson::Document));
                    }
                }
                pre_image(stream, &mut d, before, *images, e)?;
            }
            Op::Replace {
                before,
                after,
                images,
            } => {
                d.insert("fullDocument", after.clone());
                d.insert("ns", ns);
                d.insert("documentKey", key(after));
                pre_image(stream, &mut d, before, *images, e)?;
            }
            Op::Delete { before, images } => {
                d.insert("ns", ns);
                d.insert("documentKey", key(before));
                pre_image(stream, &mut d, before, *images, e)?;
            }
            Op::Drop | Op::DropDatabase => {
                d.insert("ns", ns);
            }
            Op::Rename {
                to_db,
                to_coll,
                drop_target,
            } => {
                let to = doc! { "db": to_db.clone(), "coll": to_coll.clone() };
                d.insert("ns", ns);
                d.insert("to", to.clone());
                if stream.expanded {
                    let mut desc = doc! { "to": to };
                    match drop_target {
                        Some(uuid) => desc.insert("dropTarget", uuid_bson(uuid)),
                        None => desc.insert("dropTarget", false),
                    };
                    d.insert("operationDescription", desc);
                }
            }
            Op::Create { options } => {
                d.insert("ns", ns);
                let mut desc = Document::new();
                if !is_view {
                    desc.insert(
                        "idIndex",
                        doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" },
                    );
                }
                desc.extend(options.clone());
                d.insert("operationDescription", desc);
                let ns_type = if is_view {
                    "view"
                } else if options.contains_key("timeseries") {
                    "timeseries"
                } else {
                    "collection"
                };
                d.insert("nsType", ns_type);
            }
            Op::CreateIndexes { indexes } | Op::DropIndexes { indexes } => {
                d.insert("ns", ns);
                d.insert("operationDescription", doc! { "indexes": indexes.clone() });
            }
            Op::Modify { changes, before } => {
                d.insert("ns", ns);
                d.insert("operationDescription", changes.clone());
                d.insert(
                    "stateBeforeChange",
                    doc! { "collectionOptions": before.clone() },
                );
            }
            Op::ShardCollection { description } => {
                d.insert("ns", ns);
                d.insert("operationDescription", description.clone());
            }
        }
        if let Some(txn) = &e.txn {
            d.insert("lsid", txn.lsid.clone());
            d.insert("txnNumber", txn.txn_number);
        }
        Ok(Some(d))
    }

    /// The current version of a document (`fullDocument: updateLookup`).
    fn lookup(&self, db: &str, coll: &str, id: Option<&Bson>) -> Option<Document> {
        let id = crate::store::id_key(id?);
        self.store.with_coll(db, coll, false, |c| {
            c?.docs
                .iter()
                .find(|d| d.get("_id").is_some_and(|v| crate::store::id_key(v) == id))
                .cloned()
        })
    }
}

/// A document's `documentKey`: the fields of its collection's shard key (when sharded),
/// then `_id`.
fn document_key(doc: &Document, shard_key: Option<&Document>) -> Document {
    let mut key = Document::new();
    for field in shard_key.into_iter().flat_map(Document::keys) {
        if field != "_id" {
            let v = query::lookup(doc, field)
                .first()
                .map_or(Bson::Null, |v| (*v).clone());
            key.insert(field.clone(), v);
        }
    }
    key.insert("_id", doc.get("_id").cloned().unwrap_or(Bson::Null));
    key
}

/// Adds `fullDocumentBeforeChange` as the stream asks.
fn pre_image(
    stream: &Stream,
    d: &mut Document,
    before: &Document,
    images: bool,
    e: &Entry,
) -> CmdResult<()> {
    match stream.before_change {
        BeforeChange::Off => {}
        BeforeChange::WhenAvailable => {
            let image = images.then(|| Bson::Document(before.clone()));
            d.insert("fullDocumentBeforeChange", image.unwrap_or(Bson::Null));
        }
        BeforeChange::Required => {
            if !images {
                return Err(missing_image("pre", e));
            }
            d.insert("fullDocumentBeforeChange", before.clone());
        }
    }
    Ok(())
}

fn missing_image(which: &str, e: &Entry) -> CommandError {
    CommandError::new(
        NO_MATCHING_DOCUMENT,
        "NoMatchingDocument",
        format!(
            "Change stream was configured to require a {which}-image for all update, delete and \
             replace events, but the {which}-image was not found for event on {}.{} at {:?}",
            e.db, e.coll, e.ts
        ),
    )
}

/// Whether a log entry concerns the stream's namespace (system collections and the
/// internal databases never do).
fn relevant(stream: &Stream, e: &Entry) -> bool {
    let internal = |db: &str, coll: &str| {
        matches!(db, "admin" | "config" | "local") || coll.starts_with("system.")
    };
    let rename_to = match &e.op {
        Op::Rename { to_db, to_coll, .. } => Some((to_db.as_str(), to_coll.as_str())),
        _ => None,
    };
    if internal(&e.db, &e.coll) {
        return false;
    }
    match &stream.scope {
        Scope::Collection { db, coll } => {
            !matches!(e.op, Op::DropDatabase)
                && ((e.db == *db && e.coll == *coll)
                    || rename_to == Some((db.as_str(), coll.as_str())))
        }
        Scope::Database { db } => e.db == *db || rename_to.is_some_and(|(d, _)| d == db),
        Scope::Cluster => true,
    }
}

/// The namespace a change stream opened with `aggregate` on `db` / `coll` watches.
fn scope_of(db: &str, coll: Option<&str>, cluster: bool) -> CmdResult<Scope> {
    let invalid = |msg: String| CommandError::new(INVALID_NAMESPACE, "InvalidNamespace", msg);
    match (coll, cluster) {
        (_, true) if db != "admin" || coll.is_some() => Err(invalid(
            "A $changeStream with 'allChangesForCluster:true' may only be opened on the 'admin' \
             database, and with no collection name"
                .into(),
        )),
        (_, true) => Ok(Scope::Cluster),
        (_, false) if matches!(db, "admin" | "config" | "local") => Err(invalid(format!(
            "$changeStream may not be opened on the internal {db} database"
        ))),
        (Some(c), false) if c.starts_with("system.") => Err(invalid(format!(
            "$changeStream may not be opened on the internal {db}.{c} collection"
        ))),
        (Some(c), false) => Ok(Scope::Collection {
            db: db.to_owned(),
            coll: c.to_owned(),
        }),
        (None, false) => Ok(Scope::Database { db: db.to_owned() }),
    }
}

/// Checks the stages after `$changeStream`: each parses (unknown stages are 40324) and is
/// one mongod allows in a change stream.
fn check_stages(stages: &[Bson], ctx: &query::QueryCtx) -> CmdResult<()> {
    for stage in stages {
        if let Some(name) = stage.as_document().and_then(|d| d.keys().next())
            && name == "$changeStream"
        {
            return Err(not_first());
        }
    }
    query::run_pipeline_in(Vec::new(), stages, ctx)?;
    for stage in stages {
        if let Some(name) = stage.as_document().and_then(|d| d.keys().next())
            && !ALLOWED_STAGES.contains(&name.as_str())
        {
            return Err(CommandError::new(
                codes::ILLEGAL_OPERATION,
                "IllegalOperation",
                format!("{name} is not permitted in a $changeStream pipeline"),
            ));
        }
    }
    Ok(())
}

/// `$changeStream` anywhere but first.
pub(super) fn not_first() -> CommandError {
    CommandError::new(
        40602,
        "Location40602",
        "$changeStream is only valid as the first stage in a pipeline.",
    )
}

fn history_lost() -> CommandError {
    CommandError::new(
        HISTORY_LOST,
        "ChangeStreamHistoryLost",
        "Resume of change stream was not possible, as the resume point may no longer be in the \
         oplog.",
    )
    .labelled()
}

fn bad_enum(field: &str, v: &Bson) -> CommandError {
    CommandError::bad_value(format!(
        "Enumeration value '{v}' for field '$changeStream.{field}' is not a valid value."
    ))
}

fn bool_arg(field: &str, v: &Bson) -> CmdResult<bool> {
    match v {
        Bson::Boolean(b) => Ok(*b),
        _ => Err(CommandError::type_mismatch(format!(
            "BSON field '$changeStream.{field}' is the wrong type, expected type 'bool'"
        ))),
    }
}

/// Whether `a` is an earlier cluster time than `b`.
fn older(a: Timestamp, b: Timestamp) -> bool {
    (a.time, a.increment) < (b.time, b.increment)
}

impl CommandError {
    /// This error with mongod's `NonResumableChangeStreamError` label (the codes of that
    /// category: ChangeStreamFatalError, ChangeStreamHistoryLost).
    fn labelled(mut self) -> Self {
        self.labels.push("NonResumableChangeStreamError".to_owned());
        self
    }
}

/// The codes mongod labels `ResumableChangeStreamError` when a change stream's getMore fails
/// with them after its cursor was checked out.
pub(super) fn is_resumable_code(code: i32) -> bool {
    matches!(
        code,
        6 | 7
            | 89
            | 91
            | 189
            | 262
            | 9001
            | 10107
            | 11600
            | 11602
            | 13435
            | 13436
            | 63
            | 150
            | 234
            | 133
            | 43
    )
}

/// One component of a changed field's path.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Field(String),
    Index(usize),
}

/// An update's `updateDescription`: the fields set (dotted paths, into sub-documents and
/// array elements), the fields removed, the arrays truncated, and with showExpandedEvents the
/// `disambiguatedPaths` of paths whose dotted form is ambiguous (a numeric field name, or a
/// field name with a dot).
pub(crate) fn describe_update(before: &Document, after: &Document, expanded: bool) -> Document {
    let mut diff = Diff::default();
    diff.documents(&mut Vec::new(), before, after);
    let mut out = doc! {
        "updatedFields": diff.updated.iter().map(|(p, v)| (dotted(p), v.clone())).collect::<Document>(),
        "removedFields": diff.removed.iter().map(|p| Bson::String(dotted(p))).collect::<Vec<_>>(),
        "truncatedArrays": diff.truncated.iter().map(|(p, n)| {
            Bson::Document(doc! { "field": dotted(p), "newSize": i32::try_from(*n).unwrap_or(i32::MAX) })
        }).collect::<Vec<_>>(),
    };
    if expanded {
        let mut paths = Document::new();
        let all = diff
            .updated
            .iter()
            .map(|(p, _)| p)
            .chain(&diff.removed)
            .chain(diff.truncated.iter().map(|(p, _)| p));
        for p in all {
            let ambiguous = p.iter().any(|part| match part {
                Part::Field(f) => f.contains('.') || f.parse::<u64>().is_ok(),
                Part::Index(_) => false,
            });
            if ambiguous {
                let parts: Vec<Bson> = p
                    .iter()
                    .map(|part| match part {
                        Part::Field(f) => Bson::String(f.clone()),
                        Part::Index(i) => Bson::Int32(i32::try_from(*i).unwrap_or(i32::MAX)),
                    })
                    .collect();
                paths.insert(dotted(p), parts);
            }
        }
        out.insert("disambiguatedPaths", paths);
    }
    out
}

fn dotted(p: &[Part]) -> String {
    p.iter()
        .map(|part| match part {
            Part::Field(f) => f.clone(),
            Part::Index(i) => i.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

#[derive(Default)]
struct Diff {
    updated: Vec<(Vec<Part>, Bson)>,
    removed: Vec<Vec<Part>>,
    truncated: Vec<(Vec<Part>, usize)>,
}

impl Diff {
    fn documents(&mut self, path: &mut Vec<Part>, before: &Document, after: &Document) {
        for (k, new) in after {
            path.push(Part::Field(k.clone()));
            match before.get(k) {
                Some(old) => self.values(path, old, new),
                None => self.updated.push((path.clone(), new.clone())),
            }
            path.pop();
        }
        for k in before.keys() {
            if !after.contains_key(k) {
                let mut p = path.clone();
                p.push(Part::Field(k.clone()));
                self.removed.push(p);
            }
        }
    }

    fn values(&mut self, path: &mut Vec<Part>, old: &Bson, new: &Bson) {
        if old == new {
            return;
        }
        match (old, new) {
            (Bson::Document(o), Bson::Document(n)) => self.documents(path, o, n),
            (Bson::Array(o), Bson::Array(n)) => {
                if n.len() < o.len() {
                    self.truncated.push((path.clone(), n.len()));
                }
                for (i, item) in n.iter().enumerate() {
                    path.push(Part::Index(i));
                    match o.get(i) {
                        Some(prev) => self.values(path, prev, item),
                        None => self.updated.push((path.clone(), item.clone())),
                    }
                    path.pop();
                }
            }
            _ => self.updated.push((path.clone(), new.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_sort() {
        let t = Token {
            ts: Timestamp {
                time: 7,
                increment: 3,
            },
            seq: 42,
            kind: TokenKind::Event,
        };
        let d = t.to_doc();
        assert_eq!(Token::parse(&Bson::Document(d.clone())).unwrap(), t);
        let later = Token { seq: 43, ..t }.to_doc();
        assert!(d.get_str("_data").unwrap() < later.get_str("_data").unwrap());
        for bad in [
            Bson::Int32(1),
            Bson::Document(doc! { "_data": "zz" }),
            Bson::Document(doc! { "_data": "8200000007000000030000000000000002AFF" }),
        ] {
            assert_eq!(Token::parse(&bad).unwrap_err().code, INVALID_RESUME_TOKEN);
        }
    }

    #[test]
    fn update_descriptions_follow_mongod() {
        let before = doc! { "_id": 1, "a": { "1": 1 }, "array": ["foo", { "a": "bar" }, 1, 2, 3], "gone": 1 };
        let after =
            doc! { "_id": 1, "a": { "1": 2 }, "array": ["foo", { "a": "baz" }], "new": true };
        let d = describe_update(&before, &after, true);
        assert_eq!(
            d.get_document("updatedFields").unwrap(),
            &doc! { "a.1": 2, "array.1.a": "baz", "new": true }
        );
        assert_eq!(
            d.get_array("removedFields").unwrap(),
            &vec![Bson::from("gone")]
        );
        assert_eq!(
            d.get_array("truncatedArrays").unwrap(),
            &vec![Bson::Document(doc! { "field": "array", "newSize": 2 })]
        );
        assert_eq!(
            d.get_document("disambiguatedPaths").unwrap(),
            &doc! { "a.1": ["a", "1"] }
        );
        let nested = describe_update(
            &doc! { "a": [{ "1": 1 }] },
            &doc! { "a": [{ "1": 2 }] },
            true,
        );
        assert_eq!(
            nested.get_document("disambiguatedPaths").unwrap(),
            &doc! { "a.0.1": ["a", 0, "1"] }
        );
        assert!(
            !describe_update(&before, &after, false).contains_key("disambiguatedPaths"),
            "only with showExpandedEvents"
        );
    }
}
