//! The real connection, heir of PyMongo's `SocketInfo`: a stream with its handshake reply,
//! address, pool generation and credential set; `command`, `send_message` /
//! `receive_message`, `write_command`, `legacy_write` and `check_auth`.
//!
//! A network error (or a future dropped in the middle of a command) leaves the connection
//! *broken*: it is closed and its pool never gets it back ([`Connection::is_reusable`]).
//!
//! The rooms: this file is the stream and its round trips (`send_message`,
//! `receive_message`, one deadline per round trip) and the command path; `establish.rs` opens
//! a connection (stream, handshake, authentication, `check_auth`); `handshake.rs` is the
//! sans-I/O hello and client metadata; `legacy.rs` the pre-3.6 opcodes; `events.rs` the
//! command-monitoring bookkeeping; `options.rs` how connections are opened; `exhaust.rs` the replies an exhaust cursor's server
//! streams; `stream.rs` and `tls.rs` the bytes underneath.
#![allow(
    clippy::disallowed_methods,
    reason = "the connection owns its clock: it times round trips for events and deadlines"
)]

mod establish;
mod events;
mod exhaust;
pub mod handshake;
mod legacy;
mod options;
mod pending;
mod socks5;
pub(crate) mod stream;
pub(crate) mod tls;

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use bson::{Bson, Document, RawDocumentBuf, doc};
use mongo_auth::CredentialSet;
use mongo_events::command::ConnectionInfo;
use mongo_events::{ConnectionId, Generation, ServerAddress, ServiceId};
use mongo_wire::{
    Compressor, DocumentSequence, Encode, MessageReader, MessageRef, MessageWriter, MsgFlags, OpMsg,
};

pub(crate) use exhaust::supports_exhaust;
pub use handshake::{
    DriverInfo, HelloReply, MAX_METADATA_SIZE, ServerApi, append_driver_info, client_metadata,
};
pub use legacy::LegacyWrite;
pub use options::{ConnectionOptions, DEFAULT_IDLE_CHECK_THRESHOLD};
pub(crate) use pending::Drained;
pub use pending::PENDING_RESPONSE_LIMIT;

use crate::error::{Error, Result};
use crate::monitoring::{CommandInfo, CommandMonitor};
use crate::operation::{ConnectionDescription, is_ok};
use events::InFlight;
use stream::Stream;

static REQUEST_ID: AtomicI32 = AtomicI32::new(1);

/// A fresh wire-protocol request id (process-wide, wrapping, never 0).
pub fn next_request_id() -> i32 {
    loop {
        let id = REQUEST_ID.fetch_add(1, Ordering::Relaxed);
        if id != 0 {
            return id;
        }
    }
}

/// The oldest wire version that speaks OP_MSG (MongoDB 3.6).
pub const OP_MSG_WIRE_VERSION: i32 = 6;

/// The clock of connections: tokio's, so that a paused test clock applies to them too.
pub(crate) fn clock() -> Instant {
    tokio::time::Instant::now().into_std()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Idle between commands: safe to reuse.
    Ready,
    /// A request was written and its reply not fully read (a dropped future leaves this).
    InFlight,
    /// A network error happened: closed.
    Broken,
    /// An operation's deadline expired after its request was written whole: the reply is
    /// late, and is read and discarded before the next command (`pending.rs`).
    PendingResponse(pending::Pending),
}

/// A reply read off the wire, owned.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Reply {
    /// An OP_MSG reply.
    Msg {
        /// The request this answers.
        response_to: i32,
        /// The body.
        body: Document,
        /// Whether the server will send another reply without a request (exhaust).
        more_to_come: bool,
    },
    /// An OP_REPLY (legacy).
    Legacy {
        /// The request this answers.
        response_to: i32,
        /// The cursor id.
        cursor_id: i64,
        /// Whether the query failed (the document is an `$err` document).
        query_failure: bool,
        /// The documents.
        documents: Vec<Document>,
    },
}

impl Reply {
    /// The command reply document: the OP_MSG body or the first OP_REPLY document.
    pub fn body(&self) -> Option<&Document> {
        match self {
            Reply::Msg { body, .. } => Some(body),
            Reply::Legacy { documents, .. } => documents.first(),
        }
    }

    fn into_body(self) -> Option<Document> {
        match self {
            Reply::Msg { body, .. } => Some(body),
            Reply::Legacy { documents, .. } => documents.into_iter().next(),
        }
    }
}

