//! [`Cursor`]: the public, typed face of a server-side cursor. It decodes each document of
//! the [`CursorCore`]'s batches into `T` (through serde; `T = Document` is passed through
//! without decoding) and is a [`futures_core::Stream`].
//!
//! Cancellation: a `getMore` in flight lives in the cursor, not in the caller's future. A
//! `try_next` or a stream poll that is dropped mid-`getMore` leaves it pending in the cursor,
//! and the next call resumes it, so no batch is lost; dropping the cursor drops the
//! `getMore` and kills the cursor on the server.

use std::any::Any;
use std::collections::VecDeque;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use bson::Document;
use futures_core::Stream;
use mongo_events::ServerAddress;
use serde::de::DeserializeOwned;

use super::cursor::CursorCore;
use crate::error::{Error, Result};

/// A `getMore` in flight, owning the core until it is done.
type Pending = Pin<Box<dyn Future<Output = (Box<CursorCore>, Result<()>)> + Send>>;

enum State {
    /// Ready for the next document.
    Idle(Box<CursorCore>),
    /// Running a `getMore`.
    Busy(Pending),
    /// Closed (by [`Cursor::close`]): nothing more.
    Closed,
}

/// A server-side cursor over documents decoded as `T`: the result of `find`, `aggregate`,
/// `listIndexes`, `listCollections` and cursor commands. It runs `getMore` as needed (on the
/// cursor's server, in its session, on its pinned connection in load-balanced mode) and kills
/// itself on the server when dropped unfinished.
///
/// Read it with [`try_next`](Self::try_next), as a [`Stream`] of `Result<T>`, all at once
/// with [`collect_all`](Self::collect_all), or a batch at a time without decoding with
/// [`next_batch`](Self::next_batch).
pub struct Cursor<T = Document> {
    state: State,
    id: i64,
    address: ServerAddress,
    pinned: bool,
    streaming: bool,
    _type: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Cursor<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cursor")
            .field("id", &self.id)
            .field("address", &self.address)
            .field("pinned", &self.pinned)
            .field("type", &std::any::type_name::<T>())
            .finish()
    }
}

/// Decodes a document as `T`; a `Document` is moved through untouched.
pub(crate) fn decode<T: DeserializeOwned + 'static>(document: Document) -> Result<T> {
    let boxed: Box<dyn Any> = Box::new(document);
    match boxed.downcast::<T>() {
        Ok(t) => Ok(*t),
        Err(boxed) => match boxed.downcast::<Document>() {
            Ok(document) => bson::deserialize_from_document(*document).map_err(|e| {
                Error::deserialization(format!(
                    "a document does not decode as {}: {e}",
                    std::any::type_name::<T>()
                ))
            }),
            Err(_) => Err(Error::deserialization("a document was lost while decoding")),
        },
    }
}

impl<T> Cursor<T> {
    pub(crate) fn new(core: CursorCore) -> Self {
        Cursor {
            id: core.id(),
            address: core.address().clone(),
            pinned: core.is_pinned(),
            streaming: core.is_streaming(),
            state: State::Idle(Box::new(core)),
            _type: PhantomData,
        }
    }

    /// The same cursor, decoding its documents as `U`.
    pub fn with_type<U>(self) -> Cursor<U> {
        let Cursor {
            state,
            id,
            address,
            pinned,
            streaming,
            ..
        } = self;
        Cursor {
            state,
            id,
            address,
            pinned,
            streaming,
            _type: PhantomData,
        }
    }

    /// The server's cursor id (0 once exhausted), as of the last batch.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The server the cursor lives on.
    pub fn address(&self) -> &ServerAddress {
        &self.address
    }

    /// Whether the cursor holds a pinned connection (load-balanced mode), as of the last
    /// batch.
    pub fn is_pinned(&self) -> bool {
        self.pinned
    }

    /// Whether the cursor holds an exhaust stream, as of the last batch: the server sends
    /// the next batch without a getMore, on a connection the cursor keeps (and closes if it
    /// is dropped before the stream ends).
    pub fn is_streaming(&self) -> bool {
        self.streaming
    }

    fn observe(&mut self, core: &CursorCore) {
        self.id = core.id();
        self.pinned = core.is_pinned();
        self.streaming = core.is_streaming();
    }

    /// Drives a pending `getMore` to its end; the core, unless closed.
    async fn core(&mut self) -> Result<Option<&mut CursorCore>> {
        if let State::Busy(pending) = &mut self.state {
            let (core, result) = pending.await;
            self.observe(&core);
            self.state = State::Idle(core);
            result?;
        }
        Ok(match &mut self.state {
            State::Idle(core) => Some(core),
            State::Busy(_) | State::Closed => None,
        })
    }

