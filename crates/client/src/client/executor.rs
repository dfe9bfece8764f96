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
#![allow(
    clippy::disallowed_methods,
    reason = "the executor reads the clock to start an operation's deadline"
)]

use std::time::{Duration, Instant};

use bson::Document;
use mongo_events::{ServerAddress, ServerType, TopologyType};
use mongo_sdam::{ReadMode, ReadPreference};

use super::Client;
use crate::conn::CommandParams;
use crate::error::{Error, NO_WRITES_PERFORMED, RETRYABLE_WRITE_ERROR, Result};
use crate::operation::{Envelope, OpKind, Operation, Step, envelope, is_ok};
use crate::topology::PooledConn;

/// Where an operation must run.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Route {
    /// On a server selected for it.
    Select,
    /// On this server (a cursor's getMore and killCursors).
    Server(ServerAddress),
}

/// What one operation carries from the public call to the socket. Built once per operation;
/// only the retry state changes between attempts.
#[derive(Clone, Debug)]
pub(crate) struct OperationContext {
    /// The operation id in command events and log messages.
    pub(crate) id: i64,
    /// When the operation must be done (`timeoutMS`); bounds server selection, check-out and
    /// each round trip.
    pub(crate) deadline: Option<Instant>,
    /// The read preference of a read (`None`: primary).
    pub(crate) read_preference: Option<ReadPreference>,
    /// Where it runs.
    pub(crate) route: Route,
    /// Retry state: the servers the next selection avoids (the one that just failed).
    pub(crate) deprioritized: Vec<ServerAddress>,
}

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
}

/// One attempt's result.
struct Attempted<T> {
    step: Step<T>,
    address: ServerAddress,
    conn: Option<PooledConn>,
}

impl Client {
    /// A context for a new operation: a fresh id and the deadline of `timeoutMS`.
    pub(crate) fn context(&self, route: Route) -> OperationContext {
        let deadline = self
            .inner
            .options
            .timeout
            .filter(|t| !t.is_zero())
            .and_then(|t| crate::conn::clock().checked_add(t));
        OperationContext {
            id: self.next_operation_id(),
            deadline,
            read_preference: None,
            route,
            deprioritized: Vec::new(),
        }
    }

    /// A context for a read: the client's read preference applies.
    pub(crate) fn read_context(&self) -> OperationContext {
        let mut ctx = self.context(Route::Select);
        ctx.read_preference = self.inner.read_preference.clone();
        ctx
    }

    /// A context bounded by `limit` besides `timeoutMS` (for best-effort commands at
    /// shutdown).
    pub(crate) fn bounded_context(&self, limit: Duration) -> OperationContext {
        let mut ctx = self.context(Route::Select);
        let bound = crate::conn::clock().checked_add(limit);
        ctx.deadline = match (ctx.deadline, bound) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        ctx
    }

    /// Whether the client lets writes be retried: retryWrites on and writes acknowledged.
    fn retry_writes_enabled(&self) -> bool {
        self.inner.retry_writes
            && self
                .inner
                .options
                .write_concern
                .as_ref()
                .is_none_or(|wc| wc.is_acknowledged())
    }

    /// Runs `op` to completion: selection, check-out, the command (and the next ones of a
    /// batched write), retries. With a `pinned` connection (a request, a load-balanced
    /// cursor) everything runs on it and nothing is retried elsewhere.
    pub(crate) async fn execute<O: Operation>(
        &self,
        op: &mut O,
        mut ctx: OperationContext,
        mut pinned: Option<&mut PooledConn>,
    ) -> Result<Executed<O::Output>> {
        let ctx = &mut ctx;
        let kind = op.kind();
        let retry_allowed = pinned.is_none()
            && ctx.route == Route::Select
            && op.is_retryable()
            && match kind {
                OpKind::Read => self.inner.retry_reads,
                OpKind::Write => self.retry_writes_enabled(),
                OpKind::Command => false,
            };
        let mut write = RetryableWrite {
            enabled: retry_allowed && kind == OpKind::Write,
            lsid: None,
            txn_number: None,
            network_error: false,
        };
        let result = loop {
            // Each batch is its own retryable write: its own transaction number.
            write.txn_number = None;
            let first = self
                .attempt(op, ctx, pinned.as_deref_mut(), kind, &mut write)
                .await;
            let outcome = match first {
                Err(failed) if retry_allowed && self.may_retry(kind, &failed) => {
                    let e = failed.error;
                    write.network_error |= e.is_network_error();
                    ctx.deprioritized = e.address().cloned().into_iter().collect();
                    match self.attempt(op, ctx, None, kind, &mut write).await {
                        Err(second) if second.error.has_label(NO_WRITES_PERFORMED) => Err(e),
                        Err(second) => Err(second.error),
                        Ok(done) => Ok(done),
                    }
                }
                Err(failed) => Err(failed.error),
                Ok(done) => Ok(done),
            };
            match outcome {
                Ok(Attempted {
                    step: Step::More, ..
                }) => {}
                Ok(Attempted {
                    step: Step::Done(output),
                    address,
                    conn,
                }) => {
                    break Ok(Executed {
                        output,
                        address: Some(address),
                        pinned: conn,
                    });
                }
                Err(e) => {
                    write.network_error |= e.is_network_error();
                    break op.handle_error(e).map(|output| Executed {
                        output,
                        address: None,
                        pinned: None,
                    });
                }
            }
        };
        if let Some(lsid) = write.lsid {
            self.inner.sessions.give_back(lsid, write.network_error);
        }
        result
    }

