//! The request span and its trace id.
//!
//! Every request gets one `tracing` span, `gen_ai.request`, named and filled after the
//! OpenTelemetry GenAI semantic conventions (`gen_ai.request.model`, `gen_ai.response.model`,
//! `gen_ai.provider.name`, `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`), plus the
//! gateway's own `switchyard.*` fields (attempts, outcome, ttft, cost). The fallback layer opens
//! one child span per attempt (`gen_ai.attempt`). The span stays open until the response's last
//! byte, so a stream's span covers the stream.
//!
//! The trace id the client sees in [`TRACE_ID_HEADER`] is the span's OpenTelemetry trace id when
//! spans are exported (feature `otel`), else the incoming `traceparent`'s, else a fresh random
//! one: the same id is in the request log either way, so a log line and a trace meet.

use super::RequestSummary;
use http::HeaderMap;
use rand::RngCore;
use std::sync::Arc;
use tracing::Span;
use tracing::field::Empty;

/// The response header carrying the request's trace id (32 hex digits).
pub const TRACE_ID_HEADER: &str = "x-switchyard-trace-id";

/// A W3C `traceparent` header's parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    /// 32 lowercase hex digits, not all zero.
    pub trace_id: String,
    /// 16 lowercase hex digits, not all zero.
    pub parent_id: String,
    /// The sampled flag.
    pub sampled: bool,
}

impl TraceParent {
    /// Parses a version-00 `traceparent` (`00-<trace id>-<parent id>-<flags>`); `None` for
    /// anything else, as the W3C recommendation says (a broken header starts a new trace).
    pub fn parse(value: &str) -> Option<TraceParent> {
        let mut parts = value.trim().split('-');
        let (version, trace_id, parent_id, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |s: &str, len: usize| {
            s.len() == len
                && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                && s.bytes().any(|b| b != b'0')
        };
        if version != "00" || parts.next().is_some() || !hex(trace_id, 32) || !hex(parent_id, 16) {
            return None;
        }
        let flags = u8::from_str_radix(flags, 16)
            .ok()
            .filter(|_| flags.len() == 2)?;
        Some(TraceParent {
            trace_id: trace_id.to_owned(),
            parent_id: parent_id.to_owned(),
            sampled: flags & 1 == 1,
        })
    }

    /// The request's `traceparent`, if it has a valid one.
    pub fn from_headers(headers: &HeaderMap) -> Option<TraceParent> {
        TraceParent::parse(headers.get("traceparent")?.to_str().ok()?)
    }
}

/// A fresh random trace id.
fn random_trace_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes[0] |= 1; // never all zero
    hex::encode(bytes)
}

/// Opens the request span (fields left empty are filled by [`record_finish`]) and finds the
/// request's trace id.
pub(super) fn request_span(headers: &HeaderMap, ext: &http::Extensions) -> (Span, Arc<str>) {
    let chat = ext.get::<Arc<crate::context::ChatRequest>>();
    let model = chat.and_then(|c| c.model.as_deref()).unwrap_or_default();
    let operation = match chat.map(|c| c.kind) {
        Some(crate::context::ApiKind::Completions) => "text_completion",
        Some(crate::context::ApiKind::Embeddings) => "embeddings",
        _ => "chat",
    };
    let id = ext
        .get::<crate::context::RequestContext>()
        .map(|c| c.id().shared());
    let span = tracing::info_span!(
        target: "switchyard::request",
        "gen_ai.request",
        otel.name = %format_args!("{operation} {model}"),
        otel.kind = "server",
        otel.status_code = Empty,
        gen_ai.operation.name = operation,
        gen_ai.request.model = model,
        gen_ai.response.id = id.as_deref(),
        gen_ai.response.model = Empty,
        gen_ai.provider.name = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        http.response.status_code = Empty,
        switchyard.key = Empty,
        switchyard.attempts = Empty,
        switchyard.outcome = Empty,
        switchyard.ttft_ms = Empty,
        switchyard.cost_usd = Empty,
        switchyard.streamed = chat.is_some_and(|c| c.stream),
    );
    let parent = TraceParent::from_headers(headers);
    #[cfg(feature = "otel")]
    if let Some(id) = super::otel::adopt(&span, headers) {
        return (span, id.into());
    }
    let id = parent.map_or_else(random_trace_id, |p| p.trace_id);
    (span, id.into())
}

/// A count as a span value: integers are recorded as `i64`, which OpenTelemetry exports as
/// integers (a `u64` would arrive as text).
fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Fills the request span's outcome fields from the finished request.
pub(super) fn record_finish(span: &Span, s: &RequestSummary) {
    if let Some(model) = &s.model {
        span.record("gen_ai.response.model", &**model);
    }
    if let Some(provider) = &s.provider {
        span.record("gen_ai.provider.name", &**provider);
    }
    if let Some(key) = &s.key {
        span.record("switchyard.key", key.as_str());
    }
    span.record("gen_ai.usage.input_tokens", int(s.input_tokens));
    span.record("gen_ai.usage.output_tokens", int(s.output_tokens));
    span.record("http.response.status_code", i64::from(s.status));
    span.record("switchyard.attempts", int(s.attempts.len() as u64));
    span.record("switchyard.outcome", outcome_str(s));
    if let Some(ttft) = s.ttft_ms {
        span.record("switchyard.ttft_ms", int(ttft));
    }
    span.record("switchyard.cost_usd", s.cost_usd);
    if s.outcome == super::Outcome::Error {
        span.record("otel.status_code", "ERROR");
    }
}

fn outcome_str(s: &RequestSummary) -> &'static str {
    match s.outcome {
        super::Outcome::Ok => "ok",
        super::Outcome::Error => "error",
        super::Outcome::Cancelled => "cancelled",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_parses_only_the_w3c_shape() {
        let tp = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .expect("valid");
        assert_eq!(tp.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(tp.parent_id, "00f067aa0ba902b7");
        assert!(tp.sampled);
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn random_ids_are_32_hex_digits() {
        let a = random_trace_id();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, random_trace_id());
    }
}
