//! Explicit sessions (sessions spec, causal consistency spec, snapshot reads spec):
//! [`Client::start_session`], [`ClientSession`] and its [`SessionOptions`], how a session
//! joins an operation (`ClientSession::bind`, which the executor then honours: the session's
//! `lsid` and transaction numbers, its cluster time, its read concern rules, dirty on a
//! network error), and the `.session(..)` of every action (`super::action`).
//!
//! A `ClientSession` keeps its state behind a shared handle so that a cursor opened in it
//! runs its `getMore`s and `killCursors` in it after the call that opened it has returned;
//! the sans-I/O rules live in `core.rs`.

mod convenient;
mod core;
#[cfg(test)]
mod tests;
mod transaction;
mod txn;
#[cfg(test)]
mod txn_tests;
#[cfg(test)]
mod txn_wire_tests;
#[cfg(test)]
mod wire_tests;

use std::sync::Arc;
use std::time::Duration;

use bson::{Document, Timestamp};
use mongo_sdam::ReadPreference;
use parking_lot::{Mutex, MutexGuard};

use super::session::ServerSession;
use super::{Client, ReadConcern};
use crate::error::{Error, ErrorKind, Result};
use crate::options::WriteConcern;

pub(crate) use self::core::{CommandFacts, SessionCore, later_cluster_time};
pub use self::transaction::UNKNOWN_TRANSACTION_COMMIT_RESULT;
pub use self::txn::TransactionState;

/// The options of a transaction (transactions spec); a session keeps its default ones for
/// the transactions it will start.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct TransactionOptions {
    /// The transaction's read concern.
    pub read_concern: Option<ReadConcern>,
    /// The transaction's write concern.
    pub write_concern: Option<WriteConcern>,
    /// The read preference of the transaction's reads.
    pub read_preference: Option<ReadPreference>,
    /// How long `commitTransaction` may run on the server (`maxTimeMS`).
    pub max_commit_time: Option<Duration>,
}

impl TransactionOptions {
    /// Sets the read concern.
    #[must_use]
    pub fn read_concern(mut self, rc: ReadConcern) -> Self {
        self.read_concern = Some(rc);
        self
    }

    /// Sets the write concern.
    #[must_use]
    pub fn write_concern(mut self, wc: WriteConcern) -> Self {
        self.write_concern = Some(wc);
        self
    }

    /// Sets the read preference.
    #[must_use]
    pub fn read_preference(mut self, rp: ReadPreference) -> Self {
        self.read_preference = Some(rp);
        self
    }

    /// Sets the commit's time limit.
    #[must_use]
    pub fn max_commit_time(mut self, d: Duration) -> Self {
        self.max_commit_time = Some(d);
        self
    }
}

/// The options of [`Client::start_session`]; they cannot change once the session started.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct SessionOptions {
    /// Causally consistent reads (causal consistency spec): each read after the first waits
    /// for the session's last operation time. Default: true, unless `snapshot`.
    pub causal_consistency: Option<bool>,
    /// Snapshot reads (snapshot reads spec, MongoDB 5.0+): every read of the session reads
    /// the same snapshot. Default false; excludes `causal_consistency`.
    pub snapshot: Option<bool>,
    /// The snapshot's time (only with `snapshot`); default: the first read's.
    pub snapshot_time: Option<Timestamp>,
    /// The default options of the session's transactions.
    pub default_transaction_options: Option<TransactionOptions>,
    /// `defaultTimeoutMS`: the `timeoutMS` of `commit_transaction`, `abort_transaction`,
    /// `with_transaction` and the end of the session; unset: the client's.
    pub default_timeout: Option<std::time::Duration>,
}

impl SessionOptions {
    /// Sets causal consistency.
    #[must_use]
    pub fn causal_consistency(mut self, on: bool) -> Self {
        self.causal_consistency = Some(on);
        self
    }

    /// Sets snapshot reads.
    #[must_use]
    pub fn snapshot(mut self, on: bool) -> Self {
        self.snapshot = Some(on);
        self
    }

    /// Sets the snapshot time.
    #[must_use]
    pub fn snapshot_time(mut self, at: Timestamp) -> Self {
        self.snapshot_time = Some(at);
        self
    }