    /// The next document, undecoded: a buffered one, else from as many `getMore`s as it
    /// takes; `None` at the end.
    fn poll_document(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Document>>> {
        loop {
            match &mut self.state {
                State::Closed => return Poll::Ready(None),
                State::Busy(pending) => {
                    let Poll::Ready((core, result)) = pending.as_mut().poll(cx) else {
                        return Poll::Pending;
                    };
                    self.observe(&core);
                    self.state = State::Idle(core);
                    if let Err(e) = result {
                        return Poll::Ready(Some(Err(e)));
                    }
                }
                State::Idle(core) => {
                    match core.pop_buffered() {
                        Ok(Some(d)) => return Poll::Ready(Some(Ok(d))),
                        Ok(None) => {}
                        Err(e) => return Poll::Ready(Some(Err(e))),
                    }
                    if core.check_exhausted() {
                        self.id = 0;
                        self.pinned = core.is_pinned();
                        self.streaming = false;
                        return Poll::Ready(None);
                    }
                    let State::Idle(mut core) = std::mem::replace(&mut self.state, State::Closed)
                    else {
                        return Poll::Ready(None);
                    };
                    self.state = State::Busy(Box::pin(async move {
                        let result = core.get_more().await;
                        (core, result)
                    }));
                }
            }
        }
    }

    /// The next document without decoding it.
    async fn next_document(&mut self) -> Result<Option<Document>> {
        std::future::poll_fn(|cx| self.poll_document(cx))
            .await
            .transpose()
    }

    /// The buffered batch, or the next one from one `getMore`, as documents without
    /// decoding them (for callers that read fields straight from the documents); possibly
    /// empty for a tailable cursor with nothing new; `None` once exhausted.
    ///
    /// # Errors
    /// Network and command errors of `getMore`.
    pub async fn next_batch(&mut self) -> Result<Option<VecDeque<Document>>> {
        let Some(core) = self.core().await? else {
            return Ok(None);
        };
        let batch = core.next_batch().await;
        let (id, pinned) = (core.id(), core.is_pinned());
        self.id = id;
        self.pinned = pinned;
        batch
    }

    /// How many documents are buffered (readable without a round trip).
    pub fn buffered(&self) -> usize {
        match &self.state {
            State::Idle(core) => core.buffered(),
            State::Busy(_) | State::Closed => 0,
        }
    }

    /// Closes the cursor now: kills it on the server (`killCursors`, best effort) and
    /// returns its pinned connection before returning. Dropping a cursor does the same in
    /// the background.
    pub async fn close(self) {
        self.close_within(None).await;
    }

    /// As [`close`](Self::close), its `killCursors` within `timeout` (its `timeoutMS`;
    /// `None`: the `timeoutMS` of the handle that opened the cursor, afresh).
    pub async fn close_within(mut self, timeout: impl Into<Option<std::time::Duration>>) {
        // A pending getMore is finished first, so the kill names a cursor the server knows.
        let _ = self.core().await;
        if let State::Idle(core) = std::mem::replace(&mut self.state, State::Closed) {
            core.close_within(timeout.into()).await;
        }
    }
}

impl<T: DeserializeOwned + 'static> Cursor<T> {
    /// The next document, running `getMore` when the batch is used up; `None` at the end.
    ///
    /// # Errors
    /// Network and command errors of `getMore`; a document that does not decode as `T`
    /// ([`ErrorKind::Deserialization`](crate::ErrorKind::Deserialization)).
    pub async fn try_next(&mut self) -> Result<Option<T>> {
        // One timeoutMS for the whole call, however many getMores it takes.
        if let State::Idle(core) = &mut self.state {
            core.begin_next();
        }
        let next = self.next_document().await;
        if let State::Idle(core) = &mut self.state {
            core.end_next();
        }
        next?.map(decode).transpose()
    }

    /// The next document without waiting beyond one `getMore`: a buffered one, else the
    /// first of one `getMore`'s batch. `None` when that batch was empty (a tailable cursor
    /// with nothing new: the cursor stays open, ask again later) or the cursor is exhausted.
    ///
    /// # Errors
    /// As [`try_next`](Self::try_next).
    pub async fn try_next_once(&mut self) -> Result<Option<T>> {
        let Some(core) = self.core().await? else {
            return Ok(None);
        };
        let next = core.try_next_once().await;
        let (id, pinned) = (core.id(), core.is_pinned());
        self.id = id;
        self.pinned = pinned;
        next?.map(decode).transpose()
    }

    /// Every remaining document.
    ///
    /// # Errors
    /// As [`try_next`](Self::try_next); a cursor still open on the server is killed before
    /// the error is returned.
    pub async fn collect_all(mut self) -> Result<Vec<T>> {
        let mut out = Vec::with_capacity(self.buffered());
        loop {
            match self.try_next().await {
                Ok(Some(d)) => out.push(d),
                Ok(None) => return Ok(out),
                Err(e) => {
                    self.close().await;
                    return Err(e);
                }
            }
        }
    }
}

impl<T: DeserializeOwned + 'static> Stream for Cursor<T> {
    type Item = Result<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut()
            .poll_document(cx)
            .map(|next| next.map(|d| d.and_then(decode)))
    }
}

#[cfg(test)]
mod tests {
    use bson::doc;
    use serde::Deserialize;

    use super::decode;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Point {
        x: i32,
        y: i32,
    }

    #[test]
    fn documents_decode_as_the_type_asked_for() {
        let d = doc! {"x": 1, "y": 2, "_id": 7};
        assert_eq!(decode::<Document>(d.clone()).unwrap(), d);
        assert_eq!(decode::<Point>(d).unwrap(), Point { x: 1, y: 2 });
        let e = decode::<Point>(doc! {"x": "one"}).unwrap_err();
        assert!(
            matches!(e.kind(), crate::ErrorKind::Deserialization(m) if m.contains("Point")),
            "{e}"
        );
    }

    use bson::Document;
}
