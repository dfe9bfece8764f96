//! Server descriptions: what one hello reply (or one failed check) says about a server.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bson::oid::ObjectId;
use bson::{Bson, Document};
use mongo_events::sdam::ServerInfo;
use mongo_events::{ServerAddress, ServerType, ServiceId};

/// The `topologyVersion` a 4.4+ server reports in hello replies and state change errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TopologyVersion {
    /// Regenerated each time the server process starts.
    pub process_id: ObjectId,
    /// Incremented on each significant topology change.
    pub counter: i64,
}

impl TopologyVersion {
    /// Reads `{processId: ObjectId, counter: int}`; `None` when the shape is wrong.
    pub fn from_bson(value: &Bson) -> Option<TopologyVersion> {
        let doc = value.as_document()?;
        let process_id = match doc.get("processId")? {
            Bson::ObjectId(oid) => *oid,
            _ => return None,
        };
        let counter = as_i64(doc.get("counter")?)?;
        Some(TopologyVersion {
            process_id,
            counter,
        })
    }

    /// The version as a document, as sent in an awaitable hello.
    pub fn to_document(&self) -> Document {
        let mut doc = Document::new();
        doc.insert("processId", self.process_id);
        doc.insert("counter", self.counter);
        doc
    }

    /// Compares a current version with an incoming one, as the SDAM spec's
    /// `compareTopologyVersion`: `Less` when `incoming` is more recent (or either is missing, or
    /// the process ids differ), otherwise the order of the counters.
    pub fn compare(
        current: Option<&TopologyVersion>,
        incoming: Option<&TopologyVersion>,
    ) -> Ordering {
        match (current, incoming) {
            (Some(c), Some(i)) if c.process_id == i.process_id => c.counter.cmp(&i.counter),
            _ => Ordering::Less,
        }
    }
}

/// The client's view of one server, built from the latest hello reply or failed check.
///
/// Equality ([`PartialEq`]) follows the SDAM spec's "Server Description Equality": only the
/// fields marked (=) in the spec are compared (type, error, wire versions, me, hosts, passives,
/// arbiters as sets, tags, setName, electionId, setVersion, primary,
/// logicalSessionTimeoutMinutes, topologyVersion, iscryptd), so round-trip times and update
/// times never make a description "change".
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerDescription {
    /// The address the client connects to (not `me`).
    pub address: ServerAddress,
    /// The server's type.
    pub server_type: ServerType,
    /// Why the last check failed, or why the server was marked Unknown.
    pub error: Option<String>,
    /// The average round-trip time of checks; `None` while Unknown.
    pub round_trip_time: Option<Duration>,
    /// The minimum of the recent round-trip samples (zero until two samples exist).
    pub min_round_trip_time: Option<Duration>,
    /// `lastWrite.lastWriteDate`, in milliseconds since the epoch.
    pub last_write_date: Option<i64>,
    /// `lastWrite.opTime`, kept opaque.
    pub op_time: Option<Bson>,
    /// When this description was made (monotonic clock); `None` is "infinitely long ago".
    pub last_update_time: Option<Instant>,
    /// `minWireVersion`, when reported.
    pub min_wire_version: Option<i32>,
    /// `maxWireVersion`, when reported.
    pub max_wire_version: Option<i32>,
    /// The address the server has in the replica set config.
    pub me: Option<ServerAddress>,
    /// `hosts`, lower-cased.
    pub hosts: Vec<ServerAddress>,
    /// `passives`, lower-cased.
    pub passives: Vec<ServerAddress>,
    /// `arbiters`, lower-cased.
    pub arbiters: Vec<ServerAddress>,
    /// The member's tags.
    pub tags: BTreeMap<String, String>,
    /// The replica set name.
    pub set_name: Option<String>,
    /// `electionId`, from a member that believes it is primary.
    pub election_id: Option<ObjectId>,
    /// `setVersion`.
    pub set_version: Option<i64>,
    /// Who this server thinks the primary is.
    pub primary: Option<ServerAddress>,
    /// `logicalSessionTimeoutMinutes`.
    pub logical_session_timeout_minutes: Option<i64>,
    /// `topologyVersion`, from the reply or from a state change error.
    pub topology_version: Option<TopologyVersion>,
    /// Whether the server is mongocryptd.
    pub iscryptd: bool,
    /// `serviceId`, behind a load balancer.
    pub service_id: Option<ServiceId>,
    /// Whether the server answered `helloOk: true` (use `hello`, not the legacy command).
    pub hello_ok: bool,
}

