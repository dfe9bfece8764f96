//! The topology description and its update rules (the SDAM spec's "Updating the
//! TopologyDescription"), and [`Topology`], which adds the topology id and the SDAM events.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::Duration;

use bson::oid::ObjectId;
use mongo_events::sdam::{
    ServerClosedEvent, ServerDescriptionChangedEvent, ServerEvent, ServerOpeningEvent,
    TopologyClosedEvent, TopologyDescriptionChangedEvent, TopologyEvent, TopologyInfo,
    TopologyOpeningEvent,
};
use mongo_events::{Listeners, ServerAddress, ServerType, TopologyType};

use crate::description::ServerDescription;
use crate::error::SdamError;
use crate::{
    DEFAULT_HEARTBEAT_FREQUENCY, DEFAULT_LOCAL_THRESHOLD, MAX_SUPPORTED_WIRE_VERSION,
    MIN_HEARTBEAT_FREQUENCY, MIN_SUPPORTED_WIRE_VERSION,
};

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

/// What one update did, for the client to act on.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct TopologyUpdate {
    /// The outcome came from a server no longer in the topology, or was older than the
    /// current description (topologyVersion): nothing changed.
    pub ignored: bool,
    /// Servers added to the topology: start monitoring them (and create their pools).
    pub added: Vec<ServerAddress>,
    /// Servers removed: stop their monitors and close their pools.
    pub removed: Vec<ServerAddress>,
    /// Servers whose monitor must check now (a primary invalidated by a newer one).
    pub check_now: Vec<ServerAddress>,
    /// The updated server is now usable: its pool must be marked ready.
    pub pool_ready: bool,
    /// Whether the topology description changed (as SDAM equality defines it).
    pub changed: bool,
}

