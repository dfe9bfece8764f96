//! The `?key=value&...` part: splitting, decoding, repeated keys, and applying each known
//! option to [`ClientOptions`] with the value rules of the URI options spec.
//!
//! Invalid values of known options are ignored with a warning; unknown options are ignored
//! with a warning; what the specs call errors (conflicting TLS options, duplicated proxy
//! options, an empty `authSource`, a pair without `=`) are errors.

use std::collections::HashMap;
use std::time::Duration;

use bson::Document;

use super::{UriError, percent};
use crate::options::{
    Acknowledgment, AuthMechanism, ClientOptions, Compressor, ReadMode, ReadPreference,
    ServerMonitoringMode, TagSet, WriteConcern,
};

/// The auth-related options, kept aside until the credential is built.
#[derive(Debug, Default)]
pub(crate) struct AuthOptions {
    pub(crate) mechanism: Option<AuthMechanism>,
    pub(crate) source: Option<String>,
    pub(crate) properties: Option<Document>,
}

/// Read preference parts, assembled after every option is seen.
#[derive(Default)]
struct ReadPrefParts {
    mode: Option<ReadMode>,
    tag_sets: Vec<TagSet>,
    max_staleness: Option<Duration>,
}

/// Options whose values may hold secrets: their values never appear in warnings.
const SENSITIVE: [&str; 3] = [
    "proxypassword",
    "tlscertificatekeyfilepassword",
    "authmechanismproperties",
];

/// Options that may only appear once (SOCKS5 spec tests treat repeats as errors).
const SINGLE_ONLY: [&str; 4] = ["proxyhost", "proxyport", "proxyusername", "proxypassword"];

/// Pairs of options that must not appear together (URI options spec, "Conflicting TLS
/// options").
const TLS_CONFLICTS: [(&str, &str); 7] = [
    ("tlsinsecure", "tlsallowinvalidcertificates"),
    ("tlsinsecure", "tlsallowinvalidhostnames"),
    ("tlsinsecure", "tlsdisableocspendpointcheck"),
    ("tlsinsecure", "tlsdisablecertificaterevocationcheck"),
    ("tlsallowinvalidcertificates", "tlsdisableocspendpointcheck"),
    (
        "tlsallowinvalidcertificates",
        "tlsdisablecertificaterevocationcheck",
    ),
    (
        "tlsdisableocspendpointcheck",
        "tlsdisablecertificaterevocationcheck",
    ),
];

struct Pair {
    key: String,
    name: String,
    value: String,
}

struct Ctx<'a> {
    warnings: &'a mut Vec<String>,
}

impl Ctx<'_> {
    fn warn(&mut self, msg: String) {
        tracing::warn!(target: "mongo::client", "{msg}");
        self.warnings.push(msg);
    }

    fn invalid(&mut self, pair: &Pair, reason: &str) {
        let shown = if SENSITIVE.contains(&pair.key.as_str()) {
            "<redacted>"
        } else {
            pair.value.as_str()
        };
        self.warn(format!(
            "Unsupported value for \"{}\" : \"{shown}\" ({reason}); the option is ignored",
            pair.name
        ));
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

fn parse_i64(v: &str) -> Option<i64> {
    v.parse::<i64>().ok()
}

/// A non-negative 32-bit integer.
fn parse_u32(v: &str) -> Option<u32> {
    parse_i64(v)
        .and_then(|n| i32::try_from(n).ok())
        .and_then(|n| u32::try_from(n).ok())
}

/// A non-negative number of milliseconds (32-bit unless `wide`).
fn parse_millis(v: &str, wide: bool) -> Option<Duration> {
    let n = parse_i64(v)?;
    if !wide && i32::try_from(n).is_err() {
        return None;
    }
    u64::try_from(n).ok().map(Duration::from_millis)
}

/// `k:v,k:v` pairs, split at the first colon so values may hold colons. Malformed pairs are
/// reported through `bad` and skipped.
fn parse_kv_list(v: &str, mut bad: impl FnMut(&str)) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for item in v.split(',') {
        match item.split_once(':') {
            Some((k, val)) if !k.is_empty() => out.push((k.to_owned(), val.to_owned())),
            _ => bad(item),
        }
    }
    out
}

