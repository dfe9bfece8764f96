//! The seedlist rules, sans-I/O: the SRV name and its `{domainname}`, the check of each
//! record's target, the bounds put on an answer (record count, TTL), the TXT record rules
//! and the merge of its options under the connection string's, and the random choice of
//! `srvMaxHosts` hosts.

use std::time::Duration;

use mongo_events::ServerAddress;

use super::SrvError;
use crate::options::{ClientOptions, Credential};
use crate::uri::{UriError, apply_txt};

/// The most SRV records an answer may hold: more is a misconfigured (or hostile) zone, not a
/// deployment, and ends in [`SrvError::TooManyRecords`] rather than thousands of monitors.
pub const MAX_SRV_RECORDS: usize = 512;

/// The most bytes of TXT text accepted (a record of many 255-byte strings).
pub const MAX_TXT_LEN: usize = 4096;

/// The shortest rescan interval the polling spec allows.
pub const MIN_RESCAN_INTERVAL: Duration = Duration::from_secs(60);

/// One SRV record as the rules need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrvRecord {
    /// The target host name (a trailing dot is allowed).
    pub target: String,
    /// The port.
    pub port: u16,
    /// The record's time to live in seconds, as received.
    pub ttl: u32,
}

/// The host of a `mongodb+srv` string and its `{domainname}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SrvName {
    host: String,
    domain: String,
}

impl SrvName {
    /// Splits `host`: with three or more `.`-separated parts the domain is all but the first
    /// part; with one or two it is the whole host.
    pub(crate) fn new(host: &str) -> Result<SrvName, SrvError> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty() || host.split('.').any(str::is_empty) {
            return Err(SrvError::InvalidName { name: host });
        }
        let domain = match host.split_once('.') {
            Some((_, rest)) if rest.contains('.') => rest.to_owned(),
            _ => host.clone(),
        };
        Ok(SrvName { host, domain })
    }

    /// The host, lower case, without a trailing dot.
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// The name the SRV question is asked for: `_{service}._tcp.{host}`.
    pub(crate) fn query_name(&self, service: &str) -> String {
        format!("_{service}._tcp.{}.", self.host)
    }

    /// The name the TXT question is asked for.
    pub(crate) fn txt_name(&self) -> String {
        format!("{}.", self.host)
    }

    /// Whether `target` may be used: it ends with `.{domainname}` after at least one more
    /// label (so it is never the SRV host itself when that has fewer than three parts), and
    /// has no empty label.
    pub(crate) fn check_target(&self, target: &str) -> Result<String, SrvError> {
        let t = target.trim_end_matches('.').to_ascii_lowercase();
        let mismatch = || SrvError::DomainMismatch {
            srv_host: self.host.clone(),
            target: target.to_owned(),
        };
        if t.split('.').any(str::is_empty) {
            return Err(mismatch());
        }
        match t.strip_suffix(self.domain.as_str()) {
            Some(prefix) if prefix.len() > 1 && prefix.ends_with('.') => Ok(t),
            _ => Err(mismatch()),
        }
    }

    /// Turns an initial discovery answer into seeds: an error for no records, too many, or
    /// any target outside the domain (the spec's rules for the initial lookup).
    pub(crate) fn seeds(&self, records: &[SrvRecord]) -> Result<Vec<ServerAddress>, SrvError> {
        self.check_count(records)?;
        if records.is_empty() {
            return Err(SrvError::NoRecords {
                name: self.host.clone(),
            });
        }
        let mut seeds = Vec::with_capacity(records.len());
        for r in records {
            let host = self.check_target(&r.target)?;
            push_unique(&mut seeds, ServerAddress::tcp_with(&host, Some(r.port)));
        }
        Ok(seeds)
    }

    /// Turns a rescan's answer into the verified hosts: targets outside the domain are
    /// dropped (and logged), never an error; too many records is an error (the topology is
    /// then left as it is).
    pub(crate) fn rescan_hosts(
        &self,
        records: &[SrvRecord],
    ) -> Result<Vec<ServerAddress>, SrvError> {
        self.check_count(records)?;
        let mut hosts = Vec::with_capacity(records.len());
        for r in records {
            match self.check_target(&r.target) {
                Ok(host) => push_unique(&mut hosts, ServerAddress::tcp_with(&host, Some(r.port))),
                Err(e) => {
                    tracing::warn!(target: "mongo::topology", "SRV rescan: {e}; host ignored")
                }
            }
        }
        Ok(hosts)
    }

    fn check_count(&self, records: &[SrvRecord]) -> Result<(), SrvError> {
        if records.len() > MAX_SRV_RECORDS {
            return Err(SrvError::TooManyRecords {
                name: self.host.clone(),
                count: records.len(),
                limit: MAX_SRV_RECORDS,
            });
        }
        Ok(())
    }
}

fn push_unique(list: &mut Vec<ServerAddress>, a: ServerAddress) {
    if !list.contains(&a) {
        list.push(a);
    }
}

/// The rescan interval an answer asks for: its lowest TTL, but at least
/// [`MIN_RESCAN_INTERVAL`]. A TTL with the high bit set counts as zero (RFC 2181 section 8),
/// so an absurd TTL cannot stop the rescans.
pub(crate) fn rescan_interval(records: &[SrvRecord]) -> Duration {
    let lowest = records
        .iter()
        .map(|r| if r.ttl > i32::MAX as u32 { 0 } else { r.ttl })
        .min();
    match lowest {
        Some(ttl) => Duration::from_secs(u64::from(ttl)).max(MIN_RESCAN_INTERVAL),
        None => MIN_RESCAN_INTERVAL,
    }
}