    /// Sets `defaultTimeoutMS` (zero: no limit).
    #[must_use]
    pub fn default_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.default_timeout = Some(timeout);
        self
    }

    /// Sets the transactions' default options.
    #[must_use]
    pub fn default_transaction_options(mut self, o: TransactionOptions) -> Self {
        self.default_transaction_options = Some(o);
        self
    }

    /// Checks the options together: snapshot reads exclude causal consistency, and a snapshot
    /// time needs snapshot reads.
    fn validate(&self) -> Result<()> {
        let snapshot = self.snapshot.unwrap_or(false);
        if snapshot && self.causal_consistency == Some(true) {
            return Err(Error::invalid_argument(
                "causalConsistency and snapshot cannot both be true",
            ));
        }
        if self.snapshot_time.is_some() && !snapshot {
            return Err(Error::invalid_argument("snapshotTime needs snapshot: true"));
        }
        Ok(())
    }
}

/// A session's shared state: the `ClientSession`, the operations it runs and the cursors
/// opened in it see the same one.
#[derive(Clone)]
pub(crate) struct SharedSession(Arc<Mutex<SessionCore>>);

impl SharedSession {
    /// Locks the state (never held across an await).
    pub(crate) fn lock(&self) -> MutexGuard<'_, SessionCore> {
        self.0.lock()
    }

    /// Checks, before an operation in the session starts, that `client` started it and that
    /// it has not ended.
    pub(crate) fn check(&self, client: &Client) -> Result<()> {
        let core = self.lock();
        if core.owner != client.key() {
            return Err(Error::invalid_argument(
                "the session was started by another client",
            ));
        }
        core.check_usable()
    }

    /// What an attempt of an operation in this session sends, once a connection is checked
    /// out: the session id (the server session is taken from `client`'s pool at the first
    /// use) and, for a retryable write, the transaction number (`txn`: the batch's, kept for
    /// its retries; drawn from the server session at its first attempt).
    ///
    /// # Errors
    /// A server without sessions or an unacknowledged write (sessions spec), an ended
    /// session.
    pub(crate) fn prepare(
        &self,
        client: &Client,
        supports_sessions: bool,
        unacknowledged: bool,
        txn: Option<&mut Option<i64>>,
    ) -> Result<(Document, Option<i64>)> {
        if !supports_sessions {
            return Err(Error::new(ErrorKind::IncompatibleServer(
                "this server does not support sessions".to_owned(),
            )));
        }
        if unacknowledged {
            return Err(Error::invalid_argument(
                "an unacknowledged write cannot run in an explicit session",
            ));
        }
        let now = crate::conn::clock();
        let mut core = self.lock();
        let session =
            core.server_session(|| client.inner.sessions.take(now, client.session_timeout()))?;
        session.last_use = now;
        let txn_number = txn.map(|t| *t.get_or_insert_with(|| session.next_txn_number()));
        Ok((session.id.clone(), txn_number))
    }

    /// Adds the session's read concern to a command about to go out (after the envelope)
    /// and gives the `$clusterTime` to send: the later of the client's and the session's.
    ///
    /// # Errors
    /// A snapshot session on a server older than 5.0.
    pub(crate) fn before_send(
        &self,
        body: &mut Document,
        facts: CommandFacts,
        client_cluster_time: Option<Document>,
    ) -> Result<Option<Document>> {
        let core = self.lock();
        if core.txn.is_active() {
            // The envelope added no concern: one found here is the operation's own.
            let explicit_wc = body.contains_key("writeConcern");
            core.txn.shape(body, explicit_wc, core.causal_time())?;
        } else {
            core.apply_read_concern(body, facts)?;
        }
        Ok(later_cluster_time(client_cluster_time, core.cluster_time()))
    }

    /// Whether a transaction is open in the session.
    pub(crate) fn in_transaction(&self) -> bool {
        self.lock().txn.is_active()
    }

    /// Prepares an operation about to run in the session: inside a transaction, the
    /// transaction's read preference (a read must use primary) and the mongos it is pinned
    /// to; outside, a finished transaction is left (state none, pin released). Returns
    /// whether it runs in the transaction. `read`: the operation reads (or is a command);
    /// `explicit_rp`: the operation's read preference is its own (a command run as a read).
    ///
    /// # Errors
    /// A read in a transaction whose read preference is not primary.
    pub(crate) fn enter(
        &self,
        read: bool,
        explicit_rp: bool,
        ctx: &mut super::executor::OperationContext,
    ) -> Result<bool> {
        let mut core = self.lock();
        if ctx.finishes_transaction {
            return Ok(false);
        }
        if !core.txn.is_active() {
            core.txn.outside();
            return Ok(false);
        }
        let not_primary = |rp: &Option<ReadPreference>| {
            rp.as_ref()
                .is_some_and(|rp| rp.mode != mongo_sdam::ReadMode::Primary)
        };
        let rp = core.txn.options.read_preference.clone();
        if (read && not_primary(&rp)) || (explicit_rp && not_primary(&ctx.read_preference)) {
            return Err(Error::invalid_argument(
                "read preference in a transaction must be primary",
            ));
        }
        ctx.read_preference = rp;
        if ctx.route == super::executor::Route::Select
            && let Some(address) = core.txn.pinned.clone()
        {
            ctx.route = super::executor::Route::Pinned(address);
        }
        Ok(true)
    }

    /// After a command in the transaction went to `address`: on a sharded cluster the
    /// transaction is pinned to that mongos.
    pub(crate) fn sent_in_transaction(&self, address: &mongo_events::ServerAddress, sharded: bool) {
        let mut core = self.lock();
        if sharded && core.txn.pinned.is_none() {
            core.txn.pinned = Some(address.clone());
        }
    }

    /// After an operation in the transaction (its retries sent `startTransaction` again):
    /// the transaction is in progress; network and server selection errors get the
    /// `TransientTransactionError` label, and a transient error unpins the session.
    pub(crate) fn after_transaction_op<T>(&self, result: Result<T>) -> Result<T> {
        {
            let mut core = self.lock();
            if core.txn.state == TransactionState::Starting {
                core.txn.state = TransactionState::InProgress;
            }
        }
        result.map_err(|e| self.transaction_error(e))
    }

    /// Labels an error of an operation in the transaction.
    fn transaction_error(&self, mut e: Error) -> Error {
        if e.is_network_error() || matches!(e.kind(), ErrorKind::ServerSelection(_)) {
            e.add_label(crate::error::TRANSIENT_TRANSACTION_ERROR);
        }
        if e.has_label(crate::error::TRANSIENT_TRANSACTION_ERROR) {
            self.lock().txn.unpin();
        }
        e
    }
}