/// The client's view of the whole deployment.
#[derive(Clone, Debug)]
pub struct TopologyDescription {
    topology_type: TopologyType,
    set_name: Option<String>,
    max_election_id: Option<ObjectId>,
    max_set_version: Option<i64>,
    servers: BTreeMap<ServerAddress, ServerDescription>,
    compatibility_error: Option<String>,
    logical_session_timeout_minutes: Option<i64>,
    heartbeat_frequency: Duration,
    local_threshold: Duration,
    seed_count: usize,
    required_set_name: Option<String>,
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

fn tuple_text(e: Option<ObjectId>, v: Option<i64>) -> String {
    let e = e.map_or_else(|| "null".to_string(), |e| e.to_hex());
    let v = v.map_or_else(|| "null".to_string(), |v| v.to_string());
    format!("({e}, {v})")
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

    /// Applies a new server description (a check outcome, or an Unknown description from
    /// error handling) following the spec's TopologyType table. Never fails: outcomes from
    /// removed servers and outcomes older than the current topologyVersion are ignored.
    pub fn apply(&mut self, sd: ServerDescription) -> TopologyUpdate {
        let mut update = TopologyUpdate::default();
        let address = sd.address.clone();
        let Some(current) = self.servers.get(&address) else {
            update.ignored = true;
            return update;
        };
        if self.topology_type == TopologyType::LoadBalanced {
            // The load balancer is never monitored; its description stays LoadBalancer.
            if sd.server_type != ServerType::LoadBalancer {
                update.ignored = true;
                return update;
            }
        }
        if sd.topology_version.is_some()
            && crate::description::TopologyVersion::compare(
                current.topology_version.as_ref(),
                sd.topology_version.as_ref(),
            )
            .is_gt()
        {
            update.ignored = true;
            return update;
        }
        match self.topology_type {
            TopologyType::Single => {
                let sd = match &self.required_set_name {
                    Some(required) if sd.is_known() && sd.set_name.as_ref() != Some(required) => {
                        ServerDescription::unknown_with_error(
                            address.clone(),
                            format!(
                                "replica set name mismatch: expected {required:?}, server reported {:?}",
                                sd.set_name
                            ),
                        )
                    }
                    _ => sd,
                };
                self.servers.insert(address.clone(), sd);
            }
            TopologyType::LoadBalanced => {
                self.servers.insert(address.clone(), sd);
            }
            _ => self.apply_to_multi(sd, &mut update),
        }
        self.update_compatibility();
        self.update_session_timeout();
        update.pool_ready = self.servers.get(&address).is_some_and(|s| {
            s.is_data_bearing() || (self.topology_type == TopologyType::Single && s.is_known())
        });
        update
    }

    fn apply_to_multi(&mut self, sd: ServerDescription, update: &mut TopologyUpdate) {
        let server_type = sd.server_type;
        let address = sd.address.clone();
        self.servers.insert(address.clone(), sd.clone());
        use ServerType as S;
        use TopologyType as T;
        match (self.topology_type, server_type) {
            (T::Unknown, S::Standalone) => self.update_unknown_with_standalone(&sd, update),
            (T::Unknown, S::Mongos) => self.topology_type = T::Sharded,
            (T::Unknown | T::ReplicaSetNoPrimary | T::ReplicaSetWithPrimary, S::RsPrimary) => {
                self.update_rs_from_primary(&sd, update)
            }
            (T::Unknown | T::ReplicaSetNoPrimary, S::RsSecondary | S::RsArbiter | S::RsOther) => {
                self.topology_type = T::ReplicaSetNoPrimary;
                self.update_rs_without_primary(&sd, update);
            }
            (T::ReplicaSetWithPrimary, S::RsSecondary | S::RsArbiter | S::RsOther) => {
                self.update_rs_with_primary_from_member(&sd, update)
            }
            (T::Sharded, S::Unknown | S::Mongos | S::PossiblePrimary) => {}
            (T::Sharded, _) => self.remove(&address, update),
            (T::ReplicaSetNoPrimary, S::Standalone | S::Mongos | S::LoadBalancer) => {
                self.remove(&address, update)
            }
            (T::ReplicaSetWithPrimary, S::Standalone | S::Mongos | S::LoadBalancer) => {
                self.remove(&address, update);
                self.check_if_has_primary();
            }
            (T::ReplicaSetWithPrimary, S::Unknown | S::RsGhost | S::PossiblePrimary) => {
                self.check_if_has_primary()
            }
            _ => {}
        }
    }

    /// The spec's `updateUnknownWithStandalone`.
    pub(crate) fn update_unknown_with_standalone(
        &mut self,
        sd: &ServerDescription,
        update: &mut TopologyUpdate,
    ) {
        if !self.servers.contains_key(&sd.address) {
            return;
        }
        if self.seed_count == 1 {
            self.topology_type = TopologyType::Single;
        } else {
            self.remove(&sd.address, update);
        }
    }

    /// The spec's `updateRSWithoutPrimary`.
    pub(crate) fn update_rs_without_primary(
        &mut self,
        sd: &ServerDescription,
        update: &mut TopologyUpdate,
    ) {
        if !self.servers.contains_key(&sd.address) {
            return;
        }
        match &self.set_name {
            None => self.set_name = sd.set_name.clone(),
            Some(name) if sd.set_name.as_ref() != Some(name) => {
                self.remove(&sd.address, update);
                return;
            }
            Some(_) => {}
        }
        self.add_members(sd, update);
        if let Some(primary) = &sd.primary {
            if let Some(p) = self.servers.get_mut(primary) {
                if p.server_type == ServerType::Unknown {
                    p.server_type = ServerType::PossiblePrimary;
                }
            }
        }
        if sd.me.as_ref().is_some_and(|me| me != &sd.address) {
            self.remove(&sd.address, update);
        }
    }

    /// The spec's `updateRSWithPrimaryFromMember`.
    pub(crate) fn update_rs_with_primary_from_member(
        &mut self,
        sd: &ServerDescription,
        update: &mut TopologyUpdate,
    ) {
        if !self.servers.contains_key(&sd.address) {
            return;
        }
        if self.set_name != sd.set_name || sd.me.as_ref().is_some_and(|me| me != &sd.address) {
            self.remove(&sd.address, update);
            self.check_if_has_primary();
            return;
        }
        if !self.has_primary() {
            self.topology_type = TopologyType::ReplicaSetNoPrimary;
            if let Some(primary) = &sd.primary {
                if let Some(p) = self.servers.get_mut(primary) {
                    if p.server_type == ServerType::Unknown {
                        p.server_type = ServerType::PossiblePrimary;
                    }
                }
            }
        }
    }

    /// The spec's `updateRSFromPrimary`, with the 6.0+ (electionId, setVersion) ordering and the
    /// older setVersion-first rules for servers below wire version 17.
    pub(crate) fn update_rs_from_primary(
        &mut self,
        sd: &ServerDescription,
        update: &mut TopologyUpdate,
    ) {
        if !self.servers.contains_key(&sd.address) {
            return;
        }
        match &self.set_name {
            None => self.set_name = sd.set_name.clone(),
            Some(name) if sd.set_name.as_ref() != Some(name) => {
                self.remove(&sd.address, update);
                self.check_if_has_primary();
                return;
            }
            Some(_) => {}
        }
        if sd.max_wire_version.unwrap_or(0) >= 17 {
            // None sorts before Some for both fields, which is the spec's "null is less".
            let newer = sd.election_id > self.max_election_id
                || (sd.election_id == self.max_election_id
                    && sd.set_version >= self.max_set_version);
            if newer {
                self.max_election_id = sd.election_id;
                self.max_set_version = sd.set_version;
            } else {
                self.mark_stale_primary(sd);
                return;
            }
        } else {
            if let (Some(sv), Some(eid)) = (sd.set_version, sd.election_id) {
                if let (Some(max_sv), Some(max_eid)) = (self.max_set_version, self.max_election_id)
                {
                    if max_sv > sv || (max_sv == sv && max_eid > eid) {
                        self.mark_stale_primary(sd);
                        return;
                    }
                }
                self.max_election_id = Some(eid);
            }
            if let Some(sv) = sd.set_version {
                if self.max_set_version.is_none_or(|max| sv > max) {
                    self.max_set_version = Some(sv);
                }
            }
        }
        for (address, server) in self.servers.iter_mut() {
            if address != &sd.address && server.server_type == ServerType::RsPrimary {
                *server = ServerDescription::unknown_with_error(
                    address.clone(),
                    "primary marked stale due to discovery of newer primary",
                );
                update.check_now.push(address.clone());
            }
        }
        self.add_members(sd, update);
        let members: HashSet<&ServerAddress> = sd.members().collect();
        let gone: Vec<ServerAddress> = self
            .servers
            .keys()
            .filter(|a| !members.contains(a))
            .cloned()
            .collect();
        for address in gone {
            // Not a member, so not among `update.added`: skip `remove`'s scan of it, which
            // would make a large reconfiguration quadratic.
            self.drop_server(&address, update);
        }
        self.check_if_has_primary();
    }

    fn mark_stale_primary(&mut self, sd: &ServerDescription) {
        let error = format!(
            "primary marked stale due to electionId/setVersion mismatch, {} is stale compared to {}",
            tuple_text(sd.election_id, sd.set_version),
            tuple_text(self.max_election_id, self.max_set_version)
        );
        self.servers.insert(
            sd.address.clone(),
            ServerDescription::unknown_with_error(sd.address.clone(), error),
        );
        self.check_if_has_primary();
    }

    fn add_members(&mut self, sd: &ServerDescription, update: &mut TopologyUpdate) {
        for member in sd.members() {
            if !self.servers.contains_key(member) {
                self.servers
                    .insert(member.clone(), ServerDescription::new(member.clone()));
                update.added.push(member.clone());
            }
        }
    }

    /// The spec's `checkIfHasPrimary`.
    pub(crate) fn check_if_has_primary(&mut self) {
        self.topology_type = if self.has_primary() {
            TopologyType::ReplicaSetWithPrimary
        } else {
            TopologyType::ReplicaSetNoPrimary
        };
    }

    /// The spec's `remove`.
    pub(crate) fn remove(&mut self, address: &ServerAddress, update: &mut TopologyUpdate) {
        if self.servers.contains_key(address) {
            update.added.retain(|a| a != address);
        }
        self.drop_server(address, update);
    }

    /// [`remove`](Self::remove) for a server known not to be among `update.added`.
    fn drop_server(&mut self, address: &ServerAddress, update: &mut TopologyUpdate) {
        if self.servers.remove(address).is_some() {
            update.removed.push(address.clone());
            if self.servers.is_empty() {
                tracing::warn!(target: "mongo::topology", "the last server was removed from the topology");
            }
        }
    }

    fn update_compatibility(&mut self) {
        self.compatibility_error = None;
        if self.topology_type == TopologyType::LoadBalanced {
            return;
        }
        for s in self.servers.values().filter(|s| s.is_known()) {
            let min = s.min_wire_version.unwrap_or(0);
            let max = s.max_wire_version.unwrap_or(0);
            if min > MAX_SUPPORTED_WIRE_VERSION {
                self.compatibility_error = Some(format!(
                    "Server at {} requires wire version {min}, but this version of mongo-rs only supports up to {MAX_SUPPORTED_WIRE_VERSION}.",
                    s.address
                ));
                return;
            }
            if max < MIN_SUPPORTED_WIRE_VERSION {
                self.compatibility_error = Some(format!(
                    "Server at {} reports wire version {max}, but this version of mongo-rs requires at least {MIN_SUPPORTED_WIRE_VERSION} (MongoDB 4.2).",
                    s.address
                ));
                return;
            }
        }
    }

    fn update_session_timeout(&mut self) {
        if self.topology_type == TopologyType::LoadBalanced {
            self.logical_session_timeout_minutes = None;
            return;
        }
        let mut result: Option<i64> = None;
        let mut any = false;
        for s in self.servers.values().filter(|s| s.is_data_bearing()) {
            match s.logical_session_timeout_minutes {
                None => {
                    self.logical_session_timeout_minutes = None;
                    return;
                }
                Some(m) => {
                    any = true;
                    result = Some(result.map_or(m, |r| r.min(m)));
                }
            }
        }
        self.logical_session_timeout_minutes = if any { result } else { None };
    }
}

/// One SDAM event: a server event or a topology event, in the order they happened.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum SdamEvent {
    Server(ServerEvent),
    Topology(TopologyEvent),
}

