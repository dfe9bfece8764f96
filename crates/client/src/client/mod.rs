//! [`Client`]: options to topology, `run_command`, databases and collections, retryable
//! reads and writes, pinned connections ("requests"), `shutdown`.

mod collection;

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use bson::spec::BinarySubtype;
use bson::{Binary, Bson, Document, doc};
use mongo_events::{Listeners, ServerAddress, TopologyType};
use mongo_pool::PoolOptions;
use mongo_sdam::{
    ReadMode, ReadPreference as SdamReadPreference, TopologyConfig, TopologyDescription,
};
use parking_lot::Mutex;
use rand::Rng;

pub use collection::{
    Collection, Database, DeleteResult, FindOptions, InsertManyResult, InsertOneResult,
    UpdateResult,
};

use crate::conn::{ConnectionOptions, ServerApi, client_metadata, handshake};
use crate::error::{Error, NO_WRITES_PERFORMED, RETRYABLE_WRITE_ERROR, Result};
use crate::monitoring::DEFAULT_MAX_DOCUMENT_LENGTH;
use crate::options::{
    Acknowledgment, ClientOptions, Compressor, ReadPreferenceMode, ServerMonitoringMode,
};
use crate::topology::{PooledConn, ServerPoolStats, Topology, TopologySettings};
use crate::uri::HostAddr;

/// The default serverSelectionTimeoutMS.
pub const DEFAULT_SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds a [`Client`] from [`ClientOptions`] plus what a connection string cannot say:
/// listeners, the server API version, the log document length.
#[derive(Debug, Clone, Default)]
pub struct ClientBuilder {
    options: ClientOptions,
    listeners: Listeners,
    server_api: Option<ServerApi>,
    max_document_length: Option<usize>,
}

impl ClientBuilder {
    /// Uses these options.
    #[must_use]
    pub fn options(mut self, options: ClientOptions) -> Self {
        self.options = options;
        self
    }

    /// Per-client listeners (the process-wide ones registered before `build` are added).
    #[must_use]
    pub fn listeners(mut self, listeners: Listeners) -> Self {
        self.listeners = listeners;
        self
    }

    /// Declares a Stable API version (hello is then sent with OP_MSG).
    #[must_use]
    pub fn server_api(mut self, api: ServerApi) -> Self {
        self.server_api = Some(api);
        self
    }

    /// The longest document shown in command log messages (default 1000 bytes).
    #[must_use]
    pub fn max_document_length(mut self, bytes: usize) -> Self {
        self.max_document_length = Some(bytes);
        self
    }

    /// Opens the client: a pool and a monitor per seed. Must run inside a tokio runtime.
    ///
    /// # Errors
    /// Invalid options (including `mongodb+srv`, which this client cannot resolve), TLS
    /// files that cannot be read.
    pub async fn build(self) -> Result<Client> {
        Client::open(self)
    }
}

pub(crate) struct ClientInner {
    pub(crate) topology: Topology,
    pub(crate) options: ClientOptions,
    pub(crate) credentials: Vec<mongo_auth::Credential>,
    pub(crate) read_preference: Option<SdamReadPreference>,
    pub(crate) write_concern: Option<Document>,
    retry_reads: bool,
    retry_writes: bool,
    next_operation_id: AtomicI64,
    sessions: Mutex<Vec<Document>>,
    next_txn: AtomicI64,
}

/// A MongoDB client: cheap to clone; every clone shares the topology (one pool and one
/// monitor per server).
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<ClientInner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

/// What kind of operation is run (decides selection and retries).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum OpKind {
    /// A read: retryable, any server matching the read preference.
    Read,
    /// A write: retryable when the client and the deployment allow it.
    Write,
    /// A generic command on the primary: not retried.
    Command,
}

/// One operation for [`Client::execute`].
#[derive(Clone, Debug)]
pub(crate) struct Op {
    pub(crate) db: String,
    pub(crate) cmd: Document,
    pub(crate) sequence: Option<(String, Vec<Document>)>,
    pub(crate) kind: OpKind,
    pub(crate) acknowledged: bool,
}

impl Op {
    /// The command's name (its first key), for log messages.
    fn name(&self) -> &str {
        self.cmd.keys().next().map_or("command", String::as_str)
    }
}

