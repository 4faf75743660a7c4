//! What each served generation adds to the registry, from its ledger record: time to first
//! token and total time by model and provider, tokens and spend by model and key label, and the
//! generations a fallback served.
//!
//! Fed by the meter's [`on_record`](crate::meter::MeterLayer::on_record) hook, so nothing here
//! needs a layer of its own: the record already holds every figure, measured where it is
//! exact (time to first token at the first content event, not at the response headers).

use super::labeled::Labeled;
use super::{escape_label_value, header};
use crate::ledger::GenerationRecord;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Upper bounds of the latency buckets in milliseconds, with their `le` label as seconds:
/// from a fast first token to a long reasoning answer.
const LATENCY_BOUNDS: [(u64, &str); 12] = [
    (50, "0.05"),
    (100, "0.1"),
    (250, "0.25"),
    (500, "0.5"),
    (1_000, "1"),
    (2_500, "2.5"),
    (5_000, "5"),
    (10_000, "10"),
    (20_000, "20"),
    (30_000, "30"),
    (60_000, "60"),
    (120_000, "120"),
];

/// The label a generation paid by no key is counted under.
pub(super) const NO_KEY: &str = "";

/// One latency histogram: per-bucket counts (not cumulative), the last past every bound.
#[derive(Debug)]
struct Histogram {
    buckets: [AtomicU64; LATENCY_BOUNDS.len() + 1],
    sum_ms: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_ms: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    fn observe(&self, ms: u64) {
        let bucket = LATENCY_BOUNDS
            .iter()
            .position(|&(bound, _)| ms <= bound)
            .unwrap_or(LATENCY_BOUNDS.len());
        self.buckets[bucket].fetch_add(1, Relaxed);
        self.sum_ms.fetch_add(ms, Relaxed);
    }
}

/// The series of one model at one provider.
#[derive(Debug, Default)]
struct ByEndpoint {
    ttft: Histogram,
    total: Histogram,
    fallbacks: AtomicU64,
}

/// The series of one model paid by one key.
#[derive(Debug, Default)]
struct ByKey {
    input_tokens: AtomicU64,
    output_tokens: AtomicU64,
    cost_picodollars: AtomicU64,
}

/// The generation families of the registry.
#[derive(Debug, Default)]
pub(super) struct GenerationMetrics {
    by_endpoint: Labeled<ByEndpoint>,
    by_key: Labeled<ByKey>,
}

impl GenerationMetrics {
    pub(super) fn record(&self, r: &GenerationRecord) {
        let total_ms = r.latency_ms.saturating_add(r.generation_time_ms);
        self.by_endpoint.with(&r.model, &r.provider_slug, |s| {
            s.ttft.observe(r.ttft_ms);
            s.total.observe(total_ms);
            if r.attempts.len() > 1 {
                s.fallbacks.fetch_add(1, Relaxed);
            }
        });
        let key = r.label.as_deref().unwrap_or(NO_KEY);
        self.by_key.with(&r.model, key, |s| {
            s.input_tokens.fetch_add(r.tokens_prompt, Relaxed);
            s.output_tokens.fetch_add(r.tokens_completion, Relaxed);
            let cost = u64::try_from(r.total_cost).unwrap_or(0);
            s.cost_picodollars.fetch_add(cost, Relaxed);
        });
    }

    pub(super) fn render(&self, out: &mut String) {
        for (name, help, pick) in [
            (
                "switchyard_ttft_seconds",
                "Time from the request's arrival to the first content token (a JSON answer: to \
                 the whole answer), by model and provider.",
                (|s: &ByEndpoint| &s.ttft) as fn(&ByEndpoint) -> &Histogram,
            ),
            (
                "switchyard_request_duration_seconds",
                "Time from the request's arrival to the last byte of a served generation, by \
                 model and provider.",
                |s: &ByEndpoint| &s.total,
            ),
        ] {
            header(out, name, "histogram", help);
            self.by_endpoint.each_sorted(|model, provider, s| {
                render_histogram(out, name, model, provider, pick(s));
            });
        }
        const FALLBACKS: &str = "switchyard_fallbacks_total";
        header(
            out,
            FALLBACKS,
            "counter",
            "Generations served after an earlier attempt failed, by model and the provider that \
             served.",
        );
        self.by_endpoint.each_sorted(|model, provider, s| {
            series(out, FALLBACKS, &[("model", model), ("provider", provider)]);
            let _ = writeln!(out, " {}", s.fallbacks.load(Relaxed));
        });
        const TOKENS: &str = "switchyard_tokens_total";
        header(
            out,
            TOKENS,
            "counter",
            "Tokens of served generations by model, key label (empty: no key) and direction.",
        );
        self.by_key.each_sorted(|model, key, s| {
            for (kind, n) in [("input", &s.input_tokens), ("output", &s.output_tokens)] {
                series(
                    out,
                    TOKENS,
                    &[("model", model), ("key", key), ("kind", kind)],
                );
                let _ = writeln!(out, " {}", n.load(Relaxed));
            }
        });
        const COST: &str = "switchyard_cost_usd_total";
        header(
            out,
            COST,
            "counter",
            "What served generations were charged, in USD, by model and key label (empty: no \
             key).",
        );
        self.by_key.each_sorted(|model, key, s| {
            series(out, COST, &[("model", model), ("key", key)]);
            let p = s.cost_picodollars.load(Relaxed);
            let _ = writeln!(
                out,
                " {}.{:012}",
                p / 1_000_000_000_000,
                p % 1_000_000_000_000
            );
        });
    }
}

