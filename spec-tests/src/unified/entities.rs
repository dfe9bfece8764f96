//! The entity map: clients (with their event log and log store), databases, collections,
//! cursors, BSON values, event lists, topology descriptions and threads.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bson::{Bson, Document};
use mongo_client::{
    Acknowledgment, ChangeStream, Client, ClientOptions, Collection, Cursor, Database,
    DatabaseOptions, ReadConcern, ReadPreference, ServerApi, TopologyDescription, WriteConcern,
};
use parking_lot::Mutex;
use tracing::Instrument;

use super::Fail;
use super::deployment::Env;
use super::events::{EventLog, Observe};
use super::logs::{self, LogStore};
use super::sessions::SessionEntity;
use super::threads::ThreadEntity;

/// A client entity and what the runner keeps beside it.
pub(crate) struct ClientEntity {
    pub(crate) client: Client,
    pub(crate) events: Arc<EventLog>,
    pub(crate) logs: Arc<LogStore>,
    pub(crate) tag: u64,
    pub(crate) span: tracing::Span,
}

impl Drop for ClientEntity {
    fn drop(&mut self) {
        logs::unregister(self.tag);
    }
}

/// A cursor entity (a find cursor, a command cursor or a change stream).
pub(crate) struct CursorEntity {
    pub(crate) cursor: Option<AnyCursor>,
}

/// What a cursor entity iterates.
pub(crate) enum AnyCursor {
    /// A find, aggregate or command cursor.
    Cursor(Cursor),
    /// A change stream, its events as documents.
    ChangeStream(ChangeStream<Document>),
}

impl From<Cursor> for AnyCursor {
    fn from(c: Cursor) -> Self {
        AnyCursor::Cursor(c)
    }
}

impl From<ChangeStream<Document>> for AnyCursor {
    fn from(c: ChangeStream<Document>) -> Self {
        AnyCursor::ChangeStream(c)
    }
}

impl AnyCursor {
    /// The next document, waiting for it; `None` at the end.
    pub(crate) async fn try_next(&mut self) -> mongo_client::Result<Option<Document>> {
        match self {
            AnyCursor::Cursor(c) => c.try_next().await,
            AnyCursor::ChangeStream(c) => c.next().await,
        }
    }

    /// The next document from at most one getMore.
    pub(crate) async fn try_next_once(&mut self) -> mongo_client::Result<Option<Document>> {
        match self {
            AnyCursor::Cursor(c) => c.try_next_once().await,
            AnyCursor::ChangeStream(c) => c.next_if_any().await,
        }
    }

    /// Closes it (kills the server's cursor), the killCursors of a find, aggregate or command
    /// cursor within `timeout` when given. A change stream has no timeoutMS of its own yet
    /// (issue 21): its close takes the client's.
    pub(crate) async fn close_within(self, timeout: Option<std::time::Duration>) {
        match self {
            AnyCursor::Cursor(c) => c.close_within(timeout).await,
            AnyCursor::ChangeStream(c) => c.close().await,
        }
    }
}

/// Anything the entity map holds.
#[derive(Clone)]
pub(crate) enum Entity {
    Client(Arc<ClientEntity>),
    Database(Database, Arc<ClientEntity>),
    Collection(Collection, Arc<ClientEntity>),
    Cursor(Arc<tokio::sync::Mutex<CursorEntity>>),
    Bson(Bson),
    Events(Arc<Mutex<Vec<Document>>>),
    Topology(Box<TopologyDescription>),
    Thread(Arc<ThreadEntity>),
    /// A GridFS bucket and the client entity of its database.
    Bucket(mongo_client::GridFsBucket, Arc<ClientEntity>),
    /// An explicit session.
    Session(Arc<SessionEntity>),
}

