//! The executor: the one place that runs operations. It owns what every operation shares —
//! server selection, connection check-out, authentication on checkout, the envelope
//! (session fields, `$readPreference`, concerns), the operation's deadline, the race against
//! an interrupting pool clear, command monitoring (through the connection), SDAM error
//! handling, error labels, and retries — so that operations stay data
//! ([`crate::operation`]).
//!
//! The path of one command, from the public call to the socket:
//!
//! ```text
//! Collection::find ─► Client::execute(op, ctx) ─► attempt: select, check out, build +
//!   envelope ─► Connection::run_command ─► round_trip ─► send ─► socket ─► judge the reply
//! ```
//!
//! An [`OperationContext`] travels with each operation from the public call to the pool's
//! check-out and the connection's socket I/O: its id (for events and logs), its deadline
//! (`timeoutMS`; it bounds server selection, the check-out and every round trip), its read
//! preference, where it must run, and the retry state (the servers a retry avoids).
//!
//! Retries: each command (each batch of a batched write) runs in a loop of attempts. After a
//! failed attempt the executor gathers what the sans-I/O policy needs (`retry.rs`: whether the
//! retryable reads / writes rules allow a retry, whether the error is a retryable overload
//! error the client options let this operation retry, the error's `baseBackoffMS`, the
//! topology type), asks it, and either stops with the error the propagation rules choose or
//! deprioritizes the failed server, waits the backoff through the client's [`Backoff`]
//! (the failed attempt's connection is back in its pool by then) and tries again.
#![allow(
    clippy::disallowed_methods,
    reason = "the executor reads the clock to start an operation's deadline and to give the \
              retry policy the time left"
)]

use mongo_events::{ServerAddress, ServerType, TopologyType};
use mongo_sdam::ReadMode;

use super::client_session::{CommandFacts, SharedSession};
use super::retry::{Decision, Errors, Failure, RetryState};
use super::session::ServerSession;
use super::{Backoff, Client};
use crate::conn::CommandParams;
use crate::error::{
    Error, NO_WRITES_PERFORMED, RETRYABLE_ERROR, RETRYABLE_WRITE_ERROR, Result, TimeoutStage,
};
use crate::operation::{
    Envelope, OpKind, Operation, Step, check_write_concern, envelope, is_ok, is_unacknowledged,
    write_stage_may_use_secondaries,
};
use crate::topology::PooledConn;

pub(crate) use super::context::{OperationContext, Route, SessionUse};

/// What a finished operation hands back.
#[derive(Debug)]
pub(crate) struct Executed<T> {
    /// The operation's output.
    pub(crate) output: T,
    /// The server that produced it (`None` when the output came from the operation's error
    /// handling).
    pub(crate) address: Option<ServerAddress>,
    /// The connection, when the operation asked to keep it (load-balanced cursors).
    pub(crate) pinned: Option<PooledConn>,
    /// The implicit session, when the output keeps it (an open cursor).
    pub(crate) session: Option<ServerSession>,
    /// The explicit session the operation ran in, when the output keeps it (an open cursor
    /// runs its getMores in it).
    pub(crate) explicit: Option<SharedSession>,
}

/// One attempt's result.
struct Attempted<T> {
    step: Step<T>,
    address: ServerAddress,
    conn: Option<PooledConn>,
}

impl Client {
    /// Whether the client lets writes be retried: retryWrites on and writes acknowledged.
    fn retry_writes_enabled(&self) -> bool {
        self.inner.retry_writes && self.acknowledged()
    }