/// Per-command settings beyond the command document.
#[derive(Clone, Debug, Default)]
pub(crate) struct CommandParams {
    /// Kind-1 document sequences (OP_MSG only).
    pub(crate) sequences: Vec<DocumentSequence>,
    /// Publish events and log messages.
    pub(crate) monitored: bool,
    /// The operation id for events.
    pub(crate) operation_id: Option<i64>,
    /// Do not wait for a reply (`moreToCome`, w:0 writes).
    pub(crate) unacknowledged: bool,
    /// The operation's deadline: the round trip fails when it is not done by then, or by
    /// socketTimeoutMS, whichever comes first. A socket timeout closes the connection; the
    /// deadline after a whole request leaves it waiting for the late reply (`pending.rs`).
    pub(crate) deadline: Option<Instant>,
    /// The key of the reply's `cursor` batch array to leave undecoded (unmonitored commands
    /// only): [`Connection::take_raw_batch`] then gives its bytes.
    pub(crate) lazy_batch: Option<&'static str>,
    /// Set the OP_MSG `exhaustAllowed` flag (a getMore of an exhaust cursor): the server may
    /// answer with `moreToCome` and stream further replies
    /// ([`Connection::is_streaming`], [`Connection::read_streamed`]).
    pub(crate) exhaust_allowed: bool,
}

impl CommandParams {
    /// The settings of an operation's command for the executor: monitored, with the
    /// operation's id and deadline, its document sequence, `moreToCome` when unacknowledged.
    pub(crate) fn for_operation(
        sequences: Vec<DocumentSequence>,
        acknowledged: bool,
        operation_id: i64,
        deadline: Option<Instant>,
    ) -> Self {
        CommandParams {
            sequences,
            monitored: true,
            operation_id: Some(operation_id),
            unacknowledged: !acknowledged,
            deadline,
            lazy_batch: None,
            exhaust_allowed: false,
        }
    }
}

/// A connection to one server, after its handshake (and authentication).
pub struct Connection {
    id: ConnectionId,
    address: ServerAddress,
    stream: Stream,
    reader: MessageReader,
    writer: MessageWriter,
    hello: HelloReply,
    description: ConnectionDescription,
    compressor: Option<Compressor>,
    generation: Generation,
    auth: CredentialSet,
    options: Arc<ConnectionOptions>,
    monitor: CommandMonitor,
    state: State,
    info: ConnectionInfo,
    established_at: Instant,
    /// When the last reply was read (the handshake's, at first).
    last_used: Instant,
    /// The monitored command whose started event was published and whose outcome was not
    /// (set only while a monitored command is in flight).
    in_flight: Option<InFlight>,
    /// The batch key the next reply may leave undecoded (set for one round trip).
    lazy_batch: Option<&'static str>,
    /// The undecoded batch array of the last reply (see [`CommandParams::lazy_batch`]).
    raw_batch: Option<Vec<u8>>,
    /// The last reply had `moreToCome`: the server streams another one (exhaust), and the
    /// connection takes no request until a reply without it is read.
    more_to_come: bool,
    /// The request id of the last reply read, which a streamed reply answers.
    last_reply_id: i32,
    /// How much of the reply being read has arrived (a late reply is drained from it).
    progress: pending::ReplyProgress,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id)
            .field("address", &self.address)
            .field("generation", &self.generation)
            .field("max_wire_version", &self.hello.max_wire_version)
            .field("compressor", &self.compressor)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

fn to_raw(doc: &Document) -> Result<RawDocumentBuf> {
    RawDocumentBuf::try_from(doc).map_err(Error::from)
}

fn to_doc(raw: &bson::RawDocument) -> Result<Document> {
    Document::try_from(raw).map_err(|e| Error::invalid_reply(format!("undecodable reply: {e}")))
}

