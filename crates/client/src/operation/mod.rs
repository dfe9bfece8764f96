//! Operations as data: every command the client sends to run an operation (ping, CRUD,
//! getMore, killCursors, endSessions, aggregate …) is a value that builds its command for the
//! selected connection and parses its reply. Sans-I/O: nothing here touches a socket, a pool,
//! a clock or a random number generator (`cargo xtask tidy` and clippy's `disallowed-methods`
//! keep it so).
//!
//! An operation declares; the executor (`client::executor`) decides. An operation says what
//! it is ([`OpKind`]: a read, a write or a plain command), whether it may be retried, whether
//! it takes a read or write concern, and whether its output keeps the connection pinned; the
//! executor selects the server, checks a connection out, adds the envelope (session fields,
//! `$readPreference`, concerns: [`envelope`]), runs the round trip, judges errors and retries.
//! An operation that needs more round trips (a batched insert) says so with [`Step::More`] and
//! the executor sends what it builds next; an operation never holds a connection.
//!
//! Connection establishment (hello, authentication) and the monitors' hellos are not
//! operations: they belong to the handshake (`conn::handshake`, `mongo-auth`) and to SDAM.

mod admin;
mod change_stream;
mod client_bulk;
mod command;
mod count;
mod cursor;
mod find_and_modify;
mod index;
mod write;

use bson::{Bson, Document};
use mongo_events::{ServerAddress, ServerType, ServiceId, TopologyType};
use mongo_sdam::{ReadPreference, TopologyDescription};
use mongo_wire::{DocumentSequence, SizeLimits};

pub(crate) use admin::{
    create_collection, drop_database, list_databases, modify_collection, rename_collection,
};
pub(crate) use change_stream::{
    OpenChangeStream, ResumeState, StreamStart, WatchTarget,
    is_resumable as is_resumable_change_stream_error,
};
pub(crate) use client_bulk::{ClientBulkWrite, Tally, prepare as prepare_client_bulk};
pub(crate) use command::{DropCollection, EndSessions, RunCommand};
pub(crate) use count::{
    count_documents_pipeline, distinct, estimated_count, legacy_count, map_reduce,
};
pub(crate) use cursor::{
    Batch, CursorReply, GetMore, GetMoreOptions, KillCursors, OpenCursor, OpensCursor,
};
pub(crate) use find_and_modify::FindAndModify;
pub(crate) use index::{create_indexes, drop_indexes, index_names};
pub(crate) use write::{
    DeleteStatement, UpdateStatement, WriteBatches, WriteCounts, WriteKind, check_replacement,
    check_update, with_id,
};

use crate::error::{BsonExt, Error, Result};

/// What kind of operation this is: decides the servers it may run on, its retry rules and
/// which concerns the executor adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpKind {
    /// A read: any server the read preference allows; retryable reads rules; read concern.
    Read,
    /// A write: the primary; retryable writes rules; write concern.
    Write,
    /// A command the user wrote: the primary unless a read preference is given; retried only
    /// on overload errors (client backpressure spec); no concern added.
    Command,
}

/// The connection an operation's command goes to, as its handshake described it (the CMAP
/// spec's connection description): what `build` and `handle_reply` may look at.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ConnectionDescription {
    /// The server.
    pub(crate) address: ServerAddress,
    /// The server's type, judged from the handshake's hello reply by SDAM's rules.
    pub(crate) server_type: ServerType,
    /// The server's maxWireVersion.
    pub(crate) max_wire_version: i32,
    /// maxBsonObjectSize, maxMessageSizeBytes, maxWriteBatchSize.
    pub(crate) limits: SizeLimits,
    /// The load balancer's backend (load-balanced mode).
    pub(crate) service_id: Option<ServiceId>,
    /// logicalSessionTimeoutMinutes; `None`: the server has no sessions.
    pub(crate) logical_session_timeout_minutes: Option<i64>,
}

/// One command to send: the body an operation built, before the executor's envelope.
#[derive(Clone, Debug)]
pub(crate) struct Command {
    /// The database it runs on (`$db`).
    pub(crate) db: String,
    /// The body, without `$db`, session or concern fields.
    pub(crate) body: Document,
    /// OP_MSG kind-1 document sequences (`documents`, `updates`, `deletes`; `ops` and
    /// `nsInfo`).
    pub(crate) sequences: Vec<DocumentSequence>,
    /// False for an unacknowledged write: sent with `moreToCome`, no reply read.
    pub(crate) acknowledged: bool,
}

