//! The real connection, heir of PyMongo's `SocketInfo`: a stream with its handshake reply,
//! address, pool generation and credential set; `command`, `send_message` /
//! `receive_message`, `write_command`, `legacy_write` and `check_auth`.
//!
//! A network error (or a future dropped in the middle of a command) leaves the connection
//! *broken*: it is closed and its pool never gets it back ([`Connection::is_reusable`]).

pub mod handshake;
pub(crate) mod stream;
pub(crate) mod tls;

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use bson::{Bson, Document, RawDocumentBuf, doc};
use mongo_auth::{Authenticator, CredentialSet, Step};
use mongo_events::command::ConnectionInfo;
use mongo_events::{ConnectionId, Generation, Listeners, ServerAddress, ServiceId};
use mongo_wire::{
    Compressor, DeleteFlags, DocumentSequence, Encode, InsertFlags, MessageReader, MessageRef,
    MessageWriter, MsgFlags, OpDelete, OpInsert, OpMsg, OpQuery, OpUpdate, UpdateFlags,
};

pub use handshake::{HelloReply, MAX_METADATA_SIZE, ServerApi, client_metadata};

use crate::error::{BsonExt, Error, ErrorKind, Result};
use crate::monitoring::{CommandInfo, CommandMonitor, DEFAULT_MAX_DOCUMENT_LENGTH};
use stream::{Stream, StreamConfig};

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

/// How connections are opened: everything a handshake needs, shared by a pool's connections.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConnectionOptions {
    /// `appname`, sent in the client metadata.
    pub app_name: Option<String>,
    /// Compressors to offer, in order of preference.
    pub compressors: Vec<Compressor>,
    /// `connectTimeoutMS` (TCP connect and TLS handshake); `None` or zero: no limit.
    pub connect_timeout: Option<Duration>,
    /// `socketTimeoutMS` for each command's round trip; `None` or zero: no limit.
    pub socket_timeout: Option<Duration>,
    /// TLS, when enabled.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The credential to authenticate with during the handshake.
    pub credential: Option<mongo_auth::Credential>,
    /// The declared Stable API version.
    pub server_api: Option<ServerApi>,
    /// Load-balanced mode (`loadBalanced: true` in hello, `serviceId` required).
    pub load_balanced: bool,
    /// Command listeners (with the process-wide ones already folded in).
    pub listeners: Listeners,
    /// Longest document shown in a command log message.
    pub max_document_length: usize,
    /// The `client` metadata document (already truncated to 512 bytes).
    pub metadata: Document,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            app_name: None,
            compressors: Vec::new(),
            connect_timeout: Some(Duration::from_secs(10)),
            socket_timeout: None,
            tls: None,
            credential: None,
            server_api: None,
            load_balanced: false,
            listeners: Listeners::new(),
            max_document_length: DEFAULT_MAX_DOCUMENT_LENGTH,
            metadata: client_metadata(None, handshake::detect_env()),
        }
    }
}