/// Decodes a reply body; with `lazy_batch`, the `cursor` document's array of that name is
/// left out of the document and its bytes are returned instead (one copy), for the cursor to
/// decode document by document.
pub(crate) fn decode_body(
    raw: &bson::RawDocument,
    lazy_batch: Option<&str>,
) -> Result<(Document, Option<Vec<u8>>)> {
    let Some(key) = lazy_batch else {
        return to_doc(raw).map(|d| (d, None));
    };
    let undecodable =
        |e: bson::error::Error| Error::invalid_reply(format!("undecodable reply: {e}"));
    let mut body = Document::new();
    let mut batch = None;
    for element in raw {
        let (name, value) = element.map_err(undecodable)?;
        let value = match value {
            bson::RawBsonRef::Document(cursor) if name.as_str() == "cursor" => {
                let mut c = Document::new();
                for element in cursor {
                    let (name, value) = element.map_err(undecodable)?;
                    match value {
                        bson::RawBsonRef::Array(a) if name.as_str() == key && batch.is_none() => {
                            batch = Some(a.as_bytes().to_vec());
                        }
                        other => {
                            c.insert(name.as_str(), Bson::try_from(other).map_err(undecodable)?);
                        }
                    }
                }
                Bson::Document(c)
            }
            other => Bson::try_from(other).map_err(undecodable)?,
        };
        body.insert(name.as_str(), value);
    }
    Ok((body, batch))
}

fn command_name(cmd: &Document) -> String {
    cmd.keys().next().cloned().unwrap_or_default()
}

/// Why a round trip ran out of time, for its error message.
fn timeout_error(socket_timeout: Option<Duration>, by_deadline: bool) -> Error {
    let text = match (by_deadline, socket_timeout) {
        (true, _) => "the operation's timeoutMS expired during the round trip".to_owned(),
        (false, Some(d)) => format!("socket timeout after {d:?}"),
        (false, None) => "socket timeout".to_owned(),
    };
    Error::io(std::io::Error::new(std::io::ErrorKind::TimedOut, text))
}

impl Connection {
    /// The driver's id for the connection.
    pub fn id(&self) -> ConnectionId {
        self.id
    }

    /// The server's address.
    pub fn address(&self) -> &ServerAddress {
        &self.address
    }

    /// The pool generation the connection was created in.
    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// The handshake reply.
    pub fn hello(&self) -> &HelloReply {
        &self.hello
    }

    /// What operations may know of the connection (server type, limits, ...).
    pub(crate) fn description(&self) -> &ConnectionDescription {
        &self.description
    }

    /// The server's maxWireVersion.
    pub fn max_wire_version(&self) -> i32 {
        self.hello.max_wire_version
    }

    /// The `serviceId` (load-balanced mode).
    pub fn service_id(&self) -> Option<ServiceId> {
        self.hello.service_id
    }

    /// The compressor negotiated in the handshake.
    pub fn compressor(&self) -> Option<Compressor> {
        self.compressor
    }

    /// The logins this connection holds.
    pub fn credential_set(&self) -> &CredentialSet {
        &self.auth
    }

    /// When the connection finished its handshake.
    pub fn established_at(&self) -> Instant {
        self.established_at
    }

    /// The options the connection was opened with.
    pub(crate) fn options(&self) -> &ConnectionOptions {
        &self.options
    }

    /// How long since the connection last read a reply (its handshake's, if none since):
    /// PyMongo's `SocketInfo.idle_time_seconds`.
    pub fn idle_time(&self) -> Duration {
        clock().saturating_duration_since(self.last_used)
    }

    /// Whether the peer has closed or reset the connection, found without blocking: the
    /// socket is readable while no reply is due (end of stream, a reset, or bytes nobody asked
    /// for, which leave the stream unusable too). A connection with a command in flight, or
    /// one already broken, counts as closed.
    pub fn peer_closed(&self) -> bool {
        self.state != State::Ready || self.stream.peer_closed()
    }

    /// Whether the connection may go back to its pool: no network error happened and no
    /// command was left half-done (a future dropped between its request and its reply). A
    /// connection whose reply is late after a timeout ([`is_pending_response`]) goes back
    /// too: its next user reads the late reply first.
    ///
    /// [`is_pending_response`]: Self::is_pending_response
    pub fn is_reusable(&self) -> bool {
        matches!(self.state, State::Ready | State::PendingResponse(_))
    }

    /// Whether a network error closed the connection.
    pub fn is_broken(&self) -> bool {
        self.state == State::Broken
    }

    /// Marks the connection closed; it will not be reused.
    pub fn close(&mut self) {
        self.state = State::Broken;
    }

    fn fail<T>(&mut self, e: Error) -> Result<T> {
        if e.is_network_error() {
            self.state = State::Broken;
        }
        Err(e.with_address(&self.address))
    }

