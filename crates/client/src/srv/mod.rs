//! `mongodb+srv`: the initial DNS seedlist discovery spec and the polling SRV records for
//! mongos discovery spec.
//!
//! The rules are sans-I/O (`rules.rs`: the SRV name and its domain, target checks, answer
//! bounds, the TXT record and the merge of its options, the `srvMaxHosts` choice; the
//! host-list update of a rescan is `mongo_sdam`'s `TopologyDescription::apply_srv_hosts`).
//! The I/O is behind the `tokio` feature: `dns.rs` asks the questions (hickory-resolver, or
//! a stub in tests), `discover.rs` runs the initial discovery when a client is built, and
//! `poller.rs` is the task that rescans while the topology is sharded (or still unknown).

// Without `tokio` nothing runs discovery; the rules stay compiled (and tested) all the same.
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
pub(crate) mod rules;
#[cfg(test)]
mod rules_tests;
#[cfg(all(test, feature = "tokio"))]
mod tests;

#[cfg(feature = "tokio")]
pub(crate) mod discover;
#[cfg(feature = "tokio")]
pub(crate) mod dns;
#[cfg(feature = "tokio")]
pub(crate) mod poller;

pub use rules::{MAX_SRV_RECORDS, MAX_TXT_LEN, MIN_RESCAN_INTERVAL, SrvRecord};

/// Why `mongodb+srv` discovery failed. Messages name the DNS name asked and the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SrvError {
    /// The SRV host is not a usable DNS name.
    #[error("'{name}' is not a valid DNS name for mongodb+srv")]
    InvalidName {
        /// The name as given.
        name: String,
    },
    /// The DNS question could not be answered (server failure, timeout, no such domain).
    #[error("the {kind} lookup of '{name}' failed: {reason}")]
    Lookup {
        /// `SRV` or `TXT`.
        kind: &'static str,
        /// The name asked.
        name: String,
        /// What the resolver said.
        reason: String,
    },
    /// The SRV answer held no record.
    #[error("no SRV records found for '{name}': the URI could not be used to find hosts")]
    NoRecords {
        /// The SRV host.
        name: String,
    },
    /// A record's target is not in the SRV host's domain.
    #[error(
        "the SRV record target '{target}' is not in the domain of '{srv_host}' (a host \
         name ending in its parent domain, with at least one more label, is required)"
    )]
    DomainMismatch {
        /// The SRV host.
        srv_host: String,
        /// The target as received.
        target: String,
    },
    /// The answer held more SRV records than [`MAX_SRV_RECORDS`].
    #[error("the SRV answer for '{name}' holds {count} records, more than the {limit} accepted")]
    TooManyRecords {
        /// The SRV host.
        name: String,
        /// Records received.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// More than one TXT record.
    #[error("'{name}' has {count} TXT records; at most one is allowed")]
    MultipleTxtRecords {
        /// The SRV host.
        name: String,
        /// Records received.
        count: usize,
    },
    /// The TXT record is not text the client can read.
    #[error("invalid TXT record: {reason}")]
    InvalidTxt {
        /// What is wrong.
        reason: String,
    },
}
