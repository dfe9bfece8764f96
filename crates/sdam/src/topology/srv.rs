//! The polling SRV records for mongos discovery spec's host-list update:
//! [`TopologyDescription::apply_srv_hosts`] replaces the mongoses of a Sharded (or Unknown)
//! topology with the hosts a rescan found, honouring `srvMaxHosts`, and [`shuffle_hosts`] is the
//! Fisher-Yates shuffle both the initial seedlist and the rescans draw hosts with. The
//! randomness comes in from the caller (sans-I/O).

use mongo_events::{ServerAddress, TopologyType};

use super::{TopologyDescription, TopologyUpdate};
use crate::description::ServerDescription;

/// Shuffles `items` in place with the Fisher-Yates algorithm. `below(n)` must return a
/// number in `0..n` (values out of range are reduced modulo `n`).
pub fn shuffle_hosts<T>(items: &mut [T], below: &mut dyn FnMut(usize) -> usize) {
    for i in (1..items.len()).rev() {
        let j = below(i + 1) % (i + 1);
        items.swap(i, j);
    }
}

impl TopologyDescription {
    /// Applies the hosts an SRV rescan verified: servers no longer listed are removed, servers
    /// still listed are left untouched, and new ones are added as Unknown — all of them when
    /// `max_hosts` is zero or at least the number of hosts, otherwise randomly chosen ones
    /// (with [`shuffle_hosts`]) until the topology has `max_hosts` servers.
    ///
    /// Only a Sharded or Unknown topology is changed (the spec rescans nothing else); an
    /// empty `hosts` changes nothing (the spec keeps the topology when no verified host was
    /// found).
    pub fn apply_srv_hosts(
        &mut self,
        hosts: &[ServerAddress],
        max_hosts: u32,
        below: &mut dyn FnMut(usize) -> usize,
    ) -> TopologyUpdate {
        let mut update = TopologyUpdate::default();
        if hosts.is_empty()
            || !matches!(
                self.topology_type,
                TopologyType::Sharded | TopologyType::Unknown
            )
        {
            update.ignored = true;
            return update;
        }
        let gone: Vec<ServerAddress> = self
            .servers
            .keys()
            .filter(|a| !hosts.contains(a))
            .cloned()
            .collect();
        for address in &gone {
            self.remove(address, &mut update);
        }
        let mut new: Vec<ServerAddress> = Vec::new();
        for h in hosts {
            if !self.servers.contains_key(h) && !new.contains(h) {
                new.push(h.clone());
            }
        }
        let limit = usize::try_from(max_hosts).unwrap_or(usize::MAX);
        if limit != 0 && limit < hosts.len() {
            shuffle_hosts(&mut new, below);
            new.truncate(limit.saturating_sub(self.servers.len()));
        }
        for address in new {
            self.servers
                .insert(address.clone(), ServerDescription::new(address.clone()));
            update.added.push(address);
        }
        self.update_compatibility();
        self.update_session_timeout();
        update
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::TopologyConfig;

    fn addr(port: u16) -> ServerAddress {
        ServerAddress::parse(&format!("h.example.com:{port}")).unwrap_or_else(|e| panic!("{e}"))
    }

    fn hosts_of(td: &TopologyDescription) -> Vec<u16> {
        let mut p: Vec<u16> = td.servers().filter_map(|s| s.address.port()).collect();
        p.sort_unstable();
        p
    }

    fn sharded(ports: &[u16]) -> TopologyDescription {
        let config = TopologyConfig::new(ports.iter().map(|p| addr(*p)).collect());
        TopologyDescription::new(&config)
    }

    #[test]
    fn shuffle_is_a_permutation_driven_by_the_given_numbers() {
        let mut v = [1, 2, 3, 4];
        shuffle_hosts(&mut v, &mut |_| 0);
        // Always swapping with the first: 4 1 2 3 -> ... a fixed, checkable permutation.
        assert_eq!(v, [2, 3, 4, 1]);
        let mut w = [1, 2, 3, 4];
        shuffle_hosts(&mut w, &mut |n| n - 1);
        assert_eq!(w, [1, 2, 3, 4]);
    }

    #[test]
    fn unchanged_hosts_stay_new_ones_are_added_and_missing_ones_removed() {
        let mut td = sharded(&[27017, 27018]);
        let u = td.apply_srv_hosts(&[addr(27017), addr(27019)], 0, &mut |_| 0);
        assert_eq!(u.added, vec![addr(27019)]);
        assert_eq!(u.removed, vec![addr(27018)]);
        assert_eq!(hosts_of(&td), vec![27017, 27019]);
    }

    #[test]
    fn srv_max_hosts_caps_the_additions_and_keeps_existing_hosts() {
        let mut td = sharded(&[27017, 27018]);
        let u = td.apply_srv_hosts(&[addr(27017), addr(27019), addr(27020)], 2, &mut |_| 0);
        assert_eq!(u.added.len(), 1);
        assert_eq!(hosts_of(&td).len(), 2);
        assert!(hosts_of(&td).contains(&27017));
    }

    #[test]
    fn replica_sets_and_empty_answers_are_left_alone() {
        let mut td = sharded(&[27017]);
        assert!(td.apply_srv_hosts(&[], 0, &mut |_| 0).ignored);
        td.topology_type = TopologyType::ReplicaSetNoPrimary;
        assert!(td.apply_srv_hosts(&[addr(1)], 0, &mut |_| 0).ignored);
        assert_eq!(hosts_of(&td), vec![27017]);
    }
}
