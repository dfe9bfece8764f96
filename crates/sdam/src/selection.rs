//! Server selection: read preferences (mode, tag sets, max staleness), the rules per topology
//! type, deprioritized servers, the latency window and the two-random-choices pick.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use bson::{Bson, Document, doc};
use mongo_events::sdam::ReadMode;
use mongo_events::{ServerAddress, ServerType, TopologyType};

use crate::description::ServerDescription;
use crate::error::SdamError;
use crate::topology::TopologyDescription;

/// How often a primary writes to an otherwise idle replica set (the max staleness spec's
/// idleWritePeriodMS).
pub const IDLE_WRITE_PERIOD: Duration = Duration::from_secs(10);
/// The smallest maxStalenessSeconds allowed.
pub const SMALLEST_MAX_STALENESS: Duration = Duration::from_secs(90);

/// A tag set: every pair must be among a server's tags.
pub type TagSet = BTreeMap<String, String>;

/// A read preference.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct ReadPreference {
    /// The mode.
    pub mode: ReadMode,
    /// Tag sets, tried in order; empty (or `[{}]`) matches every server.
    pub tag_sets: Vec<TagSet>,
    /// `maxStalenessSeconds`; `None` is no maximum.
    pub max_staleness: Option<Duration>,
}

impl ReadPreference {
    /// A read preference with this mode, no tags and no staleness limit.
    pub fn new(mode: ReadMode) -> Self {
        ReadPreference {
            mode,
            ..Default::default()
        }
    }

    /// With these tag sets.
    #[must_use]
    pub fn with_tag_sets(mut self, tag_sets: Vec<TagSet>) -> Self {
        self.tag_sets = tag_sets;
        self
    }

    /// With this max staleness.
    #[must_use]
    pub fn with_max_staleness(mut self, max_staleness: Option<Duration>) -> Self {
        self.max_staleness = max_staleness;
        self
    }

    /// Checks the rules that do not depend on the topology: mode primary takes no tags and
    /// no max staleness. (The smallest max staleness depends on the topology: see
    /// [`validate_for`](Self::validate_for).)
    pub fn validate(&self) -> Result<(), SdamError> {
        if self.mode == ReadMode::Primary {
            if self.tag_sets.iter().any(|t| !t.is_empty()) {
                return Err(SdamError::InvalidReadPreference(
                    "tag sets cannot be used with mode primary".into(),
                ));
            }
            if self.max_staleness.is_some() {
                return Err(SdamError::InvalidReadPreference(
                    "maxStalenessSeconds cannot be used with mode primary".into(),
                ));
            }
        }
        Ok(())
    }

    /// Checks max staleness against a replica set's heartbeat frequency: at least 90 s and
    /// at least heartbeatFrequencyMS + idleWritePeriodMS.
    pub fn validate_for(&self, heartbeat_frequency: Duration) -> Result<(), SdamError> {
        self.validate()?;
        if let Some(max) = self.max_staleness {
            let floor = heartbeat_frequency + IDLE_WRITE_PERIOD;
            if max < SMALLEST_MAX_STALENESS || max < floor {
                return Err(SdamError::InvalidReadPreference(format!(
                    "maxStalenessSeconds must be at least {} s and at least heartbeatFrequencyMS + {} s ({} ms); got {} s",
                    SMALLEST_MAX_STALENESS.as_secs(),
                    IDLE_WRITE_PERIOD.as_secs(),
                    floor.as_millis(),
                    max.as_secs()
                )));
            }
        }
        Ok(())
    }
}

impl ReadPreference {
    /// The `$readPreference` document sent to mongos and load balancers (server selection
    /// spec, "Passing read preference to mongos"): `mode`, `tags` when any tag set is given,
    /// `maxStalenessSeconds` when set.
    pub fn to_document(&self) -> Document {
        let mut d = doc! { "mode": self.mode.name() };
        if !self.tag_sets.is_empty() {
            let tags: Vec<Bson> = self
                .tag_sets
                .iter()
                .map(|t| {
                    Bson::Document(
                        t.iter()
                            .map(|(k, v)| (k.clone(), Bson::String(v.clone())))
                            .collect(),
                    )
                })
                .collect();
            d.insert("tags", tags);
        }
        if let Some(s) = self.max_staleness {
            d.insert(
                "maxStalenessSeconds",
                i64::try_from(s.as_secs()).unwrap_or(i64::MAX),
            );
        }
        d
    }
}

