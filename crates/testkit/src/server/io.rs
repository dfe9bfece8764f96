//! Writing replies, and noticing a client that hung up while its command runs.

use std::borrow::Cow;

use bson::{Document, RawDocumentBuf};
use mongo_wire::{MessageWriter, MsgFlags, OpMsg, OpReply, is_compressible};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader};

use super::{Request, next_request_id};

/// Resolves when the client has closed its side of the connection (EOF or a reset), as mongod
/// notices through its operations' interrupt checks: an operation whose client is gone is killed
/// (ClientDisconnect) at its next interruptible point, so a fail point's `blockConnection` sleep,
/// a read concern or write concern wait, an awaitable hello or an awaitData getMore ends there and
/// the rest of the command (a blocked insert, say) never runs.
///
/// Bytes the client sent meanwhile (a pipelined request) stay in the `BufReader` for the next
/// read; then this never resolves, as a hang-up cannot be told apart until they are read.
/// `fill_buf` keeps what it read in the buffer, so dropping this future loses nothing.
pub(super) async fn client_gone<S: AsyncRead + Unpin>(stream: &mut BufReader<S>) {
    match stream.fill_buf().await {
        Ok(bytes) if !bytes.is_empty() => std::future::pending().await,
        _ => {}
    }
}

pub(super) async fn write_reply<S: AsyncWrite + Unpin>(
    stream: &mut S,
    writer: &mut MessageWriter,
    req: &Request,
    reply: Document,
    flags: MsgFlags,
) -> Result<i32, ()> {
    write_reply_to(stream, writer, req, req.id, reply, flags).await
}

pub(super) async fn write_reply_to<S: AsyncWrite + Unpin>(
    stream: &mut S,
    writer: &mut MessageWriter,
    req: &Request,
    response_to: i32,
    reply: Document,
    flags: MsgFlags,
) -> Result<i32, ()> {
    let raw = match RawDocumentBuf::try_from(&reply) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "reply could not be encoded");
            return Err(());
        }
    };
    let name = req
        .cmd
        .keys()
        .next()
        .map(String::as_str)
        .unwrap_or_default();
    let compressor = req.compressor.filter(|_| is_compressible(name));
    let id = next_request_id();
    let res = if req.legacy {
        let msg = OpReply::new(vec![Cow::Owned(raw)]);
        writer
            .write_message(stream, &msg, id, response_to, compressor)
            .await
    } else {
        let msg = OpMsg::new(raw).with_flags(flags);
        writer
            .write_message(stream, &msg, id, response_to, compressor)
            .await
    };
    match res {
        Ok(()) => Ok(id),
        Err(e) => {
            tracing::debug!(error = %e, "write failed");
            Err(())
        }
    }
}
