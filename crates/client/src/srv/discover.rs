//! Initial DNS seedlist discovery, run when a client is built: the SRV and TXT questions,
//! the checks of `rules.rs`, the TXT options merged under the connection string's, and the
//! `srvMaxHosts` choice. Also decides which resolver the client's connections use and
//! whether the SRV records are polled.
#![allow(
    clippy::disallowed_methods,
    reason = "an I/O module: it draws the random srvMaxHosts choice"
)]

use std::time::Duration;

use mongo_events::ServerAddress;
use rand::Rng;

use super::SrvError;
use super::dns::{Dns, LookupFailure};
use super::rules::{self, MergeError, SrvName};
use crate::error::{Error, Result};
use crate::options::ClientOptions;

/// The default SRV service name.
pub(crate) const DEFAULT_SERVICE_NAME: &str = "mongodb";

/// The options and seeds a client opens with.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The options, with a TXT record's options merged in.
    pub(crate) options: ClientOptions,
    /// The seed list: the hosts of the options, or the SRV records' hosts.
    pub(crate) seeds: Vec<ServerAddress>,
    /// The resolver for host names, when the client has its own (explicit name servers, or a
    /// test's stub); `None` leaves them to the operating system.
    pub(crate) host_dns: Option<Dns>,
    /// The SRV rescans to run, for a `mongodb+srv` client that is not load balanced.
    pub(crate) poll: Option<PollPlan>,
}

/// What the SRV poller needs.
#[derive(Debug, Clone)]
pub(crate) struct PollPlan {
    pub(crate) dns: Dns,
    pub(crate) name: SrvName,
    pub(crate) query: String,
    pub(crate) max_hosts: u32,
    pub(crate) first_interval: Duration,
}

/// A number in `0..n` from the thread's generator (`0` when `n` is 0).
pub(crate) fn random_below(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        rand::rng().random_range(0..n)
    }
}

/// Validates `options` and, for `mongodb+srv`, discovers the seeds. `stub` replaces every DNS
/// question (tests).
pub(crate) async fn prepare(options: ClientOptions, stub: Option<Dns>) -> Result<Prepared> {
    options.validate()?;
    options.check_supported()?;
    let host_dns = match stub.clone() {
        Some(d) => Some(d),
        None if !options.resolver.is_system() => Some(Dns::from_config(&options.resolver)?),
        None => None,
    };
    if !options.srv {
        return Ok(Prepared {
            seeds: options.hosts.clone(),
            options,
            host_dns,
            poll: None,
        });
    }
    let dns = match &host_dns {
        Some(d) => d.clone(),
        None => Dns::from_config(&options.resolver)?,
    };
    let host = options
        .hosts
        .first()
        .map(|h| h.host().into_owned())
        .unwrap_or_default();
    let name = SrvName::new(&host)?;
    let service = options
        .srv_service_name
        .as_deref()
        .unwrap_or(DEFAULT_SERVICE_NAME);
    let query = name.query_name(service);
    let txt_name = name.txt_name();
    let (srv, txt) = tokio::join!(dns.srv(&query), dns.txt(&txt_name));
    let records = srv.map_err(|f| match f {
        LookupFailure::NoRecords => SrvError::NoRecords {
            name: query.trim_end_matches('.').to_owned(),
        },
        LookupFailure::Failed(reason) => SrvError::Lookup {
            kind: "SRV",
            name: query.trim_end_matches('.').to_owned(),
            reason,
        },
    })?;
    let all = name.seeds(&records)?;
    let txt_records = match txt {
        Ok(r) => r,
        Err(LookupFailure::NoRecords) => Vec::new(),
        Err(LookupFailure::Failed(reason)) => {
            return Err(SrvError::Lookup {
                kind: "TXT",
                name: name.host().to_owned(),
                reason,
            }
            .into());
        }
    };
    let txt = rules::txt_options(name.host(), &txt_records)?;
    let merged = rules::merge_txt(&options, txt.as_deref(), all.len()).map_err(|e| match e {
        MergeError::Txt(e) | MergeError::Options(e) => Error::from(e),
    })?;
    let max_hosts = merged.srv_max_hosts.unwrap_or(0);
    let seeds = rules::choose_seeds(all, max_hosts, &mut random_below);
    let poll = (merged.load_balanced != Some(true)).then(|| PollPlan {
        dns,
        name,
        query,
        max_hosts,
        first_interval: rules::rescan_interval(&records),
    });
    Ok(Prepared {
        options: merged,
        seeds,
        host_dns,
        poll,
    })
}
