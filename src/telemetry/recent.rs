//! [`Recent`]: what the dashboard shows, kept in memory — totals since start for every request,
//! and the latest requests (a bounded window) for percentiles, spend over time and the list of
//! generations with their attempt chains.
//!
//! One lock per finished request, held for a few additions and one push; the dashboard's
//! snapshot (a sort of the window's latencies) is computed on its poll, not on the hot path.

use super::{Outcome, RequestSummary};
use crate::catalog::Usd;
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

/// How many of the latest requests the dashboard lists.
const LISTED: usize = 25;
/// The most points a spend-over-time series has.
const POINTS: u64 = 30;

#[derive(Debug, Default)]
struct Count {
    requests: u64,
    errors: u64,
    input_tokens: u64,
    output_tokens: u64,
    cost: i64,
}

impl Count {
    fn add(&mut self, s: &RequestSummary) {
        self.requests += 1;
        self.errors += u64::from(s.outcome == Outcome::Error);
        self.input_tokens += s.input_tokens;
        self.output_tokens += s.output_tokens;
        self.cost += s.cost_picodollars;
    }

    fn json(&self, name: &str, of: u64) -> Value {
        json!({
            "name": name,
            "requests": self.requests,
            "share": share(self.requests, of),
            "errors": self.errors,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": usd(self.cost),
        })
    }
}

#[derive(Debug, Default)]
struct ProviderCount {
    served: u64,
    attempts: u64,
    failed_attempts: u64,
}

#[derive(Debug, Default)]
struct State {
    window: VecDeque<RequestSummary>,
    all: Count,
    cancelled: u64,
    fallbacks: u64,
    providers: BTreeMap<Arc<str>, ProviderCount>,
    models: BTreeMap<Arc<str>, Count>,
    keys: BTreeMap<String, Count>,
}

/// The dashboard's store.
#[derive(Debug)]
pub struct Recent {
    capacity: usize,
    started_ms: i64,
    state: Mutex<State>,
}

impl Recent {
    /// A store keeping the latest `capacity` requests (at least one).
    pub fn new(capacity: usize) -> Recent {
        Recent {
            capacity: capacity.max(1),
            started_ms: crate::ledger::now_ms(),
            state: Mutex::default(),
        }
    }

    /// Adds one finished request.
    pub fn record(&self, s: RequestSummary) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.all.add(&s);
        st.cancelled += u64::from(s.outcome == Outcome::Cancelled);
        st.fallbacks += u64::from(s.fell_back());
        for a in &s.attempts {
            let p = st.providers.entry(a.provider.clone()).or_default();
            p.attempts += 1;
            p.failed_attempts += u64::from(a.status != 200);
        }
        if let Some(p) = &s.provider {
            st.providers.entry(p.clone()).or_default().served += 1;
        }
        let model = s
            .model
            .clone()
            .or_else(|| s.requested_model.as_deref().map(Arc::from))
            .unwrap_or_else(|| Arc::from(""));
        st.models.entry(model).or_default().add(&s);
        st.keys
            .entry(s.key.clone().unwrap_or_default())
            .or_default()
            .add(&s);
        if st.window.len() == self.capacity {
            st.window.pop_front();
        }
        st.window.push_back(s);
    }

    /// The dashboard's data (`GET /dashboard/data`): totals, shares, rates, percentiles, spend
    /// over time and the latest requests.
    pub fn snapshot(&self) -> Value {
        let now = crate::ledger::now_ms();
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let n = st.all.requests;
        let served: u64 = st.providers.values().map(|p| p.served).sum();
        let providers: Vec<Value> = st
            .providers
            .iter()
            .map(|(name, p)| {
                json!({
                    "name": name,
                    "served": p.served,
                    "share": share(p.served, served),
                    "attempts": p.attempts,
                    "failed_attempts": p.failed_attempts,
                })
            })
            .collect();
        let models: Vec<Value> = st.models.iter().map(|(m, c)| c.json(m, n)).collect();
        let keys: Vec<Value> = st.keys.iter().map(|(k, c)| c.json(k, n)).collect();
        let mut ttft: Vec<u64> = st.window.iter().filter_map(|s| s.ttft_ms).collect();
        ttft.sort_unstable();
        let mut tps: Vec<f64> = st
            .window
            .iter()
            .filter_map(RequestSummary::tokens_per_second)
            .collect();
        tps.sort_by(f64::total_cmp);
        let listed: Vec<Value> = st.window.iter().rev().take(LISTED).map(listed).collect();
        json!({
            "now_ms": now,
            "started_ms": self.started_ms,
            "window": st.window.len(),
            "totals": {
                "requests": n,
                "errors": st.all.errors,
                "cancelled": st.cancelled,
                "fallbacks": st.fallbacks,
                "error_rate": share(st.all.errors, n),
                "fallback_rate": share(st.fallbacks, n),
                "input_tokens": st.all.input_tokens,
                "output_tokens": st.all.output_tokens,
                "cost_usd": usd(st.all.cost),
            },
            "latency": {
                "ttft_p50_ms": percentile(&ttft, 50),
                "ttft_p99_ms": percentile(&ttft, 99),
                "tokens_per_s_p50": percentile(&tps, 50),
                "tokens_per_s_p99": percentile(&tps, 99),
            },
            "providers": providers,
            "models": models,
            "keys": keys,
            "spend": spend_series(&st.window, now),
            "recent": listed,
        })
    }
}

