//! [`ResponseStore`]: recent responses' conversations, for `previous_response_id`.
//!
//! A follow-up request names the response it continues instead of resending the
//! conversation, so the layer keeps each stored response's items (its input, earlier turns
//! included, then its output) in memory. Bounded by count and by bytes, the least recently
//! used out first (continuing a response uses it): a gateway restart or a long pause forgets them, and the client gets a 400 naming the id and
//! resends the conversation. Each entry belongs to the key that created it (a hash of the
//! `Authorization` header), so one caller cannot continue another's conversation.

use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};

/// Default number of responses kept.
pub const DEFAULT_CAPACITY: usize = 1000;

/// Default bytes of conversation kept (as JSON).
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;

/// Recent responses' conversations, for `previous_response_id`: at most a count and a byte
/// total of them, least recently used out first, each continued only by the key that created it. Shared:
/// clones see the same entries.
#[derive(Clone, Debug)]
pub struct ResponseStore(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    capacity: usize,
    max_bytes: usize,
    hasher: RandomState,
    inner: Mutex<Inner>,
}

/// The entries and their use order: `order` holds a `(stamp, id)` per use, oldest first; a
/// pair whose stamp is no longer its entry's `used` is stale and skipped (a use appends rather
/// than moves, so it costs O(1); stale pairs are swept when they outnumber the live ones).
#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    order: VecDeque<(u64, String)>,
    bytes: usize,
    clock: u64,
}

#[derive(Debug)]
struct Entry {
    owner: u64,
    items: Arc<Vec<Value>>,
    bytes: usize,
    /// The stamp of its last use.
    used: u64,
}

impl Inner {
    /// Marks `id` (present) as just used.
    fn touch(&mut self, id: String) {
        self.clock += 1;
        let stamp = self.clock;
        if let Some(e) = self.entries.get_mut(&id) {
            e.used = stamp;
            self.order.push_back((stamp, id));
        }
        if self.order.len() > 2 * self.entries.len() + 16 {
            let entries = &self.entries;
            self.order
                .retain(|(s, k)| entries.get(k).is_some_and(|e| e.used == *s));
        }
    }

    /// Drops least recently used entries until both bounds hold.
    fn evict(&mut self, capacity: usize, max_bytes: usize) {
        while self.entries.len() > capacity || self.bytes > max_bytes {
            let Some((stamp, id)) = self.order.pop_front() else {
                break;
            };
            if self.entries.get(&id).is_some_and(|e| e.used == stamp)
                && let Some(e) = self.entries.remove(&id)
            {
                self.bytes -= e.bytes;
            }
        }
    }
}

impl Default for ResponseStore {
    fn default() -> Self {
        ResponseStore::new(DEFAULT_CAPACITY, DEFAULT_MAX_BYTES)
    }
}

impl ResponseStore {
    /// A store keeping at most `capacity` responses and `max_bytes` of their JSON.
    pub fn new(capacity: usize, max_bytes: usize) -> Self {
        ResponseStore(Arc::new(Shared {
            capacity,
            max_bytes,
            hasher: RandomState::new(),
            inner: Mutex::new(Inner::default()),
        }))
    }

    /// The owner tag for a credential (the `Authorization` header's value, or empty).
    pub fn owner(&self, credential: &[u8]) -> u64 {
        self.0.hasher.hash_one(credential)
    }

    /// The conversation of response `id`, when it is kept and `owner` created it (which
    /// counts as a use).
    pub fn get(&self, id: &str, owner: u64) -> Option<Arc<Vec<Value>>> {
        let mut inner = self.0.inner.lock().ok()?;
        let items = inner
            .entries
            .get(id)
            .filter(|e| e.owner == owner)
            .map(|e| e.items.clone())?;
        inner.touch(id.to_owned());
        Some(items)
    }

    /// Keeps `items` as response `id`'s conversation, dropping the least recently used entries
    /// past the bounds. A conversation larger than the whole byte bound is not kept.
    pub fn put(&self, id: String, owner: u64, items: Vec<Value>) {
        let bytes: usize = items.iter().map(|v| v.to_string().len()).sum();
        if bytes > self.0.max_bytes || self.0.capacity == 0 {
            return;
        }
        let Ok(mut inner) = self.0.inner.lock() else {
            return;
        };
        let entry = Entry {
            owner,
            items: Arc::new(items),
            bytes,
            used: 0,
        };
        if let Some(old) = inner.entries.insert(id.clone(), entry) {
            inner.bytes -= old.bytes;
        }
        inner.bytes += bytes;
        inner.touch(id);
        inner.evict(self.0.capacity, self.0.max_bytes);
    }

    /// How many responses are kept.
    pub fn len(&self) -> usize {
        self.0.inner.lock().map_or(0, |i| i.entries.len())
    }

    /// True when none are.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_least_recently_used_go_first_and_owners_are_kept_apart() {
        let store = ResponseStore::new(2, 1 << 20);
        let (a, b) = (store.owner(b"Bearer a"), store.owner(b"Bearer b"));
        for id in ["r1", "r2", "r3"] {
            store.put(id.into(), a, vec![json!({"id": id})]);
        }
        assert_eq!(store.len(), 2);
        assert!(store.get("r1", a).is_none());
        assert_eq!(store.get("r3", a).expect("kept")[0]["id"], "r3");
        assert!(store.get("r3", b).is_none());
    }

    #[test]
    fn a_continued_response_is_kept_over_older_unused_ones() {
        let store = ResponseStore::new(2, 1 << 20);
        store.put("r1".into(), 0, vec![json!(1)]);
        store.put("r2".into(), 0, vec![json!(2)]);
        assert!(store.get("r1", 0).is_some());
        store.put("r3".into(), 0, vec![json!(3)]);
        assert!(store.get("r2", 0).is_none(), "the least recently used goes");
        assert!(store.get("r1", 0).is_some() && store.get("r3", 0).is_some());
        // Many uses leave the use log bounded.
        for _ in 0..1000 {
            assert!(store.get("r1", 0).is_some());
        }
        let inner = store.0.inner.lock().expect("lock");
        assert!(inner.order.len() <= 2 * inner.entries.len() + 16);
    }

    #[test]
    fn the_byte_bound_holds() {
        let store = ResponseStore::new(100, 40);
        store.put("big".into(), 0, vec![json!("x".repeat(50))]);
        assert!(store.is_empty());
        store.put("r1".into(), 0, vec![json!("x".repeat(20))]);
        store.put("r2".into(), 0, vec![json!("x".repeat(20))]);
        assert!(store.get("r1", 0).is_none());
        assert!(store.get("r2", 0).is_some());
    }
}
