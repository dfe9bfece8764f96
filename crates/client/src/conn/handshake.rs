//! The connection handshake (handshake spec): the client metadata document with its 512-byte
//! limit, the hello command, and what a connection keeps from the reply. Sans-I/O.

use bson::{Bson, Document, doc};
use mongo_events::{ServerType, ServiceId};

use crate::error::BsonExt;

/// The most bytes the `client` metadata document may take, encoded.
pub const MAX_METADATA_SIZE: usize = 512;

/// The client backpressure spec version the handshake spec asks a client to declare (not sent
/// yet, see [`hello_command`]).
pub const BACKPRESSURE_VERSION: &str = "2";

/// The driver's name in the client metadata.
pub const DRIVER_NAME: &str = "mongo-rs";

/// The Stable API version declared to the server (`apiVersion`, `apiStrict`,
/// `apiDeprecationErrors`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerApi {
    /// The version, e.g. `"1"`.
    pub version: String,
    /// `apiStrict`.
    pub strict: Option<bool>,
    /// `apiDeprecationErrors`.
    pub deprecation_errors: Option<bool>,
}

impl ServerApi {
    /// Version 1, not strict.
    pub fn v1() -> Self {
        ServerApi {
            version: "1".to_owned(),
            strict: None,
            deprecation_errors: None,
        }
    }

    /// Sets `apiStrict`.
    #[must_use]
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = Some(strict);
        self
    }

    /// Appends the API fields to a command.
    pub(crate) fn append_to(&self, command: &mut Document) {
        command.insert("apiVersion", self.version.clone());
        if let Some(s) = self.strict {
            command.insert("apiStrict", s);
        }
        if let Some(d) = self.deprecation_errors {
            command.insert("apiDeprecationErrors", d);
        }
    }
}

fn os_type() -> &'static str {
    match std::env::consts::OS {
        "linux" | "android" => "Linux",
        "macos" | "ios" => "Darwin",
        "windows" => "Windows",
        "freebsd" | "openbsd" | "netbsd" | "dragonfly" => "BSD",
        _ => "Unix",
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn env_int(name: &str) -> Option<i32> {
    env_var(name).and_then(|v| v.parse().ok())
}

/// The FaaS and container environment (`client.env`), read from the process environment.
/// `None` when nothing is detected.
pub fn detect_env() -> Option<Document> {
    let lambda = env_var("AWS_EXECUTION_ENV").is_some_and(|v| v.starts_with("AWS_Lambda_"))
        || env_var("AWS_LAMBDA_RUNTIME_API").is_some();
    let azure = env_var("FUNCTIONS_WORKER_RUNTIME").is_some();
    let gcp = env_var("K_SERVICE").is_some() || env_var("FUNCTION_NAME").is_some();
    let vercel = env_var("VERCEL").is_some();
    let mut env = Document::new();
    // Several FaaS at once is ambiguous: report none (vercel wins over lambda, as the spec says).
    match (lambda, azure, gcp, vercel) {
        (_, false, false, true) => {
            env.insert("name", "vercel");
            if let Some(r) = env_var("VERCEL_REGION") {
                env.insert("region", r);
            }
        }
        (true, false, false, false) => {
            env.insert("name", "aws.lambda");
            if let Some(r) = env_var("AWS_REGION") {
                env.insert("region", r);
            }
            if let Some(m) = env_int("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") {
                env.insert("memory_mb", m);
            }
        }
        (false, true, false, false) => {
            env.insert("name", "azure.func");
        }
        (false, false, true, false) => {
            env.insert("name", "gcp.func");
            if let Some(r) = env_var("FUNCTION_REGION") {
                env.insert("region", r);
            }
            if let Some(m) = env_int("FUNCTION_MEMORY_MB") {
                env.insert("memory_mb", m);
            }
            if let Some(t) = env_int("FUNCTION_TIMEOUT_SEC") {
                env.insert("timeout_sec", t);
            }
        }
        _ => {}
    }
    let mut container = Document::new();
    if std::path::Path::new("/.dockerenv").exists() {
        container.insert("runtime", "docker");
    }
    if env_var("KUBERNETES_SERVICE_HOST").is_some() {
        container.insert("orchestrator", "kubernetes");
    }
    if !container.is_empty() {
        env.insert("container", container);
    }
    (!env.is_empty()).then_some(env)
}

/// The platform string: the Rust version this crate was built for and the runtime.
fn platform() -> String {
    format!(
        "Rust (edition 2024, MSRV {}) / tokio",
        env!("CARGO_PKG_RUST_VERSION")
    )
}

fn encoded_len(doc: &Document) -> usize {
    doc.to_vec().map_or(usize::MAX, |v| v.len())
}

/// Builds the `client` metadata document (driver, os, platform, application, env) and
/// shrinks it to [`MAX_METADATA_SIZE`] in the spec's order: drop `env` fields but `name`,
/// drop `os` fields but `type`, drop `env`, truncate `platform`.
pub fn client_metadata(app_name: Option<&str>, env: Option<Document>) -> Document {
    let mut client = Document::new();
    if let Some(name) = app_name {
        client.insert("application", doc! { "name": name });
    }
    client.insert(
        "driver",
        doc! { "name": DRIVER_NAME, "version": env!("CARGO_PKG_VERSION") },
    );
    client.insert(
        "os",
        doc! {
            "type": os_type(),
            "name": std::env::consts::OS,
            "architecture": std::env::consts::ARCH,
        },
    );
    client.insert("platform", platform());
    if let Some(env) = env {
        client.insert("env", env);
    }
    truncate_metadata(client)
}

/// What a library wrapping the driver adds to the client metadata (the handshake spec's
/// `DriverInfoOptions`): each field set is appended to its metadata field after a `|`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverInfo {
    /// The wrapping library's name (appended to `driver.name`).
    pub name: String,
    /// Its version (appended to `driver.version`).
    pub version: Option<String>,
    /// Its platform (appended to `platform`).
    pub platform: Option<String>,
}

