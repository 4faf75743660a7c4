//! Health: per-endpoint signals shared by the layers that read or write them.
//!
//! - **Outcomes** in a sliding window, for outage detection (balance orders unstable endpoints
//!   last) and 429 cool-downs that honour `Retry-After` (fallback skips cooling endpoints).
//! - **Speed**: EWMAs of time-to-first-token and tokens/second per endpoint, plus the recent
//!   samples (rolling 5 minutes, at most 64) for percentile thresholds. They drive
//!   `provider.sort: latency | throughput`, `:nitro` and `preferred_min_throughput` /
//!   `preferred_max_latency`.
//!
//! **Outage rule** ([`OutageRule`], the default): an endpoint is *unstable* when, within the last
//! 30 s, it had at least 2 failed attempts and failures were at least half of all its attempts.
//! A single blip does not count; a steady stream of successes outweighs occasional failures.
//! 429s count as failures for this rule and also start a cool-down: `Retry-After` when given,
//! else 1 s.
//!
//! **Shared with other instances** (optional): a [`HealthObserver`] set with
//! [`Health::observe`] hears every outcome (and must not block: a shared backend queues it for
//! a background task), and [`Health::apply_shared`] takes what all instances concluded — which
//! endpoints are unstable, or cooling down, for how long from now. Local and shared verdicts
//! are OR-ed, so a store that stops answering only loses the others' view (health fails open).
//! Speed samples go to the observer too, and [`Health::apply_shared_speed`] takes the
//! deployment's EWMAs: while fresh they are what [`Health::speed`] (and so sorts and `:nitro`)
//! reads; once the store stops answering they go stale and this instance's own EWMAs count
//! again. Percentiles stay per instance (they need the samples).
//!
//! The registry is lock-light: keys are spread over 32 independently locked shards, so
//! concurrent requests to different endpoints never wait on each other and no lock is held
//! across an `.await`.
//!
//! ```
//! use switchyard::health::{Health, Outcome};
//! use std::time::Duration;
//! let h = Health::new();
//! h.record("m@p", Outcome { success: false, status: 503, retry_after: None });
//! h.record("m@p", Outcome { success: false, status: 503, retry_after: None });
//! assert!(h.is_unstable("m@p"));
//! h.record_stream("m@q", Duration::from_millis(200), 100, Duration::from_millis(1200));
//! assert_eq!(h.throughput("m@q"), Some(100.0));
//! ```

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;

/// One shard's endpoints. Keys are the catalogue's endpoints, hashed twice per attempt: a fast
/// hash (no flood to resist in keys the configuration chose).
type Shard = HashMap<String, EndpointHealth, foldhash::fast::RandomState>;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

const SHARDS: usize = 32;
/// Outcomes kept per endpoint at most, whatever the window (bounds memory under load).
const MAX_EVENTS: usize = 256;
/// Speed samples kept per endpoint for percentiles.
const MAX_SAMPLES: usize = 64;
/// How long a speed sample counts towards percentiles.
const SAMPLE_WINDOW: Duration = Duration::from_secs(300);
/// Weight of the newest sample in the EWMAs.
const ALPHA: f64 = 0.3;

/// The outcome of one attempt.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Whether the attempt succeeded.
    pub success: bool,
    /// Its status (the gateway's 502/504 for transport failures).
    pub status: u16,
    /// `Retry-After` of a 429/503.
    pub retry_after: Option<Duration>,
}

/// When an endpoint counts as having a significant outage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutageRule {
    /// How far back outcomes count (30 s).
    pub window: Duration,
    /// Fewest failures in the window (2).
    pub min_failures: u32,
    /// Smallest share of failures among the window's attempts (0.5).
    pub min_failure_ratio: f64,
}

impl Default for OutageRule {
    fn default() -> Self {
        OutageRule {
            window: Duration::from_secs(30),
            min_failures: 2,
            min_failure_ratio: 0.5,
        }
    }
}

/// Measured speed of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Speed {
    /// EWMA time to first token, seconds.
    pub ttft: f64,
    /// EWMA tokens per second.
    pub tps: f64,
}

