//! The core of a [`Cursor`](super::Cursor): a batch from `find`, `aggregate`, `listCollections`, `listIndexes` or a cursor
//! command, then `getMore`s on the same server (on the same connection in load-balanced
//! mode); killed (`killCursors`) when dropped unfinished. Its getMores and killCursors run in
//! the session of the command that opened it: an implicit one goes back to the client's pool
//! as soon as the cursor is exhausted, closed or dropped (sessions spec); an explicit one
//! stays with its `ClientSession`.
//! Every command goes through the executor as an operation, but for the batches an exhaust
//! cursor's server streams: those are read straight off the connection the first getMore
//! left streaming (`moreToCome`), which the cursor keeps until a reply without the flag
//! (it then goes back to its pool) or drops unfinished (it is then closed: a connection
//! with replies pending never goes back).
#![allow(
    clippy::disallowed_methods,
    reason = "a cursor dropped unfinished kills itself in a spawned task"
)]

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bson::{Bson, Document};
use mongo_events::ServerAddress;

use super::Client;
use super::client_session::SharedSession;
use super::executor::{Executed, Route, SessionUse};
use super::session::ServerSession;
use crate::conn::CommandParams;
use crate::error::{Error, Result};
use crate::operation::{
    Batch, CursorReply, GetMore, GetMoreOptions, KillCursors, Operation, Step, is_ok,
};
use crate::topology::PooledConn;

/// A server-side cursor of documents: the untyped core of [`Cursor`](super::Cursor), which
/// decodes them.
pub(crate) struct CursorCore {
    client: Client,
    db: String,
    coll: String,
    id: i64,
    /// The id as the server sent it (some servers use int32 ids and want them back so).
    id_bson: Bson,
    buffer: Batch,
    /// The last batch's `postBatchResumeToken` (a change stream's cursor).
    post_batch_resume_token: Option<Document>,
    get_more: GetMoreOptions,
    address: ServerAddress,
    pinned: Option<Pin>,
    /// An exhaust cursor's connection while the server streams batches on it (the last
    /// reply had `moreToCome`).
    stream: Option<PooledConn>,
    /// The implicit session of the command that opened it (`None` when the server has no
    /// sessions, or once given back).
    session: Option<ServerSession>,
    /// The explicit session it was opened in (its getMores run in it; the session's owner
    /// gives its server session back, not the cursor).
    explicit: Option<SharedSession>,
    /// `timeoutMode: cursorLifetime` (client-side operation timeouts): the deadline of the
    /// command that opened it, which its getMores keep (`Some(None)`: no limit). `None`:
    /// each getMore gets the handle's `timeoutMS` afresh.
    lifetime: Option<Option<std::time::Instant>>,
    /// `timeoutMode: iteration`: the deadline of the current `next` call, which all its
    /// getMores share (a tailable cursor may need several).
    next_deadline: Option<Option<std::time::Instant>>,
}

impl std::fmt::Debug for CursorCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CursorCore")
            .field("ns", &format!("{}.{}", self.db, self.coll))
            .field("id", &self.id)
            .field("buffered", &self.buffer.len())
            .field("address", &self.address)
            .field("pinned", &self.pinned.is_some())
            .field("streaming", &self.stream.is_some())
            .field("session", &self.session.is_some())
            .finish()
    }
}

impl CursorCore {
    /// Wraps the first batch of a cursor-opening command (`find`, `aggregate`,
    /// `listCollections`, `listIndexes`, a cursor command); its getMores carry `get_more`.
    pub(crate) fn new(
        client: &Client,
        executed: Executed<CursorReply>,
        db: &str,
        coll: &str,
        get_more: GetMoreOptions,
    ) -> CursorCore {
        let reply = executed.output;
        let (db, coll) = reply.ns.unwrap_or_else(|| (db.to_owned(), coll.to_owned()));
        CursorCore {
            client: client.clone(),
            db,
            coll,
            id: reply.id,
            id_bson: reply.id_bson,
            buffer: reply.batch,
            post_batch_resume_token: reply.post_batch_resume_token,
            get_more,
            address: executed.address.unwrap_or_default(),
            // The executor keeps a connection only for an open cursor in load-balanced mode.
            pinned: executed
                .pinned
                .map(|conn| Pin::new(conn, &client.inner.cursor_pins)),
            stream: None,
            session: executed.session,
            explicit: executed.explicit,
            lifetime: None,
            next_deadline: None,
        }
    }

