//! Multi-document transactions, the command side of a replica-set primary (and of the shard a
//! mongos routes to): the checks mongod makes on a command carrying `autocommit: false`
//! (which commands, which databases, `startTransaction`, read and write concerns, primary
//! only), then `beginOrContinue` on the store's transaction table (`txn.rs`), the command run
//! in the transaction's view, and what follows: a write recorded (or a WriteConflict), a
//! failed statement aborting the transaction. `commitTransaction` and `abortTransaction` end
//! it; commit honours its write concern (`w` beyond the members is UnsatisfiableWriteConcern,
//! an unknown mode UnknownReplWriteConcern, as write-concern errors).

use std::time::Duration;

use bson::{Bson, Document, doc};

use super::args::{name_of, ok};
use super::{ConnState, Node};
use crate::error::{CmdResult, CommandError, codes};
use crate::topology::Role;
use crate::txn::{self, Begun};

/// Commands that write: their effects in a transaction's view are recorded after they run.
const TXN_WRITE_COMMANDS: &[&str] = &[
    "insert",
    "update",
    "delete",
    "findAndModify",
    "findandmodify",
    "create",
    "createIndexes",
    "bulkWrite",
];

fn invalid_options(msg: impl Into<String>) -> CommandError {
    CommandError::new(codes::INVALID_OPTIONS, "InvalidOptions", msg)
}

/// `startTransaction`: absent (continue) or `true` (start); anything else is refused.
fn start_flag(cmd: &Document) -> CmdResult<bool> {
    match cmd.get("startTransaction") {
        None => Ok(false),
        Some(Bson::Boolean(true)) => Ok(true),
        Some(Bson::Boolean(false)) => Err(invalid_options(
            "Specifying startTransaction=false is not allowed.",
        )),
        Some(_) => Err(CommandError::type_mismatch(
            "BSON field 'startTransaction' is the wrong type, expected type 'bool'",
        )),
    }
}

impl Node {
    /// A command with `lsid`, `txnNumber` and `autocommit`: a statement of a multi-document
    /// transaction (or its commit or abort).
    pub(super) fn transaction_command(
        &self,
        db: &str,
        cmd: &Document,
        conn: &mut ConnState,
        lsid: &[u8],
        number: i64,
    ) -> CmdResult<Document> {
        let name = name_of(cmd);
        match cmd.get("autocommit") {
            Some(Bson::Boolean(false)) => {}
            Some(Bson::Boolean(true)) => {
                return Err(invalid_options(
                    "Specifying autocommit=true is not allowed.",
                ));
            }
            _ => {
                return Err(CommandError::type_mismatch(
                    "BSON field 'autocommit' is the wrong type, expected type 'bool'",
                ));
            }
        }
        let start = start_flag(cmd)?;
        let role = self.topology.role(self.member);
        if role == Role::Secondary {
            return Err(CommandError::new(
                codes::NOT_WRITABLE_PRIMARY,
                "NotWritablePrimary",
                "Not primary so we cannot begin or continue a transaction",
            ));
        }
        let coll = cmd.iter().next().and_then(|(_, v)| v.as_str());
        txn::check_command_allowed(db, name, coll)?;
        if let Some(Bson::Array(stages)) = cmd.get("pipeline").filter(|_| name == "aggregate") {
            for stage in stages.iter().filter_map(Bson::as_document) {
                if let Some(out) = ["$out", "$merge"].iter().find(|s| stage.contains_key(**s)) {
                    return Err(CommandError::new(
                        263,
                        "OperationNotSupportedInTransaction",
                        format!("{out} cannot be used in a transaction"),
                    ));
                }
            }
        }
        let commit_or_abort = matches!(name, "commitTransaction" | "abortTransaction");
        if cmd.contains_key("writeConcern") && !commit_or_abort {
            return Err(invalid_options(
                "writeConcern is not allowed within a multi-statement transaction",
            ));
        }
        if let Some(rc) = cmd.get("readConcern") {
            let rc = rc
                .as_document()
                .ok_or_else(|| CommandError::type_mismatch("readConcern must be an object"))?;
            if !start && !rc.is_empty() {
                return Err(invalid_options(
                    "Only the first command in a transaction may specify a readConcern",
                ));
            }
            if let Some(level) = rc.get("level") {
                if !matches!(level.as_str(), Some("local" | "majority" | "snapshot")) {
                    return Err(invalid_options(
                        "The readConcern level must be either 'local' (default), 'majority' or \
                         'snapshot' in order to run in a transaction",
                    ));
                }
            }
        }
        if role == Role::Mongos {
            return self.routed_transaction_command(db, cmd, conn, lsid, number, start);
        }
        let mut reply = self.participant_command(db, cmd, conn, lsid, number, start, false)?;
        if name == "commitTransaction" || name == "abortTransaction" {
            self.txn_write_concern(cmd, &mut reply)?;
        }
        Ok(reply)
    }

