//! Exhaust getMores (OP_MSG `exhaustAllowed`): the stream of `moreToCome` replies mongod
//! sends for one request.

use std::sync::Arc;

use bson::{Bson, Document};
use mongo_wire::{MessageWriter, MsgFlags};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use super::{Outcome, Request, run, write_reply_to};
use crate::node::{ConnState, Node};

/// Whether `req` is a getMore that allows exhaust (OP_MSG `exhaustAllowed`).
pub(super) fn wanted(req: &Request, name: &str) -> bool {
    !req.legacy && req.flags.contains(MsgFlags::EXHAUST_ALLOWED) && name == "getMore"
}

/// An exhaust cursor's getMore (`exhaustAllowed`), as mongod answers it: while a reply
/// leaves the cursor open with a non-empty batch, it goes out with `moreToCome` and the same
/// getMore runs again (fail points and reply faults apply to each run), each reply
/// answering the one before; the stream ends with a reply without the flag (the cursor
/// exhausted, an error, or an empty batch of a tailable cursor). A reply that cannot be
/// written (the client closed the connection) kills the cursor; `Err` then closes the
/// connection.
pub(super) async fn stream_get_more<S: AsyncRead + AsyncWrite + Unpin>(
    (stream, writer): (&mut S, &mut MessageWriter),
    node: &Arc<Node>,
    req: &Request,
    first: Document,
    conn: &mut ConnState,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), ()> {
    let mut reply = first;
    let mut response_to = req.id;
    loop {
        let ok = reply.get("ok").is_some_and(crate::query::truthy);
        let cursor = reply.get_document("cursor").ok();
        let id = cursor
            .and_then(|c| c.get("id"))
            .and_then(|v| match v {
                Bson::Int64(i) => Some(*i),
                Bson::Int32(i) => Some(i64::from(*i)),
                _ => None,
            })
            .unwrap_or(0);
        let non_empty = cursor
            .and_then(|c| c.get_array("nextBatch").ok())
            .is_some_and(|b| !b.is_empty());
        let more = ok && id != 0 && non_empty;
        let flags = if more {
            MsgFlags::MORE_TO_COME
        } else {
            MsgFlags::empty()
        };
        match write_reply_to(stream, writer, req, response_to, reply, flags).await {
            Ok(sent) => response_to = sent,
            Err(()) => {
                if id != 0 {
                    node.drop_cursor(id);
                }
                return Err(());
            }
        }
        if !more {
            return Ok(());
        }
        match run(node, req, req.cmd.clone(), conn, shutdown).await {
            Outcome::Reply(r) => reply = r,
            Outcome::Close => {
                node.drop_cursor(id);
                return Err(());
            }
        }
    }
}