    /// Makes the cursor's getMores keep the deadline of the command that opened it
    /// (`timeoutMode: cursorLifetime`).
    pub(crate) fn set_lifetime(&mut self, lifetime: Option<Option<std::time::Instant>>) {
        self.lifetime = lifetime;
    }

    /// A context for the cursor's next getMore: on its server, in its session, within the
    /// cursor's lifetime deadline when it has one.
    fn command_context(&self) -> super::executor::OperationContext {
        let mut ctx = self.base_context();
        if let Some(deadline) = self.lifetime.or(self.next_deadline) {
            ctx.deadline = deadline;
            ctx.csot = deadline.is_some();
            ctx.timeout_set = true;
        }
        ctx
    }

    /// Starts a `next` call: without a lifetime deadline, its getMores share one
    /// `timeoutMS` from now.
    pub(crate) fn begin_next(&mut self) {
        self.next_deadline = match (self.lifetime, self.client.timeout()) {
            (None, Some(t)) => Some(super::context::deadline_of(Some(t))),
            _ => None,
        };
    }

    /// Sets the deadline the getMores of the current `next` call share (a change stream's
    /// call, whose resume shares it too); `None` ends it.
    pub(crate) fn set_next_deadline(&mut self, deadline: Option<Option<std::time::Instant>>) {
        self.next_deadline = deadline;
    }

    /// Ends a `next` call.
    pub(crate) fn end_next(&mut self) {
        self.next_deadline = None;
    }

    /// A context on the cursor's server, in its session, with a fresh `timeoutMS`.
    fn base_context(&self) -> super::executor::OperationContext {
        let mut ctx = self.client.context(Route::Server(self.address.clone()));
        ctx.session = match &self.explicit {
            Some(shared) => SessionUse::Explicit(shared.clone()),
            None => SessionUse::Cursor(self.session.as_ref().map(|s| s.id.clone())),
        };
        ctx
    }

    /// A context for the cursor's killCursors: as its other commands', but without the
    /// explicit session once that has ended (the sessions spec lets killCursors go without
    /// an lsid), so that the cursor is still killed.
    fn kill_context(&self) -> super::executor::OperationContext {
        // killCursors gets a fresh timeoutMS, even after the cursor's lifetime ran out.
        let mut ctx = self.base_context();
        if self.explicit.as_ref().is_some_and(|s| s.lock().ended()) {
            ctx.session = SessionUse::Cursor(None);
        }
        ctx
    }

    /// The cursor is done with the server: its pinned connection goes back to the pool and
    /// its session to the client's session pool.
    fn release(&mut self) {
        self.pinned = None;
        self.stream = None;
        self.explicit = None;
        if let Some(session) = self.session.take() {
            self.client.release_session(session);
        }
    }

    /// The server's cursor id (0 once exhausted).
    pub(crate) fn id(&self) -> i64 {
        self.id
    }

    /// The server the cursor lives on.
    pub(crate) fn address(&self) -> &ServerAddress {
        &self.address
    }

    /// Whether the cursor holds a pinned connection (load-balanced mode).
    pub(crate) fn is_pinned(&self) -> bool {
        self.pinned.is_some()
    }

