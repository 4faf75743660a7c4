//! One attempt's accounting, finished when its response ends: price, settle, record.

use super::cost::{Cost, price};
use super::durable::CommitWait;
use super::usage::Usage;
use crate::catalog::Pricing;
use crate::context::{RequestContext, Target};
use crate::keys::period::utc_hhmm;
use crate::ledger::now_ms;
use crate::ledger::{GenerationRecord, MeterSink};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the meter reports, shared by every request's [`Accounting`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Shared {
    pub(crate) sink: Option<Arc<dyn MeterSink>>,
    pub(crate) health: Option<Arc<crate::health::Health>>,
    pub(crate) on_record: Option<OnRecord>,
    pub(crate) prices: Option<crate::meter::Prices>,
    /// Hold the end of each answer until its record is committed, at most this long.
    pub(crate) commit_wait: Option<Duration>,
}

/// A callback given every generation record.
#[derive(Clone)]
pub(crate) struct OnRecord(pub(crate) Arc<dyn Fn(&GenerationRecord) + Send + Sync>);

impl std::ops::Deref for OnRecord {
    type Target = dyn Fn(&GenerationRecord) + Send + Sync;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl std::fmt::Debug for OnRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnRecord(..)")
    }
}

/// Everything needed to finish the accounting of one attempt when its response ends.
#[derive(Debug)]
pub(crate) struct Accounting {
    pub(crate) shared: Arc<Shared>,
    pub(crate) record: GenerationRecord,
    /// The serving endpoint (its prices, its health key): shared with the catalog, not copied.
    /// `None` when the meter runs without one (alone, prices given in code).
    pub(crate) target: Option<Target>,
    /// The prices when there is no target.
    pub(crate) given: Option<Arc<Pricing>>,
    pub(crate) prompt_chars: u64,
    /// The request's context, whose credit hold is settled with the cost.
    pub(crate) ctx: Option<RequestContext>,
    pub(crate) started: Instant,
    pub(crate) attempt_started: Instant,
    pub(crate) first_content: Option<Instant>,
    /// The request's [`Tap`](crate::telemetry::Tap), given a copy of the finished record.
    pub(crate) tap: Option<crate::telemetry::Tap>,
    /// Set by [`finish`](Self::finish) when the end of the answer waits for the record's
    /// commit; whoever releases that end awaits it first.
    pub(crate) commit: Option<CommitWait>,
}

impl Accounting {
    /// Prices `usage`, settles credits, records the generation; returns the cost. Call once: the
    /// record is moved into the sink. The reasons are taken owned: they move into the record
    /// (`native` defaults to `finish_reason`).
    pub(crate) fn finish(
        &mut self,
        usage: &Usage,
        finish_reason: Option<String>,
        native: Option<String>,
        cancelled: bool,
    ) -> Cost {
        let hhmm = utc_hhmm(now_ms());
        let pricing = match (&self.target, &self.given) {
            (Some(t), _) => &t.endpoint().pricing,
            (None, Some(p)) => p,
            // Unreachable by construction (the layer refuses a request it cannot price); a
            // zero price would bill nothing, so this is only for tests built by hand.
            (None, None) => &Pricing::default(),
        };
        let cost = price(usage, pricing, finish_reason.as_deref(), hhmm);
        let r = &mut self.record;
        r.native_finish_reason = native.or_else(|| finish_reason.clone());
        r.finish_reason = finish_reason;
        let finish_reason = r.finish_reason.as_deref();
        r.cancelled = cancelled;
        r.tokens_prompt = usage.prompt_tokens;
        r.tokens_completion = usage.completion_tokens;
        r.native_tokens_cached = usage.cached_tokens;
        r.native_tokens_cache_write = usage.cache_write_tokens;
        r.native_tokens_reasoning = usage.reasoning_tokens;
        r.num_media_prompt = usage.images;
        r.num_search_results = usage.web_search_requests;
        r.total_cost = cost.total.picodollars();
        r.upstream_inference_cost = Some(cost.upstream_inference_cost.picodollars());
        r.usage_estimated = usage.estimated;
        r.generation_time_ms =
            (self.started.elapsed().as_millis() as u64).saturating_sub(r.latency_ms);
        // A stream's first token is its first content event; a JSON answer arrives whole.
        r.ttft_ms = self.first_content.map_or(r.latency_ms, |t| {
            t.saturating_duration_since(self.started).as_millis() as u64
        });
        if let Some(ctx) = self.ctx.take() {
            let tokens = usage.prompt_tokens + usage.completion_tokens;
            ctx.settle_credit_with_tokens(cost.total, tokens);
        }
        if let (Some(health), Some(first), Some(target)) =
            (&self.shared.health, self.first_content, &self.target)
        {
            if !cancelled && finish_reason != Some("error") {
                let ttft = first.duration_since(self.attempt_started);
                health.record_stream(
                    target.key(),
                    ttft,
                    usage.completion_tokens,
                    self.attempt_started.elapsed(),
                );
            }
        }
        if let Some(f) = &self.shared.on_record {
            f(&self.record);
        }
        if let Some(tap) = &self.tap {
            tap.fill(&self.record);
        }
        if let Some(sink) = &self.shared.sink {
            // Finished once per attempt (the stream and the JSON paths guard it): the record
            // moves into the ledger rather than being copied.
            let record = std::mem::take(&mut self.record);
            match self.shared.commit_wait {
                None => sink.record(record),
                Some(bound) => {
                    let id = record.id.clone();
                    self.commit = sink
                        .record_committed(record)
                        .map(|c| CommitWait::new(c, bound, id));
                }
            }
        }
        cost
    }
}
