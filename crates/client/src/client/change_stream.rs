//! [`ChangeStream`]: a change stream over a [`CursorCore`] (a tailable-await aggregate
//! cursor) with the change streams specification's resume rules from
//! [`ResumeState`](crate::operation::ResumeState): the cached resume token, and one resume
//! (kill the old cursor, select a server with the original read preference, run the
//! aggregate again with `startAfter` / `resumeAfter` / `startAtOperationTime`) after each
//! resumable getMore error.
//!
//! Cancellation: as [`Cursor`](super::Cursor), the step in flight (a getMore, a resume)
//! lives in the stream, so a dropped `next` loses nothing.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bson::Document;
use futures_core::Stream;
use serde::de::DeserializeOwned;

use super::Client;
use super::context::deadline_of;
use super::cursor::CursorCore;
use super::executor::SessionUse;
use super::session::ServerSession;
use super::stream::decode;
use crate::crud::{ChangeStreamEvent, ChangeStreamOptions, ResumeToken};
use crate::error::Result;
use crate::operation::{
    GetMoreOptions, OpenChangeStream, ResumeState, StreamStart, WatchTarget,
    is_resumable_change_stream_error,
};

/// The untyped state of a change stream.
struct Inner {
    /// The handle's view of the client (its concerns, its explicit session).
    client: Client,
    db: String,
    target: WatchTarget,
    pipeline: Vec<Document>,
    options: ChangeStreamOptions,
    state: ResumeState,
    /// The open cursor; `None` once closed (by the user, an error that ends the stream, or a
    /// failed resume), or while a resume is due.
    core: Option<CursorCore>,
    /// A `next` call timed out (client-side operation timeouts): the stream stays open and
    /// the next call resumes (kills the old cursor, runs the aggregate again) before any
    /// getMore.
    needs_resume: bool,
    /// The deadline of the current `next` call when the stream has a `timeoutMS`: its
    /// getMores and a resume's aggregate share it (`Some(None)`: `timeoutMS` 0, no limit).
    /// `None`: each command gets its own.
    call: Option<Option<Instant>>,
}

impl Inner {
    /// Runs the aggregate from `start` and caches what its reply says. A resume runs in the
    /// implicit session of the cursor it replaces, `session` (change streams spec: the same
    /// session as the previous attempt's command).
    async fn aggregate(
        &mut self,
        start: &StreamStart,
        session: Option<ServerSession>,
    ) -> Result<CursorCore> {
        let mut op =
            OpenChangeStream::new(&self.db, &self.target, &self.pipeline, &self.options, start);
        let mut ctx = self.client.read_context();
        if let Some(deadline) = self.call {
            ctx.deadline = deadline;
            ctx.csot = deadline.is_some();
            ctx.timeout_set = true;
        }
        let session = match session {
            Some(s) if matches!(ctx.session, SessionUse::Implicit) => {
                ctx.session = SessionUse::Cursor(Some(s.id.clone()));
                Some(s)
            }
            Some(s) => {
                self.client.release_session(s);
                None
            }
            None => None,
        };
        let get_more = GetMoreOptions {
            batch_size: self.options.batch_size,
            max_time: self.options.max_await_time,
            comment: self.options.comment.clone(),
            exhaust: false,
        };
        // The reply's `ns` names the getMores' collection (database and cluster streams).
        let coll = match &self.target {
            WatchTarget::Collection(c) => c.as_str(),
            WatchTarget::Database | WatchTarget::Cluster => "$cmd.aggregate",
        };
        // The path every cursor opens by: the maxAwaitTimeMS / timeoutMS rules, the
        // iteration-mode deadlines of a tailable awaitData cursor.
        let opened = self
            .client
            .open_cursor_with(&mut op, &self.db, coll, get_more, Some(ctx))
            .await;
        let mut core = match opened {
            Ok(core) => core,
            Err(e) => {
                if let Some(mut s) = session {
                    s.dirty |= e.is_network_error();
                    self.client.release_session(s);
                }
                return Err(e);
            }
        };
        if let Some(s) = session {
            core.adopt_session(s);
        }
        self.state.on_aggregate(
            op.wire_version,
            core.buffered() == 0,
            core.post_batch_resume_token(),
            op.operation_time,
        );
        Ok(core)
    }

