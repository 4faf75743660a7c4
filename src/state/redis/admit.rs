//! [`RedisAdmission`]: credits and per-minute limits admitted by one Lua script in Redis.

use super::RedisState;
use super::scripts::Scripts;
use crate::catalog::Usd;
use crate::context::CreditSettle;
use crate::keys::{InsufficientCredits, KeyInfo, KeyStore, LimitReset, ReserveError};
use crate::ledger::now_ms;
use crate::state::rate::WINDOW_MS;
use crate::state::{Admission, Admit, RateLimited, Refusal};
use redis::aio::ConnectionManager;
use std::fmt;
use std::time::Duration;

/// Admission through Redis: the keys' settings come from the [`KeyStore`]; their spend, holds
/// and per-minute counters live in Redis, shared by every instance.
#[derive(Debug, Clone)]
pub struct RedisAdmission {
    store: KeyStore,
    redis: RedisState,
}

impl RedisAdmission {
    /// Admission over `store`'s keys, counting in `redis`.
    pub fn new(store: KeyStore, redis: RedisState) -> Self {
        RedisAdmission { store, redis }
    }
}

/// The Redis keys of one key's state in its current period, and that period's TTL.
struct Keys {
    spend: String,
    holds: String,
    rate: String,
    spend_ttl_s: u64,
}

fn keys(redis: &RedisState, info: &KeyInfo, now: i64) -> Keys {
    let (period, ttl_days) = match info.limit_reset {
        LimitReset::Never => ("total".to_owned(), 0),
        reset => (
            format!(
                "{}-{}",
                reset.as_str().unwrap_or("period"),
                reset.period_start(now)
            ),
            match reset {
                LimitReset::Daily => 2,
                LimitReset::Weekly => 8,
                _ => 32,
            },
        ),
    };
    Keys {
        spend: redis.key(&["spend", &info.hash, &period]),
        holds: redis.key(&["holds", &info.hash]),
        rate: redis.key(&["rate", &info.hash]),
        spend_ttl_s: ttl_days * 86_400,
    }
}

fn opt(v: Option<u64>) -> String {
    v.map(|n| n.to_string()).unwrap_or_default()
}

fn pico(s: &str) -> Usd {
    Usd::from_picodollars(s.parse().unwrap_or(0))
}

impl Admission for RedisAdmission {
    fn admit(&self, key_hash: &str, cost: Usd) -> Admit {
        let Some(info) = self.store.get(key_hash) else {
            return Admit::Ready(Err(Refusal::Credit(ReserveError::UnknownKey)));
        };
        if info.disabled {
            return Admit::Ready(Err(Refusal::Credit(ReserveError::Disabled)));
        }
        let amount = cost.max(Usd::ZERO);
        let redis = self.redis.clone();
        let store = self.store.clone();
        Admit::Pending(Box::pin(async move {
            let now = now_ms();
            let k = keys(&redis, &info, now);
            let hold_id = format!("{:016x}", rand::random::<u64>());
            let seed = info.usage.in_period(info.limit_reset).picodollars().max(0);
            let hold_ttl_ms = redis.inner.reservation_ttl.as_millis() as u64;
            let conn = redis
                .connection()
                .await
                .map_err(|e| Refusal::Unavailable(e.unavailable()))?;
            let reply: Result<Vec<String>, _> = redis
                .run_on(conn.clone(), |mut c| {
                    let mut inv = Scripts::get().admit.prepare_invoke();
                    inv.key(&k.spend)
                        .key(&k.holds)
                        .key(&k.rate)
                        .arg(
                            info.limit
                                .map(|l| l.picodollars().max(0).to_string())
                                .unwrap_or_default(),
                        )
                        .arg(amount.picodollars().to_string())
                        .arg(seed.to_string())
                        .arg(k.spend_ttl_s)
                        .arg(&hold_id)
                        .arg(hold_ttl_ms)
                        .arg(opt(info.limits.rpm.map(u64::from)))
                        .arg(opt(info.limits.tpm))
                        .arg(WINDOW_MS);
                    async move { inv.invoke_async(&mut c).await }
                })
                .await;
            let reply = match reply {
                Ok(reply) => reply,
                Err(e) => {
                    // A hung Redis runs the script once it wakes up, holding credit for a
                    // request that was refused: release the hold behind it, on the same
                    // connection so that it runs after the script.
                    if e.timed_out() && info.limit.is_some() {
                        release(redis.clone(), Some(conn), k.holds.clone(), hold_id);
                    }
                    return Err(Refusal::Unavailable(e.unavailable()));
                }
            };
            match reply.first().map(String::as_str) {
                Some("ok") => Ok(Box::new(RedisHold {
                    redis,
                    store,
                    keys: k,
                    hold_id,
                    key_hash: info.hash,
                    seed,
                    settled: false,
                    held: info.limit.is_some(),
                }) as Box<dyn CreditSettle>),
                Some("rate") if reply.len() == 5 => Err(Refusal::Rate(RateLimited {
                    key_name: info.name,
                    limit_kind: if reply[1] == "rpm" { "rpm" } else { "tpm" },
                    limit: reply[2].parse().unwrap_or(0),
                    reset_in_ms: reply[3].parse().unwrap_or(WINDOW_MS),
                    reset_at_ms: reply[4].parse().unwrap_or(0),
                })),
                Some("credit") if reply.len() == 2 => Err(Refusal::Credit(
                    ReserveError::Insufficient(InsufficientCredits {
                        key_name: info.name,
                        remaining: pico(&reply[1]),
                        needed: amount,
                        limit: info.limit.unwrap_or(Usd::ZERO),
                        limit_reset: info.limit_reset,
                    }),
                )),
                _ => Err(Refusal::Unavailable(
                    redis
                        .error(format!("unexpected admission reply {reply:?}"))
                        .unavailable(),
                )),
            }
        }))
    }
}

