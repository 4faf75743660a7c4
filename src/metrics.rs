//! Metrics: a small registry of counters and histograms, rendered in Prometheus's text
//! exposition format (version 0.0.4) for the gateway's `GET /metrics`.
//!
//! | metric | type | labels | recorded by |
//! |---|---|---|---|
//! | `switchyard_overhead_seconds` | histogram | — | parse, with the [`crate::overhead`] header |
//! | `switchyard_requests_total` | counter | `api`, `status` | parse, once per response |
//! | `switchyard_upstream_attempts_total` | counter | `provider`, `outcome` | fallback, per attempt |
//! | `switchyard_ttft_seconds` | histogram | `model`, `provider` | meter's record hook, per generation |
//! | `switchyard_request_duration_seconds` | histogram | `model`, `provider` | the same |
//! | `switchyard_fallbacks_total` | counter | `model`, `provider` | the same, when attempts failed first |
//! | `switchyard_tokens_total` | counter | `model`, `key`, `kind` | the same (`kind`: input, output) |
//! | `switchyard_cost_usd_total` | counter | `model`, `key` | the same (`key`: the key's label) |
//! | `switchyard_endpoint_outage` | gauge | `model`, `provider` | read from [`Health`](crate::health::Health) on scrape ([`render_endpoint_health`]) |
//! | `switchyard_endpoint_cooling_down` | gauge | `model`, `provider` | the same |
//!
//! Recording sits on every request's path, so it is cheap and never waits:
//!
//! - The histogram and the request counter are fixed tables of atomics. Overheads are whole
//!   microseconds, the header's own value, summed in an integer (no float atomics needed); the
//!   count is the sum of the buckets, so `+Inf` always equals `_count`.
//! - Statuses fall into fixed slots (the codes the gateway actually sends, then `other`): no
//!   map, no lock, and a client cannot create label values.
//! - Providers are the catalogue's, a bounded set known only at run time: a map behind a
//!   read-write lock, written once per provider (its first attempt) and only read after that,
//!   with no allocation.
//!
//! A layer given no [`Metrics`] records nothing and pays one `Option` check.
//!
//! ```
//! use switchyard::context::ApiKind;
//! use switchyard::metrics::Metrics;
//! use std::time::Duration;
//! let m = Metrics::new();
//! m.record_overhead(Duration::from_micros(40));
//! m.record_overhead(Duration::from_micros(3_000));
//! m.record_request(ApiKind::Chat, 200);
//! m.record_request(ApiKind::Chat, 418);
//! m.record_attempt("openai", true);
//! let text = m.render();
//! let lines: Vec<&str> = text.lines().collect();
//! assert!(lines.contains(&"# TYPE switchyard_overhead_seconds histogram"));
//! assert!(lines.contains(&r#"switchyard_overhead_seconds_bucket{le="0.00005"} 1"#));
//! assert!(lines.contains(&r#"switchyard_overhead_seconds_bucket{le="+Inf"} 2"#));
//! assert!(lines.contains(&"switchyard_overhead_seconds_sum 0.003040"));
//! assert!(lines.contains(&r#"switchyard_requests_total{api="chat",status="other"} 1"#));
//! assert!(lines.contains(
//!     &r#"switchyard_upstream_attempts_total{provider="openai",outcome="success"} 1"#
//! ));
//! ```

mod endpoints;
mod generation;
mod labeled;

pub use endpoints::render_endpoint_health;

use crate::context::ApiKind;
use crate::ledger::GenerationRecord;
use crate::ledger::Ingress;
use generation::GenerationMetrics;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds of the overhead buckets in microseconds, with their `le` label as seconds.
/// The gateway's overhead is tens of microseconds when all is well; the upper buckets are there
/// to show the tail (a slow client body, a busy machine).
const OVERHEAD_BOUNDS: [(u64, &str); 11] = [
    (25, "0.000025"),
    (50, "0.00005"),
    (100, "0.0001"),
    (250, "0.00025"),
    (500, "0.0005"),
    (1_000, "0.001"),
    (2_500, "0.0025"),
    (5_000, "0.005"),
    (10_000, "0.01"),
    (25_000, "0.025"),
    (100_000, "0.1"),
];

/// The statuses counted on their own; any other falls into the last slot, `other`.
const STATUSES: [u16; 13] = [
    200, 400, 401, 402, 403, 404, 408, 413, 429, 500, 502, 503, 504,
];
const STATUS_SLOTS: usize = STATUSES.len() + 1;
/// The `api` label of each row of the request table, in [`api_slot`]'s order.
const APIS: [&str; 5] = ["chat", "completions", "embeddings", "messages", "responses"];

