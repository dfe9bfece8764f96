//! Sessions: retryable writes (the `txnNumber` rules, the session table that answers a retry
//! with the first attempt's reply, the `onPrimaryTransactionalWrite` fail point),
//! `killSessions` / `killAllSessions`, and what mongod adds to every error reply: the error
//! labels (`RetryableWriteError`, `TransientTransactionError`) and, for "not primary" errors on
//! a replica-set member, the node's `topologyVersion`.

use bson::{Bson, Document};

use super::Node;
use super::args::{name_of, ok};
use crate::error::{self, CmdResult, CommandError};
use crate::failpoint::TxnWriteFault;
use crate::store::RetryableWrite;
use crate::topology::Role;

/// Commands a `txnNumber` without `autocommit` makes a retryable write.
const RETRYABLE_WRITE_COMMANDS: &[&str] = &[
    "insert",
    "update",
    "delete",
    "findAndModify",
    "findandmodify",
    "bulkWrite",
];

const COMMIT_OR_ABORT: &[&str] = &["commitTransaction", "abortTransaction"];

/// The session fields of a command.
#[derive(Debug, Default)]
struct SessionInfo {
    lsid: Option<Vec<u8>>,
    txn_number: Option<i64>,
    autocommit: bool,
}

fn session_info(cmd: &Document) -> SessionInfo {
    SessionInfo {
        lsid: cmd.get_document("lsid").ok().and_then(|l| l.to_vec().ok()),
        txn_number: match cmd.get("txnNumber") {
            Some(Bson::Int64(n)) => Some(*n),
            Some(Bson::Int32(n)) => Some(i64::from(*n)),
            _ => None,
        },
        autocommit: cmd.contains_key("autocommit"),
    }
}

/// The session keys (encoded `{id: …}`) of an `endSessions` / `killSessions` list.
fn session_ids(ids: &[Bson]) -> Vec<Vec<u8>> {
    ids.iter()
        .filter_map(Bson::as_document)
        .filter_map(|d| d.get("id"))
        .filter_map(|id| bson::doc! { "id": id.clone() }.to_vec().ok())
        .collect()
}

fn code_of(v: Option<&Bson>) -> Option<i32> {
    match v? {
        Bson::Int32(c) => Some(*c),
        Bson::Int64(c) => i32::try_from(*c).ok(),
        Bson::Double(c) if c.fract() == 0.0 => format!("{c:.0}").parse().ok(),
        _ => None,
    }
}

impl Node {
    /// A command with a `txnNumber`: refused where mongod refuses it, answered from the session
    /// table when it is a retry, else run (through the `onPrimaryTransactionalWrite` fail point)
    /// and recorded. `None` when the command has no `txnNumber`. The flag asks to hang up.
    pub(super) fn session_write(
        &self,
        db: &str,
        cmd: &Document,
        conn: &mut super::ConnState,
    ) -> CmdResult<Option<(Document, bool)>> {
        let info = session_info(cmd);
        let Some(txn_number) = info.txn_number else {
            return Ok(None);
        };
        let name = name_of(cmd);
        let role = self.topology.role(self.member);
        if role == Role::Standalone {
            return Err(CommandError::new(
                error::codes::ILLEGAL_OPERATION,
                "IllegalOperation",
                "Transaction numbers are only allowed on a replica set member or mongos",
            ));
        }
        if self.opts.storage_engine.eq_ignore_ascii_case("mmapv1") {
            return Err(CommandError::new(
                error::codes::ILLEGAL_OPERATION,
                "IllegalOperation",
                "Transaction numbers are only allowed on storage engines that support \
                 document-level locking",
            ));
        }
        let Some(lsid) = info.lsid else {
            return Err(CommandError::new(
                error::codes::ILLEGAL_OPERATION,
                "IllegalOperation",
                "Transaction number requires a session ID to also be specified",
            ));
        };
        if info.autocommit {
            // node/txn.rs: a statement of a multi-document transaction.
            return self
                .transaction_command(db, cmd, conn, &lsid, txn_number)
                .map(|reply| Some((reply, false)));
        }
        if !RETRYABLE_WRITE_COMMANDS.contains(&name) {
            return Err(CommandError::new(
                50768,
                "NotARetryableWriteCommand",
                format!(
                    "txnNumber may only be provided for multi-document transactions and \
                     retryable write commands. autocommit:false was not provided, and {name} \
                     is not a retryable write command."
                ),
            ));
        }
        // A transaction number of the session's transactions counts too (txn.rs).
        self.store.txns.check_retryable_write(&lsid, txn_number)?;
        match self.store.retryable_write(&lsid, txn_number) {
            RetryableWrite::Executed(reply) => return Ok(Some((reply, false))),
            RetryableWrite::TooOld(latest) => {
                return Err(CommandError::new(
                    225,
                    "TransactionTooOld",
                    format!(
                        "Retryable write with txnNumber {txn_number} is prohibited on this \
                         session because a newer retryable write with txnNumber {latest} has \
                         already started on it."
                    ),
                ));
            }
            RetryableWrite::New => {}
        }
        let fault = if role == Role::Primary {
            self.fail_points.on_primary_transactional_write()
        } else {
            None
        };
        if let Some(TxnWriteFault {
            close,
            fail_code: Some(code),
        }) = fault
        {
            if close {
                return Ok(Some((Document::new(), true)));
            }
            return Err(CommandError::new(
                code,
                error::code_name(code),
                "Failing write before commit due to the onPrimaryTransactionalWrite failpoint; \
                 the write is not applied",
            ));
        }
        let reply = self.dispatch_outside_transaction(db, cmd, conn)?;
        if reply.get("ok").is_some_and(crate::query::truthy) {
            self.store
                .record_retryable_write(&lsid, txn_number, reply.clone());
        }
        Ok(Some((reply, fault.is_some_and(|f| f.close))))
    }