    /// One resume: the old cursor is killed (best effort, on its own server; errors are
    /// suppressed), its session carries on, and the aggregate runs again from the cached
    /// resume token. A timeout leaves the resume due for the next call (client-side
    /// operation timeouts spec: the stream is not invalidated); any other error closes the
    /// stream.
    async fn resume(&mut self) -> Result<()> {
        self.needs_resume = true;
        let session = match self.core.take() {
            Some(old) => old.close_keeping_session().await,
            None => None,
        };
        let start = self.state.resume_start();
        match self.aggregate(&start, session).await {
            Ok(core) => {
                self.core = Some(core);
                self.needs_resume = false;
                Ok(())
            }
            Err(e) => {
                self.needs_resume = e.is_timeout();
                Err(e)
            }
        }
    }

    /// The next event without waiting beyond one getMore (and one resume): `None` when
    /// that getMore's batch was empty, or when the stream is closed.
    async fn next_if_any(&mut self) -> Result<Option<Document>> {
        if self.needs_resume {
            // The previous call timed out: resume without a getMore first.
            self.resume().await?;
        }
        let Some(core) = &mut self.core else {
            return Ok(None);
        };
        if core.buffered() == 0 {
            if core.id() == 0 {
                // The server closed the cursor (after an `invalidate`).
                self.close().await;
                return Ok(None);
            }
            core.set_next_deadline(self.call);
            let fetched = core.get_more().await;
            core.set_next_deadline(None);
            match fetched {
                Ok(()) => self
                    .state
                    .on_batch(core.buffered() == 0, core.post_batch_resume_token()),
                Err(e) if e.is_timeout() => {
                    // Not resumed within this call's timeout: the next call resumes.
                    self.needs_resume = true;
                    return Err(e);
                }
                Err(e) if is_resumable_change_stream_error(&e, self.state.wire_version()) => {
                    self.resume().await?;
                }
                Err(e) => return Err(e),
            }
        }
        let Some(core) = &mut self.core else {
            return Ok(None);
        };
        let popped = core.pop_buffered();
        let last = core.buffered() == 0;
        let pbrt = core.post_batch_resume_token().cloned();
        let document = match popped {
            Ok(Some(document)) => document,
            Ok(None) => return Ok(None),
            Err(e) => {
                // A buffered event that does not decode: the reply broke the protocol.
                self.close().await;
                return Err(e);
            }
        };
        if let Err(e) = self.state.on_document(&document, last, pbrt.as_ref()) {
            self.close().await;
            return Err(e);
        }
        Ok(Some(document))
    }

    /// Whether the stream is open (a cursor, or a resume due).
    fn is_open(&self) -> bool {
        self.core.is_some() || self.needs_resume
    }

    /// Kills the cursor (best effort) and closes the stream.
    async fn close(&mut self) {
        self.needs_resume = false;
        if let Some(core) = self.core.take() {
            core.close().await;
        }
    }
}

/// A step in flight, owning the state until it is done.
type Pending = Pin<Box<dyn Future<Output = (Box<Inner>, Result<Option<Document>>)> + Send>>;

enum State {
    Idle(Box<Inner>),
    Busy(Pending),
    Closed,
}

