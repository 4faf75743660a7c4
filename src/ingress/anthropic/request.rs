//! An Anthropic Messages request body as the Chat Completions body the stack routes.
//!
//! Every block kind Claude clients send maps to its chat counterpart, `cache_control` kept on
//! it: text and images become content parts, `tool_use` blocks an assistant's `tool_calls`,
//! `tool_result` blocks `tool` messages (in the order they came), and thinking blocks
//! `reasoning_details` in the `anthropic-claude-v1` format, signatures kept, so an Anthropic
//! upstream gets them back intact. A block or field this gateway cannot carry is a 400 naming
//! it, never a silent drop.

use crate::error::GatewayError;
use serde_json::{Map, Value, json};

/// The `reasoning_details[].format` the chat side uses for Anthropic thinking.
pub(super) const REASONING_FORMAT: &str = "anthropic-claude-v1";

/// Fields passed to the chat request under the same name.
const SAME_NAME: [&str; 4] = ["temperature", "top_p", "top_k", "stream"];

/// Fields read and dropped from the chat request: they shape nothing a chat upstream would
/// honour, and an Anthropic upstream still gets them in the client's own body.
const IGNORED: [&str; 5] = [
    "service_tier",
    "container",
    "context_management",
    "mcp_servers",
    "inference_geo",
];

/// The Chat Completions body for a Messages request (`model` as the client named it).
pub fn to_chat(msg: &Map<String, Value>) -> Result<Map<String, Value>, GatewayError> {
    let mut chat = Map::new();
    let model = msg
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("`model` is required and must be a string"))?;
    chat.insert("model".into(), model.into());
    let max = msg
        .get("max_tokens")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("`max_tokens` is required and must be a positive integer"))?;
    chat.insert("max_tokens".into(), max.into());
    let mut messages = Vec::new();
    if let Some(system) = msg.get("system") {
        messages.push(json!({"role": "system", "content": system_content(system)?}));
    }
    let turns = msg
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("`messages` is required and must be an array"))?;
    for (i, turn) in turns.iter().enumerate() {
        turn_to_chat(turn, i, &mut messages)?;
    }
    chat.insert("messages".into(), Value::Array(messages));
    for (key, value) in msg {
        match key.as_str() {
            "model" | "max_tokens" | "system" | "messages" => {}
            k if SAME_NAME.contains(&k) => {
                chat.insert(key.clone(), value.clone());
            }
            k if IGNORED.contains(&k) => {}
            "stop_sequences" => {
                chat.insert("stop".into(), value.clone());
            }
            "metadata" => {
                if let Some(user) = value.get("user_id").and_then(Value::as_str) {
                    chat.insert("user".into(), user.into());
                }
            }
            "tools" => {
                chat.insert("tools".into(), tools(value)?);
            }
            "tool_choice" => tool_choice(value, &mut chat)?,
            "thinking" => thinking(value, &mut chat)?,
            "output_format" => output_format(value, &mut chat)?,
            "output_config" => output_config(value, &mut chat)?,
            // OpenRouter's own request fields ride along unchanged.
            "provider" | "models" | "session_id" | "transforms" | "route" | "usage" => {
                chat.insert(key.clone(), value.clone());
            }
            other => return Err(bad(format!("unsupported field `{other}`"))),
        }
    }
    Ok(chat)
}

fn bad(message: impl Into<String>) -> GatewayError {
    GatewayError::bad_request(message.into())
}

