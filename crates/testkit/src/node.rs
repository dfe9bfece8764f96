//! One server member: command dispatch over the store, auth, cursors and fail points.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use base64::Engine as _;
use bson::spec::BinarySubtype;
use bson::{Binary, Bson, Document, doc, oid::ObjectId};
use parking_lot::Mutex;

use crate::error::{CmdResult, CommandError, codes};
use crate::failpoint::{FailAction, FailPoints, ReplyFaults};
use crate::options::ServerOptions;
use crate::query;
use crate::scram::{Mechanism, ScramFailure, ScramServer, Users};
use crate::store::Store;
use crate::topology::{Role, Topology};

/// Largest BSON document the server accepts and advertises.
pub const MAX_BSON_OBJECT_SIZE: i32 = 16 * 1024 * 1024;
/// maxWriteBatchSize advertised.
pub const MAX_WRITE_BATCH_SIZE: i32 = 100_000;
/// Default first-batch size of find and aggregate.
const DEFAULT_BATCH: usize = 101;

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

fn ok(mut d: Document) -> Document {
    d.insert("ok", 1.0);
    d
}

fn name_of(cmd: &Document) -> &str {
    cmd.keys().next().map(String::as_str).unwrap_or_default()
}

fn coll_arg<'a>(cmd: &'a Document, name: &str) -> CmdResult<&'a str> {
    match cmd.get(name) {
        Some(Bson::String(s)) if !s.is_empty() => Ok(s),
        _ => Err(CommandError::new(
            73,
            "InvalidNamespace",
            format!("collection name has invalid type {name}"),
        )),
    }
}

fn opt_doc<'a>(cmd: &'a Document, key: &str) -> CmdResult<Option<&'a Document>> {
    match cmd.get(key) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::Document(d)) => Ok(Some(d)),
        Some(_) => Err(CommandError::type_mismatch(format!(
            "'{key}' must be of type object"
        ))),
    }
}

fn opt_count(cmd: &Document, key: &str) -> CmdResult<Option<i64>> {
    match cmd.get(key) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::Int32(v)) => Ok(Some(i64::from(*v))),
        Some(Bson::Int64(v)) => Ok(Some(*v)),
        #[allow(clippy::cast_possible_truncation)]
        Some(Bson::Double(v)) if v.fract() == 0.0 && v.abs() < 9.0e15 => Ok(Some(*v as i64)),
        Some(_) => Err(CommandError::type_mismatch(format!(
            "'{key}' must be a number"
        ))),
    }
}

fn non_negative(cmd: &Document, key: &str) -> CmdResult<Option<usize>> {
    match opt_count(cmd, key)? {
        None => Ok(None),
        Some(n) => usize::try_from(n).map(Some).map_err(|_| {
            CommandError::bad_value(format!(
                "{key} value must be non-negative, but received: {n}"
            ))
        }),
    }
}

fn array_of_docs<'a>(cmd: &'a Document, key: &str) -> CmdResult<Vec<&'a Document>> {
    match cmd.get(key) {
        Some(Bson::Array(a)) => a
            .iter()
            .map(|e| {
                e.as_document().ok_or_else(|| {
                    CommandError::type_mismatch(format!("'{key}' entries must be documents"))
                })
            })
            .collect(),
        _ => Err(CommandError::new(
            40414,
            "Location40414",
            format!("BSON field '{key}' is missing but a required field"),
        )),
    }
}

fn binary(bytes: Vec<u8>) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Generic,
        bytes,
    })
}

fn payload_bytes(cmd: &Document) -> CmdResult<Vec<u8>> {
    match cmd.get("payload") {
        Some(Bson::Binary(b)) => Ok(b.bytes.clone()),
        Some(Bson::String(s)) => base64::engine::general_purpose::STANDARD
            .decode(s)
            .or_else(|_| Ok(s.as_bytes().to_vec())),
        _ => Err(CommandError::new(
            codes::NO_SUCH_KEY,
            "NoSuchKey",
            "missing payload",
        )),
    }
}

fn auth_failed() -> CommandError {
    CommandError::new(
        codes::AUTHENTICATION_FAILED,
        "AuthenticationFailed",
        "Authentication failed.",
    )
}

