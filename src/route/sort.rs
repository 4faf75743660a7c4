//! Price, strict sort keys and the soft speed preferences.
//!
//! **Price** of an endpoint for a request is the request's *expected cost* there:
//! `estimated prompt tokens × prompt price + expected completion tokens × completion price +
//! request price`, with conditional prices (long-prompt, time-of-day overrides) and the
//! endpoint's discount applied. Expected completion tokens are the request's `max_tokens`, or
//! [`DEFAULT_COMPLETION_TOKENS`] when it sets none.

use crate::catalog::{Endpoint, Pricing, Usd};
use crate::context::{ChatRequest, Target};
use crate::health::{Health, Metric};
use serde_json::Value;
use std::borrow::Cow;
use std::cell::RefCell;

/// Completion tokens assumed for the expected cost when the request sets no `max_tokens`.
pub const DEFAULT_COMPLETION_TOKENS: u64 = 256;

/// The prices in force for a prompt of `prompt_tokens`, overrides applied (borrowed when the
/// endpoint has none, so the common case allocates nothing).
pub(crate) fn prices(endpoint: &Endpoint, prompt_tokens: u64) -> Cow<'_, Pricing> {
    let p = &endpoint.pricing;
    if p.overrides.is_empty() {
        return Cow::Borrowed(p);
    }
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let hhmm = ((secs / 3600) % 24) * 100 + (secs / 60) % 60;
    Cow::Owned(p.effective(prompt_tokens, hhmm as u16))
}

/// Applies the endpoint's discount.
pub(crate) fn discounted(p: &Pricing, amount: Usd) -> Usd {
    if p.discount_ppm == 0 {
        amount
    } else {
        amount.scale_ppm(1_000_000 - i64::from(p.discount_ppm))
    }
}

/// The request's expected cost on `endpoint` (see the module docs).
pub fn expected_cost(endpoint: &Endpoint, chat: &ChatRequest) -> Usd {
    let prompt_tokens = chat.estimated_prompt_tokens();
    let completion = chat.max_tokens.map_or(DEFAULT_COMPLETION_TOKENS, u64::from);
    let p = prices(endpoint, prompt_tokens);
    let cost = p.prompt * prompt_tokens + p.completion * completion + p.request;
    discounted(&p, cost)
}

/// Calls `f` with the target's [`Target::key`], built in a reused per-thread buffer so the
/// per-endpoint health lookups of a request allocate nothing. `f` must not call `with_key`.
pub(crate) fn with_key<T>(t: &Target, f: impl FnOnce(&str) -> T) -> T {
    thread_local!(static BUF: RefCell<String> = const { RefCell::new(String::new()) });
    BUF.with(|b| {
        let mut b = b.borrow_mut();
        b.clear();
        b.push_str(&t.model.slug);
        b.push('@');
        b.push_str(&t.endpoint().tag);
        f(&b)
    })
}

/// True when `health` says the endpoint had a significant outage.
pub(crate) fn unstable(health: Option<&Health>, t: &Target) -> bool {
    health.is_some_and(|h| with_key(t, |k| h.is_unstable(k)))
}

/// A strict ordering (`provider.sort`, `:nitro`, `:floor`, `:exacto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SortKey {
    /// Cheapest expected cost first.
    Price,
    /// Highest EWMA tokens/second first, unmeasured last.
    Throughput,
    /// Lowest EWMA time to first token first, unmeasured last.
    Latency,
    /// Tool-calling quality first: endpoints supporting `tools` and `response_format`, then
    /// stable before unstable, then cheapest.
    Exacto,
}

impl SortKey {
    pub(crate) fn parse(s: &str) -> Option<SortKey> {
        match s.trim().to_ascii_lowercase().as_str() {
            "price" | "floor" => Some(SortKey::Price),
            "throughput" | "nitro" => Some(SortKey::Throughput),
            "latency" => Some(SortKey::Latency),
            "exacto" => Some(SortKey::Exacto),
            _ => None,
        }
    }
}

/// Sorts `targets` by `key`, stably (ties keep their order).
pub(crate) fn sort_by(
    targets: &mut Vec<Target>,
    key: SortKey,
    chat: &ChatRequest,
    health: Option<&Health>,
) {
    if targets.len() < 2 {
        return;
    }
    let speed = |t: &Target, m: fn(&Health, &str) -> Option<f64>| {
        health.and_then(|h| with_key(t, |k| m(h, k)))
    };
    // (primary, secondary) as f64 pairs, lower first; unknown speed sorts as +inf.
    let mut keyed: Vec<((f64, f64, Usd), Target)> = targets
        .drain(..)
        .map(|t| {
            let cost = expected_cost(t.endpoint(), chat);
            let k = match key {
                SortKey::Price => (0.0, 0.0, cost),
                SortKey::Throughput => (
                    speed(&t, Health::throughput).map_or(f64::INFINITY, |v| -v),
                    0.0,
                    cost,
                ),
                SortKey::Latency => (
                    speed(&t, Health::latency).unwrap_or(f64::INFINITY),
                    0.0,
                    cost,
                ),
                SortKey::Exacto => {
                    let e = t.endpoint();
                    let tools = e.supports("tools") && e.supports("response_format");
                    let unstable = unstable(health, &t);
                    (
                        f64::from(u8::from(!tools)),
                        f64::from(u8::from(unstable)),
                        cost,
                    )
                }
            };
            (k, t)
        })
        .collect();
    keyed.sort_by(|(a, _), (b, _)| {
        a.0.total_cmp(&b.0)
            .then(a.1.total_cmp(&b.1))
            .then(a.2.cmp(&b.2))
    });
    targets.extend(keyed.into_iter().map(|(_, t)| t));
}