    /// The next document without waiting beyond one `getMore`: a buffered one, else the first
    /// of one `getMore`'s batch. `None` when that batch was empty (a tailable cursor with
    /// nothing new: the cursor stays open, ask again later) or the cursor is exhausted.
    ///
    /// # Errors
    /// Network and command errors of `getMore`.
    pub(crate) async fn try_next_once(&mut self) -> Result<Option<Document>> {
        if let Some(d) = self.buffer.pop_front()? {
            return Ok(Some(d));
        }
        if self.id == 0 {
            self.release();
            return Ok(None);
        }
        self.get_more().await?;
        self.buffer.pop_front()
    }

    /// The next document, running `getMore` when the batch is used up; `None` at the end.
    ///
    /// # Errors
    /// Network and command errors of `getMore`.
    pub(crate) async fn try_next(&mut self) -> Result<Option<Document>> {
        loop {
            if let Some(d) = self.buffer.pop_front()? {
                return Ok(Some(d));
            }
            if self.id == 0 {
                self.release();
                return Ok(None);
            }
            self.get_more().await?;
        }
    }

    /// The buffered batch, or the next one from one `getMore` (possibly empty: a tailable
    /// cursor with nothing new); `None` once exhausted.
    ///
    /// # Errors
    /// Network and command errors of `getMore`.
    pub(crate) async fn next_batch(&mut self) -> Result<Option<VecDeque<Document>>> {
        if !self.buffer.is_empty() {
            return std::mem::take(&mut self.buffer).into_docs().map(Some);
        }
        if self.id == 0 {
            self.release();
            return Ok(None);
        }
        self.get_more().await?;
        std::mem::take(&mut self.buffer).into_docs().map(Some)
    }

    /// The last batch's `postBatchResumeToken`, when the server sent one.
    pub(crate) fn post_batch_resume_token(&self) -> Option<&Document> {
        self.post_batch_resume_token.as_ref()
    }

    /// How many documents are buffered.
    pub(crate) fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Every remaining document.
    ///
    /// # Errors
    /// As [`try_next`](Self::try_next); a cursor still open on the server is killed before
    /// the error is returned.
    pub(crate) async fn collect_all(mut self) -> Result<Vec<Document>> {
        let mut out = Vec::new();
        loop {
            match self.try_next().await {
                Ok(Some(d)) => out.push(d),
                Ok(None) => return Ok(out),
                Err(e) => {
                    // Kill a cursor that outlived the error before returning it, so the
                    // caller sees the killCursors done (dropping would do it later).
                    self.close().await;
                    return Err(e);
                }
            }
        }
    }

    /// The next buffered document, without any I/O.
    ///
    /// # Errors
    /// A buffered document that does not decode.
    pub(crate) fn pop_buffered(&mut self) -> Result<Option<Document>> {
        self.buffer.pop_front()
    }

    /// Whether the server has nothing more (id 0); gives the session back when so.
    pub(crate) fn check_exhausted(&mut self) -> bool {
        if self.id == 0 {
            self.release();
        }
        self.id == 0
    }

    /// Whether the cursor holds an exhaust stream (the server will send its next batch
    /// without a getMore).
    pub(crate) fn is_streaming(&self) -> bool {
        self.stream.is_some()
    }

