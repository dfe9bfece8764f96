//! Log messages as the unified format sees them. One process-wide `tracing` layer receives the
//! client's own log events (targets `mongo::command`, `mongo::connection`, `mongo::topology`,
//! `mongo::server_selection`) and gives each to the client entity whose span it ran in: the
//! runner builds each client inside a span `unified_client` with a numeric `client` field,
//! and the client runs its background tasks inside the span it was built in.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bson::{Bson, Document};
use parking_lot::Mutex;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use super::matching::{self, Lookup};

/// One captured log message.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) level: &'static str,
    pub(crate) component: &'static str,
    pub(crate) data: Document,
}

/// The messages of one client entity, and what it observes (component → lowest level).
#[derive(Debug, Default)]
pub(crate) struct LogStore {
    observe: HashMap<String, u8>,
    messages: Mutex<Vec<Message>>,
    closed: std::sync::atomic::AtomicBool,
}

impl LogStore {
    /// Stops recording.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// The messages so far.
    pub(crate) fn snapshot(&self) -> Vec<Message> {
        self.messages.lock().clone()
    }
}

/// Severity ranks: the logging spec's levels, lowest number most severe.
fn rank(level: &str) -> Option<u8> {
    Some(match level {
        "emergency" => 0,
        "alert" => 1,
        "critical" => 2,
        "error" => 3,
        "warning" | "warn" => 4,
        "notice" => 5,
        "informational" | "info" => 6,
        "debug" => 7,
        "trace" => 8,
        _ => return None,
    })
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

fn component(target: &str) -> Option<&'static str> {
    Some(match target {
        "mongo::command" => "command",
        "mongo::connection" => "connection",
        "mongo::topology" => "topology",
        "mongo::server_selection" => "serverSelection",
        _ => return None,
    })
}

type Registry = Mutex<HashMap<u64, Arc<LogStore>>>;

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(Registry::default)
}

/// Installs the capturing layer as the process's subscriber (once).
pub(crate) fn install() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let subscriber = tracing_subscriber::registry().with(Capture);
        // If someone installed a subscriber first, log messages cannot be observed: the
        // tests that expect them fail and say why.
        let _ = tracing::subscriber::set_global_default(subscriber);
        tracing::callsite::rebuild_interest_cache();
    });
}

/// A new client tag and its store, from `observeLogMessages` (`None`: observes nothing).
pub(crate) fn register(observe: Option<&Document>) -> Result<(u64, Arc<LogStore>), String> {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let mut map = HashMap::new();
    if let Some(o) = observe {
        for (component, level) in o {
            let level = level
                .as_str()
                .and_then(rank)
                .ok_or_else(|| format!("observeLogMessages.{component}: unknown level {level}"))?;
            map.insert(component.clone(), level);
        }
    }
    let tag = NEXT.fetch_add(1, Ordering::Relaxed);
    let store = Arc::new(LogStore {
        observe: map,
        ..LogStore::default()
    });
    registry().lock().insert(tag, store.clone());
    Ok((tag, store))
}

/// Forgets a client's store (its late background messages go nowhere).
pub(crate) fn unregister(tag: u64) {
    registry().lock().remove(&tag);
}

/// The span a client entity is built and used in.
pub(crate) fn client_span(tag: u64) -> tracing::Span {
    tracing::info_span!(target: "unified", "unified_client", client = tag)
}

struct Tag(u64);

struct Capture;

struct TagVisitor(Option<u64>);

impl Visit for TagVisitor {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "client" {
            self.0 = Some(value);
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "client" {
            self.0 = u64::try_from(value).ok();
        }
    }
    fn record_debug(&mut self, _field: &Field, _value: &dyn fmt::Debug) {}
}

struct DataVisitor(Document);

impl Visit for DataVisitor {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name(), value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name(), value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        let v = i64::try_from(value).map_or(Bson::Double(value as f64), Bson::Int64);
        self.0.insert(field.name(), v);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name(), value);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name(), value);
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }
}