    /// Runs `op` to completion: selection, check-out, the command (and the next ones of a
    /// batched write), retries. With a `pinned` connection (a request, a load-balanced
    /// cursor) everything runs on it: the retryable reads / writes rules never retry, and an
    /// overload error is retried on the same connection.
    pub(crate) async fn execute<O: Operation>(
        &self,
        op: &mut O,
        mut ctx: OperationContext,
        pinned: Option<&mut PooledConn>,
    ) -> Result<Executed<O::Output>> {
        let ctx = &mut ctx;
        let kind = op.kind();
        // Inside a transaction (transactions spec): its read preference and pinned mongos,
        // no retries by the retryable reads / writes rules, its error labels.
        let mut transaction = None;
        if let SessionUse::Explicit(shared) = &ctx.session {
            let shared = shared.clone();
            shared.check(self)?;
            let explicit_rp = op.is_run_command() && kind == OpKind::Read;
            if shared.enter(kind != OpKind::Write, explicit_rp, ctx)? {
                transaction = Some(shared);
            }
        }
        // Load-balanced mode: a transaction runs on the connection pinned to it.
        let mut txn_conn = match &ctx.session {
            SessionUse::Explicit(shared) if pinned.is_none() => {
                self.transaction_connection(shared, transaction.is_some(), op.name(), ctx)
                    .await?
            }
            _ => None,
        };
        let mut pinned = match pinned {
            Some(c) => Some(c),
            None => txn_conn.as_mut().map(|c| &mut c.conn),
        };
        let inner = &self.inner;
        let run_command = op.is_run_command();
        let plan = RetryPlan {
            by_rules: pinned.is_none()
                && transaction.is_none()
                && ctx.route == Route::Select
                && op.is_retryable()
                && match kind {
                    OpKind::Read => inner.retry_reads,
                    OpKind::Write => self.retry_writes_enabled(),
                    OpKind::Command => false,
                },
            // The backpressure spec's rule 2.4: a write needs retryWrites, a read retryReads,
            // runCommand both.
            on_overload: match kind {
                _ if run_command => inner.retry_reads && inner.retry_writes,
                OpKind::Read => inner.retry_reads,
                OpKind::Write => inner.retry_writes,
                OpKind::Command => inner.retry_reads && inner.retry_writes,
            },
            // Its rule 6: runCommand's errors are reported as a write's.
            write_like: kind != OpKind::Read || run_command,
        };
        let mut write = SessionState {
            retryable_write: plan.by_rules && kind == OpKind::Write,
            implicit: None,
            txn_number: None,
            network_error: false,
        };
        let result = loop {
            // Each batch is its own retryable write: its own transaction number.
            write.txn_number = None;
            let outcome = self
                .command_with_retries(op, ctx, pinned.as_deref_mut(), kind, &plan, &mut write)
                .await;
            match outcome {
                Ok(Attempted {
                    step: Step::More, ..
                }) => {}
                Ok(Attempted {
                    step: Step::Done(output),
                    address,
                    conn,
                }) => {
                    // An open cursor keeps its implicit session for its getMores.
                    let keep = op.keeps_session(&output);
                    let session = if keep {
                        write.implicit.take().map(|mut s| {
                            s.dirty |= write.network_error;
                            s
                        })
                    } else {
                        None
                    };
                    let explicit = match &ctx.session {
                        SessionUse::Explicit(shared) if keep => Some(shared.clone()),
                        _ => None,
                    };
                    break Ok(Executed {
                        output,
                        address: Some(address),
                        pinned: conn,
                        session,
                        explicit,
                    });
                }
                Err(e) => {
                    // An operation may turn the error into output (a write concern error whose
                    // reply opened a cursor, which keeps the session like any open cursor).
                    let address = e.address().cloned();
                    break op.handle_error(e).map(|output| {
                        let keep = op.keeps_session(&output);
                        let explicit = match &ctx.session {
                            SessionUse::Explicit(shared) if keep => Some(shared.clone()),
                            _ => None,
                        };
                        let session = if keep {
                            write.implicit.take().map(|mut s| {
                                s.dirty |= write.network_error;
                                s
                            })
                        } else {
                            None
                        };
                        Executed {
                            output,
                            address,
                            pinned: None,
                            session,
                            explicit,
                        }
                    });
                }
            }
        };
        // The sessions spec: a session used in a network error is dirty (never reused).
        if let Some(mut session) = write.implicit.take() {
            session.dirty |= write.network_error;
            self.release_session(session);
        }
        if let (Some(c), SessionUse::Explicit(shared)) = (txn_conn, &ctx.session) {
            shared.put_connection(c);
        }
        let result = match transaction {
            Some(shared) => shared.after_transaction_op(result),
            None => result,
        };
        // With timeoutMS set, a time limit reached is reported as the timeout error.
        if ctx.timeout_set {
            let expired = ctx.deadline.is_some_and(|d| crate::conn::clock() >= d);
            result.map_err(|e| e.into_timeout(expired))
        } else {
            result
        }
    }

