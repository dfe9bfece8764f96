//! The store's version history for snapshot reads outside transactions (MongoDB 5.0+): a
//! read at `atClusterTime` sees the data as it was at that cluster time, as WiredTiger's
//! history store lets mongod do.
//!
//! Each write's cluster time (`Store::tick`) records a copy of the data as of that time. The
//! history is bounded as mongod's is: versions older than `minSnapshotHistoryWindowInSeconds`
//! (300 s) before the newest are dropped, and so are the oldest beyond [`MAX_VERSIONS`];
//! a store of more than [`MAX_DOCUMENTS`] documents keeps none (copying it at each write would
//! cost too much). A read older than the oldest version kept fails with SnapshotTooOld (239).
//!
//! Recording starts at the store's first snapshot read (which records the current data at the
//! current cluster time) and stops at a reset of the store, so that deployments that never
//! read a snapshot pay nothing. A simplification: mongod keeps history from its start, so an
//! `atClusterTime` given before any snapshot read was made can be served there but is
//! SnapshotTooOld here.

use std::collections::VecDeque;
use std::sync::Arc;

use bson::Timestamp;
use parking_lot::Mutex;

use crate::error::{CmdResult, CommandError, codes};
use crate::store::Dbs;

/// At most this many versions are kept.
pub(crate) const MAX_VERSIONS: usize = 1000;
/// A store holding more documents than this keeps no history.
pub(crate) const MAX_DOCUMENTS: usize = 10_000;
/// mongod's default `minSnapshotHistoryWindowInSeconds`.
const WINDOW_SECS: u32 = 300;

/// mongod's SnapshotTooOld.
const SNAPSHOT_TOO_OLD: i32 = 239;

/// The recorded versions, oldest first, each with the cluster time it is the data of.
#[derive(Debug, Default)]
pub(crate) struct History {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Whether writes record versions (after the first snapshot read).
    enabled: bool,
    versions: VecDeque<(Timestamp, Arc<Dbs>)>,
}

/// Which data a snapshot read at a cluster time reads.
#[derive(Debug, Clone)]
pub(crate) enum Snapshot {
    /// The current data: the time asked for is the current cluster time.
    Current,
    /// The data as it was then.
    Version(Arc<Dbs>),
}

fn key(ts: Timestamp) -> (u32, u32) {
    (ts.time, ts.increment)
}

fn document_count(dbs: &Dbs) -> usize {
    dbs.values()
        .flat_map(|colls| colls.values())
        .map(|c| c.docs.len())
        .sum()
}

impl History {
    /// Records `dbs` as the data at `at` (a write's new cluster time), when recording.
    ///
    /// Lock order, here and in [`enable`](Self::enable): the store's data before the
    /// history's state (a write holding the data records through
    /// [`record_locked`](Self::record_locked)).
    pub(crate) fn record(&self, at: Timestamp, dbs: &Mutex<Dbs>) {
        if !self.state.lock().enabled {
            return;
        }
        let data = dbs.lock();
        self.record_locked(at, &data);
    }

    /// As [`record`](Self::record), for a caller that holds the store's data.
    pub(crate) fn record_locked(&self, at: Timestamp, data: &Dbs) {
        let mut state = self.state.lock();
        if state.enabled {
            state.push(at, data);
        }
    }

    /// Starts recording (a snapshot read arrived) with the data at `now` when not recording
    /// yet.
    pub(crate) fn enable(&self, now: Timestamp, dbs: &Mutex<Dbs>) {
        if self.state.lock().enabled {
            return;
        }
        let data = dbs.lock();
        let mut state = self.state.lock();
        if !state.enabled {
            state.enabled = true;
            state.push(now, &data);
        }
    }

    /// Forgets every version and stops recording (the store was reset).
    pub(crate) fn clear(&self) {
        let mut state = self.state.lock();
        state.enabled = false;
        state.versions.clear();
    }

