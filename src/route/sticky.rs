//! Sticky routing: keep a conversation on the endpoint that last served it, so the provider's
//! prompt cache stays warm (SPEC 3.6).
//!
//! 1. After a successful request, the caller (the fallback layer) calls
//!    [`Sticky::remember`] with the session key (`ChatRequest::session_id`: body `session_id`,
//!    `x-session-id`, or `prompt_cache_key`), the model slug and the serving
//!    [`Target::key`](crate::context::Target::key).
//! 2. A later request with the same session and model puts that endpoint first, when it still
//!    qualifies and is neither unstable nor cooling down; the rest follow in default order.
//! 3. Ignored when `provider.order` or a sort is set.
//! 4. An entry expires after 10 minutes without a successful request (each `remember` resets
//!    it). Memory is bounded: each of the 16 shards holds at most `capacity / 16` entries; a
//!    full shard drops expired entries, then its least recently used one.
//!
//! Where the pins live is a [`SessionPins`]: [`Sticky`], in this process, is the default;
//! several instances behind one load balancer share them through Redis (feature `redis`,
//! `state::redis::RedisSticky`), so a session stays on its endpoint whichever instance its
//! next request reaches.
//!
//! ```
//! use switchyard::route::Sticky;
//! let sticky = Sticky::new();
//! sticky.remember("conv-1", "acme/tiny", "acme/tiny@fast");
//! assert_eq!(sticky.get("conv-1", "acme/tiny").as_deref(), Some("acme/tiny@fast"));
//! assert_eq!(sticky.get("conv-2", "acme/tiny"), None);
//! ```

use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

const SHARDS: u64 = 16;

/// Where session → endpoint pins live: read by the route layer, written by the fallback layer
/// after a success. Reads and writes never wait; a shared store that must be asked first says
/// so through [`SessionPins::fetch`].
pub trait SessionPins: Send + Sync + std::fmt::Debug {
    /// The pinned endpoint key of `session` + `model`, as known here.
    fn get(&self, session: &str, model: &str) -> Option<String>;

    /// Pins `session` + `model` to the endpoint `target_key`, or refreshes the pin.
    fn remember(&self, session: &str, model: &str, target_key: &str);

    /// A lookup to await before [`get`](SessionPins::get) when a shared store may know pins
    /// of `session` for `models` that this instance has not seen; `None` (the default) when
    /// nothing needs asking. It completes within the store's timeout, failing open (no pin).
    fn fetch(&self, session: &str, models: &[&str]) -> Option<BoxFuture<'static, ()>> {
        let _ = (session, models);
        None
    }
}

impl SessionPins for Sticky {
    fn get(&self, session: &str, model: &str) -> Option<String> {
        Sticky::get(self, session, model)
    }

    fn remember(&self, session: &str, model: &str, target_key: &str) {
        Sticky::remember(self, session, model, target_key);
    }
}

/// One shard: key hash → (endpoint key, last success).
type Shard = HashMap<u64, (String, Instant)>;

/// Session → endpoint pins with an idle TTL; share it (in an `Arc`) between the route layer and
/// whoever reports successes.
#[derive(Debug)]
pub struct Sticky {
    ttl: Duration,
    per_shard: usize,
    // Keyed by a 64-bit hash of (session, model): a collision could only pin a session to an
    // endpoint of the same model, with probability ~2⁻⁶⁴.
    shards: Box<[Mutex<Shard>]>,
}

impl Default for Sticky {
    fn default() -> Self {
        Self::new()
    }
}

impl Sticky {
    /// 10-minute idle TTL, at most 65,536 pins.
    pub fn new() -> Self {
        Self::with_limits(Duration::from_secs(600), 65_536)
    }

    /// A custom idle TTL and capacity.
    pub fn with_limits(ttl: Duration, capacity: usize) -> Self {
        Sticky {
            ttl,
            per_shard: capacity.div_ceil(SHARDS as usize).max(1),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    fn slot(&self, session: &str, model: &str) -> (u64, MutexGuard<'_, Shard>) {
        let h = BuildHasherDefault::<DefaultHasher>::default().hash_one((session, model));
        let shard = &self.shards[(h % SHARDS) as usize];
        (
            h,
            shard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Pins `session` + `model` to the endpoint `target_key`, or refreshes the pin.
    pub fn remember(&self, session: &str, model: &str, target_key: &str) {
        let now = Instant::now();
        let (h, mut map) = self.slot(session, model);
        if let Some(entry) = map.get_mut(&h) {
            if entry.0 != target_key {
                target_key.clone_into(&mut entry.0);
            }
            entry.1 = now;
            return;
        }
        if map.len() >= self.per_shard {
            map.retain(|_, (_, t)| now.duration_since(*t) < self.ttl);
        }
        if map.len() >= self.per_shard {
            let oldest = map.iter().min_by_key(|(_, (_, t))| *t).map(|(k, _)| *k);
            if let Some(k) = oldest {
                map.remove(&k);
            }
        }
        map.insert(h, (target_key.to_owned(), now));
    }

    /// The pinned endpoint key, when the pin has not expired.
    pub fn get(&self, session: &str, model: &str) -> Option<String> {
        let (h, map) = self.slot(session, model);
        map.get(&h)
            .filter(|(_, t)| t.elapsed() < self.ttl)
            .map(|(k, _)| k.clone())
    }

    /// Drops a pin (e.g. after its endpoint failed).
    pub fn forget(&self, session: &str, model: &str) {
        let (h, mut map) = self.slot(session, model);
        map.remove(&h);
    }

    /// Pins currently held (expired ones included until evicted).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |m| m.len()))
            .sum()
    }

    /// True when no pin is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn expires_after_idle_ttl_and_refreshes() {
        let s = Sticky::with_limits(Duration::from_millis(50), 100);
        s.remember("a", "m", "m@x");
        std::thread::sleep(Duration::from_millis(30));
        s.remember("a", "m", "m@y");
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(s.get("a", "m").as_deref(), Some("m@y"), "refreshed");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(s.get("a", "m"), None);
        s.forget("a", "m");
        assert!(s.is_empty());
    }

    #[test]
    fn memory_is_bounded() {
        let s = Sticky::with_limits(Duration::from_secs(600), 64);
        for i in 0..10_000 {
            s.remember(&format!("s{i}"), "m", "m@x");
        }
        assert!(s.len() <= 64, "{}", s.len());
        assert_eq!(s.get("s9999", "m").as_deref(), Some("m@x"), "newest kept");
    }
}