/// The selector as log messages show it: `ReadPreference { mode: secondaryPreferred,
/// tagSets: [{dc: "ny"}], maxStalenessSeconds: 90 }`, every component present.
impl fmt::Display for ReadPreference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReadPreference {{ mode: {}", self.mode.name())?;
        if !self.tag_sets.is_empty() {
            f.write_str(", tagSets: [")?;
            for (i, set) in self.tag_sets.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                f.write_str("{")?;
                for (j, (k, v)) in set.iter().enumerate() {
                    if j > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v:?}")?;
                }
                f.write_str("}")?;
            }
            f.write_str("]")?;
        }
        if let Some(ms) = self.max_staleness {
            write!(f, ", maxStalenessSeconds: {}", ms.as_secs())?;
        }
        f.write_str(" }")
    }
}

/// What a server is wanted for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Operation<'a> {
    /// A read with this read preference.
    Read(&'a ReadPreference),
    /// A write.
    Write,
}

/// The selector as log messages show it: the read preference, or `Write` (primary or
/// any writable server).
impl fmt::Display for Operation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operation::Read(pref) => pref.fmt(f),
            Operation::Write => f.write_str("Write"),
        }
    }
}

fn instant_minus_ms(a: Option<Instant>, b: Option<Instant>) -> f64 {
    match (a, b) {
        (Some(a), Some(b)) => {
            if a >= b {
                a.duration_since(b).as_secs_f64() * 1000.0
            } else {
                -(b.duration_since(a).as_secs_f64() * 1000.0)
            }
        }
        _ => 0.0,
    }
}

#[allow(clippy::cast_precision_loss)]
fn ms_f64(n: i64) -> f64 {
    n as f64
}

impl TopologyDescription {
    /// The servers suitable for `operation`, before the latency window: deprioritized servers
    /// are left out unless that leaves none. Errors for an incompatible topology or an invalid
    /// read preference.
    pub fn suitable_servers(
        &self,
        operation: Operation<'_>,
        deprioritized: &[ServerAddress],
    ) -> Result<Vec<&ServerDescription>, SdamError> {
        if let Some(e) = self.compatibility_error() {
            return Err(SdamError::IncompatibleWireVersion(e.to_string()));
        }
        if let Operation::Read(rp) = operation {
            match self.topology_type() {
                TopologyType::ReplicaSetNoPrimary | TopologyType::ReplicaSetWithPrimary => {
                    rp.validate_for(self.heartbeat_frequency())?
                }
                _ => rp.validate()?,
            }
        }
        if !deprioritized.is_empty() {
            let filtered = self.suitable_among(operation, |s| !deprioritized.contains(&s.address));
            if !filtered.is_empty() {
                return Ok(filtered);
            }
        }
        Ok(self.suitable_among(operation, |_| true))
    }

