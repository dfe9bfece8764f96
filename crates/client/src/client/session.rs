//! The client's server sessions (sessions spec, "Server Session Pool"): the implicit session
//! every operation runs in when its server supports sessions, a cursor's session kept for its
//! getMores and killCursors, the LIFO pool that reuses them (discarding the dirty ones and
//! those about to expire), `endSessions` at shutdown, and the transaction numbers of
//! retryable writes (each server session counts its own). Time comes in as a parameter: the
//! pool never reads the clock.
#![allow(
    clippy::disallowed_methods,
    reason = "a new session id is a random (version 4) UUID"
)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bson::spec::BinarySubtype;
use bson::{Binary, Document, doc};
use parking_lot::Mutex;
use rand::Rng;

/// A server session: its id and when it was last sent to a server.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ServerSession {
    /// The `lsid` document, `{id: UUID}`.
    pub(crate) id: Document,
    /// The last time the id was sent (or the session created).
    pub(crate) last_use: Instant,
    /// A network error happened while it was in use: it is not reused.
    pub(crate) dirty: bool,
    /// The last transaction number used in it (0: none yet).
    pub(crate) txn_number: i64,
}

impl ServerSession {
    /// A new session with a fresh id, created (and so last used) `now`.
    pub(crate) fn new(now: Instant) -> ServerSession {
        ServerSession {
            id: new_session_id(),
            last_use: now,
            dirty: false,
            txn_number: 0,
        }
    }

    /// The next transaction number of this session (each retryable write, or batch of one,
    /// gets its own; the server wants them increasing per session).
    pub(crate) fn next_txn_number(&mut self) -> i64 {
        self.txn_number = self.txn_number.saturating_add(1);
        self.txn_number
    }

    /// Whether the server will consider it stale within a minute (`timeout`: the
    /// deployment's logicalSessionTimeoutMinutes; `None` never expires, as behind a load
    /// balancer).
    fn about_to_expire(&self, now: Instant, timeout: Option<Duration>) -> bool {
        let Some(timeout) = timeout else {
            return false;
        };
        let left = timeout.saturating_sub(now.saturating_duration_since(self.last_use));
        left < Duration::from_secs(60)
    }
}

/// Idle server sessions: the front holds the most recently returned (reused first), the back
/// the least recently used (discarded first when about to expire).
#[derive(Debug, Default)]
pub(crate) struct ServerSessionPool {
    idle: Mutex<VecDeque<ServerSession>>,
}

impl ServerSessionPool {
    /// A session for an operation: the most recently returned one that has at least a minute
    /// left, or a new one.
    pub(crate) fn take(&self, now: Instant, timeout: Option<Duration>) -> ServerSession {
        {
            let mut idle = self.idle.lock();
            while let Some(s) = idle.pop_front() {
                if !s.about_to_expire(now, timeout) {
                    return s;
                }
            }
        }
        ServerSession::new(now)
    }

    /// Gives a session back: first the sessions at the back that are about to expire are
    /// discarded, then the session itself is, when dirty or about to expire; otherwise it goes
    /// to the front.
    pub(crate) fn give_back(
        &self,
        session: ServerSession,
        now: Instant,
        timeout: Option<Duration>,
    ) {
        let mut idle = self.idle.lock();
        while idle.back().is_some_and(|s| s.about_to_expire(now, timeout)) {
            idle.pop_back();
        }
        if !session.dirty && !session.about_to_expire(now, timeout) {
            idle.push_front(session);
        }
    }

    /// Every idle session id, for `endSessions`.
    pub(crate) fn drain(&self) -> Vec<Document> {
        std::mem::take(&mut *self.idle.lock())
            .into_iter()
            .map(|s| s.id)
            .collect()
    }
}

/// A new session id: `{id: UUID v4}`, generated locally.
fn new_session_id() -> Document {
    let mut bytes = [0u8; 16];
    rand::rng().fill(&mut bytes);
    // RFC 4122 version 4 bits.
    if let Some(b) = bytes.get_mut(6) {
        *b = (*b & 0x0f) | 0x40;
    }
    if let Some(b) = bytes.get_mut(8) {
        *b = (*b & 0x3f) | 0x80;
    }
    doc! { "id": Binary { subtype: BinarySubtype::Uuid, bytes: bytes.to_vec() } }
}

#[cfg(test)]
mod tests {
    use super::*;

    const THIRTY_MINUTES: Option<Duration> = Some(Duration::from_secs(30 * 60));

