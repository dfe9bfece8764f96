//! Snapshot reads outside transactions (MongoDB 5.0+), as mongod answers them: a
//! `readConcern` of level `snapshot` is accepted by `find`, `aggregate` and `distinct` on a
//! replica-set member or a mongos, and their first reply says which snapshot it read
//! (`atClusterTime`: in `cursor` for find and aggregate, at the top for distinct); any other
//! command refuses it (InvalidOptions 72), as a standalone does every command (NotAReplicaSet
//! 123). A read at an `atClusterTime` sees the data as of that time, from the store's
//! bounded history (`history.rs`; SnapshotTooOld 239 beyond it).
//! Transactions (`autocommit: false`) are not judged here.

use std::sync::Arc;

use bson::{Bson, Document};
use parking_lot::Mutex;

use super::Node;
use crate::error::{CmdResult, CommandError, codes};
use crate::history::Snapshot;
use crate::store::Dbs;
use crate::topology::Role;
use crate::txn;

/// The commands that read a snapshot outside a transaction.
const SNAPSHOT_READS: [&str; 3] = ["find", "aggregate", "distinct"];

const NOT_A_REPLICA_SET: i32 = 123;

/// Whether the command asks for a snapshot read outside a transaction.
fn snapshot_level(cmd: &Document) -> bool {
    !cmd.contains_key("autocommit")
        && cmd
            .get_document("readConcern")
            .is_ok_and(|rc| rc.get_str("level").is_ok_and(|l| l == "snapshot"))
}

impl Node {
    /// Refuses a snapshot read concern where mongod does.
    pub(super) fn check_read_concern(&self, name: &str, cmd: &Document) -> CmdResult<()> {
        if !snapshot_level(cmd) {
            return Ok(());
        }
        if self.topology.role(self.member) == Role::Standalone {
            return Err(CommandError::new(
                NOT_A_REPLICA_SET,
                "NotAReplicaSet",
                "node needs to be a replica set member to use readConcern: snapshot",
            ));
        }
        if !SNAPSHOT_READS.contains(&name) {
            return Err(CommandError::new(
                codes::INVALID_OPTIONS,
                "InvalidOptions",
                format!(
                    "Command {name} does not support {{ readConcern: {{ level: \"snapshot\" }} }}"
                ),
            ));
        }
        // A pipeline that writes cannot read a snapshot (its writes would go to the past).
        if name == "aggregate"
            && let Some(stage) = cmd
                .get_array("pipeline")
                .ok()
                .and_then(|p| p.last())
                .and_then(Bson::as_document)
                .and_then(|last| last.keys().next())
                .filter(|k| *k == "$out" || *k == "$merge")
        {
            return Err(CommandError::new(
                codes::INVALID_OPTIONS,
                "InvalidOptions",
                format!("{stage} cannot be used with a 'snapshot' read concern level"),
            ));
        }
        Ok(())
    }

    /// Runs `read` (the command) as a snapshot read when it is one: on the data as of its
    /// `atClusterTime` (or the current cluster time when it has none), its reply stamped
    /// with that time. Any other command just runs.
    pub(super) fn read_snapshot(
        &self,
        name: &str,
        cmd: &Document,
        read: impl FnOnce() -> CmdResult<Document>,
    ) -> CmdResult<Document> {
        if !snapshot_level(cmd) || !SNAPSHOT_READS.contains(&name) {
            return read();
        }
        let asked = cmd
            .get_document("readConcern")
            .ok()
            .and_then(|rc| rc.get_timestamp("atClusterTime").ok());
        let (at, data) = self.store.snapshot_at(asked)?;
        let mut reply = match data {
            Snapshot::Current => read()?,
            Snapshot::Version(dbs) => {
                let view = Arc::new(Mutex::new(Dbs::clone(&dbs)));
                txn::with_view(&self.store, view, read)?
            }
        };
        if name == "distinct" {
            reply.insert("atClusterTime", at);
        } else if let Some(Bson::Document(cursor)) = reply.get_mut("cursor") {
            cursor.insert("atClusterTime", at);
        }
        Ok(reply)
    }
}
