//! A connection whose reply is late: client-side operation timeouts without a storm of new
//! connections.
//!
//! When an operation's deadline (`timeoutMS`) expires after its request was written whole,
//! the reply is merely late: the connection is kept, in state *pending response*, with how
//! much of the reply was already read ([`ReplyProgress`], kept by a counting reader around
//! the stream, so that a read future dropped part-way loses no count). It goes back to its
//! pool; the next check-out (or the next command on a pinned connection) first reads the
//! rest of the late reply and throws it away ([`Connection::drain_pending`]), within the
//! check-out's own deadline and at most the client's limit ([`PENDING_RESPONSE_LIMIT`] by
//! default) after the timeout. A reply that does not come by then, a broken stream, or a
//! reply that is not the awaited one closes the connection. A check-out whose deadline expires first leaves the
//! connection pending (its progress kept) in the pool. No byte of a late reply is ever
//! taken for the reply of a later command: draining reads raw bytes, counted from the
//! header's length, and checks the header's `responseTo`.
//!
//! Only a request written whole can be pending: a deadline that expires while writing
//! leaves the stream in the middle of a message, and the connection is closed.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use mongo_wire::{HEADER_LEN, Header, OpCode};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use super::{Connection, State, clock};
use crate::error::{Error, Result};

/// How long after its timeout a late reply may still arrive before its connection is closed,
/// by default (the same three seconds the newer CMAP specification gives a pending
/// response); `ClientBuilder::pending_response_limit` changes it.
pub const PENDING_RESPONSE_LIMIT: Duration = Duration::from_secs(3);

/// The bytes of a reply's start kept while it is read: the header and OP_MSG's flag bits.
const KEPT: usize = HEADER_LEN + 4;

/// The OP_MSG flag that announces another reply after this one.
const MORE_TO_COME: u32 = 1 << 1;

/// How much of the current reply has been read off the stream.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct ReplyProgress {
    /// Bytes of the reply consumed from the stream.
    consumed: usize,
    /// Its first bytes (header, OP_MSG flags).
    head: [u8; KEPT],
}

impl ReplyProgress {
    /// A reply starts: nothing of it read yet.
    pub(super) fn start(&mut self) {
        self.consumed = 0;
    }

    /// `bytes` of the reply were read.
    fn record(&mut self, bytes: &[u8]) {
        if let Some(room) = self.head.get_mut(self.consumed.min(KEPT)..) {
            let n = room.len().min(bytes.len());
            if let (Some(dst), Some(src)) = (room.get_mut(..n), bytes.get(..n)) {
                dst.copy_from_slice(src);
            }
        }
        self.consumed = self.consumed.saturating_add(bytes.len());
    }
}

/// A connection in state *pending response*.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Pending {
    /// The request whose reply is late.
    pub(super) request_id: i32,
    /// When its operation timed out.
    pub(super) since: Instant,
}

/// The stream as a reply's reader: counts (and keeps the start of) what it reads.
pub(super) struct Counting<'a, S> {
    pub(super) inner: &'a mut S,
    pub(super) progress: &'a mut ReplyProgress,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counting<'_, S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut *this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled
            && let Some(new) = buf.filled().get(before..)
        {
            this.progress.record(new);
        }
        polled
    }
}

/// What draining a late reply came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Drained {
    /// The connection was not pending, or its late reply was read and discarded: it is
    /// ready for a command.
    Ready,
    /// The reply did not come within the limit, the stream broke, or the
    /// reply was not the one awaited: the connection is closed.
    Closed,
    /// The caller's deadline expired first: the connection is still pending (what was read
    /// is counted) and may go back to its pool.
    TimedOut,
}

impl Connection {
    /// Whether the connection waits for a late reply.
    pub fn is_pending_response(&self) -> bool {
        matches!(self.state, State::PendingResponse(_))
    }

    /// Reads and discards the late reply of a pending connection, until `until` at most
    /// (and never past the limit after the timeout). Cancellation-safe: a
    /// dropped call leaves the connection pending with what it read counted.
    pub(crate) async fn drain_pending(&mut self, until: Option<Instant>) -> Drained {
        let State::PendingResponse(pending) = self.state else {
            return if self.state == State::Ready {
                Drained::Ready
            } else {
                Drained::Closed
            };
        };
        let hard = pending
            .since
            .checked_add(self.options.pending_response_limit)
            .unwrap_or(pending.since);
        let limit = until.map_or(hard, |u| u.min(hard));
        let read = tokio::time::timeout_at(limit.into(), self.discard_reply(pending.request_id));
        match read.await {
            Ok(Ok(())) => {
                self.state = State::Ready;
                Drained::Ready
            }
            Ok(Err(e)) => {
                tracing::debug!(target: "mongo::connection", connection = ?self.id, error = %e,
                    "a late reply could not be read: closing the connection");
                self.state = State::Broken;
                Drained::Closed
            }
            Err(_) if limit >= hard || clock() >= hard => {
                self.state = State::Broken;
                Drained::Closed
            }
            Err(_) => Drained::TimedOut,
        }
    }

    /// Reads the rest of the reply to `request_id` and throws it away. Each read is
    /// cancellation-safe and counted before the next.
    async fn discard_reply(&mut self, request_id: i32) -> Result<()> {
        let mut scratch = vec![0u8; 16 * 1024];
        let max = self.hello.max_message_size_bytes;
        loop {
            let total = if self.progress.consumed >= HEADER_LEN {
                let header = Header::parse(&self.progress.head, max).map_err(Error::from)?;
                if header.response_to != request_id {
                    return Err(Error::invalid_reply(format!(
                        "a late reply answers request {}, not {request_id}",
                        header.response_to
                    )));
                }
                let total = header.len();
                if header.op_code == OpCode::Msg && total >= KEPT && self.progress.consumed >= KEPT
                {
                    let flags = self
                        .progress
                        .head
                        .get(HEADER_LEN..KEPT)
                        .and_then(|b| <[u8; 4]>::try_from(b).ok())
                        .map_or(0, u32::from_le_bytes);
                    if flags & MORE_TO_COME != 0 {
                        return Err(Error::invalid_reply("a late reply announces more replies"));
                    }
                }
                if self.progress.consumed >= total {
                    return Ok(());
                }
                total
            } else {
                HEADER_LEN
            };
            let want = (total - self.progress.consumed).min(scratch.len());
            let Some(chunk) = scratch.get_mut(..want) else {
                return Err(Error::invalid_reply(
                    "a late reply's length is out of range",
                ));
            };
            let n = self.stream.read(chunk).await.map_err(Error::io)?;
            if n == 0 {
                return Err(Error::io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection before its late reply",
                )));
            }
            if let Some(got) = chunk.get(..n) {
                self.progress.record(got);
            }
        }
    }
}

#[cfg(test)]
#[path = "pending_tests.rs"]
mod tests;
