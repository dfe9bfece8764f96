//! One server member: the [`Node`] and its per-connection [`ConnState`], command dispatch and
//! the access checks every command passes first.
//!
//! The commands themselves live in one file per family; [`Node::dispatch`] names, arm by arm,
//! which file answers each command:
//!
//! - `handshake.rs`: hello / isMaster (with compression negotiation and speculative
//!   authentication) and buildInfo;
//! - `auth.rs`: authenticate (X.509), saslStart, saslContinue, logout, connectionStatus,
//!   createUser and dropUser;
//! - `writes.rs`: insert, update, delete, findAndModify and getLastError;
//! - `reads.rs`: find, getMore, killCursors, count, distinct and aggregate, and the cursor
//!   table they share;
//! - `admin.rs`: listDatabases, listCollections, listIndexes, createIndexes, dropIndexes,
//!   create, drop, dropDatabase, the replica-set commands, serverStatus, getParameter,
//!   whatsmyuri and configureFailPoint;
//! - `args.rs`: argument parsing and reply helpers shared by all of them.

mod admin;
mod args;
mod auth;
mod handshake;
mod reads;
mod writes;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use bson::{Bson, Document, doc, oid::ObjectId};
use parking_lot::Mutex;

use crate::error::{CmdResult, CommandError, codes};
use crate::failpoint::{FailAction, FailPoints, ReplyFaults};
use crate::options::ServerOptions;
use crate::scram::{ScramServer, Users};
use crate::store::Store;
use crate::topology::{Role, Topology};

use args::{name_of, ok};

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
    "update",
    "delete",
    "findAndModify",
    "create",
    "drop",
    "dropDatabase",
    "createIndexes",
    "dropIndexes",
    "createUser",
    "dropUser",
];

const READ_COMMANDS: &[&str] = &[
    "find",
    "aggregate",
    "count",
    "distinct",
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
    next_conn_id: AtomicI64,
    pub(crate) address: Mutex<String>,
}

impl Node {
    pub(crate) fn new(
        opts: ServerOptions,
        store: Arc<Store>,
        users: Arc<Users>,
        topology: Arc<Topology>,
        member: usize,
    ) -> Self {
        Self {
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

    /// Evaluates the fail points for a command (before it runs).
    pub(crate) fn fail_action(&self, cmd: &Document, conn: &ConnState) -> FailAction {
        self.fail_points.check(name_of(cmd), conn.app_name())
    }

    /// Runs a command: fail point first (a close request becomes an error reply here, the
    /// network layer hangs up instead), then the command itself.
    pub(crate) fn handle(&self, db: &str, cmd: Document, conn: &mut ConnState) -> Document {
        let action = self.fail_action(&cmd, conn);
        if action.close {
            return CommandError::new(9001, "SocketException", "connection closed by failCommand")
                .to_doc();
        }
        if let Some(err) = action.error {
            return err;
        }
        let mut reply = self.execute(db, cmd, conn);
        if let Some(wce) = action.write_concern_error {
            reply.insert("writeConcernError", wce);
            if let Some(labels) = self.fail_points.labels_for_wce() {
                reply.insert("errorLabels", labels);
            }
        }
        reply
    }

    /// Runs a command without consulting fail points.
    pub(crate) fn execute(&self, db: &str, cmd: Document, conn: &mut ConnState) -> Document {
        match self.dispatch(db, &cmd, conn) {
            Ok(d) => d,
            Err(e) => e.to_doc(),
        }
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

    /// Checks access, then routes the command to the file of its family (see the module
    /// documentation). A new command gets an arm here and its body in that file.
    fn dispatch(&self, db: &str, cmd: &Document, conn: &mut ConnState) -> CmdResult<Document> {
        let name = name_of(cmd);
        self.check_access(name, cmd, conn)?;
        match name {
            // Nothing to do: answered here.
            "ping" => Ok(ok(Document::new())),
            "endSessions" | "killSessions" | "killAllSessions" | "refreshSessions" => {
                Ok(ok(Document::new()))
            }
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
            "dropUser" => self.drop_user(db, cmd),
            // writes.rs
            "insert" => self.insert(db, cmd),
            "update" => self.update(db, cmd),
            "delete" => self.delete(db, cmd),
            "findAndModify" | "findandmodify" => self.find_and_modify(db, cmd),
            "getLastError" | "getlasterror" => Ok(writes::get_last_error(conn)),
            // reads.rs
            "find" => self.find(db, cmd),
            "getMore" => self.get_more(db, cmd),
            "killCursors" => self.kill_cursors(db, cmd),
            "count" => self.count(db, cmd),
            "distinct" => self.distinct(db, cmd),
            "aggregate" => self.aggregate(db, cmd),
            // admin.rs
            "listDatabases" => self.list_databases(db, cmd),
            "listCollections" => self.list_collections(db, cmd),
            "listIndexes" => self.list_indexes(db, cmd),
            "createIndexes" => self.create_indexes(db, cmd),
            "dropIndexes" => self.drop_indexes(db, cmd),
            "create" => self.create_collection(db, cmd),
            "drop" => self.drop_collection(db, cmd),
            "dropDatabase" => Ok(self.drop_database(db)),
            "replSetStepDown" => self.repl_set_step_down(),
            "replSetGetStatus" => self.repl_set_get_status(),
            "serverStatus" => Ok(self.server_status()),
            "getParameter" => Ok(admin::get_parameter()),
            "whatsmyuri" => Ok(admin::whatsmyuri()),
            "configureFailPoint" => self.configure_fail_point(db, cmd),
            "" => Err(CommandError::failed_to_parse("empty command document")),
            other => Err(CommandError::new(
                codes::COMMAND_NOT_FOUND,
                "CommandNotFound",
                format!("no such command: '{other}'"),
            )),
        }
    }
}
