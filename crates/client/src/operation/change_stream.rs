//! Change streams, sans-I/O: the `aggregate` with a `$changeStream` stage
//! ([`OpenChangeStream`]) and the change streams specification's resume rules
//! ([`ResumeState`]: the cached resume token, the saved operation time, which start option
//! a resume sends, and which errors are resumable).

use bson::{Bson, Document, Timestamp, doc};

use super::cursor::{CursorReply, OpenCursor, OpensCursor, put};
use super::{Command, ConnectionDescription, OpKind, Operation, Step};
use crate::crud::{AggregateOptions, ChangeStreamOptions};
use crate::error::{Error, ErrorKind, Result};

/// What a change stream watches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum WatchTarget {
    /// One collection (`aggregate: <name>`).
    Collection(String),
    /// Every collection of a database (`aggregate: 1`).
    Database,
    /// The whole deployment (`aggregate: 1` on `admin`, `allChangesForCluster: true`).
    Cluster,
}

/// Where a change stream's aggregate starts.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum StreamStart {
    /// As the user's options say (the first aggregate, or a resume with nothing cached).
    Original,
    /// `startAfter` the token (a stream started with `startAfter` that returned nothing yet).
    StartAfter(Document),
    /// `resumeAfter` the token.
    ResumeAfter(Document),
    /// `startAtOperationTime` the time.
    AtOperationTime(Timestamp),
}

/// The `$changeStream` stage's options for `start`.
fn stage(target: &WatchTarget, o: &ChangeStreamOptions, start: &StreamStart) -> Document {
    let mut stage = Document::new();
    if *target == WatchTarget::Cluster {
        stage.insert("allChangesForCluster", true);
    }
    put(
        &mut stage,
        "fullDocument",
        o.full_document.as_ref().map(|v| v.as_str().to_owned()),
    );
    put(
        &mut stage,
        "fullDocumentBeforeChange",
        o.full_document_before_change
            .as_ref()
            .map(|v| v.as_str().to_owned()),
    );
    match start {
        StreamStart::Original => {
            put(
                &mut stage,
                "resumeAfter",
                o.resume_after.clone().map(|t| t.into_document()),
            );
            put(
                &mut stage,
                "startAfter",
                o.start_after.clone().map(|t| t.into_document()),
            );
            put(
                &mut stage,
                "startAtOperationTime",
                o.start_at_operation_time,
            );
        }
        StreamStart::StartAfter(t) => {
            stage.insert("startAfter", t.clone());
        }
        StreamStart::ResumeAfter(t) => {
            stage.insert("resumeAfter", t.clone());
        }
        StreamStart::AtOperationTime(ts) => {
            stage.insert("startAtOperationTime", *ts);
        }
    }
    put(&mut stage, "showExpandedEvents", o.show_expanded_events);
    stage
}

/// The change stream's `aggregate`: a retryable read of `[{$changeStream: ..}, ..pipeline]`
/// that remembers the reply's `operationTime` and the connection's wire version.
#[derive(Debug)]
pub(crate) struct OpenChangeStream {
    cursor: OpenCursor,
    /// The reply's `operationTime`.
    pub(crate) operation_time: Option<Timestamp>,
    /// The wire version of the connection the aggregate ran on.
    pub(crate) wire_version: i32,
}

impl OpenChangeStream {
    /// The aggregate on `db` for `target`, starting at `start`.
    pub(crate) fn new(
        db: &str,
        target: &WatchTarget,
        pipeline: &[Document],
        options: &ChangeStreamOptions,
        start: &StreamStart,
    ) -> Self {
        let mut stages = Vec::with_capacity(pipeline.len() + 1);
        stages.push(doc! { "$changeStream": stage(target, options, start) });
        stages.extend(pipeline.iter().cloned());
        let aggregate = AggregateOptions {
            batch_size: options.batch_size,
            collation: options.collation.clone(),
            comment: options.comment.clone(),
            ..AggregateOptions::default()
        };
        let on = match target {
            WatchTarget::Collection(c) => Bson::String(c.clone()),
            WatchTarget::Database | WatchTarget::Cluster => Bson::Int32(1),
        };
        let mut cursor = OpenCursor::aggregate(db, on, stages, &aggregate);
        cursor.change_stream = true;
        OpenChangeStream {
            cursor,
            operation_time: None,
            wire_version: 0,
        }
    }
}

impl Operation for OpenChangeStream {
    type Output = CursorReply;

    fn kind(&self) -> OpKind {
        OpKind::Read
    }

    fn name(&self) -> &str {
        "aggregate"
    }

    fn is_retryable(&self) -> bool {
        true
    }

    fn takes_read_concern(&self) -> bool {
        true
    }