impl PartialEq for ServerDescription {
    fn eq(&self, other: &Self) -> bool {
        self.address == other.address
            && self.server_type == other.server_type
            && self.error == other.error
            && self.min_wire_version == other.min_wire_version
            && self.max_wire_version == other.max_wire_version
            && self.me == other.me
            && same_set(&self.hosts, &other.hosts)
            && same_set(&self.passives, &other.passives)
            && same_set(&self.arbiters, &other.arbiters)
            && self.tags == other.tags
            && self.set_name == other.set_name
            && self.election_id == other.election_id
            && self.set_version == other.set_version
            && self.primary == other.primary
            && self.logical_session_timeout_minutes == other.logical_session_timeout_minutes
            && self.topology_version == other.topology_version
            && self.iscryptd == other.iscryptd
    }
}

fn same_set(a: &[ServerAddress], b: &[ServerAddress]) -> bool {
    if a == b {
        return true;
    }
    if a.len() != b.len() {
        return false;
    }
    let mut a: Vec<&ServerAddress> = a.iter().collect();
    let mut b: Vec<&ServerAddress> = b.iter().collect();
    a.sort_unstable();
    b.sort_unstable();
    a == b
}

/// Reads a number (int32, int64 or a whole double) as i64.
/// The server type a successful hello reply says (SDAM's rules: mongos, replica-set ghost,
/// member roles, standalone), without building a whole [`ServerDescription`]. Connections
/// use it to know what they are connected to; [`ServerDescription::from_hello`] uses it too.
pub fn server_type_from_hello(reply: &Document) -> ServerType {
    let primary_flag = match reply.get("isWritablePrimary") {
        Some(v) => truthy(Some(v)),
        None => truthy(reply.get("ismaster")),
    };
    if matches!(reply.get("msg"), Some(Bson::String(m)) if m == "isdbgrid") {
        ServerType::Mongos
    } else if truthy(reply.get("isreplicaset")) {
        ServerType::RsGhost
    } else if matches!(reply.get("setName"), Some(Bson::String(_))) {
        if truthy(reply.get("hidden")) {
            ServerType::RsOther
        } else if primary_flag {
            ServerType::RsPrimary
        } else if truthy(reply.get("secondary")) {
            ServerType::RsSecondary
        } else if truthy(reply.get("arbiterOnly")) {
            ServerType::RsArbiter
        } else {
            ServerType::RsOther
        }
    } else {
        ServerType::Standalone
    }
}

