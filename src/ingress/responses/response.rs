//! A `chat.completion` as a Responses `response` object, chat usage as Responses usage, and
//! errors in OpenAI's shape.

use super::{custom, sealed};
use serde_json::{Map, Value, json};

/// Request fields a `response` object echoes, with the value OpenAI reports when the request
/// left them out.
fn echoed() -> [(&'static str, Value); 13] {
    [
        ("instructions", Value::Null),
        ("max_output_tokens", Value::Null),
        ("metadata", json!({})),
        ("parallel_tool_calls", Value::Bool(true)),
        ("previous_response_id", Value::Null),
        ("reasoning", json!({"effort": null, "summary": null})),
        ("store", Value::Bool(true)),
        ("temperature", Value::Null),
        ("text", json!({"format": {"type": "text"}})),
        ("tool_choice", Value::from("auto")),
        ("tools", json!([])),
        ("top_p", Value::Null),
        ("truncation", Value::from("disabled")),
    ]
}

/// The `response` object before any output: status `in_progress`, the request's settings
/// echoed, `model` as the client named it.
pub fn skeleton(req: &Map<String, Value>, id: &str, created_at: u64, model: &str) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), id.into());
    out.insert("object".into(), "response".into());
    out.insert("created_at".into(), created_at.into());
    out.insert("status".into(), "in_progress".into());
    out.insert("error".into(), Value::Null);
    out.insert("incomplete_details".into(), Value::Null);
    out.insert("model".into(), model.into());
    out.insert("output".into(), json!([]));
    for (key, default) in echoed() {
        let value = req
            .get(key)
            .filter(|v| !v.is_null())
            .cloned()
            .unwrap_or(default);
        out.insert(key.into(), value);
    }
    if let Some(user) = req.get("user") {
        out.insert("user".into(), user.clone());
    }
    out.insert("usage".into(), Value::Null);
    Value::Object(out)
}

/// `resp_…` from the generation id, so the two can be matched in the ledger.
pub fn response_id(generation: &str) -> String {
    format!("resp_{}", generation.trim_start_matches("gen-"))
}

/// An output item's id: `prefix` and the response id's tail.
pub(super) fn item_id(prefix: &str, response_id: &str, n: usize) -> String {
    format!("{prefix}_{}_{n}", response_id.trim_start_matches("resp_"))
}

/// A finished function call item.
pub(super) fn function_call_item(id: &str, call_id: &Value, name: &Value, args: &str) -> Value {
    json!({"type": "function_call", "id": id, "call_id": call_id, "name": name,
           "arguments": args, "status": "completed"})
}

/// A finished message item holding `text`.
pub(super) fn message_item(id: &str, text: &str) -> Value {
    json!({"type": "message", "id": id, "status": "completed", "role": "assistant",
           "content": [{"type": "output_text", "text": text, "annotations": []}]})
}

/// A reasoning item with `text` as its summary.
pub(super) fn reasoning_item(id: &str, text: &str) -> Value {
    json!({"type": "reasoning", "id": id, "summary": [{"type": "summary_text", "text": text}]})
}

/// A finished call item: a `custom_tool_call` when `name` is one of the request's custom
/// tools (`customs`), else a `function_call`.
pub(super) fn call_item(
    id: &str,
    call_id: &Value,
    name: &Value,
    args: &str,
    customs: &[String],
) -> Value {
    if name
        .as_str()
        .is_some_and(|n| customs.iter().any(|c| c == n))
    {
        custom::call_item(id, call_id, name, &custom::unwrap(args))
    } else {
        function_call_item(id, call_id, name, args)
    }
}

/// The output items of a chat `message`: reasoning, then text, then tool calls (a call of one
/// of `customs`, the request's custom tools, as a `custom_tool_call`).
pub fn output_items(msg: &Value, response_id: &str, customs: &[String]) -> Vec<Value> {
    let mut out = Vec::new();
    let reasoning = reasoning_text(msg);
    let details = msg["reasoning_details"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    if !reasoning.is_empty() || sealed::seal(details).is_some() {
        let mut item = reasoning_item(&item_id("rs", response_id, 0), &reasoning);
        if let Some(kept) = sealed::seal(details) {
            item["encrypted_content"] = kept.into();
        }
        out.push(item);
    }
    if let Some(text) = msg["content"].as_str().filter(|t| !t.is_empty()) {
        out.push(message_item(&item_id("msg", response_id, out.len()), text));
    }
    for call in msg["tool_calls"].as_array().into_iter().flatten() {
        let id = item_id("fc", response_id, out.len());
        let args = call["function"]["arguments"].as_str().unwrap_or("{}");
        out.push(call_item(
            &id,
            &call["id"],
            &call["function"]["name"],
            args,
            customs,
        ));
    }
    out
}

/// Reasoning text: `reasoning_details` texts when present, else plain `reasoning`.
fn reasoning_text(msg: &Value) -> String {
    let details: String = msg["reasoning_details"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["text"].as_str().or_else(|| d["summary"].as_str()))
        .collect();
    if details.is_empty() {
        msg["reasoning"].as_str().unwrap_or("").to_owned()
    } else {
        details
    }
}

/// Responses `usage` from chat `usage`; OpenRouter's `cost` (USD) rides along.
pub fn usage(chat: &Value) -> Value {
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let input = n(&chat["prompt_tokens"]);
    let output = n(&chat["completion_tokens"]);
    let mut out = json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": n(&chat["prompt_tokens_details"]["cached_tokens"])},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": n(&chat["completion_tokens_details"]["reasoning_tokens"])},
        "total_tokens": input + output,
    });
    if let Some(cost) = chat.get("cost").filter(|c| c.is_number()) {
        out["cost"] = cost.clone();
    }
    out
}

