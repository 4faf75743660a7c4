//! Health: per-endpoint outcomes in a sliding window, for outage detection (balance), and 429
//! cool-downs that honour `Retry-After` (fallback).
//!
//! **Significant outage** (the rule balance uses): within the last 30 s, at least 2 failed
//! attempts and failures at least half of all attempts. 429s count as failures for this rule
//! but put the endpoint in a cool-down as well: `Retry-After` seconds when given, else 1 s.
//!
//! ```
//! use switchyard::health::{Health, Outcome};
//! let h = Health::new();
//! h.record("m@p", Outcome { success: false, status: 503, retry_after: None });
//! h.record("m@p", Outcome { success: false, status: 503, retry_after: None });
//! assert!(h.is_unstable("m@p"));
//! ```

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

#[derive(Debug, Default)]
struct EndpointHealth {
    events: VecDeque<(Instant, bool)>,
    cooldown_until: Option<Instant>,
}

/// The registry, shared by the layers that read or write it.
#[derive(Debug)]
pub struct Health {
    window: Duration,
    endpoints: Mutex<HashMap<String, EndpointHealth>>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            window: Duration::from_secs(30),
            endpoints: Mutex::new(HashMap::new()),
        }
    }
}

impl Health {
    /// A registry with a 30 s window.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an attempt's outcome for the endpoint `key`.
    pub fn record(&self, key: &str, outcome: Outcome) {
        let now = Instant::now();
        let Ok(mut map) = self.endpoints.lock() else {
            return;
        };
        let h = map.entry(key.to_owned()).or_default();
        h.events.push_back((now, outcome.success));
        while h
            .events
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > self.window)
        {
            h.events.pop_front();
        }
        if outcome.status == 429 {
            h.cooldown_until = Some(now + outcome.retry_after.unwrap_or(Duration::from_secs(1)));
        }
    }

    /// True while the endpoint is in a 429 cool-down.
    pub fn cooling_down(&self, key: &str) -> bool {
        let Ok(map) = self.endpoints.lock() else {
            return false;
        };
        map.get(key)
            .and_then(|h| h.cooldown_until)
            .is_some_and(|t| Instant::now() < t)
    }

    /// True when the endpoint had a significant outage in the window (see the module docs).
    pub fn is_unstable(&self, key: &str) -> bool {
        let now = Instant::now();
        let Ok(map) = self.endpoints.lock() else {
            return false;
        };
        let Some(h) = map.get(key) else { return false };
        let recent = h
            .events
            .iter()
            .filter(|(t, _)| now.duration_since(*t) <= self.window);
        let (mut total, mut failed) = (0u32, 0u32);
        for (_, ok) in recent {
            total += 1;
            failed += u32::from(!ok);
        }
        failed >= 2 && failed * 2 >= total
    }
}