#[derive(Debug, Default)]
struct EndpointHealth {
    events: VecDeque<(Instant, bool)>,
    /// Failures among `events`: with none, [`Health::is_unstable`] need not walk them.
    failures: u32,
    cooldown_until: Option<Instant>,
    speed: Option<Speed>,
    samples: VecDeque<(Instant, f64, f64)>,
    /// Until when other instances' outcomes make the endpoint unstable.
    shared_unstable_until: Option<Instant>,
    /// All instances' speed EWMAs, and until when they count.
    shared_speed: Option<(Speed, Instant)>,
}

/// Hears every outcome [`Health::record`] takes, to share it with other instances. Called on
/// the request path: it must not block or wait on I/O.
pub trait HealthObserver: Send + Sync + std::fmt::Debug {
    /// One attempt's outcome for the endpoint `key`.
    fn outcome(&self, key: &str, outcome: Outcome);

    /// One finished response's speed for the endpoint `key` (not an EWMA: the sample).
    fn speed(&self, key: &str, sample: Speed) {
        let _ = (key, sample);
    }
}

/// The registry, shared (in an `Arc`) by the layers that read or write it.
#[derive(Debug)]
pub struct Health {
    rule: OutageRule,
    shards: Box<[Mutex<Shard>]>,
    observer: OnceLock<Arc<dyn HealthObserver>>,
}

impl Default for Health {
    fn default() -> Self {
        Self::with_rule(OutageRule::default())
    }
}

impl Health {
    /// A registry with the default [`OutageRule`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry with a custom outage rule.
    pub fn with_rule(rule: OutageRule) -> Self {
        Health {
            rule,
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            observer: OnceLock::new(),
        }
    }

    /// Sends every outcome recorded from now on to `observer` as well (once; later calls are
    /// ignored and return false).
    pub fn observe(&self, observer: Arc<dyn HealthObserver>) -> bool {
        self.observer.set(observer).is_ok()
    }

    /// Replaces the shared verdicts with the latest ones from all instances: the endpoints in
    /// `unstable` are unstable for the given time from now, every other endpoint no longer
    /// (its own outcomes still count); those in `cooling` are in a cool-down at least that
    /// long (a cool-down is only ever extended).
    pub fn apply_shared(&self, unstable: &[(String, Duration)], cooling: &[(String, Duration)]) {
        let now = Instant::now();
        for shard in &self.shards {
            let mut map = shard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for h in map.values_mut() {
                h.shared_unstable_until = None;
            }
        }
        for (key, d) in unstable {
            self.with_entry(key, |h| h.shared_unstable_until = Some(now + *d));
        }
        for (key, d) in cooling {
            self.with_entry(key, |h| {
                h.cooldown_until = h.cooldown_until.max(Some(now + *d))
            });
        }
    }

    /// Takes the deployment's speed EWMAs: until `valid_for` from now, [`Health::speed`]
    /// returns these for the endpoints listed instead of this instance's own.
    pub fn apply_shared_speed(&self, speeds: &[(String, Speed)], valid_for: Duration) {
        let until = Instant::now() + valid_for;
        for (key, s) in speeds {
            self.with_entry(key, |h| h.shared_speed = Some((*s, until)));
        }
    }

