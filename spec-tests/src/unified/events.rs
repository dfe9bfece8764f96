//! Events as the unified format sees them: the client's own listeners record every command,
//! CMAP and SDAM event as `{<name>: {fields}}` documents, and the `expectEvents`,
//! `waitForEvent` and `assertEventCount` matching.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bson::{Bson, Document, doc};
use mongo_client::event::cmap::CmapEvent;
use mongo_client::event::command::CommandEvent;
use mongo_client::event::sdam::{
    HeartbeatEvent, ServerEvent, ServerInfo, TopologyEvent, TopologyInfo,
};
use mongo_client::event::{
    CommandListener, HeartbeatListener, Listener, Listeners, PoolListener, ServerListener,
    TopologyListener,
};
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::matching::{self, Lookup};

/// Which monitor an event comes from (`eventType` of `expectEvents`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Command,
    Cmap,
    Sdam,
}

impl Kind {
    pub(crate) fn from_name(s: &str) -> Option<Kind> {
        match s {
            "command" => Some(Kind::Command),
            "cmap" => Some(Kind::Cmap),
            "sdam" => Some(Kind::Sdam),
            _ => None,
        }
    }

    /// The monitor of an event name.
    pub(crate) fn of(name: &str) -> Option<Kind> {
        Some(match name {
            "commandStartedEvent" | "commandSucceededEvent" | "commandFailedEvent" => Kind::Command,
            "poolCreatedEvent"
            | "poolReadyEvent"
            | "poolClearedEvent"
            | "poolClosedEvent"
            | "connectionCreatedEvent"
            | "connectionReadyEvent"
            | "connectionClosedEvent"
            | "connectionCheckOutStartedEvent"
            | "connectionCheckOutFailedEvent"
            | "connectionCheckedOutEvent"
            | "connectionCheckedInEvent" => Kind::Cmap,
            "serverDescriptionChangedEvent"
            | "serverHeartbeatStartedEvent"
            | "serverHeartbeatSucceededEvent"
            | "serverHeartbeatFailedEvent"
            | "topologyDescriptionChangedEvent"
            | "topologyOpeningEvent"
            | "topologyClosedEvent" => Kind::Sdam,
            _ => return None,
        })
    }
}

/// One observed event: its format name and its fields.
#[derive(Debug, Clone)]
pub(crate) struct Observed {
    pub(crate) kind: Kind,
    pub(crate) name: &'static str,
    pub(crate) body: Document,
}

/// An event list entity (`storeEventsAsEntities`).
pub(crate) type EventList = Arc<Mutex<Vec<Document>>>;

/// What a client entity asked to observe.
#[derive(Debug, Clone, Default)]
pub(crate) struct Observe {
    pub(crate) names: HashSet<String>,
    pub(crate) ignore_commands: HashSet<String>,
    pub(crate) sensitive: bool,
    /// `storeEventsAsEntities`: (entity list, event names).
    pub(crate) stores: Vec<(EventList, HashSet<String>)>,
}

/// The events of one client entity, filled by its listeners.
#[derive(Debug, Default)]
pub(crate) struct EventLog {
    observe: Observe,
    events: Mutex<Vec<Observed>>,
    /// Set when the test stops listening.
    closed: std::sync::atomic::AtomicBool,
    /// Checked-out connections (CMAP checked out minus checked in), always counted.
    pub(crate) checked_out: AtomicI64,
    pub(crate) changed: Notify,
}

/// Commands whose events are hidden unless `observeSensitiveCommands` (the command
/// monitoring spec's list).
const SENSITIVE: [&str; 9] = [
    "authenticate",
    "saslstart",
    "saslcontinue",
    "getnonce",
    "createuser",
    "updateuser",
    "copydbgetnonce",
    "copydbsaslstart",
    "copydb",
];

fn is_hello(name: &str) -> bool {
    matches!(name.to_ascii_lowercase().as_str(), "hello" | "ismaster")
}