pub(crate) struct Executed {
    pub(crate) reply: Document,
    pub(crate) address: ServerAddress,
    pub(crate) conn: Option<PooledConn>,
}

fn server_address(h: &HostAddr) -> ServerAddress {
    match h {
        HostAddr::Tcp { host, port } => ServerAddress::tcp(host, port.unwrap_or(27017)),
        HostAddr::Unix(path) => ServerAddress::unix(path),
    }
}

fn wire_compressor(c: Compressor, zlib_level: Option<i32>) -> Option<mongo_wire::Compressor> {
    match c {
        Compressor::Snappy => Some(mongo_wire::Compressor::Snappy),
        Compressor::Zstd => Some(mongo_wire::Compressor::Zstd),
        Compressor::Zlib => zlib_level.map_or(Some(mongo_wire::Compressor::ZLIB), |l| {
            mongo_wire::Compressor::zlib_with_level(l).ok()
        }),
    }
    .filter(|c| c.is_enabled())
}

pub(crate) fn read_preference(rp: &crate::options::ReadPreference) -> SdamReadPreference {
    let mode = match rp.mode {
        ReadPreferenceMode::Primary => ReadMode::Primary,
        ReadPreferenceMode::PrimaryPreferred => ReadMode::PrimaryPreferred,
        ReadPreferenceMode::Secondary => ReadMode::Secondary,
        ReadPreferenceMode::SecondaryPreferred => ReadMode::SecondaryPreferred,
        ReadPreferenceMode::Nearest => ReadMode::Nearest,
    };
    SdamReadPreference::new(mode)
        .with_tag_sets(rp.tag_sets.clone())
        .with_max_staleness(rp.max_staleness)
}

fn read_pref_doc(rp: &SdamReadPreference) -> Document {
    let mode = match rp.mode {
        ReadMode::Primary => "primary",
        ReadMode::PrimaryPreferred => "primaryPreferred",
        ReadMode::Secondary => "secondary",
        ReadMode::SecondaryPreferred => "secondaryPreferred",
        ReadMode::Nearest => "nearest",
    };
    let mut d = doc! { "mode": mode };
    if !rp.tag_sets.is_empty() {
        let tags: Vec<Bson> = rp
            .tag_sets
            .iter()
            .map(|t| {
                Bson::Document(
                    t.iter()
                        .map(|(k, v)| (k.clone(), Bson::String(v.clone())))
                        .collect(),
                )
            })
            .collect();
        d.insert("tags", tags);
    }
    if let Some(s) = rp.max_staleness {
        d.insert(
            "maxStalenessSeconds",
            i64::try_from(s.as_secs()).unwrap_or(i64::MAX),
        );
    }
    d
}

fn write_concern_doc(o: &ClientOptions) -> Option<Document> {
    let wc = o.write_concern.as_ref()?;
    let mut d = Document::new();
    match &wc.w {
        Some(Acknowledgment::Nodes(n)) => {
            d.insert("w", i64::from(*n));
        }
        Some(Acknowledgment::Majority) => {
            d.insert("w", "majority");
        }
        Some(Acknowledgment::Custom(s)) => {
            d.insert("w", s.clone());
        }
        None => {}
    }
    if let Some(j) = wc.journal {
        d.insert("j", j);
    }
    if let Some(t) = wc.w_timeout {
        d.insert("wtimeout", i64::try_from(t.as_millis()).unwrap_or(i64::MAX));
    }
    (!d.is_empty()).then_some(d)
}

impl Client {
    /// A builder.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// Parses a connection string and opens a client.
    ///
    /// # Errors
    /// An invalid connection string, or as [`ClientBuilder::build`].
    pub async fn with_uri_str(uri: &str) -> Result<Client> {
        let options = ClientOptions::parse(uri)?;
        Client::builder().options(options).build().await
    }

    /// Opens a client with these options.
    ///
    /// # Errors
    /// As [`ClientBuilder::build`].
    pub async fn with_options(options: ClientOptions) -> Result<Client> {
        Client::builder().options(options).build().await
    }

