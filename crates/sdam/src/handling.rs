//! SDAM error handling for application operations: classify the error, drop it when stale,
//! and decide what the client does (mark Unknown, clear the pool, check the server now).

use bson::{Bson, Document};
use mongo_events::{Generation, ServerAddress, ServiceId, TopologyType};

use crate::description::{ServerDescription, TopologyVersion, as_i64, reply_ok};
use crate::topology::{Topology, TopologyUpdate};

/// "Node is recovering" codes.
pub const RECOVERING_CODES: [i32; 5] = [11600, 11602, 13436, 189, 91];
/// "Not writable primary" codes.
pub const NOT_WRITABLE_PRIMARY_CODES: [i32; 3] = [10107, 13435, 10058];
/// "Node is shutting down" codes (a subset of the recovering codes).
pub const SHUTDOWN_CODES: [i32; 2] = [11600, 91];

/// Whether a code / message pair is a "node is recovering" error. The code decides when there
/// is one; the message is read only when there is none.
pub fn is_recovering(code: Option<i32>, message: &str) -> bool {
    match code {
        Some(c) => RECOVERING_CODES.contains(&c),
        None => {
            message.contains("not master or secondary") || message.contains("node is recovering")
        }
    }
}

/// Whether a code / message pair is a "not writable primary" error.
pub fn is_not_writable_primary(code: Option<i32>, message: &str) -> bool {
    match code {
        Some(c) => NOT_WRITABLE_PRIMARY_CODES.contains(&c),
        None => !is_recovering(None, message) && message.contains("not master"),
    }
}

/// Whether a code / message pair is a state change error.
pub fn is_state_change(code: Option<i32>, message: &str) -> bool {
    is_recovering(code, message) || is_not_writable_primary(code, message)
}

/// Whether a code is a "node is shutting down" code.
pub fn is_shutdown(code: Option<i32>) -> bool {
    code.is_some_and(|c| SHUTDOWN_CODES.contains(&c))
}

/// What went wrong.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum AppErrorKind {
    /// A network error other than a timeout.
    Network,
    /// A network timeout.
    Timeout,
    /// A command error (`ok: 0`) or a write concern error; write errors are not given here.
    Command {
        /// The error code, if the reply had one.
        code: Option<i32>,
        /// The error message.
        message: String,
        /// The reply's topologyVersion.
        topology_version: Option<TopologyVersion>,
    },
    /// Any other error while opening a connection (an authentication failure, a handshake
    /// the driver refused): judged only when the handshake had not completed, as the spec's
    /// "MongoDB Handshake errors".
    Other {
        /// What went wrong.
        message: String,
    },
}

/// An error an application operation hit on a server, with what SDAM needs to judge it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ApplicationError {
    /// The server.
    pub address: ServerAddress,
    /// What went wrong.
    pub kind: AppErrorKind,
    /// The generation of the connection the error happened on.
    pub generation: Generation,
    /// Whether the connection had finished its handshake (hello and authentication).
    pub completed_handshake: bool,
    /// Whether the pool labelled the error `SystemOverloadedError` (errors during connection
    /// establishment or the hello; backpressure), which keeps SDAM from acting.
    pub system_overloaded: bool,
    /// The connection's service id, behind a load balancer.
    pub service_id: Option<ServiceId>,
    /// The connection's maxWireVersion.
    pub max_wire_version: Option<i32>,
}

impl ApplicationError {
    /// An error of `kind` on an established connection of `generation`.
    pub fn new(address: ServerAddress, kind: AppErrorKind, generation: Generation) -> Self {
        ApplicationError {
            address,
            kind,
            generation,
            completed_handshake: true,
            system_overloaded: false,
            service_id: None,
            max_wire_version: None,
        }
    }

    /// Reads the SDAM-relevant error out of a command reply: the top-level error when `ok` is
    /// not 1, else a `writeConcernError`; `None` when the reply reports neither (write errors
    /// are not SDAM's business).
    pub fn from_reply(
        address: ServerAddress,
        reply: &Document,
        generation: Generation,
    ) -> Option<Self> {
        let topology_version = reply
            .get("topologyVersion")
            .and_then(TopologyVersion::from_bson);
        let source = if !reply_ok(reply) {
            reply
        } else {
            match reply.get("writeConcernError") {
                Some(Bson::Document(wce)) => wce,
                _ => return None,
            }
        };
        let code = source
            .get("code")
            .and_then(as_i64)
            .and_then(|c| i32::try_from(c).ok());
        let message = match source.get("errmsg").or_else(|| source.get("$err")) {
            Some(Bson::String(s)) => s.clone(),
            _ => String::new(),
        };
        Some(ApplicationError::new(
            address,
            AppErrorKind::Command {
                code,
                message,
                topology_version,
            },
            generation,
        ))
    }

