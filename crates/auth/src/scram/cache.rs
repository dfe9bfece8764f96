//! The salted-password cache the auth spec requires ("Caching credentials in SCRAM"): keyed by
//! mechanism, password, salt and iteration count, so that a pool of many connections runs
//! PBKDF2 once.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use sha2::{Digest, Sha256};

use super::primitives::{self, ScramHash};

/// How many distinct (password, salt, iterations, mechanism) entries a cache keeps before it
/// starts over. A credential normally needs one or two.
const MAX_ENTRIES: usize = 64;

#[derive(Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    hash: ScramHash,
    /// SHA-256 of the password input to Hi: the plaintext itself is never kept here.
    password_digest: [u8; 32],
    salt: Vec<u8>,
    iterations: u32,
}

type Slot = Arc<OnceLock<Arc<[u8]>>>;

/// A thread-safe, cheaply cloneable cache of SCRAM salted passwords. Clones share entries.
///
/// Entries are keyed by the mechanism's hash, a SHA-256 digest of the password input, the
/// salt and the iteration count; the value is the salted password. Concurrent lookups of the
/// same key run PBKDF2 once (the others wait for it). `Debug` shows only the entry count.
#[derive(Clone, Default)]
pub struct ScramCache {
    inner: Arc<Mutex<HashMap<CacheKey, Slot>>>,
}

impl ScramCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// `Hi(password, salt, iterations)`, computed at most once per key.
    pub fn salted_password(
        &self,
        hash: ScramHash,
        password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> Arc<[u8]> {
        let key = CacheKey {
            hash,
            password_digest: Sha256::digest(password).into(),
            salt: salt.to_vec(),
            iterations,
        };
        let slot = {
            let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            if map.len() >= MAX_ENTRIES && !map.contains_key(&key) {
                map.clear();
            }
            Arc::clone(map.entry(key).or_default())
        };
        Arc::clone(slot.get_or_init(|| primitives::hi(hash, password, salt, iterations).into()))
    }

    /// The number of cached entries.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every entry.
    pub fn clear(&self) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Whether `self` and `other` share the same entries (one is a clone of the other).
    pub fn ptr_eq(&self, other: &ScramCache) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl fmt::Debug for ScramCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCache")
            .field("entries", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caches_by_full_key() {
        let cache = ScramCache::new();
        let a = cache.salted_password(ScramHash::Sha256, b"pw", b"salt", 4096);
        assert_eq!(
            &*a,
            &*primitives::hi(ScramHash::Sha256, b"pw", b"salt", 4096)
        );
        let again = cache.salted_password(ScramHash::Sha256, b"pw", b"salt", 4096);
        assert!(Arc::ptr_eq(&a, &again), "second lookup must hit the cache");
        assert_eq!(cache.len(), 1);
        cache.salted_password(ScramHash::Sha1, b"pw", b"salt", 4096);
        cache.salted_password(ScramHash::Sha256, b"pw2", b"salt", 4096);
        cache.salted_password(ScramHash::Sha256, b"pw", b"salt2", 4096);
        cache.salted_password(ScramHash::Sha256, b"pw", b"salt", 4097);
        assert_eq!(cache.len(), 5);
        assert!(!format!("{cache:?}").contains("pw"));
        cache.clear();
        assert!(cache.is_empty());
    }

    #[test]
    fn bounded() {
        let cache = ScramCache::new();
        for i in 0..=u32::try_from(MAX_ENTRIES).unwrap() {
            cache.salted_password(ScramHash::Sha1, b"pw", &i.to_be_bytes(), 1);
        }
        assert!(cache.len() <= MAX_ENTRIES);
    }

    #[test]
    fn concurrent_lookups_share_one_derivation() {
        let cache = ScramCache::new();
        let results: Vec<Arc<[u8]>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let c = cache.clone();
                    s.spawn(move || c.salted_password(ScramHash::Sha256, b"pw", b"s", 4096))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(results.windows(2).all(|w| Arc::ptr_eq(&w[0], &w[1])));
    }
}
