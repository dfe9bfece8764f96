//! A session's multi-document transaction (transactions spec), sans-I/O: the state machine
//! (none, starting, in progress, committed, committed with nothing sent, aborted), the
//! transaction's resolved options, its number, the mongos it is pinned to on a sharded
//! cluster and the `recoveryToken` of its replies, and what the commands in it carry
//! (`txnNumber`, `autocommit: false`, `startTransaction` and the read concern on the first).

use bson::{Bson, Document};
use mongo_events::{ServerAddress, ServerType, TopologyType};
use mongo_sdam::TopologyDescription;

use super::TransactionOptions;
use crate::error::{Error, Result};

/// Where a session's transaction stands (transactions spec).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransactionState {
    /// No transaction was started (or the session never used one).
    #[default]
    None,
    /// Started; no command has run in it yet.
    Starting,
    /// At least one command ran in it.
    InProgress,
    /// Committed (commitTransaction succeeded or was attempted).
    Committed,
    /// Committed with no command run in it: nothing was sent.
    CommittedEmpty,
    /// Aborted.
    Aborted,
}

/// The lowest wire version with transactions on a replica set (MongoDB 4.0).
const REPLICA_SET_TXN_WIRE_VERSION: i32 = 7;
/// The lowest wire version with transactions on a sharded cluster (MongoDB 4.2).
const SHARDED_TXN_WIRE_VERSION: i32 = 8;

/// Whether the deployment, as far as `desc` knows it, supports transactions (transactions
/// spec, startTransaction): not a standalone, sessions supported, and wire version 7 (4.0)
/// on a replica set member, 8 (4.2) on a mongos. Servers not yet known say nothing; a
/// deployment behind a load balancer is taken to support them.
///
/// # Errors
/// The deployment cannot run transactions: an incompatible-server error for a wire version
/// too low, a usage error for a standalone or a server without sessions.
pub(crate) fn check_deployment(desc: &TopologyDescription) -> Result<()> {
    if desc.topology_type() == TopologyType::LoadBalanced {
        return Ok(());
    }
    for sd in desc.servers() {
        let needed = match sd.server_type {
            ServerType::RsPrimary | ServerType::RsSecondary => REPLICA_SET_TXN_WIRE_VERSION,
            ServerType::Mongos => SHARDED_TXN_WIRE_VERSION,
            ServerType::Standalone => {
                return Err(Error::usage(format!(
                    "Transactions are not supported by this deployment: {} is a standalone \
                     server (transactions need a replica set or a sharded cluster)",
                    sd.address
                )));
            }
            _ => continue,
        };
        let wire = sd.max_wire_version.unwrap_or(0);
        if wire < needed {
            return Err(Error::new(crate::error::ErrorKind::IncompatibleServer(
                format!(
                    "Transactions are not supported by this deployment: {} reports wire version \
                 {wire}; transactions need wire version {needed} (MongoDB {})",
                    sd.address,
                    if needed == SHARDED_TXN_WIRE_VERSION {
                        "4.2 on a sharded cluster"
                    } else {
                        "4.0 on a replica set"
                    },
                ),
            )));
        }
        if sd.logical_session_timeout_minutes.is_none() {
            return Err(Error::usage(format!(
                "Transactions are not supported by this deployment: {} does not support \
                 sessions",
                sd.address
            )));
        }
    }
    Ok(())
}

/// The transaction state of a session.
#[derive(Debug, Default)]
pub(crate) struct Transaction {
    pub(crate) state: TransactionState,
    /// The options resolved at the start (transaction's, else the session's defaults, else
    /// the client's).
    pub(crate) options: TransactionOptions,
    /// The transaction number its commands carry.
    pub(crate) number: Option<i64>,
    /// The mongos it is pinned to (sharded clusters).
    pub(crate) pinned: Option<ServerAddress>,
    /// The latest `recoveryToken` a reply carried (sharded clusters).
    pub(crate) recovery_token: Option<Document>,
    /// The connection pinned to it (load-balanced mode).
    pub(crate) conn: Option<super::transaction::TxnConn>,
    /// The session ended with the transaction open: its abort runs in the background.
    pub(crate) closing: bool,
}