/// Splits and decodes the query into pairs; a segment without `=` is an error.
fn split_pairs(query: &str) -> Result<Vec<Pair>, UriError> {
    let mut pairs = Vec::new();
    for segment in query.split('&') {
        if segment.is_empty() {
            continue;
        }
        let Some((k, v)) = segment.split_once('=') else {
            // Echo the segment only if it looks like an option name: a stray segment may be
            // the tail of a password that held an unescaped '?'.
            let shown = if segment.bytes().all(|b| b.is_ascii_alphanumeric()) {
                segment.to_owned()
            } else {
                "(not shown)".to_owned()
            };
            return Err(UriError::MalformedOption(shown));
        };
        let name = percent::decode(k, "option name")?;
        let value = percent::decode(v, "option value")?;
        pairs.push(Pair {
            key: name.to_ascii_lowercase(),
            name,
            value,
        });
    }
    Ok(pairs)
}

/// The options a `mongodb+srv` TXT record may set (initial DNS seedlist discovery spec).
pub(crate) const TXT_OPTIONS: [&str; 3] = ["authsource", "replicaset", "loadbalanced"];

/// Applies the options of a `mongodb+srv` TXT record to `opts` (a fresh set the caller merges
/// under the connection string's): any option but [`TXT_OPTIONS`] is an error, and the rest
/// follow the connection string's rules (a malformed pair is an error, an invalid value a
/// warning).
pub(crate) fn apply_txt(
    txt: &str,
    opts: &mut ClientOptions,
    warnings: &mut Vec<String>,
) -> Result<AuthOptions, UriError> {
    for pair in split_pairs(txt)? {
        if !TXT_OPTIONS.contains(&pair.key.as_str()) {
            return Err(UriError::Unsupported {
                option: pair.name,
                reason: "a mongodb+srv TXT record may only set authSource, replicaSet and \
                         loadBalanced"
                    .to_owned(),
            });
        }
    }
    apply_query(txt, opts, warnings)
}

/// Applies the query to `opts`, collecting warnings; returns the auth options.
pub(crate) fn apply_query(
    query: &str,
    opts: &mut ClientOptions,
    warnings: &mut Vec<String>,
) -> Result<AuthOptions, UriError> {
    let pairs = split_pairs(query)?;
    let mut ctx = Ctx { warnings };
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for p in &pairs {
        *counts.entry(p.key.as_str()).or_default() += 1;
    }
    for key in SINGLE_ONLY {
        if counts.get(key).is_some_and(|&n| n > 1) {
            return Err(UriError::Conflict(format!(
                "option {key} given more than once"
            )));
        }
    }
    let tls_values: Vec<&str> = pairs
        .iter()
        .filter(|p| p.key == "tls" || p.key == "ssl")
        .map(|p| p.value.as_str())
        .collect();
    if tls_values.windows(2).any(|w| w.first() != w.last()) {
        return Err(UriError::Conflict(
            "tls and ssl must all have the same value".to_owned(),
        ));
    }
    // The URI options spec's conflicting TLS options: an error when both keys appear,
    // whatever their values.
    for (a, b) in TLS_CONFLICTS {
        if counts.contains_key(a) && counts.contains_key(b) {
            return Err(UriError::Conflict(format!(
                "{a} and {b} cannot both be specified"
            )));
        }
    }
    let has_wtimeoutms = counts.contains_key("wtimeoutms");

    let mut auth = AuthOptions::default();
    let mut rp = ReadPrefParts::default();
    let mut wc = WriteConcern::default();
    let mut warned_repeat: Vec<&str> = Vec::new();
    for pair in &pairs {
        let key = pair.key.as_str();
        if counts.get(key).is_some_and(|&n| n > 1)
            && key != "readpreferencetags"
            && key != "tls"
            && key != "ssl"
            && !warned_repeat.contains(&key)
        {
            warned_repeat.push(key);
            ctx.warn(format!(
                "Option \"{}\" is repeated; the last value is used",
                pair.name
            ));
        }
        if key == "wtimeout" && has_wtimeoutms {
            ctx.warn(
                "Deprecated key \"wtimeout\" present and ignored as found replacement \
                 \"wtimeoutms\" value"
                    .to_owned(),
            );
            continue;
        }
        apply_one(pair, opts, &mut auth, &mut rp, &mut wc, &mut ctx)?;
    }

    if rp.mode.is_some() || !rp.tag_sets.is_empty() || rp.max_staleness.is_some() {
        opts.read_preference = Some(
            ReadPreference::new(rp.mode.unwrap_or(ReadMode::Primary))
                .with_tag_sets(rp.tag_sets)
                .with_max_staleness(rp.max_staleness),
        );
    }
    if wc != WriteConcern::default() {
        opts.write_concern = Some(wc);
    }
    Ok(auth)
}