/// A topology: its id, its description, and the server and topology events its updates
/// produce. Sans-I/O: the client feeds it check outcomes and application errors (holding
/// its own lock), acts on the returned [`TopologyUpdate`] / [`ErrorDecision`](crate::ErrorDecision),
/// and drains the events with [`poll_event`](Self::poll_event) or
/// [`emit_events`](Self::emit_events).
#[derive(Debug)]
pub struct Topology {
    id: ObjectId,
    description: TopologyDescription,
    events: VecDeque<SdamEvent>,
    record_events: bool,
}

impl Topology {
    /// Opens a topology: validates the configuration and queues the opening events
    /// (TopologyOpening, the first TopologyDescriptionChanged, a ServerOpening per seed, and in
    /// load-balanced mode the load balancer's description change).
    pub fn new(config: &TopologyConfig) -> Result<Topology, SdamError> {
        Self::with_id(config, ObjectId::new())
    }

    /// As [`new`](Self::new), with a chosen topology id.
    pub fn with_id(config: &TopologyConfig, id: ObjectId) -> Result<Topology, SdamError> {
        config.validate()?;
        let description = TopologyDescription::new(config);
        let mut topology = Topology {
            id,
            description,
            events: VecDeque::new(),
            record_events: true,
        };
        topology.push_topology(TopologyEvent::Opening(TopologyOpeningEvent {
            topology_id: id,
        }));
        let empty = TopologyInfo::default();
        let info = topology.description.to_info();
        topology.push_topology(TopologyEvent::DescriptionChanged(Box::new(
            TopologyDescriptionChangedEvent {
                topology_id: id,
                previous_description: empty,
                new_description: info,
            },
        )));
        let seeds: Vec<ServerAddress> = topology.description.servers.keys().cloned().collect();
        for address in seeds {
            topology.push_server(ServerEvent::Opening(ServerOpeningEvent {
                address,
                topology_id: id,
            }));
        }
        if config.load_balanced {
            if let Some(address) = config.seeds.first() {
                topology.apply(ServerDescription::load_balancer(address.clone()));
            }
        }
        Ok(topology)
    }

