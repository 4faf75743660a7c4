//! The Gemini wire format of a simulated answer: a `GenerateContentResponse` body, the
//! `streamGenerateContent?alt=sse` events (each a whole `GenerateContentResponse`, no
//! `[DONE]`), and Google's error object.

use super::event::Event;
use super::reply::Reply;
use crate::body::sse_event;
use serde_json::{Value, json};

/// The request's token limit.
pub(super) fn max_tokens(body: &Value) -> Option<u64> {
    body.pointer("/generationConfig/maxOutputTokens")
        .and_then(Value::as_u64)
}

fn finish(r: &Reply) -> &'static str {
    if r.truncated { "MAX_TOKENS" } else { "STOP" }
}

fn response(r: &Reply, text: &str, finish: Option<&str>, completion: Option<u64>) -> Value {
    let mut candidate = json!({"content": {"parts": [{"text": text}], "role": "model"},
                               "index": 0});
    if let Some(f) = finish {
        candidate["finishReason"] = json!(f);
    }
    let mut usage = json!({"promptTokenCount": r.prompt_tokens,
                           "totalTokenCount": r.prompt_tokens + completion.unwrap_or(0)});
    if let Some(c) = completion {
        usage["candidatesTokenCount"] = json!(c);
    }
    json!({"candidates": [candidate], "usageMetadata": usage, "modelVersion": r.model,
           "responseId": r.id})
}

/// The whole answer.
pub(super) fn body(r: &Reply) -> Value {
    response(r, &r.text(), Some(finish(r)), Some(r.completion_tokens()))
}

/// The answer as `streamGenerateContent?alt=sse` sends it: one response per token, the last
/// with the finish reason and the full usage.
pub(super) fn events(r: &Reply) -> Vec<Event> {
    let last = r.tokens.len().saturating_sub(1);
    r.tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let data = if i == last {
                response(r, t, Some(finish(r)), Some(r.completion_tokens()))
            } else {
                response(r, t, None, None)
            };
            if i == 0 {
                Event::head(sse_event(&data))
            } else {
                Event::token(sse_event(&data))
            }
        })
        .collect()
}

/// Google's error object.
pub(super) fn error(status: u16, message: &str) -> Value {
    let kind = match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        429 => "RESOURCE_EXHAUSTED",
        _ => "UNAVAILABLE",
    };
    json!({"error": {"code": status, "message": message, "status": kind}})
}