    /// The data a snapshot read at `at` sees, `now` being the current cluster time.
    ///
    /// # Errors
    /// `at` is later than `now` (InvalidOptions, as mongod), or older than the oldest version
    /// kept (SnapshotTooOld).
    pub(crate) fn at(&self, at: Timestamp, now: Timestamp) -> CmdResult<Snapshot> {
        if key(at) > key(now) {
            return Err(CommandError::new(
                codes::INVALID_OPTIONS,
                "InvalidOptions",
                format!(
                    "readConcern atClusterTime value must not be greater than the current clusterTime. Requested clusterTime: {at}; current clusterTime: {now}"
                ),
            ));
        }
        if key(at) == key(now) {
            // Every change of the data advances the cluster time: the current data is the
            // data at the current time.
            return Ok(Snapshot::Current);
        }
        let state = self.state.lock();
        match state
            .versions
            .iter()
            .rev()
            .find(|(ts, _)| key(*ts) <= key(at))
        {
            Some((_, data)) => Ok(Snapshot::Version(data.clone())),
            None => Err(CommandError::new(
                SNAPSHOT_TOO_OLD,
                "SnapshotTooOld",
                format!("Read timestamp {at} is older than the oldest available timestamp."),
            )),
        }
    }
}

impl State {
    fn push(&mut self, at: Timestamp, data: &Dbs) {
        if document_count(data) > MAX_DOCUMENTS {
            // Older versions would leave a gap up to the next one kept: drop them all.
            self.versions.clear();
            return;
        }
        if let Some((last, _)) = self.versions.back()
            && key(*last) >= key(at)
        {
            // A concurrent write's later time already recorded data that includes this one.
            return;
        }
        self.versions.push_back((at, Arc::new(data.clone())));
        while self.versions.len() > MAX_VERSIONS
            || self
                .versions
                .front()
                .is_some_and(|(ts, _)| ts.time.saturating_add(WINDOW_SECS) < at.time)
        {
            self.versions.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;
    use crate::store::Store;

    fn ts(time: u32, increment: u32) -> Timestamp {
        Timestamp { time, increment }
    }

    fn data(x: i32) -> Mutex<Dbs> {
        let store = Store::new();
        store
            .insert_many("db", "c", [doc! { "_id": 1, "x": x }])
            .unwrap();
        let mut dbs = Dbs::new();
        store.with_base(|d| dbs = d.clone());
        Mutex::new(dbs)
    }

    fn x_of(snapshot: &Snapshot) -> Option<i32> {
        match snapshot {
            Snapshot::Current => None,
            Snapshot::Version(dbs) => dbs["db"]["c"].docs[0].get_i32("x").ok(),
        }
    }

    #[test]
    fn reads_see_the_version_of_their_time() {
        let h = History::default();
        h.record(ts(10, 1), &data(1));
        assert!(
            matches!(h.at(ts(10, 1), ts(10, 2)), Err(e) if e.code == SNAPSHOT_TOO_OLD),
            "nothing recorded before the first snapshot read"
        );
        h.enable(ts(10, 1), &data(1));
        h.record(ts(10, 2), &data(2));
        h.record(ts(11, 1), &data(3));
        assert_eq!(x_of(&h.at(ts(10, 1), ts(11, 1)).unwrap()), Some(1));
        assert_eq!(x_of(&h.at(ts(10, 5), ts(11, 1)).unwrap()), Some(2));
        assert!(matches!(h.at(ts(11, 1), ts(11, 1)), Ok(Snapshot::Current)));
        let too_old = h.at(ts(9, 9), ts(11, 1)).unwrap_err();
        assert_eq!(too_old.code, SNAPSHOT_TOO_OLD);
        let future = h.at(ts(12, 1), ts(11, 1)).unwrap_err();
        assert_eq!(future.code, codes::INVALID_OPTIONS);
        h.clear();
        assert_eq!(
            h.at(ts(10, 2), ts(11, 1)).unwrap_err().code,
            SNAPSHOT_TOO_OLD
        );
    }

    #[test]
    fn history_is_bounded_in_time_and_count() {
        let h = History::default();
        h.enable(ts(100, 1), &data(1));
        h.record(ts(500, 1), &data(2));
        assert_eq!(
            h.at(ts(100, 1), ts(500, 1)).unwrap_err().code,
            SNAPSHOT_TOO_OLD,
            "older than the 300 s window"
        );
        for i in 0..u32::try_from(MAX_VERSIONS).unwrap() + 5 {
            h.record(ts(600, i + 1), &data(3));
        }
        assert_eq!(h.state.lock().versions.len(), MAX_VERSIONS);
    }
}