pub(crate) fn as_i64(value: &Bson) -> Option<i64> {
    match value {
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Int64(n) => Some(*n),
        Bson::Double(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15 => {
            // Checked above: whole and well inside i64's range.
            #[allow(clippy::cast_possible_truncation)]
            Some(*f as i64)
        }
        _ => None,
    }
}

fn as_i32(value: &Bson) -> Option<i32> {
    as_i64(value).and_then(|n| i32::try_from(n).ok())
}

fn truthy(value: Option<&Bson>) -> bool {
    match value {
        Some(Bson::Boolean(b)) => *b,
        Some(other) => as_i64(other).is_some_and(|n| n != 0),
        None => false,
    }
}

fn string_of(doc: &Document, key: &str) -> Option<String> {
    match doc.get(key) {
        Some(Bson::String(s)) => Some(s.clone()),
        _ => None,
    }
}

/// The most members (`hosts`, `passives` and `arbiters` together) the client takes from one
/// `hello` reply: twice the 50 members a replica set may have. Beyond it the rest are
/// dropped with a warning, so that a hostile or broken server cannot make the client create
/// monitors and pools without limit.
pub const MAX_REPORTED_MEMBERS: usize = 100;

/// A host a server reported ([`ServerAddress::parse_reported`]: never a unix socket path).
fn address_of(doc: &Document, key: &str) -> Option<ServerAddress> {
    match doc.get(key) {
        Some(Bson::String(s)) => ServerAddress::parse_reported(s).ok(),
        _ => None,
    }
}

/// The hosts of the array `key`, at most `budget` of them (which it decreases); the ones past
/// it are dropped with a warning.
fn addresses_of(
    address: &ServerAddress,
    doc: &Document,
    key: &str,
    budget: &mut usize,
) -> Vec<ServerAddress> {
    let Some(Bson::Array(items)) = doc.get(key) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut dropped = 0_usize;
    for item in items {
        let Bson::String(s) = item else { continue };
        // Past the budget nothing more is parsed (a reply padded with hosts costs no more).
        if *budget == 0 {
            dropped += 1;
            continue;
        }
        let Ok(a) = ServerAddress::parse_reported(s) else {
            continue;
        };
        *budget -= 1;
        out.push(a);
    }
    if dropped > 0 {
        tracing::warn!(
            target: "mongo::topology",
            "{address} listed more than {MAX_REPORTED_MEMBERS} members in its hello reply; \
             {dropped} of its {key} were ignored"
        );
    }
    out
}

/// Whether a reply's `ok` field says success (`1`, `1.0` or `true`).
pub(crate) fn reply_ok(doc: &Document) -> bool {
    match doc.get("ok") {
        Some(Bson::Double(f)) => *f == 1.0,
        Some(Bson::Boolean(b)) => *b,
        Some(other) => as_i64(other) == Some(1),
        None => false,
    }
}

impl ServerDescription {
    /// The default description: type Unknown, nothing known.
    pub fn new(address: ServerAddress) -> Self {
        ServerDescription {
            address,
            server_type: ServerType::Unknown,
            error: None,
            round_trip_time: None,
            min_round_trip_time: None,
            last_write_date: None,
            op_time: None,
            last_update_time: None,
            min_wire_version: None,
            max_wire_version: None,
            me: None,
            hosts: Vec::new(),
            passives: Vec::new(),
            arbiters: Vec::new(),
            tags: BTreeMap::new(),
            set_name: None,
            election_id: None,
            set_version: None,
            primary: None,
            logical_session_timeout_minutes: None,
            topology_version: None,
            iscryptd: false,
            service_id: None,
            hello_ok: false,
        }
    }

    /// An Unknown description carrying an error (a failed check, or an application error).
    pub fn unknown_with_error(address: ServerAddress, error: impl Into<String>) -> Self {
        ServerDescription {
            error: Some(error.into()),
            ..ServerDescription::new(address)
        }
    }

    /// The description of a load balancer: only the address and the type are set.
    pub fn load_balancer(address: ServerAddress) -> Self {
        ServerDescription {
            server_type: ServerType::LoadBalancer,
            ..ServerDescription::new(address)
        }
    }

    /// Builds a description from a hello (or legacy hello) reply.
    ///
    /// Never fails: a reply without `ok: 1` gives an Unknown description with an error, and a
    /// field of the wrong type is treated as absent. `round_trip_time` is the average RTT to
    /// record (the monitor's estimate), `now` the update time.
    pub fn from_hello(
        address: ServerAddress,
        reply: &Document,
        round_trip_time: Option<Duration>,
        now: Instant,
    ) -> Self {
        let mut sd = ServerDescription::new(address);
        sd.last_update_time = Some(now);
        if !reply_ok(reply) {
            let msg = string_of(reply, "errmsg").unwrap_or_else(|| "no errmsg".to_string());
            sd.error = Some(format!("hello failed (ok is not 1): {msg}"));
            sd.topology_version = reply
                .get("topologyVersion")
                .and_then(TopologyVersion::from_bson);
            return sd;
        }
        sd.round_trip_time = round_trip_time;
        sd.min_wire_version = reply.get("minWireVersion").and_then(as_i32);
        sd.max_wire_version = reply.get("maxWireVersion").and_then(as_i32);
        sd.hello_ok = truthy(reply.get("helloOk"));
        sd.set_name = string_of(reply, "setName");
        sd.me = address_of(reply, "me");
        let mut budget = MAX_REPORTED_MEMBERS;
        sd.hosts = addresses_of(&sd.address, reply, "hosts", &mut budget);
        sd.passives = addresses_of(&sd.address, reply, "passives", &mut budget);
        sd.arbiters = addresses_of(&sd.address, reply, "arbiters", &mut budget);
        sd.primary = address_of(reply, "primary");
        sd.election_id = match reply.get("electionId") {
            Some(Bson::ObjectId(oid)) => Some(*oid),
            _ => None,
        };
        sd.set_version = reply.get("setVersion").and_then(as_i64);
        sd.logical_session_timeout_minutes =
            reply.get("logicalSessionTimeoutMinutes").and_then(as_i64);
        sd.topology_version = reply
            .get("topologyVersion")
            .and_then(TopologyVersion::from_bson);
        sd.iscryptd = truthy(reply.get("iscryptd"));
        sd.service_id = match reply.get("serviceId") {
            Some(Bson::ObjectId(oid)) => Some(ServiceId(*oid)),
            _ => None,
        };
        if let Some(Bson::Document(tags)) = reply.get("tags") {
            sd.tags = tags
                .iter()
                .filter_map(|(k, v)| match v {
                    Bson::String(s) => Some((k.clone(), s.clone())),
                    _ => None,
                })
                .collect();
        }
        if let Some(Bson::Document(last_write)) = reply.get("lastWrite") {
            sd.last_write_date = match last_write.get("lastWriteDate") {
                Some(Bson::DateTime(dt)) => Some(dt.timestamp_millis()),
                Some(other) => as_i64(other),
                None => None,
            };
            sd.op_time = last_write.get("opTime").cloned();
        }
        sd.server_type = server_type_from_hello(reply);
        sd
    }

    /// Whether the server is of a known type (not Unknown nor PossiblePrimary).
    pub fn is_known(&self) -> bool {
        !matches!(
            self.server_type,
            ServerType::Unknown | ServerType::PossiblePrimary
        )
    }

    /// Whether the server holds data (and so counts for sessions and selection).
    pub fn is_data_bearing(&self) -> bool {
        self.server_type.is_data_bearing()
    }

    /// Every member this server listed: hosts, passives and arbiters.
    pub fn members(&self) -> impl Iterator<Item = &ServerAddress> {
        self.hosts
            .iter()
            .chain(&self.passives)
            .chain(&self.arbiters)
    }

    /// The snapshot events carry.
    pub fn to_info(&self) -> ServerInfo {
        let mut info = ServerInfo::unknown(self.address.clone());
        info.server_type = self.server_type;
        info.round_trip_time = self.round_trip_time;
        info.set_name = self.set_name.clone();
        info.tags = self.tags.clone();
        info.error = self.error.clone();
        info.min_wire_version = self.min_wire_version;
        info.max_wire_version = self.max_wire_version;
        info.hosts = self.members().cloned().collect();
        info.primary = self.primary.clone();
        info
    }
}

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "tests drive the cores from an arbitrary starting instant and wait on real time"
)]
mod tests {
    use super::*;
    use bson::doc;