/// Fills a [`skeleton`] in: its output, usage and final status (`incomplete` when the chat
/// finish was `length`).
pub(super) fn finish(response: &mut Value, output: Vec<Value>, usage: Value, finish: Option<&str>) {
    if finish == Some("length") {
        response["status"] = "incomplete".into();
        response["incomplete_details"] = json!({"reason": "max_output_tokens"});
    } else {
        response["status"] = "completed".into();
    }
    response["output"] = Value::Array(output);
    response["usage"] = usage;
}

/// The `response` for a `chat.completion`, built on `skeleton` (see [`skeleton`]), whose
/// echoed `tools` say which calls are of custom tools.
pub fn to_response(chat: &Value, mut response: Value) -> Value {
    let id = response["id"].as_str().unwrap_or("").to_owned();
    let choice = &chat["choices"][0];
    let customs = custom::names(&response["tools"]);
    let items = output_items(&choice["message"], &id, &customs);
    finish(
        &mut response,
        items,
        usage(&chat["usage"]),
        choice["finish_reason"].as_str(),
    );
    if let Some(p) = chat.get("provider").filter(|p| p.is_string()) {
        response["provider"] = p.clone();
    }
    response
}

/// OpenAI's error `type` for an HTTP status.
pub fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "insufficient_quota",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    }
}

/// An OpenAI error body (`{"error":{"message","type","param","code"}}`) from the gateway's
/// error JSON; the gateway's error type is the `code`, its metadata rides along.
pub fn error_body(status: u16, gateway: &Value) -> Value {
    let message = gateway["error"]["message"]
        .as_str()
        .map_or_else(|| format!("upstream answered {status}"), str::to_owned);
    let mut error = json!({
        "message": message,
        "type": error_type(status),
        "param": gateway["error"]["metadata"]["param"],
        "code": gateway["error"]["metadata"]["error_type"],
    });
    if let Some(meta) = gateway["error"].get("metadata").filter(|m| m.is_object()) {
        error["metadata"] = meta.clone();
    }
    json!({"error": error})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_call_answer_is_reasoning_text_and_a_function_call() {
        let chat = json!({
            "id": "gen-1-abc", "provider": "P",
            "choices": [{"message": {"role": "assistant", "content": "Let me check.",
                "reasoning": "think",
                "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 7, "cost": 0.001,
                      "prompt_tokens_details": {"cached_tokens": 60},
                      "completion_tokens_details": {"reasoning_tokens": 3}}
        });
        let req = json!({"model": "m", "input": "x", "tools": [{"type": "function", "name": "get_weather"}]});
        let r = to_response(
            &chat,
            skeleton(req.as_object().expect("object"), "resp_1-abc", 5, "m"),
        );
        assert_eq!(r["status"], "completed");
        assert_eq!(r["output"][0]["type"], "reasoning");
        assert_eq!(r["output"][1]["content"][0]["text"], "Let me check.");
        assert_eq!(r["output"][2]["call_id"], "call_1");
        assert_eq!(r["output"][2]["arguments"], "{\"city\":\"Paris\"}");
        assert_eq!(r["tools"][0]["name"], "get_weather");
        assert_eq!(
            r["usage"],
            json!({"input_tokens": 100, "input_tokens_details": {"cached_tokens": 60},
                   "output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 3},
                   "total_tokens": 107, "cost": 0.001})
        );
    }

    #[test]
    fn errors_take_openai_types() {
        let e = error_body(
            429,
            &json!({"error": {"code": 429, "message": "slow down", "metadata": {"error_type": "rate_limited"}}}),
        );
        assert_eq!(e["error"]["type"], "rate_limit_error");
        assert_eq!(e["error"]["code"], "rate_limited");
        assert_eq!(e["error"]["message"], "slow down");
        assert_eq!(error_type(413), "invalid_request_error");
        assert_eq!(error_type(502), "server_error");
    }
}
