//! A `chat.completion` as an Anthropic `message`, and chat usage as Anthropic usage.

use super::request::REASONING_FORMAT;
use serde_json::{Map, Value, json};

/// Anthropic `usage` from chat `usage`: `input_tokens` excludes the cache reads and writes
/// that chat counts inside `prompt_tokens`; OpenRouter's `cost` (USD) rides along.
pub fn usage(chat: &Value) -> Value {
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let prompt = n(&chat["prompt_tokens"]);
    let read = n(&chat["prompt_tokens_details"]["cached_tokens"]);
    let write = n(&chat["prompt_tokens_details"]["cache_write_tokens"]);
    let mut out = json!({
        "input_tokens": prompt.saturating_sub(read).saturating_sub(write),
        "output_tokens": n(&chat["completion_tokens"]),
        "cache_creation_input_tokens": write,
        "cache_read_input_tokens": read,
    });
    if let Some(cost) = chat.get("cost").filter(|c| c.is_number()) {
        out["cost"] = cost.clone();
    }
    out
}

/// Anthropic's `stop_reason` for a chat finish: the upstream's own when it is an Anthropic one
/// (`native_finish_reason`), else mapped from the normalised one.
pub fn stop_reason(finish: Option<&str>, native: Option<&str>) -> Option<&'static str> {
    const ANTHROPIC: [&str; 6] = [
        "end_turn",
        "max_tokens",
        "stop_sequence",
        "tool_use",
        "pause_turn",
        "refusal",
    ];
    if let Some(n) = native.and_then(|n| ANTHROPIC.iter().find(|a| **a == n)) {
        return Some(n);
    }
    Some(match finish? {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    })
}

/// The Anthropic `message` for a `chat.completion` (`model` as the client named it).
pub fn to_message(chat: &Value, model: &str) -> Value {
    let choice = &chat["choices"][0];
    let msg = &choice["message"];
    let mut content = thinking_blocks(msg);
    if let Some(text) = msg["content"].as_str().filter(|t| !t.is_empty()) {
        content.push(json!({"type": "text", "text": text}));
    }
    for call in msg["tool_calls"].as_array().into_iter().flatten() {
        let args = call["function"]["arguments"].as_str().unwrap_or("{}");
        content.push(json!({
            "type": "tool_use",
            "id": call["id"],
            "name": call["function"]["name"],
            "input": serde_json::from_str::<Value>(args).unwrap_or_else(|_| json!({})),
        }));
    }
    let stop = stop_reason(
        choice["finish_reason"].as_str(),
        choice["native_finish_reason"].as_str(),
    );
    let mut message = json!({
        "id": message_id(chat["id"].as_str().unwrap_or("")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": null,
        "usage": usage(&chat["usage"]),
    });
    // OpenRouter's extra: which provider served it, when the service below says.
    if let Some(provider) = chat.get("provider").filter(|p| p.is_string()) {
        message["provider"] = provider.clone();
    }
    message
}

/// `msg_…` from the generation id, so the two can be matched in the ledger.
pub(super) fn message_id(generation: &str) -> String {
    format!("msg_{}", generation.trim_start_matches("gen-"))
}

/// Thinking blocks from `reasoning_details` (signatures kept), else from plain `reasoning`.
pub(super) fn thinking_blocks(msg: &Value) -> Vec<Value> {
    let details = msg["reasoning_details"].as_array();
    let blocks: Vec<Value> = details
        .into_iter()
        .flatten()
        .filter_map(|d| match d["type"].as_str() {
            Some("reasoning.text") => Some(json!({"type": "thinking",
                "thinking": d["text"].as_str().unwrap_or(""),
                "signature": signature(d)})),
            Some("reasoning.encrypted") if d["format"] == REASONING_FORMAT => {
                Some(json!({"type": "redacted_thinking", "data": d["data"]}))
            }
            _ => None,
        })
        .collect();
    if !blocks.is_empty() {
        return blocks;
    }
    match msg["reasoning"].as_str().filter(|r| !r.is_empty()) {
        Some(r) => vec![json!({"type": "thinking", "thinking": r, "signature": ""})],
        None => Vec::new(),
    }
}

fn signature(detail: &Value) -> Value {
    detail
        .get("signature")
        .filter(|s| s.is_string())
        .cloned()
        .unwrap_or_else(|| Value::from(""))
}

/// Anthropic's error `type` for an HTTP status.
pub fn error_type(status: u16) -> &'static str {
    match status {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        _ => "api_error",
    }
}

/// An Anthropic error body from the gateway's error JSON (`{"error":{"code","message"}}`).
pub fn error_body(status: u16, gateway: &Value) -> Value {
    let message = gateway["error"]["message"]
        .as_str()
        .map_or_else(|| format!("upstream answered {status}"), str::to_owned);
    let mut error = Map::new();
    error.insert("type".into(), error_type(status).into());
    error.insert("message".into(), message.into());
    if let Some(meta) = gateway["error"].get("metadata").filter(|m| m.is_object()) {
        error.insert("metadata".into(), meta.clone());
    }
    json!({"type": "error", "error": error})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_call_answer_is_a_tool_use_message() {
        let chat = json!({
            "id": "gen-1-abc", "provider": "P",
            "choices": [{"message": {"role": "assistant", "content": "Let me check.",
                "reasoning_details": [{"type": "reasoning.text", "text": "t", "signature": "s",
                                       "format": REASONING_FORMAT}],
                "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                "finish_reason": "tool_calls", "native_finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 7, "cost": 0.001,
                      "prompt_tokens_details": {"cached_tokens": 60, "cache_write_tokens": 10}}
        });
        let m = to_message(&chat, "claude-sonnet-4-5");
        assert_eq!(m["id"], "msg_1-abc");
        assert_eq!(
            m["content"][0],
            json!({"type": "thinking", "thinking": "t", "signature": "s"})
        );
        assert_eq!(m["content"][1]["text"], "Let me check.");
        assert_eq!(m["content"][2]["input"]["city"], "Paris");
        assert_eq!(m["stop_reason"], "tool_use");
        assert_eq!(
            m["usage"],
            json!({"input_tokens": 30, "output_tokens": 7, "cache_creation_input_tokens": 10,
                   "cache_read_input_tokens": 60, "cost": 0.001})
        );
    }

    #[test]
    fn stop_reasons_prefer_the_anthropic_native_one() {
        assert_eq!(
            stop_reason(Some("stop"), Some("stop_sequence")),
            Some("stop_sequence")
        );
        assert_eq!(
            stop_reason(Some("length"), Some("MAX_TOKENS")),
            Some("max_tokens")
        );
        assert_eq!(stop_reason(Some("stop"), None), Some("end_turn"));
        assert_eq!(stop_reason(None, None), None);
    }

    #[test]
    fn errors_take_anthropic_types() {
        let e = error_body(
            429,
            &json!({"error": {"code": 429, "message": "slow down"}}),
        );
        assert_eq!(
            e,
            json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})
        );
        assert_eq!(error_type(402), "billing_error");
    }
}