    /// Stops building events (when nobody listens), which saves a snapshot per update.
    /// Log messages (target `mongo::topology`) are still written when a subscriber enables
    /// them.
    pub fn set_record_events(&mut self, record: bool) {
        self.record_events = record;
        if !record {
            self.events.clear();
        }
    }

    /// The topology id events carry.
    pub fn id(&self) -> ObjectId {
        self.id
    }

    /// The current description.
    pub fn description(&self) -> &TopologyDescription {
        &self.description
    }

    /// Applies a check outcome (or any new server description), queueing a
    /// ServerDescriptionChanged event when the server's description changed, ServerOpening /
    /// ServerClosed for added and removed servers, and a TopologyDescriptionChanged event when
    /// the topology changed.
    pub fn apply(&mut self, sd: ServerDescription) -> TopologyUpdate {
        if !self.record_events && !crate::log::topology_enabled() {
            // Nobody listens and nobody logs: no snapshots, so the cost stays linear in the
            // set's size.
            let mut update = self.description.apply(sd);
            update.changed = !update.ignored;
            return update;
        }
        // Snapshots for the events (each server's host list is copied, so this part grows
        // with members x hosts; turn it off with `set_record_events(false)`).
        let before = self.description.clone();
        let address = sd.address.clone();
        let previous_server = self.description.servers.get(&address).cloned();
        let mut update = self.description.apply(sd);
        if update.ignored {
            return update;
        }
        update.changed = before != self.description;
        let new_server = self.description.servers.get(&address);
        if let (Some(prev), Some(new)) = (&previous_server, new_server) {
            if prev != new {
                let (p, n) = (prev.to_info(), new.to_info());
                self.push_server(ServerEvent::DescriptionChanged(Box::new(
                    ServerDescriptionChangedEvent {
                        address: address.clone(),
                        topology_id: self.id,
                        previous_description: p,
                        new_description: n,
                    },
                )));
            }
        }
        for a in &update.added {
            self.push_server(ServerEvent::Opening(ServerOpeningEvent {
                address: a.clone(),
                topology_id: self.id,
            }));
        }
        for a in &update.removed {
            self.push_server(ServerEvent::Closed(ServerClosedEvent {
                address: a.clone(),
                topology_id: self.id,
            }));
        }
        if update.changed {
            let new_info = self.description.to_info();
            self.push_topology(TopologyEvent::DescriptionChanged(Box::new(
                TopologyDescriptionChangedEvent {
                    topology_id: self.id,
                    previous_description: before.to_info(),
                    new_description: new_info,
                },
            )));
        }
        update
    }