impl ConnectionOptions {
    /// Recomputes the metadata after `app_name` changed.
    pub fn refresh_metadata(&mut self) {
        self.metadata = client_metadata(self.app_name.as_deref(), handshake::detect_env());
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Idle between commands: safe to reuse.
    Ready,
    /// A request was written and its reply not fully read (a dropped future leaves this).
    InFlight,
    /// A network error happened: closed.
    Broken,
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

/// One of the legacy write opcodes (servers before 3.6).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum LegacyWrite {
    /// OP_INSERT.
    Insert {
        /// The documents.
        documents: Vec<Document>,
        /// Keep inserting after a failed document.
        continue_on_error: bool,
    },
    /// OP_UPDATE.
    Update {
        /// The selector.
        selector: Document,
        /// The update.
        update: Document,
        /// Insert when nothing matches.
        upsert: bool,
        /// Update every match.
        multi: bool,
    },
    /// OP_DELETE.
    Delete {
        /// The selector.
        selector: Document,
        /// Remove one match only.
        single: bool,
    },
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
}

/// A connection to one server, after its handshake (and authentication).
pub struct Connection {
    id: ConnectionId,
    address: ServerAddress,
    stream: Stream,
    reader: MessageReader,
    writer: MessageWriter,
    hello: HelloReply,
    compressor: Option<Compressor>,
    generation: Generation,
    auth: CredentialSet,
    options: Arc<ConnectionOptions>,
    monitor: CommandMonitor,
    state: State,
    info: ConnectionInfo,
    established_at: Instant,
    /// The monitored command whose started event was published and whose outcome was not
    /// (set only while a monitored command is in flight).
    in_flight: Option<InFlight>,
}

/// What a command-failed event needs for a command abandoned in flight.
struct InFlight {
    name: String,
    db: String,
    request_id: i32,
    operation_id: Option<i64>,
    sensitive: bool,
    started: Instant,
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

fn tls_config_of(options: &ConnectionOptions) -> StreamConfig {
    StreamConfig {
        connect_timeout: options.connect_timeout,
        tls: options.tls.clone(),
    }
}

fn to_raw(doc: &Document) -> Result<RawDocumentBuf> {
    RawDocumentBuf::try_from(doc).map_err(Error::from)
}

fn to_doc(raw: &bson::RawDocument) -> Result<Document> {
    Document::try_from(raw).map_err(|e| Error::invalid_reply(format!("undecodable reply: {e}")))
}

fn is_ok(reply: &Document) -> bool {
    reply.get("ok").and_then(|v| match v {
        Bson::Boolean(b) => Some(i64::from(*b)),
        other => other.as_i64_lossy(),
    }) == Some(1)
}

fn command_name(cmd: &Document) -> String {
    cmd.keys().next().cloned().unwrap_or_default()
}

impl Connection {
    /// Opens a connection to `address`: TCP (or unix socket), TLS when configured, then the
    /// handshake (hello with metadata, compression negotiation, speculative authentication)
    /// and authentication. `generation` is the pool generation it belongs to.
    ///
    /// # Errors
    /// Network errors, TLS errors, a handshake the server refused, authentication errors,
    /// and (load-balanced mode) a server that reports no `serviceId`.
    pub async fn connect(
        address: ServerAddress,
        id: ConnectionId,
        generation: Generation,
        options: Arc<ConnectionOptions>,
    ) -> Result<Connection> {
        let stream = stream::connect(&address, &tls_config_of(&options))
            .await
            .map_err(|e| e.with_address(&address))?;
        let info = ConnectionInfo {
            address: address.clone(),
            driver_connection_id: id,
            server_connection_id: None,
        };
        let monitor = CommandMonitor {
            listeners: options.listeners.clone(),
            max_document_length: options.max_document_length,
        };
        let mut conn = Connection {
            id,
            address,
            stream,
            reader: MessageReader::default(),
            writer: MessageWriter::new(),
            hello: HelloReply::default(),
            compressor: None,
            generation,
            auth: CredentialSet::new(),
            options,
            monitor,
            state: State::Ready,
            info,
            established_at: Instant::now(),
            in_flight: None,
        };
        let address = conn.address.clone();
        conn.handshake()
            .await
            .map_err(|e| e.with_address(&address))?;
        Ok(conn)
    }

    async fn handshake(&mut self) -> Result<()> {
        let options = self.options.clone();
        let use_hello = options.server_api.is_some() || options.load_balanced;
        let names: Vec<&str> = options.compressors.iter().map(|c| c.name()).collect();
        let mut hello = handshake::hello_command(
            use_hello,
            &options.metadata,
            &names,
            options.load_balanced,
            options.server_api.as_ref(),
        );
        let mut speculative = None;
        if let Some(cred) = &options.credential {
            mongo_auth::negotiate::add_negotiation(&mut hello, cred);
            if let Some(auth) = Authenticator::speculative(cred, &mongo_auth::generate_nonce())? {
                if let Some(cmd) = auth.speculative_command() {
                    hello.insert(mongo_auth::negotiate::SPECULATIVE_AUTHENTICATE, cmd);
                    speculative = Some(auth);
                }
            }
        }
        let reply = if use_hello {
            self.run_command("admin", hello, CommandParams::default())
                .await?
        } else {
            self.legacy_command("admin", &hello).await?
        };
        if !is_ok(&reply) {
            return Err(Error::from_reply(&reply));
        }
        let hello_reply = HelloReply::parse(reply);
        if hello_reply.max_wire_version < OP_MSG_WIRE_VERSION && use_hello {
            return Err(Error::new(ErrorKind::IncompatibleServer(
                "the server does not support OP_MSG".into(),
            )));
        }
        if options.load_balanced && hello_reply.service_id.is_none() {
            return Err(Error::new(ErrorKind::IncompatibleServer(
                "the driver is in load balancing mode, but the server did not report a serviceId"
                    .into(),
            )));
        }
        self.info.server_connection_id = hello_reply.server_connection_id;
        self.reader
            .set_max_message_size(hello_reply.max_message_size_bytes);
        self.compressor = options
            .compressors
            .iter()
            .find(|c| hello_reply.compression.iter().any(|s| s == c.name()))
            .copied();
        self.hello = hello_reply;

        if let Some(cred) = &options.credential {
            let spec_reply = self
                .hello
                .raw
                .get_document(mongo_auth::negotiate::SPECULATIVE_AUTHENTICATE)
                .ok()
                .cloned();
            match (speculative, spec_reply) {
                (Some(mut auth), Some(first)) => {
                    let step = auth.handle_speculative_reply(&first)?;
                    self.converse(&mut auth, step).await?;
                }
                _ => {
                    let mut auth = Authenticator::negotiated(
                        cred,
                        Some(&self.hello.raw),
                        &mongo_auth::generate_nonce(),
                    )?;
                    let step = Step::Send(auth.start_command());
                    self.converse(&mut auth, step).await?;
                }
            }
            self.auth.mark_logged_in(cred);
        }
        Ok(())
    }