impl Command {
    /// `body` on `db`, acknowledged, without a sequence.
    pub(crate) fn new(db: impl Into<String>, body: Document) -> Self {
        Command {
            db: db.into(),
            body,
            sequences: Vec::new(),
            acknowledged: true,
        }
    }
}

/// What a reply means for the operation.
#[derive(Debug)]
pub(crate) enum Step<T> {
    /// The operation is done.
    Done(T),
    /// More to send: the executor calls `build` again (the next batch of a write).
    More,
}

/// An operation: builds commands and parses replies, with no I/O.
pub(crate) trait Operation {
    /// What the caller gets.
    type Output;

    /// A read, a write or a plain command.
    fn kind(&self) -> OpKind;

    /// The name used in server selection log messages (the command's name).
    fn name(&self) -> &str;

    /// Whether the retryable reads / writes rules may retry it (a read or write that the
    /// specs list as retryable); the executor also checks the client options and the
    /// deployment.
    fn is_retryable(&self) -> bool {
        false
    }

    /// Whether this is a command the user wrote (run command spec): the client backpressure
    /// spec retries it on an overload error only when both retryReads and retryWrites are on,
    /// and reports its errors as a write's.
    fn is_run_command(&self) -> bool {
        false
    }

    /// Whether the command takes a `readConcern` (the executor adds the client's).
    fn takes_read_concern(&self) -> bool {
        false
    }

    /// Whether the command takes a `writeConcern` (the executor adds the client's unless the
    /// command has one).
    fn takes_write_concern(&self) -> bool {
        false
    }

    /// Whether this write may run where its read preference says (an aggregate with a write
    /// stage, CRUD spec): the executor selects by the read preference, and sends it, when no
    /// available server is older than 5.0 ([`WRITE_STAGE_ON_SECONDARY_WIRE_VERSION`]) or
    /// behind a load balancer; else it selects the primary.
    fn write_uses_read_preference(&self) -> bool {
        false
    }

    /// Builds the next command for `conn`.
    fn build(&mut self, conn: &ConnectionDescription) -> Result<Command>;

    /// The key (`firstBatch`, `nextBatch`) of the reply's `cursor` array that the connection
    /// may leave undecoded, to hand over with [`Operation::set_raw_batch`] before
    /// [`Operation::handle_reply`]: the documents of a cursor batch are then decoded one at a
    /// time as they are taken, not all at once into a tree many times the reply's size.
    fn lazy_batch(&self) -> Option<&'static str> {
        None
    }

    /// Takes the bytes of the batch array the connection left undecoded (see
    /// [`Operation::lazy_batch`]); the reply given to the next `handle_reply` lacks it.
    fn set_raw_batch(&mut self, _array: Vec<u8>) {}

    /// Parses the reply of a command that succeeded (`ok: 1`).
    fn handle_reply(
        &mut self,
        reply: Document,
        conn: &ConnectionDescription,
    ) -> Result<Step<Self::Output>>;

    /// The final error of the operation (after any retry): an operation may turn some into
    /// output (dropping a collection that does not exist is not an error).
    fn handle_error(&mut self, error: Error) -> Result<Self::Output> {
        Err(error)
    }

    /// Whether the command carries the `maxTimeMS` that `timeoutMS` computes (not a
    /// getMore, nor a cursor whose `timeoutMS` applies per iteration or that tails without
    /// awaitData).
    fn sends_max_time(&self) -> bool {
        true
    }

    /// Whether a `maxTimeMS` the command carries of its own (a tailable awaitData getMore's
    /// `maxAwaitTimeMS`) is capped by the time `timeoutMS` leaves, less the server's minimum
    /// round trip.
    fn caps_max_time(&self) -> bool {
        false
    }

    /// Whether the command runs in the operation's implicit session when the server supports
    /// sessions (sessions spec: every command does, but `endSessions`).
    fn takes_session(&self) -> bool {
        true
    }

    /// Whether the implicit session stays with the output (an open cursor keeps it for its
    /// getMores and killCursors).
    fn keeps_session(&self, _output: &Self::Output) -> bool {
        false
    }

    /// Whether the command may go out with the OP_MSG `exhaustAllowed` flag (an exhaust
    /// cursor's getMore): the executor then keeps a connection whose reply said
    /// `moreToCome` with the output.
    fn exhaust_allowed(&self) -> bool {
        false
    }

    /// Whether the connection stays with the output (load-balanced mode pins the connection
    /// of an open cursor).
    fn pins_connection(&self, _output: &Self::Output) -> bool {
        false
    }
}

/// The first wire version (MongoDB 5.0) whose secondaries run an aggregate with `$out` or
/// `$merge`.
pub(crate) const WRITE_STAGE_ON_SECONDARY_WIRE_VERSION: i32 = 13;