/// Joins the TXT answer into one option string: no record is `None`, more than one is an
/// error, one record's strings are concatenated in order.
pub(crate) fn txt_options(
    name: &str,
    records: &[Vec<Vec<u8>>],
) -> Result<Option<String>, SrvError> {
    let record = match records {
        [] => return Ok(None),
        [one] => one,
        _ => {
            return Err(SrvError::MultipleTxtRecords {
                name: name.to_owned(),
                count: records.len(),
            });
        }
    };
    let len: usize = record.iter().map(Vec::len).sum();
    if len > MAX_TXT_LEN {
        return Err(SrvError::InvalidTxt {
            reason: format!("{len} bytes long, the limit is {MAX_TXT_LEN}"),
        });
    }
    let bytes: Vec<u8> = record.concat();
    let text = String::from_utf8(bytes).map_err(|_| SrvError::InvalidTxt {
        reason: "not UTF-8".to_owned(),
    })?;
    Ok(Some(text))
}

/// Merges a TXT record's options under `options`: `replicaSet`, `loadBalanced` and
/// `authSource` apply only where the connection string (or code) set none; a new
/// `authSource` rebuilds the credential with it. Then the cross-option rules are checked
/// again, with `resolved_hosts` the number of seeds the SRV records gave (a load balancer
/// needs exactly one).
pub(crate) fn merge_txt(
    options: &ClientOptions,
    txt: Option<&str>,
    resolved_hosts: usize,
) -> Result<ClientOptions, MergeError> {
    let mut merged = options.clone();
    if let Some(txt) = txt {
        let mut from_txt = ClientOptions::default();
        let mut warnings = Vec::new();
        let auth = apply_txt(txt, &mut from_txt, &mut warnings).map_err(MergeError::Txt)?;
        for w in &warnings {
            tracing::warn!(target: "mongo::client", "TXT record: {w}");
        }
        if merged.replica_set.is_none() {
            merged.replica_set = from_txt.replica_set;
        }
        if merged.load_balanced.is_none() {
            merged.load_balanced = from_txt.load_balanced;
        }
        if merged.auth_source.is_none() {
            if let Some(source) = auth.source {
                merged.credential = match merged.credential.take() {
                    Some(c) => Some(with_source(&c, &source, options)?),
                    None => None,
                };
                merged.auth_source = Some(source);
            }
        }
    }
    merged.validate().map_err(MergeError::Options)?;
    if merged.load_balanced == Some(true) && resolved_hosts > 1 {
        return Err(MergeError::Options(UriError::Conflict(format!(
            "loadBalanced=true cannot be used with multiple hosts (the SRV records named \
             {resolved_hosts})"
        ))));
    }
    Ok(merged)
}

/// `c` with another source, validated again by the auth rules.
fn with_source(
    c: &Credential,
    source: &str,
    options: &ClientOptions,
) -> Result<Credential, MergeError> {
    Credential::builder()
        .username_opt(c.username().map(str::to_owned))
        .password_opt(c.password().map(str::to_owned))
        .mechanism(c.mechanism())
        .source(source)
        .uri_database(options.default_database.clone())
        .mechanism_properties(c.mechanism_properties().cloned())
        .build()
        .map_err(|e| MergeError::Options(UriError::InvalidCredential(e.to_string())))
}

/// Why the TXT options could not be merged.
#[derive(Debug)]
pub(crate) enum MergeError {
    /// The TXT record itself is wrong (forbidden or malformed option).
    Txt(UriError),
    /// The merged options break a cross-option rule.
    Options(UriError),
}

/// Picks the seeds: all of them when `max` is zero or at least their number, otherwise `max`
/// of them chosen with the Fisher-Yates shuffle (`below(n)` gives a number in `0..n`).
pub(crate) fn choose_seeds(
    mut seeds: Vec<ServerAddress>,
    max: u32,
    below: &mut dyn FnMut(usize) -> usize,
) -> Vec<ServerAddress> {
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    if limit == 0 || limit >= seeds.len() {
        return seeds;
    }
    mongo_sdam::shuffle_hosts(&mut seeds, below);
    seeds.truncate(limit);
    seeds
}

/// What a rescan's answer means for the topology and for the next rescan: the verified
/// hosts to apply (`None`: leave the topology as it is), and how long to wait before the
/// next rescan — the records' lowest TTL (at least [`MIN_RESCAN_INTERVAL`]) after a good
/// answer, `heartbeat` (heartbeatFrequencyMS) after a failed lookup, an empty answer, an
/// answer with no verified host or a rejected one. `answer` is `None` when the lookup failed.
pub(crate) fn plan_rescan(
    name: &SrvName,
    answer: Option<&[SrvRecord]>,
    heartbeat: Duration,
) -> (Option<Vec<ServerAddress>>, Duration) {
    let Some(records) = answer else {
        return (None, heartbeat);
    };
    match name.rescan_hosts(records) {
        Ok(hosts) if !hosts.is_empty() => (Some(hosts), rescan_interval(records)),
        Ok(_) => {
            tracing::warn!(target: "mongo::topology", "SRV rescan of {}: no verified host; the topology is kept", name.host());
            (None, heartbeat)
        }
        Err(e) => {
            tracing::warn!(target: "mongo::topology", "SRV rescan of {}: {e}; the topology is kept", name.host());
            (None, heartbeat)
        }
    }
}