    fn open(b: ClientBuilder) -> Result<Client> {
        let o = b.options;
        if o.srv {
            return Err(Error::invalid_argument(
                "mongodb+srv connection strings need DNS SRV lookups, which this client does not do",
            ));
        }
        if o.hosts.is_empty() {
            return Err(Error::invalid_argument("no hosts given"));
        }
        let listeners = Listeners::with_global(&b.listeners);
        let seeds: Vec<ServerAddress> = o.hosts.iter().map(server_address).collect();
        let load_balanced = o.load_balanced.unwrap_or(false);

        let mut config = TopologyConfig::new(seeds);
        config.set_name = o.replica_set.clone();
        config.direct_connection = o.direct_connection;
        config.load_balanced = load_balanced;
        if let Some(h) = o.heartbeat_frequency {
            config.heartbeat_frequency = h;
        }
        if let Some(l) = o.local_threshold {
            config.local_threshold = l;
        }

        let mut pool = PoolOptions::default();
        pool.max_pool_size = o.max_pool_size;
        pool.min_pool_size = o.min_pool_size;
        pool.max_idle_time = o.max_idle_time;
        pool.max_connecting = o.max_connecting;
        pool.wait_queue_timeout = o.wait_queue_timeout;
        pool.load_balanced = load_balanced;
        // connectTimeoutMS bounds the whole establishment (TCP, TLS, hello, auth), through the
        // pool's establishment timeout: a server that accepts and never answers hello must not
        // hold a maxConnecting slot forever. 0 means no limit, as for the socket connect.
        pool.connect_timeout = Some(o.connect_timeout.unwrap_or(Duration::from_secs(10)));

        let credential = o
            .credential
            .as_ref()
            .map(crate::options::Credential::to_auth_credential)
            .transpose()?;
        let tls = if o.tls_enabled() {
            Some(crate::conn::tls::client_config(&o.tls)?)
        } else {
            None
        };
        let conn = ConnectionOptions {
            app_name: o.app_name.clone(),
            metadata: client_metadata(o.app_name.as_deref(), handshake::detect_env()),
            compressors: o
                .compressors
                .iter()
                .flatten()
                .filter_map(|c| wire_compressor(*c, o.zlib_compression_level))
                .collect(),
            connect_timeout: Some(o.connect_timeout.unwrap_or(Duration::from_secs(10))),
            socket_timeout: o.socket_timeout,
            tls,
            credential: credential.clone(),
            server_api: b.server_api,
            load_balanced,
            listeners: listeners.clone(),
            max_document_length: b.max_document_length.unwrap_or(DEFAULT_MAX_DOCUMENT_LENGTH),
        };
        let mut monitor_conn = conn.clone();
        monitor_conn.credential = None;
        monitor_conn.listeners = Listeners::new();
        monitor_conn.socket_timeout = None;

        let monitoring_mode = match o.server_monitoring_mode {
            Some(ServerMonitoringMode::Stream) => mongo_sdam::ServerMonitoringMode::Stream,
            Some(ServerMonitoringMode::Poll) => mongo_sdam::ServerMonitoringMode::Poll,
            _ => mongo_sdam::ServerMonitoringMode::Auto,
        };
        let topology = Topology::open(TopologySettings {
            config,
            pool,
            connection: Arc::new(conn),
            monitor_connection: Arc::new(monitor_conn),
            monitoring_mode,
            server_selection_timeout: o
                .server_selection_timeout
                .unwrap_or(DEFAULT_SERVER_SELECTION_TIMEOUT),
            listeners,
        })?;
        Ok(Client {
            inner: Arc::new(ClientInner {
                topology,
                read_preference: o.read_preference.as_ref().map(read_preference),
                write_concern: write_concern_doc(&o),
                retry_reads: o.retry_reads.unwrap_or(true),
                retry_writes: o.retry_writes.unwrap_or(true),
                credentials: credential.into_iter().collect(),
                options: o,
                next_operation_id: AtomicI64::new(1),
                sessions: Mutex::new(Vec::new()),
                next_txn: AtomicI64::new(1),
            }),
        })
    }

    /// The options the client was built with.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// A database handle.
    pub fn database(&self, name: &str) -> Database {
        Database::new(self.clone(), name)
    }

    /// The connection string's default database, if it named one.
    pub fn default_database(&self) -> Option<Database> {
        self.inner
            .options
            .default_database
            .as_deref()
            .map(|n| self.database(n))
    }

    /// The current topology description.
    pub fn topology_description(&self) -> TopologyDescription {
        self.inner.topology.description()
    }