/// `system`: a string, or text blocks (their `cache_control` kept as content parts).
fn system_content(system: &Value) -> Result<Value, GatewayError> {
    match system {
        Value::String(_) => Ok(system.clone()),
        Value::Array(blocks) => blocks
            .iter()
            .map(|b| match b.get("type").and_then(Value::as_str) {
                Some("text") => Ok(text_part(b)),
                other => Err(bad(format!(
                    "system blocks must be text, not `{}`",
                    other.unwrap_or("?")
                ))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        _ => Err(bad("`system` must be a string or an array of text blocks")),
    }
}

fn text_part(block: &Value) -> Value {
    let mut part = json!({"type": "text", "text": block.get("text").cloned().unwrap_or_default()});
    if let Some(cc) = block.get("cache_control").filter(|c| !c.is_null()) {
        part["cache_control"] = cc.clone();
    }
    part
}

/// One Messages turn as one or more chat messages, appended to `out`.
fn turn_to_chat(turn: &Value, index: usize, out: &mut Vec<Value>) -> Result<(), GatewayError> {
    let role = turn.get("role").and_then(Value::as_str);
    let content = turn.get("content");
    match (role, content) {
        (Some("user"), Some(c)) => user_turn(c, index, out),
        (Some("assistant"), Some(c)) => {
            out.push(assistant_turn(c, index)?);
            Ok(())
        }
        (Some(r), Some(_)) => Err(bad(format!(
            "messages[{index}].role must be `user` or `assistant`, not `{r}`"
        ))),
        _ => Err(bad(format!("messages[{index}] needs `role` and `content`"))),
    }
}

/// A user turn: its `tool_result` blocks become `tool` messages first (they answer the
/// previous assistant turn's calls), the rest one user message.
fn user_turn(content: &Value, index: usize, out: &mut Vec<Value>) -> Result<(), GatewayError> {
    let blocks = match content {
        Value::String(_) => {
            out.push(json!({"role": "user", "content": content}));
            return Ok(());
        }
        Value::Array(b) => b,
        _ => {
            return Err(bad(format!(
                "messages[{index}].content must be a string or blocks"
            )));
        }
    };
    let mut parts = Vec::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => parts.push(text_part(block)),
            Some("image") => parts.push(image_part(block, index)?),
            Some("document") => parts.push(document_part(block, index)?),
            Some("tool_result") => out.push(tool_result(block, index)?),
            other => {
                return Err(bad(format!(
                    "messages[{index}]: unsupported user content block `{}`",
                    other.unwrap_or("?")
                )));
            }
        }
    }
    if !parts.is_empty() {
        out.push(json!({"role": "user", "content": parts}));
    }
    Ok(())
}

fn image_part(block: &Value, index: usize) -> Result<Value, GatewayError> {
    let source = &block["source"];
    let url = match source.get("type").and_then(Value::as_str) {
        Some("base64") => format!(
            "data:{};base64,{}",
            source["media_type"].as_str().unwrap_or("image/png"),
            source["data"].as_str().unwrap_or("")
        ),
        Some("url") => source["url"].as_str().unwrap_or("").to_owned(),
        _ => {
            return Err(bad(format!(
                "messages[{index}]: an image source must be `base64` or `url`"
            )));
        }
    };
    let mut part = json!({"type": "image_url", "image_url": {"url": url}});
    if let Some(cc) = block.get("cache_control") {
        part["cache_control"] = cc.clone();
    }
    Ok(part)
}

/// A document: plain text inline as text; a PDF as OpenRouter's `file` part.
fn document_part(block: &Value, index: usize) -> Result<Value, GatewayError> {
    let source = &block["source"];
    match source.get("type").and_then(Value::as_str) {
        Some("text") => Ok(text_part(&json!({
            "text": source["data"],
            "cache_control": block.get("cache_control").cloned().unwrap_or(Value::Null),
        }))),
        Some("base64") => Ok(json!({"type": "file", "file": {
            "filename": block.get("title").and_then(Value::as_str).unwrap_or("document.pdf"),
            "file_data": format!("data:{};base64,{}",
                source["media_type"].as_str().unwrap_or("application/pdf"),
                source["data"].as_str().unwrap_or("")),
        }})),
        _ => Err(bad(format!(
            "messages[{index}]: a document source must be `text` or `base64`"
        ))),
    }
}

/// A `tool_result` block as a `tool` message; its content is text (blocks joined).
fn tool_result(block: &Value, index: usize) -> Result<Value, GatewayError> {
    let id = block
        .get("tool_use_id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            bad(format!(
                "messages[{index}]: tool_result needs `tool_use_id`"
            ))
        })?;
    let text = match block.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        Some(_) => {
            return Err(bad(format!(
                "messages[{index}]: tool_result content must be a string or blocks"
            )));
        }
    };
    let text = if block.get("is_error").and_then(Value::as_bool) == Some(true) {
        format!("Error: {text}")
    } else {
        text
    };
    Ok(json!({"role": "tool", "tool_call_id": id, "content": text}))
}