    fn addr(s: &str) -> ServerAddress {
        ServerAddress::parse(s).unwrap()
    }

    fn parse(reply: Document) -> ServerDescription {
        ServerDescription::from_hello(
            addr("a"),
            &reply,
            Some(Duration::from_millis(1)),
            Instant::now(),
        )
    }

    #[test]
    fn types_are_determined_from_the_reply() {
        assert_eq!(
            parse(doc! {"ok": 1, "isWritablePrimary": true}).server_type,
            ServerType::Standalone
        );
        assert_eq!(
            parse(doc! {"ok": 1.0, "msg": "isdbgrid"}).server_type,
            ServerType::Mongos
        );
        assert_eq!(
            parse(doc! {"ok": 1, "isreplicaset": true}).server_type,
            ServerType::RsGhost
        );
        assert_eq!(
            parse(doc! {"ok": 1, "ismaster": true, "setName": "rs"}).server_type,
            ServerType::RsPrimary
        );
        assert_eq!(
            parse(doc! {"ok": 1, "secondary": true, "setName": "rs"}).server_type,
            ServerType::RsSecondary
        );
        assert_eq!(
            parse(doc! {"ok": 1, "arbiterOnly": true, "setName": "rs"}).server_type,
            ServerType::RsArbiter
        );
        assert_eq!(
            parse(doc! {"ok": 1, "secondary": true, "hidden": true, "setName": "rs"}).server_type,
            ServerType::RsOther
        );
        assert_eq!(
            parse(doc! {"ok": 1, "setName": "rs"}).server_type,
            ServerType::RsOther
        );
        let failed = parse(doc! {"ok": 0, "errmsg": "boom"});
        assert_eq!(failed.server_type, ServerType::Unknown);
        assert!(failed.error.unwrap().contains("boom"));
        assert_eq!(failed.round_trip_time, None);
    }

