//! A small in-process cache of recent reads, so the per-request paths (bearer checks, the profile)
//! do not each ask a store. Every entry lives for a fixed time to live — the staleness bound other
//! instances' changes are seen within — and changes made through this instance replace or forget
//! their entry at once. It never holds a secret.

use std::collections::HashMap;
use std::hash::Hash;

use time::{Duration, OffsetDateTime};

/// Entries kept at most; past it, expired entries go, then everything.
const CAPACITY: usize = 100_000;

/// Recent values by key, each trusted for `ttl`. `std::sync::Mutex`: never held across an `.await`.
pub(crate) struct TtlCache<K, V> {
    ttl: Duration,
    entries: std::sync::Mutex<HashMap<K, (V, OffsetDateTime)>>,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    /// A cache trusting entries for `ttl`; zero or less caches nothing.
    pub(crate) fn new(ttl: Duration) -> Self {
        Self { ttl, entries: std::sync::Mutex::default() }
    }

    /// The value of `key` if it was put less than the time to live before `now`.
    pub(crate) fn get(&self, key: &K, now: OffsetDateTime) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.get(key).filter(|(_, at)| now - *at < self.ttl).map(|(value, _)| value.clone())
    }

    /// Remembers `value` for `key` as read at `now`.
    pub(crate) fn put(&self, key: K, value: V, now: OffsetDateTime) {
        if self.ttl <= Duration::ZERO {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= CAPACITY {
            let ttl = self.ttl;
            entries.retain(|_, (_, at)| now - *at < ttl);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key, (value, now));
    }

    /// Forgets `key` (after a change made through this instance).
    pub(crate) fn forget(&self, key: &K) {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_live_for_the_ttl_and_can_be_forgotten() {
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let cache = TtlCache::new(Duration::seconds(1));
        cache.put(1, "a", t0);
        assert_eq!(cache.get(&1, t0 + Duration::milliseconds(999)), Some("a"));
        assert_eq!(cache.get(&1, t0 + Duration::seconds(1)), None, "expired at the ttl");
        cache.put(1, "b", t0);
        cache.forget(&1);
        assert_eq!(cache.get(&1, t0), None);
        let off = TtlCache::new(Duration::ZERO);
        off.put(1, "a", t0);
        assert_eq!(off.get(&1, t0), None, "a zero ttl caches nothing");
    }
}