    /// `killSessions` / `killAllSessions`: kills the cursors (the testkit does not tie cursors
    /// to sessions, so all of them) and aborts the sessions' open transactions
    /// (`killSessions` names them by `id`; the others kill every session).
    pub(super) fn kill_sessions(&self, cmd: &Document) -> Document {
        self.kill_all_cursors();
        match cmd.get("killSessions") {
            Some(Bson::Array(ids)) => {
                let lsids = session_ids(ids);
                self.store.txns.abort_sessions(Some(&lsids));
            }
            _ => self.store.txns.abort_sessions(None),
        }
        ok(Document::new())
    }

    /// `endSessions`: the sessions' open transactions are aborted.
    pub(super) fn end_session_transactions(&self, ids: &[Bson]) {
        self.store.txns.abort_sessions(Some(&session_ids(ids)));
    }

    /// Adds to an error reply (or a reply with a writeConcernError) what mongod adds: the
    /// fail point's `errorLabels` when it set them (they replace the computed ones), else the
    /// labels mongod computes; and `topologyVersion` for "not primary" errors on a replica-set
    /// member.
    pub(super) fn finish_reply(
        &self,
        cmd: &Document,
        reply: &mut Document,
        labels_override: Option<Vec<String>>,
    ) {
        let failed = !reply.get("ok").is_some_and(crate::query::truthy);
        let code = if failed {
            code_of(reply.get("code"))
        } else {
            None
        };
        let wc_code = reply
            .get_document("writeConcernError")
            .ok()
            .and_then(|w| code_of(w.get("code")));
        if code.is_none() && wc_code.is_none() {
            return;
        }
        match labels_override {
            Some(labels) if labels.is_empty() => {
                reply.remove("errorLabels");
            }
            Some(labels) => {
                reply.insert("errorLabels", labels);
            }
            None => {
                let computed = self.error_labels(cmd, code, wc_code);
                if !computed.is_empty() {
                    let mut labels: Vec<Bson> = match reply.get("errorLabels") {
                        Some(Bson::Array(a)) => a.clone(),
                        _ => Vec::new(),
                    };
                    for l in computed {
                        if !labels.iter().any(|e| e.as_str() == Some(l)) {
                            labels.push(Bson::String(l.to_string()));
                        }
                    }
                    reply.insert("errorLabels", labels);
                }
            }
        }
        let not_primary =
            code.is_some_and(error::is_not_primary) || wc_code.is_some_and(error::is_not_primary);
        if not_primary && self.topology.rs().is_some() && !reply.contains_key("topologyVersion") {
            reply.insert("topologyVersion", self.topology_version());
        }
    }

    /// mongod's `ErrorLabelBuilder` (without change streams and `NoWritesPerformed`).
    fn error_labels(
        &self,
        cmd: &Document,
        code: Option<i32>,
        wc_code: Option<i32>,
    ) -> Vec<&'static str> {
        let info = session_info(cmd);
        let name = name_of(cmd);
        let commit_or_abort = COMMIT_OR_ABORT.contains(&name);
        if let Some(c) = code {
            if info.txn_number.is_some()
                && info.autocommit
                && error::is_transient_transaction_error(c, wc_code.is_some(), commit_or_abort)
            {
                return vec!["TransientTransactionError"];
            }
        }
        let retryable_write = info.txn_number.is_some() && !info.autocommit;
        let txn_end = info.txn_number.is_some() && info.autocommit && commit_or_abort;
        // mongos leaves RetryableWriteError to the shards.
        let mongos = self.topology.role(self.member) == Role::Mongos;
        if (retryable_write || txn_end)
            && !mongos
            && (code.is_some_and(error::is_retriable) || wc_code.is_some_and(error::is_retriable))
        {
            return vec!["RetryableWriteError"];
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn session_fields_are_read() {
        let info = session_info(&doc! {
            "insert": "c", "lsid": { "id": 1 }, "txnNumber": 5_i64, "autocommit": false,
        });
        assert!(info.lsid.is_some());
        assert_eq!(info.txn_number, Some(5));
        assert!(info.autocommit);
        assert_eq!(code_of(Some(&Bson::Double(91.0))), Some(91));
    }
}