    /// Runs an authentication conversation from `step` to the end.
    async fn converse(&mut self, auth: &mut Authenticator, mut step: Step) -> Result<()> {
        let source = auth.source().to_owned();
        while let Step::Send(cmd) = step {
            let reply = self
                .run_command(&source, cmd, CommandParams::default())
                .await?;
            if !is_ok(&reply) {
                let e = Error::from_reply(&reply);
                return Err(Error::new(ErrorKind::Auth(
                    mongo_auth::AuthError::CommandFailed {
                        code: e.code().unwrap_or(0),
                        code_name: reply.get_str("codeName").ok().map(str::to_owned),
                        message: reply.get_str("errmsg").unwrap_or_default().to_owned(),
                    },
                )));
            }
            step = auth.handle_reply(&reply)?;
        }
        Ok(())
    }

    /// Brings the connection's logins up to date with `credentials` (the client's credential
    /// set): logs out of sources no longer wanted, authenticates the missing ones.
    ///
    /// # Errors
    /// Network and authentication errors.
    pub async fn check_auth(&mut self, credentials: &[mongo_auth::Credential]) -> Result<()> {
        let plan = self.auth.plan(credentials);
        if plan.is_empty() {
            return Ok(());
        }
        for (source, cmd) in plan.logout_commands() {
            let reply = self
                .run_command(source, cmd, CommandParams::default())
                .await?;
            if !is_ok(&reply) {
                return Err(Error::from_reply(&reply));
            }
            self.auth.mark_logged_out(source);
        }
        for cred in &plan.authenticate {
            let mut auth = Authenticator::negotiated(
                cred,
                Some(&self.hello.raw),
                &mongo_auth::generate_nonce(),
            )?;
            let step = Step::Send(auth.start_command());
            self.converse(&mut auth, step).await?;
            self.auth.mark_logged_in(cred);
        }
        Ok(())
    }

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