    /// Runs one `getMore` (or, while an exhaust stream is open, reads the batch the server
    /// streams), refilling the buffer.
    pub(crate) async fn get_more(&mut self) -> Result<()> {
        if self.stream.is_some() {
            return self.read_streamed().await;
        }
        let mut options = self.get_more.clone();
        // A pinned connection (load-balanced mode) never streams: the executor hands back
        // no other connection, and the pin serves the cursor's killCursors too.
        options.exhaust &= self.pinned.is_none();
        let mut op = GetMore::new(&self.db, &self.coll, self.id_bson.clone(), options);
        let ctx = self.command_context();
        if let Some(session) = &mut self.session {
            session.last_use = crate::conn::clock();
        }
        let result = self
            .client
            .execute(&mut op, ctx, self.pinned.as_mut().map(|p| &mut p.conn))
            .await
            .map(|e| {
                // The executor hands a getMore's connection over only when its reply said
                // moreToCome (an exhaust cursor): the next batches come on it.
                self.stream = e.pinned.filter(|c| c.is_streaming());
                e.output
            });
        match result {
            Ok(reply) => {
                self.id = reply.id;
                self.id_bson = reply.id_bson;
                self.buffer = reply.batch;
                self.post_batch_resume_token = reply.post_batch_resume_token;
                if self.id == 0 {
                    self.release();
                }
                Ok(())
            }
            Err(e) => {
                if e.is_network_error() && !(e.is_timeout() && self.pinned.is_none()) {
                    // A timeoutMS that expired leaves the server's cursor open (it is not
                    // bound to the connection; killCursors closes it). Otherwise the
                    // cursor died with its connection, and its session is dirty. A
                    // pinned connection stays with the cursor until it is closed (load
                    // balancers spec), which sends no killCursors.
                    self.id = 0;
                    if let Some(session) = &mut self.session {
                        session.dirty = true;
                    }
                }
                Err(e)
            }
        }
    }
}

/// A connection a cursor keeps pinned (load-balanced mode), counted while it is held.
struct Pin {
    conn: PooledConn,
    count: Arc<AtomicUsize>,
}

impl Pin {
    fn new(conn: PooledConn, count: &Arc<AtomicUsize>) -> Pin {
        count.fetch_add(1, Ordering::Relaxed);
        Pin {
            conn,
            count: count.clone(),
        }
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
    }
}

impl CursorCore {
    /// Closes the cursor now: kills it on the server (`killCursors`, best effort: an error
    /// leaves it to the server's timeout) and returns its pinned connection, before
    /// returning. Dropping a cursor does the same in the background.
    pub(crate) async fn close(self) {
        self.close_within(None).await;
    }

    /// As [`close`](Self::close), the killCursors within `timeout` when given.
    pub(crate) async fn close_within(mut self, timeout: Option<std::time::Duration>) {
        self.kill(timeout).await;
        self.release();
    }

    /// Closes the cursor as [`close`](Self::close) does, but hands its implicit session to
    /// the caller instead of the client's pool (a change stream resumes in it).
    pub(crate) async fn close_keeping_session(mut self) -> Option<ServerSession> {
        self.kill(None).await;
        let session = self.session.take();
        self.release();
        session
    }

    /// Gives the cursor the implicit session its opening command ran in, when the command
    /// ran in a session the caller held (a change stream's resume); a cursor that already
    /// has one gives `session` back to the pool.
    pub(crate) fn adopt_session(&mut self, session: ServerSession) {
        if self.session.is_none() && self.id != 0 && self.explicit.is_none() {
            self.session = Some(session);
        } else {
            self.client.release_session(session);
        }
    }

    /// Kills the cursor on the server (best effort, the killCursors within `timeout` when
    /// given) and returns its pinned connection.
    async fn kill(&mut self, timeout: Option<std::time::Duration>) {
        // An exhaust stream still open is closed (its pending replies are never read); the
        // killCursors then goes on another connection.
        self.stream = None;
        if self.id != 0 {
            let mut op = KillCursors::new(&self.db, &self.coll, self.id_bson.clone());
            let mut ctx = self.kill_context();
            if let Some(t) = timeout {
                ctx.deadline = super::context::deadline_of(Some(t));
                ctx.csot = ctx.deadline.is_some();
                ctx.timeout_set = true;
            }
            let mut pinned = self.pinned.take();
            let _ = self
                .client
                .execute(&mut op, ctx, pinned.as_mut().map(|p| &mut p.conn))
                .await;
            // Dropped without a second kill.
            self.id = 0;
        }
    }
}