fn apply_one(
    pair: &Pair,
    opts: &mut ClientOptions,
    auth: &mut AuthOptions,
    rp: &mut ReadPrefParts,
    wc: &mut WriteConcern,
    ctx: &mut Ctx<'_>,
) -> Result<(), UriError> {
    let v = pair.value.as_str();
    let key = pair.key.as_str();
    if v.is_empty() && key != "readpreferencetags" {
        if key == "authsource" {
            return Err(UriError::InvalidOption {
                option: pair.name.clone(),
                reason: "the auth source cannot be empty".to_owned(),
            });
        }
        if is_known(key) {
            ctx.invalid(pair, "empty value");
        } else {
            ctx.warn(format!("Unsupported option '{}'", pair.name));
        }
        return Ok(());
    }

    macro_rules! set {
        ($field:expr, $parsed:expr, $why:expr) => {
            match $parsed {
                Some(x) => $field = Some(x),
                None => ctx.invalid(pair, $why),
            }
        };
    }
    const BOOL: &str = "expected true or false";
    const NON_NEG: &str = "expected a non-negative integer";

    match key {
        "appname" => opts.app_name = Some(v.to_owned()),
        "authmechanism" => match v.parse::<AuthMechanism>() {
            Ok(m) => auth.mechanism = Some(m),
            Err(_) => {
                return Err(UriError::InvalidOption {
                    option: pair.name.clone(),
                    reason: format!("unknown authentication mechanism '{v}'"),
                });
            }
        },
        "authsource" => auth.source = Some(v.to_owned()),
        "authmechanismproperties" => {
            let mut bad = 0usize;
            let items = parse_kv_list(v, |_| bad += 1);
            if bad > 0 {
                ctx.invalid(pair, "a property is not of the form KEY:value");
            }
            let doc = auth.properties.get_or_insert_with(Document::new);
            for (k, val) in items {
                doc.insert(k.to_ascii_uppercase(), val);
            }
        }
        "gssapiservicename" => {
            ctx.warn(
                "Deprecated key \"gssapiServiceName\" has been replaced with \
                 \"authMechanismProperties=SERVICE_NAME:...\""
                    .to_owned(),
            );
            let doc = auth.properties.get_or_insert_with(Document::new);
            if !doc.contains_key("SERVICE_NAME") {
                doc.insert("SERVICE_NAME", v);
            }
        }
        "compressors" => {
            let mut list = Vec::new();
            for name in v.split(',') {
                // `noop` is an OP_COMPRESSED id for tests, not a compressor to offer.
                match name.parse::<Compressor>() {
                    Ok(c) if c != Compressor::Noop && !list.contains(&c) => list.push(c),
                    Ok(c) if c != Compressor::Noop => {}
                    _ => ctx.warn(format!("Unsupported compressor '{name}' ignored")),
                }
            }
            opts.compressors = (!list.is_empty()).then_some(list);
        }
        "zlibcompressionlevel" => set!(
            opts.zlib_compression_level,
            parse_i64(v)
                .filter(|n| (-1..=9).contains(n))
                .and_then(|n| i32::try_from(n).ok()),
            "expected an integer from -1 to 9"
        ),
        "connecttimeoutms" => set!(opts.connect_timeout, parse_millis(v, false), NON_NEG),
        "sockettimeoutms" => set!(opts.socket_timeout, parse_millis(v, false), NON_NEG),
        "timeoutms" => set!(opts.timeout, parse_millis(v, false), NON_NEG),
        "localthresholdms" => set!(opts.local_threshold, parse_millis(v, false), NON_NEG),
        "maxidletimems" => set!(opts.max_idle_time, parse_millis(v, false), NON_NEG),
        "maxlifetimems" => set!(opts.max_lifetime, parse_millis(v, false), NON_NEG),
        "serverselectiontimeoutms" => set!(
            opts.server_selection_timeout,
            parse_millis(v, false).filter(|d| !d.is_zero()),
            "expected a positive integer"
        ),
        "waitqueuetimeoutms" => set!(
            opts.wait_queue_timeout,
            parse_millis(v, false).filter(|d| !d.is_zero()),
            "expected a positive integer"
        ),
        "heartbeatfrequencyms" => set!(
            opts.heartbeat_frequency,
            parse_millis(v, false).filter(|d| *d >= Duration::from_millis(500)),
            "expected an integer of at least 500"
        ),
        "serverselectiontryonce" => set!(opts.server_selection_try_once, parse_bool(v), BOOL),
        "servermonitoringmode" => set!(
            opts.server_monitoring_mode,
            ServerMonitoringMode::from_name(v),
            "expected stream, poll or auto"
        ),
        "directconnection" => set!(opts.direct_connection, parse_bool(v), BOOL),
        "loadbalanced" => set!(opts.load_balanced, parse_bool(v), BOOL),
        "replicaset" => opts.replica_set = Some(v.to_owned()),
        "readpreference" => set!(
            rp.mode,
            ReadMode::from_name(v),
            "unknown read preference mode"
        ),
        "readpreferencetags" => {
            let mut ok = true;
            let tags = if v.is_empty() {
                Vec::new()
            } else {
                parse_kv_list(v, |_| ok = false)
            };
            if ok {
                rp.tag_sets.push(tags.into_iter().collect());
            } else {
                ctx.invalid(pair, "expected key:value pairs");
            }
        }
        "maxstalenessseconds" => match parse_i64(v) {
            Some(-1) => rp.max_staleness = None,
            Some(n) if n >= 90 => {
                rp.max_staleness = u64::try_from(n).ok().map(Duration::from_secs);
            }
            _ => ctx.invalid(pair, "expected -1 or an integer of at least 90"),
        },
        "readconcernlevel" => opts.read_concern_level = Some(v.to_owned()),
        // The read and write concern spec makes a negative `w` an error, where other invalid
        // values only warn. (It says the same of `wtimeoutMS`, but the URI options spec's
        // tests ask a negative `wTimeoutMS` to warn: that rule is kept.)
        "w" if parse_i64(v).is_some_and(|n| n < 0) => {
            return Err(UriError::InvalidOption {
                option: pair.name.clone(),
                reason: "must not be negative".to_owned(),
            });
        }
        "w" => match parse_i64(v) {
            Some(n) => set!(
                wc.w,
                u32::try_from(n).ok().map(Acknowledgment::Nodes),
                NON_NEG
            ),
            None if v == "majority" => wc.w = Some(Acknowledgment::Majority),
            None => wc.w = Some(Acknowledgment::Custom(v.to_owned())),
        },
        "journal" => set!(wc.journal, parse_bool(v), BOOL),
        "wtimeoutms" => set!(wc.w_timeout, parse_millis(v, true), NON_NEG),
        "wtimeout" => {
            ctx.warn(
                "Deprecated key \"wtimeout\" has been replaced with \"wtimeoutms\"".to_owned(),
            );
            set!(wc.w_timeout, parse_millis(v, true), NON_NEG);
        }
        "retryreads" => set!(opts.retry_reads, parse_bool(v), BOOL),
        "retrywrites" => set!(opts.retry_writes, parse_bool(v), BOOL),
        "maxpoolsize" => set!(opts.max_pool_size, parse_u32(v), NON_NEG),
        "minpoolsize" => set!(opts.min_pool_size, parse_u32(v), NON_NEG),
        "maxconnecting" => set!(
            opts.max_connecting,
            parse_u32(v).filter(|n| *n > 0),
            "expected a positive integer"
        ),
        "maxadaptiveretries" => set!(opts.max_adaptive_retries, parse_u32(v), NON_NEG),
        "enableoverloadretargeting" => {
            set!(opts.enable_overload_retargeting, parse_bool(v), BOOL);
        }
        "srvservicename" => set!(
            opts.srv_service_name,
            is_service_name(v).then(|| v.to_owned()),
            "not a valid SRV service name"
        ),
        "srvmaxhosts" => set!(opts.srv_max_hosts, parse_u32(v), NON_NEG),
        "tls" | "ssl" => set!(opts.tls.enabled, parse_bool(v), BOOL),
        "tlscafile" => opts.tls.ca_file = Some(v.to_owned()),
        "tlscertificatekeyfile" => opts.tls.certificate_key_file = Some(v.to_owned()),
        "tlscertificatekeyfilepassword" => {
            opts.tls.certificate_key_file_password = Some(v.to_owned());
        }
        "tlsallowinvalidcertificates" => {
            set!(opts.tls.allow_invalid_certificates, parse_bool(v), BOOL);
        }
        "tlsallowinvalidhostnames" => {
            set!(opts.tls.allow_invalid_hostnames, parse_bool(v), BOOL);
        }
        "tlsinsecure" => set!(opts.tls.insecure, parse_bool(v), BOOL),
        "tlsdisableocspendpointcheck" => {
            set!(opts.tls.disable_ocsp_endpoint_check, parse_bool(v), BOOL);
        }
        "tlsdisablecertificaterevocationcheck" => {
            set!(
                opts.tls.disable_certificate_revocation_check,
                parse_bool(v),
                BOOL
            );
        }
        "proxyhost" => opts.proxy.host = Some(v.to_owned()),
        "proxyport" => set!(
            opts.proxy.port,
            parse_i64(v).and_then(|n| u16::try_from(n).ok()),
            "expected a port number"
        ),
        "proxyusername" => opts.proxy.username = Some(v.to_owned()),
        "proxypassword" => opts.proxy.password = Some(v.to_owned()),
        _ => ctx.warn(format!("Unsupported option '{}'", pair.name)),
    }
    Ok(())
}

