//! The transaction methods of [`ClientSession`] (transactions spec): start, commit (retried
//! once, `UnknownTransactionCommitResult`), abort (never raises), and the end of a session
//! with a transaction open.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::txn::TransactionState;
use super::{ClientSession, SharedSession, TransactionOptions};
use crate::client::context::deadline_of;
use crate::client::executor::{OperationContext, Route, SessionUse};
use crate::client::{Client, ReadConcern};
use crate::error::{Error, ErrorKind, RETRYABLE_WRITE_ERROR, Result, TRANSIENT_TRANSACTION_ERROR};
use crate::operation::RunCommand;
use crate::topology::PooledConn;

/// The label of a commit whose outcome is unknown: committing again may succeed.
pub const UNKNOWN_TRANSACTION_COMMIT_RESULT: &str = "UnknownTransactionCommitResult";

/// MaxTimeMSExpired.
const MAX_TIME_MS_EXPIRED: i32 = 50;
/// Write concern errors that are not worth committing again for.
const UNSATISFIABLE_WRITE_CONCERN: [i32; 2] = [100, 79];

impl ClientSession {
    /// Starts a transaction: the session's next operations run in it until
    /// [`commit_transaction`](Self::commit_transaction) or
    /// [`abort_transaction`](Self::abort_transaction). Its options default to the session's
    /// default transaction options, then to the client's concerns and read preference.
    /// Nothing is sent until the first operation.
    ///
    /// # Errors
    /// A transaction is already in progress, a snapshot session, an ended session, an
    /// unacknowledged write concern, a deployment known not to support transactions (a
    /// standalone, no sessions, a server older than 4.0 on a replica set or 4.2 on a
    /// sharded cluster).
    pub fn start_transaction(
        &mut self,
        options: impl Into<Option<TransactionOptions>>,
    ) -> Result<()> {
        let given = options.into().unwrap_or_default();
        let defaults = self
            .options
            .default_transaction_options
            .clone()
            .unwrap_or_default();
        let client = &self.client;
        let resolved = TransactionOptions {
            read_concern: given.read_concern.or(defaults.read_concern).or_else(|| {
                client
                    .inner
                    .options
                    .read_concern_level
                    .as_ref()
                    .map(ReadConcern::new)
            }),
            write_concern: given
                .write_concern
                .or(defaults.write_concern)
                .or_else(|| client.inner.options.write_concern.clone()),
            read_preference: given
                .read_preference
                .or(defaults.read_preference)
                .or_else(|| client.inner.read_preference.clone()),
            max_commit_time: given.max_commit_time.or(defaults.max_commit_time),
        };
        let mut core = self.shared.lock();
        if core.is_snapshot() {
            return Err(Error::usage(
                "Transactions are not supported in snapshot sessions",
            ));
        }
        core.check_usable()?;
        if core.txn.is_active() {
            return Err(Error::usage("Transaction already in progress"));
        }
        client
            .inner
            .topology
            .with_description(super::txn::check_deployment)?;
        let number = core
            .server_session(|| client.take_server_session())?
            .next_txn_number();
        core.txn.start(number, resolved)
    }

    /// Where the session's transaction stands.
    pub fn transaction_state(&self) -> TransactionState {
        self.shared.lock().txn.state
    }

    /// The mongos the session's transaction is pinned to (sharded clusters), or in
    /// load-balanced mode the address of the connection pinned to it.
    pub fn pinned_server(&self) -> Option<String> {
        let core = self.shared.lock();
        let txn = &core.txn;
        txn.pinned
            .as_ref()
            .or_else(|| txn.conn.as_ref().map(|c| c.conn.address()))
            .map(ToString::to_string)
    }

    /// Commits the transaction. A transaction in which nothing ran commits without sending
    /// anything; committing again repeats the commit (with `w: "majority"`). A retryable
    /// failure is retried once; a commit whose outcome is unknown fails with the
    /// `UnknownTransactionCommitResult` label.
    ///
    /// # Errors
    /// No transaction was started, it was aborted, or the commit failed.
    pub async fn commit_transaction(&mut self) -> Result<()> {
        self.commit_transaction_within(None).await
    }

