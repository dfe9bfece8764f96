//! Change streams: `aggregate` with a first `$changeStream` stage on a collection, a database
//! (`aggregate: 1`) or the deployment (`allChangesForCluster` on admin), and the `getMore`s
//! of its tailable, awaitData cursor. Events come from the store's replication log
//! (`crate::oplog`) in mongod's shapes; the stages after `$changeStream` run on each event.
//!
//! Resume tokens are in `token.rs`, the events' shapes in `event.rs`, an update's
//! `updateDescription` in `describe.rs`.

mod describe;
mod event;
mod split;
mod token;

use std::collections::VecDeque;

use bson::{Bson, Document, Timestamp, doc};

use super::args::{non_negative, ok, opt_doc};
use super::reads::DEFAULT_BATCH;
use super::{Cursor, Node};
use crate::error::{CmdResult, CommandError, codes};
use crate::oplog::{Entry, Op};
use crate::query;
use crate::topology::Role;
use token::{INVALID_RESUME_TOKEN, Token, TokenKind};

/// ChangeStreamFatalError.
const FATAL: i32 = 280;
/// ChangeStreamHistoryLost.
const HISTORY_LOST: i32 = 286;
/// NoMatchingDocument (a required pre- or post-image is missing).
const NO_MATCHING_DOCUMENT: i32 = 47;
/// InvalidNamespace.
const INVALID_NAMESPACE: i32 = 73;
/// How many log entries one read of the log takes at once.
const SCAN: usize = 10_000;
/// A stream stops reading the log when this many events wait in its buffer (the next
/// getMore reads on).
const MAX_BUFFERED: usize = 1000;
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
    /// `$changeStreamSplitLargeEvent` ended the pipeline: events over 16 MiB are split.
    split: bool,
    /// Resumed from a fragment: the entry whose event's fragments up to this one are skipped.
    skip_fragments: Option<(u64, usize)>,
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
        let mut stages = stages.to_vec();
        let known = version_at_least(&self.opts.version, 7, 0);
        let split = split::take_stage(&mut stages, known)?;
        check_stages(&stages, &ctx)?;
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
            stages,
            ctx,
            next: oplog.next_seq(),
            only_invalidate: false,
            min_ts: None,
            buffer: VecDeque::new(),
            invalidated: false,
            resume_token: Document::new(),
            failed: None,
            split,
            skip_fragments: None,
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
                let fragment = split::fragment_of(v);
                let token = Token::parse(&split::whole_token(v))?;
                self.check_resume(&token, option)?;
                // An event's token must name an event of this stream (mongod looks for it in
                // what the stream reads, and fails when it is not there).
                if token.kind != TokenKind::HighWaterMark
                    && self
                        .store
                        .oplog
                        .get(token.seq)
                        .is_some_and(|e| !relevant(&stream, &e))
                {
                    return Err(token_not_found());
                }
                stream.resume_token = token.to_doc();
                if let (Some(n), TokenKind::Event) = (fragment, token.kind) {
                    // The event is read again, without the fragments up to this one.
                    stream.resume_token = v.as_document().cloned().unwrap_or_default();
                    stream.skip_fragments = Some((token.seq, n));
                }
                match token.kind {
                    TokenKind::HighWaterMark => stream.next = token.seq,
                    TokenKind::Event => {
                        stream.next = token.seq;
                        stream.only_invalidate = stream.skip_fragments.is_none();
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
            _ => Err(token_not_found()),
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
                if stream.buffer.len() >= MAX_BUFFERED {
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
        let max = usize::try_from(super::MAX_BSON_OBJECT_SIZE).unwrap_or(usize::MAX);
        // Resumed from a fragment of this event: the fragments up to it are not returned.
        let skip = match (stream.skip_fragments, id.as_ref().map(Token::parse)) {
            (Some((seq, n)), Some(Ok(t))) if t.seq == seq && t.kind == TokenKind::Event => {
                stream.skip_fragments = None;
                n
            }
            _ => 0,
        };
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
            if stream.split {
                stream.buffer.extend(split::fragments(out, max, skip)?);
            } else {
                stream.buffer.push_back(out);
            }
        }
        Ok(())
    }

    /// Takes a batch from the buffer: the documents, the postBatchResumeToken, and whether
    /// the stream has ended (the cursor closes).
    fn take_batch(&self, stream: &mut Stream, batch: usize) -> (Vec<Bson>, Document, bool) {
        // As any batch, it stops before the reply would pass 16 MiB.
        let cap = usize::try_from(super::MAX_BSON_OBJECT_SIZE).unwrap_or(usize::MAX) - 16 * 1024;
        let mut docs: Vec<Document> = Vec::new();
        let mut size = 0usize;
        while docs.len() < batch {
            let Some(front) = stream.buffer.front() else {
                break;
            };
            let len = front.to_vec().map(|v| v.len()).unwrap_or(0);
            if !docs.is_empty() && size + len > cap {
                break;
            }
            size += len;
            docs.extend(stream.buffer.pop_front());
        }
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

fn token_not_found() -> CommandError {
    CommandError::new(
        FATAL,
        "ChangeStreamFatalError",
        "cannot resume stream; the resume token was not found.",
    )
    .labelled()
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

/// Whether a server version string (`"8.0.4"`) is at least `major.minor`.
fn version_at_least(version: &str, major: u32, minor: u32) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let have = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    have >= (major, minor)
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