/// A change stream: the changes to a collection, a database or the whole deployment, as
/// events decoded as `T` (by default a [`ChangeStreamEvent`]; a `Document` for a pipeline
/// that reshapes them, through [`with_type`](Self::with_type)). Opened by `watch` on a
/// [`Collection`](crate::Collection), a [`Database`](crate::Database) or a
/// [`Client`](crate::Client).
///
/// It resumes by itself, once per error, after a resumable error (network errors,
/// `CursorNotFound`, errors the server labels `ResumableChangeStreamError`): the old cursor
/// is killed and the aggregate runs again after the last resume token.
///
/// With a `timeoutMS` (on the `watch` or its handle), it bounds the aggregate and then
/// each call ([`next`](Self::next), [`next_if_any`](Self::next_if_any), each item of the
/// [`Stream`]) as a whole: every getMore and a resume the call makes. A getMore carries
/// `maxAwaitTimeMS` (which must be less than `timeoutMS`) capped by the time left. A call
/// that times out leaves the stream open: call it again (it resumes first, without a
/// getMore), or close the stream and open a new one. A timeout before any event came back
/// says the server could not get through the oplog in time: close the stream and open it
/// again with a higher `timeoutMS`.
///
/// Read it as a [`Stream`] of `Result<T>` (it ends only when the server closes the stream,
/// after an `invalidate` event, or it is closed), with [`next`](Self::next), or with
/// [`next_if_any`](Self::next_if_any), which returns after at most one getMore. To store a
/// resume token that is always up to date — also while the server returns empty batches —
/// iterate with `next_if_any` and read [`resume_token`](Self::resume_token) after each call:
///
/// ```no_run
/// # async fn f(coll: mongo_client::Collection) -> mongo_client::Result<()> {
/// let mut stream = coll.watch([]).await?;
/// loop {
///     if let Some(event) = stream.next_if_any().await? {
///         println!("{:?}", event.operation_type);
///     }
///     let token = stream.resume_token(); // save it
///     # let _ = token; break;
/// }
/// # Ok(()) }
/// ```
pub struct ChangeStream<T = ChangeStreamEvent<Document>> {
    state: State,
    /// The current call's deadline (its `timeoutMS` from when it began), once it began:
    /// the steps of one `next` share it.
    call: Option<Option<Option<Instant>>>,
    token: Option<ResumeToken>,
    _type: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for ChangeStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeStream")
            .field("resume_token", &self.token)
            .field("closed", &matches!(self.state, State::Closed))
            .field("type", &std::any::type_name::<T>())
            .finish()
    }
}

impl<T> ChangeStream<T> {
    /// Runs the first aggregate.
    pub(crate) async fn open(
        client: Client,
        db: String,
        target: WatchTarget,
        pipeline: Vec<Document>,
        options: ChangeStreamOptions,
    ) -> Result<Self> {
        let mut inner = Inner {
            client,
            db,
            target,
            pipeline,
            state: ResumeState::new(&options),
            options,
            core: None,
            needs_resume: false,
            call: None,
        };
        let core = inner.aggregate(&StreamStart::Original, None).await?;
        inner.core = Some(core);
        Ok(ChangeStream {
            call: None,
            token: inner.state.token().cloned().map(ResumeToken::from),
            state: State::Idle(Box::new(inner)),
            _type: PhantomData,
        })
    }

    /// The same stream, its events decoded as `U`.
    pub fn with_type<U>(self) -> ChangeStream<U> {
        ChangeStream {
            state: self.state,
            call: self.call,
            token: self.token,
            _type: PhantomData,
        }
    }

    /// The resume token a resume would use now: the last event's (or its batch's
    /// `postBatchResumeToken`), updated also by empty batches. `None` before the first
    /// batch that carries one.
    pub fn resume_token(&self) -> Option<ResumeToken> {
        self.token.clone()
    }

    /// Whether the stream may return more events (not closed by the user, the server or an
    /// error that ends it).
    pub fn is_alive(&self) -> bool {
        match &self.state {
            State::Idle(inner) => inner.is_open(),
            State::Busy(_) => true,
            State::Closed => false,
        }
    }