impl Entity {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Entity::Client(_) => "client",
            Entity::Database(..) => "database",
            Entity::Collection(..) => "collection",
            Entity::Cursor(_) => "cursor",
            Entity::Bson(_) => "BSON value",
            Entity::Events(_) => "event list",
            Entity::Topology(_) => "topology description",
            Entity::Thread(_) => "thread",
            Entity::Bucket(..) => "bucket",
            Entity::Session(_) => "session",
        }
    }
}

/// The entity map of one test.
#[derive(Clone, Default)]
pub(crate) struct Entities {
    pub(crate) map: Arc<Mutex<HashMap<String, Entity>>>,
    /// The test configures fail points: clients that do not set heartbeatFrequencyMS get the
    /// lowest allowed one (the format's "MAY specify a reduced value for
    /// heartbeatFrequencyMS"), so that a streaming monitor meets the fail point soon.
    pub(crate) fast_heartbeat: bool,
}

macro_rules! getter {
    ($fn:ident, $variant:ident, $ty:ty) => {
        pub(crate) fn $fn(&self, name: &str) -> Result<$ty, Fail> {
            match self.get(name)? {
                Entity::$variant(x) => Ok(x),
                other => Err(Fail::runner(format!(
                    "entity {name} is a {}, not a {}",
                    other.kind(),
                    stringify!($variant)
                ))),
            }
        }
    };
}

impl Entities {
    pub(crate) fn get(&self, name: &str) -> Result<Entity, Fail> {
        self.map
            .lock()
            .get(name)
            .cloned()
            .ok_or_else(|| Fail::runner(format!("no entity named {name}")))
    }

    pub(crate) fn insert(&self, name: &str, e: Entity) -> Result<(), Fail> {
        let mut map = self.map.lock();
        if map.contains_key(name) {
            return Err(Fail::runner(format!("entity {name} already exists")));
        }
        map.insert(name.to_string(), e);
        Ok(())
    }

    pub(crate) fn all(&self) -> Vec<(String, Entity)> {
        self.map
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub(crate) fn clear(&self) {
        self.map.lock().clear();
    }

    getter!(client, Client, Arc<ClientEntity>);

    pub(crate) fn database(&self, name: &str) -> Result<(Database, Arc<ClientEntity>), Fail> {
        match self.get(name)? {
            Entity::Database(d, c) => Ok((d, c)),
            other => Err(Fail::runner(format!(
                "entity {name} is a {}, not a database",
                other.kind()
            ))),
        }
    }
    getter!(thread, Thread, Arc<ThreadEntity>);
}

impl super::matching::Lookup for Entities {
    fn bson_entity(&self, name: &str) -> Result<Bson, String> {
        match self.get(name).map_err(|f| f.to_string())? {
            Entity::Bson(b) => Ok(b),
            Entity::Events(list) => Ok(Bson::Array(
                list.lock().iter().cloned().map(Bson::Document).collect(),
            )),
            other => Err(format!(
                "entity {name} is a {}, not a BSON value",
                other.kind()
            )),
        }
    }
    fn session_lsid(&self, name: &str) -> Result<Document, String> {
        super::sessions::lsid(self, name)
    }
}

fn string_list(d: &Document, key: &str) -> Result<HashSet<String>, Fail> {
    match d.get(key) {
        None => Ok(HashSet::new()),
        Some(Bson::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| Fail::runner(format!("{key}: strings expected")))
            })
            .collect(),
        Some(_) => Err(Fail::runner(format!("{key} must be an array"))),
    }
}

fn uri_value(v: &Bson) -> Result<String, Fail> {
    Ok(match v {
        Bson::String(s) => s.clone(),
        Bson::Boolean(b) => b.to_string(),
        Bson::Int32(i) => i.to_string(),
        Bson::Int64(i) => i.to_string(),
        Bson::Double(d) => d.to_string(),
        Bson::Document(d) => {
            if d.contains_key("$$placeholder") {
                return Err(Fail::unsupported(
                    "a $$placeholder URI option (no test environment values)",
                ));
            }
            d.iter()
                .map(|(k, v)| Ok(format!("{k}:{}", uri_value(v)?)))
                .collect::<Result<Vec<_>, Fail>>()?
                .join(",")
        }
        other => {
            return Err(Fail::runner(format!(
                "URI option value {other} cannot be written"
            )));
        }
    })
}