    /// Runs the operation's next command to its reply, retrying failed attempts as the retry
    /// policy (`retry.rs`) decides; the error is the one the propagation rules choose.
    async fn command_with_retries<O: Operation>(
        &self,
        op: &mut O,
        ctx: &mut OperationContext,
        mut pinned: Option<&mut PooledConn>,
        kind: OpKind,
        plan: &RetryPlan,
        write: &mut SessionState,
    ) -> Result<Attempted<O::Output>> {
        let backoff: &dyn Backoff = &*self.inner.backoff;
        let mut state = RetryState::new(self.inner.retry_policy, ctx.timeout_set);
        let mut errors = Errors::default();
        ctx.deprioritized.clear();
        loop {
            let failed = match self
                .attempt(op, ctx, pinned.as_deref_mut(), kind, write)
                .await
            {
                Ok(done) => return Ok(done),
                Err(failed) => failed,
            };
            let error = &failed.error;
            write.network_error |= error.is_network_error();
            let failure = Failure {
                retryable_by_rules: plan.by_rules && self.may_retry(kind, &failed),
                // A pinned connection must still be usable to run the command again.
                overload_eligible: plan.on_overload
                    && pinned.as_ref().is_none_or(|c| c.is_reusable()),
                overloaded: error.is_overload_error(),
                retryable_label: error.has_label(RETRYABLE_ERROR),
                base_backoff: error.base_backoff(),
                sharded: failed.sharded,
            };
            let remaining = ctx
                .deadline
                .map(|d| d.saturating_duration_since(crate::conn::clock()));
            let decision = state.on_failure(&failure, || backoff.jitter(), remaining);
            // Reads: an attempt that found no server does not replace the error before it.
            // Writes: only an attempt that may have written does.
            let counts = if plan.write_like {
                failed.sent && !error.has_label(NO_WRITES_PERFORMED)
            } else {
                failed.address.is_some()
            };
            match decision {
                Decision::Stop(_) => return Err(errors.finish(failed.error, counts)),
                Decision::Retry {
                    backoff: wait,
                    deprioritize,
                } => {
                    if deprioritize
                        && let Some(address) = &failed.address
                        && !ctx.deprioritized.contains(address)
                    {
                        ctx.deprioritized.push(address.clone());
                    }
                    errors.record(failed.error, counts);
                    if !wait.is_zero() {
                        backoff.sleep(wait).await;
                    }
                }
            }
        }
    }

    /// Whether a failed attempt of an operation the client lets retry may be retried under
    /// the retryable reads / writes rules: a read under the retryable reads rules; a write
    /// whose server supports retryable writes (or that failed before a server was known)
    /// under the retryable writes rules.
    fn may_retry(&self, kind: OpKind, failed: &Failed) -> bool {
        match kind {
            OpKind::Read => failed.error.is_retryable_read(),
            OpKind::Write => {
                let server_supports = match failed.server_supports_retry {
                    Some(s) => s,
                    // Failed during selection (or check-out from a fixed server): judge by
                    // the deployment.
                    None => self.deployment_supports_retryable_writes(),
                };
                server_supports && failed.error.is_retryable_write()
            }
            OpKind::Command => false,
        }
    }

    /// The load balancers spec's wait-queue timeout message: how the pool's connections are
    /// used (cursors, transactions, other operations).
    fn load_balanced_pool_usage(&self, address: &ServerAddress) -> String {
        let in_use = self
            .inner
            .topology
            .pool_stats()
            .into_iter()
            .find(|p| &p.address == address)
            .map_or(0, |p| p.stats.in_use);
        let cursors = self
            .inner
            .cursor_pins
            .load(std::sync::atomic::Ordering::Relaxed);
        let transactions = self
            .inner
            .transaction_pins
            .load(std::sync::atomic::Ordering::Relaxed);
        format!(
            "Timeout waiting for connection from the connection pool. maxPoolSize: {}, \
             connections in use by cursors: {cursors}, connections in use by transactions: \
             {transactions}, connections in use by other operations: {}",
            self.inner
                .options
                .max_pool_size
                .unwrap_or(mongo_pool::DEFAULT_MAX_POOL_SIZE),
            in_use.saturating_sub(cursors + transactions)
        )
    }

