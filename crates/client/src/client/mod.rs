//! [`Client`]: options to topology, `run_command`, databases and collections, pinned
//! connections ("requests"), `shutdown`. Every command goes through the executor
//! (`executor.rs`) as an operation value (`crate::operation`).

pub mod action;
mod backoff;
mod bulk_write;
mod change_stream;
mod client_session;
mod collection;
mod context;
mod cursor;
mod database;
pub(crate) mod executor;
mod handle;
#[cfg(test)]
mod lazy_batch_tests;
#[cfg(test)]
mod lifetime_tests;
#[cfg(test)]
mod metadata_tests;
#[cfg(test)]
mod options_tests;
mod retry;
mod session;
mod stream;
#[cfg(test)]
mod timeout_tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use bson::Document;
use mongo_events::{Listeners, ServerAddress};
use mongo_pool::PoolOptions;
use mongo_sdam::{ReadMode, ReadPreference, TopologyConfig, TopologyDescription};

pub use backoff::{Backoff, BackoffSleep, RandomBackoff};
pub use change_stream::ChangeStream;
pub use client_session::{
    ClientSession, SessionOptions, TransactionOptions, TransactionState,
    UNKNOWN_TRANSACTION_COMMIT_RESULT,
};
pub use collection::Collection;
pub use database::Database;
use executor::Route;
pub use handle::{CollectionOptions, DatabaseOptions, ReadConcern};
use retry::RetryPolicy;
use session::ServerSessionPool;
pub use stream::Cursor;

use crate::conn::{
    ConnectionOptions, DEFAULT_IDLE_CHECK_THRESHOLD, DriverInfo, ServerApi, client_metadata,
    handshake,
};
use crate::error::{Error, Result};
use crate::operation::{EndSessions, RunCommand};
use crate::options::ClientOptions;
use crate::topology::{PooledConn, ServerPoolStats, Topology, TopologySettings};

/// The default serverSelectionTimeoutMS.
pub const DEFAULT_SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// The default connectTimeoutMS.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long `shutdown` waits for `endSessions` at most.
const END_SESSIONS_LIMIT: Duration = Duration::from_secs(1);

/// The most session ids one `endSessions` names (sessions spec: 10,000 at a time).
const END_SESSIONS_BATCH: usize = 10_000;

/// Builds a [`Client`] from [`ClientOptions`] plus what a connection string cannot say:
/// listeners, the Stable API version and the backoff's randomness and timer.
///
/// Log messages go through `tracing` (targets `mongo::command`, `mongo::connection`,
/// `mongo::topology`, `mongo::server_selection`); like the subscriber, the longest document
/// they show is process-wide: `MONGODB_LOG_MAX_DOCUMENT_LENGTH`, or
/// [`event::log::set_max_document_length`](crate::event::log::set_max_document_length).
#[derive(Debug, Clone, Default)]
pub struct ClientBuilder {
    options: ClientOptions,
    listeners: Listeners,
    server_api: Option<ServerApi>,
    backoff: Option<Arc<dyn Backoff>>,
    pending_response_limit: Option<std::time::Duration>,
    /// Answers every DNS question instead of a resolver (tests).
    pub(crate) dns: Option<crate::srv::dns::Dns>,
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

    /// Where the backoff before retrying an overload error gets its jitter and how it waits
    /// (default [`RandomBackoff`]: uniform jitter, tokio's timer). For tests and simulations:
    /// pin the jitter, record the backoffs, or skip the waits.
    #[must_use]
    pub fn backoff(mut self, backoff: Arc<dyn Backoff>) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// How long after an operation's `timeoutMS` expired a late reply may still arrive on its
    /// connection (default [`PENDING_RESPONSE_LIMIT`](crate::conn::PENDING_RESPONSE_LIMIT),
    /// 3 s). Until then the connection is not closed: its next user reads and drops the
    /// late reply first, so a burst of timeouts does not become a burst of new connections.
    /// Zero closes a connection at once when its operation times out.
    #[must_use]
    pub fn pending_response_limit(mut self, limit: std::time::Duration) -> Self {
        self.pending_response_limit = Some(limit);
        self
    }

