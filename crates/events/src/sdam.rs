//! Server, heartbeat and topology events (SDAM monitoring), and the description snapshots they
//! carry.

use std::collections::BTreeMap;
use std::time::Duration;

use bson::Document;
use bson::oid::ObjectId;

use crate::{EventError, ServerAddress, ServerType, TopologyType};

/// A server description as events report it: the fields SDAM decided from the last check.
/// `mongo-sdam` builds these from its own descriptions.
#[derive(Clone, Debug, PartialEq, Default)]
#[non_exhaustive]
pub struct ServerInfo {
    /// The server's address.
    pub address: ServerAddress,
    /// Its type.
    pub server_type: ServerType,
    /// The average round-trip time, once measured.
    pub round_trip_time: Option<Duration>,
    /// The replica set name, for members.
    pub set_name: Option<String>,
    /// The server's tags.
    pub tags: BTreeMap<String, String>,
    /// The error of the last failed check.
    pub error: Option<String>,
    /// Wire versions supported, when known.
    pub min_wire_version: Option<i32>,
    /// Wire versions supported, when known.
    pub max_wire_version: Option<i32>,
    /// The hosts, passives and arbiters the server listed.
    pub hosts: Vec<ServerAddress>,
    /// The primary the server named.
    pub primary: Option<ServerAddress>,
}

impl ServerInfo {
    /// A description of a server not yet contacted.
    pub fn unknown(address: ServerAddress) -> Self {
        ServerInfo {
            address,
            ..ServerInfo::default()
        }
    }

    /// Whether the server's tags include every tag of `tag_set`.
    pub fn matches_tags(&self, tag_set: &BTreeMap<String, String>) -> bool {
        tag_set.iter().all(|(k, v)| self.tags.get(k) == Some(v))
    }
}

/// The read modes, as [`TopologyInfo::has_readable_server`] takes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ReadMode {
    /// Only the primary.
    #[default]
    Primary,
    /// The primary, else a secondary.
    PrimaryPreferred,
    /// Only secondaries.
    Secondary,
    /// A secondary, else the primary.
    SecondaryPreferred,
    /// Any member.
    Nearest,
}

impl ReadMode {
    /// Every mode, in the order the server selection spec lists them.
    pub const ALL: [ReadMode; 5] = [
        ReadMode::Primary,
        ReadMode::PrimaryPreferred,
        ReadMode::Secondary,
        ReadMode::SecondaryPreferred,
        ReadMode::Nearest,
    ];

    /// The mode's name as the connection string and `$readPreference` spell it
    /// (`"secondaryPreferred"`).
    pub fn name(self) -> &'static str {
        match self {
            ReadMode::Primary => "primary",
            ReadMode::PrimaryPreferred => "primaryPreferred",
            ReadMode::Secondary => "secondary",
            ReadMode::SecondaryPreferred => "secondaryPreferred",
            ReadMode::Nearest => "nearest",
        }
    }

    /// Parses a mode name, ignoring ASCII case (as the URI options spec allows).
    pub fn from_name(name: &str) -> Option<ReadMode> {
        ReadMode::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }
}

impl std::fmt::Display for ReadMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A topology description as events report it.
#[derive(Clone, Debug, PartialEq, Default)]
#[non_exhaustive]
pub struct TopologyInfo {
    /// The topology's type.
    pub topology_type: TopologyType,
    /// The replica set name, when known.
    pub set_name: Option<String>,
    /// Every server, by address.
    pub servers: Vec<ServerInfo>,
    /// Why the topology is incompatible with this driver, if it is.
    pub compatibility_error: Option<String>,
    /// The smallest logicalSessionTimeoutMinutes of the data-bearing servers.
    pub logical_session_timeout_minutes: Option<i64>,
}

impl TopologyInfo {
    /// Whether some server can take writes now, as PyMongo's `has_writable_server()`.
    pub fn has_writable_server(&self) -> bool {
        self.servers.iter().any(|s| match self.topology_type {
            TopologyType::Single => s.server_type.is_data_bearing(),
            _ => s.server_type.is_writable(),
        })
    }

    /// Whether some server can serve reads with `mode` (no tags, no staleness limit), as
    /// PyMongo's `has_readable_server()`. `None` means primary.
    pub fn has_readable_server(&self, mode: Option<ReadMode>) -> bool {
        self.has_readable_server_with_tags(mode, &[])
    }

    /// As [`has_readable_server`](Self::has_readable_server), with tag sets tried in order (an
    /// empty list, or an empty set, matches every server).
    pub fn has_readable_server_with_tags(
        &self,
        mode: Option<ReadMode>,
        tag_sets: &[BTreeMap<String, String>],
    ) -> bool {
        let mode = mode.unwrap_or_default();
        match self.topology_type {
            TopologyType::Single | TopologyType::Sharded | TopologyType::LoadBalanced => {
                self.servers.iter().any(|s| s.server_type.is_data_bearing())
            }
            TopologyType::Unknown => false,
            TopologyType::ReplicaSetNoPrimary | TopologyType::ReplicaSetWithPrimary => {
                let tagged = |t: ServerType| {
                    self.servers.iter().any(|s| {
                        s.server_type == t
                            && (tag_sets.is_empty() || tag_sets.iter().any(|ts| s.matches_tags(ts)))
                    })
                };
                let primary = self
                    .servers
                    .iter()
                    .any(|s| s.server_type == ServerType::RsPrimary);
                match mode {
                    ReadMode::Primary => primary,
                    ReadMode::PrimaryPreferred | ReadMode::SecondaryPreferred => {
                        primary || tagged(ServerType::RsSecondary)
                    }
                    ReadMode::Secondary => tagged(ServerType::RsSecondary),
                    ReadMode::Nearest => {
                        tagged(ServerType::RsSecondary) || tagged(ServerType::RsPrimary)
                    }
                }
            }
        }
    }

