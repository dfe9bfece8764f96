//! The SRV polling task (polling SRV records for mongos discovery spec): after each interval
//! it asks the SRV question again and gives the verified hosts to the topology, while the
//! topology is Sharded or Unknown; it ends when the topology becomes anything else or the
//! client is shut down or dropped. What an answer means is decided by
//! `rules::plan_rescan`; this task only waits, asks and applies.
#![allow(
    clippy::disallowed_methods,
    reason = "an I/O module: the polling task sleeps, spawns and draws the srvMaxHosts choice"
)]

use std::time::Duration;

use tracing::Instrument;

use super::discover::{PollPlan, random_below};
use super::rules;
use crate::topology::{Topology, WeakTopology};

/// Starts polling for `topology` (in the client's span).
pub(crate) fn spawn(topology: &Topology, plan: PollPlan, span: tracing::Span) {
    let weak = topology.downgrade();
    let heartbeat = topology.heartbeat_frequency();
    tokio::spawn(run(weak, plan, heartbeat).instrument(span));
}

async fn run(topology: WeakTopology, plan: PollPlan, heartbeat: Duration) {
    let mut interval = plan.first_interval;
    loop {
        tokio::time::sleep(interval).await;
        match topology.upgrade() {
            Some(t) if t.srv_polling_applies() => {}
            _ => return,
        }
        let answer = plan.dns.srv(&plan.query).await;
        if let Err(e) = &answer {
            tracing::warn!(target: "mongo::topology", "SRV rescan of {}: lookup failed: {e}; the topology is kept", plan.name.host());
        }
        let (hosts, next) = rules::plan_rescan(&plan.name, answer.as_deref().ok(), heartbeat);
        interval = next;
        let Some(t) = topology.upgrade() else {
            return;
        };
        if let Some(hosts) = hosts {
            if !t.srv_polling_applies() {
                return;
            }
            t.apply_srv_hosts(&hosts, plan.max_hosts, &mut random_below);
        }
    }
}