    fn suitable_among<'s>(
        &'s self,
        operation: Operation<'_>,
        keep: impl Fn(&ServerDescription) -> bool,
    ) -> Vec<&'s ServerDescription> {
        let candidates = || self.servers().filter(|s| keep(s));
        match self.topology_type() {
            TopologyType::Unknown => Vec::new(),
            TopologyType::Single => candidates().filter(|s| s.is_known()).collect(),
            TopologyType::LoadBalanced => candidates()
                .filter(|s| s.server_type == ServerType::LoadBalancer)
                .collect(),
            TopologyType::Sharded => candidates()
                .filter(|s| s.server_type == ServerType::Mongos)
                .collect(),
            TopologyType::ReplicaSetNoPrimary | TopologyType::ReplicaSetWithPrimary => {
                let primary = || candidates().filter(|s| s.server_type == ServerType::RsPrimary);
                match operation {
                    Operation::Write => primary().collect(),
                    Operation::Read(rp) => match rp.mode {
                        ReadMode::Primary => primary().collect(),
                        ReadMode::Secondary => self.rs_eligible(candidates(), rp, false),
                        ReadMode::Nearest => self.rs_eligible(candidates(), rp, true),
                        ReadMode::SecondaryPreferred => {
                            let secondaries = self.rs_eligible(candidates(), rp, false);
                            if secondaries.is_empty() {
                                primary().collect()
                            } else {
                                secondaries
                            }
                        }
                        ReadMode::PrimaryPreferred => {
                            let p: Vec<_> = primary().collect();
                            if p.is_empty() {
                                self.rs_eligible(candidates(), rp, false)
                            } else {
                                p
                            }
                        }
                    },
                }
            }
        }
    }

    /// Secondaries (and the primary when `with_primary`), filtered by staleness then tags.
    fn rs_eligible<'s>(
        &'s self,
        candidates: impl Iterator<Item = &'s ServerDescription>,
        rp: &ReadPreference,
        with_primary: bool,
    ) -> Vec<&'s ServerDescription> {
        let mut servers: Vec<&ServerDescription> = candidates
            .filter(|s| {
                s.server_type == ServerType::RsSecondary
                    || (with_primary && s.server_type == ServerType::RsPrimary)
            })
            .collect();
        if let Some(max) = rp.max_staleness {
            let max_ms = max.as_secs_f64() * 1000.0;
            let heartbeat_ms = self.heartbeat_frequency().as_secs_f64() * 1000.0;
            let primary = self
                .servers()
                .find(|s| s.server_type == ServerType::RsPrimary);
            let smax = self
                .servers()
                .filter(|s| s.server_type == ServerType::RsSecondary)
                .filter_map(|s| s.last_write_date)
                .max();
            servers.retain(|s| {
                if s.server_type != ServerType::RsSecondary {
                    return true;
                }
                let s_lwd = ms_f64(s.last_write_date.unwrap_or(0));
                let staleness = match primary {
                    Some(p) => {
                        let p_lwd = ms_f64(p.last_write_date.unwrap_or(0));
                        instant_minus_ms(s.last_update_time, p.last_update_time) - s_lwd
                            + p_lwd
                            + heartbeat_ms
                    }
                    None => ms_f64(smax.unwrap_or(0)) - s_lwd + heartbeat_ms,
                };
                staleness <= max_ms
            });
        }
        if rp.tag_sets.is_empty() {
            return servers;
        }
        for tag_set in &rp.tag_sets {
            let matching: Vec<&ServerDescription> = servers
                .iter()
                .copied()
                .filter(|s| tag_set.iter().all(|(k, v)| s.tags.get(k) == Some(v)))
                .collect();
            if !matching.is_empty() {
                return matching;
            }
        }
        Vec::new()
    }

    /// The suitable servers within the latency window (`localThresholdMS` above the fastest).
    pub fn servers_in_latency_window(
        &self,
        operation: Operation<'_>,
        deprioritized: &[ServerAddress],
    ) -> Result<Vec<&ServerDescription>, SdamError> {
        let suitable = self.suitable_servers(operation, deprioritized)?;
        Ok(latency_window(suitable, self.local_threshold()))
    }

    /// Selects a server for `operation`: within the latency window, two distinct servers are
    /// drawn at random and the one with fewer operations in flight wins. `random(n)` must
    /// return an index below `n`; `operation_count` gives a server's in-flight operations.
    /// `Ok(None)` means no suitable server now (wait for a topology change and retry).
    pub fn select_server(
        &self,
        operation: Operation<'_>,
        deprioritized: &[ServerAddress],
        operation_count: impl Fn(&ServerAddress) -> u64,
        random: &mut dyn FnMut(usize) -> usize,
    ) -> Result<Option<&ServerDescription>, SdamError> {
        let window = self.servers_in_latency_window(operation, deprioritized)?;
        Ok(pick_two_choices(&window, operation_count, random))
    }
}

/// Keeps the servers whose average RTT is within `threshold` of the fastest one's.
pub fn latency_window(
    servers: Vec<&ServerDescription>,
    threshold: Duration,
) -> Vec<&ServerDescription> {
    let rtt = |s: &ServerDescription| s.round_trip_time.unwrap_or(Duration::ZERO);
    let Some(fastest) = servers.iter().map(|s| rtt(s)).min() else {
        return servers;
    };
    let limit = fastest + threshold;
    servers.into_iter().filter(|s| rtt(s) <= limit).collect()
}

