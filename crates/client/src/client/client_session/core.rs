//! The state of an explicit session and its rules, sans-I/O: which server session it holds
//! (taken lazily, at its first use on a connection), what a command in it gets (`lsid`,
//! `txnNumber`, the causal consistency spec's `readConcern.afterClusterTime`, the snapshot
//! reads spec's `readConcern {level: "snapshot", atClusterTime}`), and what a reply teaches it
//! (`$clusterTime`, `operationTime`, the snapshot's `atClusterTime`). The executor calls
//! these rules; nothing here reads the clock or does I/O.

use bson::{Bson, Document, Timestamp};

use super::super::session::ServerSession;
use crate::error::{Error, ErrorKind, Result};

/// The lowest wire version of a server with snapshot reads (MongoDB 5.0).
const SNAPSHOT_MIN_WIRE_VERSION: i32 = 13;

/// What the rules need to know about one command.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CommandFacts {
    /// The operation takes a read concern (a read, or an aggregate that writes).
    pub(crate) takes_read_concern: bool,
    /// The maxWireVersion of the connection it goes to.
    pub(crate) max_wire_version: i32,
}

/// An explicit session's state, shared by the `ClientSession` and the cursors opened in it.
#[derive(Debug)]
pub(crate) struct SessionCore {
    /// The client it belongs to (`Client::key`).
    pub(crate) owner: usize,
    causal: bool,
    snapshot: bool,
    /// The server session, once taken (`None` before the first use and after the end).
    server: Option<ServerSession>,
    /// The session id once known; kept after the end.
    id: Option<Document>,
    ended: bool,
    cluster_time: Option<Document>,
    operation_time: Option<Timestamp>,
    snapshot_time: Option<Timestamp>,
    /// The session's transaction (transactions spec).
    pub(crate) txn: super::txn::Transaction,
    /// `defaultTimeoutMS`: the `timeoutMS` of commit, abort, `withTransaction` and the end
    /// of the session (unset: the client's).
    pub(crate) default_timeout: Option<std::time::Duration>,
    /// While `withTransaction` runs with a `timeoutMS`: its deadline (`Some(None)`: no
    /// limit), which every operation of the callback in this session keeps.
    pub(crate) callback_deadline: Option<Option<std::time::Instant>>,
}

impl SessionCore {
    /// A session of the client `owner`: causally consistent or not, for snapshot reads or not
    /// (at `snapshot_time` when given).
    pub(crate) fn new(
        owner: usize,
        causal: bool,
        snapshot: bool,
        snapshot_time: Option<Timestamp>,
    ) -> Self {
        SessionCore {
            owner,
            causal,
            snapshot,
            server: None,
            id: None,
            ended: false,
            cluster_time: None,
            operation_time: None,
            snapshot_time,
            txn: super::txn::Transaction::default(),
            default_timeout: None,
            callback_deadline: None,
        }
    }

    /// Whether this is a snapshot session.
    pub(crate) fn is_snapshot(&self) -> bool {
        self.snapshot
    }

    /// The `afterClusterTime` a transaction's first command carries: the operation time of
    /// a causally consistent session.
    pub(crate) fn causal_time(&self) -> Option<Timestamp> {
        self.operation_time.filter(|_| self.causal)
    }

    /// Fails when the session was ended (sessions spec: operations on an ended session are
    /// an error).
    pub(crate) fn check_usable(&self) -> Result<()> {
        if self.ended {
            Err(Error::usage("the session was ended: start a new one"))
        } else {
            Ok(())
        }
    }

    /// The server session, taken with `take` at the first call.
    ///
    /// # Errors
    /// The session was ended.
    pub(crate) fn server_session(
        &mut self,
        take: impl FnOnce() -> ServerSession,
    ) -> Result<&mut ServerSession> {
        self.check_usable()?;
        let session = self.server.get_or_insert_with(take);
        self.id = Some(session.id.clone());
        Ok(session)
    }

    /// The session id: the server session's, taken with `take` if it has none yet; after the
    /// end, the last one (`make` makes one for a session ended unused).
    pub(crate) fn id(
        &mut self,
        take: impl FnOnce() -> ServerSession,
        make: impl FnOnce() -> Document,
    ) -> Document {
        if let Some(id) = &self.id {
            return id.clone();
        }
        let id = if self.ended {
            make()
        } else {
            self.server.get_or_insert_with(take).id.clone()
        };
        self.id = Some(id.clone());
        id
    }

    /// Ends the session: the server session to give back (`None` on later calls, or when it
    /// never took one).
    pub(crate) fn end(&mut self) -> Option<ServerSession> {
        self.ended = true;
        self.txn.unpin();
        self.server.take()
    }

    /// Whether the session has ended.
    pub(crate) fn ended(&self) -> bool {
        self.ended
    }

    /// Marks the server session dirty (a network error while it was in use): it is
    /// discarded when given back.
    pub(crate) fn mark_dirty(&mut self) {
        if let Some(s) = &mut self.server {
            s.dirty = true;
        }
    }

    /// Whether the server session is dirty.
    pub(crate) fn is_dirty(&self) -> bool {
        self.server.as_ref().is_some_and(|s| s.dirty)
    }

    /// The highest cluster time this session has seen or been given.
    pub(crate) fn cluster_time(&self) -> Option<&Document> {
        self.cluster_time.as_ref()
    }

    /// The operation time of the session's last reply (or as advanced).
    pub(crate) fn operation_time(&self) -> Option<Timestamp> {
        self.operation_time
    }

