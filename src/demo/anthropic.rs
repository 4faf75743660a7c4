//! The Anthropic Messages wire format of a simulated answer: a `message` body, the Messages
//! SSE events (`message_start`, `content_block_start`, `ping`, `content_block_delta`…,
//! `content_block_stop`, `message_delta`, `message_stop`), and Anthropic's error object.

use super::event::Event;
use super::reply::Reply;
use bytes::Bytes;
use serde_json::{Value, json};

/// The request's token limit (required by the Messages API).
pub(super) fn max_tokens(body: &Value) -> Option<u64> {
    body.get("max_tokens").and_then(Value::as_u64)
}

fn stop_reason(r: &Reply) -> &'static str {
    if r.truncated {
        "max_tokens"
    } else {
        "end_turn"
    }
}

/// One named SSE event.
fn event(name: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// The whole answer.
pub(super) fn body(r: &Reply) -> Value {
    json!({"id": r.id, "type": "message", "role": "assistant", "model": r.model,
           "content": [{"type": "text", "text": r.text()}],
           "stop_reason": stop_reason(r), "stop_sequence": null,
           "usage": {"input_tokens": r.prompt_tokens, "output_tokens": r.completion_tokens()}})
}

/// The answer as the Messages API streams it.
pub(super) fn events(r: &Reply) -> Vec<Event> {
    let start = json!({"type": "message_start", "message": {
        "id": r.id, "type": "message", "role": "assistant", "content": [], "model": r.model,
        "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": r.prompt_tokens, "output_tokens": 1}}});
    let mut out = vec![
        Event::head(event("message_start", &start)),
        Event::tail(event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": 0,
                    "content_block": {"type": "text", "text": ""}}),
        )),
        Event::tail(event("ping", &json!({"type": "ping"}))),
    ];
    out.extend(r.tokens.iter().map(|t| {
        Event::token(event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": t}}),
        ))
    }));
    out.push(Event::tail(event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": 0}),
    )));
    out.push(Event::tail(event(
        "message_delta",
        &json!({"type": "message_delta",
                "delta": {"stop_reason": stop_reason(r), "stop_sequence": null},
                "usage": {"output_tokens": r.completion_tokens()}}),
    )));
    out.push(Event::tail(event(
        "message_stop",
        &json!({"type": "message_stop"}),
    )));
    out
}

/// Anthropic's error object.
pub(super) fn error(status: u16, message: &str) -> Value {
    let kind = match status {
        401 => "authentication_error",
        400 => "invalid_request_error",
        529 => "overloaded_error",
        _ => "api_error",
    };
    json!({"type": "error", "error": {"type": kind, "message": message}})
}