impl EventLog {
    pub(crate) fn new(observe: Observe) -> Arc<EventLog> {
        Arc::new(EventLog {
            observe,
            ..EventLog::default()
        })
    }

    /// Listeners for a client that feed this log.
    pub(crate) fn listeners(self: &Arc<Self>) -> Listeners {
        let mut l = Listeners::new();
        l.add(Listener::command(Feed(self.clone())));
        l.add(Listener::pool(Feed(self.clone())));
        l.add(Listener::server(Feed(self.clone())));
        l.add(Listener::heartbeat(Feed(self.clone())));
        l.add(Listener::topology(Feed(self.clone())));
        l
    }

    /// Forgets the events so far (those before `awaitMinPoolSizeMS` was met).
    pub(crate) fn clear(&self) {
        self.events.lock().clear();
    }

    /// Stops recording (the test's operations are over).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// A copy of the events so far.
    pub(crate) fn snapshot(&self) -> Vec<Observed> {
        self.events.lock().clone()
    }

    fn push(&self, name: &'static str, body: Document) {
        let Some(kind) = Kind::of(name) else { return };
        if !self.observe.stores.is_empty() {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            for (list, names) in &self.observe.stores {
                if names.contains(name) {
                    let mut d = doc! {"name": name, "observedAt": now};
                    d.extend(body.clone());
                    list.lock().push(d);
                }
            }
        }
        if self.closed.load(Ordering::SeqCst) || !self.observe.names.contains(name) {
            return;
        }
        self.events.lock().push(Observed { kind, name, body });
        self.changed.notify_waiters();
    }

    fn command(&self, e: &CommandEvent) {
        let name = e.command_name();
        if name == "configureFailPoint" || self.observe.ignore_commands.contains(name) {
            return;
        }
        let sensitive = SENSITIVE.contains(&name.to_ascii_lowercase().as_str())
            || (is_hello(name)
                && match e {
                    CommandEvent::Started(s) => s.command.is_empty(),
                    CommandEvent::Succeeded(s) => s.reply.is_empty(),
                    CommandEvent::Failed(_) => false,
                });
        if sensitive && !self.observe.sensitive {
            return;
        }
        let (event, body) = match e {
            CommandEvent::Started(s) => {
                let mut b = doc! {
                    "command": s.command.clone(),
                    "commandName": &s.command_name,
                    "databaseName": &s.database_name,
                };
                ids(
                    &mut b,
                    s.service_id.map(|i| i.0),
                    s.connection.server_connection_id,
                );
                ("commandStartedEvent", b)
            }
            CommandEvent::Succeeded(s) => {
                let mut b = doc! {
                    "reply": s.reply.clone(),
                    "commandName": &s.command_name,
                    "databaseName": &s.database_name,
                };
                ids(
                    &mut b,
                    s.service_id.map(|i| i.0),
                    s.connection.server_connection_id,
                );
                ("commandSucceededEvent", b)
            }
            CommandEvent::Failed(s) => {
                let mut b = doc! {
                    "commandName": &s.command_name,
                    "databaseName": &s.database_name,
                    "failure": s.failure.to_string(),
                };
                ids(
                    &mut b,
                    s.service_id.map(|i| i.0),
                    s.connection.server_connection_id,
                );
                ("commandFailedEvent", b)
            }
        };
        self.push(event, body);
    }

