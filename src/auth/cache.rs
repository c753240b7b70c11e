//! A small verdict cache: a credential's digest → what it was found to be, until a deadline.
//! Bounded: when full, expired entries go, and if none had, everything goes (a flood of
//! distinct credentials costs the cache, never memory).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use sha2::{Digest, Sha256};

/// The most entries kept.
const CAPACITY: usize = 16_384;

#[derive(Debug)]
pub(super) struct Cache<V> {
    entries: Mutex<HashMap<[u8; 32], (V, Instant)>>,
}

impl<V: Clone> Cache<V> {
    pub(super) fn new() -> Self {
        Cache {
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The key of a credential and what else a verdict depends on: a digest, so the cache
    /// never holds a credential itself.
    pub(super) fn key(parts: &[&[u8]]) -> [u8; 32] {
        let mut h = Sha256::new();
        for p in parts {
            h.update((p.len() as u64).to_be_bytes());
            h.update(p);
        }
        h.finalize().into()
    }

    pub(super) fn get(&self, key: &[u8; 32], now: Instant) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|(_, until)| *until > now)
            .map(|(v, _)| v.clone())
    }

    pub(super) fn put(&self, key: [u8; 32], value: V, until: Instant, now: Instant) {
        if until <= now {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY {
            entries.retain(|_, (_, u)| *u > now);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key, (value, until));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn entries_live_until_their_deadline_and_the_cache_stays_bounded() {
        let c: Cache<u32> = Cache::new();
        let now = Instant::now();
        let k = Cache::<u32>::key(&[b"token"]);
        c.put(k, 7, now + Duration::from_secs(5), now);
        assert_eq!(c.get(&k, now), Some(7));
        assert_eq!(c.get(&k, now + Duration::from_secs(5)), None);
        assert_ne!(k, Cache::<u32>::key(&[b"tok", b"en"]));
        for i in 0..(CAPACITY as u32 + 10) {
            let k = Cache::<u32>::key(&[&i.to_be_bytes()]);
            c.put(k, i, now + Duration::from_secs(5), now);
        }
        assert!(c.entries.lock().unwrap().len() <= CAPACITY);
    }
}