impl DriverInfo {
    /// Driver info with a name only.
    pub fn new(name: impl Into<String>) -> Self {
        DriverInfo {
            name: name.into(),
            ..DriverInfo::default()
        }
    }

    /// Sets the version.
    #[must_use]
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Sets the platform.
    #[must_use]
    pub fn platform(mut self, platform: impl Into<String>) -> Self {
        self.platform = Some(platform.into());
        self
    }

    /// The same info with empty strings as unset (the spec's equality).
    pub(crate) fn normalized(&self) -> DriverInfo {
        let some = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        DriverInfo {
            name: self.name.clone(),
            version: some(&self.version),
            platform: some(&self.platform),
        }
    }
}

/// `metadata` with `info` appended (`|`-delimited), truncated to [`MAX_METADATA_SIZE`].
///
/// # Errors
/// A field that contains the delimiter `|`, as the handshake spec requires.
pub fn append_driver_info(metadata: &Document, info: &DriverInfo) -> Result<Document, String> {
    let info = info.normalized();
    let fields = [
        Some(&info.name),
        info.version.as_ref(),
        info.platform.as_ref(),
    ];
    if fields.iter().flatten().any(|f| f.contains('|')) {
        return Err("driver info must not contain '|', the metadata delimiter".into());
    }
    let mut m = metadata.clone();
    let append = |have: Option<&str>, add: &str| match have {
        Some(h) if !h.is_empty() => format!("{h}|{add}"),
        _ => add.to_owned(),
    };
    let mut driver = m.get_document("driver").cloned().unwrap_or_default();
    if !info.name.is_empty() {
        let name = append(driver.get_str("name").ok(), &info.name);
        driver.insert("name", name);
    }
    if let Some(v) = &info.version {
        let version = append(driver.get_str("version").ok(), v);
        driver.insert("version", version);
    }
    m.insert("driver", driver);
    if let Some(p) = &info.platform {
        let platform = append(m.get_str("platform").ok(), p);
        m.insert("platform", platform);
    }
    Ok(truncate_metadata(m))
}