    /// Whether the connection may go back to its pool: no network error happened and no
    /// command was left half-done (a future dropped between its request and its reply).
    pub fn is_reusable(&self) -> bool {
        self.state == State::Ready
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
        if self.state == State::Broken {
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
        let r = match self.reader.read_message(&mut self.stream).await {
            Ok(decoded) => match decoded.message {
                MessageRef::Msg(m) => to_doc(m.body).map(|body| Reply::Msg {
                    response_to: decoded.header.response_to,
                    body,
                    more_to_come: m.more_to_come(),
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
        match r {
            Ok(reply) => {
                if !matches!(
                    reply,
                    Reply::Msg {
                        more_to_come: true,
                        ..
                    }
                ) {
                    self.state = State::Ready;
                }
                Ok(reply)
            }
            Err(e) => {
                // Any bad reply leaves the stream position unknown: close.
                self.state = State::Broken;
                self.fail(e)
            }
        }
    }

    /// Sends `message` and reads its reply, within the socket timeout.
    async fn round_trip<M: Encode + ?Sized>(&mut self, message: &M) -> Result<Reply> {
        self.round_trip_with_id(message, next_request_id()).await
    }

    async fn round_trip_with_id<M: Encode + ?Sized>(
        &mut self,
        message: &M,
        request_id: i32,
    ) -> Result<Reply> {
        let timeout = self.options.socket_timeout.filter(|d| !d.is_zero());
        let fut = async {
            self.send_with_id(message, request_id).await?;
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
        match timeout {
            None => fut.await,
            Some(d) => match tokio::time::timeout(d, fut).await {
                Ok(r) => r,
                Err(_) => {
                    self.state = State::Broken;
                    Err(Error::io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("socket timeout after {d:?}"),
                    ))
                    .with_address(&self.address))
                }
            },
        }
    }

    /// A command in OP_QUERY form (legacy handshake, servers before 3.6).
    async fn legacy_command(&mut self, db: &str, cmd: &Document) -> Result<Document> {
        self.legacy_command_with_id(db, cmd, next_request_id())
            .await
    }

    async fn legacy_command_with_id(
        &mut self,
        db: &str,
        cmd: &Document,
        request_id: i32,
    ) -> Result<Document> {
        let raw = to_raw(cmd)?;
        let query = OpQuery::command(db, Cow::Borrowed(raw.as_ref()));
        let reply = self.round_trip_with_id(&query, request_id).await?;
        reply
            .into_body()
            .ok_or_else(|| Error::invalid_reply("empty OP_REPLY to a command"))
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
        if let Some(api) = &self.options.server_api {
            if name != "getMore" && !cmd.contains_key("apiVersion") {
                api.append_to(&mut cmd);
            }
        }
        let monitored = params.monitored && self.monitor.wants_anything();
        let sensitive = monitored && CommandMonitor::is_sensitive(&name, &cmd);
        let legacy =
            self.hello.max_wire_version < OP_MSG_WIRE_VERSION && self.hello.max_wire_version > 0;

        let request_id = next_request_id();
        let started = Instant::now();
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
            self.legacy_command_with_id(db, &full, request_id).await
        } else {
            cmd.insert("$db", db);
            let mut msg = OpMsg::new(to_raw(&cmd)?);
            msg.sequences = std::mem::take(&mut params.sequences);
            if params.unacknowledged {
                msg.flags = MsgFlags::MORE_TO_COME;
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
                self.round_trip_with_id(&msg, request_id)
                    .await
                    .and_then(|r| match r {
                        Reply::Msg { body, .. } => Ok(body),
                        Reply::Legacy { .. } => Err(Error::invalid_reply("OP_REPLY to an OP_MSG")),
                    })
            }
        };
        let duration = started.elapsed();
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

    fn emit_started(
        &mut self,
        name: &str,
        db: &str,
        request_id: i32,
        params: &CommandParams,
        sensitive: bool,
        shown: &Document,
    ) {
        let info = CommandInfo {
            name,
            db,
            request_id,
            operation_id: params.operation_id,
            connection: &self.info,
            service_id: self.hello.service_id,
            sensitive,
        };
        self.monitor.started(&info, shown);
        self.in_flight = Some(InFlight {
            name: name.to_owned(),
            db: db.to_owned(),
            request_id,
            operation_id: params.operation_id,
            sensitive,
            started: Instant::now(),
        });
    }

    /// Publishes the failed event of a monitored command abandoned in flight (its future was
    /// dropped, as when an interrupting pool clear stops it), so that every started event
    /// has an outcome.
    pub(crate) fn fail_in_flight(&mut self, error: &Error) {
        let Some(f) = self.in_flight.take() else {
            return;
        };
        let info = CommandInfo {
            name: &f.name,
            db: &f.db,
            request_id: f.request_id,
            operation_id: f.operation_id,
            connection: &self.info,
            service_id: self.hello.service_id,
            sensitive: f.sensitive,
        };
        self.monitor.failed(&info, error, None, f.started.elapsed());
    }

    /// A monitoring hello: OP_MSG (with `exhaustAllowed` when asked) once the server speaks
    /// it, OP_QUERY before. Returns the reply and its moreToCome flag. Unmonitored.
    pub(crate) async fn monitor_hello(
        &mut self,
        mut cmd: Document,
        exhaust_allowed: bool,
    ) -> Result<(Document, bool)> {
        if self.hello.max_wire_version < OP_MSG_WIRE_VERSION {
            let reply = self.legacy_command("admin", &cmd).await?;
            return Ok((reply, false));
        }
        cmd.insert("$db", "admin");
        let mut msg = OpMsg::new(to_raw(&cmd)?);
        if exhaust_allowed {
            msg.flags = MsgFlags::EXHAUST_ALLOWED;
        }
        match self.round_trip(&msg).await? {
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

    /// Runs `cmd` on `db` (monitored): the reply when `ok: 1`, otherwise the command error.
    ///
    /// # Errors
    /// Network errors (the connection is closed), invalid replies, and command errors.
    pub async fn command(&mut self, db: &str, cmd: Document) -> Result<Document> {
        self.command_with(db, cmd, None).await
    }

    pub(crate) async fn command_with(
        &mut self,
        db: &str,
        cmd: Document,
        operation_id: Option<i64>,
    ) -> Result<Document> {
        let params = CommandParams {
            monitored: true,
            operation_id,
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
    /// As [`command`](Self::command); write errors are left in the reply for the caller.
    pub async fn write_command(
        &mut self,
        db: &str,
        cmd: Document,
        identifier: &str,
        documents: Vec<Document>,
        acknowledged: bool,
    ) -> Result<Document> {
        self.write_command_with(db, cmd, identifier, &documents, acknowledged, None)
            .await
    }

    pub(crate) async fn write_command_with(
        &mut self,
        db: &str,
        cmd: Document,
        identifier: &str,
        documents: &[Document],
        acknowledged: bool,
        operation_id: Option<i64>,
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
            operation_id,
            unacknowledged: !acknowledged,
        };
        let reply = self.run_command(db, cmd, params).await?;
        self.checked(reply)
    }

    /// A legacy write (OP_INSERT / OP_UPDATE / OP_DELETE, for servers before 3.6) on
    /// `db.coll`, followed by `getLastError` with `get_last_error` options when given (its
    /// reply is returned; an `err` in it becomes an error). Without it the write is
    /// unacknowledged and `None` is returned.
    ///
    /// # Errors
    /// Network errors, and the getLastError's error.
    pub async fn legacy_write(
        &mut self,
        db: &str,
        coll: &str,
        op: LegacyWrite,
        get_last_error: Option<Document>,
    ) -> Result<Option<Document>> {
        let ns = format!("{db}.{coll}");
        let sent = match op {
            LegacyWrite::Insert {
                documents,
                continue_on_error,
            } => {
                let raws = documents.iter().map(to_raw).collect::<Result<Vec<_>>>()?;
                let mut flags = InsertFlags::empty();
                flags.set(InsertFlags::CONTINUE_ON_ERROR, continue_on_error);
                let msg = OpInsert {
                    flags,
                    full_collection_name: Cow::Borrowed(ns.as_str()),
                    documents: raws.iter().map(|d| Cow::Borrowed(d.as_ref())).collect(),
                };
                self.send_message(&msg).await
            }
            LegacyWrite::Update {
                selector,
                update,
                upsert,
                multi,
            } => {
                let (s, u) = (to_raw(&selector)?, to_raw(&update)?);
                let mut flags = UpdateFlags::empty();
                flags.set(UpdateFlags::UPSERT, upsert);
                flags.set(UpdateFlags::MULTI_UPDATE, multi);
                let msg = OpUpdate {
                    full_collection_name: Cow::Borrowed(ns.as_str()),
                    flags,
                    selector: Cow::Borrowed(s.as_ref()),
                    update: Cow::Borrowed(u.as_ref()),
                };
                self.send_message(&msg).await
            }
            LegacyWrite::Delete { selector, single } => {
                let s = to_raw(&selector)?;
                let mut flags = DeleteFlags::empty();
                flags.set(DeleteFlags::SINGLE_REMOVE, single);
                let msg = OpDelete {
                    full_collection_name: Cow::Borrowed(ns.as_str()),
                    flags,
                    selector: Cow::Borrowed(s.as_ref()),
                };
                self.send_message(&msg).await
            }
        };
        sent?;
        // Legacy writes have no reply: the connection is idle again.
        self.state = State::Ready;
        let Some(options) = get_last_error else {
            return Ok(None);
        };
        let raw = to_raw(&options)?;
        let gle = OpQuery::get_last_error(db, Some(raw.as_ref()));
        let reply = self.round_trip(&gle).await?;
        let doc = reply
            .into_body()
            .ok_or_else(|| Error::invalid_reply("empty getLastError reply"))?;
        if !is_ok(&doc) {
            return Err(Error::from_reply(&doc).with_address(&self.address));
        }
        match doc.get("err") {
            Some(Bson::String(msg)) => {
                let mut e = doc.clone();
                e.insert("errmsg", msg.clone());
                Err(Error::from_reply(&e).with_address(&self.address))
            }
            _ => Ok(Some(doc)),
        }
    }
}