    /// Whether the deployment as known now supports retryable writes (sessions, not a
    /// standalone).
    fn deployment_supports_retryable_writes(&self) -> bool {
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

    async fn attempt<O: Operation>(
        &self,
        op: &mut O,
        ctx: &OperationContext,
        pinned: Option<&mut PooledConn>,
        kind: OpKind,
        write_state: &mut SessionState,
    ) -> std::result::Result<Attempted<O::Output>, Failed> {
        let topology = &self.inner.topology;
        let write = kind == OpKind::Write;
        // The RetryableWriteError label is the retryable writes spec's: only for a write that
        // is retryable here (retryWrites on, an operation that supports it).
        let retryable_write = write && write_state.retryable_write;
        let before_server = |error: Error| Failed {
            error,
            server_supports_retry: None,
            address: None,
            sent: false,
            sharded: false,
        };
        // Reads use their read preference; primary needs none in the envelope. A write that
        // may run on a secondary (an aggregate with `$out` / `$merge`) uses it too when every
        // available server is 5.0+ or behind a load balancer (CRUD spec).
        let read_preference = match kind {
            OpKind::Write
                if op.write_uses_read_preference()
                    && topology.with_description(write_stage_may_use_secondaries) =>
            {
                ctx.read_preference
                    .as_ref()
                    .filter(|rp| rp.mode != ReadMode::Primary)
            }
            OpKind::Write => None,
            OpKind::Read | OpKind::Command => ctx
                .read_preference
                .as_ref()
                .filter(|rp| rp.mode != ReadMode::Primary),
        };
        let mut owned = None;
        // The topology type comes with a selection; only a pinned connection or a fixed
        // server (getMore, killCursors) has to read it.
        let mut topology_type = None;
        // Whether the selected server supports retryable writes, as selected.
        let mut selected_supports_retry = None;
        // The selected server's minimum round-trip time, as selected (CSOT's maxTimeMS).
        let mut selected_min_rtt = None;
        let conn: &mut PooledConn = match pinned {
            Some(c) => c,
            None => {
                let server = match &ctx.route {
                    Route::Select => topology
                        .select_server(
                            read_preference,
                            &ctx.deprioritized,
                            op.name(),
                            Some(ctx.id),
                            ctx.deadline,
                        )
                        .await
                        .map(|selected| {
                            topology_type = Some(selected.topology_type);
                            selected_supports_retry = Some(selected.supports_retryable_writes);
                            selected_min_rtt = Some(selected.min_rtt);
                            selected.server
                        }),
                    Route::Server(address) => topology.server_at(address),
                    Route::Pinned(address) => topology
                        .select_pinned(address, ctx.deadline)
                        .await
                        .map(|(server, kind)| {
                            topology_type = Some(kind);
                            server
                        }),
                }
                .map_err(|mut e| {
                    if write {
                        e.add_label(NO_WRITES_PERFORMED);
                    }
                    before_server(e)
                })?;
                let address = server.address.clone();
                match topology.checkout(server, ctx.deadline).await {
                    Ok(c) => owned.insert(c),
                    Err(mut e) => {
                        if topology.is_load_balanced() && e.is_wait_queue_timeout() {
                            e = e.with_detail(self.load_balanced_pool_usage(&address));
                        }
                        if write {
                            e.add_label(NO_WRITES_PERFORMED);
                            if retryable_write && (e.is_network_error() || e.is_pool_cleared()) {
                                e.add_label(RETRYABLE_WRITE_ERROR);
                            }
                        }
                        return Err(Failed {
                            address: Some(address),
                            sharded: topology_type == Some(TopologyType::Sharded),
                            server_supports_retry: selected_supports_retry,
                            ..before_server(e)
                        });
                    }
                }
            }
        };
        let topology_type = topology_type.unwrap_or_else(|| topology.topology_type());
        let address = conn.address().clone();
        // The retryable writes spec: a write is retryable when the selected server supports
        // sessions and is not a standalone (or is behind a load balancer).
        let desc = conn.description();
        let server_supports_retry = write
            && (desc.server_type == ServerType::LoadBalancer
                || (desc.server_type != ServerType::Standalone
                    && desc.logical_session_timeout_minutes.is_some()));
        let failed = |error: Error, sent: bool| Failed {
            error,
            server_supports_retry: Some(server_supports_retry),
            address: Some(address.clone()),
            sent,
            sharded: topology_type == TopologyType::Sharded,
        };
        if !self.inner.credentials.is_empty() {
            if let Err(e) = conn.check_auth(&self.inner.credentials).await {
                if e.is_network_error() {
                    topology.handle_conn_error(conn, &e);
                }
                return Err(failed(e, false));
            }
        }

        let mut command = op.build(conn.description()).map_err(|e| failed(e, false))?;
        // The sessions spec: an implicit session only once a connection to a server that
        // supports sessions is checked out; never for an unacknowledged write, a command that
        // names its own session, or a connection several users are logged in on.
        // This view's write concern (the handle's, else the client's); w: 0 goes out with
        // moreToCome and no reply is read (OP_MSG spec).
        let explicit = match &ctx.session {
            SessionUse::Explicit(shared) => Some(shared),
            _ => None,
        };
        // In a transaction only commit and abort carry a write concern, and only the first
        // command a read concern (the transaction's).
        let in_txn = explicit.is_some_and(SharedSession::in_transaction);
        let client_wc = self
            .write_concern_document()
            .filter(|_| write && op.takes_write_concern() && !in_txn);
        if client_wc.is_some() && !self.acknowledged() && !command.body.contains_key("writeConcern")
        {
            command.acknowledged = false;
        }
        let read_concern_level = self.read_concern_level().filter(|_| !in_txn);
        let unacknowledged = is_unacknowledged(&command, client_wc);
        let desc = conn.description();
        let supports_sessions = desc.server_type == ServerType::LoadBalancer
            || desc.logical_session_timeout_minutes.is_some();
        // Whether this attempt's command is a retryable write that takes a transaction
        // number (from its session's server session, kept for the batch's retries).
        let wants_txn = write_state.retryable_write && server_supports_retry && !in_txn;
        let mut txn_number = None;
        // An explicit session's id, owned (its state is behind a lock).
        let explicit_lsid = match explicit {
            Some(shared) => {
                let txn = wants_txn.then_some(&mut write_state.txn_number);
                let (id, txn) = shared
                    .prepare(self, supports_sessions, unacknowledged, txn)
                    .map_err(|e| failed(e, false))?;
                txn_number = txn;
                Some(id)
            }
            None => None,
        };
        let lsid = match &ctx.session {
            SessionUse::Explicit(_) => explicit_lsid.as_ref(),
            SessionUse::Cursor(id) => id.as_ref(),
            SessionUse::Implicit
                if supports_sessions
                    && !unacknowledged
                    && op.takes_session()
                    && self.inner.credentials.len() <= 1
                    && !command.body.contains_key("lsid") =>
            {
                let now = crate::conn::clock();
                let timeout = self.session_timeout();
                let sessions = &self.inner.sessions;
                let session = write_state
                    .implicit
                    .get_or_insert_with(|| sessions.take(now, timeout));
                session.last_use = now;
                if wants_txn {
                    txn_number = Some(
                        *write_state
                            .txn_number
                            .get_or_insert_with(|| session.next_txn_number()),
                    );
                }
                Some(&session.id)
            }
            SessionUse::Implicit => None,
        };
        let env = Envelope {
            read_preference,
            write_concern: client_wc,
            read_concern_level: read_concern_level.filter(|_| op.takes_read_concern()),
            lsid,
            txn_number,
        };
        envelope(&mut command, kind, &env, conn.description(), topology_type);
        check_write_concern(&command, kind).map_err(|e| failed(e, false))?;
        // Gossip the highest cluster time seen (sessions spec): the client's, or an explicit
        // session's when later; servers that keep one send it.
        let mut cluster_time = self.inner.cluster_time.get();
        if let Some(shared) = explicit {
            let facts = CommandFacts {
                takes_read_concern: op.takes_read_concern(),
                max_wire_version: conn.max_wire_version(),
            };
            cluster_time = shared
                .before_send(&mut command.body, facts, cluster_time)
                .map_err(|e| failed(e, false))?;
            if in_txn {
                shared.sent_in_transaction(&address, topology_type == TopologyType::Sharded);
            }
        }
        if let Some(ct) = cluster_time
            && !command.body.contains_key("$clusterTime")
        {
            command.body.insert("$clusterTime", ct);
        }

        // Client-side operation timeouts: the deprecated maxTimeMS and wtimeout give way to
        // timeoutMS (a user's runCommand is sent as written); the remaining time less the
        // server's minimum round trip goes out as maxTimeMS, and a command that cannot
        // finish before the deadline is not sent.
        if ctx.timeout_set {
            if !op.is_run_command() && !op.caps_max_time() {
                command.body.remove("maxTimeMS");
            }
            if let Ok(wc) = command.body.get_document_mut("writeConcern") {
                wc.remove("wtimeout");
                if wc.is_empty() {
                    command.body.remove("writeConcern");
                }
            }
        }
        if let Some(deadline) = ctx.deadline.filter(|_| ctx.csot) {
            let min_rtt = selected_min_rtt.unwrap_or_else(|| {
                topology.with_description(|d| {
                    d.server(&address)
                        .and_then(|sd| sd.min_round_trip_time)
                        .unwrap_or_default()
                })
            });
            let remaining = deadline.saturating_duration_since(crate::conn::clock());
            if remaining.is_zero() || remaining <= min_rtt {
                return Err(failed(Error::timeout(TimeoutStage::BeforeSend), false));
            }
            let ms = i64::try_from((remaining - min_rtt).as_millis().max(1)).unwrap_or(i64::MAX);
            if op.sends_max_time() {
                command.body.insert("maxTimeMS", ms);
            } else if op.caps_max_time()
                && let Some(own) = command
                    .body
                    .get("maxTimeMS")
                    .and_then(crate::error::BsonExt::as_i64_lossy)
                && own > ms
            {
                command.body.insert("maxTimeMS", ms);
            }
        }

        // False when an interrupting clear caught the connection before the command went out.
        let mut sent = true;
        let result = if conn.is_interrupted() {
            sent = false;
            Err(conn.interrupt())
        } else {
            // Race the round trip against an interrupting pool clear (CMAP's
            // interruptInUseConnections): `biased` polls the I/O first, so the watch costs
            // nothing unless the command has to wait on the network.
            let (c, interruption) = conn.split_for_io();
            let mut params = CommandParams::for_operation(
                command.sequences,
                command.acknowledged,
                ctx.id,
                ctx.deadline,
            );
            params.set_cursor(op.lazy_batch(), op.exhaust_allowed() && !in_txn);
            let io = c.run_command(&command.db, command.body, params);
            let outcome = tokio::select! {
                biased;
                r = io => Some(r),
                () = interruption.wait() => None,
            };
            match outcome {
                Some(r) => r,
                None => Err(conn.interrupt()),
            }
        };
        // The reply's verdict: a command error (`ok` not 1), then, for writes, write errors
        // and write concern errors.
        let result = result.and_then(|reply| {
            self.inner.cluster_time.observe(&reply);
            if let Some(shared) = explicit {
                shared.lock().observe(&reply);
            }
            if !is_ok(&reply) {
                return Err(Error::from_reply(&reply).with_address(conn.address()));
            }
            if write && let Some(e) = Error::from_write_reply(&reply) {
                return Err(e.with_address(conn.address()));
            }
            Ok(reply)
        });
        match result {
            Ok(reply) => {
                if let Some(array) = conn.take_raw_batch() {
                    op.set_raw_batch(array);
                }
                let step = op
                    .handle_reply(reply, conn.description())
                    .map_err(|e| failed(e, true))?;
                let keep = match &step {
                    Step::Done(output) => topology.is_load_balanced() && op.pins_connection(output),
                    Step::More => false,
                };
                Ok(Attempted {
                    step,
                    address,
                    conn: (keep || conn.is_streaming()).then_some(owned).flatten(), // exhaust
                })
            }
            Err(mut e) => {
                if e.is_network_error() || e.is_state_change() {
                    topology.handle_conn_error(conn, &e);
                }
                // The sessions spec: a session used in a network error is dirty.
                if e.is_network_error()
                    && let Some(shared) = explicit
                {
                    shared.lock().mark_dirty();
                }
                if retryable_write {
                    e = e.for_retryable_write();
                    let old_server = conn.max_wire_version() < 9;
                    if e.is_network_error() || (old_server && e.has_retryable_code()) {
                        e.add_label(RETRYABLE_WRITE_ERROR);
                    }
                }
                Err(failed(e, sent))
            }
        }
    }
}

/// What the retry loop may do for one operation, decided once from the operation and the
/// client options.
struct RetryPlan {
    /// The retryable reads / writes rules may retry it (a retryable operation, selected
    /// afresh, retryReads / retryWrites on).
    by_rules: bool,
    /// The overload policy may retry it (client backpressure spec, rule 2.4).
    on_overload: bool,
    /// Its errors are reported as a write's (writes and runCommand).
    write_like: bool,
}

/// The session state of an operation: its implicit session (taken at the first attempt on
/// a server that supports sessions, kept across retries and batches), whether it is a
/// retryable write and the current batch's transaction number (kept for its retry), and
/// whether a network error made the session dirty.
struct SessionState {
    retryable_write: bool,
    implicit: Option<ServerSession>,
    txn_number: Option<i64>,
    network_error: bool,
}

/// A failed attempt: its error, and what the retry policy and the error propagation rules
/// need to know about where it failed.
struct Failed {
    error: Error,
    /// Whether the server it ran on (or was selected for) supports retryable writes
    /// (`None`: it failed before a server was known).
    server_supports_retry: Option<bool>,
    /// The server it was selected for (`None`: server selection failed).
    address: Option<ServerAddress>,
    /// Whether the command may have reached the server.
    sent: bool,
    /// Whether it ran in a sharded deployment.
    sharded: bool,
}