    #[test]
    fn odd_field_types_are_ignored_not_fatal() {
        let sd = parse(doc! {
            "ok": 1, "setName": 5, "hosts": "a:1", "passives": [1, "B:2", "bad:port"],
            "electionId": "x", "setVersion": "1", "tags": {"dc": "ny", "n": 1},
            "topologyVersion": {"processId": 1, "counter": 1}, "me": [], "maxWireVersion": 1.5,
            "lastWrite": {"lastWriteDate": "x"},
        });
        assert_eq!(sd.server_type, ServerType::Standalone);
        assert_eq!(sd.set_name, None);
        assert!(sd.hosts.is_empty());
        assert_eq!(sd.passives, vec![addr("b:2")]);
        assert_eq!(sd.election_id, None);
        assert_eq!(sd.set_version, None);
        assert_eq!(sd.tags.len(), 1);
        assert_eq!(sd.topology_version, None);
        assert_eq!(sd.max_wire_version, None);
        assert_eq!(sd.last_write_date, None);
    }

    #[test]
    fn reported_hosts_are_never_socket_paths_and_are_bounded() {
        let sd = parse(doc! {
            "ok": 1, "setName": "rs", "secondary": true,
            "hosts": ["a:1", "/tmp/mongodb-27017.sock", "%2Ftmp%2Fm.sock"],
            "primary": "/tmp/p.sock", "me": "%2Fx.sock",
        });
        assert_eq!(sd.hosts, vec![addr("a:1")]);
        assert_eq!(sd.primary, None);
        assert_eq!(sd.me, None);
        let many: Vec<String> = (0..5000).map(|i| format!("h{i}:27017")).collect();
        let sd = parse(doc! {
            "ok": 1, "setName": "rs", "secondary": true, "hosts": many.clone(),
            "arbiters": many,
        });
        assert_eq!(sd.hosts.len(), MAX_REPORTED_MEMBERS);
        assert!(sd.arbiters.is_empty());
        assert_eq!(sd.members().count(), MAX_REPORTED_MEMBERS);
    }

    #[test]
    fn equality_ignores_rtt_and_host_order() {
        let mut a =
            parse(doc! {"ok": 1, "setName": "rs", "secondary": true, "hosts": ["a:1", "b:1"]});
        let mut b =
            parse(doc! {"ok": 1, "setName": "rs", "secondary": true, "hosts": ["B:1", "a:1"]});
        b.round_trip_time = Some(Duration::from_secs(9));
        b.last_update_time = None;
        assert_eq!(a, b);
        a.tags.insert("dc".into(), "ny".into());
        assert_ne!(a, b);
    }

    #[test]
    fn topology_versions_compare_per_spec() {
        let p = ObjectId::new();
        let v1 = TopologyVersion {
            process_id: p,
            counter: 1,
        };
        let v2 = TopologyVersion {
            process_id: p,
            counter: 2,
        };
        let other = TopologyVersion {
            process_id: ObjectId::new(),
            counter: 0,
        };
        assert_eq!(
            TopologyVersion::compare(Some(&v1), Some(&v2)),
            Ordering::Less
        );
        assert_eq!(
            TopologyVersion::compare(Some(&v2), Some(&v1)),
            Ordering::Greater
        );
        assert_eq!(
            TopologyVersion::compare(Some(&v1), Some(&v1)),
            Ordering::Equal
        );
        assert_eq!(
            TopologyVersion::compare(Some(&v2), Some(&other)),
            Ordering::Less
        );
        assert_eq!(TopologyVersion::compare(None, Some(&v1)), Ordering::Less);
        assert_eq!(TopologyVersion::compare(Some(&v1), None), Ordering::Less);
        let round = TopologyVersion::from_bson(&Bson::Document(v2.to_document())).unwrap();
        assert_eq!(round, v2);
    }
}
