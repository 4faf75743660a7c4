//! [`RedisSticky`]: session → endpoint pins shared by every instance, so a conversation keeps
//! its endpoint (and the provider's prompt cache) whichever instance its next request reaches.
//!
//! 1. Reads go to a local [`Sticky`] first: a session this instance has served costs nothing.
//! 2. For a session it has not seen (for some model of the request), the route layer awaits
//!    one `MGET` of the pins before planning, bounded by `timeout_ms`; what Redis knows is
//!    copied into the local cache. No answer means default order (fails open), and for a
//!    second after a failed lookup no lookup is tried, so a hung Redis does not add
//!    `timeout_ms` to every request.
//! 3. `remember` updates the local cache and writes `SET … EX 600` off the request path (a
//!    spawned task; a failure is dropped).
//!
//! A pin held locally wins over Redis: a session that failed over on another instance comes
//! back to its new endpoint here once the local pin expires (10 minutes idle). Keys:
//! `sticky:{sha256(session, model)}` under `key_prefix`.

use super::RedisState;
use crate::ledger::now_ms;
use crate::route::{SessionPins, Sticky};
use futures_util::future::BoxFuture;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// How long a pin lives in Redis without a success (as [`Sticky::new`]'s idle TTL).
const TTL: Duration = Duration::from_secs(600);

/// How long lookups are skipped after one failed.
const PAUSE_MS: i64 = 1000;

/// Pins in Redis with a local cache in front; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct RedisSticky {
    local: Arc<Sticky>,
    redis: RedisState,
    /// Unix ms until which lookups are skipped (Redis just failed).
    paused_until: Arc<AtomicI64>,
}

impl RedisSticky {
    /// Pins shared through `redis`, cached in a fresh [`Sticky`].
    pub fn new(redis: RedisState) -> Self {
        RedisSticky {
            local: Arc::new(Sticky::new()),
            redis,
            paused_until: Arc::new(AtomicI64::new(0)),
        }
    }

    fn key(&self, session: &str, model: &str) -> String {
        let mut h = Sha256::new();
        h.update(session.as_bytes());
        h.update([0]);
        h.update(model.as_bytes());
        self.redis
            .key(&["sticky", &hex::encode(&h.finalize()[..16])])
    }
}

impl SessionPins for RedisSticky {
    fn get(&self, session: &str, model: &str) -> Option<String> {
        self.local.get(session, model)
    }

    fn remember(&self, session: &str, model: &str, target_key: &str) {
        self.local.remember(session, model, target_key);
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (redis, key, value) = (self.redis.clone(), self.key(session, model), target_key);
        let value = value.to_owned();
        rt.spawn(async move {
            let res = redis
                .run(|mut c| async move {
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(&value)
                        .arg("EX")
                        .arg(TTL.as_secs())
                        .query_async::<()>(&mut c)
                        .await
                })
                .await;
            if let Err(e) = res {
                tracing::debug!(error = %e, "sticky pin not shared (Redis)");
            }
        });
    }

    fn fetch(&self, session: &str, models: &[&str]) -> Option<BoxFuture<'static, ()>> {
        let unseen: Vec<String> = models
            .iter()
            .filter(|m| self.local.get(session, m).is_none())
            .map(|m| (*m).to_owned())
            .collect();
        if unseen.is_empty() || now_ms() < self.paused_until.load(Ordering::Relaxed) {
            return None;
        }
        let this = self.clone();
        let session = session.to_owned();
        Some(Box::pin(async move {
            let keys: Vec<String> = unseen.iter().map(|m| this.key(&session, m)).collect();
            let res = this
                .redis
                .run(|mut c| async move {
                    redis::cmd("MGET")
                        .arg(&keys)
                        .query_async::<Vec<Option<String>>>(&mut c)
                        .await
                })
                .await;
            match res {
                Ok(pins) => {
                    for (model, pin) in unseen.iter().zip(pins) {
                        if let Some(pin) = pin {
                            this.local.remember(&session, model, &pin);
                        }
                    }
                }
                Err(e) => {
                    this.paused_until
                        .store(now_ms() + PAUSE_MS, Ordering::Relaxed);
                    tracing::debug!(error = %e, "sticky pins not read (Redis); default order");
                }
            }
        }))
    }
}