impl<S> Layer<S> for Capture
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "unified_client" {
            return;
        }
        let mut v = TagVisitor(None);
        attrs.record(&mut v);
        if let (Some(tag), Some(span)) = (v.0, ctx.span(id)) {
            span.extensions_mut().insert(Tag(tag));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let Some(component) = component(meta.target()) else {
            return;
        };
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        let Some(tag) = scope
            .into_iter()
            .find_map(|span| span.extensions().get::<Tag>().map(|t| t.0))
        else {
            return;
        };
        let Some(store) = registry().lock().get(&tag).cloned() else {
            return;
        };
        if store.closed.load(Ordering::SeqCst) {
            return;
        }
        let level = level_name(*meta.level());
        let wanted = store
            .observe
            .get(component)
            .is_some_and(|min| rank(level).is_some_and(|r| r <= *min));
        if !wanted {
            return;
        }
        let mut v = DataVisitor(Document::new());
        event.record(&mut v);
        store.messages.lock().push(Message {
            level,
            component,
            data: v.0,
        });
    }
}

fn message_matches(
    expected: &Document,
    actual: &Message,
    lookup: &dyn Lookup,
) -> Result<(), String> {
    let level = expected.get_str("level").map_err(|_| "level is required")?;
    if rank(level) != rank(actual.level) {
        return Err(format!("level: expected {level}, got {}", actual.level));
    }
    let component = expected
        .get_str("component")
        .map_err(|_| "component is required")?;
    if component != actual.component {
        return Err(format!(
            "component: expected {component}, got {}",
            actual.component
        ));
    }
    if let Ok(redacted) = expected.get_bool("failureIsRedacted") {
        let failure = actual
            .data
            .get("failure")
            .ok_or("failureIsRedacted: the message has no failure")?;
        let text = match failure {
            Bson::String(s) => s.clone(),
            other => other.to_string(),
        };
        // The client writes a failure as the error's text; redaction (a sensitive command's
        // server error) keeps the code, codeName and labels and writes `REDACTED` for the
        // message, and never leaves a failure empty.
        if text.is_empty() {
            return Err("the failure is empty".into());
        }
        let is_redacted = text.contains("REDACTED");
        if is_redacted != redacted {
            return Err(format!(
                "failureIsRedacted {redacted}, but the failure is {text}"
            ));
        }
    }
    let data = expected
        .get_document("data")
        .map_err(|_| "data is required")?;
    matching::matches(
        &Bson::Document(data.clone()),
        Some(&Bson::Document(actual.data.clone())),
        true,
        lookup,
    )
}

fn show(m: &Message) -> String {
    format!(
        "{} {} {}",
        m.level,
        m.component,
        m.data.get_str("message").unwrap_or("?")
    )
}

/// `expectLogMessages` for one client.
pub(crate) fn expect_messages(
    spec: &Document,
    observed: &[Message],
    lookup: &dyn Lookup,
) -> Result<(), String> {
    let expected = spec
        .get_array("messages")
        .map_err(|_| "messages must be an array")?;
    let ignore: Vec<&Document> = match spec.get_array("ignoreMessages") {
        Ok(a) => a.iter().filter_map(Bson::as_document).collect(),
        Err(_) => Vec::new(),
    };
    let ignore_extra = spec.get_bool("ignoreExtraMessages").unwrap_or(false);
    let actual: Vec<&Message> = observed
        .iter()
        .filter(|m| !ignore.iter().any(|i| message_matches(i, m, lookup).is_ok()))
        .collect();
    let listing = || {
        actual
            .iter()
            .map(|m| show(m))
            .collect::<Vec<_>>()
            .join("; ")
    };
    for (i, e) in expected.iter().enumerate() {
        let e = e
            .as_document()
            .ok_or("an expected message must be an object")?;
        let Some(a) = actual.get(i) else {
            return Err(format!(
                "message {i}: expected {e}, but only {} messages were observed: {}",
                actual.len(),
                listing()
            ));
        };
        message_matches(e, a, lookup).map_err(|m| format!("message {i} ({}): {m}", show(a)))?;
    }
    if !ignore_extra && actual.len() > expected.len() {
        return Err(format!(
            "{} messages expected, {} observed: {}",
            expected.len(),
            actual.len(),
            listing()
        ));
    }
    Ok(())
}