fn now() -> bson::DateTime {
    bson::DateTime::now()
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

    fn dispatch(&self, db: &str, cmd: &Document, conn: &mut ConnState) -> CmdResult<Document> {
        let name = name_of(cmd);
        self.check_access(name, cmd, conn)?;
        match name {
            "hello" | "isMaster" | "ismaster" => self.hello(db, cmd, conn),
            "ping" => Ok(ok(Document::new())),
            "buildInfo" | "buildinfo" => Ok(self.build_info()),
            "endSessions" | "killSessions" | "killAllSessions" | "refreshSessions" => {
                Ok(ok(Document::new()))
            }
            "saslStart" => self.sasl_start(db, cmd, conn),
            "saslContinue" => self.sasl_continue(cmd, conn),
            "authenticate" => self.authenticate(db, cmd, conn),
            "getLastError" | "getlasterror" => Ok(ok(conn
                .last_error
                .clone()
                .unwrap_or_else(|| doc! { "n": 0, "err": Bson::Null }))),
            "logout" => {
                conn.authenticated.retain(|(d, _)| d != db);
                Ok(ok(Document::new()))
            }
            "connectionStatus" => Ok(ok(doc! {
                "authInfo": {
                    "authenticatedUsers": conn.authenticated.iter()
                        .map(|(d, u)| Bson::Document(doc! { "user": u.clone(), "db": d.clone() }))
                        .collect::<Vec<_>>(),
                    "authenticatedUserRoles": [],
                },
            })),
            "createUser" => {
                let user = coll_arg(cmd, "createUser")?;
                let pwd = cmd
                    .get_str("pwd")
                    .map_err(|_| CommandError::bad_value("createUser needs pwd"))?;
                if self.users.exists(db, user) {
                    return Err(CommandError::new(
                        51003,
                        "Location51003",
                        format!("User \"{user}@{db}\" already exists"),
                    ));
                }
                self.users.add(db, user, pwd);
                Ok(ok(Document::new()))
            }
            "dropUser" => {
                let user = coll_arg(cmd, "dropUser")?;
                if self.users.remove(db, user) {
                    Ok(ok(Document::new()))
                } else {
                    Err(CommandError::new(
                        11,
                        "UserNotFound",
                        format!("User '{user}@{db}' not found"),
                    ))
                }
            }
            "configureFailPoint" => {
                if db != "admin" {
                    return Err(CommandError::new(
                        codes::UNAUTHORIZED,
                        "Unauthorized",
                        "configureFailPoint may only be run against the admin database.",
                    ));
                }
                self.fail_points.configure(cmd)
            }
            "insert" => self.insert(db, cmd),
            "find" => self.find(db, cmd),
            "getMore" => self.get_more(db, cmd),
            "killCursors" => self.kill_cursors(db, cmd),
            "update" => self.update(db, cmd),
            "delete" => self.delete(db, cmd),
            "findAndModify" | "findandmodify" => self.find_and_modify(db, cmd),
            "count" => self.count(db, cmd),
            "distinct" => self.distinct(db, cmd),
            "aggregate" => self.aggregate(db, cmd),
            "listDatabases" => self.list_databases(db, cmd),
            "listCollections" => self.list_collections(db, cmd),
            "listIndexes" => self.list_indexes(db, cmd),
            "createIndexes" => self.create_indexes(db, cmd),
            "dropIndexes" => self.drop_indexes(db, cmd),
            "create" => {
                let coll = coll_arg(cmd, "create")?;
                self.store.create(db, coll)?;
                Ok(ok(Document::new()))
            }
            "drop" => {
                let coll = coll_arg(cmd, "drop")?;
                let n = self.store.drop_collection(db, coll).unwrap_or(0);
                Ok(ok(doc! {
                    "nIndexesWas": i32::try_from(n).unwrap_or(0),
                    "ns": format!("{db}.{coll}"),
                }))
            }
            "dropDatabase" => {
                self.store.drop_database(db);
                Ok(ok(doc! { "dropped": db }))
            }
            "replSetStepDown" => {
                let new = self.topology.step_down(self.member)?;
                tracing::debug!(old = self.member, new, "replSetStepDown");
                Ok(ok(Document::new()))
            }
            "replSetGetStatus" => self.repl_set_get_status(),
            "serverStatus" => Ok(ok(doc! {
                "host": self.address.lock().clone(),
                "version": self.opts.version.clone(),
                "process": "mongo-testkit",
                "localTime": now(),
            })),
            "getParameter" => Ok(ok(
                doc! { "featureCompatibilityVersion": { "version": "7.0" } },
            )),
            "whatsmyuri" => Ok(ok(doc! { "you": "127.0.0.1:0" })),
            "" => Err(CommandError::failed_to_parse("empty command document")),
            other => Err(CommandError::new(
                codes::COMMAND_NOT_FOUND,
                "CommandNotFound",
                format!("no such command: '{other}'"),
            )),
        }
    }

    fn build_info(&self) -> Document {
        let parts: Vec<Bson> = self
            .opts
            .version
            .split('.')
            .map(|p| Bson::Int32(p.parse().unwrap_or(0)))
            .chain(std::iter::once(Bson::Int32(0)))
            .take(4)
            .collect();
        ok(doc! {
            "version": self.opts.version.clone(),
            "gitVersion": "mongo-testkit",
            "versionArray": parts,
            "bits": 64,
            "debug": false,
            "maxBsonObjectSize": MAX_BSON_OBJECT_SIZE,
            "storageEngines": ["memory"],
        })
    }

    /// The hello / isMaster reply.
    fn hello(&self, _db: &str, cmd: &Document, conn: &mut ConnState) -> CmdResult<Document> {
        let name = name_of(cmd);
        if let Some(client) = opt_doc(cmd, "client")? {
            if conn.handshake_done {
                return Err(CommandError::new(
                    186,
                    "ClientMetadataCannotBeMutated",
                    "The client metadata document may only be sent in the first hello",
                ));
            }
            conn.app_name = client
                .get_document("application")
                .ok()
                .and_then(|a| a.get_str("name").ok())
                .map(String::from);
        }
        let role = self.topology.role(self.member);
        let writable = role != Role::Secondary;
        let mut r = Document::new();
        if cmd.get("helloOk").is_some_and(query::truthy) {
            r.insert("helloOk", true);
        }
        if name == "hello" {
            r.insert("isWritablePrimary", writable);
        } else {
            r.insert("ismaster", writable);
        }
        r.insert("topologyVersion", self.topology_version());
        if let Some(rs) = self.topology.rs() {
            r.insert("setName", rs.name.clone());
            r.insert("setVersion", rs.set_version);
            r.insert("secondary", role == Role::Secondary);
            r.insert(
                "hosts",
                rs.hosts
                    .iter()
                    .cloned()
                    .map(Bson::String)
                    .collect::<Vec<_>>(),
            );
            if let Some(p) = rs.primary.and_then(|p| rs.hosts.get(p)) {
                r.insert("primary", p.clone());
            }
            if let Some(me) = rs.hosts.get(self.member) {
                r.insert("me", me.clone());
            }
            if role == Role::Primary {
                r.insert("electionId", rs.election_id());
            }
            let ts = bson::Timestamp {
                time: u32::try_from(now().timestamp_millis() / 1000).unwrap_or(0),
                increment: 1,
            };
            r.insert(
                "lastWrite",
                doc! {
                    "opTime": { "ts": ts, "t": rs.term },
                    "lastWriteDate": now(),
                    "majorityOpTime": { "ts": ts, "t": rs.term },
                    "majorityWriteDate": now(),
                },
            );
        }
        if self.opts.load_balancer {
            r.insert("msg", "isdbgrid");
            if cmd.get("loadBalanced").is_some_and(query::truthy) {
                r.insert("serviceId", *self.service_id.lock());
            }
        }
        r.insert("maxBsonObjectSize", MAX_BSON_OBJECT_SIZE);
        r.insert(
            "maxMessageSizeBytes",
            i32::try_from(self.opts.max_message_size).unwrap_or(i32::MAX),
        );
        r.insert("maxWriteBatchSize", MAX_WRITE_BATCH_SIZE);
        r.insert("localTime", now());
        r.insert("logicalSessionTimeoutMinutes", 30);
        r.insert("connectionId", conn.id);
        r.insert("minWireVersion", 0);
        r.insert("maxWireVersion", self.opts.max_wire_version);
        r.insert("readOnly", false);
        if let Some(Bson::Array(requested)) = cmd.get("compression") {
            let chosen: Vec<String> = requested
                .iter()
                .filter_map(|c| c.as_str())
                .filter(|c| self.opts.compressors.iter().any(|s| s == c))
                .map(String::from)
                .collect();
            if !conn.handshake_done {
                conn.compressors.clone_from(&chosen);
            }
            r.insert(
                "compression",
                chosen.into_iter().map(Bson::String).collect::<Vec<_>>(),
            );
        }
        if let Ok(who) = cmd.get_str("saslSupportedMechs") {
            if let Some((db, user)) = who.split_once('.') {
                if self.users.exists(db, user) {
                    r.insert("saslSupportedMechs", vec!["SCRAM-SHA-1", "SCRAM-SHA-256"]);
                }
            }
        }
        if let Some(spec) = opt_doc(cmd, "speculativeAuthenticate")? {
            let db = spec.get_str("db").unwrap_or("admin").to_string();
            // A failed speculative attempt is not an error: the reply just omits the field
            // and the client falls back to a full conversation.
            let attempt = if spec.contains_key("authenticate") {
                self.authenticate(&db, spec, conn)
            } else {
                self.sasl_start(&db, spec, conn)
            };
            if let Ok(reply) = attempt {
                let mut reply = reply;
                reply.remove("ok");
                r.insert("speculativeAuthenticate", reply);
            }
        }
        conn.handshake_done = true;
        Ok(ok(r))
    }

    /// `authenticate` with MONGODB-X509 on `$external`: the user is the subject of the TLS
    /// client certificate (verified against the listener's client CA during the handshake).
    /// Any verified certificate is accepted; no `$external` user needs to exist.
    fn authenticate(&self, db: &str, cmd: &Document, conn: &mut ConnState) -> CmdResult<Document> {
        let fail = |msg: &str| {
            CommandError::new(codes::AUTHENTICATION_FAILED, "AuthenticationFailed", msg)
        };
        let mechanism = cmd.get_str("mechanism").unwrap_or("");
        if mechanism != "MONGODB-X509" {
            return Err(fail(
                "the testkit's authenticate command supports MONGODB-X509 only",
            ));
        }
        if db != "$external" {
            return Err(fail(
                "X.509 authentication must always use the $external database",
            ));
        }
        let Some(subject) = conn.peer_subject.clone() else {
            return Err(fail("No verified subject name available from client"));
        };
        if let Ok(user) = cmd.get_str("user") {
            if user != subject {
                return Err(fail(
                    "There is no x.509 client certificate matching the user",
                ));
            }
        }
        let entry = ("$external".to_string(), subject.clone());
        if !conn.authenticated.contains(&entry) {
            conn.authenticated.push(entry);
        }
        Ok(ok(doc! { "dbname": "$external", "user": subject }))
    }

    fn sasl_start(&self, db: &str, cmd: &Document, conn: &mut ConnState) -> CmdResult<Document> {
        let mech_name = cmd.get_str("mechanism").map_err(|_| {
            CommandError::new(codes::NO_SUCH_KEY, "NoSuchKey", "no mechanism specified")
        })?;
        let mech = Mechanism::parse(mech_name).ok_or_else(|| {
            CommandError::new(
                codes::BAD_VALUE,
                "MechanismUnavailable",
                format!("Received authentication for mechanism {mech_name} which is not enabled"),
            )
        })?;
        let payload = payload_bytes(cmd)?;
        let skip = cmd
            .get_document("options")
            .ok()
            .and_then(|o| o.get("skipEmptyExchange"))
            .is_some_and(query::truthy);
        let (conv, step) =
            ScramServer::start(&self.users, mech, db, &payload).map_err(sasl_error)?;
        let id = conn.next_conversation;
        conn.next_conversation = conn.next_conversation.wrapping_add(1);
        conn.sasl = Some((id, conv, skip));
        Ok(ok(doc! {
            "conversationId": id,
            "done": step.done,
            "payload": binary(step.payload),
        }))
    }

    fn sasl_continue(&self, cmd: &Document, conn: &mut ConnState) -> CmdResult<Document> {
        let id = match cmd.get("conversationId") {
            Some(Bson::Int32(v)) => *v,
            Some(Bson::Int64(v)) => i32::try_from(*v).unwrap_or(-1),
            _ => {
                return Err(CommandError::new(
                    codes::NO_SUCH_KEY,
                    "NoSuchKey",
                    "missing conversationId",
                ));
            }
        };
        let payload = payload_bytes(cmd)?;
        let Some((cid, conv, skip)) = conn.sasl.as_mut() else {
            return Err(CommandError::new(
                codes::PROTOCOL_ERROR,
                "ProtocolError",
                "No SASL session state found",
            ));
        };
        if *cid != id {
            return Err(CommandError::new(
                codes::PROTOCOL_ERROR,
                "ProtocolError",
                "Invalid conversation id",
            ));
        }
        let step = match conv.step(&payload, *skip) {
            Ok(s) => s,
            Err(e) => {
                conn.sasl = None;
                return Err(sasl_error(e));
            }
        };
        if conv.is_done() {
            let pair = (conv.db().to_string(), conv.user().to_string());
            tracing::debug!(user = %pair.1, db = %pair.0, mech = ?conv.mechanism(), "authenticated");
            if !conn.authenticated.contains(&pair) {
                conn.authenticated.push(pair);
            }
            conn.sasl = None;
        }
        Ok(ok(doc! {
            "conversationId": id,
            "done": step.done,
            "payload": binary(step.payload),
        }))
    }

    fn repl_set_get_status(&self) -> CmdResult<Document> {
        let rs = self.topology.rs().ok_or_else(|| {
            CommandError::new(76, "NoReplicationEnabled", "not running with --replSet")
        })?;
        let members: Vec<Bson> = rs
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let primary = rs.primary == Some(i);
                let up = rs.running.get(i).copied().unwrap_or(false);
                Bson::Document(doc! {
                    "_id": i32::try_from(i).unwrap_or(0),
                    "name": h.clone(),
                    "health": if up { 1.0 } else { 0.0 },
                    "stateStr": if !up { "(not reachable/healthy)" } else if primary { "PRIMARY" } else { "SECONDARY" },
                    "self": i == self.member,
                })
            })
            .collect();
        Ok(ok(
            doc! { "set": rs.name, "members": members, "term": rs.term },
        ))
    }

    // ----- CRUD -----

    fn insert(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let coll = coll_arg(cmd, "insert")?;
        let docs = array_of_docs(cmd, "documents")?;
        let ordered = cmd.get("ordered").is_none_or(query::truthy);
        let ns = format!("{db}.{coll}");
        let (n, errors) = self.store.with_coll(db, coll, true, |c| {
            let mut n = 0i32;
            let mut errors = Vec::new();
            if let Some(c) = c {
                for (i, d) in docs.into_iter().enumerate() {
                    match c.insert(&ns, d.clone()) {
                        Ok(_) => n += 1,
                        Err(e) => {
                            errors.push(write_error(i, &e, d.get("_id")));
                            if ordered {
                                break;
                            }
                        }
                    }
                }
            }
            (n, errors)
        });
        let mut r = doc! { "n": n };
        if !errors.is_empty() {
            r.insert("writeErrors", errors);
        }
        Ok(ok(r))
    }

    fn filtered(&self, db: &str, coll: &str, filter: &Document) -> CmdResult<Vec<Document>> {
        self.store.with_coll(db, coll, false, |c| match c {
            None => Ok(Vec::new()),
            Some(c) => {
                let mut out = Vec::new();
                for d in &c.docs {
                    if query::matches(d, filter)? {
                        out.push(d.clone());
                    }
                }
                Ok(out)
            }
        })
    }

    fn find(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let coll = coll_arg(cmd, "find")?;
        let empty = Document::new();
        let filter = opt_doc(cmd, "filter")?.unwrap_or(&empty);
        let mut docs = self.filtered(db, coll, filter)?;
        if let Some(sort) = opt_doc(cmd, "sort")? {
            query::sort_docs(&mut docs, sort)?;
        }
        let skip = non_negative(cmd, "skip")?.unwrap_or(0);
        let limit = opt_count(cmd, "limit")?;
        let mut single = cmd.get("singleBatch").is_some_and(query::truthy);
        let limit = match limit {
            Some(l) if l < 0 => {
                single = true;
                usize::try_from(l.unsigned_abs()).ok()
            }
            Some(0) | None => None,
            Some(l) => usize::try_from(l).ok(),
        };
        let mut docs: Vec<Document> = docs.into_iter().skip(skip).collect();
        if let Some(l) = limit {
            docs.truncate(l);
        }
        if let Some(p) = opt_doc(cmd, "projection")? {
            docs = docs
                .iter()
                .map(|d| query::project(d, p))
                .collect::<CmdResult<_>>()?;
        }
        let batch = non_negative(cmd, "batchSize")?.unwrap_or(DEFAULT_BATCH);
        Ok(self.open_cursor(format!("{db}.{coll}"), docs, batch, single))
    }

    /// Builds a cursor reply; keeps the rest of `docs` as an open cursor when needed.
    fn open_cursor(&self, ns: String, docs: Vec<Document>, batch: usize, single: bool) -> Document {
        let mut rest: VecDeque<Document> = docs.into();
        let first = take_batch(&mut rest, batch);
        let id = if rest.is_empty() || single {
            0
        } else {
            let id = loop {
                let id = rand::random::<i64>() & i64::MAX;
                if id != 0 && !self.cursors.lock().contains_key(&id) {
                    break id;
                }
            };
            self.cursors.lock().insert(
                id,
                Cursor {
                    ns: ns.clone(),
                    docs: rest,
                },
            );
            id
        };
        ok(doc! { "cursor": { "firstBatch": first, "id": id, "ns": ns } })
    }

    fn get_more(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let id = match cmd.get("getMore") {
            Some(Bson::Int64(v)) => *v,
            Some(Bson::Int32(v)) => i64::from(*v),
            _ => {
                return Err(CommandError::type_mismatch(
                    "getMore cursor id must be a long",
                ));
            }
        };
        let coll = coll_arg(cmd, "collection")?;
        let ns = format!("{db}.{coll}");
        let batch = non_negative(cmd, "batchSize")?.unwrap_or(0);
        let mut cursors = self.cursors.lock();
        let Some(cursor) = cursors.get_mut(&id) else {
            return Err(CommandError::new(
                codes::CURSOR_NOT_FOUND,
                "CursorNotFound",
                format!("cursor id {id} not found"),
            ));
        };
        if cursor.ns != ns {
            return Err(CommandError::new(
                codes::UNAUTHORIZED,
                "Unauthorized",
                format!(
                    "Requested getMore on namespace '{ns}', but cursor belongs to a different namespace {}",
                    cursor.ns
                ),
            ));
        }
        let next = take_batch(
            &mut cursor.docs,
            if batch == 0 { usize::MAX } else { batch },
        );
        let out_id = if cursor.docs.is_empty() {
            cursors.remove(&id);
            0
        } else {
            id
        };
        Ok(ok(
            doc! { "cursor": { "nextBatch": next, "id": out_id, "ns": ns } },
        ))
    }

    fn kill_cursors(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let coll = coll_arg(cmd, "killCursors")?;
        let ns = format!("{db}.{coll}");
        let Some(Bson::Array(ids)) = cmd.get("cursors") else {
            return Err(CommandError::failed_to_parse(
                "killCursors needs a 'cursors' array",
            ));
        };
        let mut killed = Vec::new();
        let mut not_found = Vec::new();
        let mut cursors = self.cursors.lock();
        for raw in ids {
            let id = match raw {
                Bson::Int64(v) => *v,
                Bson::Int32(v) => i64::from(*v),
                _ => return Err(CommandError::type_mismatch("cursor ids must be longs")),
            };
            if cursors.get(&id).is_some_and(|c| c.ns == ns) {
                cursors.remove(&id);
                killed.push(Bson::Int64(id));
            } else {
                not_found.push(Bson::Int64(id));
            }
        }
        Ok(ok(doc! {
            "cursorsKilled": killed,
            "cursorsNotFound": not_found,
            "cursorsAlive": [],
            "cursorsUnknown": [],
        }))
    }

    fn update(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let coll = coll_arg(cmd, "update")?;
        let updates = array_of_docs(cmd, "updates")?;
        let ordered = cmd.get("ordered").is_none_or(query::truthy);
        let ns = format!("{db}.{coll}");
        let mut n = 0i64;
        let mut modified = 0i64;
        let mut upserted = Vec::new();
        let mut errors = Vec::new();
        for (i, u) in updates.into_iter().enumerate() {
            match self.update_one_spec(db, coll, &ns, u) {
                Ok(res) => {
                    n += res.matched;
                    modified += res.modified;
                    if let Some(id) = res.upserted {
                        n += 1;
                        upserted.push(Bson::Document(
                            doc! { "index": i32::try_from(i).unwrap_or(i32::MAX), "_id": id },
                        ));
                    }
                }
                Err(e) => {
                    errors.push(write_error(i, &e, None));
                    if ordered {
                        break;
                    }
                }
            }
        }
        let mut r = doc! { "n": i32::try_from(n).unwrap_or(i32::MAX), "nModified": i32::try_from(modified).unwrap_or(i32::MAX) };
        if !upserted.is_empty() {
            r.insert("upserted", upserted);
        }
        if !errors.is_empty() {
            r.insert("writeErrors", errors);
        }
        Ok(ok(r))
    }

    fn update_one_spec(
        &self,
        db: &str,
        coll: &str,
        ns: &str,
        spec: &Document,
    ) -> CmdResult<UpdateResult> {
        let empty = Document::new();
        let filter = opt_doc(spec, "q")?.unwrap_or(&empty);
        let multi = spec.get("multi").is_some_and(query::truthy);
        let upsert = spec.get("upsert").is_some_and(query::truthy);
        let update = match spec.get("u") {
            Some(Bson::Document(d)) => d,
            Some(Bson::Array(_)) => {
                return Err(CommandError::failed_to_parse(
                    "pipeline-style updates are not supported by the testkit",
                ));
            }
            _ => return Err(CommandError::failed_to_parse("update needs 'u'")),
        };
        if multi && !query::is_operator_update(update) {
            return Err(CommandError::failed_to_parse(
                "multi update is not supported for replacement-style update",
            ));
        }
        let sort = opt_doc(spec, "sort")?.cloned();
        self.store.with_coll(db, coll, true, |c| {
            let Some(c) = c else {
                return Ok(UpdateResult::default());
            };
            let mut positions = c.matching(filter)?;
            if let Some(sort) = sort.filter(|_| !multi && positions.len() > 1) {
                let mut pairs: Vec<(usize, Document)> = positions
                    .iter()
                    .filter_map(|&p| c.docs.get(p).map(|d| (p, d.clone())))
                    .collect();
                let mut docs: Vec<Document> = pairs.iter().map(|(_, d)| d.clone()).collect();
                query::sort_docs(&mut docs, &sort)?;
                if let Some(first) = docs.first() {
                    pairs.retain(|(_, d)| d == first);
                }
                positions = pairs.into_iter().map(|(p, _)| p).take(1).collect();
            }
            if !multi {
                positions.truncate(1);
            }
            if positions.is_empty() {
                if !upsert {
                    return Ok(UpdateResult::default());
                }
                let mut d = query::upsert_seed(filter)?;
                query::apply_update(&mut d, update, true)?;
                let id = c.insert(ns, d)?;
                return Ok(UpdateResult {
                    upserted: Some(id),
                    ..UpdateResult::default()
                });
            }
            let mut res = UpdateResult::default();
            for p in positions {
                let Some(mut d) = c.docs.get(p).cloned() else {
                    continue;
                };
                res.matched += 1;
                if query::apply_update(&mut d, update, false)? {
                    res.modified += 1;
                    c.replace_at(p, d);
                }
            }
            Ok(res)
        })
    }

    fn delete(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let coll = coll_arg(cmd, "delete")?;
        let deletes = array_of_docs(cmd, "deletes")?;
        let ordered = cmd.get("ordered").is_none_or(query::truthy);
        let mut n = 0usize;
        let mut errors = Vec::new();
        for (i, spec) in deletes.into_iter().enumerate() {
            let res: CmdResult<usize> = (|| {
                let empty = Document::new();
                let filter = opt_doc(spec, "q")?.unwrap_or(&empty);
                let limit = opt_count(spec, "limit")?.unwrap_or(0);
                if limit != 0 && limit != 1 {
                    return Err(CommandError::failed_to_parse(
                        "The limit field in delete objects must be 0 or 1",
                    ));
                }
                self.store.with_coll(db, coll, false, |c| {
                    let Some(c) = c else { return Ok(0) };
                    let mut pos = c.matching(filter)?;
                    if limit == 1 {
                        pos.truncate(1);
                    }
                    c.remove_positions(&pos);
                    Ok(pos.len())
                })
            })();
            match res {
                Ok(k) => n += k,
                Err(e) => {
                    errors.push(write_error(i, &e, None));
                    if ordered {
                        break;
                    }
                }
            }
        }
        let mut r = doc! { "n": i32::try_from(n).unwrap_or(i32::MAX) };
        if !errors.is_empty() {
            r.insert("writeErrors", errors);
        }
        Ok(ok(r))
    }

    fn find_and_modify(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let coll = coll_arg(cmd, name_of(cmd))?;
        let ns = format!("{db}.{coll}");
        let empty = Document::new();
        let filter = opt_doc(cmd, "query")?.unwrap_or(&empty).clone();
        let sort = opt_doc(cmd, "sort")?.cloned();
        let remove = cmd.get("remove").is_some_and(query::truthy);
        let want_new = cmd.get("new").is_some_and(query::truthy);
        let upsert = cmd.get("upsert").is_some_and(query::truthy);
        let fields = opt_doc(cmd, "fields")?.cloned();
        let update = opt_doc(cmd, "update")?.cloned();
        if !remove && update.is_none() {
            return Err(CommandError::failed_to_parse(
                "Either an update or remove=true must be specified",
            ));
        }
        let (value, last_error) = self.store.with_coll(
            db,
            coll,
            true,
            |c| -> CmdResult<(Option<Document>, Document)> {
                let Some(c) = c else {
                    return Ok((None, Document::new()));
                };
                let positions = c.matching(&filter)?;
                let mut candidates: Vec<(usize, Document)> = positions
                    .iter()
                    .filter_map(|&p| c.docs.get(p).map(|d| (p, d.clone())))
                    .collect();
                if let Some(sort) = &sort {
                    let mut docs: Vec<Document> =
                        candidates.iter().map(|(_, d)| d.clone()).collect();
                    query::sort_docs(&mut docs, sort)?;
                    if let Some(first) = docs.into_iter().next() {
                        candidates.retain(|(_, d)| *d == first);
                    }
                }
                let target = candidates.into_iter().next();
                match (target, remove) {
                    (Some((p, d)), true) => {
                        c.remove_positions(&[p]);
                        Ok((Some(d), doc! { "n": 1 }))
                    }
                    (None, true) => Ok((None, doc! { "n": 0 })),
                    (Some((p, d)), false) => {
                        let mut new = d.clone();
                        let update = update
                            .as_ref()
                            .ok_or_else(|| CommandError::failed_to_parse("missing update"))?;
                        query::apply_update(&mut new, update, false)?;
                        c.replace_at(p, new.clone());
                        Ok((
                            Some(if want_new { new } else { d }),
                            doc! { "n": 1, "updatedExisting": true },
                        ))
                    }
                    (None, false) if upsert => {
                        let update = update
                            .as_ref()
                            .ok_or_else(|| CommandError::failed_to_parse("missing update"))?;
                        let mut d = query::upsert_seed(&filter)?;
                        query::apply_update(&mut d, update, true)?;
                        let id = c.insert(&ns, d.clone())?;
                        let stored = c.docs.last().cloned().unwrap_or(d);
                        Ok((
                            if want_new { Some(stored) } else { None },
                            doc! { "n": 1, "updatedExisting": false, "upserted": id },
                        ))
                    }
                    (None, false) => Ok((None, doc! { "n": 0, "updatedExisting": false })),
                }
            },
        )?;
        let value = match (value, fields) {
            (Some(v), Some(f)) => Bson::Document(query::project(&v, &f)?),
            (Some(v), None) => Bson::Document(v),
            (None, _) => Bson::Null,
        };
        Ok(ok(doc! { "lastErrorObject": last_error, "value": value }))
    }

    fn count(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let coll = coll_arg(cmd, "count")?;
        let empty = Document::new();
        let filter = opt_doc(cmd, "query")?.unwrap_or(&empty);
        let mut n = self.filtered(db, coll, filter)?.len();
        let skip = non_negative(cmd, "skip")?.unwrap_or(0);
        n = n.saturating_sub(skip);
        if let Some(l) = opt_count(cmd, "limit")? {
            if l != 0 {
                n = n.min(usize::try_from(l.unsigned_abs()).unwrap_or(usize::MAX));
            }
        }
        Ok(ok(doc! { "n": i32::try_from(n).unwrap_or(i32::MAX) }))
    }

    fn distinct(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let coll = coll_arg(cmd, "distinct")?;
        let key = cmd
            .get_str("key")
            .map_err(|_| CommandError::failed_to_parse("distinct needs a key"))?;
        let empty = Document::new();
        let filter = opt_doc(cmd, "query")?.unwrap_or(&empty);
        let mut values: Vec<Bson> = Vec::new();
        for d in self.filtered(db, coll, filter)? {
            for v in query::lookup(&d, key) {
                let items: Vec<&Bson> = match v {
                    Bson::Array(a) => a.iter().collect(),
                    other => vec![other],
                };
                for it in items {
                    if !values.iter().any(|e| query::values_equal(e, it)) {
                        values.push(it.clone());
                    }
                }
            }
        }
        values.sort_by(query::compare);
        Ok(ok(doc! { "values": values }))
    }

    fn aggregate(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let Some(Bson::Array(pipeline)) = cmd.get("pipeline") else {
            return Err(CommandError::type_mismatch("'pipeline' must be an array"));
        };
        let (docs, ns) = match cmd.get("aggregate") {
            Some(Bson::String(coll)) => (
                self.filtered(db, coll, &Document::new())?,
                format!("{db}.{coll}"),
            ),
            Some(Bson::Int32(1)) | Some(Bson::Int64(1)) => {
                (Vec::new(), format!("{db}.$cmd.aggregate"))
            }
            _ => {
                return Err(CommandError::type_mismatch(
                    "aggregate needs a collection name or 1",
                ));
            }
        };
        let docs = query::run_pipeline(docs, pipeline)?;
        let batch = match opt_doc(cmd, "cursor")? {
            Some(c) => non_negative(c, "batchSize")?.unwrap_or(DEFAULT_BATCH),
            None => {
                return Err(CommandError::failed_to_parse(
                    "The 'cursor' option is required, except for aggregate with the explain argument",
                ));
            }
        };
        Ok(self.open_cursor(ns, docs, batch, false))
    }

    fn list_databases(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        if db != "admin" {
            return Err(CommandError::new(
                codes::UNAUTHORIZED,
                "Unauthorized",
                "listDatabases may only be run against the admin database.",
            ));
        }
        let name_only = cmd.get("nameOnly").is_some_and(query::truthy);
        let filter = opt_doc(cmd, "filter")?.cloned();
        let mut total = 0i64;
        let mut out = Vec::new();
        for (name, size) in self.store.database_sizes() {
            let entry = if name_only {
                doc! { "name": name }
            } else {
                doc! { "name": name, "sizeOnDisk": size, "empty": size == 0 }
            };
            if let Some(f) = &filter {
                if !query::matches(&entry, f)? {
                    continue;
                }
            }
            total += size;
            out.push(Bson::Document(entry));
        }
        let mut r = doc! { "databases": out };
        if !name_only {
            r.insert("totalSize", total);
        }
        Ok(ok(r))
    }

    fn list_collections(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let name_only = cmd.get("nameOnly").is_some_and(query::truthy);
        let filter = opt_doc(cmd, "filter")?.cloned();
        let mut out = Vec::new();
        for name in self.store.collection_names(db) {
            let entry = if name_only {
                doc! { "name": name, "type": "collection" }
            } else {
                doc! {
                    "name": name,
                    "type": "collection",
                    "options": {},
                    "info": { "readOnly": false },
                    "idIndex": { "v": 2, "key": { "_id": 1 }, "name": "_id_" },
                }
            };
            if let Some(f) = &filter {
                if !query::matches(&entry, f)? {
                    continue;
                }
            }
            out.push(entry);
        }
        let batch = opt_doc(cmd, "cursor")?
            .map(|c| non_negative(c, "batchSize"))
            .transpose()?
            .flatten()
            .unwrap_or(usize::MAX);
        Ok(self.open_cursor(format!("{db}.$cmd.listCollections"), out, batch, false))
    }

    fn list_indexes(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let coll = coll_arg(cmd, "listIndexes")?;
        let indexes = self
            .store
            .with_coll(db, coll, false, |c| c.map(|c| c.indexes.clone()))
            .ok_or_else(|| {
                CommandError::new(
                    codes::NAMESPACE_NOT_FOUND,
                    "NamespaceNotFound",
                    format!("ns does not exist: {db}.{coll}"),
                )
            })?;
        Ok(self.open_cursor(format!("{db}.{coll}"), indexes, usize::MAX, false))
    }

    fn create_indexes(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let coll = coll_arg(cmd, "createIndexes")?;
        let specs = array_of_docs(cmd, "indexes")?;
        let ns = format!("{db}.{coll}");
        let (before, after) = self.store.with_coll(db, coll, true, |c| {
            let Some(c) = c else { return (0, 0) };
            let before = c.indexes.len();
            for s in specs {
                let name = s.get_str("name").unwrap_or_default();
                if !c
                    .indexes
                    .iter()
                    .any(|i| i.get_str("name").ok() == Some(name))
                {
                    let mut spec = s.clone();
                    spec.insert("v", 2);
                    spec.insert("ns", ns.clone());
                    c.indexes.push(spec);
                }
            }
            (before, c.indexes.len())
        });
        Ok(ok(doc! {
            "numIndexesBefore": i32::try_from(before).unwrap_or(0),
            "numIndexesAfter": i32::try_from(after).unwrap_or(0),
            "createdCollectionAutomatically": before == 0,
        }))
    }

    fn drop_indexes(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let coll = coll_arg(cmd, "dropIndexes")?;
        let which = cmd.get("index").cloned();
        let n = self.store.with_coll(db, coll, false, |c| {
            let Some(c) = c else {
                return Err(CommandError::new(
                    codes::NAMESPACE_NOT_FOUND,
                    "NamespaceNotFound",
                    format!("ns not found {db}.{coll}"),
                ));
            };
            let n = c.indexes.len();
            match which {
                Some(Bson::String(s)) if s == "*" => {
                    c.indexes.retain(|i| i.get_str("name").ok() == Some("_id_"))
                }
                Some(Bson::String(s)) => c
                    .indexes
                    .retain(|i| i.get_str("name").ok() != Some(s.as_str())),
                _ => {}
            }
            Ok(n)
        })?;
        Ok(ok(doc! { "nIndexesWas": i32::try_from(n).unwrap_or(0) }))
    }
}