    /// The participant's part (a replica-set primary, or the shard behind a mongos):
    /// `beginOrContinue`, then the command in the transaction's view.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn participant_command(
        &self,
        db: &str,
        cmd: &Document,
        conn: &mut ConnState,
        lsid: &[u8],
        number: i64,
        start: bool,
        sharded: bool,
    ) -> CmdResult<Document> {
        let name = name_of(cmd);
        let lifetime = self
            .parameter("transactionLifetimeLimitSeconds")
            .and_then(|v| crate::query::as_f64(&v))
            .filter(|s| *s > 0.0)
            .map_or(Duration::from_secs(60), Duration::from_secs_f64);
        let retryable = self.store.latest_retryable(lsid);
        let txns = &self.store.txns;
        let begun = txns.begin_or_continue(
            &self.store,
            lsid,
            number,
            start,
            name,
            retryable,
            sharded,
            lifetime,
        )?;
        let view = match (name, begun) {
            ("commitTransaction", Begun::Run(_)) => {
                txns.commit(&self.store, lsid, number)?;
                return Ok(ok(Document::new()));
            }
            ("commitTransaction", Begun::AlreadyCommitted) => return Ok(ok(Document::new())),
            ("abortTransaction", _) => {
                txns.abort(lsid, number);
                return Ok(ok(Document::new()));
            }
            (_, Begun::Run(view)) => view,
            (_, Begun::AlreadyCommitted) => {
                return Err(CommandError::new(
                    256,
                    "TransactionCommitted",
                    format!("Transaction {number} has been committed."),
                ));
            }
        };
        if name == "createIndexes" {
            let coll = cmd.get_str("createIndexes").unwrap_or_default();
            let ns = (db.to_string(), coll.to_string());
            let existing = self
                .store
                .with_base(|base| base.get(db).is_some_and(|d| d.contains_key(coll)))
                && !txns.created_in(lsid, &ns);
            if existing {
                txns.abort(lsid, number);
                return Err(CommandError::new(
                    263,
                    "OperationNotSupportedInTransaction",
                    format!(
                        "Cannot create new indexes on existing collection {db}.{coll} in a \
                         multi-document transaction."
                    ),
                ));
            }
        }
        let before = TXN_WRITE_COMMANDS
            .contains(&name)
            .then(|| view.lock().clone());
        let result = txn::with_view(&self.store, view, || self.dispatch(db, cmd, conn));
        let reply = match result {
            Ok(reply) => reply,
            Err(e) => {
                // As on mongod, a failed statement aborts the transaction.
                txns.abort(lsid, number);
                return Err(e);
            }
        };
        if reply.contains_key("writeErrors") {
            txns.abort(lsid, number);
            return Ok(reply);
        }
        if let Some(before) = before {
            txns.record_writes(&self.store, lsid, number, before)?;
        }
        Ok(reply)
    }

    /// The write concern of `commitTransaction` / `abortTransaction`: a `w` the deployment
    /// cannot satisfy fails here, as a write-concern error beside the command's success; the
    /// wait for `w: N` / majority members is the network layer's (`replication/wait.rs`).
    pub(super) fn txn_write_concern(&self, cmd: &Document, reply: &mut Document) -> CmdResult<()> {
        let Some(wc) = cmd.get("writeConcern") else {
            return Ok(());
        };
        let wc = wc
            .as_document()
            .ok_or_else(|| CommandError::type_mismatch("writeConcern must be an object"))?;
        // A mongos's shards are taken to be three-member replica sets.
        let members = self.topology.rs().map_or(3, |rs| rs.hosts.len());
        let error = match wc.get("w") {
            None => None,
            Some(Bson::String(m)) if m == "majority" => None,
            Some(Bson::String(m)) => Some((
                79,
                "UnknownReplWriteConcern",
                format!("No write concern mode named '{m}' found in replica set configuration"),
            )),
            Some(w) => {
                let n = crate::query::as_f64(w).unwrap_or(0.0);
                #[allow(clippy::cast_precision_loss)]
                let too_many = n > members as f64;
                too_many.then(|| {
                    (
                        100,
                        "UnsatisfiableWriteConcern",
                        "Not enough data-bearing nodes".to_string(),
                    )
                })
            }
        };
        if let Some((code, code_name, errmsg)) = error {
            reply.insert(
                "writeConcernError",
                doc! { "code": code, "codeName": code_name, "errmsg": errmsg },
            );
        }
        Ok(())
    }

    /// A command outside any transaction. A write that changes a document an open
    /// transaction has written is undone and fails with WriteConflict (mongod would make it
    /// wait for the transaction to end; the testkit cannot hold a command).
    pub(super) fn dispatch_outside_transaction(
        &self,
        db: &str,
        cmd: &Document,
        conn: &mut ConnState,
    ) -> CmdResult<Document> {
        let txns = &self.store.txns;
        if !TXN_WRITE_COMMANDS.contains(&name_of(cmd)) || !txns.any_locks() {
            return self.dispatch(db, cmd, conn);
        }
        let before = self.store.with_base(|base| base.clone());
        let logged = self.store.oplog.next_seq();
        let reply = self.dispatch(db, cmd, conn)?;
        // The store's lock is not held while the transaction table is read (record_writes
        // takes them in the other order).
        let after = self.store.with_base(|base| base.clone());
        let (changed, _) = txn::diff(&before, &after);
        let locked: Vec<_> = changed
            .into_iter()
            .filter(|(ns, key)| txns.is_locked(ns, key))
            .collect();
        if locked.is_empty() {
            return Ok(reply);
        }
        self.store.with_base(|base| {
            txn::restore(base, &before, &locked);
            crate::store::Store::discard_pending(base);
        });
        // The undone write leaves no trace in the replication log either.
        self.store.oplog.truncate_from(logged);
        Err(txn::write_conflict())
    }

    /// `commitTransaction` / `abortTransaction` without a transaction.
    pub(super) fn txn_end_outside_transaction(name: &str) -> CommandError {
        CommandError::new(
            125,
            "CommandFailed",
            format!("{name} must be run within a transaction"),
        )
    }
}
