//! [`RequestSummary`]: one finished request as the request log writes it and the dashboard
//! keeps it — who asked (the key's label, never the key), what was asked and served, every
//! attempt, and what it cost and took.

use super::Served;
use crate::catalog::Usd;
use crate::context::{ApiKind, CallerKey, ChatRequest, RequestContext};
use crate::ledger::Ingress;
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Served to the end.
    Ok,
    /// An error status, or a stream that ended with an error chunk.
    Error,
    /// The client went away first.
    Cancelled,
}

/// One upstream attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptSummary {
    /// Provider slug.
    pub provider: Arc<str>,
    /// Model slug.
    pub model: Arc<str>,
    /// Status the attempt ended with (the gateway's 502/504 for transport failures).
    pub status: u16,
    /// Milliseconds until it was classified (a stream: its first content event).
    pub latency_ms: u64,
}

/// One finished completion request.
#[derive(Debug, Clone, Serialize)]
pub struct RequestSummary {
    /// Unix milliseconds when it arrived.
    pub at_ms: i64,
    /// Its generation id (`gen-…`).
    pub id: Arc<str>,
    /// Its trace id (32 hex digits), as in `x-switchyard-trace-id`.
    pub trace_id: Arc<str>,
    /// The client API: `chat`, `completions`, `messages`, `responses` or `embeddings`.
    pub api: &'static str,
    /// The paying key's label; `None` without a key.
    pub key: Option<String>,
    /// The model the client asked for.
    pub requested_model: Option<String>,
    /// The model served.
    pub model: Option<Arc<str>>,
    /// Slug of the provider that served.
    pub provider: Option<Arc<str>>,
    /// Every upstream attempt in order, the serving one last.
    pub attempts: Vec<AttemptSummary>,
    /// The response's status.
    pub status: u16,
    /// How it ended.
    pub outcome: Outcome,
    /// Served as SSE.
    pub streamed: bool,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// What the key was charged, in USD.
    pub cost_usd: f64,
    /// The same in picodollars, so totals add up exactly.
    #[serde(skip)]
    pub cost_picodollars: i64,
    /// Milliseconds to the first content token; `None` when nothing was served.
    pub ttft_ms: Option<u64>,
    /// Milliseconds from arrival to the response's end.
    pub total_ms: u64,
}

impl RequestSummary {
    /// Whether an attempt failed before the one that served (or before the end).
    pub fn fell_back(&self) -> bool {
        self.attempts.len() > 1
    }

    /// Output tokens per second after the first token, when that can be measured.
    pub fn tokens_per_second(&self) -> Option<f64> {
        let generation_ms = self.total_ms.checked_sub(self.ttft_ms?)?;
        (generation_ms > 0 && self.output_tokens > 0)
            .then(|| self.output_tokens as f64 * 1000.0 / generation_ms as f64)
    }
}

/// What the telemetry layer saw of the request on its way in.
#[derive(Debug, Clone)]
pub(super) struct Arrival {
    pub(super) at_ms: i64,
    pub(super) start: Instant,
    pub(super) ctx: Option<RequestContext>,
    pub(super) chat: Option<Arc<ChatRequest>>,
    pub(super) key: Option<String>,
    pub(super) api: &'static str,
    pub(super) trace_id: Arc<str>,
}

impl Arrival {
    pub(super) fn of(ext: &http::Extensions, trace_id: Arc<str>) -> Arrival {
        let chat = ext.get::<Arc<ChatRequest>>().cloned();
        let api = match (ext.get::<Ingress>(), chat.as_ref().map(|c| c.kind)) {
            (Some(Ingress::Messages), _) => "messages",
            (Some(Ingress::Responses), _) => "responses",
            (_, Some(ApiKind::Embeddings)) => "embeddings",
            (_, Some(ApiKind::Completions)) => "completions",
            _ => "chat",
        };
        Arrival {
            at_ms: crate::ledger::now_ms(),
            start: Instant::now(),
            ctx: ext.get::<RequestContext>().cloned(),
            chat,
            key: ext.get::<CallerKey>().map(|k| k.name.clone()),
            api,
            trace_id,
        }
    }

    /// The summary once the response has ended (`ended`: to its last byte), with the figures
    /// of the served attempt if there was one.
    pub(super) fn finish(self, status: u16, ended: bool, served: Option<Served>) -> RequestSummary {
        let attempts = self.ctx.as_ref().map_or_else(Vec::new, |ctx| {
            ctx.with_attempts(|logged| {
                logged
                    .iter()
                    .map(|a| AttemptSummary {
                        provider: a.provider_slug.clone(),
                        model: a.model.clone(),
                        status: a.status,
                        latency_ms: a.latency_ms,
                    })
                    .collect()
            })
        });
        let outcome = match &served {
            _ if status >= 400 => Outcome::Error,
            Some(s) if s.errored => Outcome::Error,
            Some(s) if s.cancelled => Outcome::Cancelled,
            _ if !ended => Outcome::Cancelled,
            _ => Outcome::Ok,
        };
        let id = match (&served, &self.ctx) {
            (Some(s), _) => s.id.clone(),
            (None, Some(ctx)) => ctx.id().shared(),
            (None, None) => Arc::from(""),
        };
        let requested_model = self.chat.as_ref().and_then(|c| c.model.clone());
        let streamed = self.chat.as_ref().is_some_and(|c| c.stream);
        let total_ms = self.start.elapsed().as_millis() as u64;
        let mut s = RequestSummary {
            at_ms: self.at_ms,
            id,
            trace_id: self.trace_id,
            api: self.api,
            key: self.key,
            requested_model,
            model: None,
            provider: None,
            attempts,
            status,
            outcome,
            streamed,
            input_tokens: 0,
            output_tokens: 0,
            cost_usd: 0.0,
            cost_picodollars: 0,
            ttft_ms: None,
            total_ms,
        };
        if let Some(served) = served {
            s.model = Some(served.model);
            s.provider = Some(served.provider);
            s.input_tokens = served.input_tokens;
            s.output_tokens = served.output_tokens;
            s.cost_picodollars = served.cost_picodollars;
            s.cost_usd = Usd::from_picodollars(served.cost_picodollars).as_f64();
            s.ttft_ms = Some(served.ttft_ms);
        }
        s
    }
}