/// One provider's attempts: successes and failures.
#[derive(Debug, Default)]
struct AttemptCounts {
    success: AtomicU64,
    failure: AtomicU64,
}

/// Providers are configuration slugs, hashed on every attempt: a fast hash, as in
/// [`crate::health`] (no flood to resist in keys the configuration chose).
type ProviderMap = HashMap<Box<str>, AttemptCounts, foldhash::fast::RandomState>;

/// The registry, shared (in an `Arc`) by the layers that record and the endpoint that renders.
#[derive(Debug)]
pub struct Metrics {
    /// Count per bucket (not cumulative), the last one past every bound (`+Inf`).
    overhead_buckets: [AtomicU64; OVERHEAD_BOUNDS.len() + 1],
    overhead_sum_us: AtomicU64,
    requests: [[AtomicU64; STATUS_SLOTS]; APIS.len()],
    attempts: RwLock<ProviderMap>,
    generations: GenerationMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            overhead_buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            overhead_sum_us: AtomicU64::new(0),
            requests: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            attempts: RwLock::default(),
            generations: GenerationMetrics::default(),
        }
    }
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one response's overhead, counted in the whole microseconds the
    /// [`crate::overhead::OVERHEAD_HEADER`] carries.
    pub fn record_overhead(&self, overhead: Duration) {
        let us = crate::overhead::whole_micros(overhead);
        // `le` is inclusive: a value equal to a bound belongs to that bound's bucket.
        let bucket = OVERHEAD_BOUNDS
            .iter()
            .position(|&(bound, _)| us <= bound)
            .unwrap_or(OVERHEAD_BOUNDS.len());
        self.overhead_buckets[bucket].fetch_add(1, Relaxed);
        self.overhead_sum_us.fetch_add(us, Relaxed);
    }

    /// Records one completion response by its API and the status of its headers.
    pub fn record_request(&self, api: ApiKind, status: u16) {
        self.requests[api_slot(api)][status_slot(status)].fetch_add(1, Relaxed);
    }

    /// As [`Metrics::record_request`], for a request that came in through a client API other
    /// than OpenAI's (`Ingress::Messages`, `Ingress::Responses`): counted under that API
    /// (`api="messages"`, `api="responses"`), not under the chat request it became.
    pub fn record_request_from(&self, ingress: Option<Ingress>, api: ApiKind, status: u16) {
        let slot = match ingress {
            Some(Ingress::Messages) => 3,
            Some(Ingress::Responses) => 4,
            _ => api_slot(api),
        };
        self.requests[slot][status_slot(status)].fetch_add(1, Relaxed);
    }

    /// Records one upstream attempt of `provider` (its slug).
    pub fn record_attempt(&self, provider: &str, success: bool) {
        let bump = |c: &AttemptCounts| {
            let counter = if success { &c.success } else { &c.failure };
            counter.fetch_add(1, Relaxed);
        };
        // A poisoned lock still guards valid counters: nothing panics while holding it
        // half-way through an update.
        if let Some(c) = self
            .attempts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(provider)
        {
            return bump(c);
        }
        let mut map = self.attempts.write().unwrap_or_else(|e| e.into_inner());
        bump(map.entry(provider.into()).or_default());
    }

    /// Records one served generation (the meter's [`on_record`](crate::meter::MeterLayer::on_record)
    /// hook): its time to first token and total time, tokens, cost, and whether a fallback
    /// served it. The key is counted by its label, never by its secret or hash.
    pub fn record_generation(&self, record: &GenerationRecord) {
        self.generations.record(record);
    }

    /// The registry in Prometheus's text format ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        self.render_overhead(&mut out);
        self.render_requests(&mut out);
        self.render_attempts(&mut out);
        self.generations.render(&mut out);
        out
    }

    fn render_overhead(&self, out: &mut String) {
        const NAME: &str = "switchyard_overhead_seconds";
        header(
            out,
            NAME,
            "histogram",
            "Time a completion response spent in the gateway itself, upstream waits excluded \
             (the x-switchyard-overhead-us header).",
        );
        let mut cumulative = 0;
        for (i, bucket) in self.overhead_buckets.iter().enumerate() {
            cumulative += bucket.load(Relaxed);
            let le = OVERHEAD_BOUNDS.get(i).map_or("+Inf", |&(_, le)| le);
            let _ = writeln!(out, "{NAME}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let sum = self.overhead_sum_us.load(Relaxed);
        let (secs, us) = (sum / 1_000_000, sum % 1_000_000);
        let _ = writeln!(out, "{NAME}_sum {secs}.{us:06}");
        let _ = writeln!(out, "{NAME}_count {cumulative}");
    }

    fn render_requests(&self, out: &mut String) {
        const NAME: &str = "switchyard_requests_total";
        header(
            out,
            NAME,
            "counter",
            "Completion requests by client API and the status of the response headers.",
        );
        for (row, api) in self.requests.iter().zip(APIS) {
            for (slot, counter) in row.iter().enumerate() {
                // Only statuses seen: a counter once shown never goes back to hidden.
                let n = counter.load(Relaxed);
                if n == 0 {
                    continue;
                }
                let status = STATUSES
                    .get(slot)
                    .map_or(Status::Other, |&s| Status::Code(s));
                let _ = writeln!(out, "{NAME}{{api=\"{api}\",status=\"{status}\"}} {n}");
            }
        }
    }

    fn render_attempts(&self, out: &mut String) {
        const NAME: &str = "switchyard_upstream_attempts_total";
        header(
            out,
            NAME,
            "counter",
            "Upstream attempts by provider and outcome (a failure moves on to the next candidate \
             or ends the request).",
        );
        let map = self.attempts.read().unwrap_or_else(|e| e.into_inner());
        // Sorted, so consecutive scrapes list the providers in the same order.
        let mut providers: Vec<(&str, &AttemptCounts)> =
            map.iter().map(|(p, c)| (&**p, c)).collect();
        providers.sort_unstable_by_key(|&(p, _)| p);
        for (provider, counts) in providers {
            for (outcome, counter) in [("success", &counts.success), ("failure", &counts.failure)] {
                out.push_str(NAME);
                out.push_str("{provider=\"");
                escape_label_value(provider, out);
                let _ = writeln!(out, "\",outcome=\"{outcome}\"}} {}", counter.load(Relaxed));
            }
        }
    }
}

/// A status label: one of [`STATUSES`] or `other`.
enum Status {
    Code(u16),
    Other,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Code(c) => write!(f, "{c}"),
            Status::Other => f.write_str("other"),
        }
    }
}