/// A URI with only its first seed and without `replicaSet` (for `directConnection=true`).
pub(crate) fn single_seed(uri: &str) -> String {
    let (scheme, rest) = uri.split_once("://").unwrap_or(("mongodb", uri));
    let (hosts, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (userinfo, hosts) = match hosts.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), hosts),
    };
    let first = hosts.split(',').next().unwrap_or(hosts);
    let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.to_ascii_lowercase().starts_with("replicaset="))
        .collect();
    let path = if path.is_empty() { "/" } else { path };
    if kept.is_empty() {
        format!("{scheme}://{userinfo}{first}{path}")
    } else {
        format!("{scheme}://{userinfo}{first}{path}?{}", kept.join("&"))
    }
}

/// The deployment's URI with `uriOptions` applied (they override the URI's own options).
pub(crate) fn apply_uri_options(base: &str, options: &Document) -> Result<String, Fail> {
    let (head, query) = base.split_once('?').unwrap_or((base, ""));
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    for (k, v) in options {
        pairs.retain(|(have, _)| !have.eq_ignore_ascii_case(k));
        match v {
            Bson::Array(items) => {
                for item in items {
                    pairs.push((k.clone(), uri_value(item)?));
                }
            }
            _ => pairs.push((k.clone(), uri_value(v)?)),
        }
    }
    let mut head = head.to_string();
    if !head.ends_with('/') && !head[head.find("://").map_or(0, |i| i + 3)..].contains('/') {
        head.push('/');
    }
    if pairs.is_empty() {
        return Ok(head);
    }
    let q: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    Ok(format!("{head}?{}", q.join("&")))
}