    /// The description of the server at `address`.
    pub fn server(&self, address: &ServerAddress) -> Option<&ServerInfo> {
        self.servers.iter().find(|s| &s.address == address)
    }
}

/// A server was added to the topology.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerOpeningEvent {
    /// The server's address.
    pub address: ServerAddress,
    /// The topology's id.
    pub topology_id: ObjectId,
}

/// A server was removed from the topology.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerClosedEvent {
    /// The server's address.
    pub address: ServerAddress,
    /// The topology's id.
    pub topology_id: ObjectId,
}

/// A server's description changed (as SDAM's equality defines change).
#[derive(Clone, Debug, PartialEq)]
pub struct ServerDescriptionChangedEvent {
    /// The server's address.
    pub address: ServerAddress,
    /// The topology's id.
    pub topology_id: ObjectId,
    /// The description before.
    pub previous_description: ServerInfo,
    /// The description after.
    pub new_description: ServerInfo,
}

/// Any server event.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum ServerEvent {
    Opening(ServerOpeningEvent),
    DescriptionChanged(Box<ServerDescriptionChangedEvent>),
    Closed(ServerClosedEvent),
}

/// A heartbeat (a monitor's hello) was sent.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerHeartbeatStartedEvent {
    /// The server's address.
    pub address: ServerAddress,
    /// Whether this check is an awaitable hello (streaming protocol).
    pub awaited: bool,
}

/// A heartbeat succeeded.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerHeartbeatSucceededEvent {
    /// The server's address.
    pub address: ServerAddress,
    /// Whether this check was awaited.
    pub awaited: bool,
    /// The time the check took.
    pub duration: Duration,
    /// The hello reply.
    pub reply: Document,
}

/// A heartbeat failed.
#[derive(Clone, Debug)]
pub struct ServerHeartbeatFailedEvent {
    /// The server's address.
    pub address: ServerAddress,
    /// Whether this check was awaited.
    pub awaited: bool,
    /// The time until the failure.
    pub duration: Duration,
    /// The failure.
    pub failure: EventError,
}

/// Any heartbeat event.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub enum HeartbeatEvent {
    Started(ServerHeartbeatStartedEvent),
    Succeeded(ServerHeartbeatSucceededEvent),
    Failed(ServerHeartbeatFailedEvent),
}

/// A topology was opened.
#[derive(Clone, Debug, PartialEq)]
pub struct TopologyOpeningEvent {
    /// The topology's id.
    pub topology_id: ObjectId,
}

/// A topology's description changed.
#[derive(Clone, Debug, PartialEq)]
pub struct TopologyDescriptionChangedEvent {
    /// The topology's id.
    pub topology_id: ObjectId,
    /// The description before.
    pub previous_description: TopologyInfo,
    /// The description after.
    pub new_description: TopologyInfo,
}

/// A topology was closed.
#[derive(Clone, Debug, PartialEq)]
pub struct TopologyClosedEvent {
    /// The topology's id.
    pub topology_id: ObjectId,
}

/// Any topology event.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum TopologyEvent {
    Opening(TopologyOpeningEvent),
    DescriptionChanged(Box<TopologyDescriptionChangedEvent>),
    Closed(TopologyClosedEvent),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(host: &str, t: ServerType) -> ServerInfo {
        ServerInfo {
            server_type: t,
            ..ServerInfo::unknown(ServerAddress::tcp(host, 27017))
        }
    }

    #[test]
    fn writable_and_readable_follow_pymongo() {
        let mut topo = TopologyInfo {
            topology_type: TopologyType::ReplicaSetNoPrimary,
            servers: vec![
                server("a", ServerType::RsSecondary),
                server("b", ServerType::Unknown),
            ],
            ..TopologyInfo::default()
        };
        assert!(!topo.has_writable_server());
        assert!(!topo.has_readable_server(None));
        assert!(topo.has_readable_server(Some(ReadMode::Secondary)));
        assert!(topo.has_readable_server(Some(ReadMode::Nearest)));
        let mut tags = BTreeMap::new();
        tags.insert("dc".to_string(), "ny".to_string());
        assert!(!topo.has_readable_server_with_tags(Some(ReadMode::Secondary), &[tags.clone()]));
        topo.servers[0].tags = tags.clone();
        assert!(topo.has_readable_server_with_tags(Some(ReadMode::Secondary), &[tags]));

        topo.topology_type = TopologyType::ReplicaSetWithPrimary;
        topo.servers[1].server_type = ServerType::RsPrimary;
        assert!(topo.has_writable_server());
        assert!(topo.has_readable_server(None));

        let unknown = TopologyInfo::default();
        assert!(!unknown.has_writable_server());
        assert!(!unknown.has_readable_server(Some(ReadMode::Nearest)));
    }

    #[test]
    fn single_topology_with_a_data_bearing_server_is_writable() {
        let topo = TopologyInfo {
            topology_type: TopologyType::Single,
            servers: vec![server("a", ServerType::RsSecondary)],
            ..TopologyInfo::default()
        };
        assert!(topo.has_writable_server());
        assert!(topo.has_readable_server(None));
    }

    #[test]
    fn read_mode_names_round_trip_ignoring_case() {
        for m in ReadMode::ALL {
            assert_eq!(ReadMode::from_name(m.name()), Some(m));
            assert_eq!(ReadMode::from_name(&m.name().to_uppercase()), Some(m));
        }
        assert_eq!(ReadMode::from_name("primary_preferred"), None);
    }
}
