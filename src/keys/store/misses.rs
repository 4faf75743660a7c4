//! Keys recently looked up in the shared persistence and not found there.
//!
//! A key unknown to an instance is looked up in PostgreSQL before it is refused, one look-up at
//! a time (under the persistence lock). Without a memory of misses, every request with a wrong
//! key — a typo retried in a loop, or someone trying keys — would be a query, and all of them
//! would queue behind one another and behind the management API. A miss is remembered for one
//! poll interval: a key created elsewhere after that miss arrives with the next poll anyway, so
//! it is never refused for longer than it would take to arrive without look-ups.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most this many misses are remembered; a full table forgets its expired entries, then all.
const CAPACITY: usize = 65_536;

/// Key hashes not found in the shared persistence, each until its expiry.
#[derive(Debug)]
pub(super) struct Misses {
    ttl: Duration,
    until: Mutex<HashMap<String, Instant>>,
}

impl Misses {
    pub(super) fn new(ttl: Duration) -> Self {
        Misses {
            ttl,
            until: Mutex::new(HashMap::new()),
        }
    }

    /// True while `hash` was looked up and not found less than a poll interval ago.
    pub(super) fn recent(&self, hash: &str) -> bool {
        let mut map = self.lock();
        match map.get(hash) {
            Some(&until) if until > Instant::now() => true,
            Some(_) => {
                map.remove(hash);
                false
            }
            None => false,
        }
    }

    /// Remembers that `hash` was not found.
    pub(super) fn note(&self, hash: &str) {
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() >= CAPACITY {
            map.retain(|_, until| *until > now);
            if map.len() >= CAPACITY {
                map.clear();
            }
        }
        map.insert(hash.to_owned(), now + self.ttl);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_miss_is_remembered_for_its_ttl_only() {
        let misses = Misses::new(Duration::from_millis(30));
        assert!(!misses.recent("a"));
        misses.note("a");
        assert!(misses.recent("a"));
        assert!(!misses.recent("b"));
        std::thread::sleep(Duration::from_millis(40));
        assert!(!misses.recent("a"));
    }
}
