//! Multi-document transactions through a mongos: the router's part of mongod's
//! `TransactionRouter`. Each router keeps, per session, the transaction number it saw last,
//! whether it sent the transaction a statement (the shard is then a participant) and whether
//! one wrote (the shard is then the recovery shard). It refuses what a router refuses (an
//! older number, a second start, continuing a transaction it never saw), answers a commit or
//! abort of a transaction that reached no shard, recovers a commit it never saw from the
//! client's `recoveryToken` (the shard's decision, aborting an undecided transaction), and
//! adds the `recoveryToken` to the replies of the transaction's commands.
//!
//! The routers of a deployment share one store, which stands for the single shard; the
//! participant side is `txn.rs` (node and store).

use bson::{Document, doc};

use super::args::{name_of, ok};
use super::{ConnState, Node};
use crate::error::{CmdResult, CommandError};
use crate::txn::{RouterTxn, TxnState, lsid_text, no_such_transaction};

/// The name of the one shard behind the testkit's routers (in recovery tokens).
pub(crate) const SHARD_NAME: &str = "shard0";

/// What a command asks of the router (`TransactionRouter::TransactionActions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Start,
    Continue,
    Commit,
}

impl Node {
    /// A statement, commit or abort of a transaction arriving at a mongos.
    pub(super) fn routed_transaction_command(
        &self,
        db: &str,
        cmd: &Document,
        conn: &mut ConnState,
        lsid: &[u8],
        number: i64,
        start: bool,
    ) -> CmdResult<Document> {
        let name = name_of(cmd);
        let router = *self.process_id.lock();
        let action = match (name, start) {
            ("commitTransaction", _) => Action::Commit,
            (_, true) => Action::Start,
            (_, false) => Action::Continue,
        };
        let txns = &self.store.txns;
        let state = txns.with_router(router, lsid, |entry| {
            begin_or_continue(entry, lsid, number, action)
        })?;
        let mut reply = match name {
            "commitTransaction" if state.recovering => self.recover_commit(cmd, lsid, number)?,
            "commitTransaction" if !state.participant => ok(Document::new()),
            "abortTransaction" if !state.participant => {
                return Err(no_such_transaction(
                    "no known command has been sent by this router for this transaction",
                ));
            }
            "commitTransaction" | "abortTransaction" => {
                self.participant_command(db, cmd, conn, lsid, number, false, true)?
            }
            _ => {
                // The first statement that reaches the shard starts the transaction there.
                let first = !state.participant;
                txns.with_router(router, lsid, |entry| {
                    if let Some(e) = entry {
                        e.participant = true;
                    }
                });
                let reply = self.participant_command(db, cmd, conn, lsid, number, first, true)?;
                let wrote = matches!(
                    name,
                    "insert"
                        | "update"
                        | "delete"
                        | "findAndModify"
                        | "findandmodify"
                        | "create"
                        | "createIndexes"
                        | "bulkWrite"
                );
                if wrote {
                    txns.with_router(router, lsid, |entry| {
                        if let Some(e) = entry {
                            e.wrote = true;
                        }
                    });
                }
                reply
            }
        };
        if name == "commitTransaction" || name == "abortTransaction" {
            self.txn_write_concern(cmd, &mut reply)?;
        }
        let wrote = txns.with_router(router, lsid, |e| e.as_ref().is_some_and(|e| e.wrote));
        let token = if wrote {
            doc! { "recoveryShardId": SHARD_NAME }
        } else {
            Document::new()
        };
        reply.insert("recoveryToken", token);
        Ok(reply)
    }

    /// A commit this router never saw the transaction of: the decision comes from the
    /// recovery shard named by the token; an undecided transaction is aborted there.
    fn recover_commit(&self, cmd: &Document, lsid: &[u8], number: i64) -> CmdResult<Document> {
        let Ok(token) = cmd.get_document("recoveryToken") else {
            return Err(CommandError::new(
                50940,
                "",
                "Cannot recover the transaction decision without a recoveryToken",
            ));
        };
        if token.get_str("recoveryShardId").is_err() {
            return Err(no_such_transaction(
                "Recovery token is empty, meaning the transaction only performed reads and can \
                 be safely retried",
            ));
        }
        match self.store.txns.state(lsid) {
            Some((n, TxnState::Committed)) if n == number => Ok(ok(Document::new())),
            _ => {
                self.store.txns.abort(lsid, number);
                Err(no_such_transaction(format!(
                    "Transaction {number} has been aborted."
                )))
            }
        }
    }
}

/// `TransactionRouter::beginOrContinueTxn`: the router's checks and state change.
fn begin_or_continue(
    entry: &mut Option<RouterTxn>,
    lsid: &[u8],
    number: i64,
    action: Action,
) -> CmdResult<RouterTxn> {
    let current = entry.as_ref().map_or(-1, |e| e.number);
    if number < current {
        return Err(CommandError::new(
            225,
            "TransactionTooOld",
            format!(
                "txnNumber {number} is less than last txnNumber {current} seen in session {}",
                lsid_text(lsid)
            ),
        ));
    }
    if number == current {
        if action == Action::Start {
            return Err(CommandError::new(
                117,
                "ConflictingOperationInProgress",
                format!(
                    "txnNumber {number} txnRetryCounter 0 for session {} already started",
                    lsid_text(lsid)
                ),
            ));
        }
    } else {
        match action {
            Action::Start => {
                *entry = Some(RouterTxn {
                    number,
                    ..RouterTxn::default()
                });
            }
            Action::Continue => {
                return Err(no_such_transaction(format!(
                    "cannot continue txnId {current} for session {} with txnRetryCounter 0",
                    lsid_text(lsid)
                )));
            }
            Action::Commit => {
                *entry = Some(RouterTxn {
                    number,
                    recovering: true,
                    ..RouterTxn::default()
                });
            }
        }
    }
    Ok(entry.clone().unwrap_or_default())
}