    fn cmap(&self, e: &CmapEvent) {
        match e {
            CmapEvent::ConnectionCheckedOut(_) => {
                self.checked_out.fetch_add(1, Ordering::SeqCst);
            }
            CmapEvent::ConnectionCheckedIn(_) => {
                self.checked_out.fetch_sub(1, Ordering::SeqCst);
            }
            _ => {}
        }
        let (name, body) = match e {
            CmapEvent::PoolCreated(_) => ("poolCreatedEvent", doc! {}),
            CmapEvent::PoolReady(_) => ("poolReadyEvent", doc! {}),
            CmapEvent::PoolCleared(c) => {
                let mut b = doc! {"interruptInUseConnections": c.interrupt_in_use_connections};
                if let Some(s) = c.service_id {
                    b.insert("serviceId", s.0);
                }
                ("poolClearedEvent", b)
            }
            CmapEvent::PoolClosed(_) => ("poolClosedEvent", doc! {}),
            CmapEvent::ConnectionCreated(_) => ("connectionCreatedEvent", doc! {}),
            CmapEvent::ConnectionReady(_) => ("connectionReadyEvent", doc! {}),
            CmapEvent::ConnectionClosed(c) => {
                ("connectionClosedEvent", doc! {"reason": c.reason.name()})
            }
            CmapEvent::ConnectionCheckOutStarted(_) => ("connectionCheckOutStartedEvent", doc! {}),
            CmapEvent::ConnectionCheckOutFailed(c) => (
                "connectionCheckOutFailedEvent",
                doc! {"reason": c.reason.name()},
            ),
            CmapEvent::ConnectionCheckedOut(_) => ("connectionCheckedOutEvent", doc! {}),
            CmapEvent::ConnectionCheckedIn(_) => ("connectionCheckedInEvent", doc! {}),
        };
        self.push(name, body);
    }

    fn server(&self, e: &ServerEvent) {
        if let ServerEvent::DescriptionChanged(c) = e {
            self.push(
                "serverDescriptionChangedEvent",
                doc! {
                    "previousDescription": server_info(&c.previous_description),
                    "newDescription": server_info(&c.new_description),
                },
            );
        }
    }

    fn heartbeat(&self, e: &HeartbeatEvent) {
        let (name, awaited) = match e {
            HeartbeatEvent::Started(h) => ("serverHeartbeatStartedEvent", h.awaited),
            HeartbeatEvent::Succeeded(h) => ("serverHeartbeatSucceededEvent", h.awaited),
            HeartbeatEvent::Failed(h) => ("serverHeartbeatFailedEvent", h.awaited),
        };
        self.push(name, doc! {"awaited": awaited});
    }

    fn topology(&self, e: &TopologyEvent) {
        match e {
            TopologyEvent::Opening(_) => self.push("topologyOpeningEvent", doc! {}),
            TopologyEvent::Closed(_) => self.push("topologyClosedEvent", doc! {}),
            TopologyEvent::DescriptionChanged(c) => self.push(
                "topologyDescriptionChangedEvent",
                doc! {
                    "previousDescription": topology_info(&c.previous_description),
                    "newDescription": topology_info(&c.new_description),
                },
            ),
        }
    }
}

fn ids(b: &mut Document, service: Option<bson::oid::ObjectId>, server_conn: Option<i64>) {
    if let Some(s) = service {
        b.insert("serviceId", s);
    }
    if let Some(c) = server_conn {
        b.insert("serverConnectionId", c);
    }
}

fn server_info(s: &ServerInfo) -> Document {
    doc! {"type": s.server_type.name()}
}

fn topology_info(t: &TopologyInfo) -> Document {
    doc! {"type": t.topology_type.name()}
}

/// The listener half: one value implements every listener trait.
struct Feed(Arc<EventLog>);

impl CommandListener for Feed {
    fn handle(&self, event: &CommandEvent) {
        self.0.command(event);
    }
}
impl PoolListener for Feed {
    fn handle(&self, event: &CmapEvent) {
        self.0.cmap(event);
    }
}
impl ServerListener for Feed {
    fn handle(&self, event: &ServerEvent) {
        self.0.server(event);
    }
}
impl HeartbeatListener for Feed {
    fn handle(&self, event: &HeartbeatEvent) {
        self.0.heartbeat(event);
    }
}
impl TopologyListener for Feed {
    fn handle(&self, event: &TopologyEvent) {
        self.0.topology(event);
    }
}