    /// Opens the client: a pool and a monitor per seed. Must run inside a tokio runtime.
    ///
    /// # Errors
    /// Invalid options, options this client cannot honour
    /// ([`ClientOptions::check_supported`]), TLS files that cannot be read.
    ///
    /// The client's background tasks (server monitors, pool maintenance, connection
    /// establishment, cursor clean-up) run inside the `tracing` span current when it is built,
    /// so that log messages can be told apart per client: build it inside a span of your own
    /// (an instrumented future, see `tracing::Instrument`) to tag them.
    ///
    /// For `mongodb+srv` it first looks up the SRV and TXT records (initial DNS seedlist
    /// discovery): DNS errors and records the spec does not allow fail the build.
    pub async fn build(self) -> Result<Client> {
        let prepared =
            crate::srv::discover::prepare(self.options.clone(), self.dns.clone()).await?;
        Client::open(self, prepared)
    }
}

pub(crate) struct ClientInner {
    pub(crate) topology: Topology,
    pub(crate) options: ClientOptions,
    /// The seed list the topology started from (for `mongodb+srv`, the SRV records' hosts).
    pub(crate) seeds: Vec<ServerAddress>,
    pub(crate) credentials: Vec<mongo_auth::Credential>,
    pub(crate) read_preference: Option<ReadPreference>,
    pub(crate) write_concern: Option<Document>,
    pub(crate) retry_reads: bool,
    pub(crate) retry_writes: bool,
    /// `maxAdaptiveRetries` and `enableOverloadRetargeting`.
    pub(crate) retry_policy: RetryPolicy,
    /// The jitter and the sleep of overload backoffs.
    pub(crate) backoff: Arc<dyn Backoff>,
    pub(crate) sessions: ServerSessionPool,
    /// The highest `$clusterTime` seen (gossiped on every command).
    pub(crate) cluster_time: session::ClusterClock,
    /// Connections pinned by cursors now (load-balanced mode; the load balancers spec's
    /// connection tracking, reported with wait-queue timeouts).
    pub(crate) cursor_pins: Arc<std::sync::atomic::AtomicUsize>,
    /// Connections pinned by transactions now (load-balanced mode), likewise.
    pub(crate) transaction_pins: Arc<std::sync::atomic::AtomicUsize>,
    /// Driver info appended so far (`append_metadata`), to append each only once.
    driver_info: parking_lot::Mutex<Vec<DriverInfo>>,
    /// The span the client was built in; its spawned tasks run inside it.
    pub(crate) span: tracing::Span,
    /// The Tokio runtime the client was built in: a session ended outside of any runtime
    /// aborts its transaction there.
    pub(crate) runtime: Option<tokio::runtime::Handle>,
    next_operation_id: AtomicI64,
}