    fn describe(&self) -> String {
        match &self.kind {
            AppErrorKind::Network => "network error during an application operation".to_string(),
            AppErrorKind::Timeout => "network timeout during an application operation".to_string(),
            AppErrorKind::Command { code, message, .. } => match code {
                Some(c) => format!("command error {c}: {message}"),
                None => format!("command error: {message}"),
            },
            AppErrorKind::Other { message } => {
                format!("error while opening a connection: {message}")
            }
        }
    }
}

/// How to clear a pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolClear {
    /// Only this service's connections (load-balanced mode); `None` clears the whole pool.
    pub service_id: Option<ServiceId>,
    /// Also interrupt connections in use (after a monitor's network timeout).
    pub interrupt_in_use: bool,
}

/// What the client must do about an application error. Marking Unknown has already been
/// applied to the topology when this is returned; the client clears the pool (while still
/// holding the topology lock), requests the check, and cancels the monitor's check as told.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct ErrorDecision {
    /// The error was stale (older connection generation, or not newer than the server's
    /// topologyVersion) and was ignored.
    pub stale: bool,
    /// The server was marked Unknown.
    pub marked_unknown: bool,
    /// Clear the server's pool this way.
    pub clear_pool: Option<PoolClear>,
    /// Ask the server's monitor for an immediate check.
    pub request_immediate_check: bool,
    /// Cancel the monitor's in-progress check and close its connection.
    pub cancel_monitor_check: bool,
    /// What marking Unknown did to the topology.
    pub update: TopologyUpdate,
}

impl Topology {
    /// The spec's `handleError`: judges `error` against the server's current description and
    /// its pool's current generation (`pool_generation`; for load-balanced mode the generation
    /// of the error's service), marks the server Unknown when the spec says so, and returns
    /// what else the client must do. Never fails.
    pub fn handle_application_error(
        &mut self,
        error: &ApplicationError,
        pool_generation: Generation,
    ) -> ErrorDecision {
        let mut decision = ErrorDecision::default();
        let Some(current) = self.description().server(&error.address) else {
            decision.stale = true;
            return decision;
        };
        if error.generation < pool_generation {
            decision.stale = true;
            return decision;
        }
        let load_balanced = self.description().topology_type() == TopologyType::LoadBalanced;
        match &error.kind {
            AppErrorKind::Command {
                code,
                message,
                topology_version,
            } if is_state_change(*code, message) => {
                if TopologyVersion::compare(
                    current.topology_version.as_ref(),
                    topology_version.as_ref(),
                )
                .is_ge()
                {
                    decision.stale = true;
                    return decision;
                }
                if !load_balanced {
                    let mut unknown = ServerDescription::unknown_with_error(
                        error.address.clone(),
                        error.describe(),
                    );
                    unknown.topology_version = *topology_version;
                    decision.update = self.apply(unknown);
                    decision.marked_unknown = !decision.update.ignored;
                }
                if is_shutdown(*code) {
                    decision.clear_pool = Some(PoolClear {
                        service_id: if load_balanced {
                            error.service_id
                        } else {
                            None
                        },
                        interrupt_in_use: false,
                    });
                }
                decision.request_immediate_check = true;
            }
            kind => {
                let network = matches!(kind, AppErrorKind::Network | AppErrorKind::Timeout);
                if !network && error.completed_handshake {
                    // An ordinary command error (or another error after the handshake):
                    // nothing for SDAM to do.
                    return decision;
                }
                if error.system_overloaded {
                    return decision;
                }
                if matches!(kind, AppErrorKind::Timeout) && error.completed_handshake {
                    // A timeout may be a slow operation, not an unavailable server.
                    return decision;
                }
                if load_balanced {
                    if let Some(service_id) = error.service_id {
                        decision.clear_pool = Some(PoolClear {
                            service_id: Some(service_id),
                            interrupt_in_use: false,
                        });
                    }
                } else {
                    let unknown = ServerDescription::unknown_with_error(
                        error.address.clone(),
                        error.describe(),
                    );
                    decision.update = self.apply(unknown);
                    decision.marked_unknown = !decision.update.ignored;
                    decision.clear_pool = Some(PoolClear {
                        service_id: None,
                        interrupt_in_use: false,
                    });
                    decision.cancel_monitor_check = true;
                }
            }
        }
        decision
    }
}

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "tests drive the cores from an arbitrary starting instant and wait on real time"
)]
mod tests {
    use super::*;
    use crate::topology::TopologyConfig;
    use bson::doc;
    use std::time::Instant;

    fn a() -> ServerAddress {
        ServerAddress::parse("a:27017").unwrap()
    }