/// Matches one observed event against an `expectedEvent` (`{name: {assertions}}`).
pub(crate) fn event_matches(
    expected: &Document,
    actual: &Observed,
    lookup: &dyn Lookup,
) -> Result<(), String> {
    let (name, fields) = expected
        .iter()
        .next()
        .ok_or("an expected event must have one key")?;
    if name != actual.name {
        return Err(format!(
            "expected {name}, got {} {}",
            actual.name, actual.body
        ));
    }
    let fields = fields
        .as_document()
        .ok_or_else(|| format!("{name}: the assertions must be an object"))?;
    for (k, v) in fields {
        match k.as_str() {
            "hasServiceId" => {
                let has = match actual.body.get("serviceId") {
                    Some(Bson::ObjectId(o)) => o.bytes() != [0; 12],
                    _ => false,
                };
                if v.as_bool() != Some(has) {
                    return Err(format!(
                        "{name}: hasServiceId {v}, but serviceId is {:?}",
                        actual.body.get("serviceId")
                    ));
                }
            }
            "hasServerConnectionId" => {
                let has = actual
                    .body
                    .get("serverConnectionId")
                    .and_then(matching::as_f64)
                    .is_some_and(|n| n > 0.0);
                if v.as_bool() != Some(has) {
                    return Err(format!(
                        "{name}: hasServerConnectionId {v}, but it is {:?}",
                        actual.body.get("serverConnectionId")
                    ));
                }
            }
            "command" | "reply" | "previousDescription" | "newDescription" => {
                matching::matches(v, actual.body.get(k), true, lookup)
                    .map_err(|e| format!("{name}.{k}: {e}"))?;
            }
            _ => matching::matches(v, actual.body.get(k), false, lookup)
                .map_err(|e| format!("{name}.{k}: {e}"))?,
        }
    }
    Ok(())
}

/// `expectEvents` for one client: the events of `kind` in order, exactly (or a prefix when
/// `ignoreExtraEvents`).
pub(crate) fn expect_events(
    spec: &Document,
    observed: &[Observed],
    lookup: &dyn Lookup,
) -> Result<(), String> {
    let kind = match spec.get_str("eventType") {
        Ok(s) => Kind::from_name(s).ok_or_else(|| format!("unknown eventType {s}"))?,
        Err(_) => Kind::Command,
    };
    let expected = spec
        .get_array("events")
        .map_err(|_| "events must be an array")?;
    let ignore_extra = spec.get_bool("ignoreExtraEvents").unwrap_or(false);
    let actual: Vec<&Observed> = observed.iter().filter(|o| o.kind == kind).collect();
    for (i, e) in expected.iter().enumerate() {
        let e = e
            .as_document()
            .ok_or("an expected event must be an object")?;
        let Some(a) = actual.get(i) else {
            return Err(format!(
                "event {i}: expected {e}, but only {} {kind:?} events were observed: {}",
                actual.len(),
                list(&actual)
            ));
        };
        event_matches(e, a, lookup)
            .map_err(|m| format!("event {i}: {m}; observed: {}", list(&actual)))?;
    }
    if !ignore_extra && actual.len() > expected.len() {
        return Err(format!(
            "{} {kind:?} events expected, {} observed: {}",
            expected.len(),
            actual.len(),
            list(&actual)
        ));
    }
    Ok(())
}

fn list(events: &[&Observed]) -> String {
    let names: Vec<String> = events
        .iter()
        .map(|o| match o.body.get_str("commandName") {
            Ok(c) => format!("{}({c})", o.name),
            Err(_) => o.name.to_string(),
        })
        .collect();
    format!("[{}]", names.join(", "))
}

/// How many observed events match `expected`.
pub(crate) fn count_matching(
    expected: &Document,
    observed: &[Observed],
    lookup: &dyn Lookup,
) -> usize {
    observed
        .iter()
        .filter(|o| event_matches(expected, o, lookup).is_ok())
        .count()
}