    /// Each server's pool counts.
    pub fn pool_stats(&self) -> Vec<ServerPoolStats> {
        self.inner.topology.pool_stats()
    }

    /// Waits (up to `timeout`) until a server is known: useful before printing the topology.
    pub async fn wait_for_discovery(&self, timeout: Duration) -> bool {
        self.inner.topology.request_checks();
        self.inner
            .topology
            .wait_for(timeout, crate::topology::has_known_server)
            .await
    }

    /// Waits (up to `timeout`) until the topology satisfies `f`.
    pub async fn wait_for_topology(
        &self,
        timeout: Duration,
        f: impl FnMut(&TopologyDescription) -> bool,
    ) -> bool {
        self.inner.topology.wait_for(timeout, f).await
    }

    /// Runs a command on the primary (or the only server) and returns its reply. Commands are
    /// not retried.
    ///
    /// # Errors
    /// Server selection, network and command errors.
    pub async fn run_command(&self, db: &str, cmd: Document) -> Result<Document> {
        let op = Op {
            db: db.to_owned(),
            cmd,
            sequence: None,
            kind: OpKind::Command,
            acknowledged: true,
        };
        Ok(self.execute(&op, None, false).await?.reply)
    }

    /// Runs a read command with a read preference (retried once on a retryable error).
    ///
    /// # Errors
    /// As [`run_command`](Self::run_command).
    pub async fn run_read_command(
        &self,
        db: &str,
        cmd: Document,
        read_preference: &crate::options::ReadPreference,
    ) -> Result<Document> {
        let op = Op {
            db: db.to_owned(),
            cmd,
            sequence: None,
            kind: OpKind::Read,
            acknowledged: true,
        };
        let rp = self::read_preference(read_preference);
        Ok(self.execute_with(&op, None, false, Some(&rp)).await?.reply)
    }

    /// Pins one connection for a sequence of commands (the old pooling notes' "request"):
    /// every command of the [`Request`] runs on the same connection, in order.
    ///
    /// # Errors
    /// Server selection and check-out errors.
    pub async fn start_request(&self) -> Result<Request> {
        let server = self
            .inner
            .topology
            .select_server(None, &[], "startRequest", None)
            .await?;
        let conn = self.inner.topology.checkout(server).await?;
        Ok(Request {
            client: self.clone(),
            conn: Some(conn),
        })
    }

    /// Clears the pool of `address` as SDAM error handling would, optionally interrupting
    /// the operations in progress on its connections (`interruptInUseConnections`). For
    /// tests; returns false when the server is not part of the topology.
    #[doc(hidden)]
    pub fn clear_pool_for_test(&self, address: &ServerAddress, interrupt: bool) -> bool {
        self.inner.topology.clear_pool(address, interrupt)
    }

    /// Stops the monitors and closes the pools. Operations in progress fail; new ones get
    /// [`ErrorKind::Shutdown`](crate::ErrorKind::Shutdown).
    pub async fn shutdown(&self) {
        self.inner.topology.shutdown();
        // Give pool tasks a moment to close their connections.
        tokio::task::yield_now().await;
    }

    pub(crate) fn topology(&self) -> &Topology {
        &self.inner.topology
    }

