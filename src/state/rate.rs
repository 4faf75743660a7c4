//! [`RateLimiter`]: requests and tokens per minute per key, and [`LocalRateLimiter`], the
//! in-process one.
//!
//! Both count in fixed one-minute windows aligned to the clock: simple to share between
//! instances (one counter per key, reset when the minute turns) and easy to explain in
//! `X-RateLimit-Reset`. A burst can reach twice the limit across a window boundary; that is the
//! usual trade for one round trip per request.

use crate::keys::KeyLimits;
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

/// The window every limit counts in.
pub const WINDOW_MS: i64 = 60_000;

/// A request refused because its key used up a per-minute limit (429).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimited {
    /// The key's name.
    pub key_name: String,
    /// Which limit: `rpm` or `tpm`.
    pub limit_kind: &'static str,
    /// The limit.
    pub limit: u64,
    /// Milliseconds until the window ends and the limit frees up.
    pub reset_in_ms: i64,
    /// Unix ms at which the window ends.
    pub reset_at_ms: i64,
}

impl RateLimited {
    /// Whole seconds for `Retry-After` (at least 1).
    pub fn retry_after_secs(&self) -> u64 {
        u64::try_from((self.reset_in_ms + 999) / 1000)
            .unwrap_or(1)
            .max(1)
    }
}

impl fmt::Display for RateLimited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.limit_kind == "rpm" {
            "requests"
        } else {
            "tokens"
        };
        write!(
            f,
            "Rate limit exceeded: the key `{}` may use {} {what} per minute; retry in {} s",
            self.key_name,
            self.limit,
            self.retry_after_secs()
        )
    }
}

impl std::error::Error for RateLimited {}

/// Counts each key's requests and tokens per minute.
pub trait RateLimiter: Send + Sync + fmt::Debug {
    /// Counts one request for the key when it is under its limits at `now_ms`, else says which
    /// limit it hit. Keys without `rpm`/`tpm` always pass.
    fn acquire(
        &self,
        key_hash: &str,
        key_name: &str,
        limits: &KeyLimits,
        now_ms: i64,
    ) -> Result<(), RateLimited>;
    /// Adds a finished request's tokens to the key's window.
    fn add_tokens(&self, key_hash: &str, tokens: u64, now_ms: i64);
}

#[derive(Debug, Default, Clone, Copy)]
struct Window {
    start: i64,
    requests: u64,
    tokens: u64,
}

impl Window {
    fn roll(&mut self, now_ms: i64) {
        let start = now_ms - now_ms.rem_euclid(WINDOW_MS);
        if start != self.start {
            *self = Window {
                start,
                ..Window::default()
            };
        }
    }
}

/// The in-process limiter: one window per key behind a mutex held for a few additions.
#[derive(Debug, Default)]
pub struct LocalRateLimiter {
    windows: Mutex<HashMap<String, Window>>,
}

impl LocalRateLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, key: &str, now_ms: i64, f: impl FnOnce(&mut Window) -> T) -> T {
        let mut map = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let w = match map.get_mut(key) {
            Some(w) => w,
            None => map.entry(key.to_owned()).or_default(),
        };
        w.roll(now_ms);
        f(w)
    }
}

/// Which limit a window at `requests` and `tokens` breaks, if any.
pub(crate) fn over(limits: &KeyLimits, requests: u64, tokens: u64) -> Option<(&'static str, u64)> {
    if let Some(rpm) = limits.rpm.map(u64::from).filter(|&l| requests >= l) {
        return Some(("rpm", rpm));
    }
    limits.tpm.filter(|&l| tokens >= l).map(|l| ("tpm", l))
}

impl RateLimiter for LocalRateLimiter {
    fn acquire(
        &self,
        key_hash: &str,
        key_name: &str,
        limits: &KeyLimits,
        now_ms: i64,
    ) -> Result<(), RateLimited> {
        if limits.rpm.is_none() && limits.tpm.is_none() {
            return Ok(());
        }
        self.with(key_hash, now_ms, |w| {
            if let Some((kind, limit)) = over(limits, w.requests, w.tokens) {
                let reset_at_ms = w.start + WINDOW_MS;
                return Err(RateLimited {
                    key_name: key_name.to_owned(),
                    limit_kind: kind,
                    limit,
                    reset_in_ms: reset_at_ms - now_ms,
                    reset_at_ms,
                });
            }
            w.requests += 1;
            Ok(())
        })
    }

    fn add_tokens(&self, key_hash: &str, tokens: u64, now_ms: i64) {
        if tokens > 0 {
            self.with(key_hash, now_ms, |w| w.tokens += tokens);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpm_and_tpm_in_fixed_windows() {
        let l = LocalRateLimiter::new();
        let limits = KeyLimits {
            rpm: Some(2),
            tpm: Some(100),
            models: Vec::new(),
        };
        let t0 = 10 * WINDOW_MS + 1_000;
        assert!(l.acquire("k", "team", &limits, t0).is_ok());
        assert!(l.acquire("k", "team", &limits, t0).is_ok());
        let e = l.acquire("k", "team", &limits, t0 + 500).unwrap_err();
        assert_eq!((e.limit_kind, e.limit, e.reset_in_ms), ("rpm", 2, 58_500));
        assert_eq!(e.retry_after_secs(), 59);
        assert!(e.to_string().contains("2 requests per minute"), "{e}");
        // The next minute starts afresh; tokens block once the minute's reach the limit.
        let t1 = t0 + WINDOW_MS;
        assert!(l.acquire("k", "team", &limits, t1).is_ok());
        l.add_tokens("k", 100, t1);
        let e = l.acquire("k", "team", &limits, t1).unwrap_err();
        assert_eq!(e.limit_kind, "tpm");
        assert!(l.acquire("other", "o", &KeyLimits::default(), t1).is_ok());
    }
}