    fn build(&mut self, conn: &ConnectionDescription) -> Result<Command> {
        self.cursor.build(conn)
    }

    fn lazy_batch(&self) -> Option<&'static str> {
        self.cursor.lazy_batch()
    }

    fn set_raw_batch(&mut self, array: Vec<u8>) {
        self.cursor.set_raw_batch(array);
    }

    fn handle_error(&mut self, error: Error) -> Result<CursorReply> {
        self.cursor.handle_error(error)
    }

    fn sends_max_time(&self) -> bool {
        self.cursor.sends_max_time()
    }

    fn handle_reply(
        &mut self,
        reply: Document,
        conn: &ConnectionDescription,
    ) -> Result<Step<CursorReply>> {
        self.operation_time = reply.get_timestamp("operationTime").ok();
        self.wire_version = conn.max_wire_version;
        self.cursor.handle_reply(reply, conn)
    }

    fn keeps_session(&self, output: &CursorReply) -> bool {
        self.cursor.keeps_session(output)
    }

    fn pins_connection(&self, output: &CursorReply) -> bool {
        self.cursor.pins_connection(output)
    }
}

impl OpensCursor for OpenChangeStream {
    fn opener(&mut self) -> &mut OpenCursor {
        &mut self.cursor
    }
}

/// The server's `CursorNotFound`.
const CURSOR_NOT_FOUND: i32 = 43;

/// The codes a server older than 4.4 (wire version 9), which sends no
/// `ResumableChangeStreamError` label, fails a resumable getMore with.
const RESUMABLE_CODES: [i32; 17] = [
    6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 63, 150, 13388, 234, 133,
];

/// The first wire version (4.4) that labels resumable errors.
const LABEL_WIRE_VERSION: i32 = 9;

/// The first wire version (4.0) that takes `startAtOperationTime`.
const OPERATION_TIME_WIRE_VERSION: i32 = 7;

/// Whether a getMore's `error` is resumable (change streams spec, "Resumable Error") on a
/// server of `wire_version`: any error that is not the server's (network, selection,
/// check-out), `CursorNotFound`, and the `ResumableChangeStreamError` label (4.4+) or the
/// allow list of codes (older servers).
pub(crate) fn is_resumable(error: &Error, wire_version: i32) -> bool {
    match error.kind() {
        ErrorKind::Io(_)
        | ErrorKind::Wire(_)
        | ErrorKind::Pool(_)
        | ErrorKind::ServerSelection(_) => true,
        ErrorKind::Command(_) => {
            let code = error.code();
            code == Some(CURSOR_NOT_FOUND)
                || if wire_version >= LABEL_WIRE_VERSION {
                    error.has_label("ResumableChangeStreamError")
                } else {
                    code.is_some_and(|c| RESUMABLE_CODES.contains(&c))
                }
        }
        _ => false,
    }
}

/// A change stream's resume state (change streams spec, "Updating the Cached Resume Token"
/// and "Resume Process").
#[derive(Clone, Debug, Default)]
pub(crate) struct ResumeState {
    /// The cached resume token.
    token: Option<Document>,
    /// The stream was started with `startAfter`.
    start_after: bool,
    /// A document has been returned to the user.
    returned_any: bool,
    /// The original `startAtOperationTime`, or the first aggregate's `operationTime`.
    operation_time: Option<Timestamp>,
    /// The wire version of the connection of the last aggregate.
    wire_version: i32,
    /// The original options name a start point.
    started_explicitly: bool,
}

impl ResumeState {
    /// The state of a stream opened with `options`.
    pub(crate) fn new(options: &ChangeStreamOptions) -> Self {
        let token = options
            .start_after
            .clone()
            .or_else(|| options.resume_after.clone())
            .map(|t| t.into_document());
        ResumeState {
            token,
            start_after: options.start_after.is_some(),
            returned_any: false,
            operation_time: options.start_at_operation_time,
            wire_version: 0,
            started_explicitly: options.start_after.is_some()
                || options.resume_after.is_some()
                || options.start_at_operation_time.is_some(),
        }
    }

    /// The cached resume token.
    pub(crate) fn token(&self) -> Option<&Document> {
        self.token.as_ref()
    }

    /// The wire version the resumability of an error is judged by.
    pub(crate) fn wire_version(&self) -> i32 {
        self.wire_version
    }

    /// Where a resume starts.
    pub(crate) fn resume_start(&self) -> StreamStart {
        match (&self.token, self.operation_time) {
            (Some(t), _) if self.start_after && !self.returned_any => {
                StreamStart::StartAfter(t.clone())
            }
            (Some(t), _) => StreamStart::ResumeAfter(t.clone()),
            (None, Some(ts)) if self.wire_version >= OPERATION_TIME_WIRE_VERSION => {
                StreamStart::AtOperationTime(ts)
            }
            (None, _) => StreamStart::Original,
        }
    }