/// An assistant turn: text, `tool_use` blocks as `tool_calls`, thinking as
/// `reasoning_details` (signatures kept).
fn assistant_turn(content: &Value, index: usize) -> Result<Value, GatewayError> {
    let blocks = match content {
        Value::String(s) => return Ok(json!({"role": "assistant", "content": s})),
        Value::Array(b) => b,
        _ => {
            return Err(bad(format!(
                "messages[{index}].content must be a string or blocks"
            )));
        }
    };
    let (mut text, mut calls, mut details) = (String::new(), Vec::new(), Vec::new());
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(block["text"].as_str().unwrap_or("")),
            Some("tool_use") => calls.push(json!({
                "id": block["id"],
                "type": "function",
                "function": {
                    "name": block["name"],
                    "arguments": serde_json::to_string(&block["input"]).unwrap_or_default(),
                },
            })),
            Some("thinking") => details.push(json!({
                "type": "reasoning.text",
                "text": block["thinking"],
                "signature": block["signature"],
                "format": REASONING_FORMAT,
            })),
            Some("redacted_thinking") => details.push(json!({
                "type": "reasoning.encrypted",
                "data": block["data"],
                "format": REASONING_FORMAT,
            })),
            other => {
                return Err(bad(format!(
                    "messages[{index}]: unsupported assistant content block `{}`",
                    other.unwrap_or("?")
                )));
            }
        }
    }
    let mut msg = json!({"role": "assistant", "content": text});
    if !calls.is_empty() {
        msg["tool_calls"] = Value::Array(calls);
    }
    if !details.is_empty() {
        msg["reasoning_details"] = Value::Array(details);
    }
    Ok(msg)
}