/// The default deterministic order: stable endpoints cheapest first, then unstable ones
/// cheapest first.
pub(crate) fn default_order(
    targets: &mut Vec<Target>,
    chat: &ChatRequest,
    health: Option<&Health>,
) {
    // One endpoint (the usual model) has one order: spare the health lookup and the buffer.
    if targets.len() < 2 {
        return;
    }
    let mut keyed: Vec<((bool, Usd), Target)> = targets
        .drain(..)
        .map(|t| {
            let unstable = unstable(health, &t);
            ((unstable, expected_cost(t.endpoint(), chat)), t)
        })
        .collect();
    keyed.sort_by_key(|(k, _)| *k);
    targets.extend(keyed.into_iter().map(|(_, t)| t));
}

/// `preferred_min_throughput` / `preferred_max_latency`: percentile thresholds.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Soft {
    min_throughput: Vec<(f64, f64)>,
    max_latency: Vec<(f64, f64)>,
}

impl Soft {
    pub(crate) fn from_chat(chat: &ChatRequest) -> Soft {
        Soft {
            min_throughput: thresholds(chat.provider.preferred_min_throughput.as_ref()),
            max_latency: thresholds(chat.provider.preferred_max_latency.as_ref()),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.min_throughput.is_empty() && self.max_latency.is_empty()
    }

    /// True when a measured percentile misses a threshold; unmeasured endpoints never miss (so
    /// new endpoints still get traffic).
    fn misses(&self, health: &Health, key: &str) -> bool {
        let low = |&(p, min): &(f64, f64)| {
            health
                .percentile(key, Metric::Throughput, p)
                .is_some_and(|v| v < min)
        };
        let high = |&(p, max): &(f64, f64)| {
            health
                .percentile(key, Metric::Latency, p)
                .is_some_and(|v| v > max)
        };
        self.min_throughput.iter().any(low) || self.max_latency.iter().any(high)
    }

    /// Moves the endpoints that miss a threshold to the end, keeping both parts in order.
    pub(crate) fn apply(&self, seq: &mut Vec<Target>, health: Option<&Health>) {
        let Some(health) = health.filter(|_| !self.is_empty()) else {
            return;
        };
        let mut keyed: Vec<(bool, Target)> = seq
            .drain(..)
            .map(|t| (with_key(&t, |k| self.misses(health, k)), t))
            .collect();
        keyed.sort_by_key(|(miss, _)| *miss);
        seq.extend(keyed.into_iter().map(|(_, t)| t));
    }
}

/// A bare number is p50; an object lists `p50`, `p75`, `p90`, `p99`.
fn thresholds(v: Option<&Value>) -> Vec<(f64, f64)> {
    match v {
        Some(Value::Number(n)) => n.as_f64().map(|x| vec![(50.0, x)]).unwrap_or_default(),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(|x| vec![(50.0, x)])
            .unwrap_or_default(),
        Some(Value::Object(o)) => o
            .iter()
            .filter_map(|(k, v)| {
                let p: f64 = k.strip_prefix('p')?.parse().ok()?;
                let x = v.as_f64().or_else(|| v.as_str()?.trim().parse().ok())?;
                Some((p, x))
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn thresholds_accept_numbers_strings_and_percentile_objects() {
        assert_eq!(thresholds(Some(&json!(50))), [(50.0, 50.0)]);
        assert_eq!(thresholds(Some(&json!("2.5"))), [(50.0, 2.5)]);
        let mut t = thresholds(Some(&json!({"p90": 40, "p50": "60", "bogus": 1})));
        t.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert_eq!(t, [(50.0, 60.0), (90.0, 40.0)]);
        assert!(thresholds(Some(&json!(null))).is_empty());
    }

    #[test]
    fn sort_keys_and_variant_names() {
        assert_eq!(SortKey::parse(" Price "), Some(SortKey::Price));
        assert_eq!(SortKey::parse("nitro"), Some(SortKey::Throughput));
        assert_eq!(SortKey::parse("latency"), Some(SortKey::Latency));
        assert_eq!(SortKey::parse("exacto"), Some(SortKey::Exacto));
        assert_eq!(SortKey::parse("speed"), None);
    }
}