    /// Takes the result of a finished step.
    fn finish(&mut self, inner: Box<Inner>) {
        self.token = inner.state.token().cloned().map(ResumeToken::from);
        self.state = if inner.is_open() {
            State::Idle(inner)
        } else {
            State::Closed
        };
    }

    /// Drives one step (a buffered event, or one getMore and perhaps a resume).
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Document>>> {
        loop {
            match &mut self.state {
                State::Closed => return Poll::Ready(Ok(None)),
                State::Busy(pending) => {
                    let Poll::Ready((inner, result)) = pending.as_mut().poll(cx) else {
                        return Poll::Pending;
                    };
                    self.finish(inner);
                    return Poll::Ready(result);
                }
                State::Idle(_) => {
                    let State::Idle(mut inner) = std::mem::replace(&mut self.state, State::Closed)
                    else {
                        return Poll::Ready(Ok(None));
                    };
                    // The call's deadline, set when the call began.
                    inner.call = match self.call {
                        Some(call) => call,
                        None => {
                            let call = inner.client.timeout().map(|t| deadline_of(Some(t)));
                            self.call = Some(call);
                            call
                        }
                    };
                    self.state = State::Busy(Box::pin(async move {
                        let result = inner.next_if_any().await;
                        (inner, result)
                    }));
                }
            }
        }
    }

    /// The next event, undecoded, from as many getMores as it takes; `None` once closed.
    /// The steps of one call share its `timeoutMS` deadline.
    fn poll_document(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Document>>> {
        let ready = loop {
            match self.poll_step(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => break Some(Err(e)),
                Poll::Ready(Ok(Some(d))) => break Some(Ok(d)),
                Poll::Ready(Ok(None)) => {
                    if matches!(self.state, State::Closed) {
                        break None;
                    }
                    // An empty batch: the server waited maxAwaitTimeMS; ask again.
                }
            }
        };
        self.call = None;
        Poll::Ready(ready)
    }

    /// One step as a call of its own (its own `timeoutMS` deadline).
    fn poll_single_step(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Document>>> {
        let step = std::task::ready!(self.poll_step(cx));
        self.call = None;
        Poll::Ready(step)
    }

    /// Closes the stream now: kills its cursor on the server (best effort) before
    /// returning. Dropping the stream does the same in the background.
    pub async fn close(mut self) {
        if let State::Busy(pending) = &mut self.state {
            let (inner, _) = pending.await;
            self.state = State::Idle(inner);
        }
        if let State::Idle(mut inner) = std::mem::replace(&mut self.state, State::Closed) {
            inner.close().await;
        }
    }
}

impl<T: DeserializeOwned + 'static> ChangeStream<T> {
    /// The next event, waiting (getMore after getMore) until there is one; `None` once the
    /// stream is closed (after an `invalidate` event).
    ///
    /// # Errors
    /// Errors that are not resumable, and those of a resume; an event without `_id` (the
    /// stream cannot resume: it is closed); an event that does not decode as `T`.
    pub async fn next(&mut self) -> Result<Option<T>> {
        // A new call: a new deadline (a step a dropped call left running keeps its own).
        self.call = None;
        std::future::poll_fn(|cx| self.poll_document(cx))
            .await
            .transpose()?
            .map(decode)
            .transpose()
    }

    /// The next event without waiting beyond one getMore: `None` when the server had none
    /// within `maxAwaitTimeMS` (the [`resume_token`](Self::resume_token) may still have
    /// moved), or the stream is closed.
    ///
    /// # Errors
    /// As [`next`](Self::next).
    pub async fn next_if_any(&mut self) -> Result<Option<T>> {
        self.call = None;
        std::future::poll_fn(|cx| self.poll_single_step(cx))
            .await?
            .map(decode)
            .transpose()
    }
}

impl<T: DeserializeOwned + 'static> Stream for ChangeStream<T> {
    type Item = Result<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut()
            .poll_document(cx)
            .map(|next| next.map(|d| d.and_then(decode)))
    }
}