/// A MongoDB client: cheap to clone; every clone shares the topology (one pool and one
/// monitor per server).
///
/// Every command an operation sends (reads, writes, `run_command`, a cursor's `getMore` …)
/// is retried when the server answers that it is overloaded (an error labelled
/// `SystemOverloadedError` and `RetryableError`), after an exponential backoff with jitter,
/// at most `maxAdaptiveRetries` times (default 2), provided `retryReads` (reads) /
/// `retryWrites` (writes) / both (`run_command`) are on; `enableOverloadRetargeting` sends
/// such retries to another suitable server when there is one. Applications with their own
/// retry loops around the client may want to shorten them accordingly.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<ClientInner>,
    /// The options of the database or collection handle this view belongs to (`None` for the
    /// client itself).
    pub(crate) handle: handle::Handle,
    /// The explicit session an action's operations run in (a transient view made by an
    /// action given `.session(..)`; `None` everywhere else).
    pub(crate) bound_session: Option<client_session::SharedSession>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
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

    fn open(b: ClientBuilder, prepared: crate::srv::discover::Prepared) -> Result<Client> {
        let o = prepared.options;
        let listeners = Listeners::with_global(&b.listeners);
        let load_balanced = o.load_balanced.unwrap_or(false);
        let connect_timeout = o.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);

        let mut config = TopologyConfig::new(prepared.seeds.clone());
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
        pool.max_lifetime = o.max_lifetime;
        pool.max_connecting = o.max_connecting;
        // timeoutMS replaces the deprecated waitQueueTimeoutMS (client-side operation
        // timeouts): the check-out waits until the operation's deadline instead.
        pool.wait_queue_timeout = o.wait_queue_timeout.filter(|_| o.timeout.is_none());
        pool.load_balanced = load_balanced;
        // connectTimeoutMS bounds the whole establishment (TCP, TLS, hello, auth): the
        // connection enforces it (`Connection::connect`), so that a timeout is judged by the
        // stage it cut short (SDAM handles one during authentication, the pool labels one up
        // to the hello as an overload signal). The pool's own establishment timeout stays
        // unset: it would race the connection's and could not tell the stages apart.

        let tls = if o.tls_enabled() {
            Some(crate::conn::tls::client_config(&o.tls)?)
        } else {
            None
        };
        let conn = ConnectionOptions {
            app_name: o.app_name.clone(),
            metadata: client_metadata(o.app_name.as_deref(), handshake::detect_env()),
            compressors: o.effective_compressors(),
            connect_timeout: Some(connect_timeout),
            socket_timeout: o.socket_timeout,
            tls,
            credential: o.credential.clone(),
            server_api: b.server_api,
            load_balanced,
            listeners: listeners.clone(),
            proxy: o.proxy.host.is_some().then(|| o.proxy.clone()),
            idle_check_threshold: o
                .idle_check_threshold
                .or(Some(DEFAULT_IDLE_CHECK_THRESHOLD)),
            dns: prepared.host_dns,
            pending_response_limit: b
                .pending_response_limit
                .unwrap_or(crate::conn::PENDING_RESPONSE_LIMIT),
        };
        let mut monitor_conn = conn.clone();
        monitor_conn.credential = None;
        monitor_conn.listeners = Listeners::new();
        monitor_conn.socket_timeout = None;

        let topology = Topology::open(TopologySettings {
            config,
            pool,
            connection: Arc::new(parking_lot::RwLock::new(Arc::new(conn))),
            monitor_connection: Arc::new(monitor_conn),
            monitoring_mode: o.server_monitoring_mode.unwrap_or_default(),
            server_selection_timeout: o
                .server_selection_timeout
                .unwrap_or(DEFAULT_SERVER_SELECTION_TIMEOUT),
            listeners,
        })?;
        if let Some(plan) = prepared.poll {
            crate::srv::poller::spawn(&topology, plan, tracing::Span::current());
        }
        Ok(Client {
            handle: None,
            bound_session: None,
            inner: Arc::new(ClientInner {
                topology,
                read_preference: o.read_preference.clone(),
                write_concern: o.write_concern.as_ref().and_then(|wc| wc.to_document()),
                retry_reads: o.retry_reads.unwrap_or(true),
                retry_writes: o.retry_writes.unwrap_or(true),
                retry_policy: RetryPolicy {
                    max_adaptive_retries: o
                        .max_adaptive_retries
                        .unwrap_or(retry::DEFAULT_MAX_ADAPTIVE_RETRIES),
                    overload_retargeting: o.enable_overload_retargeting.unwrap_or(false),
                },
                backoff: b.backoff.unwrap_or_else(|| Arc::new(RandomBackoff)),
                credentials: o.credential.iter().cloned().collect(),
                options: o,
                seeds: prepared.seeds,
                sessions: ServerSessionPool::default(),
                cluster_time: session::ClusterClock::default(),
                cursor_pins: Arc::default(),
                transaction_pins: Arc::default(),
                driver_info: parking_lot::Mutex::new(Vec::new()),
                span: tracing::Span::current(),
                runtime: tokio::runtime::Handle::try_current().ok(),
                next_operation_id: AtomicI64::new(1),
            }),
        })
    }

    /// The options the client was built with.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// The seed list the client started from: the hosts of its options, or for
    /// `mongodb+srv` the hosts its SRV records named (at most `srvMaxHosts` of them).
    pub fn initial_seeds(&self) -> &[ServerAddress] {
        &self.inner.seeds
    }

    /// A database handle.
    pub fn database(&self, name: &str) -> Database {
        Database::new(self.clone(), name)
    }

    /// A database handle whose operations use `options` (read concern, write concern, read
    /// preference) instead of the client's.
    pub fn database_with_options(&self, name: &str, options: DatabaseOptions) -> Database {
        Database::new(self.with_handle(options), name)
    }

    /// Appends a wrapping library's driver info to the client metadata of connections opened
    /// from now on (handshake spec, "Metadata updates after MongoClient initialization"):
    /// open connections keep theirs, none is opened or closed for it, and the same info twice
    /// is appended once.
    ///
    /// # Errors
    /// A field containing `|`, the metadata delimiter.
    pub fn append_metadata(&self, info: DriverInfo) -> Result<()> {
        let info = info.normalized();
        let mut appended = self.inner.driver_info.lock();
        if appended.contains(&info) {
            return Ok(());
        }
        let current = self.inner.topology.connection_options();
        let metadata = handshake::append_driver_info(&current.metadata, &info)
            .map_err(Error::invalid_argument)?;
        let mut options = (*current).clone();
        options.metadata = metadata;
        self.inner.topology.set_connection_options(options);
        appended.push(info);
        Ok(())
    }

    /// A view of this client with handle options over the current ones.
    pub(crate) fn with_handle(&self, options: DatabaseOptions) -> Client {
        let merged = options.over(self.handle.as_deref().map(|v| &v.options));
        Client {
            inner: self.inner.clone(),
            handle: Some(Arc::new(handle::View::new(merged))),
            bound_session: None,
        }
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

    /// Runs a command on the primary (or the only server) and returns its reply. It is retried
    /// only on overload errors, and only when both `retryReads` and `retryWrites` are on
    /// (client backpressure spec).
    ///
    /// # Errors
    /// Server selection, network and command errors.
    pub async fn run_command(&self, db: &str, cmd: Document) -> Result<Document> {
        let mut op = RunCommand::new(db, cmd);
        Ok(self
            .execute(&mut op, self.context(Route::Select), None)
            .await?
            .output)
    }

    /// Runs a read command with a read preference (retried once on a retryable error, and on
    /// overload errors as [`run_command`](Self::run_command) is).
    ///
    /// # Errors
    /// As [`run_command`](Self::run_command).
    pub async fn run_read_command(
        &self,
        db: &str,
        cmd: Document,
        read_preference: &ReadPreference,
    ) -> Result<Document> {
        let mut op = RunCommand::read(db, cmd);
        let mut ctx = self.context(Route::Select);
        ctx.read_preference = Some(read_preference.clone());
        Ok(self.execute(&mut op, ctx, None).await?.output)
    }

    /// Pins one connection for a sequence of commands (the old pooling notes' "request"):
    /// every command of the [`Request`] runs on the same connection, in order.
    ///
    /// # Errors
    /// Server selection and check-out errors.
    pub async fn start_request(&self) -> Result<Request> {
        let ctx = self.context(Route::Select);
        let topology = &self.inner.topology;
        let selected = topology
            .select_server(None, &[], "startRequest", Some(ctx.id), ctx.deadline)
            .await?;
        let conn = topology.checkout(selected.server, ctx.deadline).await?;
        Ok(Request {
            client: self.clone(),
            conn: Some(conn),
        })
    }

    /// Ends the client's server sessions (`endSessions` naming at most 10,000 each, best
    /// effort, at most a second in all), stops the monitors and closes the pools. Operations
    /// in progress fail; new ones get [`ErrorKind::Shutdown`](crate::ErrorKind::Shutdown).
    pub async fn shutdown(&self) {
        let ids = self.inner.sessions.drain();
        let bound = self.bounded_context(END_SESSIONS_LIMIT).deadline;
        for batch in ids.chunks(END_SESSIONS_BATCH) {
            let mut op = EndSessions::new(batch.to_vec());
            let mut ctx = self.context(Route::Select);
            ctx.deadline = bound;
            ctx.read_preference = Some(ReadPreference::new(ReadMode::PrimaryPreferred));
            // The sessions spec: errors of endSessions are ignored.
            let _ = self.execute(&mut op, ctx, None).await;
        }
        self.inner.topology.shutdown();
        // Give pool tasks a moment to close their connections.
        tokio::task::yield_now().await;
    }

    pub(crate) fn next_operation_id(&self) -> i64 {
        self.inner.next_operation_id.fetch_add(1, Ordering::Relaxed)
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
    /// Runs a command on the pinned connection (never retried elsewhere; an overload error is
    /// retried on the same connection, as [`Client::run_command`] would be).
    ///
    /// # Errors
    /// Network and command errors; after a network error the request is unusable.
    pub async fn run_command(&mut self, db: &str, cmd: Document) -> Result<Document> {
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| Error::usage("the request's connection was closed"))?;
        let mut op = RunCommand::new(db, cmd);
        let ctx = self.client.context(Route::Select);
        let r = self
            .client
            .execute(&mut op, ctx, Some(conn))
            .await
            .map(|e| e.output);
        if conn.is_broken() {
            self.conn = None;
        }
        r
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
