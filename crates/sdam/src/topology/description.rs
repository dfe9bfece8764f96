//! How a topology starts ([`TopologyConfig`]: seeds, options, the initial type and the
//! forbidden combinations) and the client's view of the deployment ([`TopologyDescription`]:
//! its state, SDAM equality, constructors, accessors and the snapshot events carry).

use std::collections::BTreeMap;
use std::time::Duration;

use bson::oid::ObjectId;
use mongo_events::sdam::TopologyInfo;
use mongo_events::{ServerAddress, ServerType, TopologyType};

#[cfg(doc)]
use super::Topology;
use crate::description::ServerDescription;
use crate::error::SdamError;
use crate::{DEFAULT_HEARTBEAT_FREQUENCY, DEFAULT_LOCAL_THRESHOLD, MIN_HEARTBEAT_FREQUENCY};

/// How a topology starts: the seeds and the options that choose the initial type.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TopologyConfig {
    /// The seed list.
    pub seeds: Vec<ServerAddress>,
    /// `replicaSet`.
    pub set_name: Option<String>,
    /// `directConnection` (absent behaves as false).
    pub direct_connection: Option<bool>,
    /// `loadBalanced`.
    pub load_balanced: bool,
    /// `heartbeatFrequencyMS`; values below 500 ms are raised to 500 ms.
    pub heartbeat_frequency: Duration,
    /// `localThresholdMS`.
    pub local_threshold: Duration,
}

impl TopologyConfig {
    /// A configuration with these seeds and every option at its default.
    pub fn new(seeds: Vec<ServerAddress>) -> Self {
        TopologyConfig {
            seeds,
            set_name: None,
            direct_connection: None,
            load_balanced: false,
            heartbeat_frequency: DEFAULT_HEARTBEAT_FREQUENCY,
            local_threshold: DEFAULT_LOCAL_THRESHOLD,
        }
    }

    /// The initial topology type, per the spec's table (and load-balanced mode).
    pub fn initial_type(&self) -> TopologyType {
        if self.load_balanced {
            TopologyType::LoadBalanced
        } else if self.direct_connection == Some(true) {
            TopologyType::Single
        } else if self.set_name.is_some() {
            TopologyType::ReplicaSetNoPrimary
        } else {
            TopologyType::Unknown
        }
    }

    /// Checks the combinations the spec forbids.
    pub fn validate(&self) -> Result<(), SdamError> {
        let bad = |m: &str| Err(SdamError::InvalidConfig(m.to_string()));
        if self.seeds.is_empty() {
            return bad("no seeds");
        }
        if self.direct_connection == Some(true) && self.seeds.len() > 1 {
            return bad("directConnection=true cannot be used with multiple seeds");
        }
        if self.load_balanced {
            if self.direct_connection == Some(true) {
                return bad("loadBalanced=true cannot be used with directConnection=true");
            }
            if self.set_name.is_some() {
                return bad("loadBalanced=true cannot be used with replicaSet");
            }
            if self.seeds.len() > 1 {
                return bad("loadBalanced=true cannot be used with multiple seeds");
            }
        }
        Ok(())
    }
}

/// The client's view of the whole deployment.
#[derive(Clone, Debug)]
pub struct TopologyDescription {
    pub(super) topology_type: TopologyType,
    pub(super) set_name: Option<String>,
    pub(super) max_election_id: Option<ObjectId>,
    pub(super) max_set_version: Option<i64>,
    pub(super) servers: BTreeMap<ServerAddress, ServerDescription>,
    pub(super) compatibility_error: Option<String>,
    pub(super) logical_session_timeout_minutes: Option<i64>,
    pub(super) heartbeat_frequency: Duration,
    pub(super) local_threshold: Duration,
    pub(super) seed_count: usize,
    pub(super) required_set_name: Option<String>,
}

impl PartialEq for TopologyDescription {
    fn eq(&self, other: &Self) -> bool {
        self.topology_type == other.topology_type
            && self.set_name == other.set_name
            && self.max_election_id == other.max_election_id
            && self.max_set_version == other.max_set_version
            && self.compatibility_error == other.compatibility_error
            && self.logical_session_timeout_minutes == other.logical_session_timeout_minutes
            && self.servers == other.servers
    }
}

