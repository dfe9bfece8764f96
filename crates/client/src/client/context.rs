//! How an operation's context is made (`Client::context`, `read_context`,
//! `bounded_context`: its id, its `timeoutMS` deadline, its read preference, its session —
//! the explicit session an action bound, else an implicit one), the write and read concern a
//! handle's operations carry, and the server-session pool's timeout and give-back; and what
//! a context is (`OperationContext`, with its `Route` and `SessionUse`).
#![allow(
    clippy::disallowed_methods,
    reason = "an operation's deadline starts from the clock"
)]

use std::time::{Duration, Instant};

use bson::Document;

use super::Client;
use super::client_session::SharedSession;
use super::session::ServerSession;
use mongo_events::ServerAddress;
use mongo_sdam::ReadPreference;

/// Where an operation must run.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Route {
    /// On a server selected for it.
    Select,
    /// On this server (a cursor's getMore and killCursors).
    Server(ServerAddress),
    /// On the mongos a transaction is pinned to, waiting while it is Unknown as server
    /// selection waits (transactions spec).
    Pinned(ServerAddress),
}

/// The session an operation's commands carry (sessions spec).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum SessionUse {
    /// An explicit session (`ClientSession::bind`, or a cursor opened in one): its server
    /// session (taken at its first use), cluster time, read concern rules and transaction
    /// numbers; marked dirty by a network error; never given back by the operation.
    Explicit(SharedSession),
    /// An implicit session: taken from the client's pool once a connection to a server that
    /// supports sessions is checked out, for an acknowledged command; given back when the
    /// operation ends, or handed to the output that keeps it (an open cursor).
    Implicit,
    /// A cursor's session (`None`: the cursor has none): its getMores and killCursors carry
    /// it; the cursor gives it back.
    Cursor(Option<Document>),
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
    /// The session it runs in.
    pub(crate) session: SessionUse,
    /// The deadline is `timeoutMS`'s (client-side operation timeout): retries that follow no
    /// overload error are bounded by it alone, not counted.
    pub(crate) csot: bool,
    /// `timeoutMS` is set for it (even to zero): the deprecated timeout options
    /// (`maxTimeMS`, `maxCommitTimeMS`, `wTimeoutMS`, `socketTimeoutMS`,
    /// `waitQueueTimeoutMS`) are ignored.
    pub(crate) timeout_set: bool,
    /// Retry state: the servers the next selection avoids (those that failed attempts of the
    /// current command, when the retry policy deprioritizes them).
    pub(crate) deprioritized: Vec<ServerAddress>,
    /// The operation is a transaction's `commitTransaction` / `abortTransaction`.
    pub(crate) finishes_transaction: bool,
}

impl Client {
    /// The `timeoutMS` of this view's operations (client-side operation timeouts): the
    /// handle's (an operation's own, a collection's, a database's), else the client's.
    /// `Some(ZERO)`: set, no limit.
    pub(crate) fn timeout(&self) -> Option<Duration> {
        self.handle
            .as_ref()
            .and_then(|v| v.options.timeout)
            .or(self.inner.options.timeout)
    }

    /// A context for a new operation: a fresh id and the deadline of `timeoutMS` — inside a
    /// `withTransaction` with a timeout, the callback's deadline.
    pub(crate) fn context(&self, route: Route) -> OperationContext {
        let in_callback = self
            .bound_session
            .as_ref()
            .and_then(|s| s.lock().callback_deadline);
        let fixed = self.handle.as_ref().and_then(|v| v.deadline);
        let (deadline, timeout_set) = match in_callback.or(fixed) {
            Some(deadline) => (deadline, true),
            None => {
                let timeout = self.timeout();
                (deadline_of(timeout), timeout.is_some())
            }
        };
        OperationContext {
            id: self.next_operation_id(),
            deadline,
            read_preference: None,
            route,
            session: match &self.bound_session {
                Some(shared) => SessionUse::Explicit(shared.clone()),
                None => SessionUse::Implicit,
            },
            csot: deadline.is_some(),
            timeout_set,
            deprioritized: Vec::new(),
            finishes_transaction: false,
        }
    }

