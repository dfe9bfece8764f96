//! The topology's side of SRV polling: applying a rescan's hosts (new servers get a pool and
//! a monitor, removed ones are closed) and a weak handle for the polling task.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use mongo_events::{ServerAddress, TopologyType};

use super::{Inner, Topology};

/// A handle that does not keep the topology alive: the SRV poller stops when the client is
/// dropped.
#[derive(Clone)]
pub(crate) struct WeakTopology(Weak<Inner>);

impl WeakTopology {
    /// The topology, unless it was dropped or shut down.
    pub(crate) fn upgrade(&self) -> Option<Topology> {
        let inner = self.0.upgrade()?;
        if inner.closed.load(Ordering::SeqCst) {
            return None;
        }
        Some(Topology { inner })
    }
}

impl Topology {
    /// A weak handle.
    pub(crate) fn downgrade(&self) -> WeakTopology {
        WeakTopology(Arc::downgrade(&self.inner))
    }

    /// heartbeatFrequencyMS, as the topology uses it.
    pub(crate) fn heartbeat_frequency(&self) -> Duration {
        self.inner.settings.config.heartbeat_frequency
    }

    /// Applies the hosts an SRV rescan verified (`mongo_sdam`'s `apply_srv_hosts`), then
    /// starts or stops the servers it added or removed and delivers the events. Returns
    /// whether the topology changed.
    pub(crate) fn apply_srv_hosts(
        &self,
        hosts: &[ServerAddress],
        max_hosts: u32,
        below: &mut dyn FnMut(usize) -> usize,
    ) -> bool {
        let changed = {
            let mut st = self.inner.state.lock();
            let update = st.sdam.apply_srv_hosts(hosts, max_hosts, below);
            if let Some(first) = hosts.first() {
                Inner::apply_update(&self.inner, &mut st, first, &update);
            }
            update.changed
        };
        if changed {
            self.inner.flush_events();
            self.inner.changed.notify_waiters();
        }
        changed
    }

    /// Whether SRV rescans apply to the topology now (Sharded or Unknown).
    pub(crate) fn srv_polling_applies(&self) -> bool {
        matches!(
            self.topology_type(),
            TopologyType::Sharded | TopologyType::Unknown
        )
    }
}