    #[test]
    fn sessions_are_reused_last_in_first_out_and_dirty_ones_are_dropped() {
        let pool = ServerSessionPool::default();
        let now = Instant::now();
        let a = pool.take(now, THIRTY_MINUTES);
        let b = pool.take(now, THIRTY_MINUTES);
        assert_ne!(a.id, b.id);
        pool.give_back(a.clone(), now, THIRTY_MINUTES);
        pool.give_back(b.clone(), now, THIRTY_MINUTES);
        let again = pool.take(now, THIRTY_MINUTES);
        assert_eq!(again.id, b.id);
        pool.give_back(
            ServerSession {
                dirty: true,
                ..again
            },
            now,
            THIRTY_MINUTES,
        );
        assert_eq!(pool.take(now, THIRTY_MINUTES).id, a.id);
        assert_eq!(pool.drain(), Vec::<Document>::new());
        let mut s = pool.take(now, THIRTY_MINUTES);
        let n = s.next_txn_number();
        assert_eq!(s.next_txn_number(), n + 1);
        pool.give_back(s, now, THIRTY_MINUTES);
        // A reused session goes on counting where it stopped.
        assert_eq!(pool.take(now, THIRTY_MINUTES).next_txn_number(), n + 2);
        let id = pool.take(now, THIRTY_MINUTES).id;
        let Some(bson::Bson::Binary(uuid)) = id.get("id") else {
            panic!("{id}")
        };
        assert_eq!(uuid.subtype, BinarySubtype::Uuid);
        let bytes = &uuid.bytes;
        assert_eq!(bytes.len(), 16);
        assert_eq!(bytes[6] & 0xf0, 0x40, "version 4");
    }

    #[test]
    fn sessions_with_less_than_a_minute_left_are_discarded() {
        let pool = ServerSessionPool::default();
        let start = Instant::now();
        let old = pool.take(start, THIRTY_MINUTES);
        let later = start + Duration::from_secs(29 * 60 + 1);
        // Returned with less than a minute left: discarded.
        pool.give_back(old.clone(), later, THIRTY_MINUTES);
        assert_eq!(pool.drain().len(), 0);
        // Pooled while fresh, then found about to expire on the next take: a new one.
        pool.give_back(old.clone(), start, THIRTY_MINUTES);
        let taken = pool.take(later, THIRTY_MINUTES);
        assert_ne!(taken.id, old.id);
        assert_eq!(taken.last_use, later);
        // Returning a session prunes the expiring ones at the back first.
        pool.give_back(old.clone(), start, THIRTY_MINUTES);
        pool.give_back(taken.clone(), later, THIRTY_MINUTES);
        assert_eq!(pool.drain(), vec![taken.id.clone()]);
        // Without a timeout (load-balanced mode) nothing expires.
        pool.give_back(old.clone(), later + Duration::from_secs(3600), None);
        assert_eq!(
            pool.take(later + Duration::from_secs(7200), None).id,
            old.id
        );
    }
}

/// The highest `$clusterTime` the client has seen in a reply, sent with every command
/// (the sessions spec's cluster time gossip).
#[derive(Debug, Default)]
pub(crate) struct ClusterClock(Mutex<Option<Document>>);

impl ClusterClock {
    /// Takes the reply's `$clusterTime` when it is newer than the one kept.
    pub(crate) fn observe(&self, reply: &Document) {
        let Ok(new) = reply.get_document("$clusterTime") else {
            return;
        };
        let Ok(new_ts) = new.get_timestamp("clusterTime") else {
            return;
        };
        let mut kept = self.0.lock();
        let newer = match kept
            .as_ref()
            .and_then(|d| d.get_timestamp("clusterTime").ok())
        {
            Some(old) => (new_ts.time, new_ts.increment) > (old.time, old.increment),
            None => true,
        };
        if newer {
            *kept = Some(new.clone());
        }
    }

    /// The highest cluster time seen.
    pub(crate) fn get(&self) -> Option<Document> {
        self.0.lock().clone()
    }
}

#[cfg(test)]
mod cluster_clock_tests {
    use super::ClusterClock;
    use bson::{Timestamp, doc};

    #[test]
    fn keeps_the_highest_cluster_time() {
        let c = ClusterClock::default();
        assert!(c.get().is_none());
        let t = |time, increment| doc! {"$clusterTime": {"clusterTime": Timestamp { time, increment }, "signature": {}}};
        c.observe(&t(5, 1));
        c.observe(&t(4, 9));
        assert_eq!(
            c.get().unwrap().get_timestamp("clusterTime").unwrap(),
            Timestamp {
                time: 5,
                increment: 1
            }
        );
        c.observe(&t(5, 2));
        assert_eq!(
            c.get()
                .unwrap()
                .get_timestamp("clusterTime")
                .unwrap()
                .increment,
            2
        );
        c.observe(&doc! {"ok": 1});
        assert_eq!(
            c.get()
                .unwrap()
                .get_timestamp("clusterTime")
                .unwrap()
                .increment,
            2
        );
    }
}