impl TopologyDescription {
    /// The initial description for a configuration: every seed Unknown (or the load
    /// balancer, in load-balanced mode, still Unknown until [`Topology::new`] applies it).
    pub fn new(config: &TopologyConfig) -> Self {
        let servers = config
            .seeds
            .iter()
            .map(|a| (a.clone(), ServerDescription::new(a.clone())))
            .collect();
        let initial = config.initial_type();
        TopologyDescription {
            topology_type: initial,
            set_name: config.set_name.clone(),
            max_election_id: None,
            max_set_version: None,
            servers,
            compatibility_error: None,
            logical_session_timeout_minutes: None,
            heartbeat_frequency: config.heartbeat_frequency.max(MIN_HEARTBEAT_FREQUENCY),
            local_threshold: config.local_threshold,
            seed_count: config.seeds.len(),
            required_set_name: config.set_name.clone(),
        }
    }

    /// A description built directly from servers (for selection tests and tools).
    pub fn from_servers(
        topology_type: TopologyType,
        servers: Vec<ServerDescription>,
        heartbeat_frequency: Duration,
    ) -> Self {
        let seed_count = servers.len();
        let mut td = TopologyDescription {
            topology_type,
            set_name: servers.iter().find_map(|s| s.set_name.clone()),
            max_election_id: None,
            max_set_version: None,
            servers: servers
                .into_iter()
                .map(|s| (s.address.clone(), s))
                .collect(),
            compatibility_error: None,
            logical_session_timeout_minutes: None,
            heartbeat_frequency: heartbeat_frequency.max(MIN_HEARTBEAT_FREQUENCY),
            local_threshold: DEFAULT_LOCAL_THRESHOLD,
            seed_count,
            required_set_name: None,
        };
        td.update_compatibility();
        td.update_session_timeout();
        td
    }

    /// The topology type.
    pub fn topology_type(&self) -> TopologyType {
        self.topology_type
    }

    /// The replica set name, once known.
    pub fn set_name(&self) -> Option<&str> {
        self.set_name.as_deref()
    }

    /// The largest electionId a primary reported.
    pub fn max_election_id(&self) -> Option<ObjectId> {
        self.max_election_id
    }

    /// The setVersion paired with [`max_election_id`](Self::max_election_id).
    pub fn max_set_version(&self) -> Option<i64> {
        self.max_set_version
    }

    /// Every server, ordered by address.
    pub fn servers(&self) -> impl ExactSizeIterator<Item = &ServerDescription> {
        self.servers.values()
    }

    /// The server at `address`.
    pub fn server(&self, address: &ServerAddress) -> Option<&ServerDescription> {
        self.servers.get(address)
    }

    /// Whether every server's wire versions overlap the driver's.
    pub fn compatible(&self) -> bool {
        self.compatibility_error.is_none()
    }

    /// Why the topology is incompatible, if it is.
    pub fn compatibility_error(&self) -> Option<&str> {
        self.compatibility_error.as_deref()
    }

    /// The smallest logicalSessionTimeoutMinutes of the data-bearing servers (null if one
    /// lacks it); sessions are unsupported while this is `None` (except load-balanced).
    pub fn logical_session_timeout_minutes(&self) -> Option<i64> {
        self.logical_session_timeout_minutes
    }

    /// `heartbeatFrequencyMS` (at least 500 ms).
    pub fn heartbeat_frequency(&self) -> Duration {
        self.heartbeat_frequency
    }

    /// `localThresholdMS`.
    pub fn local_threshold(&self) -> Duration {
        self.local_threshold
    }

    /// Sets `localThresholdMS`.
    pub fn set_local_threshold(&mut self, threshold: Duration) {
        self.local_threshold = threshold;
    }

    /// Whether the topology has an RSPrimary.
    pub fn has_primary(&self) -> bool {
        self.servers
            .values()
            .any(|s| s.server_type == ServerType::RsPrimary)
    }

    /// The snapshot events carry.
    pub fn to_info(&self) -> TopologyInfo {
        let mut info = TopologyInfo::default();
        info.topology_type = self.topology_type;
        info.set_name = self.set_name.clone();
        info.servers = self
            .servers
            .values()
            .map(ServerDescription::to_info)
            .collect();
        info.compatibility_error = self.compatibility_error.clone();
        info.logical_session_timeout_minutes = self.logical_session_timeout_minutes;
        info
    }
}
