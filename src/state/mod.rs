//! Shared state: what gateway instances behind one load balancer must agree on.
//!
//! A gateway instance is stateless except for endpoint health, per-key rate limits, credit
//! reservations and the generation ledger. One instance keeps them in process; N replicas that
//! each kept their own would overspend a key up to N times and keep sending traffic to an
//! endpoint that the others already saw fail. So each piece sits behind a small trait, with the
//! in-process implementation as the default (no dependency, no round trip) and shared backends
//! behind cargo features:
//!
//! | piece | trait | in process | shared |
//! |---|---|---|---|
//! | credits + per-minute limits, asked together before dispatch | [`Admission`] | [`LocalAdmission`] (the [`KeyStore`](crate::keys::KeyStore)'s reservations + [`LocalRateLimiter`]) | `redis::RedisAdmission`: one Lua script, one round trip |
//! | requests/tokens per minute | [`RateLimiter`] | [`LocalRateLimiter`] | inside the Redis admission script |
//! | outage windows, 429 cool-downs, speed EWMAs | [`HealthObserver`](crate::health::HealthObserver) feeding [`Health`](crate::health::Health) | [`Health`](crate::health::Health) alone | `redis::RedisHealth`: outcomes and speed samples pushed in the background, verdicts and EWMAs polled |
//! | sticky sessions | [`SessionPins`](crate::route::SessionPins) | [`Sticky`](crate::route::Sticky) | `redis::RedisSticky`: a local cache, Redis asked only for unseen sessions |
//! | generations | [`MeterSink`](crate::ledger::MeterSink) | memory, SQLite, JSON Lines | PostgreSQL (feature `postgres`) |
//!
//! **Failure behaviour.** Health fails open: an unreachable store leaves each instance with its
//! own signals, and requests are served. Money fails closed: when the store cannot be asked, a
//! request on a key is refused with 503 and a message naming the store
//! ([`StateUnavailable`]).

mod admit;
mod rate;
#[cfg(feature = "redis")]
pub mod redis;

pub use admit::{Admission, Admit, LocalAdmission, Refusal, StateUnavailable};
pub use rate::{LocalRateLimiter, RateLimited, RateLimiter, WINDOW_MS};