    /// Encodes and writes one message (compressed when negotiated and allowed); returns its
    /// request id. The connection is in flight until a reply is read.
    ///
    /// # Errors
    /// Encoding and network errors (the latter close the connection).
    pub async fn send_message<M: Encode + ?Sized>(&mut self, message: &M) -> Result<i32> {
        self.send_with_id(message, next_request_id()).await
    }

    async fn send_with_id<M: Encode + ?Sized>(
        &mut self,
        message: &M,
        request_id: i32,
    ) -> Result<i32> {
        if self.is_pending_response() {
            // A pinned connection (or a direct caller) reads the late reply first.
            self.drain_pending(None).await;
        }
        if self.state != State::Ready {
            return Err(Error::io(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "connection closed by an earlier error",
            )));
        }
        self.state = State::InFlight;
        let r = self
            .writer
            .write_message(&mut self.stream, message, request_id, 0, self.compressor)
            .await;
        match r {
            Ok(()) => Ok(request_id),
            Err(e) => {
                let e = Error::from(e);
                // A local encoding error wrote nothing: the connection is still usable.
                if !e.is_network_error() {
                    self.state = State::Ready;
                }
                self.fail(e)
            }
        }
    }

    /// Reads one whole reply (decompressed). Clears the in-flight state unless the server
    /// said more replies follow.
    ///
    /// # Errors
    /// Network errors and invalid replies (both close the connection).
    pub async fn receive_message(&mut self) -> Result<Reply> {
        let lazy = self.lazy_batch.take();
        let mut raw_batch = None;
        self.more_to_come = false;
        self.progress.start();
        let mut counted = pending::Counting {
            inner: &mut self.stream,
            progress: &mut self.progress,
        };
        let r = match self.reader.read_message(&mut counted).await {
            Ok(decoded) => match decoded.message {
                MessageRef::Msg(m) => decode_body(m.body, lazy).map(|(body, raw)| {
                    raw_batch = raw;
                    self.last_reply_id = decoded.header.request_id;
                    Reply::Msg {
                        response_to: decoded.header.response_to,
                        body,
                        more_to_come: m.more_to_come(),
                    }
                }),
                MessageRef::Reply(r) => r
                    .documents
                    .iter()
                    .map(|d| to_doc(d))
                    .collect::<Result<Vec<_>>>()
                    .map(|documents| Reply::Legacy {
                        response_to: decoded.header.response_to,
                        cursor_id: r.cursor_id,
                        query_failure: r.flags.contains(mongo_wire::ReplyFlags::QUERY_FAILURE),
                        documents,
                    }),
                _ => Err(Error::invalid_reply("unexpected opcode in a reply")),
            },
            Err(e) => Err(Error::from(e)),
        };
        self.raw_batch = raw_batch;
        match r {
            Ok(reply) => {
                self.more_to_come = matches!(
                    reply,
                    Reply::Msg {
                        more_to_come: true,
                        ..
                    }
                );
                if !self.more_to_come {
                    self.state = State::Ready;
                }
                self.last_used = clock();
                Ok(reply)
            }
            Err(e) => {
                // Any bad reply leaves the stream position unknown: close.
                self.state = State::Broken;
                self.fail(e)
            }
        }
    }

    /// Sends `message` and reads its reply, within the socket timeout and `deadline`.
    async fn round_trip<M: Encode + ?Sized>(
        &mut self,
        message: &M,
        deadline: Option<Instant>,
    ) -> Result<Reply> {
        self.round_trip_with_id(message, next_request_id(), deadline)
            .await
    }

    async fn round_trip_with_id<M: Encode + ?Sized>(
        &mut self,
        message: &M,
        request_id: i32,
        deadline: Option<Instant>,
    ) -> Result<Reply> {
        // An operation's deadline (timeoutMS) replaces the deprecated socketTimeoutMS.
        let socket_timeout = self
            .options
            .socket_timeout
            .filter(|d| !d.is_zero() && deadline.is_none());
        let socket_deadline = socket_timeout.and_then(|d| clock().checked_add(d));
        // The earlier of the two limits; remember which one it was for the message.
        let (limit, by_deadline) = match (socket_deadline, deadline) {
            (Some(s), Some(d)) if d < s => (Some(d), true),
            (Some(s), _) => (Some(s), false),
            (None, Some(d)) => (Some(d), true),
            (None, None) => (None, false),
        };
        let mut sent = false;
        let fut = async {
            self.send_with_id(message, request_id).await?;
            sent = true;
            let reply = self.receive_message().await?;
            match &reply {
                Reply::Msg { response_to, .. } | Reply::Legacy { response_to, .. }
                    if *response_to != request_id =>
                {
                    self.state = State::Broken;
                    Err(Error::invalid_reply(format!(
                        "reply to request {response_to}, expected {request_id}"
                    )))
                }
                _ => Ok(reply),
            }
        };
        match limit {
            None => fut.await,
            Some(at) => match tokio::time::timeout_at(at.into(), fut).await {
                Ok(r) => r,
                Err(_) => {
                    // The operation's deadline after a whole request: the reply is only
                    // late, and the connection waits for it (see `pending.rs`). Otherwise
                    // (socketTimeoutMS, a request cut short) the stream's position is lost.
                    let waits = !self.options.pending_response_limit.is_zero();
                    self.state = if by_deadline && sent && waits && self.state == State::InFlight {
                        State::PendingResponse(pending::Pending {
                            request_id,
                            since: clock(),
                        })
                    } else {
                        State::Broken
                    };
                    Err(timeout_error(socket_timeout, by_deadline).with_address(&self.address))
                }
            },
        }
    }

    /// Runs `cmd` on `db` and returns the reply, whatever its `ok`. Unmonitored unless
    /// `params.monitored`.
    pub(crate) async fn run_command(
        &mut self,
        db: &str,
        mut cmd: Document,
        mut params: CommandParams,
    ) -> Result<Document> {
        let name = command_name(&cmd);
        // The versioned API spec: every command carries the declared API, getMore included.
        if let Some(api) = &self.options.server_api {
            if !cmd.contains_key("apiVersion") {
                api.append_to(&mut cmd);
            }
        }
        let monitored = params.monitored && self.monitor.wants_anything();
        let sensitive = monitored && CommandMonitor::is_sensitive(&name, &cmd);
        // A monitored reply is published whole: only an unmonitored one leaves its batch raw.
        self.raw_batch = None;
        self.lazy_batch = if monitored { None } else { params.lazy_batch };
        let legacy =
            self.hello.max_wire_version < OP_MSG_WIRE_VERSION && self.hello.max_wire_version > 0;
        let deadline = params.deadline;

        let request_id = next_request_id();
        let started = clock();
        let result = if legacy {
            let mut full = cmd;
            for seq in &params.sequences {
                let docs = seq
                    .documents
                    .iter()
                    .map(|d| to_doc(d).map(Bson::Document))
                    .collect::<Result<Vec<_>>>()?;
                full.insert(seq.identifier.clone(), docs);
            }
            if monitored {
                self.emit_started(&name, db, request_id, &params, sensitive, &full);
            }
            self.legacy_command_with_id(db, &full, request_id, deadline)
                .await
        } else {
            cmd.insert("$db", db);
            let mut msg = OpMsg::new(to_raw(&cmd)?);
            msg.sequences = std::mem::take(&mut params.sequences);
            if params.unacknowledged {
                msg.flags = MsgFlags::MORE_TO_COME;
            } else if params.exhaust_allowed && supports_exhaust(&self.description) {
                msg.flags = MsgFlags::EXHAUST_ALLOWED;
            }
            if monitored {
                let mut shown = cmd;
                for seq in &msg.sequences {
                    let docs = seq
                        .documents
                        .iter()
                        .filter_map(|d| to_doc(d).ok().map(Bson::Document))
                        .collect::<Vec<_>>();
                    shown.insert(seq.identifier.clone(), docs);
                }
                self.emit_started(&name, db, request_id, &params, sensitive, &shown);
            }
            if params.unacknowledged {
                match self.send_with_id(&msg, request_id).await {
                    Ok(_) => {
                        self.state = State::Ready;
                        Ok(doc! {"ok": 1})
                    }
                    Err(e) => Err(e),
                }
            } else {
                self.round_trip_with_id(&msg, request_id, deadline)
                    .await
                    .and_then(|r| match r {
                        Reply::Msg { body, .. } => Ok(body),
                        Reply::Legacy { .. } => Err(Error::invalid_reply("OP_REPLY to an OP_MSG")),
                    })
            }
        };
        self.lazy_batch = None;
        let duration = clock().saturating_duration_since(started);
        if monitored {
            self.in_flight = None;
            let info = CommandInfo {
                name: &name,
                db,
                request_id,
                operation_id: params.operation_id,
                connection: &self.info,
                service_id: self.hello.service_id,
                sensitive,
            };
            match &result {
                Ok(reply) if is_ok(reply) => self.monitor.succeeded(&info, reply, duration),
                Ok(reply) => {
                    let e = Error::from_reply(reply).with_address(&self.address);
                    self.monitor.failed(&info, &e, Some(reply), duration);
                }
                Err(e) => self.monitor.failed(&info, e, None, duration),
            }
        }
        result
    }

    /// A monitoring hello: OP_MSG (with `exhaustAllowed` when asked) once the server speaks
    /// it, OP_QUERY before. Returns the reply and its moreToCome flag. Unmonitored.
    pub(crate) async fn monitor_hello(
        &mut self,
        mut cmd: Document,
        exhaust_allowed: bool,
    ) -> Result<(Document, bool)> {
        if self.hello.max_wire_version < OP_MSG_WIRE_VERSION {
            let reply = self.legacy_command("admin", &cmd, None).await?;
            return Ok((reply, false));
        }
        cmd.insert("$db", "admin");
        let mut msg = OpMsg::new(to_raw(&cmd)?);
        if exhaust_allowed {
            msg.flags = MsgFlags::EXHAUST_ALLOWED;
        }
        match self.round_trip(&msg, None).await? {
            Reply::Msg {
                body, more_to_come, ..
            } => Ok((body, more_to_come)),
            Reply::Legacy { .. } => Err(Error::invalid_reply("OP_REPLY to an OP_MSG")),
        }
    }

    /// The next streamed hello reply (after one with moreToCome).
    pub(crate) async fn monitor_read_next(&mut self) -> Result<(Document, bool)> {
        match self.receive_message().await? {
            Reply::Msg {
                body, more_to_come, ..
            } => Ok((body, more_to_come)),
            Reply::Legacy { .. } => Err(Error::invalid_reply("OP_REPLY in a hello stream")),
        }
    }

    /// The batch array the last reply left undecoded ([`CommandParams::lazy_batch`]), once.
    pub(crate) fn take_raw_batch(&mut self) -> Option<Vec<u8>> {
        self.raw_batch.take()
    }

    /// Runs `cmd` on `db` (monitored): the reply when `ok: 1`, otherwise the command error.
    ///
    /// # Errors
    /// Network errors (the connection is closed), invalid replies, and command errors.
    pub async fn command(&mut self, db: &str, cmd: Document) -> Result<Document> {
        let params = CommandParams {
            monitored: true,
            ..CommandParams::default()
        };
        let reply = self.run_command(db, cmd, params).await?;
        self.checked(reply)
    }

    /// `reply` when it says `ok: 1`, otherwise its command error.
    fn checked(&self, reply: Document) -> Result<Document> {
        if is_ok(&reply) {
            Ok(reply)
        } else {
            Err(Error::from_reply(&reply).with_address(&self.address))
        }
    }

    /// Runs a write command with its documents in an OP_MSG document sequence named
    /// `identifier` (`documents`, `updates`, `deletes`). With `acknowledged == false` the
    /// message is sent with `moreToCome` and no reply is read (`{ok: 1}` is returned).
    ///
    /// # Errors
    /// As [`command`](Self::command), and a document over the server's maxBsonObjectSize;
    /// write errors are left in the reply for the caller.
    pub async fn write_command(
        &mut self,
        db: &str,
        cmd: Document,
        identifier: &str,
        documents: Vec<Document>,
        acknowledged: bool,
    ) -> Result<Document> {
        let limits = self.hello.size_limits();
        let documents = documents.iter().map(to_raw).collect::<Result<Vec<_>>>()?;
        for (index, d) in documents.iter().enumerate() {
            let size = d.as_bytes().len();
            if size > limits.max_bson_object_size {
                return Err(Error::invalid_argument(format!(
                    "document {index} is {size} bytes, over maxBsonObjectSize {}",
                    limits.max_bson_object_size
                )));
            }
        }
        let params = CommandParams {
            sequences: vec![DocumentSequence {
                identifier: identifier.to_owned(),
                documents,
            }],
            monitored: true,
            unacknowledged: !acknowledged,
            ..CommandParams::default()
        };
        let reply = self.run_command(db, cmd, params).await?;
        self.checked(reply)
    }
}
