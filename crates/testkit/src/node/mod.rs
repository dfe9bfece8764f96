//! One server member: the [`Node`] and its per-connection [`ConnState`], command dispatch and
//! the access checks every command passes first.
//!
//! The commands themselves live in one file per family; [`Node::dispatch`] names, arm by arm,
//! which file answers each command:
//!
//! - `handshake.rs`: hello / isMaster (with compression negotiation and speculative
//!   authentication) and buildInfo;
//! - `auth.rs`: authenticate (X.509), saslStart, saslContinue, logout, connectionStatus,
//!   createUser, updateUser and dropUser;
//! - `writes.rs`: insert, update, delete, findAndModify and getLastError;
//! - `bulk_write.rs`: bulkWrite (8.0's writes on any namespaces, results in a cursor);
//! - `find.rs`: find (with returnKey and showRecordId);
//! - `aggregate.rs`: aggregate, with the source stages that read server state (`$documents`,
//!   `$collStats`, `$listLocalSessions`) and `$out`;
//! - `change_stream/`: aggregate with `$changeStream` and its cursors' getMores (events
//!   from the store's replication log, `crate::oplog`);
//! - `reads.rs`: getMore, killCursors, count and distinct, and the cursor table;
//! - `local_sessions.rs`: the logical session cache (`lsid`s seen, `endSessions`);
//! - `admin.rs`: listDatabases, listCollections, listIndexes, createIndexes, dropIndexes,
//!   create, collMod, drop, dropDatabase, renameCollection, the replica-set commands, shardCollection,
//!   serverStatus, getParameter / setParameter, whatsmyuri and configureFailPoint;
//! - `api.rs`: the stable API checks and mongod's API test commands;
//! - `session.rs`: retryable writes, killSessions / killAllSessions, and the error labels and
//!   topologyVersion mongod adds to error replies;
//! - `txn.rs`: statements of multi-document transactions, commitTransaction and
//!   abortTransaction (the store side is `crate::txn`); `router.rs`: the same through a mongos;
//! - `args.rs`: argument parsing and reply helpers shared by all of them.

mod admin;
mod aggregate;
mod api;
mod args;
mod auth;
mod bulk_write;
mod change_stream;
mod find;
mod handshake;
mod local_sessions;
mod map_reduce;
mod read_concern;
mod reads;
mod router;
mod session;
mod txn;
mod writes;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use bson::{Bson, Document, doc, oid::ObjectId};
use parking_lot::Mutex;

use crate::error::{CmdResult, CommandError, codes};
use crate::failpoint::{FailAction, FailPoints, ReplyFaults, Target};
use crate::options::ServerOptions;
use crate::scram::{ScramServer, Users};
use crate::store::Store;
use crate::topology::{Role, Topology};

use args::{name_of, ok};
pub(crate) use change_stream::DEFAULT_AWAIT_MS;

/// Largest BSON document the server accepts and advertises.
pub const MAX_BSON_OBJECT_SIZE: i32 = 16 * 1024 * 1024;
/// maxWriteBatchSize advertised.
pub const MAX_WRITE_BATCH_SIZE: i32 = 100_000;

/// Commands that run without authentication when auth is on. Like mongod: the handshake,
/// the SASL conversation, `ping`, `buildInfo`, `logout` and `endSessions` (whose failure a
/// closing client ignores anyway). Everything else gets code 13 (Unauthorized).
const NO_AUTH_COMMANDS: &[&str] = &[
    "hello",
    "isMaster",
    "ismaster",
    "saslStart",
    "saslContinue",
    "authenticate",
    "ping",
    "buildInfo",
    "buildinfo",
    "logout",
    "endSessions",
];

const WRITE_COMMANDS: &[&str] = &[
    "insert",
    "bulkWrite",
    "update",
    "delete",
    "findAndModify",
    "create",
    "drop",
    "dropDatabase",
    "renameCollection",
    "createIndexes",
    "dropIndexes",
    "createUser",
    "updateUser",
    "dropUser",
    "collMod",
    "commitTransaction",
    "abortTransaction",
];

const READ_COMMANDS: &[&str] = &[
    "find",
    "aggregate",
    "count",
    "distinct",
    "mapReduce",
    "listCollections",
    "listIndexes",
];