    pub(crate) fn next_operation_id(&self) -> i64 {
        self.inner.next_operation_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether writes may be retried on this deployment: retryWrites on, sessions supported
    /// and not a standalone.
    fn writes_retryable(&self) -> bool {
        if !self.inner.retry_writes {
            return false;
        }
        self.inner.topology.with_description(|d| {
            matches!(
                d.topology_type(),
                TopologyType::ReplicaSetWithPrimary
                    | TopologyType::Sharded
                    | TopologyType::LoadBalanced
            ) && (d.logical_session_timeout_minutes().is_some()
                || d.topology_type() == TopologyType::LoadBalanced)
        })
    }

    fn take_session(&self) -> Document {
        if let Some(s) = self.inner.sessions.lock().pop() {
            return s;
        }
        let mut bytes = [0u8; 16];
        rand::rng().fill(&mut bytes);
        // RFC 4122 version 4 bits.
        if let Some(b) = bytes.get_mut(6) {
            *b = (*b & 0x0f) | 0x40;
        }
        if let Some(b) = bytes.get_mut(8) {
            *b = (*b & 0x3f) | 0x80;
        }
        doc! { "id": Binary { subtype: BinarySubtype::Uuid, bytes: bytes.to_vec() } }
    }

    fn return_session(&self, lsid: Document) {
        let mut s = self.inner.sessions.lock();
        if s.len() < 100 {
            s.push(lsid);
        }
    }

    pub(crate) async fn execute(
        &self,
        op: &Op,
        pin: Option<&mut PooledConn>,
        keep_conn: bool,
    ) -> Result<Executed> {
        let rp = match op.kind {
            OpKind::Read => self.inner.read_preference.as_ref(),
            _ => None,
        };
        self.execute_with(op, pin, keep_conn, rp).await
    }

    /// Runs an operation: selects a server, checks out, runs, and retries once when the
    /// retryable reads / writes rules allow.
    pub(crate) async fn execute_with(
        &self,
        op: &Op,
        pin: Option<&mut PooledConn>,
        keep_conn: bool,
        read_pref: Option<&SdamReadPreference>,
    ) -> Result<Executed> {
        let operation_id = self.next_operation_id();
        let retryable = match op.kind {
            OpKind::Read => self.inner.retry_reads,
            OpKind::Write => op.acknowledged && self.writes_retryable(),
            OpKind::Command => false,
        } && pin.is_none();
        // Only a retryable write changes the command (session and transaction number): other
        // operations run the caller's `Op` as it is, without a copy.
        let mut lsid = None;
        let op: Cow<'_, Op> = if retryable && op.kind == OpKind::Write {
            let mut op = op.clone();
            let s = self.take_session();
            op.cmd.insert("lsid", s.clone());
            op.cmd.insert(
                "txnNumber",
                self.inner.next_txn.fetch_add(1, Ordering::Relaxed),
            );
            lsid = Some(s);
            Cow::Owned(op)
        } else {
            Cow::Borrowed(op)
        };
        let read_pref = read_pref.filter(|rp| rp.mode != ReadMode::Primary);
        let first = self
            .attempt(&op, pin, keep_conn, read_pref, &[], operation_id)
            .await;
        let result = match first {
            Ok(r) => Ok(r),
            Err(e) => {
                let again = retryable
                    && match op.kind {
                        OpKind::Read => e.is_retryable_read(),
                        _ => e.is_retryable_write(),
                    };
                if !again {
                    Err(e)
                } else {
                    let deprioritized: Vec<ServerAddress> =
                        e.address().cloned().into_iter().collect();
                    match self
                        .attempt(
                            &op,
                            None,
                            keep_conn,
                            read_pref,
                            &deprioritized,
                            operation_id,
                        )
                        .await
                    {
                        Ok(r) => Ok(r),
                        Err(second) if second.has_label(NO_WRITES_PERFORMED) => Err(e),
                        Err(second) => Err(second),
                    }
                }
            }
        };
        if let Some(s) = lsid {
            self.return_session(s);
        }
        result
    }