/// Creates a client entity.
pub(crate) async fn create_client(
    spec: &Document,
    env: &Env,
    entities: &Entities,
) -> Result<(String, Arc<ClientEntity>), Fail> {
    let id = spec
        .get_str("id")
        .map_err(|_| Fail::runner("client.id is required"))?
        .to_string();
    for key in spec.keys() {
        match key.as_str() {
            "id"
            | "uriOptions"
            | "useMultipleMongoses"
            | "observeEvents"
            | "ignoreCommandMonitoringEvents"
            | "observeSensitiveCommands"
            | "storeEventsAsEntities"
            | "observeLogMessages"
            | "serverApi"
            | "awaitMinPoolSizeMS" => {}
            "observeTracingMessages" => {
                return Err(Fail::unsupported(
                    "observeTracingMessages (OpenTelemetry spans, issue 19)",
                ));
            }
            "autoEncryptOpts" => {
                return Err(Fail::unsupported(
                    "autoEncryptOpts (client-side encryption)",
                ));
            }
            other => return Err(Fail::runner(format!("unknown client option {other}"))),
        }
    }
    let multiple = spec.get_bool("useMultipleMongoses").ok();
    let mut base = env.uri_for(multiple)?;
    let direct = spec
        .get_document("uriOptions")
        .is_ok_and(|o| o.get_bool("directConnection").unwrap_or(false));
    if direct {
        base = single_seed(&base);
    }
    let mut uri_options = spec.get_document("uriOptions").cloned().unwrap_or_default();
    if entities.fast_heartbeat
        && !uri_options
            .keys()
            .any(|k| k.eq_ignore_ascii_case("heartbeatFrequencyMS"))
    {
        uri_options.insert("heartbeatFrequencyMS", 500);
    }
    let uri = apply_uri_options(&base, &uri_options)?;

    let mut stores = Vec::new();
    if let Ok(list) = spec.get_array("storeEventsAsEntities") {
        for s in list {
            let s = s
                .as_document()
                .ok_or_else(|| Fail::runner("storeEventsAsEntities: objects"))?;
            let name = s
                .get_str("id")
                .map_err(|_| Fail::runner("storeEventsAsEntities.id"))?;
            let names = string_list(s, "events")?;
            let list = Arc::new(Mutex::new(Vec::new()));
            entities.insert(name, Entity::Events(list.clone()))?;
            stores.push((list, names));
        }
    }
    let observe = Observe {
        names: string_list(spec, "observeEvents")?,
        ignore_commands: string_list(spec, "ignoreCommandMonitoringEvents")?,
        sensitive: spec.get_bool("observeSensitiveCommands").unwrap_or(false),
        stores,
    };
    for n in &observe.names {
        if super::events::Kind::of(n).is_none() {
            return Err(Fail::unsupported(format!("observing {n}")));
        }
    }
    let events = EventLog::new(observe);
    let (tag, log_store) =
        logs::register(spec.get_document("observeLogMessages").ok()).map_err(Fail::runner)?;
    let span = logs::client_span(tag);

    let parsed = mongo_client::ConnectionString::parse(&uri)
        .map_err(|e| Fail::from_uri_error(format_args!("client {id}: {uri}"), &e))?;
    // A URI option the client does not know (the deprecated CMAP options waitQueueSize and
    // waitQueueMultiple, which the CMAP spec forbids adding) is ignored with a warning, as the
    // URI options spec says; a test that needs it cannot be run.
    if let Some(w) = parsed
        .warnings
        .iter()
        .find(|w| w.starts_with("Unsupported option"))
    {
        return Err(Fail::unsupported(format!("client {id}: {w}")));
    }
    let options: ClientOptions = parsed.options;
    let mut builder = Client::builder()
        .options(options)
        .listeners(events.listeners());
    if let Ok(api) = spec.get_document("serverApi") {
        let version = api
            .get_str("version")
            .map_err(|_| Fail::runner("serverApi.version"))?;
        if version != "1" {
            return Err(Fail::runner(format!(
                "serverApi version {version} is not supported by the driver"
            )));
        }
        let mut a = ServerApi::v1();
        a.strict = api.get_bool("strict").ok();
        a.deprecation_errors = api.get_bool("deprecationErrors").ok();
        builder = builder.server_api(a);
    }
    let client = builder
        .build()
        .instrument(span.clone())
        .await
        .map_err(|e| match e.kind() {
            mongo_client::ErrorKind::Uri(u) => Fail::from_uri_error(format_args!("client {id}"), u),
            _ => Fail::runner(format!("client {id}: {e}")),
        })?;
    if let Ok(ms) = spec
        .get_i64("awaitMinPoolSizeMS")
        .or_else(|_| spec.get_i32("awaitMinPoolSizeMS").map(i64::from))
    {
        await_min_pool(
            &client,
            Duration::from_millis(u64::try_from(ms).unwrap_or(0)),
        )
        .await?;
        events.clear();
    }
    Ok((
        id,
        Arc::new(ClientEntity {
            client,
            events,
            logs: log_store,
            tag,
            span,
        }),
    ))
}