/// Per-connection state: id, handshake facts, authentication and an open SASL conversation.
#[derive(Debug)]
pub struct ConnState {
    id: i64,
    app_name: Option<String>,
    handshake_done: bool,
    compressors: Vec<String>,
    authenticated: Vec<(String, String)>,
    sasl: Option<(i32, ScramServer, bool)>,
    next_conversation: i32,
    pub(crate) legacy_secondary_ok: bool,
    /// What `getLastError` reports: the outcome of the last legacy write.
    pub(crate) last_error: Option<Document>,
    /// The TLS client certificate's subject (RFC 2253), when one was presented.
    pub(crate) peer_subject: Option<String>,
}

impl ConnState {
    /// A fresh connection with the given connection id.
    pub fn new(id: i64) -> Self {
        Self {
            id,
            app_name: None,
            handshake_done: false,
            compressors: Vec::new(),
            authenticated: Vec::new(),
            sasl: None,
            next_conversation: 1,
            legacy_secondary_ok: false,
            last_error: None,
            peer_subject: None,
        }
    }

    /// The connection id reported in hello.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The application name the client sent in its handshake.
    pub fn app_name(&self) -> Option<&str> {
        self.app_name.as_deref()
    }

    /// Compressors negotiated in the handshake, in the client's order.
    pub fn compressors(&self) -> &[String] {
        &self.compressors
    }

    /// The (database, user) pairs this connection is authenticated as.
    pub fn authenticated_users(&self) -> &[(String, String)] {
        &self.authenticated
    }
}

/// An open cursor.
#[derive(Debug)]
struct Cursor {
    ns: String,
    docs: VecDeque<Document>,
    /// A tailable cursor on a capped collection: how many of the collection's documents (in
    /// insertion order) it has delivered; it stays open when it runs dry and a later getMore
    /// returns what was inserted since.
    tail: Option<(usize, Document)>,
    /// A change stream's cursor: its events come from the replication log.
    stream: Option<Box<change_stream::Stream>>,
}

/// A server member. Cheap to share; all state is behind locks.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) opts: ServerOptions,
    pub(crate) store: Arc<Store>,
    pub(crate) users: Arc<Users>,
    pub(crate) topology: Arc<Topology>,
    pub(crate) member: usize,
    pub(crate) fail_points: FailPoints,
    pub(crate) reply_faults: ReplyFaults,
    process_id: Mutex<ObjectId>,
    /// The `serviceId` reported in load-balanced mode (new on each restart).
    service_id: Mutex<ObjectId>,
    cursors: Mutex<HashMap<i64, Cursor>>,
    /// The logical session cache (`$listLocalSessions`).
    local_sessions: local_sessions::LocalSessions,
    next_conn_id: AtomicI64,
    pub(crate) address: Mutex<String>,
    /// Server parameters (`getParameter` / `setParameter`).
    parameters: Mutex<Document>,
}

/// A command's outcome as the connection sees it.
#[derive(Debug)]
pub(crate) struct Executed {
    /// The reply (empty when `close` is set).
    pub(crate) reply: Document,
    /// Hang up instead of replying.
    pub(crate) close: bool,
    /// How long the command's `$where` bodies asked to sleep: the connection waits this long
    /// before it replies (see `query/where_js.rs`).
    pub(crate) busy: Duration,
}

impl Node {
    pub(crate) fn new(
        opts: ServerOptions,
        store: Arc<Store>,
        users: Arc<Users>,
        topology: Arc<Topology>,
        member: usize,
    ) -> Self {
        let parameters = admin::initial_parameters(&opts);
        Self {
            parameters: Mutex::new(parameters),
            opts,
            store,
            users,
            topology,
            member,
            fail_points: FailPoints::default(),
            reply_faults: ReplyFaults::default(),
            process_id: Mutex::new(ObjectId::new()),
            service_id: Mutex::new(ObjectId::new()),
            cursors: Mutex::new(HashMap::new()),
            local_sessions: local_sessions::LocalSessions::default(),
            next_conn_id: AtomicI64::new(1),
            address: Mutex::new(String::new()),
        }
    }