    /// As [`commit_transaction`](Self::commit_transaction), within `timeout` (its
    /// `timeoutMS`; `None`: the session's `defaultTimeoutMS`, else the client's). One
    /// deadline covers the commit and its retry.
    ///
    /// # Errors
    /// As [`commit_transaction`](Self::commit_transaction); a timeout error when the
    /// deadline passes.
    pub async fn commit_transaction_within(
        &mut self,
        timeout: impl Into<Option<Duration>>,
    ) -> Result<()> {
        let _restore = DeadlineGuard::restoring(&self.shared, self.pin_deadline(timeout.into()));
        self.commit_once_or_twice().await
    }

    /// Sets the deadline of a commit or abort: `timeout` when given, else the one already
    /// running (`withTransaction`'s), else `defaultTimeoutMS` or the client's `timeoutMS`.
    /// Returns the deadline to put back.
    fn pin_deadline(&self, timeout: Option<Duration>) -> Option<Option<Instant>> {
        let mut core = self.shared.lock();
        let previous = core.callback_deadline;
        let timeout = match (timeout, previous) {
            (Some(t), _) => Some(t),
            (None, Some(_)) => return previous,
            (None, None) => core.default_timeout.or(self.client.timeout()),
        };
        if let Some(t) = timeout {
            core.callback_deadline = Some(deadline_of(Some(t)));
        }
        previous
    }

    async fn commit_once_or_twice(&mut self) -> Result<()> {
        let again = {
            let mut core = self.shared.lock();
            core.check_usable()?;
            let again = match core.txn.state {
                TransactionState::None => {
                    return Err(Error::usage("No transaction started"));
                }
                TransactionState::Aborted => {
                    return Err(Error::usage(
                        "Cannot call commitTransaction after calling abortTransaction",
                    ));
                }
                TransactionState::Starting | TransactionState::CommittedEmpty => {
                    core.txn.state = TransactionState::CommittedEmpty;
                    return Ok(());
                }
                TransactionState::InProgress => false,
                TransactionState::Committed => true,
            };
            core.txn.state = TransactionState::Committed;
            again
        };
        let mut result = finish(&self.client, &self.shared, "commitTransaction", again).await;
        if let Err(e) = &result
            && retryable(e)
        {
            // The retry may go to another mongos or connection.
            self.shared.lock().txn.unpin();
            result = finish(&self.client, &self.shared, "commitTransaction", true).await;
        }
        result.map_err(|mut e| {
            if unknown_commit_result(&e) {
                e.remove_label(TRANSIENT_TRANSACTION_ERROR);
                e.add_label(UNKNOWN_TRANSACTION_COMMIT_RESULT);
            }
            if e.has_label(UNKNOWN_TRANSACTION_COMMIT_RESULT)
                || e.has_label(TRANSIENT_TRANSACTION_ERROR)
            {
                self.shared.lock().txn.unpin();
            }
            e
        })
    }

    /// Aborts the transaction. The server's answer is ignored (abort never fails once a
    /// transaction is open); a retryable failure is retried once.
    ///
    /// # Errors
    /// No transaction was started, it was committed, or aborted already.
    pub async fn abort_transaction(&mut self) -> Result<()> {
        self.abort_transaction_within(None).await
    }

    /// As [`abort_transaction`](Self::abort_transaction), within `timeout` (its
    /// `timeoutMS`; `None`: the session's `defaultTimeoutMS`, else the client's). One
    /// deadline covers the abort and its retry.
    ///
    /// # Errors
    /// As [`abort_transaction`](Self::abort_transaction).
    pub async fn abort_transaction_within(
        &mut self,
        timeout: impl Into<Option<Duration>>,
    ) -> Result<()> {
        let _restore = DeadlineGuard::restoring(&self.shared, self.pin_deadline(timeout.into()));
        self.abort_once_or_twice().await
    }