    /// Whether a failed first attempt of an operation the client lets retry may be retried:
    /// a read under the retryable reads rules; a write whose server supports retryable
    /// writes (or that failed before a server was known) under the retryable writes rules.
    fn may_retry(&self, kind: OpKind, failed: &Failed) -> bool {
        match kind {
            OpKind::Read => failed.error.is_retryable_read(),
            OpKind::Write => {
                let server_supports = match failed.server_supports_retry {
                    Some(s) => s,
                    // Failed during selection or check-out: judge by the deployment.
                    None => self.deployment_supports_retryable_writes(),
                };
                server_supports && failed.error.is_retryable_write()
            }
            OpKind::Command => false,
        }
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
        write_state: &mut RetryableWrite,
    ) -> std::result::Result<Attempted<O::Output>, Failed> {
        let topology = &self.inner.topology;
        let write = kind == OpKind::Write;
        let before_server = |error: Error| Failed {
            error,
            server_supports_retry: None,
        };
        // Reads use their read preference; primary needs none in the envelope.
        let read_preference = match kind {
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
                            selected.server
                        }),
                    Route::Server(address) => topology.server_at(address),
                }
                .map_err(|mut e| {
                    if write {
                        e.add_label(NO_WRITES_PERFORMED);
                    }
                    before_server(e)
                })?;
                match topology.checkout(server, ctx.deadline).await {
                    Ok(c) => owned.insert(c),
                    Err(mut e) => {
                        if write {
                            e.add_label(NO_WRITES_PERFORMED);
                            if e.is_network_error() || e.is_pool_cleared() {
                                e.add_label(RETRYABLE_WRITE_ERROR);
                            }
                        }
                        return Err(before_server(e));
                    }
                }
            }
        };
        // The retryable writes spec: a write is retryable when the selected server supports
        // sessions and is not a standalone (or is behind a load balancer).
        let desc = conn.description();
        let server_supports_retry = write
            && (desc.server_type == ServerType::LoadBalancer
                || (desc.server_type != ServerType::Standalone
                    && desc.logical_session_timeout_minutes.is_some()));
        let failed = |error: Error| Failed {
            error,
            server_supports_retry: Some(server_supports_retry),
        };
        if !self.inner.credentials.is_empty() {
            if let Err(e) = conn.check_auth(&self.inner.credentials).await {
                if e.is_network_error() {
                    topology.handle_conn_error(conn, &e);
                }
                return Err(failed(e));
            }
        }

        let session = if write_state.enabled && server_supports_retry {
            let sessions = &self.inner.sessions;
            let lsid = write_state.lsid.get_or_insert_with(|| sessions.take());
            let txn = *write_state
                .txn_number
                .get_or_insert_with(|| sessions.next_txn_number());
            Some((&*lsid, txn))
        } else {
            None
        };
        let mut command = op.build(conn.description()).map_err(failed)?;
        let env = Envelope {
            read_preference,
            write_concern: self
                .inner
                .write_concern
                .as_ref()
                .filter(|_| write && op.takes_write_concern()),
            read_concern_level: self
                .inner
                .options
                .read_concern_level
                .as_deref()
                .filter(|_| op.takes_read_concern()),
            session,
        };
        let topology_type = topology_type.unwrap_or_else(|| topology.topology_type());
        envelope(&mut command, kind, &env, conn.description(), topology_type);

        let result = if conn.is_interrupted() {
            Err(conn.interrupt())
        } else {
            // Race the round trip against an interrupting pool clear (CMAP's
            // interruptInUseConnections): `biased` polls the I/O first, so the watch costs
            // nothing unless the command has to wait on the network.
            let (c, interruption) = conn.split_for_io();
            let params = CommandParams::for_operation(
                command.sequence,
                command.acknowledged,
                ctx.id,
                ctx.deadline,
            );
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
                let step = op.handle_reply(reply, conn.description()).map_err(failed)?;
                let keep = match &step {
                    Step::Done(output) => topology.is_load_balanced() && op.pins_connection(output),
                    Step::More => false,
                };
                Ok(Attempted {
                    step,
                    address: conn.address().clone(),
                    conn: if keep { owned } else { None },
                })
            }
            Err(mut e) => {
                if e.is_network_error() || e.is_state_change() {
                    topology.handle_conn_error(conn, &e);
                }
                if write {
                    let old_server = conn.max_wire_version() < 9;
                    if e.is_network_error() || (old_server && e.has_retryable_code()) {
                        e.add_label(RETRYABLE_WRITE_ERROR);
                    }
                }
                Err(failed(e))
            }
        }
    }
}

/// The retry state of a write: the implicit session it runs in (taken once, only if its
/// server supports retryable writes) and the current batch's transaction number (kept for
/// its retry).
struct RetryableWrite {
    enabled: bool,
    lsid: Option<Document>,
    txn_number: Option<i64>,
    network_error: bool,
}

/// A failed attempt: its error, and whether the server it ran on supports retryable writes
/// (`None`: it failed before a server was known).
struct Failed {
    error: Error,
    server_supports_retry: Option<bool>,
}