    /// A new connection id.
    pub(crate) fn next_connection_id(&self) -> i64 {
        self.next_conn_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Called on restart: a new process id, no cursors.
    pub(crate) fn reset_process(&self) {
        *self.process_id.lock() = ObjectId::new();
        *self.service_id.lock() = ObjectId::new();
        self.cursors.lock().clear();
        self.local_sessions.clear();
    }

    /// The current topologyVersion document.
    pub(crate) fn topology_version(&self) -> Document {
        doc! { "processId": *self.process_id.lock(), "counter": self.topology.counter() }
    }

    /// Whether a hello with this topologyVersion should wait (it matches the current one).
    pub(crate) fn should_await(&self, tv: &Document) -> bool {
        let pid = tv.get_object_id("processId").ok();
        let counter = match tv.get("counter") {
            Some(Bson::Int64(c)) => Some(*c),
            Some(Bson::Int32(c)) => Some(i64::from(*c)),
            _ => None,
        };
        pid == Some(*self.process_id.lock()) && counter == Some(self.topology.counter())
    }

    /// Evaluates `failCommand` for a command, before it runs.
    pub(crate) fn fail_action(&self, db: &str, cmd: &Document, conn: &ConnState) -> FailAction {
        let namespace = command_namespace(db, cmd);
        // The handshake's own metadata counts (mongod reads it before failCommand runs, which
        // is how a fail point on hello with an appName fails that client's handshake).
        let app_name = conn.app_name().or_else(|| {
            cmd.get_document("client")
                .ok()
                .and_then(|c| c.get_document("application").ok())
                .and_then(|a| a.get_str("name").ok())
        });
        self.fail_points.check(&Target {
            command: name_of(cmd),
            app_name,
            namespace: &namespace,
        })
    }

    /// Runs a command after its `failCommand` step (blocking is the caller's: the network
    /// layer sleeps, [`Node::handle`] does not): hangs up, fails or executes it.
    pub(crate) fn respond(
        &self,
        db: &str,
        cmd: Document,
        conn: &mut ConnState,
        action: FailAction,
    ) -> Executed {
        // A fail point's error or hang-up leaves a transaction as it was: mongod evaluates
        // failCommand in its service entry point, before the command checks out its session's
        // transaction, so the statement never ran and nothing aborts it (the transactions
        // suites' "remain pinned after non-transient error" and backpressure cases rely on it).
        if action.close {
            return Executed {
                reply: Document::new(),
                close: true,
                busy: Duration::ZERO,
            };
        }
        match action.error {
            Some((code, msg)) => {
                let mut reply =
                    CommandError::new(code, crate::error::code_name(code), msg).to_doc();
                self.finish_reply(&cmd, &mut reply, action.labels);
                self.gossip_cluster_time(name_of(&cmd), &mut reply);
                Executed {
                    reply,
                    close: false,
                    busy: Duration::ZERO,
                }
            }
            None => self.execute(db, cmd, conn),
        }
    }

    /// Runs a command synchronously with its fail points (a hang-up becomes an error reply;
    /// `blockConnection` does not sleep).
    pub(crate) fn handle(&self, db: &str, cmd: Document, conn: &mut ConnState) -> Document {
        let action = self.fail_action(db, &cmd, conn);
        let done = self.respond(db, cmd, conn, action);
        if done.close {
            return CommandError::new(9001, "SocketException", "connection closed by the server")
                .to_doc();
        }
        done.reply
    }

    /// Runs a command past `failCommand`'s first step: access and API checks, the
    /// retryable-write bookkeeping, the command, a fail-point `writeConcernError`, and the
    /// error labels and topologyVersion mongod adds to errors.
    pub(crate) fn execute(&self, db: &str, cmd: Document, conn: &mut ConnState) -> Executed {
        let name = name_of(&cmd);
        let mut close = false;
        // Nothing left over from a command that failed half-way on this thread.
        crate::query::take_js_time();
        // As on mongod, an unknown command is CommandNotFound before any access check.
        let known = KNOWN_COMMANDS.contains(&name);
        // A secondary reads its own data, having applied what is due (`replication/`).
        let own = (self.topology.role(self.member) == Role::Secondary)
            .then(|| self.store.repl.catch_up(&self.store, self.member))
            .flatten();
        let mut run = || {
            (if known {
                Ok(())
            } else {
                Err(command_not_found(name))
            })
            .and_then(|()| self.check_access(name, &cmd, conn))
            .and_then(|()| self.check_api(name, &cmd))
            .and_then(|()| self.local_sessions.vivify(&cmd, conn))
            .and_then(|()| self.check_read_concern(name, &cmd))
            .and_then(|()| match self.session_write(db, &cmd, conn)? {
                Some((reply, hang_up)) => {
                    close = hang_up;
                    Ok(reply)
                }
                None => self.read_snapshot(name, &cmd, || {
                    self.dispatch_outside_transaction(db, &cmd, conn)
                }),
            })
        };
        let result = match own {
            Some(data) => crate::replication::with_view(&self.store, data, run),
            None => run(),
        };
        let mut reply = match result {
            Ok(d) => d,
            Err(e) => e.to_doc(),
        };
        let mut labels = None;
        if takes_write_concern(name, &cmd) {
            let namespace = command_namespace(db, &cmd);
            let target = Target {
                command: name,
                app_name: conn.app_name(),
                namespace: &namespace,
            };
            if let Some((wce, wce_labels)) = self.fail_points.write_concern_error(&target) {
                reply.insert("writeConcernError", wce);
                labels = wce_labels;
            }
        }
        self.finish_reply(&cmd, &mut reply, labels);
        self.gossip_cluster_time(name, &mut reply);
        Executed {
            reply,
            close,
            busy: crate::query::take_js_time(),
        }
    }

    /// A replica-set member or a mongos gossips the cluster time: every reply carries
    /// `$clusterTime` (with a dummy signature) and `operationTime`, which a write advances.
    fn gossip_cluster_time(&self, name: &str, reply: &mut Document) {
        if self.topology.role(self.member) == Role::Standalone {
            return;
        }
        let wrote =
            WRITE_COMMANDS.contains(&name) && reply.get("ok").is_some_and(crate::query::truthy);
        let ts = if wrote {
            self.store.tick()
        } else {
            self.store.cluster_time()
        };
        reply.insert(
            "$clusterTime",
            doc! {
                "clusterTime": ts,
                "signature": {
                    "hash": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![0; 20] },
                    "keyId": 0_i64,
                },
            },
        );
        reply.insert("operationTime", ts);
    }