/// Writes `name{k="v",…}` with the values escaped (no value, no newline).
pub(super) fn series(out: &mut String, name: &str, labels: &[(&str, &str)]) {
    out.push_str(name);
    out.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        escape_label_value(v, out);
        out.push('"');
    }
    out.push('}');
}

fn render_histogram(out: &mut String, name: &str, model: &str, provider: &str, h: &Histogram) {
    let bucket = format!("{name}_bucket");
    let mut cumulative = 0;
    for (i, b) in h.buckets.iter().enumerate() {
        cumulative += b.load(Relaxed);
        let le = LATENCY_BOUNDS.get(i).map_or("+Inf", |&(_, le)| le);
        series(
            out,
            &bucket,
            &[("model", model), ("provider", provider), ("le", le)],
        );
        let _ = writeln!(out, " {cumulative}");
    }
    let labels = [("model", model), ("provider", provider)];
    let sum = h.sum_ms.load(Relaxed);
    series(out, &format!("{name}_sum"), &labels);
    let _ = writeln!(out, " {}.{:03}", sum / 1_000, sum % 1_000);
    series(out, &format!("{name}_count"), &labels);
    let _ = writeln!(out, " {cumulative}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::AttemptRecord;

    fn record(model: &str, provider: &str, label: Option<&str>) -> GenerationRecord {
        GenerationRecord {
            model: model.into(),
            provider_slug: provider.into(),
            label: label.map(str::to_owned),
            tokens_prompt: 10,
            tokens_completion: 4,
            total_cost: 1_500_000_000,
            ttft_ms: 120,
            latency_ms: 100,
            generation_time_ms: 300,
            ..GenerationRecord::default()
        }
    }

    #[test]
    fn bucket_labels_are_their_bounds_in_seconds() {
        for (ms, le) in LATENCY_BOUNDS {
            let secs: f64 = le.parse().unwrap_or_default();
            assert_eq!((secs * 1e3).round() as u64, ms, "{le}");
        }
        assert!(LATENCY_BOUNDS.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn a_generation_lands_in_every_family() {
        let m = GenerationMetrics::default();
        m.record(&record("acme/m", "ok", Some("team-a")));
        let mut fell = record("acme/m", "ok", None);
        fell.attempts = vec![AttemptRecord::default(), AttemptRecord::default()];
        m.record(&fell);
        let mut out = String::new();
        m.render(&mut out);
        for line in [
            r#"switchyard_ttft_seconds_bucket{model="acme/m",provider="ok",le="0.1"} 0"#,
            r#"switchyard_ttft_seconds_bucket{model="acme/m",provider="ok",le="0.25"} 2"#,
            r#"switchyard_ttft_seconds_sum{model="acme/m",provider="ok"} 0.240"#,
            r#"switchyard_request_duration_seconds_bucket{model="acme/m",provider="ok",le="0.25"} 0"#,
            r#"switchyard_request_duration_seconds_bucket{model="acme/m",provider="ok",le="0.5"} 2"#,
            r#"switchyard_request_duration_seconds_count{model="acme/m",provider="ok"} 2"#,
            r#"switchyard_fallbacks_total{model="acme/m",provider="ok"} 1"#,
            r#"switchyard_tokens_total{model="acme/m",key="team-a",kind="input"} 10"#,
            r#"switchyard_tokens_total{model="acme/m",key="",kind="output"} 4"#,
            r#"switchyard_cost_usd_total{model="acme/m",key="team-a"} 0.001500000000"#,
        ] {
            assert!(out.lines().any(|l| l == line), "{line} in\n{out}");
        }
    }
}