    async fn abort_once_or_twice(&mut self) -> Result<()> {
        {
            let mut core = self.shared.lock();
            core.check_usable()?;
            match core.txn.state {
                TransactionState::None => {
                    return Err(Error::usage("No transaction started"));
                }
                TransactionState::Committed | TransactionState::CommittedEmpty => {
                    return Err(Error::usage(
                        "Cannot call abortTransaction after calling commitTransaction",
                    ));
                }
                TransactionState::Aborted => {
                    return Err(Error::usage("Cannot call abortTransaction twice"));
                }
                TransactionState::Starting => {
                    core.txn.state = TransactionState::Aborted;
                    return Ok(());
                }
                TransactionState::InProgress => core.txn.state = TransactionState::Aborted,
            }
        }
        abort(&self.client, &self.shared).await;
        Ok(())
    }

    /// Aborts an open transaction before the session ends (`end_session` does so in the
    /// background; this waits for it).
    pub async fn end_session_async(&mut self) {
        if self.transaction_state() == TransactionState::InProgress {
            let _ = self.abort_transaction().await;
        }
        self.end_session();
    }

    /// When the session ends with a transaction in progress: marks it aborted and gives the
    /// abort to run (before the server session goes back).
    pub(super) fn pending_abort(&self) -> bool {
        let mut core = self.shared.lock();
        let open = core.txn.state == TransactionState::InProgress;
        if core.txn.is_active() {
            core.txn.state = TransactionState::Aborted;
        }
        open
    }
}

/// Runs `abortTransaction` (retried once), ignoring the outcome, and unpins the session.
pub(super) async fn abort(client: &Client, shared: &SharedSession) {
    let first = finish(client, shared, "abortTransaction", false).await;
    if let Err(e) = &first
        && retryable(e)
    {
        shared.lock().txn.unpin();
        let _ = finish(client, shared, "abortTransaction", false).await;
    }
    shared.lock().txn.unpin();
}

/// Aborts the transaction of a session that ends, in a task of the current Tokio runtime,
/// else of the runtime the client was built in (a session dropped on a thread of its own);
/// the server session goes back to the pool after it. False when there is neither (the
/// transaction is then left to expire on the server). A runtime that has shut down drops
/// the task, and the transaction expires on the server.
#[expect(
    clippy::disallowed_methods,
    reason = "a session ended with a transaction in progress aborts it in a spawned task"
)]
pub(super) fn abort_in_background(client: &Client, shared: &SharedSession) -> bool {
    let Some(runtime) = tokio::runtime::Handle::try_current()
        .ok()
        .or_else(|| client.inner.runtime.clone())
    else {
        return false;
    };
    let client = client.clone();
    let shared = shared.clone();
    shared.lock().txn.closing = true;
    let span = client.inner.span.clone();
    runtime.spawn(tracing::Instrument::instrument(
        async move {
            abort(&client, &shared).await;
            let taken = shared.lock().end();
            if let Some(server) = taken {
                client.release_session(server);
            }
        },
        span,
    ));
    true
}

/// Runs `commitTransaction` or `abortTransaction` in the session, on the mongos it is
/// pinned to when it is; a write concern error of the reply is an error.
async fn finish(client: &Client, shared: &SharedSession, name: &str, retry: bool) -> Result<()> {
    let (body, route) = {
        let core = shared.lock();
        let route = core.txn.pinned.clone().map_or(Route::Select, Route::Pinned);
        (core.txn.finish_command(name, retry), route)
    };
    let mut op = RunCommand::new("admin", body);
    let mut ctx = client.session_context(route, shared);
    ctx.session = SessionUse::Explicit(shared.clone());
    ctx.finishes_transaction = true;
    let result = match client.execute(&mut op, ctx, None).await {
        Ok(done) => match Error::from_write_reply(&done.output) {
            Some(e) => Err(e),
            None => Ok(()),
        },
        Err(e) => Err(e),
    };
    // Commit and abort are retried once whatever retryWrites says: a network error may be.
    result.map_err(|mut e| {
        if e.is_network_error() {
            e.add_label(RETRYABLE_WRITE_ERROR);
        }
        e
    })
}

