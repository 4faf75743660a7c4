//! Choosing a concrete model for one prompt: the pure function the auto-router layer calls.
//!
//! [`AutoRouter::choose`] runs these steps:
//!
//! 1. Keep the candidates whose slug matches one of `allowed_models` (all of them if the list is
//!    empty), then drop those matching any of `excluded_models` (exclusion wins), then drop
//!    those the caller's `eligible` check rejects (context window, tools, provider policy…).
//!    Globs use `*` for any run of characters and match ASCII case-insensitively.
//! 2. If nothing is left, fail with [`NoCandidate`] ("No models match your request and model
//!    restrictions", a 404 at the edge).
//! 3. Score the prompt and turn the score into a rank `u` in `[0, 1]` with the [`Calibration`].
//! 4. Take the strong share `s`: the router's own, or the `cost_tier` band's midpoint
//!    (`low` 0.1, `medium` 0.3, `high` 0.5, `xhigh` 0.7, `max` 0.9; unknown names are ignored).
//! 5. With `T` distinct tiers left, the prompt goes to the top tier if `score ≥ threshold(s)`
//!    (a share `s` of calibration prompts); otherwise the lower `T − 1` tiers split the rest
//!    evenly by rank: tier index `⌊u / (1 − s) · (T − 1)⌋`.
//! 6. Within the tier, the first candidate in configuration order wins (provider routing then
//!    picks the endpoint).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::calibrate::Calibration;
use super::scorer::Scorer;

/// One model the auto router may pick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Model slug, e.g. `openai/gpt-4o-mini`.
    pub slug: String,
    /// Quality/cost tier: 0 is the cheapest; higher is stronger.
    pub tier: u8,
}

impl Candidate {
    /// A candidate in `tier`.
    pub fn new(slug: impl Into<String>, tier: u8) -> Self {
        Self {
            slug: slug.into(),
            tier,
        }
    }
}

/// Per-request options (the `auto-router` plugin).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AutoOptions {
    /// Globs; if non-empty, only matching slugs are considered.
    pub allowed_models: Vec<String>,
    /// Globs; matching slugs are removed after `allowed_models` is applied.
    pub excluded_models: Vec<String>,
    /// `low` | `medium` | `high` | `xhigh` | `max`: overrides the strong share.
    pub cost_tier: Option<String>,
}

/// The decision for one prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// The chosen model.
    pub slug: String,
    /// Its tier.
    pub tier: u8,
    /// The scorer's output for the prompt.
    pub score: f32,
    /// The scorer's name, for logs and the `x-router-scorer` header.
    pub scorer: String,
}

/// No candidate survived the restrictions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NoCandidate;

impl std::fmt::Display for NoCandidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("No models match your request and model restrictions")
    }
}

impl std::error::Error for NoCandidate {}

/// Strong share for a `cost_tier` name: the midpoint of OpenRouter's cost-percentile band.
pub fn cost_tier_share(name: &str) -> Option<f32> {
    match name.to_ascii_lowercase().as_str() {
        "low" => Some(0.1),
        "medium" => Some(0.3),
        "high" => Some(0.5),
        "xhigh" => Some(0.7),
        "max" => Some(0.9),
        _ => None,
    }
}

/// `*`-glob match (any run of characters, including none), ASCII case-insensitive.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi].eq_ignore_ascii_case(&t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Picks a model per prompt from tiered candidates.
#[derive(Debug, Clone)]
pub struct AutoRouter {
    /// Candidates in preference order.
    pub candidates: Vec<Candidate>,
    /// Difficulty scorer.
    pub scorer: Arc<dyn Scorer>,
    /// The scorer's calibration (score quantiles on its training data).
    pub calibration: Calibration,
    /// Default share of calls for the top tier, in `[0, 1]`.
    pub strong_share: f32,
}

impl AutoRouter {
    /// A router over `candidates` with the [default scorer](super::scorer::default_scorer)
    /// and a strong share of 0.3.
    pub fn with_default_scorer(candidates: Vec<Candidate>) -> Self {
        let (scorer, calibration) = super::scorer::default_scorer();
        Self {
            candidates,
            scorer,
            calibration,
            strong_share: 0.3,
        }
    }