    /// Closes the topology: a ServerClosed per server, a TopologyDescriptionChanged to an
    /// empty Unknown topology, then TopologyClosed. Returns the servers whose monitors and
    /// pools must be closed.
    pub fn close(&mut self) -> Vec<ServerAddress> {
        let before = self.description.to_info();
        let addresses: Vec<ServerAddress> = self.description.servers.keys().cloned().collect();
        for a in &addresses {
            self.push_server(ServerEvent::Closed(ServerClosedEvent {
                address: a.clone(),
                topology_id: self.id,
            }));
        }
        self.description.servers.clear();
        self.description.topology_type = TopologyType::Unknown;
        self.description.update_session_timeout();
        self.push_topology(TopologyEvent::DescriptionChanged(Box::new(
            TopologyDescriptionChangedEvent {
                topology_id: self.id,
                previous_description: before,
                new_description: TopologyInfo::default(),
            },
        )));
        self.push_topology(TopologyEvent::Closed(TopologyClosedEvent {
            topology_id: self.id,
        }));
        addresses
    }

    /// The next queued event.
    pub fn poll_event(&mut self) -> Option<SdamEvent> {
        self.events.pop_front()
    }

    /// Delivers every queued event to `listeners`, in order.
    pub fn emit_events(&mut self, listeners: &Listeners) {
        while let Some(event) = self.events.pop_front() {
            match event {
                SdamEvent::Server(e) => listeners.deliver_server(&e),
                SdamEvent::Topology(e) => listeners.deliver_topology(&e),
            }
        }
    }

    fn push_server(&mut self, e: ServerEvent) {
        crate::log::server_event(&e);
        if self.record_events {
            self.events.push_back(SdamEvent::Server(e));
        }
    }

    fn push_topology(&mut self, e: TopologyEvent) {
        crate::log::topology_event(&e);
        if self.record_events {
            self.events.push_back(SdamEvent::Topology(e));
        }
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
    use std::time::Instant;

    #[test]
    fn a_primary_replacing_a_large_member_list_adds_and_removes_each_once() {
        let n = 3000;
        let old: Vec<ServerAddress> = (0..n)
            .map(|i| ServerAddress::parse(&format!("old{i}:27017")).unwrap())
            .collect();
        let mut topology = Topology::new(&TopologyConfig::new(old.clone())).unwrap();
        topology.set_record_events(false);
        let primary = old[0].clone();
        let mut hosts: Vec<String> = (0..n).map(|i| format!("new{i}:27017")).collect();
        hosts.push(primary.to_string());
        let reply = doc! {"ok": 1, "isWritablePrimary": true, "setName": "rs",
        "maxWireVersion": 21, "hosts": hosts};
        let sd = ServerDescription::from_hello(primary.clone(), &reply, None, Instant::now());
        let update = topology.apply(sd);
        assert_eq!(update.added.len(), n);
        assert_eq!(update.removed.len(), n - 1);
        assert!(!update.removed.contains(&primary));
        assert_eq!(topology.description().servers().len(), n + 1);
        assert_eq!(
            topology.description().topology_type(),
            TopologyType::ReplicaSetWithPrimary
        );
    }
}