fn keep_only(doc: &mut Document, key: &str) {
    let others: Vec<String> = doc.keys().filter(|k| *k != key).cloned().collect();
    for k in others {
        doc.remove(&k);
    }
}

/// Applies the spec's truncation order until the document fits in [`MAX_METADATA_SIZE`].
pub fn truncate_metadata(mut client: Document) -> Document {
    if encoded_len(&client) <= MAX_METADATA_SIZE {
        return client;
    }
    if let Ok(env) = client.get_document_mut("env") {
        keep_only(env, "name");
    }
    if encoded_len(&client) <= MAX_METADATA_SIZE {
        return client;
    }
    if let Ok(os) = client.get_document_mut("os") {
        keep_only(os, "type");
    }
    if encoded_len(&client) <= MAX_METADATA_SIZE {
        return client;
    }
    client.remove("env");
    if encoded_len(&client) <= MAX_METADATA_SIZE {
        return client;
    }
    let over = encoded_len(&client).saturating_sub(MAX_METADATA_SIZE);
    if let Ok(platform) = client.get_str("platform") {
        let mut keep = platform.len().saturating_sub(over);
        while keep > 0 && !platform.is_char_boundary(keep) {
            keep -= 1;
        }
        let truncated = platform.get(..keep).unwrap_or_default().to_owned();
        client.insert("platform", truncated);
    }
    client
}

/// What a connection keeps from its handshake reply.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct HelloReply {
    /// The whole reply.
    pub raw: Document,
    /// `maxWireVersion` (0 when absent).
    pub max_wire_version: i32,
    /// `minWireVersion`.
    pub min_wire_version: i32,
    /// `maxBsonObjectSize`.
    pub max_bson_object_size: usize,
    /// `maxMessageSizeBytes`.
    pub max_message_size_bytes: usize,
    /// `maxWriteBatchSize`.
    pub max_write_batch_size: usize,
    /// `connectionId`, the server's id for the connection.
    pub server_connection_id: Option<i64>,
    /// `serviceId` (load balancers).
    pub service_id: Option<ServiceId>,
    /// `compression`: the compressors the server accepted.
    pub compression: Vec<String>,
    /// `helloOk`: the server understands `hello`.
    pub hello_ok: bool,
    /// The server's type by SDAM's rules (`mongo_sdam::server_type_from_hello`).
    pub server_type: ServerType,
    /// `logicalSessionTimeoutMinutes`; `None`: the server has no sessions.
    pub logical_session_timeout_minutes: Option<i64>,
    /// `setName`, for replica set members.
    pub set_name: Option<String>,
}

impl HelloReply {
    /// Reads the fields a connection needs; limits default to the wire crate's defaults.
    pub fn parse(raw: Document) -> HelloReply {
        let int = |k: &str| raw.get(k).and_then(Bson::as_i64_lossy);
        let size = |k: &str, default: usize| {
            int(k)
                .and_then(|v| usize::try_from(v).ok())
                .filter(|v| *v > 0)
                .unwrap_or(default)
        };
        let compression = match raw.get_array("compression") {
            Ok(a) => a
                .iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect(),
            Err(_) => Vec::new(),
        };
        // A server cannot raise the limits beyond what the client accepts.
        let limits = mongo_wire::SizeLimits {
            max_bson_object_size: size(
                "maxBsonObjectSize",
                mongo_wire::limits::DEFAULT_MAX_BSON_OBJECT_SIZE,
            ),
            max_message_size_bytes: size(
                "maxMessageSizeBytes",
                mongo_wire::limits::DEFAULT_MAX_MESSAGE_SIZE_BYTES,
            ),
            max_write_batch_size: size(
                "maxWriteBatchSize",
                mongo_wire::limits::DEFAULT_MAX_WRITE_BATCH_SIZE,
            ),
        }
        .clamped();
        HelloReply {
            max_wire_version: int("maxWireVersion")
                .and_then(|v| i32::try_from(v).ok())
                .unwrap_or(0),
            min_wire_version: int("minWireVersion")
                .and_then(|v| i32::try_from(v).ok())
                .unwrap_or(0),
            max_bson_object_size: limits.max_bson_object_size,
            max_message_size_bytes: limits.max_message_size_bytes,
            max_write_batch_size: limits.max_write_batch_size,
            server_connection_id: int("connectionId"),
            service_id: raw.get_object_id("serviceId").ok().map(ServiceId),
            compression,
            hello_ok: raw.get_bool("helloOk").unwrap_or(false),
            server_type: mongo_sdam::server_type_from_hello(&raw),
            logical_session_timeout_minutes: int("logicalSessionTimeoutMinutes"),
            set_name: raw.get_str("setName").ok().map(str::to_owned),
            raw,
        }
    }