    /// An aggregate (the first, or a resume) returned: `empty` its first batch, `pbrt` its
    /// `postBatchResumeToken`, `operation_time` the reply's.
    pub(crate) fn on_aggregate(
        &mut self,
        wire_version: i32,
        empty: bool,
        pbrt: Option<&Document>,
        operation_time: Option<Timestamp>,
    ) {
        self.wire_version = wire_version;
        if !self.started_explicitly
            && self.operation_time.is_none()
            && empty
            && pbrt.is_none()
            && self.token.is_none()
        {
            self.operation_time = operation_time;
        }
        self.on_batch(empty, pbrt);
    }

    /// An aggregate or getMore returned a batch: an empty one caches its
    /// `postBatchResumeToken`.
    pub(crate) fn on_batch(&mut self, empty: bool, pbrt: Option<&Document>) {
        if empty && let Some(t) = pbrt {
            self.token = Some(t.clone());
        }
    }

    /// A document is returned to the user: the batch's `postBatchResumeToken` is cached when
    /// it was the batch's last, else its `_id`.
    ///
    /// # Errors
    /// A document without an `_id`: the stream cannot resume (the caller closes it).
    pub(crate) fn on_document(
        &mut self,
        document: &Document,
        last_in_batch: bool,
        pbrt: Option<&Document>,
    ) -> Result<()> {
        let Some(id) = document.get("_id") else {
            return Err(Error::invalid_reply(
                "cannot provide resume functionality when the resume token is missing \
                 (a change stream event without _id)",
            ));
        };
        self.returned_any = true;
        // An `_id` that is not a document (a pipeline replaced it) is no token: the last one
        // stays cached.
        match (last_in_batch, pbrt, id) {
            (true, Some(t), _) => self.token = Some(t.clone()),
            (_, _, Bson::Document(d)) => self.token = Some(d.clone()),
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crud::{FullDocumentType, ResumeToken};

    fn conn() -> ConnectionDescription {
        ConnectionDescription {
            address: mongo_events::ServerAddress::tcp("a", 1),
            server_type: mongo_events::ServerType::RsPrimary,
            max_wire_version: 21,
            limits: mongo_wire::SizeLimits::default(),
            service_id: None,
            logical_session_timeout_minutes: Some(30),
        }
    }

    fn ts(t: u32) -> Timestamp {
        Timestamp {
            time: t,
            increment: 1,
        }
    }

    #[test]
    fn the_aggregate_puts_stage_options_in_the_stage_and_the_rest_on_the_command() {
        let o = ChangeStreamOptions::default()
            .full_document(FullDocumentType::UpdateLookup)
            .batch_size(3)
            .comment(Bson::from("c"))
            .max_await_time(std::time::Duration::from_millis(9))
            .show_expanded_events(true);
        let mut op = OpenChangeStream::new(
            "admin",
            &WatchTarget::Cluster,
            &[doc! {"$match": {}}],
            &o,
            &StreamStart::Original,
        );
        let body = op.build(&conn()).unwrap().body;
        assert_eq!(
            body,
            doc! {
                "aggregate": 1,
                "pipeline": [
                    {"$changeStream": {"allChangesForCluster": true,
                        "fullDocument": "updateLookup", "showExpandedEvents": true}},
                    {"$match": {}},
                ],
                "cursor": {"batchSize": 3},
                "comment": "c",
            }
        );
        assert!(op.is_retryable() && op.takes_read_concern());
        let mut coll = OpenChangeStream::new(
            "db",
            &WatchTarget::Collection("c".into()),
            &[],
            &ChangeStreamOptions::default().start_at_operation_time(ts(1)),
            &StreamStart::ResumeAfter(doc! {"_data": "x"}),
        );
        assert_eq!(
            coll.build(&conn()).unwrap().body,
            doc! {"aggregate": "c", "pipeline": [{"$changeStream": {"resumeAfter": {"_data": "x"}}}],
            "cursor": {}}
        );
        let reply = doc! {"ok": 1, "operationTime": ts(7),
        "cursor": {"id": 5_i64, "ns": "db.c", "firstBatch": [], "postBatchResumeToken": {"_data": "p"}}};
        let Step::Done(r) = coll.handle_reply(reply, &conn()).unwrap() else {
            panic!("a cursor reply is one step");
        };
        assert_eq!(coll.operation_time, Some(ts(7)));
        assert_eq!(coll.wire_version, 21);
        assert_eq!(r.post_batch_resume_token, Some(doc! {"_data": "p"}));
    }

    #[test]
    fn tokens_are_cached_from_documents_and_post_batch_tokens() {
        let mut s = ResumeState::new(&ChangeStreamOptions::default());
        assert_eq!(s.resume_start(), StreamStart::Original);
        // No token, no start option, an empty first batch without a token: the operation
        // time is saved and resumed from.
        s.on_aggregate(21, true, None, Some(ts(3)));
        assert_eq!(s.resume_start(), StreamStart::AtOperationTime(ts(3)));
        // An empty batch caches its postBatchResumeToken.
        s.on_batch(true, Some(&doc! {"_data": "a"}));
        assert_eq!(
            s.resume_start(),
            StreamStart::ResumeAfter(doc! {"_data": "a"})
        );
        // Inside a batch the document's _id; the last of a batch its postBatchResumeToken.
        let pbrt = doc! {"_data": "p"};
        s.on_document(&doc! {"_id": {"_data": "b"}}, false, Some(&pbrt))
            .unwrap();
        assert_eq!(s.token(), Some(&doc! {"_data": "b"}));
        s.on_document(&doc! {"_id": {"_data": "c"}}, true, Some(&pbrt))
            .unwrap();
        assert_eq!(s.token(), Some(&pbrt));
        s.on_document(&doc! {"_id": {"_data": "d"}}, true, None)
            .unwrap();
        assert_eq!(s.token(), Some(&doc! {"_data": "d"}));
        // A non-empty batch does not cache its postBatchResumeToken before a document is
        // returned.
        s.on_batch(false, Some(&doc! {"_data": "z"}));
        assert_eq!(s.token(), Some(&doc! {"_data": "d"}));
        let e = s.on_document(&doc! {"x": 1}, false, None).unwrap_err();
        assert!(e.to_string().contains("resume token is missing"), "{e}");
    }

    #[test]
    fn start_after_is_kept_until_a_document_is_returned() {
        let o = ChangeStreamOptions::default().start_after(ResumeToken::from(doc! {"_data": "s"}));
        let mut s = ResumeState::new(&o);
        s.on_aggregate(21, true, None, Some(ts(1)));
        assert_eq!(
            s.resume_start(),
            StreamStart::StartAfter(doc! {"_data": "s"})
        );
        s.on_batch(true, Some(&doc! {"_data": "t"}));
        assert_eq!(
            s.resume_start(),
            StreamStart::StartAfter(doc! {"_data": "t"})
        );
        s.on_document(&doc! {"_id": {"_data": "u"}}, false, None)
            .unwrap();
        assert_eq!(
            s.resume_start(),
            StreamStart::ResumeAfter(doc! {"_data": "u"})
        );
        // resumeAfter given: resumed after it, never from an operation time.
        let o = ChangeStreamOptions::default().resume_after(ResumeToken::from(doc! {"_data": "r"}));
        let mut s = ResumeState::new(&o);
        s.on_aggregate(21, true, None, Some(ts(1)));
        assert_eq!(
            s.resume_start(),
            StreamStart::ResumeAfter(doc! {"_data": "r"})
        );
        // startAtOperationTime given: resumed from it until a token is cached.
        let o = ChangeStreamOptions::default().start_at_operation_time(ts(9));
        let mut s = ResumeState::new(&o);
        s.on_aggregate(21, true, None, Some(ts(12)));
        assert_eq!(s.resume_start(), StreamStart::AtOperationTime(ts(9)));
        // A server without startAtOperationTime: the original command.
        let mut s = ResumeState::new(&ChangeStreamOptions::default());
        s.on_aggregate(6, true, None, Some(ts(12)));
        assert_eq!(s.resume_start(), StreamStart::Original);
    }

    #[test]
    fn resumable_errors_follow_the_allow_list_and_the_label() {
        let err = |code: i32, labels: &[&str]| {
            Error::from_reply(&doc! {"ok": 0, "code": code, "errmsg": "x",
            "errorLabels": labels.iter().map(|l| Bson::from(*l)).collect::<Vec<_>>()})
        };
        assert!(is_resumable(&err(43, &[]), 21));
        assert!(is_resumable(&err(43, &[]), 6));
        assert!(is_resumable(&err(216, &["ResumableChangeStreamError"]), 21));
        assert!(!is_resumable(&err(189, &[]), 21));
        assert!(is_resumable(&err(189, &[]), 8));
        assert!(!is_resumable(&err(280, &[]), 8));
        let io = Error::io(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "x",
        ));
        assert!(is_resumable(&io, 21));
        assert!(!is_resumable(&Error::invalid_argument("x"), 21));
    }
}