impl PartialEq for SharedSession {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::fmt::Debug for SharedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSession").finish_non_exhaustive()
    }
}

/// An explicit session: a sequence of operations the server relates (one `lsid`), with
/// causally consistent reads by default, or snapshot reads.
///
/// Start one with [`Client::start_session`], pass it to the operations that take a session,
/// end it with [`end_session`](Self::end_session) or by dropping it: its server session then
/// goes back to the client's pool for reuse. A session is for one task at a time (operations
/// take it by `&mut`); it takes a server session from the pool at its first use, and a server
/// session idle for longer than the deployment's `logicalSessionTimeoutMinutes` (taken after
/// waiting more than a minute) may have expired on the server. Writes with an unacknowledged
/// write concern (`w: 0`) cannot run in an explicit session (they fail before being sent). A
/// cursor opened in a session runs its `getMore`s in it: end the session after the cursor.
pub struct ClientSession {
    client: Client,
    options: SessionOptions,
    shared: SharedSession,
}

impl std::fmt::Debug for ClientSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let core = self.shared.lock();
        f.debug_struct("ClientSession")
            .field("options", &self.options)
            .field("ended", &core.ended())
            .field("operation_time", &core.operation_time())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Starts an explicit session. Nothing is sent: the session takes a server session at
    /// its first use, and a deployment without sessions is reported then.
    ///
    /// # Errors
    /// `causal_consistency` and `snapshot` both true, `snapshot_time` without `snapshot`;
    /// several users authenticated.
    pub fn start_session(
        &self,
        options: impl Into<Option<SessionOptions>>,
    ) -> Result<ClientSession> {
        let options = options.into().unwrap_or_default();
        options.validate()?;
        if self.inner.credentials.len() > 1 {
            return Err(Error::usage(
                "Cannot call startSession when multiple users are authenticated.",
            ));
        }
        let snapshot = options.snapshot.unwrap_or(false);
        let causal = options.causal_consistency.unwrap_or(!snapshot);
        let mut core = SessionCore::new(self.key(), causal, snapshot, options.snapshot_time);
        core.default_timeout = options.default_timeout;
        Ok(ClientSession {
            client: self.clone(),
            options,
            shared: SharedSession(Arc::new(Mutex::new(core))),
        })
    }

    /// What tells this client from another (sessions belong to one client).
    pub(crate) fn key(&self) -> usize {
        Arc::as_ptr(&self.inner).addr()
    }

    /// A server session from the pool, for an explicit session's first use.
    fn take_server_session(&self) -> ServerSession {
        self.inner
            .sessions
            .take(crate::conn::clock(), self.session_timeout())
    }
}

