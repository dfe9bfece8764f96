//! The tokio side: listener, TLS, per-connection loop, awaitable and streaming hello.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::Duration;

use bson::{Bson, Document};
use mongo_wire::{
    Compressor, Frame, MessageReader, MessageRef, MessageWriter, MsgFlags, QueryFlags,
};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::error::{CommandError, Error};
use crate::failpoint::ReplyFault;
use crate::legacy::LegacyKind;
use crate::node::{ConnState, Node};
use crate::options::ServerOptions;
use crate::scram::Users;
use crate::store::Store;
use crate::topology::Topology;

mod exhaust;
mod io;

use io::{client_gone, write_reply, write_reply_to};

static REQUEST_IDS: AtomicI32 = AtomicI32::new(1);

fn next_request_id() -> i32 {
    REQUEST_IDS.fetch_add(1, Ordering::Relaxed)
}

struct Running {
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

struct Inner {
    node: Arc<Node>,
    addr: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    running: tokio::sync::Mutex<Option<Running>>,
    accepted: Arc<AtomicU64>,
    stopped: Mutex<bool>,
    /// Bumped by [`TestServer::close_application_connections`]; every connection watches it.
    kills: watch::Sender<u64>,
}

/// A running in-process server (one member of a deployment). Cloning gives another handle to
/// the same server; dropping the last handle stops it (listener and connections close), as
/// [`TestServer::stop`] does.
#[derive(Clone)]
pub struct TestServer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("addr", &self.inner.addr)
            .field("tls", &self.inner.tls.is_some())
            .finish()
    }
}

impl TestServer {
    /// Starts a standalone server on `options.host:options.port` (port 0: ephemeral).
    ///
    /// # Errors
    /// Binding or TLS configuration failures.
    pub async fn start(options: ServerOptions) -> Result<Self, Error> {
        let listener = bind(&options.host, options.port).await?;
        let users = Arc::new(Users::default());
        for (u, p) in &options.users {
            users.add("admin", u, p);
        }
        // In load-balancer mode the server is a mongos (its own process, no replica set).
        let topology = if options.load_balancer {
            Topology::mongos()
        } else {
            Topology::standalone()
        };
        let node = Arc::new(Node::new(
            options,
            Arc::new(Store::new()),
            users,
            Arc::new(topology),
            0,
        ));
        Self::launch(node, listener).await
    }

    pub(crate) async fn launch(node: Arc<Node>, listener: TcpListener) -> Result<Self, Error> {
        let addr = listener.local_addr()?;
        *node.address.lock() = format!("{}:{}", addr.ip(), addr.port());
        let tls = node
            .opts
            .tls
            .as_ref()
            .map(crate::tls::acceptor)
            .transpose()?;
        let server = Self {
            inner: Arc::new(Inner {
                node,
                addr,
                tls,
                running: tokio::sync::Mutex::new(None),
                accepted: Arc::new(AtomicU64::new(0)),
                stopped: Mutex::new(false),
                kills: watch::channel(0).0,
            }),
        };
        server.spawn(listener).await;
        Ok(server)
    }