    fn primary_topology() -> Topology {
        let mut config = TopologyConfig::new(vec![a()]);
        config.set_name = Some("rs".into());
        let mut t = Topology::new(&config).unwrap();
        let reply = doc! {"ok": 1, "isWritablePrimary": true, "setName": "rs", "hosts": ["a:27017"],
        "maxWireVersion": 21, "topologyVersion": {"processId": bson::oid::ObjectId::from_bytes([1; 12]), "counter": 5_i64}};
        t.apply(ServerDescription::from_hello(
            a(),
            &reply,
            None,
            Instant::now(),
        ));
        t
    }

    #[test]
    fn classification_prefers_codes_over_messages() {
        assert!(is_recovering(Some(11602), "whatever"));
        assert!(!is_state_change(Some(1), "not master"));
        assert!(is_not_writable_primary(None, "not master"));
        assert!(!is_not_writable_primary(None, "not master or secondary"));
        assert!(is_recovering(None, "node is recovering"));
        assert!(is_shutdown(Some(91)) && !is_shutdown(Some(189)) && !is_shutdown(None));
    }

    #[test]
    fn shutdown_error_marks_unknown_and_clears() {
        let mut t = primary_topology();
        let reply = doc! {"ok": 0, "code": 91, "errmsg": "shutting down"};
        let err = ApplicationError::from_reply(a(), &reply, Generation(0)).unwrap();
        let d = t.handle_application_error(&err, Generation(0));
        assert!(d.marked_unknown && d.request_immediate_check);
        assert_eq!(
            d.clear_pool,
            Some(PoolClear {
                service_id: None,
                interrupt_in_use: false
            })
        );
        assert_eq!(
            t.description().topology_type(),
            TopologyType::ReplicaSetNoPrimary
        );
    }

    #[test]
    fn stale_generation_and_topology_version_are_ignored() {
        let mut t = primary_topology();
        let err = ApplicationError::new(a(), AppErrorKind::Network, Generation(0));
        let d = t.handle_application_error(&err, Generation(1));
        assert!(d.stale && !d.marked_unknown);
        let reply = doc! {"ok": 0, "code": 10107, "errmsg": "x",
        "topologyVersion": {"processId": bson::oid::ObjectId::from_bytes([1; 12]), "counter": 5_i64}};
        let err = ApplicationError::from_reply(a(), &reply, Generation(0)).unwrap();
        assert!(t.handle_application_error(&err, Generation(0)).stale);
        assert_eq!(
            t.description().topology_type(),
            TopologyType::ReplicaSetWithPrimary
        );
    }

    #[test]
    fn handshake_errors_mark_unknown_and_clear_unless_overloaded() {
        let auth_failed = AppErrorKind::Other {
            message: "authentication failed".into(),
        };
        let mut t = primary_topology();
        let mut err = ApplicationError::new(a(), auth_failed.clone(), Generation(0));
        assert_eq!(
            t.handle_application_error(&err, Generation(0)),
            ErrorDecision::default(),
            "after the handshake, not SDAM's business"
        );
        err.completed_handshake = false;
        err.system_overloaded = true;
        assert_eq!(
            t.handle_application_error(&err, Generation(0)),
            ErrorDecision::default()
        );
        err.system_overloaded = false;
        let d = t.handle_application_error(&err, Generation(0));
        assert!(d.marked_unknown && !d.request_immediate_check);
        assert_eq!(
            d.clear_pool,
            Some(PoolClear {
                service_id: None,
                interrupt_in_use: false
            })
        );
        // A network timeout during authentication too.
        let mut t = primary_topology();
        let mut err = ApplicationError::new(a(), AppErrorKind::Timeout, Generation(0));
        err.completed_handshake = false;
        let d = t.handle_application_error(&err, Generation(0));
        assert!(d.marked_unknown && d.clear_pool.is_some());
    }

    #[test]
    fn timeouts_after_handshake_and_write_errors_are_ignored() {
        let mut t = primary_topology();
        let err = ApplicationError::new(a(), AppErrorKind::Timeout, Generation(0));
        assert_eq!(
            t.handle_application_error(&err, Generation(0)),
            ErrorDecision::default()
        );
        let reply = doc! {"ok": 1, "writeErrors": [{"code": 10107, "errmsg": "not master"}]};
        assert!(ApplicationError::from_reply(a(), &reply, Generation(0)).is_none());
        let reply = doc! {"ok": 1, "writeConcernError": {"code": 11600, "errmsg": "x"}};
        let err = ApplicationError::from_reply(a(), &reply, Generation(0)).unwrap();
        assert!(
            t.handle_application_error(&err, Generation(0))
                .clear_pool
                .is_some()
        );
    }
}