/// The first wire version (MongoDB 8.2) that takes the `rawData` option: the CRUD spec says
/// it must not be sent to older servers.
pub(crate) const RAW_DATA_WIRE_VERSION: i32 = 27;

/// Whether a write that may use its read preference ([`Operation::write_uses_read_preference`])
/// does in this topology: behind a load balancer, with no available server, or with every
/// available server 5.0+ (CRUD spec, "Read preferences and server selection").
pub(crate) fn write_stage_may_use_secondaries(desc: &TopologyDescription) -> bool {
    desc.topology_type() == TopologyType::LoadBalanced
        || desc.servers().filter(|s| s.is_known()).all(|s| {
            s.max_wire_version
                .is_some_and(|v| v >= WRITE_STAGE_ON_SECONDARY_WIRE_VERSION)
        })
}

/// What the executor adds around an operation's command, decided before the round trip.
#[derive(Clone, Debug, Default)]
pub(crate) struct Envelope<'a> {
    /// The read preference of a read (`None`: primary).
    pub(crate) read_preference: Option<&'a ReadPreference>,
    /// The client's write concern document, for writes that take one.
    pub(crate) write_concern: Option<&'a Document>,
    /// The client's read concern level, for reads that take one.
    pub(crate) read_concern_level: Option<&'a str>,
    /// The session id (`lsid`) the command runs in.
    pub(crate) lsid: Option<&'a Document>,
    /// The transaction number of a retryable write.
    pub(crate) txn_number: Option<i64>,
}

/// Adds the envelope to `command` for `conn` in a topology of `topology_type`:
///
/// - `$readPreference` (server selection spec, "passing read preference to servers", OP_MSG):
///   a non-primary read preference is always sent, except to a standalone in a Single
///   topology; a primary one never, except that a read or command over a direct connection
///   (Single) to anything but a standalone, mongos or load balancer gets `primaryPreferred`,
///   so that a secondary answers;
/// - `writeConcern` and `readConcern` where the operation takes them and the command has none;
/// - `lsid` (the operation's session) and `txnNumber` (a retryable write).
///
/// It also drops what the server is too old for: `rawData` below 8.2 (CRUD spec; never from
/// a command the user wrote, which goes as written).
pub(crate) fn envelope(
    command: &mut Command,
    kind: OpKind,
    env: &Envelope<'_>,
    conn: &ConnectionDescription,
    topology_type: TopologyType,
) {
    let body = &mut command.body;
    if kind != OpKind::Command && conn.max_wire_version < RAW_DATA_WIRE_VERSION {
        body.remove("rawData");
    }
    let single = topology_type == TopologyType::Single;
    match env.read_preference {
        // A standalone in a Single topology never gets a read preference; everything else
        // gets a non-primary one.
        Some(_) if single && conn.server_type == ServerType::Standalone => {}
        Some(rp) => {
            body.insert("$readPreference", rp.to_document());
        }
        // Primary (or none) over a direct connection to a replica-set member: primaryPreferred,
        // so that whatever the member is, it answers.
        None if single
            && kind != OpKind::Write
            && !matches!(
                conn.server_type,
                ServerType::Standalone | ServerType::Mongos | ServerType::LoadBalancer
            ) =>
        {
            body.insert("$readPreference", bson::doc! {"mode": "primaryPreferred"});
        }
        None => {}
    }
    if let Some(wc) = env.write_concern
        && !body.contains_key("writeConcern")
    {
        body.insert("writeConcern", wc.clone());
    }
    if let Some(level) = env.read_concern_level
        && !body.contains_key("readConcern")
    {
        body.insert("readConcern", bson::doc! {"level": level});
    }
    if let Some(lsid) = env.lsid {
        body.insert("lsid", lsid.clone());
    }
    if let Some(txn_number) = env.txn_number {
        body.insert("txnNumber", txn_number);
    }
}

/// Refuses a command whose `writeConcern` is inconsistent (read and write concern spec:
/// `w: 0` with `journal: true`, the only such combination), before it is sent. A command
/// the user wrote (`OpKind::Command`) goes as written: the server judges it.
///
/// # Errors
/// [`ErrorKind::InvalidArgument`](crate::error::ErrorKind::InvalidArgument).
pub(crate) fn check_write_concern(command: &Command, kind: OpKind) -> Result<()> {
    if kind == OpKind::Command {
        return Ok(());
    }
    let inconsistent = command.body.get_document("writeConcern").is_ok_and(|wc| {
        wc.get("w").and_then(Bson::as_i64_lossy) == Some(0)
            && wc.get("j").and_then(Bson::as_bool) == Some(true)
    });
    if inconsistent {
        return Err(Error::invalid_argument(
            "a write concern with w: 0 cannot ask for journal: true",
        ));
    }
    Ok(())
}