    /// This view with one deadline, from now, for all its operations (when it has a
    /// `timeoutMS`): the parts of one public operation share it.
    pub(crate) fn with_fixed_deadline(&self) -> Client {
        let Some(timeout) = self.timeout() else {
            return self.clone();
        };
        let options = self
            .handle
            .as_ref()
            .map(|v| v.options.clone())
            .unwrap_or_default();
        let mut view = super::handle::View::new(options);
        view.deadline = Some(deadline_of(Some(timeout)));
        Client {
            inner: self.inner.clone(),
            handle: Some(std::sync::Arc::new(view)),
            bound_session: self.bound_session.clone(),
        }
    }

    /// A context for a session's own command (commit, abort, endSessions): the
    /// `withTransaction` deadline while one runs, else `defaultTimeoutMS`, else the client's
    /// `timeoutMS`.
    pub(crate) fn session_context(&self, route: Route, shared: &SharedSession) -> OperationContext {
        let mut ctx = self.context(route);
        let (in_callback, default) = {
            let core = shared.lock();
            (core.callback_deadline, core.default_timeout)
        };
        match (in_callback, default) {
            (Some(deadline), _) => {
                ctx.deadline = deadline;
                ctx.timeout_set = true;
            }
            (None, Some(t)) => {
                ctx.deadline = deadline_of(Some(t));
                ctx.timeout_set = true;
            }
            (None, None) => {}
        }
        ctx.csot = ctx.deadline.is_some();
        ctx
    }

    /// A context for a read: the client's read preference applies.
    pub(crate) fn read_context(&self) -> OperationContext {
        let mut ctx = self.context(Route::Select);
        ctx.read_preference = self
            .handle
            .as_ref()
            .and_then(|v| v.options.read_preference.clone())
            .or_else(|| self.inner.read_preference.clone());
        ctx
    }

    /// The `writeConcern` document of this view: the handle's, else the client's.
    pub(crate) fn write_concern_document(&self) -> Option<&Document> {
        match &self.handle {
            Some(v) if v.options.write_concern.is_some() => v.write_concern_document.as_ref(),
            _ => self.inner.write_concern.as_ref(),
        }
    }

    /// The read concern level of this view: the handle's, else the client's.
    pub(crate) fn read_concern_level(&self) -> Option<&str> {
        match self
            .handle
            .as_ref()
            .and_then(|v| v.options.read_concern.as_ref())
        {
            Some(rc) => Some(&rc.level),
            None => self.inner.options.read_concern_level.as_deref(),
        }
    }

    /// Whether this view's writes are acknowledged (`w` is not 0).
    pub(crate) fn acknowledged(&self) -> bool {
        match self
            .handle
            .as_ref()
            .and_then(|v| v.options.write_concern.as_ref())
        {
            Some(wc) => wc.is_acknowledged(),
            None => self
                .inner
                .options
                .write_concern
                .as_ref()
                .is_none_or(|wc| wc.is_acknowledged()),
        }
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

    /// How long the deployment keeps an idle server session (its
    /// logicalSessionTimeoutMinutes); `None` in load-balanced mode, where the pool does not
    /// judge expiry, or while unknown.
    pub(crate) fn session_timeout(&self) -> Option<Duration> {
        let topology = &self.inner.topology;
        if topology.is_load_balanced() {
            return None;
        }
        topology
            .with_description(|d| d.logical_session_timeout_minutes())
            .and_then(|m| u64::try_from(m).ok())
            .map(|m| Duration::from_secs(m.saturating_mul(60)))
    }

    /// Gives a session back to the client's pool.
    pub(crate) fn release_session(&self, session: ServerSession) {
        let now = crate::conn::clock();
        self.inner
            .sessions
            .give_back(session, now, self.session_timeout());
    }
}

/// The deadline `timeout` from now (`None`: unset or zero, no limit).
pub(crate) fn deadline_of(timeout: Option<Duration>) -> Option<Instant> {
    timeout
        .filter(|t| !t.is_zero())
        .and_then(|t| crate::conn::clock().checked_add(t))
}