/// `tools`: custom tools as function tools; Anthropic's server tools cannot run elsewhere.
fn tools(value: &Value) -> Result<Value, GatewayError> {
    let list = value
        .as_array()
        .ok_or_else(|| bad("`tools` must be an array"))?;
    list.iter()
        .map(|t| {
            let name = t
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("every tool needs a `name`"))?;
            if let Some(kind) = t.get("type").and_then(Value::as_str)
                && kind != "custom"
            {
                return Err(bad(format!(
                    "tool `{name}` is Anthropic's server tool `{kind}`, which this gateway cannot \
                     run; define it as a custom tool"
                )));
            }
            let mut f = json!({"name": name,
                               "parameters": t.get("input_schema").cloned().unwrap_or(json!({"type": "object"}))});
            if let Some(d) = t.get("description") {
                f["description"] = d.clone();
            }
            let mut tool = json!({"type": "function", "function": f});
            if let Some(cc) = t.get("cache_control") {
                tool["cache_control"] = cc.clone();
            }
            Ok(tool)
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

fn tool_choice(value: &Value, chat: &mut Map<String, Value>) -> Result<(), GatewayError> {
    let choice = match value.get("type").and_then(Value::as_str) {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => json!({"type": "function", "function": {"name": value["name"]}}),
        _ => return Err(bad("`tool_choice.type` must be auto, any, tool or none")),
    };
    chat.insert("tool_choice".into(), choice);
    if value
        .get("disable_parallel_tool_use")
        .and_then(Value::as_bool)
        == Some(true)
    {
        chat.insert("parallel_tool_calls".into(), false.into());
    }
    Ok(())
}

/// `thinking`: an enabled budget as chat `reasoning.max_tokens`.
fn thinking(value: &Value, chat: &mut Map<String, Value>) -> Result<(), GatewayError> {
    match value.get("type").and_then(Value::as_str) {
        Some("enabled") => {
            let budget = value
                .get("budget_tokens")
                .and_then(Value::as_u64)
                .ok_or_else(|| bad("`thinking.budget_tokens` is required when enabled"))?;
            chat.insert("reasoning".into(), json!({"max_tokens": budget}));
        }
        Some("adaptive") => {
            chat.insert("reasoning".into(), json!({"enabled": true}));
        }
        Some("disabled") => {}
        _ => return Err(bad("`thinking.type` must be enabled, adaptive or disabled")),
    }
    Ok(())
}

/// `output_format` (structured outputs): a JSON schema as chat `response_format`.
fn output_format(value: &Value, chat: &mut Map<String, Value>) -> Result<(), GatewayError> {
    match value.get("type").and_then(Value::as_str) {
        Some("json_schema") => {
            let schema = value
                .get("schema")
                .filter(|s| s.is_object())
                .ok_or_else(|| bad("`output_format.schema` must be an object"))?;
            chat.insert(
                "response_format".into(),
                json!({"type": "json_schema",
                       "json_schema": {"name": "output", "strict": true, "schema": schema}}),
            );
            Ok(())
        }
        _ => Err(bad("`output_format.type` must be json_schema")),
    }
}

/// `output_config`: its `effort` as chat `reasoning.effort`; its `format` as `output_format`.
fn output_config(value: &Value, chat: &mut Map<String, Value>) -> Result<(), GatewayError> {
    if !value.is_object() {
        return Err(bad("`output_config` must be an object"));
    }
    if let Some(effort) = value.get("effort") {
        let effort = effort
            .as_str()
            .ok_or_else(|| bad("`output_config.effort` must be a string"))?;
        let reasoning = chat
            .entry("reasoning")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .ok_or_else(|| bad("`reasoning` must be an object"))?;
        reasoning.insert("effort".into(), effort.into());
    }
    if let Some(format) = value.get("format") {
        output_format(format, chat)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(v: &Value) -> Map<String, Value> {
        to_chat(v.as_object().expect("object")).expect("converts")
    }

    #[test]
    fn a_tool_round_trip_maps_every_block() {
        let c = chat(&json!({
            "model": "claude-sonnet-4-5", "max_tokens": 100,
            "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "18C"}]},
                    {"type": "text", "text": "thanks"}]}
            ],
            "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "stop_sequences": ["END"], "metadata": {"user_id": "u1"}, "stream": true
        }));
        let m = &c["messages"];
        assert_eq!(m[0]["content"][0]["cache_control"]["type"], "ephemeral");
        assert_eq!(
            m[2]["tool_calls"][0]["function"]["arguments"],
            r#"{"city":"Paris"}"#
        );
        assert_eq!(m[2]["reasoning_details"][0]["signature"], "sig");
        assert_eq!(
            m[3],
            json!({"role": "tool", "tool_call_id": "toolu_1", "content": "18C"})
        );
        assert_eq!(m[4]["content"][0]["text"], "thanks");
        assert_eq!(c["tool_choice"], "required");
        assert_eq!(c["parallel_tool_calls"], false);
        assert_eq!(c["reasoning"]["max_tokens"], 2048);
        assert_eq!(c["stop"], json!(["END"]));
        assert_eq!(c["user"], "u1");
        assert_eq!(c["tools"][0]["function"]["name"], "get_weather");
    }

    #[test]
    fn what_cannot_be_carried_is_named() {
        let err = |v: Value| {
            to_chat(v.as_object().expect("object"))
                .expect_err("refused")
                .message
        };
        let base = |extra: Value| {
            let mut v = json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]});
            v.as_object_mut()
                .expect("object")
                .extend(extra.as_object().expect("object").clone());
            v
        };
        assert!(err(json!({"model": "m", "messages": []})).contains("max_tokens"));
        assert!(
            err(base(
                json!({"tools": [{"type": "web_search_20250305", "name": "web_search"}]})
            ))
            .contains("web_search_20250305")
        );
        assert!(err(base(json!({"frobnicate": 1}))).contains("frobnicate"));
        assert!(
            err(json!({"model": "m", "max_tokens": 1,
            "messages": [{"role": "system", "content": "x"}]}))
            .contains("messages[0].role")
        );
    }

    #[test]
    fn structured_output_and_effort_map_to_chat_fields() {
        let c = chat(&json!({
            "model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}],
            "output_format": {"type": "json_schema", "schema": {"type": "object"}},
            "output_config": {"effort": "low"}, "mcp_servers": [],
        }));
        assert_eq!(
            c["response_format"]["json_schema"]["schema"]["type"],
            "object"
        );
        assert_eq!(c["reasoning"]["effort"], "low");
        assert!(c.get("mcp_servers").is_none());
        let err = to_chat(
            json!({"model": "m", "max_tokens": 1, "messages": [], "frobnicate": 1})
                .as_object()
                .unwrap(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("frobnicate"), "{err}");
    }
}