/// Whether `command` is an unacknowledged write: sent without waiting for a reply, or with
/// a write concern of `w: 0` (its own, else `client_wc`, the one the envelope adds) and no
/// journal acknowledgement.
pub(crate) fn is_unacknowledged(command: &Command, client_wc: Option<&Document>) -> bool {
    if !command.acknowledged {
        return true;
    }
    let wc = command.body.get_document("writeConcern").ok().or(client_wc);
    wc.is_some_and(|wc| {
        wc.get("w").and_then(Bson::as_i64_lossy) == Some(0)
            && wc.get("j").is_none_or(|j| j.as_bool() != Some(true))
    })
}

/// Whether a reply says `ok: 1` (int, double or bool).
pub(crate) fn is_ok(reply: &Document) -> bool {
    reply.get("ok").and_then(|v| match v {
        Bson::Boolean(b) => Some(i64::from(*b)),
        other => other.as_i64_lossy(),
    }) == Some(1)
}

/// An integer field of a reply (int32, int64 or integral double), 0 when absent.
pub(crate) fn count(reply: &Document, key: &str) -> i64 {
    reply.get(key).and_then(Bson::as_i64_lossy).unwrap_or(0)
}

/// An int32 when the value fits (some servers reject int64 for small counts), else int64.
pub(crate) fn compact_int(v: i64) -> Bson {
    i32::try_from(v).map_or(Bson::Int64(v), Bson::Int32)
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;

    fn conn(server_type: ServerType) -> ConnectionDescription {
        ConnectionDescription {
            address: ServerAddress::tcp("a", 1),
            server_type,
            max_wire_version: 21,
            limits: SizeLimits::default(),
            service_id: None,
            logical_session_timeout_minutes: Some(30),
        }
    }

    #[test]
    fn a_non_primary_read_preference_goes_everywhere_but_to_a_single_standalone() {
        let rp = ReadPreference::new(mongo_events::sdam::ReadMode::Secondary);
        let env = Envelope {
            read_preference: Some(&rp),
            ..Envelope::default()
        };
        let mut c = Command::new("db", doc! {"find": "c"});
        envelope(
            &mut c,
            OpKind::Read,
            &env,
            &conn(ServerType::Mongos),
            TopologyType::Sharded,
        );
        assert_eq!(
            c.body.get_document("$readPreference").unwrap(),
            &doc! {"mode": "secondary"}
        );
        let mut c = Command::new("db", doc! {"find": "c"});
        envelope(
            &mut c,
            OpKind::Read,
            &env,
            &conn(ServerType::RsSecondary),
            TopologyType::ReplicaSetWithPrimary,
        );
        assert!(c.body.contains_key("$readPreference"));
        let mut c = Command::new("db", doc! {"find": "c"});
        envelope(
            &mut c,
            OpKind::Read,
            &env,
            &conn(ServerType::Standalone),
            TopologyType::Single,
        );
        assert!(!c.body.contains_key("$readPreference"));
    }

    #[test]
    fn raw_data_goes_only_to_8_2_and_as_written_in_a_user_command() {
        let mut old = conn(ServerType::RsPrimary);
        old.max_wire_version = RAW_DATA_WIRE_VERSION - 1;
        let mut new = old.clone();
        new.max_wire_version = RAW_DATA_WIRE_VERSION;
        for (kind, c, kept) in [
            (OpKind::Read, &old, false),
            (OpKind::Write, &old, false),
            (OpKind::Command, &old, true),
            (OpKind::Read, &new, true),
        ] {
            let mut cmd = Command::new("db", doc! {"find": "c", "rawData": true});
            envelope(
                &mut cmd,
                kind,
                &Envelope::default(),
                c,
                TopologyType::ReplicaSetWithPrimary,
            );
            assert_eq!(cmd.body.contains_key("rawData"), kept, "{kind:?}");
        }
    }

    #[test]
    fn a_write_stage_uses_the_read_preference_only_on_5_0_servers() {
        use mongo_sdam::{ServerDescription, TopologyConfig};
        let with = |wire: Option<i32>| {
            let address = ServerAddress::tcp("a", 1);
            let mut desc = TopologyDescription::new(&TopologyConfig::new(vec![address.clone()]));
            if let Some(wire) = wire {
                let mut sd = ServerDescription::new(address);
                sd.server_type = ServerType::Standalone;
                sd.max_wire_version = Some(wire);
                desc.apply(sd);
            }
            write_stage_may_use_secondaries(&desc)
        };
        assert!(with(None), "no available server");
        assert!(with(Some(WRITE_STAGE_ON_SECONDARY_WIRE_VERSION)));
        assert!(!with(Some(WRITE_STAGE_ON_SECONDARY_WIRE_VERSION - 1)));
    }

    #[test]
    fn a_direct_connection_to_a_secondary_reads_with_primary_preferred() {
        let mut c = Command::new("db", doc! {"count": "c"});
        envelope(
            &mut c,
            OpKind::Read,
            &Envelope::default(),
            &conn(ServerType::Standalone),
            TopologyType::Single,
        );
        assert!(
            !c.body.contains_key("$readPreference"),
            "not to a standalone"
        );
        for (kind, expected) in [
            (OpKind::Read, true),
            (OpKind::Command, true),
            (OpKind::Write, false),
        ] {
            let mut c = Command::new("db", doc! {"count": "c"});
            envelope(
                &mut c,
                kind,
                &Envelope::default(),
                &conn(ServerType::RsSecondary),
                TopologyType::Single,
            );
            assert_eq!(c.body.contains_key("$readPreference"), expected, "{kind:?}");
        }
    }

    #[test]
    fn concerns_and_session_fields_are_added_unless_present() {
        let wc = doc! {"w": "majority"};
        let lsid = doc! {"id": 1};
        let env = Envelope {
            write_concern: Some(&wc),
            read_concern_level: Some("local"),
            lsid: Some(&lsid),
            txn_number: Some(7),
            ..Envelope::default()
        };
        let mut c = Command::new("db", doc! {"insert": "c", "writeConcern": {"w": 1}});
        envelope(
            &mut c,
            OpKind::Write,
            &env,
            &conn(ServerType::RsPrimary),
            TopologyType::ReplicaSetWithPrimary,
        );
        assert_eq!(c.body.get_document("writeConcern").unwrap(), &doc! {"w": 1});
        assert_eq!(
            c.body.get_document("readConcern").unwrap(),
            &doc! {"level": "local"}
        );
        assert_eq!(c.body.get_document("lsid").unwrap(), &lsid);
        assert_eq!(c.body.get_i64("txnNumber").unwrap(), 7);
    }

    #[test]
    fn an_inconsistent_write_concern_is_refused_unless_the_user_wrote_the_command() {
        let bad = Command::new(
            "db",
            doc! {"insert": "c", "writeConcern": {"w": 0, "j": true}},
        );
        assert!(check_write_concern(&bad, OpKind::Write).is_err());
        assert!(check_write_concern(&bad, OpKind::Command).is_ok());
        let fine = Command::new(
            "db",
            doc! {"insert": "c", "writeConcern": {"w": 0, "j": false}},
        );
        assert!(check_write_concern(&fine, OpKind::Write).is_ok());
        let w1 = Command::new(
            "db",
            doc! {"insert": "c", "writeConcern": {"w": 1, "j": true}},
        );
        assert!(check_write_concern(&w1, OpKind::Write).is_ok());
    }

    #[test]
    fn w_zero_without_journal_is_unacknowledged() {
        let w0 = doc! {"w": 0};
        let c = Command::new("db", doc! {"insert": "c"});
        assert!(!is_unacknowledged(&c, None));
        assert!(is_unacknowledged(&c, Some(&w0)));
        assert!(!is_unacknowledged(&c, Some(&doc! {"w": 0, "j": true})));
        let own = Command::new("db", doc! {"insert": "c", "writeConcern": {"w": 1}});
        assert!(!is_unacknowledged(&own, Some(&w0)));
        let mut moretocome = Command::new("db", doc! {"insert": "c"});
        moretocome.acknowledged = false;
        assert!(is_unacknowledged(&moretocome, None));
    }

    #[test]
    fn ok_and_counts_accept_every_numeric_type() {
        assert!(is_ok(&doc! {"ok": 1}));
        assert!(is_ok(&doc! {"ok": 1.0}));
        assert!(is_ok(&doc! {"ok": true}));
        assert!(!is_ok(&doc! {"ok": 0}));
        assert!(!is_ok(&doc! {}));
        assert_eq!(count(&doc! {"n": 3.0}, "n"), 3);
        assert_eq!(count(&doc! {}, "n"), 0);
        assert_eq!(compact_int(5), Bson::Int32(5));
        assert_eq!(compact_int(1 << 40), Bson::Int64(1 << 40));
    }
}
