//! Deployment state shared by the members of a replica set (or owned by a standalone or a
//! mongos router).

use std::time::{Duration, Instant};

use bson::oid::ObjectId;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::error::{CmdResult, CommandError};

/// The replica-set part of the state.
#[derive(Debug, Clone)]
pub(crate) struct RsState {
    pub(crate) name: String,
    pub(crate) hosts: Vec<String>,
    pub(crate) primary: Option<usize>,
    pub(crate) set_version: i32,
    pub(crate) term: i64,
    pub(crate) running: Vec<bool>,
    /// Until when each member may not become primary (`replSetFreeze`, or the
    /// `stepDownSecs` of a `replSetStepDown` it ran).
    pub(crate) frozen_until: Vec<Option<Instant>>,
}

impl RsState {
    /// The electionId of the current term: an ObjectId that grows with the term.
    pub(crate) fn election_id(&self) -> ObjectId {
        let mut bytes = [0u8; 12];
        bytes[..4].copy_from_slice(&0x7fff_ffff_u32.to_be_bytes());
        bytes[4..].copy_from_slice(&self.term.to_be_bytes());
        ObjectId::from_bytes(bytes)
    }
}

/// Roles and the topology counter. Every change bumps the counter, which wakes awaitable hellos.
#[derive(Debug)]
pub(crate) struct Topology {
    rs: Option<Mutex<RsState>>,
    mongos: bool,
    counter: watch::Sender<i64>,
}

/// A member's view of its role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Standalone,
    Primary,
    Secondary,
    /// A mongos router (sharded cluster or load balanced).
    Mongos,
}

impl Topology {
    pub(crate) fn standalone() -> Self {
        Self {
            rs: None,
            mongos: false,
            counter: watch::channel(0).0,
        }
    }

    /// A mongos router: its own process, so its own topology counter.
    pub(crate) fn mongos() -> Self {
        Self {
            rs: None,
            mongos: true,
            counter: watch::channel(0).0,
        }
    }

    pub(crate) fn replica_set(name: &str, hosts: Vec<String>) -> Self {
        let n = hosts.len();
        Self {
            rs: Some(Mutex::new(RsState {
                name: name.to_string(),
                hosts,
                primary: Some(0),
                set_version: 1,
                term: 1,
                running: vec![true; n],
                frozen_until: vec![None; n],
            })),
            mongos: false,
            counter: watch::channel(0).0,
        }
    }

    /// The current topology counter.
    pub(crate) fn counter(&self) -> i64 {
        *self.counter.borrow()
    }

    /// A receiver that sees counter changes.
    pub(crate) fn subscribe(&self) -> watch::Receiver<i64> {
        self.counter.subscribe()
    }

    fn bump(&self) {
        self.counter.send_modify(|c| *c += 1);
    }

    /// A snapshot of the replica-set state (None for a standalone).
    pub(crate) fn rs(&self) -> Option<RsState> {
        self.rs.as_ref().map(|m| m.lock().clone())
    }

    pub(crate) fn role(&self, member: usize) -> Role {
        match &self.rs {
            None if self.mongos => Role::Mongos,
            None => Role::Standalone,
            Some(m) => {
                if m.lock().primary == Some(member) {
                    Role::Primary
                } else {
                    Role::Secondary
                }
            }
        }
    }

    /// Makes `member` primary in a new term.
    pub(crate) fn elect(&self, member: usize) -> CmdResult<()> {
        let Some(m) = &self.rs else {
            return Err(not_rs());
        };
        {
            let mut st = m.lock();
            if member >= st.hosts.len() {
                return Err(CommandError::bad_value(format!("no member {member}")));
            }
            st.primary = Some(member);
            st.term += 1;
        }
        self.bump();
        Ok(())
    }

    /// Steps `member` down if it is primary and hands the role to the next running member
    /// that is not frozen; the old primary may not be elected again for `freeze`.
    /// Returns the new primary.
    pub(crate) fn step_down(&self, member: usize, freeze: Duration) -> CmdResult<usize> {
        let Some(m) = &self.rs else {
            return Err(not_rs());
        };
        let next = {
            let mut st = m.lock();
            if st.primary != Some(member) {
                return Err(CommandError::new(
                    crate::error::codes::NOT_WRITABLE_PRIMARY,
                    "NotWritablePrimary",
                    "not primary so can't step down",
                ));
            }
            let n = st.hosts.len();
            let now = Instant::now();
            let next = (1..n)
                .map(|k| (member + k) % n)
                .find(|&j| {
                    st.running.get(j).copied().unwrap_or(false)
                        && st
                            .frozen_until
                            .get(j)
                            .copied()
                            .flatten()
                            .is_none_or(|t| t <= now)
                })
                .ok_or_else(|| {
                    CommandError::new(
                        262,
                        "ExceededTimeLimit",
                        "No electable secondaries caught up as of now",
                    )
                })?;
            st.primary = Some(next);
            st.term += 1;
            if let Some(slot) = st.frozen_until.get_mut(member) {
                *slot = now.checked_add(freeze);
            }
            next
        };
        self.bump();
        Ok(next)
    }

    /// `replSetFreeze`: `member` (a secondary) may not become primary for `secs` seconds;
    /// `0` unfreezes it.
    pub(crate) fn freeze(&self, member: usize, secs: u64) -> CmdResult<()> {
        let Some(m) = &self.rs else {
            return Err(not_rs());
        };
        let mut st = m.lock();
        if st.primary == Some(member) {
            return Err(CommandError::new(
                95,
                "NotSecondary",
                "cannot freeze node when primary or running for election. state: Primary",
            ));
        }
        if let Some(slot) = st.frozen_until.get_mut(member) {
            *slot = if secs == 0 {
                None
            } else {
                Instant::now().checked_add(Duration::from_secs(secs))
            };
        }
        Ok(())
    }

    /// Lifts every freeze (between tests).
    pub(crate) fn unfreeze_all(&self) {
        if let Some(m) = &self.rs {
            m.lock().frozen_until.iter_mut().for_each(|f| *f = None);
        }
    }

    /// Marks a member running or stopped (bumps the counter so others re-announce).
    pub(crate) fn set_running(&self, member: usize, running: bool) {
        if let Some(m) = &self.rs {
            let mut st = m.lock();
            if let Some(slot) = st.running.get_mut(member) {
                *slot = running;
            }
            // A freeze lives in the process's memory: a restart forgets it.
            if let Some(slot) = st.frozen_until.get_mut(member) {
                *slot = None;
            }
            drop(st);
            self.bump();
        }
    }

    /// Forces a topology change notification (e.g. after a restart).
    pub(crate) fn touch(&self) {
        self.bump();
    }
}

fn not_rs() -> CommandError {
    CommandError::new(76, "NoReplicationEnabled", "not running with --replSet")
}