fn api_slot(api: ApiKind) -> usize {
    match api {
        ApiKind::Chat => 0,
        ApiKind::Completions => 1,
        ApiKind::Embeddings => 2,
    }
}

/// The slot of `status` in a row of the request table: its index in [`STATUSES`], else the
/// last (`other`).
fn status_slot(status: u16) -> usize {
    STATUSES
        .iter()
        .position(|&s| s == status)
        .unwrap_or(STATUSES.len())
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Appends `value` escaped as the text format wants inside a label's quotes: backslash,
/// double quote and line feed.
fn escape_label_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(m: &Metrics) -> Vec<String> {
        m.render().lines().map(str::to_owned).collect()
    }

    fn has(m: &Metrics, line: &str) -> bool {
        lines(m).iter().any(|l| l == line)
    }

    fn bucket(m: &Metrics, le: &str) -> u64 {
        let prefix = format!("switchyard_overhead_seconds_bucket{{le=\"{le}\"}} ");
        let line = lines(m)
            .into_iter()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no bucket {le}"));
        line[prefix.len()..].parse().unwrap()
    }

    #[test]
    fn bucket_labels_are_their_bounds_in_seconds() {
        for (us, le) in OVERHEAD_BOUNDS {
            let secs: f64 = le.parse().unwrap();
            assert_eq!((secs * 1e6).round() as u64, us, "{le}");
        }
        assert!(OVERHEAD_BOUNDS.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn a_value_equal_to_a_bound_is_in_that_bucket() {
        let m = Metrics::new();
        m.record_overhead(Duration::from_micros(25));
        assert_eq!(bucket(&m, "0.000025"), 1);
        m.record_overhead(Duration::from_micros(26));
        assert_eq!(bucket(&m, "0.000025"), 1);
        assert_eq!(bucket(&m, "0.00005"), 2);
        // Sub-microsecond parts are dropped, as in the header: 100.9 µs is 100 µs.
        m.record_overhead(Duration::from_nanos(100_900));
        assert_eq!(bucket(&m, "0.00005"), 2);
        assert_eq!(bucket(&m, "0.0001"), 3);
        m.record_overhead(Duration::from_micros(100_000));
        assert_eq!(bucket(&m, "0.1"), 4);
        m.record_overhead(Duration::from_micros(100_001));
        assert_eq!(bucket(&m, "0.1"), 4);
        assert_eq!(bucket(&m, "+Inf"), 5);
        assert!(has(&m, "switchyard_overhead_seconds_count 5"));
    }

    #[test]
    fn buckets_are_cumulative_and_the_sum_is_seconds() {
        let m = Metrics::new();
        for us in [0, 10, 300, 7_000, 2_000_000] {
            m.record_overhead(Duration::from_micros(us));
        }
        let got: Vec<u64> = OVERHEAD_BOUNDS
            .iter()
            .map(|(_, le)| bucket(&m, le))
            .chain([bucket(&m, "+Inf")])
            .collect();
        assert_eq!(got, [2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 5]);
        assert!(has(&m, "switchyard_overhead_seconds_sum 2.007310"));
        assert!(has(&m, "switchyard_overhead_seconds_count 5"));
    }

    #[test]
    fn an_empty_registry_renders_every_family_with_zero_buckets() {
        let text = Metrics::new().render();
        for family in [
            "switchyard_overhead_seconds histogram",
            "switchyard_requests_total counter",
            "switchyard_upstream_attempts_total counter",
        ] {
            assert!(text.contains(&format!("# TYPE {family}\n")), "{family}");
        }
        assert!(text.contains("switchyard_overhead_seconds_bucket{le=\"+Inf\"} 0\n"));
        assert!(text.contains("switchyard_overhead_seconds_sum 0.000000\n"));
        assert!(!text.contains("switchyard_requests_total{"));
        assert!(text.ends_with('\n'));
        // Every line is a comment or `name{labels} value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').unwrap();
            value.parse::<f64>().unwrap();
        }
    }

    #[test]
    fn the_status_table_counts_common_codes_apart_and_others_together() {
        for (i, s) in STATUSES.iter().enumerate() {
            assert_eq!(status_slot(*s), i);
        }
        for s in [0, 201, 418, 499, 529, 999] {
            assert_eq!(status_slot(s), STATUSES.len(), "{s}");
        }
        let m = Metrics::new();
        m.record_request(ApiKind::Chat, 200);
        m.record_request(ApiKind::Chat, 200);
        m.record_request(ApiKind::Chat, 404);
        m.record_request(ApiKind::Completions, 529);
        m.record_request(ApiKind::Completions, 418);
        m.record_request(ApiKind::Completions, 504);
        let requests: Vec<String> = lines(&m)
            .into_iter()
            .filter(|l| l.starts_with("switchyard_requests_total{"))
            .collect();
        assert_eq!(
            requests,
            [
                r#"switchyard_requests_total{api="chat",status="200"} 2"#,
                r#"switchyard_requests_total{api="chat",status="404"} 1"#,
                r#"switchyard_requests_total{api="completions",status="504"} 1"#,
                r#"switchyard_requests_total{api="completions",status="other"} 2"#,
            ]
        );
    }

    #[test]
    fn attempts_are_per_provider_sorted_with_both_outcomes() {
        let m = Metrics::new();
        m.record_attempt("zeta", false);
        m.record_attempt("alpha", true);
        m.record_attempt("zeta", true);
        m.record_attempt("zeta", false);
        let attempts: Vec<String> = lines(&m)
            .into_iter()
            .filter(|l| l.starts_with("switchyard_upstream_attempts_total{"))
            .collect();
        assert_eq!(
            attempts,
            [
                r#"switchyard_upstream_attempts_total{provider="alpha",outcome="success"} 1"#,
                r#"switchyard_upstream_attempts_total{provider="alpha",outcome="failure"} 0"#,
                r#"switchyard_upstream_attempts_total{provider="zeta",outcome="success"} 1"#,
                r#"switchyard_upstream_attempts_total{provider="zeta",outcome="failure"} 2"#,
            ]
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        escape_label_value("a\\b\"c\nd é", &mut out);
        assert_eq!(out, r#"a\\b\"c\nd é"#);
        let m = Metrics::new();
        m.record_attempt("odd\"slug\\\n", true);
        assert!(has(
            &m,
            r#"switchyard_upstream_attempts_total{provider="odd\"slug\\\n",outcome="success"} 1"#
        ));
    }

    #[test]
    fn concurrent_recording_loses_nothing() {
        let m = std::sync::Arc::new(Metrics::new());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for i in 0..1_000u64 {
                        m.record_overhead(Duration::from_micros(i));
                        m.record_request(ApiKind::Chat, 200);
                        m.record_attempt(if t % 2 == 0 { "even" } else { "odd" }, i % 2 == 0);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(has(&m, "switchyard_overhead_seconds_count 4000"));
        assert!(has(
            &m,
            r#"switchyard_requests_total{api="chat",status="200"} 4000"#
        ));
        assert!(has(
            &m,
            r#"switchyard_upstream_attempts_total{provider="even",outcome="failure"} 1000"#
        ));
    }
}
