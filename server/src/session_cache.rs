//! The stateful session cache with its occupancy in sight: rustls's own
//! `ServerSessionMemoryCache`, unchanged, behind a decorator that mirrors how many entries it
//! holds and counts what goes in, what is evicted and what lookups find.
//!
//! The cache is stock rustls so its cost is what a rustls user pays; the decorator only makes
//! that cost explainable. rustls's cache is a map plus a queue of keys in insertion order:
//! inserting into a full cache evicts the oldest key, and removing a key (a TLS 1.3 stateful
//! ticket is single-use, so every resumption removes one) finds it in that queue by a linear
//! scan. A server that sends two TLS 1.3 tickets per full handshake while clients use one
//! fills the cache with unused tickets, and from then on every resumption scans a full queue;
//! [`CacheCounts::entries`] next to [`CacheCounts::capacity`] shows it.
//!
//! The mirror is exact: each operation on the inner cache and its mirror happen under one lock,
//! and it follows the inner cache's rules (a new key grows it, a full cache evicts one, a
//! removal shrinks it). Keys are random 32-byte session ids rustls makes, so a `put` never
//! replaces an existing key in practice; should it, `entries` would count it twice and say so
//! by exceeding what lookups can find, never by hiding an eviction.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use rustls::server::{ServerSessionMemoryCache, StoresServerSessions};
use serde::{Deserialize, Serialize};

/// What the cache holds and has done, at one instant. Its JSON form is the `session_cache`
/// object of `/metrics.json`: every field required, no other allowed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheCounts {
    /// The most entries it keeps (`--session-cache`).
    pub capacity: u64,
    /// Entries held now.
    pub entries: u64,
    /// Sessions stored (TLS 1.2 session ids and TLS 1.3 stateful tickets).
    pub stored: u64,
    /// Entries dropped, unused, to make room for a new one.
    pub evicted: u64,
    /// Lookups that found their session (TLS 1.2 `get`, TLS 1.3 `take`).
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
}

/// rustls's memory cache and the mirror of its occupancy; shared by every worker through the
/// one `ServerConfig`, and by the server's [`crate::Stats`] through [`SessionCache::gauge`].
pub struct SessionCache {
    inner: Arc<ServerSessionMemoryCache>,
    counts: Arc<Gauge>,
}

/// The readable side of a [`SessionCache`].
#[derive(Default)]
pub struct Gauge(Mutex<CacheCounts>);

impl Gauge {
    /// The counts now.
    pub fn counts(&self) -> CacheCounts {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Gauge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.counts().fmt(f)
    }
}

impl SessionCache {
    /// A cache of at most `capacity` sessions (at least one, as rustls requires).
    pub fn new(capacity: usize) -> SessionCache {
        let capacity = capacity.max(1);
        SessionCache {
            inner: ServerSessionMemoryCache::new(capacity),
            counts: Arc::new(Gauge(Mutex::new(CacheCounts {
                capacity: capacity as u64,
                ..CacheCounts::default()
            }))),
        }
    }

    /// The occupancy and counts, readable while the cache serves.
    pub fn gauge(&self) -> Arc<Gauge> {
        Arc::clone(&self.counts)
    }

    /// Runs `op` on the inner cache and `mirror` on the counts under one lock, so the mirror
    /// sees the operations in the order the cache does.
    fn with<T>(
        &self,
        op: impl FnOnce(&ServerSessionMemoryCache) -> T,
        mirror: impl FnOnce(&mut CacheCounts, &T),
    ) -> T {
        let mut counts = self.counts.0.lock().unwrap_or_else(PoisonError::into_inner);
        let out = op(&self.inner);
        mirror(&mut counts, &out);
        out
    }
}

impl fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionCache")
            .field("counts", &self.counts)
            .finish()
    }
}

fn found(c: &mut CacheCounts, v: &Option<Vec<u8>>) {
    match v {
        Some(_) => c.hits += 1,
        None => c.misses += 1,
    }
}

impl StoresServerSessions for SessionCache {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.with(
            |c| c.put(key, value),
            |c, stored| {
                if *stored {
                    c.stored += 1;
                    if c.entries < c.capacity {
                        c.entries += 1;
                    } else {
                        c.evicted += 1;
                    }
                }
            },
        )
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.with(|c| c.get(key), found)
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.with(
            |c| c.take(key),
            |c, v| {
                found(c, v);
                if v.is_some() {
                    c.entries = c.entries.saturating_sub(1);
                }
            },
        )
    }

    fn can_cache(&self) -> bool {
        self.inner.can_cache()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8) -> Vec<u8> {
        vec![i; 32]
    }

    #[test]
    fn the_mirror_follows_fills_evictions_and_removals() {
        let cache = SessionCache::new(3);
        let gauge = cache.gauge();
        for i in 0..5 {
            assert!(cache.put(key(i), vec![i]));
        }
        // Keys 0 and 1 were evicted, oldest first, as rustls's cache does.
        assert_eq!(cache.get(&key(0)), None);
        assert_eq!(cache.get(&key(2)), Some(vec![2]));
        assert_eq!(cache.take(&key(4)), Some(vec![4]));
        assert_eq!(cache.take(&key(4)), None);
        assert_eq!(
            gauge.counts(),
            CacheCounts {
                capacity: 3,
                entries: 2,
                stored: 5,
                evicted: 2,
                hits: 2,
                misses: 2,
            }
        );
        // A removal makes room: the next put evicts nothing.
        assert!(cache.put(key(9), vec![9]));
        let c = gauge.counts();
        assert_eq!((c.entries, c.evicted), (3, 2));
        assert_eq!(cache.get(&key(2)), Some(vec![2]));
    }

    #[test]
    fn the_capacity_is_at_least_one_as_in_rustls() {
        let cache = SessionCache::new(0);
        assert!(cache.put(key(1), vec![1]));
        assert!(cache.put(key(2), vec![2]));
        let c = cache.gauge().counts();
        assert_eq!((c.capacity, c.entries, c.evicted), (1, 1, 1));
        assert_eq!(cache.take(&key(2)), Some(vec![2]));
    }
}