/// RFC 6335 section 5.1: 1 to 15 characters, letters, digits and hyphens, at least one
/// letter, no hyphen at either end and no two hyphens in a row.
fn is_service_name(v: &str) -> bool {
    (1..=15).contains(&v.len())
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && v.bytes().any(|b| b.is_ascii_alphabetic())
        && !v.starts_with('-')
        && !v.ends_with('-')
        && !v.contains("--")
}

/// Every option key this parser knows (lower case).
const KNOWN: &[&str] = &[
    "appname",
    "authmechanism",
    "authsource",
    "authmechanismproperties",
    "gssapiservicename",
    "compressors",
    "zlibcompressionlevel",
    "connecttimeoutms",
    "sockettimeoutms",
    "timeoutms",
    "localthresholdms",
    "maxidletimems",
    "maxlifetimems",
    "serverselectiontimeoutms",
    "waitqueuetimeoutms",
    "heartbeatfrequencyms",
    "serverselectiontryonce",
    "servermonitoringmode",
    "directconnection",
    "loadbalanced",
    "replicaset",
    "readpreference",
    "readpreferencetags",
    "maxstalenessseconds",
    "readconcernlevel",
    "w",
    "journal",
    "wtimeoutms",
    "wtimeout",
    "retryreads",
    "retrywrites",
    "maxpoolsize",
    "minpoolsize",
    "maxconnecting",
    "maxadaptiveretries",
    "enableoverloadretargeting",
    "srvservicename",
    "srvmaxhosts",
    "tls",
    "ssl",
    "tlscafile",
    "tlscertificatekeyfile",
    "tlscertificatekeyfilepassword",
    "tlsallowinvalidcertificates",
    "tlsallowinvalidhostnames",
    "tlsinsecure",
    "tlsdisableocspendpointcheck",
    "tlsdisablecertificaterevocationcheck",
    "proxyhost",
    "proxyport",
    "proxyusername",
    "proxypassword",
];