    /// Chooses a model for `prompt` (see the module docs for the steps).
    pub fn choose(
        &self,
        prompt: &str,
        opts: &AutoOptions,
        eligible: &dyn Fn(&str) -> bool,
    ) -> Result<Choice, NoCandidate> {
        let left: Vec<&Candidate> = self
            .candidates
            .iter()
            .filter(|c| {
                opts.allowed_models.is_empty()
                    || opts.allowed_models.iter().any(|g| glob_match(g, &c.slug))
            })
            .filter(|c| !opts.excluded_models.iter().any(|g| glob_match(g, &c.slug)))
            .filter(|c| eligible(&c.slug))
            .collect();
        let mut tiers: Vec<u8> = left.iter().map(|c| c.tier).collect();
        tiers.sort_unstable();
        tiers.dedup();
        let Some(&top) = tiers.last() else {
            return Err(NoCandidate);
        };
        let score = self.scorer.score(prompt);
        let share = opts
            .cost_tier
            .as_deref()
            .and_then(cost_tier_share)
            .unwrap_or(self.strong_share)
            .clamp(0.0, 1.0);
        let tier = if tiers.len() == 1 || score >= self.calibration.threshold(share) {
            top
        } else {
            let lower = tiers.len() - 1;
            let u = self.calibration.rank(score) / (1.0 - share).max(f32::EPSILON);
            tiers[((u * lower as f32) as usize).min(lower - 1)]
        };
        let pick = left.iter().find(|c| c.tier == tier).ok_or(NoCandidate)?;
        Ok(Choice {
            slug: pick.slug.clone(),
            tier,
            score,
            scorer: self.scorer.name().to_owned(),
        })
    }

    /// The first candidate of the next tier above `tier`, for one-step escalation after the
    /// chosen model is exhausted. Never returns a tier at or below `tier`.
    pub fn escalate(&self, tier: u8) -> Option<&str> {
        let next = self
            .candidates
            .iter()
            .map(|c| c.tier)
            .filter(|&t| t > tier)
            .min()?;
        self.candidates
            .iter()
            .find(|c| c.tier == next)
            .map(|c| c.slug.as_str())
    }
}

/// Conversation stickiness: session key → chosen slug, forgotten after an idle TTL.
///
/// Bounded: when full, expired entries are dropped first, then the least recently used one.
#[derive(Debug)]
pub struct Sticky {
    ttl: Duration,
    capacity: usize,
    map: Mutex<HashMap<u64, (String, Instant)>>,
}

impl Default for Sticky {
    /// 10-minute idle TTL, 10,000 conversations.
    fn default() -> Self {
        Self::new(Duration::from_secs(600), 10_000)
    }
}

impl Sticky {
    /// A map forgetting entries idle for `ttl`, holding at most `capacity` (≥ 1) of them.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity: capacity.max(1),
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The key for a conversation: its session id if given, else a hash of its first message.
    /// Callers that serve several tenants should prefix either with the API key's id.
    pub fn key(session_id: Option<&str>, first_message: &str) -> u64 {
        // FNV-1a: stable across processes and releases, unlike `DefaultHasher`.
        let (tag, text) = match session_id {
            Some(s) => (b's', s),
            None => (b'm', first_message),
        };
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in std::iter::once(tag).chain(text.bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    }

    /// The slug remembered for `key`, refreshing its idle timer (now).
    pub fn get(&self, key: u64) -> Option<String> {
        self.get_at(key, Instant::now())
    }

    /// [`Self::get`] at a given instant (for tests).
    pub fn get_at(&self, key: u64, now: Instant) -> Option<String> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(&key) {
            Some((slug, seen)) if now.saturating_duration_since(*seen) < self.ttl => {
                *seen = now;
                Some(slug.clone())
            }
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Remembers `slug` for `key` (now).
    pub fn insert(&self, key: u64, slug: &str) {
        self.insert_at(key, slug, Instant::now());
    }

    /// [`Self::insert`] at a given instant (for tests).
    pub fn insert_at(&self, key: u64, slug: &str, now: Instant) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.capacity && !map.contains_key(&key) {
            let ttl = self.ttl;
            map.retain(|_, (_, seen)| now.saturating_duration_since(*seen) < ttl);
            if map.len() >= self.capacity {
                let oldest = map
                    .iter()
                    .min_by_key(|(_, (_, seen))| *seen)
                    .map(|(k, _)| *k);
                if let Some(k) = oldest {
                    map.remove(&k);
                }
            }
        }
        map.insert(key, (slug.to_owned(), now));
    }

    /// Number of entries held (expired ones included until touched).
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
