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

use bson::Document;
use futures_core::Stream;
use serde::de::DeserializeOwned;

use super::Client;
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
    /// failed resume).
    core: Option<CursorCore>,
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
        let executed = match self.client.execute(&mut op, ctx, None).await {
            Ok(executed) => executed,
            Err(e) => {
                if let Some(mut s) = session {
                    s.dirty |= e.is_network_error();
                    self.client.release_session(s);
                }
                return Err(e);
            }
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
        let mut core = CursorCore::new(&self.client, executed, &self.db, coll, get_more);
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

    /// The next event without waiting beyond one getMore (and one resume): `None` when
    /// that getMore's batch was empty, or when the stream is closed.
    async fn next_if_any(&mut self) -> Result<Option<Document>> {
        let Some(core) = &mut self.core else {
            return Ok(None);
        };
        if core.buffered() == 0 {
            if core.id() == 0 {
                // The server closed the cursor (after an `invalidate`).
                self.close().await;
                return Ok(None);
            }
            match core.get_more().await {
                Ok(()) => self
                    .state
                    .on_batch(core.buffered() == 0, core.post_batch_resume_token()),
                Err(e) if is_resumable_change_stream_error(&e, self.state.wire_version()) => {
                    // The old cursor is killed (best effort, on its own server; errors are
                    // suppressed); its session carries on.
                    let session = match self.core.take() {
                        Some(old) => old.close_keeping_session().await,
                        None => None,
                    };
                    let start = self.state.resume_start();
                    let core = self.aggregate(&start, session).await?;
                    self.core = Some(core);
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

    /// Kills the cursor (best effort) and closes the stream.
    async fn close(&mut self) {
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
        };
        let core = inner.aggregate(&StreamStart::Original, None).await?;
        inner.core = Some(core);
        Ok(ChangeStream {
            token: inner.state.token().cloned().map(ResumeToken::from),
            state: State::Idle(Box::new(inner)),
            _type: PhantomData,
        })
    }

    /// The same stream, its events decoded as `U`.
    pub fn with_type<U>(self) -> ChangeStream<U> {
        ChangeStream {
            state: self.state,
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
            State::Idle(inner) => inner.core.is_some(),
            State::Busy(_) => true,
            State::Closed => false,
        }
    }

    /// Takes the result of a finished step.
    fn finish(&mut self, inner: Box<Inner>) {
        self.token = inner.state.token().cloned().map(ResumeToken::from);
        self.state = if inner.core.is_some() {
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
                    self.state = State::Busy(Box::pin(async move {
                        let result = inner.next_if_any().await;
                        (inner, result)
                    }));
                }
            }
        }
    }

    /// The next event, undecoded, from as many getMores as it takes; `None` once closed.
    fn poll_document(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Document>>> {
        loop {
            match self.poll_step(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Ok(Some(d))) => return Poll::Ready(Some(Ok(d))),
                Poll::Ready(Ok(None)) => {
                    if matches!(self.state, State::Closed) {
                        return Poll::Ready(None);
                    }
                    // An empty batch: the server waited maxAwaitTimeMS; ask again.
                }
            }
        }
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
        std::future::poll_fn(|cx| self.poll_step(cx))
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