    /// The outage rule in force.
    pub fn rule(&self) -> OutageRule {
        self.rule
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, Shard> {
        let h = foldhash::fast::FixedState::default().hash_one(key);
        let shard = &self.shards[(h as usize) % self.shards.len()];
        // A panic while holding a shard leaves plain counters behind: keep using them.
        shard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn with_entry<T>(&self, key: &str, f: impl FnOnce(&mut EndpointHealth) -> T) -> T {
        let mut map = self.shard(key);
        match map.get_mut(key) {
            Some(h) => f(h),
            None => f(map.entry(key.to_owned()).or_default()),
        }
    }

    fn read<T>(&self, key: &str, f: impl FnOnce(&EndpointHealth) -> T) -> Option<T> {
        self.shard(key).get(key).map(f)
    }

    /// Records an attempt's outcome for the endpoint `key` ([`Target::key`](crate::context::Target::key)).
    pub fn record(&self, key: &str, outcome: Outcome) {
        if let Some(o) = self.observer.get() {
            o.outcome(key, outcome);
        }
        let now = Instant::now();
        let window = self.rule.window;
        self.with_entry(key, |h| {
            h.events.push_back((now, outcome.success));
            h.failures += u32::from(!outcome.success);
            while h.events.len() > MAX_EVENTS
                || h.events
                    .front()
                    .is_some_and(|(t, _)| now.duration_since(*t) > window)
            {
                if let Some((_, ok)) = h.events.pop_front() {
                    h.failures -= u32::from(!ok);
                }
            }
            if outcome.status == 429 {
                h.cooldown_until =
                    Some(now + outcome.retry_after.unwrap_or(Duration::from_secs(1)));
            }
        });
    }

    /// Records a finished response: time to first token, completion tokens and total duration.
    /// Tokens/second is measured over the generation (after the first token) when that is
    /// positive, else over the whole duration.
    pub fn record_stream(&self, key: &str, ttft: Duration, tokens: u64, duration: Duration) {
        let generation = duration.saturating_sub(ttft);
        let secs = if generation.is_zero() {
            duration
        } else {
            generation
        }
        .as_secs_f64();
        let tps = if secs > 0.0 {
            tokens as f64 / secs
        } else {
            0.0
        };
        let ttft = ttft.as_secs_f64();
        if let Some(o) = self.observer.get() {
            o.speed(key, Speed { ttft, tps });
        }
        let now = Instant::now();
        self.with_entry(key, |h| {
            h.speed = Some(match h.speed {
                None => Speed { ttft, tps },
                Some(s) => Speed {
                    ttft: s.ttft + ALPHA * (ttft - s.ttft),
                    tps: s.tps + ALPHA * (tps - s.tps),
                },
            });
            h.samples.push_back((now, ttft, tps));
            if h.samples.len() > MAX_SAMPLES {
                h.samples.pop_front();
            }
        });
    }

    /// True while the endpoint is in a 429 cool-down.
    pub fn cooling_down(&self, key: &str) -> bool {
        self.read(key, |h| {
            h.cooldown_until.is_some_and(|t| Instant::now() < t)
        })
        .unwrap_or(false)
    }

    /// True when the endpoint had a significant outage in the window (see the module docs).
    pub fn is_unstable(&self, key: &str) -> bool {
        let now = Instant::now();
        let rule = self.rule;
        self.read(key, |h| {
            if h.shared_unstable_until.is_some_and(|t| now < t) {
                return true;
            }
            // The common case of a healthy endpoint: no failure to count.
            if h.failures == 0 && rule.min_failures > 0 {
                return false;
            }
            let (mut total, mut failed) = (0u32, 0u32);
            for (t, ok) in &h.events {
                if now.duration_since(*t) <= rule.window {
                    total += 1;
                    failed += u32::from(!ok);
                }
            }
            failed >= rule.min_failures
                && f64::from(failed) >= rule.min_failure_ratio * f64::from(total)
        })
        .unwrap_or(false)
    }

    /// The endpoint's speed EWMAs, when it has served a response: the deployment's while
    /// fresh (see [`Health::apply_shared_speed`]), else this instance's.
    pub fn speed(&self, key: &str) -> Option<Speed> {
        let now = Instant::now();
        self.read(key, |h| {
            h.shared_speed
                .filter(|(_, until)| now < *until)
                .map(|(s, _)| s)
                .or(h.speed)
        })
        .flatten()
    }

    /// EWMA tokens/second.
    pub fn throughput(&self, key: &str) -> Option<f64> {
        self.speed(key).map(|s| s.tps)
    }

    /// EWMA time to first token in seconds.
    pub fn latency(&self, key: &str) -> Option<f64> {
        self.speed(key).map(|s| s.ttft)
    }

    /// Percentile `p` (0–100) over the last 5 minutes: for throughput, the rate at least `p`% of
    /// recent responses reached (so p90 is stricter than p50); for latency, the TTFT in seconds
    /// that `p`% of recent responses stayed under. `None` without recent samples.
    pub fn percentile(&self, key: &str, metric: Metric, p: f64) -> Option<f64> {
        let now = Instant::now();
        let mut values: Vec<f64> = self.read(key, |h| {
            h.samples
                .iter()
                .filter(|(t, _, _)| now.duration_since(*t) <= SAMPLE_WINDOW)
                .map(|&(_, ttft, tps)| match metric {
                    Metric::Throughput => tps,
                    Metric::Latency => ttft,
                })
                .collect()
        })?;
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let q = match metric {
            Metric::Throughput => 1.0 - p / 100.0,
            Metric::Latency => p / 100.0,
        };
        let i = ((values.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
        values.get(i).copied()
    }
}

/// Which speed measure a percentile is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Tokens per second (higher is better).
    Throughput,
    /// Time to first token in seconds (lower is better).
    Latency,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn fail(status: u16, retry_after: Option<Duration>) -> Outcome {
        Outcome {
            success: false,
            status,
            retry_after,
        }
    }
    const OK: Outcome = Outcome {
        success: true,
        status: 200,
        retry_after: None,
    };

    #[test]
    fn one_failure_is_not_an_outage_and_successes_outweigh() {
        let h = Health::new();
        h.record("a", fail(502, None));
        assert!(!h.is_unstable("a"));
        for _ in 0..3 {
            h.record("a", OK);
        }
        h.record("a", fail(502, None));
        assert!(!h.is_unstable("a"), "2 of 5 failed");
        h.record("a", fail(502, None));
        assert!(h.is_unstable("a"), "3 of 6 failed");
        assert!(!h.is_unstable("unknown"));
    }

    #[test]
    fn retry_after_sets_the_cool_down() {
        let h = Health::new();
        h.record("a", fail(429, Some(Duration::from_millis(40))));
        assert!(h.cooling_down("a"));
        std::thread::sleep(Duration::from_millis(60));
        assert!(!h.cooling_down("a"));
        h.record("b", fail(503, Some(Duration::from_secs(60))));
        assert!(!h.cooling_down("b"), "only 429 cools down");
    }

    #[test]
    fn shared_verdicts_add_to_local_ones() {
        let h = Health::new();
        let ms = Duration::from_millis;
        h.apply_shared(&[("a".into(), ms(40))], &[("b".into(), ms(40))]);
        assert!(h.is_unstable("a") && !h.cooling_down("a"));
        assert!(h.cooling_down("b") && !h.is_unstable("b"));
        std::thread::sleep(ms(60));
        assert!(!h.is_unstable("a") && !h.cooling_down("b"));
        // A verdict the others have withdrawn (the endpoint recovered) is withdrawn here too.
        h.apply_shared(&[("c".into(), ms(10_000))], &[]);
        assert!(h.is_unstable("c"));
        h.apply_shared(&[], &[]);
        assert!(!h.is_unstable("c"));
    }

    #[test]
    fn speed_ewma_and_percentiles() {
        let h = Health::new();
        let ms = Duration::from_millis;
        h.record_stream("a", ms(100), 100, ms(1100));
        h.record_stream("a", ms(200), 50, ms(1200));
        let s = h.speed("a").unwrap();
        assert!((s.tps - (100.0 + 0.3 * (50.0 - 100.0))).abs() < 1e-9);
        assert!((s.ttft - 0.13).abs() < 1e-9);
        assert_eq!(h.percentile("a", Metric::Throughput, 90.0), Some(50.0));
        assert_eq!(h.percentile("a", Metric::Throughput, 0.0), Some(100.0));
        assert_eq!(h.percentile("a", Metric::Latency, 90.0), Some(0.2));
        assert_eq!(h.percentile("b", Metric::Latency, 50.0), None);
    }

    #[test]
    fn shared_speed_counts_while_fresh() {
        let h = Health::new();
        let ms = Duration::from_millis;
        h.record_stream("a", ms(100), 100, ms(1100));
        let shared = Speed {
            ttft: 2.0,
            tps: 7.0,
        };
        h.apply_shared_speed(&[("a".into(), shared), ("b".into(), shared)], ms(40));
        assert_eq!(h.speed("a"), Some(shared));
        assert_eq!(h.throughput("b"), Some(7.0), "known from the others only");
        std::thread::sleep(ms(60));
        assert_eq!(h.throughput("a"), Some(100.0), "stale: back to its own");
        assert_eq!(h.speed("b"), None);
    }
}
