//! Exhaust cursors on a connection (OP_MSG spec): a getMore sent with `exhaustAllowed`
//! whose reply says `moreToCome` leaves the connection streaming; the replies that follow
//! are read without a request, each answering the one before, until one without the flag.
//! While streaming the connection takes no request, and one given up is closed (its state
//! stays in flight, which its pool never takes back).

use std::time::{Duration, Instant};

use bson::Document;
use mongo_events::ServerType;

use super::{CommandParams, Connection, Reply, State, clock, command_name, timeout_error};
use crate::error::{Error, Result};
use crate::monitoring::CommandInfo;
use crate::operation::{ConnectionDescription, is_ok};

/// Whether a getMore on a connection to this server may set `exhaustAllowed` (OP_MSG
/// spec): a server from 4.2 (wire version 8) on, a mongos from 7.1 (wire version 22,
/// exhaust cursors on sharded clusters), never a load balancer (a cursor there keeps its
/// pinned connection for its getMores and killCursors, which a stream would block).
pub(crate) fn supports_exhaust(desc: &ConnectionDescription) -> bool {
    match desc.server_type {
        ServerType::LoadBalancer => false,
        ServerType::Mongos => desc.max_wire_version >= 22,
        _ => desc.max_wire_version >= 8,
    }
}

impl CommandParams {
    /// A cursor command's settings: the batch key its reply may leave undecoded
    /// ([`lazy_batch`](Self::lazy_batch)), and whether it may set `exhaustAllowed` (an
    /// exhaust cursor's getMore outside a transaction; a connection whose reply then says
    /// `moreToCome` stays with the cursor, see `exhaust.rs`).
    pub(crate) fn set_cursor(&mut self, lazy_batch: Option<&'static str>, exhaust: bool) {
        self.lazy_batch = lazy_batch;
        self.exhaust_allowed = exhaust;
    }
}

/// The time limit of one read: when, whether it is the operation's deadline, and the
/// socketTimeoutMS in effect (for the error's message).
struct ReadLimit {
    at: Option<Instant>,
    by_deadline: bool,
    socket_timeout: Option<Duration>,
}

impl Connection {
    /// The time limit of one round trip (or one streamed read): the operation's deadline
    /// (`timeoutMS`), which replaces the deprecated socketTimeoutMS, else socketTimeoutMS
    /// from now.
    fn read_limit(&self, deadline: Option<Instant>) -> ReadLimit {
        let socket_timeout = self
            .options
            .socket_timeout
            .filter(|d| !d.is_zero() && deadline.is_none());
        let socket_deadline = socket_timeout.and_then(|d| clock().checked_add(d));
        // The earlier of the two limits; remember which one it was for the message.
        let (at, by_deadline) = match (socket_deadline, deadline) {
            (Some(s), Some(d)) if d < s => (Some(d), true),
            (Some(s), _) => (Some(s), false),
            (None, Some(d)) => (Some(d), true),
            (None, None) => (None, false),
        };
        ReadLimit {
            at,
            by_deadline,
            socket_timeout,
        }
    }

    /// Whether the last reply had `moreToCome` (an exhaust cursor's getMore): the server
    /// streams the next one, which [`read_streamed`](Self::read_streamed) reads; the
    /// connection takes no other request meanwhile and is closed if given up.
    pub(crate) fn is_streaming(&self) -> bool {
        self.more_to_come && self.state == State::InFlight
    }

    /// Reads the next reply the server streams after one with `moreToCome` (an exhaust
    /// cursor's next batch), within `params.deadline` or socketTimeoutMS. Monitored as the
    /// command monitoring rules for exhaust cursors say: a started event for `shown` (the
    /// getMore the reply answers) before the read, then its succeeded or failed event.
    ///
    /// # Errors
    /// A connection that is not streaming (misuse), network errors and invalid replies
    /// (both close the connection), a reply that answers another message.
    pub(crate) async fn read_streamed(
        &mut self,
        db: &str,
        shown: &Document,
        params: &CommandParams,
    ) -> Result<Document> {
        if !self.is_streaming() {
            return Err(Error::invalid_argument(
                "no streamed reply is pending on this connection",
            ));
        }
        let name = command_name(shown);
        let monitored = params.monitored && self.monitor.wants_anything();
        self.raw_batch = None;
        self.lazy_batch = if monitored { None } else { params.lazy_batch };
        let expected = self.last_reply_id;
        // The "request" of a streamed reply is the reply before it.
        if monitored {
            let mut shown = shown.clone();
            shown.insert("$db", db);
            self.emit_started(&name, db, expected, params, false, &shown);
        }
        let started = clock();
        let limit = self.read_limit(params.deadline);
        let fut = async {
            let reply = self.receive_message().await?;
            match reply {
                Reply::Msg {
                    response_to, body, ..
                } if response_to == expected => Ok(body),
                Reply::Msg { response_to, .. } => {
                    self.state = State::Broken;
                    Err(Error::invalid_reply(format!(
                        "streamed reply to message {response_to}, expected {expected}"
                    )))
                }
                Reply::Legacy { .. } => {
                    self.state = State::Broken;
                    Err(Error::invalid_reply("OP_REPLY in an exhaust stream"))
                }
            }
        };
        let result = match limit.at {
            None => fut.await,
            Some(at) => match tokio::time::timeout_at(at.into(), fut).await {
                Ok(r) => r,
                Err(_) => {
                    self.state = State::Broken;
                    Err(timeout_error(limit.socket_timeout, limit.by_deadline)
                        .with_address(&self.address))
                }
            },
        };
        self.lazy_batch = None;
        if monitored {
            self.in_flight = None;
            let info = CommandInfo {
                name: &name,
                db,
                request_id: expected,
                operation_id: params.operation_id,
                connection: &self.info,
                service_id: self.hello.service_id,
                sensitive: false,
            };
            let duration = clock().saturating_duration_since(started);
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
}
