//! The client's server sessions: the `lsid`s of the implicit sessions that retryable writes
//! carry, kept in a LIFO pool and ended with `endSessions` at shutdown, and the transaction
//! numbers they count with.
#![allow(
    clippy::disallowed_methods,
    reason = "a new session id is a random (version 4) UUID"
)]

use std::sync::atomic::{AtomicI64, Ordering};

use bson::spec::BinarySubtype;
use bson::{Binary, Document, doc};
use parking_lot::Mutex;
use rand::Rng;

/// The most idle session ids kept for reuse.
const MAX_POOLED: usize = 100;

/// Idle server sessions, most recently used first out.
#[derive(Debug, Default)]
pub(crate) struct ServerSessionPool {
    idle: Mutex<Vec<Document>>,
    next_txn_number: AtomicI64,
}

impl ServerSessionPool {
    /// A session id: the most recently returned one, or a new one.
    pub(crate) fn take(&self) -> Document {
        if let Some(id) = self.idle.lock().pop() {
            return id;
        }
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

    /// Gives a session id back for reuse; one used by a command that failed with a network
    /// error is dropped instead (the server may still consider it in use).
    pub(crate) fn give_back(&self, id: Document, network_error: bool) {
        if network_error {
            return;
        }
        let mut idle = self.idle.lock();
        if idle.len() < MAX_POOLED {
            idle.push(id);
        }
    }

    /// The next transaction number (each retryable write, or batch of one, gets its own).
    pub(crate) fn next_txn_number(&self) -> i64 {
        self.next_txn_number.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Every idle session id, for `endSessions`.
    pub(crate) fn drain(&self) -> Vec<Document> {
        std::mem::take(&mut *self.idle.lock())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_reused_last_in_first_out_and_dropped_after_network_errors() {
        let pool = ServerSessionPool::default();
        let a = pool.take();
        let b = pool.take();
        assert_ne!(a, b);
        pool.give_back(a.clone(), false);
        pool.give_back(b.clone(), false);
        assert_eq!(pool.take(), b);
        pool.give_back(b.clone(), true);
        assert_eq!(pool.take(), a);
        assert_eq!(pool.drain(), Vec::<Document>::new());
        let n = pool.next_txn_number();
        assert_eq!(pool.next_txn_number(), n + 1);
        let id = pool.take();
        let Some(bson::Bson::Binary(uuid)) = id.get("id") else {
            panic!("{id}")
        };
        assert_eq!(uuid.subtype, BinarySubtype::Uuid);
        let bytes = &uuid.bytes;
        assert_eq!(bytes.len(), 16);
        assert_eq!(bytes[6] & 0xf0, 0x40, "version 4");
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