impl ClientSession {
    /// The shared state operations in the session hold.
    pub(crate) fn shared(&self) -> SharedSession {
        self.shared.clone()
    }

    /// The client that started the session.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The options the session was started with.
    pub fn options(&self) -> &SessionOptions {
        &self.options
    }

    /// The session id (`lsid`). Before the first operation this takes the server session
    /// from the pool; after the end it stays the last one.
    pub fn id(&self) -> Document {
        let client = &self.client;
        self.shared.lock().id(
            || client.take_server_session(),
            || ServerSession::new(crate::conn::clock()).id,
        )
    }

    /// The highest cluster time the session has seen (`None` before any reply with one).
    pub fn cluster_time(&self) -> Option<Document> {
        self.shared.lock().cluster_time().cloned()
    }

    /// The operation time of the session's latest reply (`None` before any).
    pub fn operation_time(&self) -> Option<Timestamp> {
        self.shared.lock().operation_time()
    }

    /// The snapshot time of a snapshot session: the one given, else the first read's
    /// (`None` before it).
    ///
    /// # Errors
    /// The session is not a snapshot session (sessions spec, prose test 22).
    pub fn snapshot_time(&self) -> Result<Option<Timestamp>> {
        let core = self.shared.lock();
        if !core.is_snapshot() {
            return Err(Error::usage(
                "snapshotTime is only available on a snapshot session",
            ));
        }
        Ok(core.snapshot_time())
    }

    /// Advances the session's cluster time (only when `cluster_time` is later); the client's
    /// own is not changed.
    pub fn advance_cluster_time(&mut self, cluster_time: &Document) {
        self.shared.lock().advance_cluster_time(cluster_time);
    }

    /// Advances the session's operation time (only when `time` is later), for reads that
    /// must follow operations of another session.
    pub fn advance_operation_time(&mut self, time: Timestamp) {
        self.shared.lock().advance_operation_time(time);
    }

    /// Whether a network error happened while the session's server session was in use: it
    /// is then not reused after the session ends.
    pub fn is_dirty(&self) -> bool {
        self.shared.lock().is_dirty()
    }

    /// Whether the session has ended.
    pub fn has_ended(&self) -> bool {
        self.shared.lock().ended()
    }

    /// Ends the session: its server session goes back to the client's pool (discarded when
    /// dirty). Later calls do nothing; operations in the session fail from now on. A
    /// transaction in progress is aborted in the background, in the current Tokio runtime or
    /// else the one the client was built in, even when the session is dropped on a thread
    /// outside of any ([`end_session_async`](Self::end_session_async) waits for it).
    pub fn end_session(&mut self) {
        if self.shared.lock().txn.closing {
            return;
        }
        if self.pending_abort() && transaction::abort_in_background(&self.client, &self.shared) {
            return;
        }
        let taken = self.shared.lock().end();
        if let Some(server) = taken {
            self.client.release_session(server);
        }
    }
}

impl Drop for ClientSession {
    fn drop(&mut self) {
        self.end_session();
    }
}
