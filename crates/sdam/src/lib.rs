//! Server discovery and monitoring (SDAM) and server selection: descriptions, their update
//! rules, error handling decisions, the monitor state machine and read-preference selection.
//!
//! Everything here decides; the client acts. The core is sans-I/O:
//!
//! - [`ServerDescription::from_hello`] turns a hello reply into a description;
//! - [`Topology::apply`] runs the spec's update rules and queues the server and topology
//!   events ([`TopologyDescription::apply`] is the same without events). The rules are
//!   crate-private helpers named after the spec's pseudocode (`update_rs_from_primary`,
//!   `update_rs_without_primary`, `update_rs_with_primary_from_member`,
//!   `check_if_has_primary`, ...): a caller cannot run one rule alone and leave a description
//!   no sequence of hello replies could produce;
//! - [`Topology::handle_application_error`] returns an [`ErrorDecision`] (stale, mark Unknown,
//!   clear the pool, check now, cancel the monitor's check);
//! - [`TopologyDescription::select_server`] selects with a [`ReadPreference`], deprioritized
//!   servers, the latency window and the two-random-choices pick, randomness passed in;
//! - [`Monitor`] is the polling / streaming monitor state machine; with the `tokio` feature,
//!   [`driver`] runs it over a [`driver::MonitorTransport`] the client implements.
//!
//! - [`log`] writes the logging spec's `topology` and `serverSelection` messages through
//!   `tracing` (targets `mongo::topology`, `mongo::server_selection`).
//!
//! Wire versions: this driver supports wire versions [`MIN_SUPPORTED_WIRE_VERSION`] (8,
//! MongoDB 4.2) to [`MAX_SUPPORTED_WIRE_VERSION`] (25, MongoDB 8.0).

use std::time::Duration;

mod description;
mod error;
mod handling;
pub mod log;
mod monitor;
mod rtt;
mod selection;
mod topology;

#[cfg(feature = "tokio")]
pub mod driver;

pub use description::{
    MAX_REPORTED_MEMBERS, ServerDescription, TopologyVersion, server_type_from_hello,
};
pub use error::SdamError;
pub use handling::{
    AppErrorKind, ApplicationError, ErrorDecision, NOT_WRITABLE_PRIMARY_CODES, PoolClear,
    RECOVERING_CODES, SHUTDOWN_CODES, is_not_writable_primary, is_recovering, is_shutdown,
    is_state_change,
};
pub use mongo_events::sdam::ReadMode;
pub use monitor::{
    CheckError, CheckErrorKind, CheckOutcome, HelloRequest, Monitor, MonitorAction, MonitorConfig,
    ServerMonitoringMode,
};
pub use rtt::{RTT_ALPHA, RTT_MIN_SAMPLES, RttEstimator, next_average};
pub use selection::{
    IDLE_WRITE_PERIOD, Operation, ReadPreference, SMALLEST_MAX_STALENESS, TagSet, latency_window,
    pick_two_choices,
};
pub use topology::{
    MAX_SERVERS_FROM_REPORTS, SdamEvent, Topology, TopologyConfig, TopologyDescription,
    TopologyUpdate, shuffle_hosts,
};

/// The oldest wire version this driver speaks (MongoDB 4.2).
pub const MIN_SUPPORTED_WIRE_VERSION: i32 = 8;
/// The newest wire version this driver knows (MongoDB 8.0).
pub const MAX_SUPPORTED_WIRE_VERSION: i32 = 25;
/// `minHeartbeatFrequencyMS`: checks are never closer together than this.
pub const MIN_HEARTBEAT_FREQUENCY: Duration = Duration::from_millis(500);
/// The default `heartbeatFrequencyMS` for this (asynchronous) driver.
pub const DEFAULT_HEARTBEAT_FREQUENCY: Duration = Duration::from_secs(10);
/// The default `localThresholdMS`.
pub const DEFAULT_LOCAL_THRESHOLD: Duration = Duration::from_millis(15);