async fn await_min_pool(client: &Client, limit: Duration) -> Result<(), Fail> {
    let min = client.options().min_pool_size.unwrap_or(0) as usize;
    if min == 0 {
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let td = client.topology_description();
        let data_bearing: Vec<_> = td
            .servers()
            .filter(|s| s.server_type.is_data_bearing())
            .map(|s| s.address.clone())
            .collect();
        let stats = client.pool_stats();
        let full = !data_bearing.is_empty()
            && data_bearing.iter().all(|a| {
                stats
                    .iter()
                    .any(|p| &p.address == a && p.stats.total - p.stats.pending >= min)
            });
        if full {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Fail::runner(format!(
                "the pools did not reach minPoolSize {min} within {limit:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Creates every entity of a `createEntities` list.
pub(crate) async fn create_entities(
    list: &[Document],
    env: &Env,
    entities: &Entities,
) -> Result<(), Fail> {
    for e in list {
        let (kind, spec) = e
            .iter()
            .next()
            .ok_or_else(|| Fail::runner("an entity must have one key"))?;
        let spec = spec
            .as_document()
            .ok_or_else(|| Fail::runner(format!("{kind}: an object expected")))?;
        let id = spec
            .get_str("id")
            .map_err(|_| Fail::runner(format!("{kind}.id is required")))?;
        match kind.as_str() {
            "client" => {
                let (id, c) = create_client(spec, env, entities).await?;
                entities.insert(&id, Entity::Client(c))?;
            }
            "database" => {
                let client = entities.client(
                    spec.get_str("client")
                        .map_err(|_| Fail::runner("database.client"))?,
                )?;
                let name = spec
                    .get_str("databaseName")
                    .map_err(|_| Fail::runner("databaseName"))?;
                let db = match spec.get_document("databaseOptions") {
                    Ok(o) => client
                        .client
                        .database_with_options(name, handle_options(o)?),
                    Err(_) => client.client.database(name),
                };
                entities.insert(id, Entity::Database(db, client.clone()))?;
            }
            "collection" => {
                let (db, client) = entities.database(
                    spec.get_str("database")
                        .map_err(|_| Fail::runner("collection.database"))?,
                )?;
                let name = spec
                    .get_str("collectionName")
                    .map_err(|_| Fail::runner("collectionName"))?;
                let coll = match spec.get_document("collectionOptions") {
                    Ok(o) => db.collection_with_options(name, handle_options(o)?),
                    Err(_) => db.collection(name),
                };
                entities.insert(id, Entity::Collection(coll, client))?;
            }
            "thread" => {
                entities.insert(id, Entity::Thread(ThreadEntity::start()))?;
            }
            "session" => {
                entities.insert(id, super::sessions::create(spec, entities)?)?;
            }
            "bucket" => super::gridfs::create_bucket(spec, id, entities)?,
            "clientEncryption" => {
                return Err(Fail::unsupported(
                    "clientEncryption entities (client-side encryption)",
                ));
            }
            other => return Err(Fail::runner(format!("unknown entity type {other}"))),
        }
    }
    Ok(())
}

/// Database and collection options (`collectionOrDatabaseOptions`).
pub(crate) fn handle_options(o: &Document) -> Result<DatabaseOptions, Fail> {
    let mut out = DatabaseOptions::default();
    for (k, v) in o {
        match k.as_str() {
            "readConcern" => {
                let level = v
                    .as_document()
                    .and_then(|d| d.get_str("level").ok())
                    .ok_or_else(|| Fail::runner(format!("readConcern {v}: a level is required")))?;
                out = out.read_concern(ReadConcern::new(level));
            }
            "writeConcern" => out = out.write_concern(write_concern(v)?),
            "readPreference" => {
                let rp = v
                    .as_document()
                    .ok_or_else(|| Fail::runner("readPreference must be an object"))?;
                out = out.read_preference(read_preference(rp)?);
            }
            "timeoutMS" => out = out.timeout(millis(v, "timeoutMS")?),
            other => {
                return Err(Fail::runner(format!(
                    "unknown collection/database option {other}"
                )));
            }
        }
    }
    Ok(out)
}

/// A duration in milliseconds (`timeoutMS` and the like).
pub(crate) fn millis(v: &Bson, what: &str) -> Result<Duration, Fail> {
    whole_number(v, what).map(Duration::from_millis)
}

fn whole_number(v: &Bson, what: &str) -> Result<u64, Fail> {
    super::matching::as_f64(v)
        .filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0)
        .and_then(|f| format!("{f:.0}").parse::<u64>().ok())
        .ok_or_else(|| Fail::runner(format!("{what}: {v} is not a whole number")))
}

/// A `writeConcern` document of a test file.
pub(crate) fn write_concern(v: &Bson) -> Result<WriteConcern, Fail> {
    let d = v
        .as_document()
        .ok_or_else(|| Fail::runner("writeConcern must be an object"))?;
    let mut wc = WriteConcern::default();
    for (k, v) in d {
        match (k.as_str(), v) {
            ("w", Bson::String(s)) if s == "majority" => wc.w = Some(Acknowledgment::Majority),
            ("w", Bson::String(s)) => wc.w = Some(Acknowledgment::Custom(s.clone())),
            ("w", n) => {
                let n = u32::try_from(whole_number(n, "w")?)
                    .map_err(|_| Fail::runner(format!("w: {n}")))?;
                wc.w = Some(Acknowledgment::Nodes(n));
            }
            ("j" | "journal", Bson::Boolean(b)) => wc.journal = Some(*b),
            ("wtimeout" | "wtimeoutMS", n) => {
                wc.w_timeout = Some(Duration::from_millis(whole_number(n, "wtimeout")?));
            }
            (other, _) => return Err(Fail::runner(format!("unknown writeConcern field {other}"))),
        }
    }
    Ok(wc)
}

/// A `readPreference` document of a test file.
pub(crate) fn read_preference(d: &Document) -> Result<ReadPreference, Fail> {
    let mode = d
        .get_str("mode")
        .map_err(|_| Fail::runner("readPreference.mode"))?;
    let mode = mongo_client::ReadMode::from_name(mode)
        .ok_or_else(|| Fail::runner(format!("unknown read preference mode {mode}")))?;
    let mut rp = ReadPreference::new(mode);
    for (k, v) in d {
        match k.as_str() {
            "mode" => {}
            "maxStalenessSeconds" => {
                let secs = whole_number(v, "maxStalenessSeconds")?;
                rp = rp.with_max_staleness(Some(Duration::from_secs(secs)));
            }
            "tagSets" => {
                let sets = v
                    .as_array()
                    .ok_or_else(|| Fail::runner("tagSets must be an array"))?
                    .iter()
                    .map(|s| {
                        s.as_document()
                            .map(|d| {
                                d.iter()
                                    .map(|(k, v)| {
                                        (k.clone(), v.as_str().unwrap_or_default().to_string())
                                    })
                                    .collect()
                            })
                            .ok_or_else(|| Fail::runner("a tag set must be an object"))
                    })
                    .collect::<Result<Vec<_>, Fail>>()?;
                rp = rp.with_tag_sets(sets);
            }
            other => return Err(Fail::unsupported(format!("readPreference option {other}"))),
        }
    }
    Ok(rp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn direct_connections_get_one_seed_and_no_set_name() {
        assert_eq!(
            single_seed("mongodb://u:p@h1:1,h2:2/?replicaSet=rs0&w=1"),
            "mongodb://u:p@h1:1/?w=1"
        );
        assert_eq!(
            single_seed("mongodb://h1:1,h2:2/?replicaSet=rs0"),
            "mongodb://h1:1/"
        );
    }

    #[test]
    fn uri_options_override_and_append() {
        let u = apply_uri_options(
            "mongodb://127.0.0.1:1,127.0.0.1:2/?replicaSet=rs0&w=1",
            &doc! {"w": "majority", "retryWrites": false, "heartbeatFrequencyMS": 500,
            "readPreferenceTags": ["a:1", "b:2"]},
        )
        .unwrap();
        assert_eq!(
            u,
            "mongodb://127.0.0.1:1,127.0.0.1:2/?replicaSet=rs0&w=majority&retryWrites=false&heartbeatFrequencyMS=500&readPreferenceTags=a:1&readPreferenceTags=b:2"
        );
        assert_eq!(
            apply_uri_options("mongodb://h:1", &doc! {"appname": "x"}).unwrap(),
            "mongodb://h:1/?appname=x"
        );
        assert_eq!(
            apply_uri_options(
                "mongodb://h:1",
                &doc! {"authMechanismProperties": {"A": "b", "C": "d"}}
            )
            .unwrap(),
            "mongodb://h:1/?authMechanismProperties=A:b,C:d"
        );
    }
}
