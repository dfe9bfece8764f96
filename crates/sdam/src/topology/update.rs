//! The SDAM spec's "Updating the TopologyDescription": [`TopologyDescription::apply`] runs
//! the TopologyType table, with one crate-private function per pseudocode rule
//! (`update_rs_from_primary`, `update_rs_without_primary`, `check_if_has_primary`, ...), and
//! returns a [`TopologyUpdate`] for the client to act on; the compatibility and
//! logicalSessionTimeoutMinutes recomputations follow every update.

use std::collections::HashSet;

use bson::oid::ObjectId;
use mongo_events::{ServerAddress, ServerType, TopologyType};

use super::TopologyDescription;

/// The most servers that members reported by non-primaries can bring the topology to (twice
/// [`crate::description::MAX_REPORTED_MEMBERS`]): past it, newly reported members are not
/// added (no monitor, no pool) and a warning is logged. A primary's list (itself at most
/// `MAX_REPORTED_MEMBERS`) replaces the membership, and seeds from the user's connection
/// string and SRV records are not limited by it.
pub const MAX_SERVERS_FROM_REPORTS: usize = 2 * crate::description::MAX_REPORTED_MEMBERS;
use crate::description::ServerDescription;
use crate::{MAX_SUPPORTED_WIRE_VERSION, MIN_SUPPORTED_WIRE_VERSION};

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

fn tuple_text(e: Option<ObjectId>, v: Option<i64>) -> String {
    let e = e.map_or_else(|| "null".to_string(), |e| e.to_hex());
    let v = v.map_or_else(|| "null".to_string(), |v| v.to_string());
    format!("({e}, {v})")
}

impl TopologyDescription {
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
        self.add_members(sd, update, true);
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
        // A primary's list replaces the membership (members it does not list are removed
        // next): its at most MAX_REPORTED_MEMBERS are always added.
        self.add_members(sd, update, false);
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

    /// Adds the members `sd` lists that the topology lacks; `bounded`: not past
    /// [`MAX_SERVERS_FROM_REPORTS`] servers (members listed by non-primaries accumulate).
    fn add_members(&mut self, sd: &ServerDescription, update: &mut TopologyUpdate, bounded: bool) {
        let mut refused = 0_usize;
        for member in sd.members() {
            if !self.servers.contains_key(member) {
                if bounded && self.servers.len() >= MAX_SERVERS_FROM_REPORTS {
                    refused += 1;
                    continue;
                }
                self.servers
                    .insert(member.clone(), ServerDescription::new(member.clone()));
                update.added.push(member.clone());
            }
        }
        if refused > 0 {
            tracing::warn!(
                target: "mongo::topology",
                "the topology already has {MAX_SERVERS_FROM_REPORTS} servers or more: {refused} \
                 new members reported by {} were not added",
                sd.address
            );
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

    pub(super) fn update_compatibility(&mut self) {
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

    pub(super) fn update_session_timeout(&mut self) {
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