/// The two-random-choices pick: two distinct servers at random, the one with fewer
/// in-flight operations wins (the first drawn on a tie).
pub fn pick_two_choices<'s>(
    window: &[&'s ServerDescription],
    operation_count: impl Fn(&ServerAddress) -> u64,
    random: &mut dyn FnMut(usize) -> usize,
) -> Option<&'s ServerDescription> {
    match window.len() {
        0 => None,
        1 => window.first().copied(),
        n => {
            let i = random(n) % n;
            let mut j = random(n - 1) % (n - 1);
            if j >= i {
                j += 1;
            }
            let (a, b) = (window.get(i)?, window.get(j)?);
            if operation_count(&b.address) < operation_count(&a.address) {
                Some(b)
            } else {
                Some(a)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(host: &str, t: ServerType, rtt: u64) -> ServerDescription {
        let mut s = ServerDescription::new(ServerAddress::parse(host).unwrap());
        s.server_type = t;
        s.round_trip_time = Some(Duration::from_millis(rtt));
        s.max_wire_version = Some(21);
        s
    }

    fn rs(servers: Vec<ServerDescription>) -> TopologyDescription {
        TopologyDescription::from_servers(
            TopologyType::ReplicaSetWithPrimary,
            servers,
            Duration::from_secs(10),
        )
    }

    #[test]
    fn modes_and_latency_window() {
        let td = rs(vec![
            server("a:1", ServerType::RsPrimary, 5),
            server("b:1", ServerType::RsSecondary, 10),
            server("c:1", ServerType::RsSecondary, 30),
        ]);
        let names = |v: Vec<&ServerDescription>| {
            v.iter().map(|s| s.address.to_string()).collect::<Vec<_>>()
        };
        let sec = ReadPreference::new(ReadMode::Secondary);
        assert_eq!(
            names(td.suitable_servers(Operation::Read(&sec), &[]).unwrap()),
            ["b:1", "c:1"]
        );
        assert_eq!(
            names(
                td.servers_in_latency_window(Operation::Read(&sec), &[])
                    .unwrap()
            ),
            ["b:1"]
        );
        assert_eq!(
            names(td.suitable_servers(Operation::Write, &[]).unwrap()),
            ["a:1"]
        );
        let near = ReadPreference::new(ReadMode::Nearest);
        assert_eq!(
            names(
                td.servers_in_latency_window(Operation::Read(&near), &[])
                    .unwrap()
            ),
            ["a:1", "b:1"]
        );
        let pp = ReadPreference::new(ReadMode::PrimaryPreferred);
        let dep = [ServerAddress::parse("a:1").unwrap()];
        assert_eq!(
            names(td.suitable_servers(Operation::Read(&pp), &dep).unwrap()),
            ["b:1", "c:1"]
        );
    }

    #[test]
    fn invalid_read_preferences_are_refused() {
        let td = rs(vec![server("a:1", ServerType::RsPrimary, 5)]);
        let rp = ReadPreference::new(ReadMode::Secondary)
            .with_max_staleness(Some(Duration::from_secs(89)));
        assert!(td.suitable_servers(Operation::Read(&rp), &[]).is_err());
        let rp = ReadPreference::new(ReadMode::Primary)
            .with_max_staleness(Some(Duration::from_secs(120)));
        assert!(td.suitable_servers(Operation::Read(&rp), &[]).is_err());
        let mut tags = TagSet::new();
        tags.insert("dc".into(), "ny".into());
        let rp = ReadPreference::new(ReadMode::Primary).with_tag_sets(vec![tags]);
        assert!(rp.validate().is_err());
    }

    #[test]
    fn two_choices_prefers_the_idle_server() {
        let a = server("a:1", ServerType::Mongos, 5);
        let b = server("b:1", ServerType::Mongos, 5);
        let window = [&a, &b];
        let busy_a = |addr: &ServerAddress| if addr == &a.address { 5 } else { 0 };
        let mut zero = |_n: usize| 0;
        assert_eq!(
            pick_two_choices(&window, busy_a, &mut zero)
                .unwrap()
                .address,
            b.address
        );
        let mut none = |_n: usize| 0;
        assert!(pick_two_choices(&[], |_: &ServerAddress| 0, &mut none).is_none());
    }

    #[test]
    fn read_preference_documents_and_validation() {
        let rp = ReadPreference::new(ReadMode::SecondaryPreferred)
            .with_tag_sets(vec![
                [("dc".to_owned(), "ny".to_owned())].into_iter().collect(),
                TagSet::new(),
            ])
            .with_max_staleness(Some(Duration::from_secs(120)));
        assert_eq!(
            rp.to_document(),
            doc! {"mode": "secondaryPreferred", "tags": [{"dc": "ny"}, {}], "maxStalenessSeconds": 120_i64}
        );
        assert_eq!(
            ReadPreference::new(ReadMode::Primary).to_document(),
            doc! {"mode": "primary"}
        );
        assert!(rp.validate().is_ok());
        let short = ReadPreference::new(ReadMode::Nearest)
            .with_max_staleness(Some(Duration::from_secs(89)));
        assert!(
            short.validate().is_ok(),
            "a replica set's rule, not a general one"
        );
        assert!(short.validate_for(Duration::from_secs(10)).is_err());
        let primary_tags = ReadPreference::new(ReadMode::Primary).with_tag_sets(vec![
            [("a".to_owned(), "b".to_owned())].into_iter().collect(),
        ]);
        assert!(primary_tags.validate().is_err());
    }
}