impl Transaction {
    /// Whether a transaction is open: commands in the session run in it.
    pub(crate) fn is_active(&self) -> bool {
        matches!(
            self.state,
            TransactionState::Starting | TransactionState::InProgress
        )
    }

    /// Starts a transaction numbered `number` with `options`.
    ///
    /// # Errors
    /// A transaction is already open; an unacknowledged write concern.
    pub(crate) fn start(&mut self, number: i64, options: TransactionOptions) -> Result<()> {
        if self.is_active() {
            return Err(Error::usage("Transaction already in progress"));
        }
        if options
            .write_concern
            .as_ref()
            .is_some_and(|wc| !wc.is_acknowledged())
        {
            return Err(Error::usage(
                "transactions do not support unacknowledged write concern",
            ));
        }
        self.unpin();
        *self = Transaction {
            state: TransactionState::Starting,
            options,
            number: Some(number),
            pinned: None,
            recovery_token: None,
            closing: false,
            conn: None,
        };
        Ok(())
    }

    /// Leaves a finished transaction when an operation runs outside of one (the state goes
    /// back to none and the pin is released).
    pub(crate) fn outside(&mut self) {
        if !self.is_active() {
            self.state = TransactionState::None;
            self.unpin();
        }
    }

    /// Releases the mongos and the connection the transaction is pinned to.
    pub(crate) fn unpin(&mut self) {
        self.pinned = None;
        self.conn = None;
    }

    /// Shapes a command that runs in the open transaction (after the envelope): its number,
    /// `autocommit: false`, and on the first one `startTransaction: true` and the
    /// transaction's read concern (`after_cluster_time` added for causal consistency); no
    /// other read concern or write concern.
    ///
    /// # Errors
    /// The operation was given its own write concern.
    pub(crate) fn shape(
        &self,
        body: &mut Document,
        explicit_write_concern: bool,
        after_cluster_time: Option<bson::Timestamp>,
    ) -> Result<()> {
        if explicit_write_concern {
            return Err(Error::invalid_argument(
                "Cannot set write concern after starting a transaction",
            ));
        }
        body.remove("writeConcern");
        body.remove("readConcern");
        if let Some(n) = self.number {
            body.insert("txnNumber", n);
        }
        if self.state == TransactionState::Starting {
            body.insert("startTransaction", true);
            let mut rc = Document::new();
            if let Some(level) = self.options.read_concern.as_ref() {
                rc.insert("level", level.level.clone());
            }
            if let Some(ts) = after_cluster_time {
                rc.insert("afterClusterTime", ts);
            }
            if !rc.is_empty() {
                body.insert("readConcern", rc);
            }
        }
        body.insert("autocommit", false);
        Ok(())
    }

    /// Learns from a reply in the transaction (or its commit / abort): the recovery token.
    pub(crate) fn observe(&mut self, reply: &Document) {
        if let Ok(token) = reply.get_document("recoveryToken") {
            self.recovery_token = Some(token.clone());
        }
    }

    /// The body of `commitTransaction` / `abortTransaction` (`retry`: a commit retried or
    /// repeated, whose write concern becomes `w: "majority"` with `wtimeout: 10000`).
    pub(crate) fn finish_command(&self, name: &str, retry: bool) -> Document {
        let mut body = Document::new();
        body.insert(name, 1);
        let mut wc = self
            .options
            .write_concern
            .as_ref()
            .and_then(crate::options::WriteConcern::to_document)
            .unwrap_or_default();
        if retry && name == "commitTransaction" {
            wc.insert("w", "majority");
            if !wc.contains_key("wtimeout") {
                wc.insert("wtimeout", 10_000);
            }
        }
        if !wc.is_empty() {
            body.insert("writeConcern", wc);
        }
        if name == "commitTransaction"
            && let Some(t) = self.options.max_commit_time
        {
            body.insert(
                "maxTimeMS",
                Bson::Int64(i64::try_from(t.as_millis()).unwrap_or(i64::MAX)),
            );
        }
        if let Some(token) = &self.recovery_token {
            body.insert("recoveryToken", token.clone());
        }
        if let Some(n) = self.number {
            body.insert("txnNumber", n);
        }
        body.insert("autocommit", false);
        body
    }
}
