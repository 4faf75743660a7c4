//! Anthropic Messages response and error → OpenAI `chat.completion` and gateway errors.

use super::REASONING_FORMAT;
use crate::translate::common::{
    ChunkHead, FinishReason, ProviderError, Usage, assistant_message, choice, completion, count,
    error_type_for_status, now, tool_call,
};
use serde_json::{Value, json};

/// Translates a non-streaming Anthropic Messages body into an OpenAI `chat.completion`.
///
/// `id` and `model` are the upstream's; the gateway rewrites them. An Anthropic error object
/// in the body becomes `Err`, as does a body that is not JSON (502 `provider_unavailable`).
pub fn response(body: &[u8]) -> Result<Value, ProviderError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ProviderError::invalid_body("JSON body", &e, body))?;
    if v.get("type").and_then(Value::as_str) == Some("error") {
        return Err(error(0, body));
    }
    let head = ChunkHead {
        id: v.get("id").and_then(Value::as_str).unwrap_or("").to_owned(),
        model: v
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        created: now(),
    };
    let (mut text, mut reasoning) = (String::new(), String::new());
    let (mut calls, mut details) = (Vec::new(), Vec::new());
    for block in v
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(block["text"].as_str().unwrap_or("")),
            Some("thinking") => {
                let t = block["thinking"].as_str().unwrap_or("");
                reasoning.push_str(t);
                details.push(
                    json!({"type": "reasoning.text", "text": t, "signature": block["signature"],
                                    "format": REASONING_FORMAT, "index": details.len()}),
                );
            }
            Some("redacted_thinking") => {
                details.push(json!({"type": "reasoning.encrypted", "data": block["data"],
                                    "format": REASONING_FORMAT, "index": details.len()}));
            }
            Some("tool_use") => {
                let id = block["id"].as_str().unwrap_or("");
                let name = block["name"].as_str().unwrap_or("");
                calls.push(tool_call(id, name, &block["input"]));
            }
            _ => {}
        }
    }
    let native = v.get("stop_reason").and_then(Value::as_str).unwrap_or("");
    let mut usage = usage(v.get("usage").unwrap_or(&Value::Null));
    usage.reasoning = reasoning_tokens(reasoning.len(), usage.completion);
    let message = assistant_message(&text, calls, &reasoning, details);
    let choice = choice(0, message, (finish_reason(native), native));
    Ok(completion(&head, vec![choice], usage))
}

/// Anthropic does not count thinking tokens separately: estimate ~4 bytes a token, never more
/// than the output.
pub(crate) fn reasoning_tokens(thinking_bytes: usize, output_tokens: u64) -> u64 {
    (thinking_bytes as u64).div_ceil(4).min(output_tokens)
}

/// An Anthropic `stop_reason` normalised.
pub(crate) fn finish_reason(native: &str) -> FinishReason {
    match native {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        _ => FinishReason::Stop, // end_turn, stop_sequence, pause_turn
    }
}

/// Anthropic `usage` in OpenAI semantics: cache reads and writes are part of the prompt.
pub(crate) fn usage(u: &Value) -> Usage {
    let cached = count(u, "cache_read_input_tokens");
    let cache_write = count(u, "cache_creation_input_tokens");
    Usage {
        prompt: count(u, "input_tokens") + cached + cache_write,
        completion: count(u, "output_tokens"),
        cached,
        cache_write,
        reasoning: 0,
    }
}

/// Maps an Anthropic error (`{type:"error", error:{type, message}}`) to gateway terms.
///
/// The error `type` decides; `status` (0 when unknown, e.g. mid-stream) is the fallback for
/// bodies that are not Anthropic errors. The provider's own message is kept.
pub fn error(status: u16, body: &[u8]) -> ProviderError {
    let raw = String::from_utf8_lossy(body).into_owned();
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let kind = v
        .pointer("/error/type")
        .and_then(Value::as_str)
        .unwrap_or("");
    let message = v
        .pointer("/error/message")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("upstream returned HTTP {status}"));
    let (status, error_type) = match kind {
        "invalid_request_error" if message.contains("prompt is too long") => {
            (400, "context_length_exceeded")
        }
        "invalid_request_error" => (400, "invalid_request"),
        "authentication_error" => (401, "authentication"),
        "billing_error" => (402, "payment_required"),
        "permission_error" => (403, "permission_denied"),
        "not_found_error" => (404, "not_found"),
        "request_too_large" => (413, "payload_too_large"),
        "rate_limit_error" => (429, "rate_limit_exceeded"),
        "api_error" => (500, "server"),
        "timeout_error" => (504, "timeout"),
        "overloaded_error" => (529, "provider_overloaded"),
        _ if status == 0 => (502, "provider_unavailable"),
        _ => (status, error_type_for_status(status)),
    };
    ProviderError {
        status,
        error_type,
        message,
        raw,
    }
}