/// Whether a failed commit or abort is retried once: the `RetryableWriteError` label (an
/// overload error was already retried by the executor).
fn retryable(e: &Error) -> bool {
    e.has_label(RETRYABLE_WRITE_ERROR)
}

/// Whether a failed commit's outcome is unknown: network and server selection errors,
/// retryable errors, time limits, and write concern errors other than an unsatisfiable one.
fn unknown_commit_result(e: &Error) -> bool {
    if e.is_network_error()
        || retryable(e)
        || matches!(e.kind(), ErrorKind::ServerSelection(_))
        || e.is_timeout()
        || e.code() == Some(MAX_TIME_MS_EXPIRED)
    {
        return true;
    }
    match e.kind() {
        ErrorKind::Write(w) => w
            .write_concern_error
            .as_ref()
            .is_some_and(|wce| !UNSATISFIABLE_WRITE_CONCERN.contains(&wce.code)),
        _ => false,
    }
}

/// A connection pinned to a load-balanced transaction, counted while pinned (the load
/// balancers spec's wait-queue timeout message).
#[derive(Debug)]
pub(crate) struct TxnConn {
    pub(crate) conn: PooledConn,
    count: Arc<AtomicUsize>,
}

impl Drop for TxnConn {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Client {
    /// In load-balanced mode, the connection an operation in `shared` runs on: the one
    /// pinned to its transaction, checked out at the transaction's first operation
    /// (`in_txn`); a commit or abort takes the pinned one. `None` otherwise. The executor
    /// gives it back with `SharedSession::put_connection`.
    ///
    /// # Errors
    /// Server selection or check-out failed (labelled as an error in the transaction).
    pub(crate) async fn transaction_connection(
        &self,
        shared: &SharedSession,
        in_txn: bool,
        name: &str,
        ctx: &OperationContext,
    ) -> Result<Option<TxnConn>> {
        let topology = &self.inner.topology;
        if !topology.is_load_balanced() || !(in_txn || ctx.finishes_transaction) {
            return Ok(None);
        }
        if let Some(c) = shared.lock().txn.conn.take() {
            return Ok(Some(c));
        }
        if !in_txn {
            return Ok(None);
        }
        let checked_out = async {
            let selected = topology
                .select_server(None, &[], name, Some(ctx.id), ctx.deadline)
                .await?;
            topology.checkout(selected.server, ctx.deadline).await
        }
        .await;
        match checked_out {
            Ok(conn) => {
                let count = self.inner.transaction_pins.clone();
                count.fetch_add(1, Ordering::Relaxed);
                Ok(Some(TxnConn { conn, count }))
            }
            Err(e) => shared.after_transaction_op(Err(e)),
        }
    }
}

/// Puts a session's `callback_deadline` back as it was when dropped, so that a call that is
/// cancelled (its future dropped) leaves no deadline behind for the session's next
/// operations.
pub(crate) struct DeadlineGuard {
    shared: SharedSession,
    previous: Option<Option<Instant>>,
}

impl DeadlineGuard {
    /// Sets the deadline to `deadline` until the guard is dropped.
    pub(crate) fn set(shared: &SharedSession, deadline: Option<Option<Instant>>) -> Self {
        let previous = std::mem::replace(&mut shared.lock().callback_deadline, deadline);
        DeadlineGuard::restoring(shared, previous)
    }

    /// Puts `previous` back when dropped.
    pub(crate) fn restoring(shared: &SharedSession, previous: Option<Option<Instant>>) -> Self {
        DeadlineGuard {
            shared: shared.clone(),
            previous,
        }
    }
}

impl Drop for DeadlineGuard {
    fn drop(&mut self) {
        self.shared.lock().callback_deadline = self.previous;
    }
}

impl SharedSession {
    /// Gives back the connection pinned to the transaction after an operation.
    pub(crate) fn put_connection(&self, conn: TxnConn) {
        self.lock().txn.conn = Some(conn);
    }
}