    /// Forgets one cursor (an exhaust stream whose connection closed before it ended: mongod
    /// kills the cursor when it cannot write the stream's next reply).
    pub(crate) fn drop_cursor(&self, id: i64) {
        self.cursors.lock().remove(&id);
    }

    /// Kills every open cursor (between tests, `killAllSessions`).
    pub(crate) fn kill_all_cursors(&self) {
        self.cursors.lock().clear();
    }

    /// A server parameter's current value.
    pub(crate) fn parameter(&self, name: &str) -> Option<Bson> {
        self.parameters.lock().get(name).cloned()
    }

    fn check_access(&self, name: &str, cmd: &Document, conn: &ConnState) -> CmdResult<()> {
        if self.opts.auth_enabled()
            && conn.authenticated.is_empty()
            && !NO_AUTH_COMMANDS.contains(&name)
        {
            return Err(CommandError::new(
                codes::UNAUTHORIZED,
                "Unauthorized",
                format!("Command {name} requires authentication"),
            ));
        }
        let role = self.topology.role(self.member);
        if role == Role::Secondary {
            if WRITE_COMMANDS.contains(&name) {
                return Err(CommandError::new(
                    codes::NOT_WRITABLE_PRIMARY,
                    "NotWritablePrimary",
                    "not primary",
                ));
            }
            if READ_COMMANDS.contains(&name) {
                let mode = cmd
                    .get_document("$readPreference")
                    .ok()
                    .and_then(|rp| rp.get_str("mode").ok());
                let secondary_ok = conn.legacy_secondary_ok || mode.is_some_and(|m| m != "primary");
                if !secondary_ok {
                    return Err(CommandError::new(
                        codes::NOT_PRIMARY_NO_SECONDARY_OK,
                        "NotPrimaryNoSecondaryOk",
                        "not primary and secondaryOk=false",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Routes the command to the file of its family (see the module documentation). A new
    /// command gets an arm here and its body in that file.
    fn dispatch(&self, db: &str, cmd: &Document, conn: &mut ConnState) -> CmdResult<Document> {
        let name = name_of(cmd);
        let mongos = self.topology.role(self.member) == Role::Mongos;
        match name {
            // A mongos has no replica-set commands; a mongod has no sharding commands.
            "replSetStepDown" | "replSetFreeze" | "replSetGetStatus" if mongos => {
                Err(command_not_found(name))
            }
            "shardCollection" | "enableSharding" | "checkMetadataConsistency" if !mongos => {
                Err(command_not_found(name))
            }
            // Nothing to do: answered here.
            "ping" => Ok(ok(Document::new())),
            "endSessions" => {
                if let Ok(ids) = cmd.get_array("endSessions") {
                    self.local_sessions.end(ids);
                    self.end_session_transactions(ids);
                }
                Ok(ok(Document::new()))
            }
            "refreshSessions" => Ok(ok(Document::new())),
            // session.rs
            "killSessions" | "killAllSessions" | "killAllSessionsByPattern" => {
                Ok(self.kill_sessions(cmd))
            }
            // txn.rs (a transaction's commit or abort goes there through session.rs).
            "commitTransaction" | "abortTransaction" => {
                Err(Self::txn_end_outside_transaction(name))
            }
            // api.rs
            "testVersion2"
            | "testVersion1And2"
            | "testDeprecation"
            | "testDeprecationInVersion2"
            | "testRemoval" => self.api_test_command(name),
            // handshake.rs
            "hello" | "isMaster" | "ismaster" => self.hello(db, cmd, conn),
            "buildInfo" | "buildinfo" => Ok(self.build_info()),
            // auth.rs
            "saslStart" => self.sasl_start(db, cmd, conn),
            "saslContinue" => self.sasl_continue(cmd, conn),
            "authenticate" => self.authenticate(db, cmd, conn),
            "logout" => Ok(auth::logout(db, conn)),
            "connectionStatus" => Ok(auth::connection_status(conn)),
            "createUser" => self.create_user(db, cmd),
            "updateUser" => self.update_user(db, cmd),
            "dropUser" => self.drop_user(db, cmd),
            // writes.rs
            "insert" => self.insert(db, cmd),
            "update" => self.update(db, cmd),
            "delete" => self.delete(db, cmd),
            "findAndModify" | "findandmodify" => self.find_and_modify(db, cmd),
            "getLastError" | "getlasterror" => Ok(writes::get_last_error(conn)),
            // bulk_write.rs
            "bulkWrite" => self.bulk_write(db, cmd),
            // find.rs
            "find" => self.find(db, cmd),
            // aggregate.rs
            "aggregate" => self.aggregate(db, cmd, conn),
            // reads.rs
            "getMore" => self.get_more(db, cmd),
            "killCursors" => self.kill_cursors(db, cmd),
            "count" => self.count(db, cmd),
            "distinct" => self.distinct(db, cmd),
            // map_reduce.rs
            "mapReduce" => self.map_reduce(db, cmd),
            // admin.rs
            "listDatabases" => self.list_databases(db, cmd),
            "listCollections" => self.list_collections(db, cmd),
            "listIndexes" => self.list_indexes(db, cmd),
            "createIndexes" => self.create_indexes(db, cmd),
            "dropIndexes" => self.drop_indexes(db, cmd),
            "create" => self.create_collection(db, cmd),
            "collMod" => self.coll_mod(db, cmd),
            "drop" => self.drop_collection(db, cmd),
            "dropDatabase" => Ok(self.drop_database(db)),
            "renameCollection" => self.rename_collection(db, cmd),
            "replSetStepDown" => self.repl_set_step_down(db, cmd),
            "replSetFreeze" => self.repl_set_freeze(db, cmd),
            "shardCollection" | "enableSharding" => self.shard_collection(db, cmd),
            "checkMetadataConsistency" => Ok(self.check_metadata_consistency(db)),
            "replSetGetStatus" => self.repl_set_get_status(),
            "serverStatus" => Ok(self.server_status()),
            "getParameter" => self.get_parameter(db, cmd),
            "setParameter" => self.set_parameter(db, cmd),
            "whatsmyuri" => Ok(admin::whatsmyuri()),
            "configureFailPoint" => self.configure_fail_point(db, cmd),
            "" => Err(CommandError::failed_to_parse("empty command document")),
            // Includes getnonce, which mongod removed in 4.0 (MONGODB-CR).
            other => Err(command_not_found(other)),
        }
    }
}

/// Every command [`Node::dispatch`] has an arm for.
const KNOWN_COMMANDS: &[&str] = &[
    "ping",
    "endSessions",
    "refreshSessions",
    "killSessions",
    "killAllSessions",
    "killAllSessionsByPattern",
    "commitTransaction",
    "abortTransaction",
    "testVersion2",
    "testVersion1And2",
    "testDeprecation",
    "testDeprecationInVersion2",
    "testRemoval",
    "hello",
    "isMaster",
    "ismaster",
    "buildInfo",
    "buildinfo",
    "saslStart",
    "saslContinue",
    "authenticate",
    "logout",
    "connectionStatus",
    "createUser",
    "updateUser",
    "dropUser",
    "insert",
    "update",
    "delete",
    "findAndModify",
    "findandmodify",
    "getLastError",
    "getlasterror",
    "bulkWrite",
    "find",
    "getMore",
    "killCursors",
    "count",
    "distinct",
    "mapReduce",
    "aggregate",
    "listDatabases",
    "listCollections",
    "listIndexes",
    "createIndexes",
    "dropIndexes",
    "create",
    "collMod",
    "drop",
    "dropDatabase",
    "renameCollection",
    "replSetStepDown",
    "replSetFreeze",
    "replSetGetStatus",
    "shardCollection",
    "enableSharding",
    "checkMetadataConsistency",
    "serverStatus",
    "getParameter",
    "setParameter",
    "whatsmyuri",
    "configureFailPoint",
];

fn command_not_found(name: &str) -> CommandError {
    CommandError::new(
        codes::COMMAND_NOT_FOUND,
        "CommandNotFound",
        format!("no such command: '{name}'"),
    )
}

/// The namespace `failCommand`'s `namespace` matches: `db.collection` when the command's
/// first value is a collection name, else `db`.
fn command_namespace(db: &str, cmd: &Document) -> String {
    match cmd.iter().next() {
        Some((_, Bson::String(coll))) if !coll.is_empty() => format!("{db}.{coll}"),
        _ => db.to_string(),
    }
}

/// Whether a command takes a write concern (and so can get a fail point's
/// `writeConcernError`).
pub(crate) fn takes_write_concern(name: &str, cmd: &Document) -> bool {
    if name == "aggregate" {
        return matches!(cmd.get("pipeline"), Some(Bson::Array(p)) if p.iter().any(|s| {
            s.as_document()
                .is_some_and(|d| d.contains_key("$out") || d.contains_key("$merge"))
        }));
    }
    WRITE_CONCERN_COMMANDS.contains(&name)
}

const WRITE_CONCERN_COMMANDS: &[&str] = &[
    "insert",
    "update",
    "delete",
    "findAndModify",
    "findandmodify",
    "bulkWrite",
    "create",
    "collMod",
    "drop",
    "dropDatabase",
    "createIndexes",
    "dropIndexes",
    "renameCollection",
    "createUser",
    "updateUser",
    "dropUser",
    "commitTransaction",
    "abortTransaction",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_command_has_an_arm() {
        for topology in [Topology::standalone(), Topology::mongos()] {
            let mongos = topology.role(0) == Role::Mongos;
            let node = Node::new(
                ServerOptions::default(),
                Arc::new(Store::new()),
                Arc::new(Users::default()),
                Arc::new(topology),
                0,
            );
            let mut conn = ConnState::new(1);
            for name in KNOWN_COMMANDS {
                let sharding = matches!(
                    *name,
                    "shardCollection" | "enableSharding" | "checkMetadataConsistency"
                );
                let repl = name.starts_with("replSet");
                if (sharding && !mongos) || (repl && mongos) {
                    continue;
                }
                let mut cmd = Document::new();
                cmd.insert(*name, 1);
                let reply = node.execute("admin", cmd, &mut conn).reply;
                assert_ne!(reply.get_i32("code").ok(), Some(59), "{name}: {reply}");
            }
            let reply = node.execute("admin", doc! { "nope": 1 }, &mut conn).reply;
            assert_eq!(reply.get_i32("code").ok(), Some(59));
        }
    }
}