impl Drop for CursorCore {
    fn drop(&mut self) {
        // An exhaust stream still open is closed, never returned with replies pending.
        self.stream = None;
        if self.id == 0 {
            self.release();
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let client = self.client.clone();
        let mut op = KillCursors::new(&self.db, &self.coll, self.id_bson.clone());
        let ctx = self.kill_context();
        let pinned = self.pinned.take();
        let session = self.session.take();
        let span = client.inner.span.clone();
        let kill = async move {
            // killCursors is best effort: a failure leaves the cursor to the server's timeout.
            let mut pinned = pinned;
            let _ = client
                .execute(&mut op, ctx, pinned.as_mut().map(|p| &mut p.conn))
                .await;
            drop(pinned);
            if let Some(session) = session {
                client.release_session(session);
            }
        };
        runtime.spawn(tracing::Instrument::instrument(kill, span));
    }
}

impl CursorCore {
    /// Reads the next batch an exhaust cursor's server streams on the cursor's connection,
    /// within the next getMore's deadline (or socketTimeoutMS), raced against an
    /// interrupting pool clear. The connection is the future's while it reads: a read
    /// dropped midway closes it. It goes back to the cursor when the reply says more are
    /// coming, else to its pool.
    async fn read_streamed(&mut self) -> Result<()> {
        let Some(mut conn) = self.stream.take() else {
            return Ok(());
        };
        let mut op = GetMore::new(
            &self.db,
            &self.coll,
            self.id_bson.clone(),
            self.get_more.clone(),
        );
        let ctx = self.command_context();
        if let Some(session) = &mut self.session {
            session.last_use = crate::conn::clock();
        }
        // The getMore the reply answers, as command monitoring shows it.
        let mut shown = op.build(conn.description())?.body;
        if let SessionUse::Cursor(Some(lsid)) = &ctx.session {
            shown.insert("lsid", lsid.clone());
        }
        let mut params = CommandParams::for_operation(Vec::new(), true, ctx.id, ctx.deadline);
        params.lazy_batch = op.lazy_batch();
        let result = if conn.is_interrupted() {
            Err(conn.interrupt())
        } else {
            let (c, interruption) = conn.split_for_io();
            let io = c.read_streamed(&self.db, &shown, &params);
            let outcome = tokio::select! {
                biased;
                r = io => Some(r),
                () = interruption.wait() => None,
            };
            match outcome {
                Some(r) => r,
                None => Err(conn.interrupt()),
            }
        };
        let result = result.and_then(|reply| {
            self.client.inner.cluster_time.observe(&reply);
            if let Some(shared) = &self.explicit {
                shared.lock().observe(&reply);
            }
            if !is_ok(&reply) {
                return Err(Error::from_reply(&reply).with_address(conn.address()));
            }
            if let Some(array) = conn.take_raw_batch() {
                op.set_raw_batch(array);
            }
            match op.handle_reply(reply, conn.description())? {
                Step::Done(reply) => Ok(reply),
                Step::More => Err(Error::invalid_reply("a getMore reply asked for more")),
            }
        });
        match result {
            Ok(reply) => {
                self.id = reply.id;
                self.id_bson = reply.id_bson;
                self.buffer = reply.batch;
                self.post_batch_resume_token = reply.post_batch_resume_token;
                if conn.is_streaming() {
                    self.stream = Some(conn);
                }
                if self.id == 0 {
                    self.release();
                }
                Ok(())
            }
            Err(e) => {
                if e.is_network_error() || e.is_state_change() {
                    self.client.inner.topology.handle_conn_error(&conn, &e);
                }
                if e.is_network_error() {
                    if let Some(shared) = &self.explicit {
                        shared.lock().mark_dirty();
                    }
                    if !e.is_timeout() {
                        // The stream died with its connection, and the cursor with it.
                        self.id = 0;
                    }
                    if let Some(session) = &mut self.session {
                        session.dirty = true;
                    }
                }
                // A connection still streaming is closed when dropped here.
                let expired = ctx.deadline.is_some_and(|d| crate::conn::clock() >= d);
                Err(if ctx.timeout_set {
                    e.into_timeout(expired)
                } else {
                    e
                })
            }
        }
    }
}