fn usd(picodollars: i64) -> f64 {
    Usd::from_picodollars(picodollars).as_f64()
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The nearest-rank percentile of sorted `values`; `None` when empty.
fn percentile<T: Copy>(values: &[T], p: usize) -> Option<T> {
    let last = values.len().checked_sub(1)?;
    values.get((last * p).div_ceil(100)).copied()
}

fn listed(s: &RequestSummary) -> Value {
    json!({
        "id": s.id,
        "at_ms": s.at_ms,
        "api": s.api,
        "key": s.key,
        "model": s.model.as_deref().or(s.requested_model.as_deref()),
        "provider": s.provider,
        "status": s.status,
        "outcome": s.outcome,
        "streamed": s.streamed,
        "input_tokens": s.input_tokens,
        "output_tokens": s.output_tokens,
        "cost_usd": s.cost_usd,
        "ttft_ms": s.ttft_ms,
        "total_ms": s.total_ms,
        "attempts": s.attempts,
    })
}

/// Cumulative spend per key and per model across the window, in at most [`POINTS`] buckets of
/// a whole number of seconds.
fn spend_series(window: &VecDeque<RequestSummary>, now: i64) -> Value {
    let start = window.front().map_or(now, |s| s.at_ms);
    let span = u64::try_from(now - start).unwrap_or(0).max(1);
    let bucket_ms = (span.div_ceil(POINTS).div_ceil(1000) * 1000).max(1000);
    let points = span.div_ceil(bucket_ms).max(1) as usize;
    let bucket_ms = i64::try_from(bucket_ms).unwrap_or(i64::MAX);
    let mut keys: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    let mut models: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for s in window {
        let i = (((s.at_ms - start) / bucket_ms) as usize).min(points - 1);
        let key = s.key.as_deref().unwrap_or_default();
        keys.entry(key).or_insert_with(|| vec![0; points])[i] += s.cost_picodollars;
        if let Some(m) = s.model.as_deref() {
            models.entry(m).or_insert_with(|| vec![0; points])[i] += s.cost_picodollars;
        }
    }
    let cumulative = |series: BTreeMap<&str, Vec<i64>>| -> Value {
        series
            .into_iter()
            .map(|(name, v)| {
                let mut sum = 0;
                let points: Vec<f64> = v
                    .into_iter()
                    .map(|c| {
                        sum += c;
                        usd(sum)
                    })
                    .collect();
                (name.to_owned(), Value::from(points))
            })
            .collect::<serde_json::Map<String, Value>>()
            .into()
    };
    json!({
        "start_ms": start,
        "bucket_ms": bucket_ms,
        "keys": cumulative(keys),
        "models": cumulative(models),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::AttemptSummary;

    fn summary(
        key: Option<&str>,
        provider: &str,
        attempts: &[(&str, u16)],
        cost: i64,
    ) -> RequestSummary {
        RequestSummary {
            at_ms: crate::ledger::now_ms(),
            id: "gen-x".into(),
            trace_id: "t".into(),
            api: "chat",
            key: key.map(str::to_owned),
            requested_model: Some("acme/m".into()),
            model: Some("acme/m".into()),
            provider: Some(provider.into()),
            attempts: attempts
                .iter()
                .map(|&(p, status)| AttemptSummary {
                    provider: p.into(),
                    model: "acme/m".into(),
                    status,
                    latency_ms: 5,
                })
                .collect(),
            status: 200,
            outcome: Outcome::Ok,
            streamed: true,
            input_tokens: 10,
            output_tokens: 20,
            cost_usd: usd(cost),
            cost_picodollars: cost,
            ttft_ms: Some(100),
            total_ms: 300,
        }
    }

    #[test]
    fn totals_shares_and_rates_add_up() {
        let r = Recent::new(2);
        r.record(summary(Some("a"), "ok", &[("ok", 200)], 1_000_000));
        r.record(summary(
            Some("a"),
            "ok",
            &[("flaky", 503), ("ok", 200)],
            2_000_000,
        ));
        r.record(summary(None, "flaky", &[("flaky", 200)], 3_000_000));
        let v = r.snapshot();
        assert_eq!(v["totals"]["requests"], 3);
        assert_eq!(v["totals"]["fallbacks"], 1);
        assert_eq!(v["window"], 2, "the window keeps the latest two");
        assert_eq!(v["recent"].as_array().map(Vec::len), Some(2));
        let flaky = &v["providers"][0];
        assert_eq!(flaky["name"], "flaky");
        assert_eq!(flaky["attempts"], 2);
        assert_eq!(flaky["failed_attempts"], 1);
        assert_eq!(flaky["served"], 1);
        assert!((flaky["share"].as_f64().unwrap_or_default() - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(v["keys"][1]["name"], "a");
        assert_eq!(v["keys"][1]["cost_usd"], usd(3_000_000));
        assert_eq!(v["latency"]["ttft_p50_ms"], 100);
        assert_eq!(v["latency"]["tokens_per_s_p50"], 100.0);
        let spend = &v["spend"]["keys"]["a"];
        assert_eq!(
            spend.as_array().and_then(|p| p.last()),
            Some(&json!(usd(2_000_000)))
        );
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), Some(51));
        assert_eq!(percentile(&v, 99), Some(100));
        assert_eq!(percentile(&v[..1], 99), Some(1));
        assert_eq!(percentile::<u64>(&[], 50), None);
    }
}