    async fn spawn(&self, listener: TcpListener) {
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(
            listener,
            self.inner.node.clone(),
            self.inner.tls.clone(),
            rx,
            self.inner.kills.subscribe(),
            self.inner.accepted.clone(),
        ));
        *self.inner.running.lock().await = Some(Running { shutdown: tx, task });
        *self.inner.stopped.lock() = false;
    }

    /// The bound socket address.
    pub fn address(&self) -> SocketAddr {
        self.inner.addr
    }

    /// `HOST:PORT`, as the server names itself in hello.
    pub fn host_port(&self) -> String {
        format!("{}:{}", self.inner.addr.ip(), self.inner.addr.port())
    }

    /// A connection string for this server: `mongodb://HOST:PORT/?directConnection=true`
    /// (plus `&tls=true` when it listens with TLS).
    pub fn uri(&self) -> String {
        let tls = if self.inner.tls.is_some() {
            "&tls=true"
        } else {
            ""
        };
        format!("mongodb://{}/?directConnection=true{tls}", self.host_port())
    }

    /// The document store, for seeding and checking. In a replica set it is the primary's
    /// data (each secondary keeps its own copy: [`crate::ReplicaSet::documents_on`]).
    pub fn store(&self) -> Arc<Store> {
        self.inner.node.store.clone()
    }

    /// Closes every open connection that ran a command other than hello / isMaster (the
    /// application's connections; monitoring connections stay open), as a server-side reset
    /// or a middlebox dropping idle sockets would. The listener keeps accepting.
    pub fn close_application_connections(&self) {
        self.inner.kills.send_modify(|n| *n += 1);
    }

    /// Number of TCP connections accepted so far (across restarts).
    pub fn connections_accepted(&self) -> u64 {
        self.inner.accepted.load(Ordering::Relaxed)
    }

    /// Runs one command synchronously, as a connection would (fail points included), without
    /// the network, and without waiting for replication (`afterClusterTime`, `w: N`). Useful
    /// for unit tests and for seeding.
    pub fn handle(&self, db: &str, cmd: Document, conn: &mut ConnState) -> Document {
        self.inner.node.handle(db, cmd, conn)
    }

    /// A new connection state for [`TestServer::handle`].
    pub fn new_conn_state(&self) -> ConnState {
        ConnState::new(self.inner.node.next_connection_id())
    }

    /// Configures a fail point as `configureFailPoint` would (the same document) and
    /// returns the reply, `{count: <activations so far>, ok: 1}`.
    ///
    /// # Errors
    /// The server's error reply (as a document) when the document is invalid.
    pub fn configure_fail_point(&self, cmd: Document) -> Result<Document, Document> {
        self.run_configure_fail_point(&cmd)
    }

    pub(crate) fn run_configure_fail_point(&self, cmd: &Document) -> Result<Document, Document> {
        self.inner
            .node
            .fail_points
            .configure(cmd)
            .map_err(|e| e.to_doc())
    }

    /// Turns off every fail point.
    pub fn clear_fail_points(&self) {
        self.inner.node.fail_points.clear();
    }

    /// Delays the next reply to a command other than hello / isMaster by `delay`.
    pub fn delay_next_reply(&self, delay: Duration) {
        self.inner.node.reply_faults.push(ReplyFault::Delay(delay));
    }

    /// Drops the next reply to a command other than hello / isMaster: the command runs, then
    /// the server hangs up on that connection instead of replying.
    pub fn drop_next_reply(&self) {
        self.inner.node.reply_faults.push(ReplyFault::Drop);
    }

    /// Whether the server is currently stopped.
    pub fn is_stopped(&self) -> bool {
        *self.inner.stopped.lock()
    }

    /// Stops listening and closes every connection. Idempotent.
    pub async fn stop(&self) {
        let running = self.inner.running.lock().await.take();
        if let Some(r) = running {
            let _ = r.shutdown.send(true);
            let _ = r.task.await;
        }
        *self.inner.stopped.lock() = true;
        self.inner
            .node
            .topology
            .set_running(self.inner.node.member, false);
    }

    /// Starts again on the same port after [`TestServer::stop`], as a new process (new
    /// topologyVersion.processId, no cursors). Data and users are kept.
    ///
    /// # Errors
    /// When the port cannot be bound again.
    pub async fn restart(&self) -> Result<(), Error> {
        self.stop().await;
        self.inner.node.reset_process();
        let mut last = None;
        for _ in 0..50 {
            match TcpListener::bind(self.inner.addr).await {
                Ok(l) => {
                    self.spawn(l).await;
                    self.inner
                        .node
                        .topology
                        .set_running(self.inner.node.member, true);
                    return Ok(());
                }
                Err(e) => {
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        Err(Error::Io(last.unwrap_or_else(|| {
            std::io::Error::other("could not bind the port again")
        })))
    }

    pub(crate) fn node(&self) -> &Arc<Node> {
        &self.inner.node
    }
}

pub(crate) async fn bind(host: &str, port: u16) -> Result<TcpListener, Error> {
    Ok(TcpListener::bind((host, port)).await?)
}

async fn accept_loop(
    listener: TcpListener,
    node: Arc<Node>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
    kills: watch::Receiver<u64>,
    accepted: Arc<AtomicU64>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            res = listener.accept() => {
                let (stream, peer) = match res {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::debug!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                accepted.fetch_add(1, Ordering::Relaxed);
                let _ = stream.set_nodelay(true);
                let node = node.clone();
                let tls = tls.clone();
                let rx = shutdown.clone();
                let kills = kills.clone();
                conns.spawn(async move {
                    tracing::trace!(%peer, "connection accepted");
                    serve_socket(stream, tls, node, rx, kills).await;
                });
                while conns.try_join_next().is_some() {}
            }
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

async fn serve_socket(
    stream: TcpStream,
    tls: Option<tokio_rustls::TlsAcceptor>,
    node: Arc<Node>,
    shutdown: watch::Receiver<bool>,
    kills: watch::Receiver<u64>,
) {
    match tls {
        None => serve(stream, node, shutdown, kills, None).await,
        Some(acceptor) => {
            let accepted =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await;
            match accepted {
                Ok(Ok(s)) => {
                    let subject = s
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .and_then(|c| crate::tls::subject_rfc2253(c.as_ref()));
                    serve(s, node, shutdown, kills, subject).await;
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        }
    }
}

/// What a request carried, copied out of the reader's buffer.
struct Request {
    id: i32,
    legacy: bool,
    db: String,
    cmd: Document,
    flags: MsgFlags,
    compressor: Option<Compressor>,
    secondary_ok: bool,
    /// Set for OP_INSERT / OP_UPDATE / OP_DELETE: run as a command, record the outcome for
    /// getLastError, never reply.
    legacy_write: Option<LegacyKind>,
}

enum Outcome {
    Reply(Document),
    Close,
}

fn to_request(
    decoded: mongo_wire::Decoded<'_>,
    compressor: Option<Compressor>,
) -> Result<Request, String> {
    let id = decoded.header.request_id;
    match decoded.message {
        MessageRef::Msg(m) => {
            let mut cmd = Document::try_from(m.body).map_err(|e| e.to_string())?;
            for seq in &m.sequences {
                let docs = seq
                    .documents()
                    .map(|d| Document::try_from(d).map(Bson::Document))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string())?;
                cmd.insert(seq.identifier.to_string(), docs);
            }
            let db = cmd.get_str("$db").unwrap_or("").to_string();
            Ok(Request {
                id,
                legacy: false,
                db,
                cmd,
                flags: m.flags,
                compressor,
                secondary_ok: false,
                legacy_write: None,
            })
        }
        MessageRef::Query(q) => {
            let full = q.full_collection_name.as_ref();
            let (db, coll) = full.split_once('.').unwrap_or((full, ""));
            if coll != "$cmd" {
                return Err(format!("OP_QUERY on {full} is not supported (only $cmd)"));
            }
            let mut cmd = Document::try_from(q.query.as_ref()).map_err(|e| e.to_string())?;
            if let Ok(inner) = cmd.get_document("$query") {
                let mut inner = inner.clone();
                if let Some(rp) = cmd.get("$readPreference") {
                    inner.insert("$readPreference", rp.clone());
                }
                cmd = inner;
            }
            Ok(Request {
                id,
                legacy: true,
                db: db.to_string(),
                cmd,
                flags: MsgFlags::empty(),
                compressor,
                secondary_ok: q.flags.contains(QueryFlags::SECONDARY_OK),
                legacy_write: None,
            })
        }
        other => match crate::legacy::translate(&other)? {
            Some((db, cmd, kind)) => Ok(Request {
                id,
                legacy: true,
                db,
                cmd,
                flags: MsgFlags::empty(),
                compressor,
                secondary_ok: false,
                legacy_write: Some(kind),
            }),
            None => Err("opcode not supported by the testkit (OP_GET_MORE, OP_KILL_CURSORS and replies are not requests it serves)".into()),
        },
    }
}

fn is_hello(name: &str) -> bool {
    matches!(name, "hello" | "isMaster" | "ismaster")
}

/// How long a getMore that found nothing waits for data: its `maxTimeMS` (drivers send one
/// only on a tailable awaitData cursor's getMores) when the cursor stays open.
fn await_data_wait(max_time: Option<&Bson>, reply: &Document) -> Option<Duration> {
    let max_time = max_time?;
    let cursor = reply.get_document("cursor").ok()?;
    let open = match cursor.get("id")? {
        Bson::Int64(id) => *id != 0,
        Bson::Int32(id) => *id != 0,
        _ => false,
    };
    let empty = cursor.get_array("nextBatch").ok()?.is_empty();
    if !open || !empty {
        return None;
    }
    let ms = match max_time {
        Bson::Int32(v) => i64::from(*v),
        Bson::Int64(v) => *v,
        #[allow(clippy::cast_possible_truncation)]
        Bson::Double(v) => *v as i64,
        _ => return None,
    };
    u64::try_from(ms)
        .ok()
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis)
}

/// MaxTimeMSExpired.
const MAX_TIME_MS_EXPIRED: i32 = 50;

/// The operation's time limit (`maxTimeMS`, positive), for commands where it is one (a
/// getMore's is how long it awaits data, and hello's awaiting has its own).
fn max_time(name: &str, cmd: &Document) -> Option<Duration> {
    if name == "getMore" || is_hello(name) {
        return None;
    }
    let ms = match cmd.get("maxTimeMS")? {
        Bson::Int32(v) => i64::from(*v),
        Bson::Int64(v) => *v,
        #[allow(clippy::cast_possible_truncation)]
        Bson::Double(v) => *v as i64,
        _ => return None,
    };
    u64::try_from(ms)
        .ok()
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis)
}

fn await_time(node: &Node, cmd: &Document) -> Option<(Document, Duration)> {
    let tv = cmd.get_document("topologyVersion").ok()?.clone();
    let ms = match cmd.get("maxAwaitTimeMS")? {
        Bson::Int32(v) => i64::from(*v),
        Bson::Int64(v) => *v,
        #[allow(clippy::cast_possible_truncation)]
        Bson::Double(v) => *v as i64,
        _ => return None,
    };
    let ms = u64::try_from(ms).ok()?;
    Some((tv, Duration::from_millis(ms).min(node.opts.max_await_time)))
}

/// Runs one command with everything the network adds: awaitable hello, fail-point blocking
/// and hang-ups, test reply faults.
async fn run(
    node: &Node,
    req: &Request,
    cmd: Document,
    conn: &mut ConnState,
    shutdown: &mut watch::Receiver<bool>,
) -> Outcome {
    let name = cmd.keys().next().cloned().unwrap_or_default();
    // As on mongod, failCommand is evaluated when the command starts, before an awaitable
    // hello waits for a topology change.
    let mut action = node.fail_action(&req.db, &cmd, conn);
    if let Some(d) = action.block.take() {
        // As on mongod, the block is an interruptible sleep of the operation: a `maxTimeMS`
        // that runs out first ends it with MaxTimeMSExpired, and the command does not run.
        let limit = max_time(&name, &cmd).filter(|limit| *limit < d);
        tokio::select! {
            () = tokio::time::sleep(limit.unwrap_or(d)) => {}
            _ = shutdown.changed() => return Outcome::Close,
        }
        if limit.is_some() {
            action.close = false;
            action.error = Some((MAX_TIME_MS_EXPIRED, "operation exceeded time limit".into()));
        }
    }
    if !action.close && action.error.is_none() {
        // A read concern this member must catch up to first (`replication/`).
        match crate::replication::ReadWait::run(node, &cmd, shutdown).await {
            crate::replication::Waited::Done => {}
            crate::replication::Waited::Closed => return Outcome::Close,
            crate::replication::Waited::Failed(code, msg) => action.error = Some((code, msg)),
        }
    }
    let write_wait = crate::replication::WriteWait::of(node, &name, &cmd);
    if is_hello(&name) && !action.close && action.error.is_none() {
        if let Some((tv, wait)) = await_time(node, &cmd) {
            let mut rx = node.topology.subscribe();
            if node.should_await(&tv) {
                tokio::select! {
                    _ = rx.changed() => {}
                    () = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => return Outcome::Close,
                }
            }
        }
    }
    // Whether this is a change stream's getMore: it does its awaitData wait here, on the
    // replication log, and not again after it answers.
    let mut change_stream_get_more = false;
    if name == "getMore" && !action.close && action.error.is_none() {
        // A change stream's cursor is awaitData: its getMore waits (up to maxTimeMS) for
        // events before it answers with an empty batch.
        let mut rx = node.store.oplog.subscribe();
        let ready = node.change_stream_ready(&req.db, &cmd);
        change_stream_get_more = ready.is_some();
        if ready == Some(false) {
            let wait = match cmd.get("maxTimeMS") {
                Some(Bson::Int32(v)) => u64::try_from(*v).unwrap_or(0),
                Some(Bson::Int64(v)) => u64::try_from(*v).unwrap_or(0),
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                Some(Bson::Double(v)) if *v >= 0.0 => *v as u64,
                _ => crate::node::DEFAULT_AWAIT_MS,
            };
            // `sleep` saturates a huge client-given maxTimeMS instead of overflowing.
            let expiry = tokio::time::sleep(Duration::from_millis(wait));
            tokio::pin!(expiry);
            loop {
                tokio::select! {
                    changed = rx.changed() => {
                        if changed.is_err()
                            || node.change_stream_ready(&req.db, &cmd) != Some(false)
                        {
                            break;
                        }
                    }
                    () = &mut expiry => break,
                    _ = shutdown.changed() => return Outcome::Close,
                }
            }
        }
    }
    conn.legacy_secondary_ok = req.secondary_ok;
    // The getMore's maxTimeMS, read before the command is consumed.
    let get_more_max_time = (name == "getMore")
        .then(|| cmd.get("maxTimeMS").cloned())
        .flatten();
    let done = node.respond(&req.db, cmd, conn, action);
    conn.legacy_secondary_ok = false;
    if done.close {
        return Outcome::Close;
    }
    if !done.busy.is_zero() {
        // `$where: "sleep(N) || true"`: the command takes that long on this connection.
        tokio::select! {
            () = tokio::time::sleep(done.busy) => {}
            _ = shutdown.changed() => return Outcome::Close,
        }
    }
    let mut reply = done.reply;
    if let Some(w) = write_wait
        && !w.run(node, &mut reply, shutdown).await
    {
        return Outcome::Close;
    }
    if let Some(wait) = (!change_stream_get_more)
        .then(|| await_data_wait(get_more_max_time.as_ref(), &reply))
        .flatten()
    {
        // A tailable awaitData cursor's getMore with nothing new waits its maxTimeMS, as on
        // mongod (which also returns early when data arrives; here the next getMore sees it).
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return Outcome::Close,
        }
    }
    match node.reply_faults.take(&name) {
        Some(ReplyFault::Drop) => return Outcome::Close,
        Some(ReplyFault::Delay(d)) => {
            tokio::select! {
                () = tokio::time::sleep(d) => {}
                _ = shutdown.changed() => return Outcome::Close,
            }
        }
        None => {}
    }
    if req.legacy && reply.get("ok").is_some_and(|v| !crate::query::truthy(v)) {
        // OP_REPLY command errors keep the same shape; nothing to add.
        reply.remove("$db");
    }
    Outcome::Reply(reply)
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    node: Arc<Node>,
    mut shutdown: watch::Receiver<bool>,
    mut kills: watch::Receiver<u64>,
    peer_subject: Option<String>,
) {
    // Buffered so that a hang-up can be noticed while a command runs (`io::client_gone`).
    let mut stream = tokio::io::BufReader::new(stream);
    let max = node.opts.max_message_size;
    let mut reader = MessageReader::new(max);
    let mut writer = MessageWriter::new();
    let mut conn = ConnState::new(node.next_connection_id());
    conn.peer_subject = peer_subject;
    kills.mark_unchanged();
    // Whether this connection ran anything but hello (see close_application_connections).
    let mut application = false;
    loop {
        let req = tokio::select! {
            r = reader.read_frame(&mut stream) => {
                let frame = r.and_then(|bytes| Frame::new(bytes.to_vec(), max));
                match frame {
                    Ok(frame) => match frame.decode() {
                        Ok(decoded) => to_request(decoded, frame.compressor()),
                        Err(e) => Err(e.to_string()),
                    },
                    Err(e) => {
                        tracing::debug!(error = %e, "closing connection after read error");
                        return;
                    }
                }
            }
            _ = shutdown.changed() => return,
            // Only application connections watch: the read is never restarted.
            Ok(()) = kills.changed(), if application => {
                tracing::debug!("closing an application connection on request");
                return;
            }
        };
        let req = match req {
            Ok(r) => r,
            Err(msg) => {
                tracing::debug!(%msg, "closing connection after unsupported message");
                return;
            }
        };
        if !req.legacy && req.db.is_empty() {
            let err = CommandError::new(
                40571,
                "Location40571",
                "OP_MSG requests require a $db argument",
            )
            .to_doc();
            if write_reply(&mut stream, &mut writer, &req, err, MsgFlags::empty())
                .await
                .is_err()
            {
                return;
            }
            continue;
        }
        let name = req.cmd.keys().next().cloned().unwrap_or_default();
        if !application && !is_hello(&name) {
            // A close ordered while this was a monitoring connection is not for it.
            kills.mark_unchanged();
            application = true;
        }
        let client_more_to_come = req.flags.contains(MsgFlags::MORE_TO_COME);
        let exhaust = !req.legacy
            && req.flags.contains(MsgFlags::EXHAUST_ALLOWED)
            && is_hello(&name)
            && await_time(&node, &req.cmd).is_some();
        let exhaust_get_more = exhaust::wanted(&req, &name);
        let running = run(&node, &req, req.cmd.clone(), &mut conn, &mut shutdown);
        let outcome = tokio::select! {
            biased;
            o = running => o,
            () = client_gone(&mut stream) => Outcome::Close,
        };
        let Outcome::Reply(reply) = outcome else {
            return;
        };
        if exhaust_get_more && !client_more_to_come {
            let io = (&mut stream, &mut writer);
            match exhaust::stream_get_more(io, &node, &req, reply, &mut conn, &mut shutdown).await {
                Ok(()) => continue,
                Err(()) => return,
            }
        }
        if let Some(kind) = req.legacy_write {
            // Legacy writes are never answered; getLastError reports their outcome.
            conn.last_error = Some(crate::legacy::last_error(kind, &reply));
            continue;
        }
        if client_more_to_come {
            continue;
        }
        if !exhaust {
            if write_reply(&mut stream, &mut writer, &req, reply, MsgFlags::empty())
                .await
                .is_err()
            {
                return;
            }
            continue;
        }
        // Streaming hello: keep answering with moreToCome, each reply awaiting the next change.
        let mut reply = reply;
        let mut response_to = req.id;
        loop {
            let ok = reply.get("ok").is_some_and(crate::query::truthy);
            let flags = if ok {
                MsgFlags::MORE_TO_COME
            } else {
                MsgFlags::empty()
            };
            match write_reply_to(
                &mut stream,
                &mut writer,
                &req,
                response_to,
                reply.clone(),
                flags,
            )
            .await
            {
                Ok(id) => response_to = id,
                Err(_) => return,
            }
            if !ok {
                break;
            }
            let mut next = req.cmd.clone();
            if let Some(tv) = reply.get_document("topologyVersion").ok().cloned() {
                next.insert("topologyVersion", tv);
            }
            next.remove("client");
            next.remove("speculativeAuthenticate");
            next.remove("saslSupportedMechs");
            let running = run(&node, &req, next, &mut conn, &mut shutdown);
            match tokio::select! {
                biased;
                o = running => o,
                () = client_gone(&mut stream) => Outcome::Close,
            } {
                Outcome::Reply(r) => reply = r,
                Outcome::Close => return,
            }
        }
    }
}