    async fn attempt(
        &self,
        op: &Op,
        pin: Option<&mut PooledConn>,
        keep_conn: bool,
        read_pref: Option<&SdamReadPreference>,
        deprioritized: &[ServerAddress],
        operation_id: i64,
    ) -> Result<Executed> {
        let topology = &self.inner.topology;
        let mut owned = None;
        let conn: &mut PooledConn = match pin {
            Some(c) => c,
            None => {
                let server = topology
                    .select_server(read_pref, deprioritized, op.name(), Some(operation_id))
                    .await;
                let server = match server {
                    Ok(s) => s,
                    Err(mut e) => {
                        if op.kind == OpKind::Write {
                            e.add_label(NO_WRITES_PERFORMED);
                        }
                        return Err(e);
                    }
                };
                match topology.checkout(server).await {
                    Ok(c) => owned.insert(c),
                    Err(mut e) => {
                        if op.kind == OpKind::Write {
                            e.add_label(NO_WRITES_PERFORMED);
                            if e.is_network_error() || e.is_pool_cleared() {
                                e.add_label(RETRYABLE_WRITE_ERROR);
                            }
                        }
                        return Err(e);
                    }
                }
            }
        };
        if !self.inner.credentials.is_empty() {
            if let Err(e) = conn.check_auth(&self.inner.credentials).await {
                if e.is_network_error() {
                    topology.handle_conn_error(conn, &e);
                }
                return Err(e);
            }
        }
        let mut cmd = op.cmd.clone();
        if let Some(rp) = read_pref {
            if conn.hello().is_mongos
                || topology.with_description(|d| d.topology_type() == TopologyType::Sharded)
            {
                cmd.insert("$readPreference", read_pref_doc(rp));
            }
        } else if op.kind == OpKind::Read || op.kind == OpKind::Command {
            // Direct connections to a secondary need secondaryPreferred to read.
            if conn.hello().set_name.is_some()
                && !conn
                    .hello()
                    .raw
                    .get_bool("isWritablePrimary")
                    .unwrap_or(false)
                && !conn.hello().raw.get_bool("ismaster").unwrap_or(false)
                && topology.with_description(|d| d.topology_type() == TopologyType::Single)
            {
                cmd.insert("$readPreference", doc! {"mode": "primaryPreferred"});
            }
        }
        if op.kind == OpKind::Write {
            if let Some(wc) = &self.inner.write_concern {
                if !cmd.contains_key("writeConcern") {
                    cmd.insert("writeConcern", wc.clone());
                }
            }
        }
        let result = if conn.is_interrupted() {
            Err(conn.interrupt())
        } else {
            // Race the I/O against an interrupting pool clear (CMAP's
            // interruptInUseConnections): `biased` polls the I/O first, so the watch costs
            // nothing unless the command has to wait on the network.
            let (c, watch) = conn.split_for_io();
            let io = async {
                match &op.sequence {
                    Some((id, docs)) => {
                        c.write_command_with(
                            &op.db,
                            cmd,
                            id,
                            docs,
                            op.acknowledged,
                            Some(operation_id),
                        )
                        .await
                    }
                    None => c.command_with(&op.db, cmd, Some(operation_id)).await,
                }
            };
            let outcome = tokio::select! {
                biased;
                r = io => Some(r),
                () = watch.interrupted() => None,
            };
            match outcome {
                Some(r) => r,
                None => Err(conn.interrupt()),
            }
        };
        // Only writes look for write errors in the reply.
        let result = result.and_then(|reply| match op.kind {
            OpKind::Write => match Error::from_write_reply(&reply) {
                Some(e) => Err(e.with_address(conn.address())),
                None => Ok(reply),
            },
            OpKind::Read | OpKind::Command => Ok(reply),
        });
        match result {
            Ok(reply) => Ok(Executed {
                reply,
                address: conn.address().clone(),
                conn: if keep_conn { owned } else { None },
            }),
            Err(mut e) => {
                if e.is_network_error() || e.is_state_change() {
                    topology.handle_conn_error(conn, &e);
                }
                if op.kind == OpKind::Write {
                    let old_server = conn.max_wire_version() < 9;
                    if e.is_network_error() || (old_server && e.has_retryable_code()) {
                        e.add_label(RETRYABLE_WRITE_ERROR);
                    }
                }
                Err(e)
            }
        }
    }
}

/// A pinned connection: every command runs on the same connection (the old pooling notes'
/// "request"; today's pinning). Dropping it returns the connection to its pool.
#[derive(Debug)]
pub struct Request {
    client: Client,
    conn: Option<PooledConn>,
}

impl Request {
    /// Runs a command on the pinned connection (never retried elsewhere).
    ///
    /// # Errors
    /// Network and command errors; after a network error the request is unusable.
    pub async fn run_command(&mut self, db: &str, cmd: Document) -> Result<Document> {
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| Error::usage("the request's connection was closed"))?;
        let op = Op {
            db: db.to_owned(),
            cmd,
            sequence: None,
            kind: OpKind::Command,
            acknowledged: true,
        };
        let r = self.client.execute(&op, Some(conn), false).await;
        if conn.is_broken() {
            self.conn = None;
        }
        r.map(|e| e.reply)
    }

    /// The driver's id of the pinned connection.
    pub fn connection_id(&self) -> Option<mongo_events::ConnectionId> {
        self.conn.as_ref().map(|c| c.id())
    }

    /// The pinned connection's server.
    pub fn address(&self) -> Option<&ServerAddress> {
        self.conn.as_ref().map(|c| c.address())
    }
}