fn sasl_error(e: ScramFailure) -> CommandError {
    match e {
        ScramFailure::AuthFailed => auth_failed(),
        ScramFailure::Protocol(msg) => {
            tracing::debug!(%msg, "SASL protocol error");
            auth_failed()
        }
    }
}

#[derive(Debug, Default)]
struct UpdateResult {
    matched: i64,
    modified: i64,
    upserted: Option<Bson>,
}

fn write_error(index: usize, e: &CommandError, id: Option<&Bson>) -> Bson {
    let mut d = doc! {
        "index": i32::try_from(index).unwrap_or(i32::MAX),
        "code": e.code,
        "errmsg": e.errmsg.clone(),
    };
    if e.code == codes::DUPLICATE_KEY {
        if let Some(id) = id {
            d.insert("keyPattern", doc! { "_id": 1 });
            d.insert("keyValue", doc! { "_id": id.clone() });
        }
    }
    Bson::Document(d)
}

/// Takes up to `n` documents, also stopping before the batch would pass 16 MiB.
fn take_batch(docs: &mut VecDeque<Document>, n: usize) -> Vec<Bson> {
    let mut out = Vec::new();
    let mut size = 0usize;
    let cap = usize::try_from(MAX_BSON_OBJECT_SIZE).unwrap_or(usize::MAX) - 16 * 1024;
    while out.len() < n {
        let Some(front) = docs.front() else { break };
        let len = front.to_vec().map(|v| v.len()).unwrap_or(0);
        if !out.is_empty() && size + len > cap {
            break;
        }
        size += len;
        if let Some(d) = docs.pop_front() {
            out.push(Bson::Document(d));
        }
    }
    out
}