    /// The snapshot time of a snapshot session (given, or the first read's `atClusterTime`).
    pub(crate) fn snapshot_time(&self) -> Option<Timestamp> {
        self.snapshot_time
    }

    /// Takes `cluster_time` when its `clusterTime` is higher than the one kept.
    pub(crate) fn advance_cluster_time(&mut self, cluster_time: &Document) {
        let Some(new) = cluster_timestamp(cluster_time) else {
            return;
        };
        if self
            .cluster_time
            .as_ref()
            .and_then(cluster_timestamp)
            .is_none_or(|old| later(new, old))
        {
            self.cluster_time = Some(cluster_time.clone());
        }
    }

    /// Takes `time` when it is later than the operation time kept.
    pub(crate) fn advance_operation_time(&mut self, time: Timestamp) {
        if self.operation_time.is_none_or(|old| later(time, old)) {
            self.operation_time = Some(time);
        }
    }

    /// Adds the session's read concern to a command about to go out (after the executor's
    /// envelope, which may have set a level):
    ///
    /// - a snapshot session (snapshot reads spec) sets `level: "snapshot"`, and
    ///   `atClusterTime` once the snapshot time is known, on every command but a cursor's
    ///   `getMore` and `killCursors` (the cursor already reads its snapshot): the server then
    ///   refuses the commands that cannot read a snapshot, writes among them;
    /// - a causally consistent session (causal consistency spec) adds `afterClusterTime`, its
    ///   operation time, to a command that takes a read concern, once it has one, beside the
    ///   level already there, and alone to the writes that take it.
    ///
    /// # Errors
    /// A snapshot session on a server older than 5.0 (before anything is sent).
    pub(crate) fn apply_read_concern(
        &self,
        body: &mut Document,
        facts: CommandFacts,
    ) -> Result<()> {
        if self.snapshot {
            if facts.max_wire_version < SNAPSHOT_MIN_WIRE_VERSION {
                return Err(Error::new(ErrorKind::IncompatibleServer(
                    "Snapshot reads require MongoDB 5.0 or later".to_owned(),
                )));
            }
            if continues_cursor(body) {
                return Ok(());
            }
            with_read_concern(body, |rc| {
                rc.insert("level", "snapshot");
                if let Some(ts) = self.snapshot_time {
                    rc.insert("atClusterTime", ts);
                }
            });
        } else if self.causal
            && (facts.takes_read_concern || takes_after_cluster_time(body))
            && let Some(ts) = self.operation_time
        {
            with_read_concern(body, |rc| {
                rc.insert("afterClusterTime", ts);
            });
        }
        Ok(())
    }

    /// Learns from a reply (success or error): its `$clusterTime` and `operationTime`, and in
    /// a snapshot session without a snapshot time yet, the `atClusterTime` of the reply
    /// (in `cursor` for find and aggregate, at the top for distinct).
    pub(crate) fn observe(&mut self, reply: &Document) {
        self.txn.observe(reply);
        if let Ok(ct) = reply.get_document("$clusterTime") {
            self.advance_cluster_time(ct);
        }
        if let Ok(ts) = reply.get_timestamp("operationTime") {
            self.advance_operation_time(ts);
        }
        if self.snapshot && self.snapshot_time.is_none() {
            let at = reply
                .get_document("cursor")
                .ok()
                .and_then(|c| c.get_timestamp("atClusterTime").ok())
                .or_else(|| reply.get_timestamp("atClusterTime").ok());
            if at.is_some() {
                self.snapshot_time = at;
            }
        }
    }
}

/// Whether `a` is later than `b` (seconds, then increment).
fn later(a: Timestamp, b: Timestamp) -> bool {
    (a.time, a.increment) > (b.time, b.increment)
}

/// The `clusterTime` timestamp of a `$clusterTime` document.
fn cluster_timestamp(d: &Document) -> Option<Timestamp> {
    d.get_timestamp("clusterTime").ok()
}

/// The later of two `$clusterTime` documents (either may be missing).
pub(crate) fn later_cluster_time(a: Option<Document>, b: Option<&Document>) -> Option<Document> {
    match (a, b) {
        (Some(a), Some(b)) => match (cluster_timestamp(&a), cluster_timestamp(b)) {
            (Some(ta), Some(tb)) if later(tb, ta) => Some(b.clone()),
            (None, Some(_)) => Some(b.clone()),
            _ => Some(a),
        },
        (a, b) => a.or_else(|| b.cloned()),
    }
}

/// Whether a write command takes a read concern of `afterClusterTime` alone in a causally
/// consistent session (read and write concern spec).
fn takes_after_cluster_time(body: &Document) -> bool {
    matches!(
        body.keys().next().map(String::as_str),
        Some(
            "insert"
                | "update"
                | "delete"
                | "findAndModify"
                | "bulkWrite"
                | "create"
                | "createIndexes"
                | "drop"
                | "dropDatabase"
                | "dropIndexes"
        )
    )
}

/// Whether the command goes on with an open cursor (`getMore`, `killCursors`).
fn continues_cursor(body: &Document) -> bool {
    matches!(
        body.keys().next().map(String::as_str),
        Some("getMore" | "killCursors")
    )
}

/// Runs `f` on the command's `readConcern` document, added (or replacing a value that is not
/// a document) when missing.
fn with_read_concern(body: &mut Document, f: impl FnOnce(&mut Document)) {
    if let Some(Bson::Document(rc)) = body.get_mut("readConcern") {
        f(rc);
        return;
    }
    let mut rc = Document::new();
    f(&mut rc);
    body.insert("readConcern", rc);
}
