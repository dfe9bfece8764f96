//! [`Topology`]: a topology id, its description, and the server and topology events (with
//! their log messages) that opening, updating and closing it produce.

use std::collections::VecDeque;

use bson::oid::ObjectId;
use mongo_events::sdam::{
    ServerClosedEvent, ServerDescriptionChangedEvent, ServerEvent, ServerOpeningEvent,
    TopologyClosedEvent, TopologyDescriptionChangedEvent, TopologyEvent, TopologyInfo,
    TopologyOpeningEvent,
};
use mongo_events::{Listeners, ServerAddress, TopologyType};

use super::{TopologyConfig, TopologyDescription, TopologyUpdate};
use crate::description::ServerDescription;
use crate::error::SdamError;

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

    /// Applies the hosts an SRV rescan verified
    /// ([`TopologyDescription::apply_srv_hosts`]), queueing ServerOpening / ServerClosed for
    /// the servers added and removed and a TopologyDescriptionChanged when anything changed.
    pub fn apply_srv_hosts(
        &mut self,
        hosts: &[ServerAddress],
        max_hosts: u32,
        below: &mut dyn FnMut(usize) -> usize,
    ) -> TopologyUpdate {
        let before = self.description.to_info();
        let mut update = self.description.apply_srv_hosts(hosts, max_hosts, below);
        update.changed = !update.added.is_empty() || !update.removed.is_empty();
        if !update.changed {
            return update;
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
        let new_info = self.description.to_info();
        self.push_topology(TopologyEvent::DescriptionChanged(Box::new(
            TopologyDescriptionChangedEvent {
                topology_id: self.id,
                previous_description: before,
                new_description: new_info,
            },
        )));
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
