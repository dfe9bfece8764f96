//! The topology description and its update rules (the SDAM spec's "Updating the
//! TopologyDescription"), and [`Topology`], which adds the topology id and the SDAM events.
//!
//! The files: `description` holds [`TopologyConfig`] and [`TopologyDescription`] (its state,
//! constructors and accessors); `update` the update rules, named after the spec's pseudocode,
//! and the [`TopologyUpdate`] they return; `events` the event-emitting [`Topology`] and
//! [`SdamEvent`]; `srv` the SRV polling spec's host-list update and the shared shuffle.

mod description;
mod events;
mod srv;
mod update;

pub use description::{TopologyConfig, TopologyDescription};
pub use events::{SdamEvent, Topology};
pub use srv::shuffle_hosts;
pub use update::{MAX_SERVERS_FROM_REPORTS, TopologyUpdate};

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "tests drive the cores from an arbitrary starting instant and wait on real time"
)]
mod tests {
    use super::*;
    use crate::description::ServerDescription;
    use bson::doc;
    use mongo_events::{ServerAddress, TopologyType};
    use std::time::Instant;

    #[test]
    fn a_primary_replacing_a_large_member_list_adds_and_removes_each_once() {
        // The seed list is the user's (unbounded); a reply lists at most MAX_REPORTED_MEMBERS.
        let n_old = 3000;
        let n = crate::description::MAX_REPORTED_MEMBERS - 1;
        let old: Vec<ServerAddress> = (0..n_old)
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
        assert_eq!(update.removed.len(), n_old - 1);
        assert!(!update.removed.contains(&primary));
        assert_eq!(topology.description().servers().len(), n + 1);
        assert_eq!(
            topology.description().topology_type(),
            TopologyType::ReplicaSetWithPrimary
        );
    }

    #[test]
    fn members_reported_by_servers_cannot_grow_the_topology_without_limit() {
        let seed = ServerAddress::parse("seed:27017").unwrap();
        let mut topology = Topology::new(&TopologyConfig::new(vec![seed.clone()])).unwrap();
        topology.set_record_events(false);
        // Secondaries (no primary yet) each listing 100 members nobody else lists.
        let mut next = vec![seed];
        let mut round = 0;
        while let Some(reporter) = next.pop() {
            round += 1;
            if round > 50 {
                break;
            }
            let hosts: Vec<String> = (0..crate::description::MAX_REPORTED_MEMBERS)
                .map(|i| format!("r{round}-{i}:27017"))
                .collect();
            let reply = doc! {"ok": 1, "secondary": true, "setName": "rs",
            "maxWireVersion": 21, "hosts": hosts};
            let sd = ServerDescription::from_hello(reporter, &reply, None, Instant::now());
            let update = topology.apply(sd);
            next.extend(update.added);
        }
        assert!(
            topology.description().servers().len() <= MAX_SERVERS_FROM_REPORTS,
            "{} servers",
            topology.description().servers().len()
        );
    }
}