fn is_known(key: &str) -> bool {
    KNOWN.contains(&key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(q: &str) -> (Result<AuthOptions, UriError>, ClientOptions, Vec<String>) {
        let mut opts = ClientOptions::default();
        let mut warnings = Vec::new();
        let r = apply_query(q, &mut opts, &mut warnings);
        (r, opts, warnings)
    }

    #[test]
    fn known_options_apply_without_warnings() {
        let (r, o, w) = run("maxPoolSize=5&connectTimeoutMS=20&readPreference=nearest&w=majority");
        assert!(r.is_ok());
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(o.max_pool_size, Some(5));
        assert_eq!(o.connect_timeout, Some(Duration::from_millis(20)));
        assert_eq!(o.read_preference.unwrap().mode, ReadMode::Nearest);
        assert_eq!(o.write_concern.unwrap().w, Some(Acknowledgment::Majority));
    }

    #[test]
    fn invalid_values_warn_and_are_ignored() {
        let (r, o, w) = run("maxConnecting=0&journal=1&zlibCompressionLevel=10");
        assert!(r.is_ok());
        assert_eq!(w.len(), 3, "{w:?}");
        assert_eq!(o.max_connecting, None);
        assert_eq!(o.write_concern, None);
    }

    #[test]
    fn a_negative_w_is_an_error_a_negative_wtimeout_a_warning() {
        let (r, _, _) = run("w=-2");
        assert!(matches!(r, Err(UriError::InvalidOption { .. })), "{r:?}");
        let (r, o, w) = run("wtimeoutMS=-500");
        assert!(
            r.is_ok() && o.write_concern.is_none() && w.len() == 1,
            "{w:?}"
        );
        let (r, o, _) = run("w=0&wtimeoutMS=0");
        assert!(r.is_ok());
        assert!(o.write_concern.is_some());
    }

    #[test]
    fn secrets_stay_out_of_warnings() {
        let (_, _, w) = run("proxyPassword=s3cret&proxyPassword=");
        assert!(w.iter().all(|m| !m.contains("s3cret")), "{w:?}");
    }

    #[test]
    fn pair_without_equals_is_an_error() {
        assert!(matches!(run("w").0, Err(UriError::MalformedOption(_))));
    }

    #[test]
    fn service_names() {
        assert!(is_service_name("mongodb"));
        assert!(is_service_name("custom-name1"));
        for bad in ["", "-a", "a-", "a--b", "1234", "sixteen-chars-xx", "a_b"] {
            assert!(!is_service_name(bad), "{bad}");
        }
    }
}