/// How many times a settlement is sent before it is given up (50 ms, 200 ms, 800 ms apart).
const SETTLE_ATTEMPTS: u32 = 4;

/// A hold in Redis. Settling or dropping it runs off the request path (a spawned task): a
/// failure there is logged, and the hold expires on its own.
struct RedisHold {
    redis: RedisState,
    store: KeyStore,
    keys: Keys,
    hold_id: String,
    key_hash: String,
    seed: i64,
    settled: bool,
    /// Whether the admission placed a hold (limited keys only).
    held: bool,
}

impl fmt::Debug for RedisHold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisHold")
            .field("hold", &self.hold_id)
            .finish_non_exhaustive()
    }
}

impl RedisHold {
    fn finish(&mut self, actual: Usd, tokens: u64) {
        self.settled = true;
        let actual = actual.max(Usd::ZERO);
        // This instance's own view (`GET /api/v1/key`, persistence) follows along.
        self.store.charge(&self.key_hash, actual);
        let redis = self.redis.clone();
        let (spend, holds, rate) = (
            self.keys.spend.clone(),
            self.keys.holds.clone(),
            self.keys.rate.clone(),
        );
        let (id, ttl, seed) = (self.hold_id.clone(), self.keys.spend_ttl_s, self.seed);
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            // Money fails closed: a settlement that did not answer is sent again, since a
            // lost one would leave the cost uncharged once the hold expires. One that ran
            // but whose answer was lost is then charged twice: an over-charge, never an
            // overspend.
            let mut wait = Duration::from_millis(50);
            for attempt in 1..=SETTLE_ATTEMPTS {
                let res = redis
                    .run(|mut c| {
                        let mut inv = Scripts::get().settle.prepare_invoke();
                        inv.key(&spend)
                            .key(&holds)
                            .key(&rate)
                            .arg(actual.picodollars().to_string())
                            .arg(&id)
                            .arg(tokens)
                            .arg(WINDOW_MS)
                            .arg(ttl)
                            .arg(seed.to_string());
                        async move { inv.invoke_async::<i64>(&mut c).await }
                    })
                    .await;
                match res {
                    Ok(_) => return,
                    Err(e) if attempt == SETTLE_ATTEMPTS => {
                        tracing::error!(error = %e, attempts = attempt, "could not settle a credit hold in Redis; its cost is not charged to the shared spend and the hold expires on its own");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, attempt, "settling a credit hold in Redis failed; retrying");
                        tokio::time::sleep(wait).await;
                        wait *= 4;
                    }
                }
            }
        });
    }
}

impl CreditSettle for RedisHold {
    fn settle(mut self: Box<Self>, actual: Usd) {
        self.finish(actual, 0);
    }

    fn settle_with_tokens(mut self: Box<Self>, actual: Usd, tokens: u64) {
        self.finish(actual, tokens);
    }
}

impl Drop for RedisHold {
    fn drop(&mut self) {
        if self.settled || !self.held {
            return;
        }
        release(
            self.redis.clone(),
            None,
            self.keys.holds.clone(),
            self.hold_id.clone(),
        );
    }
}

/// Drops a hold off the request path (on `conn` when given, else a pooled connection), sent
/// again like a settlement when it gets no answer (deleting a hold twice is harmless). Given
/// up, the hold expires on its own after `reservation_ttl_s`.
fn release(redis: RedisState, conn: Option<ConnectionManager>, holds: String, id: String) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    rt.spawn(async move {
        let mut wait = Duration::from_millis(50);
        for attempt in 1..=SETTLE_ATTEMPTS {
            let hdel = |mut c: ConnectionManager| {
                let (holds, id) = (holds.clone(), id.clone());
                async move {
                    redis::cmd("HDEL")
                        .arg(&holds)
                        .arg(&id)
                        .query_async::<i64>(&mut c)
                        .await
                }
            };
            let res = match &conn {
                Some(c) => redis.run_on(c.clone(), hdel).await,
                None => redis.run(hdel).await,
            };
            match res {
                Ok(_) => return,
                Err(e) if attempt == SETTLE_ATTEMPTS => {
                    tracing::warn!(error = %e, attempts = attempt, "could not release a credit hold in Redis; it expires on its own");
                }
                Err(_) => {
                    tokio::time::sleep(wait).await;
                    wait *= 4;
                }
            }
        }
    });
}