    /// The size limits for batching writes.
    pub fn size_limits(&self) -> mongo_wire::SizeLimits {
        mongo_wire::SizeLimits {
            max_bson_object_size: self.max_bson_object_size,
            max_message_size_bytes: self.max_message_size_bytes,
            max_write_batch_size: self.max_write_batch_size,
        }
    }
}

/// Builds the handshake command: `hello` (OP_MSG, when `use_hello`) or legacy `isMaster` with
/// `helloOk: true`; the client metadata, `compression`, `loadBalanced`, and the server API.
/// The handshake spec's `backpressure: "2"` is not sent yet: briskdb (one of the interop
/// servers) refuses a hello with an unknown field (code 72), which would leave the server
/// Unknown; sending it needs a fallback for such servers first.
pub fn hello_command(
    use_hello: bool,
    metadata: &Document,
    compressors: &[&str],
    load_balanced: bool,
    server_api: Option<&ServerApi>,
) -> Document {
    let mut cmd = if use_hello {
        doc! { "hello": 1 }
    } else {
        doc! { "isMaster": 1 }
    };
    cmd.insert("helloOk", true);
    cmd.insert("client", metadata.clone());
    cmd.insert(
        "compression",
        compressors
            .iter()
            .map(|c| Bson::String((*c).to_owned()))
            .collect::<Vec<_>>(),
    );
    if load_balanced {
        cmd.insert("loadBalanced", true);
    }
    if let Some(api) = server_api {
        api.append_to(&mut cmd);
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_has_the_spec_fields_and_fits() {
        let m = client_metadata(Some("app"), None);
        assert_eq!(
            m.get_document("application").unwrap().get_str("name").ok(),
            Some("app")
        );
        assert_eq!(
            m.get_document("driver").unwrap().get_str("name").ok(),
            Some(DRIVER_NAME)
        );
        assert!(m.get_document("os").unwrap().get_str("type").is_ok());
        assert!(m.get_str("platform").is_ok());
        assert!(encoded_len(&m) <= MAX_METADATA_SIZE);
    }

    #[test]
    fn truncation_follows_the_spec_order() {
        let env = doc! { "name": "aws.lambda", "region": "x".repeat(100), "memory_mb": 1024 };
        let mut m = client_metadata(Some("a"), Some(env.clone()));
        assert_eq!(
            m.get_document("env").unwrap(),
            &env,
            "fits: nothing dropped"
        );

        // Env fields go first.
        let long_region = doc! { "name": "aws.lambda", "region": "r".repeat(300) };
        m = client_metadata(Some("a"), Some(long_region));
        assert_eq!(m.get_document("env").unwrap(), &doc! {"name": "aws.lambda"});
        assert!(m.get_document("os").unwrap().len() > 1);

        // Then os fields, then env, then platform.
        let mut big = m.clone();
        big.insert("platform", "p".repeat(420));
        let t = truncate_metadata(big);
        assert_eq!(
            t.get_document("os").unwrap().keys().collect::<Vec<_>>(),
            ["type"]
        );
        assert!(encoded_len(&t) <= MAX_METADATA_SIZE);

        let mut huge = m;
        huge.insert("platform", "p".repeat(2000));
        let t = truncate_metadata(huge);
        assert!(!t.contains_key("env"));
        assert_eq!(encoded_len(&t), MAX_METADATA_SIZE);
        assert!(t.get_str("platform").unwrap().len() < 2000);
    }

    #[test]
    fn driver_info_is_appended_with_the_delimiter() {
        let m = client_metadata(None, None);
        let info = DriverInfo::new("framework")
            .version("2.0")
            .platform("Framework Platform");
        let out = append_driver_info(&m, &info).unwrap();
        let driver = out.get_document("driver").unwrap();
        assert!(driver.get_str("name").unwrap().ends_with("|framework"));
        assert!(driver.get_str("version").unwrap().ends_with("|2.0"));
        assert!(
            out.get_str("platform")
                .unwrap()
                .ends_with("|Framework Platform")
        );
        // Only the name: version and platform untouched.
        let out = append_driver_info(&m, &DriverInfo::new("lib").version("")).unwrap();
        assert_eq!(
            out.get_document("driver").unwrap().get_str("version").ok(),
            m.get_document("driver").unwrap().get_str("version").ok()
        );
        assert!(append_driver_info(&m, &DriverInfo::new("a|b")).is_err());
    }

    #[test]
    fn hello_commands() {
        let m = client_metadata(None, None);
        let c = hello_command(false, &m, &["zlib"], false, None);
        assert_eq!(c.keys().next().map(String::as_str), Some("isMaster"));
        assert_eq!(c.get_bool("helloOk").ok(), Some(true));
        assert!(!c.contains_key("backpressure"));
        let c = hello_command(true, &m, &[], true, Some(&ServerApi::v1().strict(true)));
        assert_eq!(c.keys().next().map(String::as_str), Some("hello"));
        assert_eq!(c.get_bool("loadBalanced").ok(), Some(true));
        assert_eq!(c.get_str("apiVersion").ok(), Some("1"));
        assert_eq!(c.get_bool("apiStrict").ok(), Some(true));
    }

    #[test]
    fn reply_parsing_tolerates_odd_types() {
        let r = HelloReply::parse(doc! {
            "ok": 1, "maxWireVersion": 21.0, "maxBsonObjectSize": "big", "connectionId": 7_i64,
            "compression": ["zstd", 3], "helloOk": true, "msg": "isdbgrid",
        });
        assert_eq!(r.max_wire_version, 21);
        assert_eq!(
            r.max_bson_object_size,
            mongo_wire::limits::DEFAULT_MAX_BSON_OBJECT_SIZE
        );
        assert_eq!(r.server_connection_id, Some(7));
        assert_eq!(r.compression, ["zstd"]);
        assert!(r.hello_ok && r.server_type == ServerType::Mongos);
    }

    #[test]
    fn absurd_size_limits_are_clamped() {
        let r = HelloReply::parse(doc! {
            "ok": 1, "maxBsonObjectSize": i64::MAX, "maxMessageSizeBytes": 1_i64 << 40,
            "maxWriteBatchSize": 1_i64 << 50,
        });
        let l = r.size_limits();
        assert_eq!(
            l.max_bson_object_size,
            mongo_wire::limits::MAX_ACCEPTED_BSON_OBJECT_SIZE
        );
        assert_eq!(
            l.max_message_size_bytes,
            mongo_wire::limits::MAX_ACCEPTED_MESSAGE_SIZE_BYTES
        );
        assert_eq!(
            l.max_write_batch_size,
            mongo_wire::limits::MAX_ACCEPTED_WRITE_BATCH_SIZE
        );
        assert_eq!(r.max_message_size_bytes, l.max_message_size_bytes);
    }
}
