//! OpenAI Chat Completions request → Anthropic Messages request.

use crate::translate::common::{self, ToolChoice};
use crate::translate::common::{
    Reasoning, TranslateError, effort_fraction, max_tokens, parse_arguments, parse_data_url,
    stop_sequences,
};
use serde_json::{Map, Value, json};

/// Anthropic's smallest accepted thinking budget.
const MIN_THINKING_BUDGET: u64 = 1024;

/// Translates an OpenAI chat request into an Anthropic Messages body for `upstream_model`.
///
/// `default_max_tokens` fills Anthropic's mandatory `max_tokens` when the client sent neither
/// `max_tokens` nor `max_completion_tokens`. OpenAI-only fields Anthropic has no use for are
/// dropped; content Anthropic cannot take (audio input, unknown part types) is an error naming
/// the field.
pub fn request(
    openai: &Map<String, Value>,
    upstream_model: &str,
    default_max_tokens: u32,
) -> Result<Value, TranslateError> {
    let messages = openai
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::new("messages: required array"))?;
    let (system, turns) = messages_to_anthropic(messages)?;

    let mut body = Map::new();
    body.insert("model".into(), json!(upstream_model));
    let mut max = max_tokens(openai).unwrap_or(u64::from(default_max_tokens));
    let thinking = match Reasoning::from_request(openai)? {
        None | Some(Reasoning::Off) => None,
        Some(r) => {
            let (budget, new_max) = thinking_budget(&r, max);
            max = new_max;
            Some(budget)
        }
    };
    body.insert("max_tokens".into(), json!(max));
    if let Some(system) = system {
        body.insert("system".into(), system);
    }
    body.insert("messages".into(), Value::Array(turns));
    if let Some(stop) = stop_sequences(openai) {
        body.insert("stop_sequences".into(), stop);
    }
    match thinking {
        Some(budget) => {
            // Anthropic rejects temperature ≠ 1 and top_k with extended thinking; top_p is
            // only accepted in 0.95..=1, so all three are left to the provider's defaults.
            body.insert(
                "thinking".into(),
                json!({"type": "enabled", "budget_tokens": budget}),
            );
        }
        None => {
            if let Some(t) = openai.get("temperature").and_then(Value::as_f64) {
                body.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
            }
            if let Some(p) = openai.get("top_p").filter(|v| v.is_number()) {
                body.insert("top_p".into(), p.clone());
            }
            if let Some(k) = openai
                .get("top_k")
                .and_then(Value::as_u64)
                .filter(|k| *k > 0)
            {
                body.insert("top_k".into(), json!(k));
            }
        }
    }
    if let Some(tools) = openai.get("tools").and_then(Value::as_array) {
        let tools: Vec<Value> = tools.iter().filter_map(tool).collect();
        if !tools.is_empty() {
            body.insert("tools".into(), Value::Array(tools));
        }
    }
    if let Some(choice) = tool_choice(openai)? {
        body.insert("tool_choice".into(), choice);
    }
    if let Some(user) = openai.get("user").and_then(Value::as_str) {
        body.insert("metadata".into(), json!({"user_id": user}));
    }
    if let Some(cc) = openai.get("cache_control").filter(|v| v.is_object()) {
        body.insert("cache_control".into(), cc.clone());
    }
    if openai.get("stream").and_then(Value::as_bool) == Some(true) {
        body.insert("stream".into(), json!(true));
    }
    Ok(Value::Object(body))
}

/// `(budget_tokens, max_tokens)`: the budget is ≥ 1024 and < max_tokens; when the client's
/// limit leaves no room, max_tokens grows by the budget so the answer keeps the room asked for.
fn thinking_budget(r: &Reasoning, max: u64) -> (u64, u64) {
    let wanted = match r {
        Reasoning::Budget(b) => *b,
        Reasoning::Effort(e) => effort_fraction(e).map_or(0, |f| (max as f64 * f) as u64),
        Reasoning::Default | Reasoning::Off => (max as f64 * 0.5) as u64,
    };
    let budget = wanted.max(MIN_THINKING_BUDGET);
    if budget < max {
        (budget, max)
    } else {
        (budget, budget + max)
    }
}

/// Splits OpenAI messages into Anthropic's `system` and alternating `messages`.
fn messages_to_anthropic(
    messages: &[Value],
) -> Result<(Option<Value>, Vec<Value>), TranslateError> {
    let mut system: Vec<Value> = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let field = format!("messages[{i}]");
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        let content = m.get("content").unwrap_or(&Value::Null);
        let (role, blocks) = match role {
            "system" | "developer" => {
                system.extend(content_blocks(content, &field, false)?);
                continue;
            }
            "user" => {
                let mut blocks = content_blocks(content, &field, true)?;
                if let (Some(name), Some(first)) =
                    (m.get("name").and_then(Value::as_str), blocks.first_mut())
                {
                    if let Some(Value::String(t)) = first.get_mut("text") {
                        *t = format!("{name}: {t}");
                    }
                }
                ("user", blocks)
            }
            "assistant" => ("assistant", assistant_blocks(m, &field)?),
            "tool" => ("user", vec![tool_result(m, &field)?]),
            other => {
                return Err(TranslateError::new(format!(
                    "{field}.role: unsupported role {other:?}"
                )));
            }
        };
        if blocks.is_empty() {
            continue; // Anthropic rejects messages with empty content
        }
        // Anthropic wants user/assistant alternation and all results of one tool turn in one
        // user message, so consecutive same-role messages are merged.
        match turns.last_mut() {
            Some((last, b)) if *last == role => b.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let system = if system.is_empty() {
        None
    } else if system.iter().all(|b| b.get("cache_control").is_none()) {
        let texts: Vec<&str> = system.iter().filter_map(|b| b["text"].as_str()).collect();
        Some(json!(texts.join("\n\n")))
    } else {
        Some(Value::Array(system))
    };
    // A trailing assistant message is a prefill, which Anthropic rejects if it ends in
    // whitespace.
    if let Some(("assistant", blocks)) = turns.last_mut() {
        if let Some(Value::String(t)) = blocks.last_mut().and_then(|b| b.get_mut("text")) {
            t.truncate(t.trim_end().len());
            if t.is_empty() {
                blocks.pop();
            }
        }
        if blocks.is_empty() {
            turns.pop();
        }
    }
    let turns = turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    Ok((system, turns))
}

/// Content (string or parts) → Anthropic blocks; images only where `images` is allowed.
fn content_blocks(
    content: &Value,
    field: &str,
    images: bool,
) -> Result<Vec<Value>, TranslateError> {
    let parts = match content {
        Value::Null => return Ok(Vec::new()),
        Value::String(s) if s.is_empty() => return Ok(Vec::new()),
        Value::String(s) => return Ok(vec![json!({"type": "text", "text": s})]),
        Value::Array(parts) => parts,
        _ => {
            return Err(TranslateError::new(format!(
                "{field}.content: expected string or array"
            )));
        }
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for (j, p) in parts.iter().enumerate() {
        let field = format!("{field}.content[{j}]");
        let mut block = match p.get("type").and_then(Value::as_str) {
            Some("text") => {
                let text = p.get("text").and_then(Value::as_str).unwrap_or("");
                if text.is_empty() {
                    continue;
                }
                json!({"type": "text", "text": text})
            }
            Some("image_url") if images => image_block(p, &field)?,
            Some("file") if images => document_block(p, &field)?,
            Some(t) => {
                return Err(TranslateError::new(format!(
                    "{field}.type: {t:?} content is not supported by this provider"
                )));
            }
            None => return Err(TranslateError::new(format!("{field}.type: missing"))),
        };
        if let (Some(cc), Value::Object(b)) = (p.get("cache_control"), &mut block) {
            b.insert("cache_control".into(), cc.clone());
        }
        blocks.push(block);
    }
    Ok(blocks)
}

fn image_block(part: &Value, field: &str) -> Result<Value, TranslateError> {
    let url = part
        .pointer("/image_url/url")
        .and_then(Value::as_str)
        .ok_or_else(|| TranslateError::new(format!("{field}.image_url.url: missing")))?;
    let source = if let Some((mime, data)) = parse_data_url(url) {
        json!({"type": "base64", "media_type": mime, "data": data})
    } else if url.starts_with("https://") || url.starts_with("http://") {
        json!({"type": "url", "url": url})
    } else {
        return Err(TranslateError::new(format!(
            "{field}.image_url.url: expected a base64 data: URL or an http(s) URL"
        )));
    };
    Ok(json!({"type": "image", "source": source}))
}

/// An OpenAI `file` part (PDF as a data: URL) → an Anthropic `document` block.
fn document_block(part: &Value, field: &str) -> Result<Value, TranslateError> {
    let data = part
        .pointer("/file/file_data")
        .and_then(Value::as_str)
        .unwrap_or("");
    let (mime, data) = parse_data_url(data).ok_or_else(|| {
        TranslateError::new(format!(
            "{field}.file.file_data: expected a base64 data: URL"
        ))
    })?;
    Ok(json!({"type": "document", "source": {"type": "base64", "media_type": mime, "data": data}}))
}

/// Thinking blocks (from `reasoning_details`), then text, then `tool_use` blocks.
fn assistant_blocks(m: &Value, field: &str) -> Result<Vec<Value>, TranslateError> {
    let mut blocks = Vec::new();
    for d in m
        .get("reasoning_details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let format = d.get("format").and_then(Value::as_str);
        if format.is_some_and(|f| f != super::REASONING_FORMAT) {
            continue; // another provider's reasoning cannot be replayed here
        }
        match d.get("type").and_then(Value::as_str) {
            Some("reasoning.text") => {
                if let Some(sig) = d.get("signature").and_then(Value::as_str) {
                    let text = d.get("text").and_then(Value::as_str).unwrap_or("");
                    blocks.push(json!({"type": "thinking", "thinking": text, "signature": sig}));
                }
            }
            Some("reasoning.encrypted") => {
                if let Some(data) = d.get("data").and_then(Value::as_str) {
                    blocks.push(json!({"type": "redacted_thinking", "data": data}));
                }
            }
            _ => {}
        }
    }
    blocks.extend(content_blocks(
        m.get("content").unwrap_or(&Value::Null),
        field,
        false,
    )?);
    for (k, call) in m
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let field = format!("{field}.tool_calls[{k}]");
        let id = call.get("id").and_then(Value::as_str).unwrap_or("");
        let name = call
            .pointer("/function/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let input = parse_arguments(call, &field)?;
        blocks.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
    }
    Ok(blocks)
}

fn tool_result(m: &Value, field: &str) -> Result<Value, TranslateError> {
    let id = m
        .get("tool_call_id")
        .and_then(Value::as_str)
        .ok_or_else(|| TranslateError::new(format!("{field}.tool_call_id: missing")))?;
    let content = match m.get("content") {
        Some(Value::String(s)) => json!(s),
        Some(c @ Value::Array(_)) => Value::Array(content_blocks(c, field, true)?),
        _ => json!(""),
    };
    Ok(json!({"type": "tool_result", "tool_use_id": id, "content": content}))
}

/// An OpenAI function tool → `{name, description, input_schema}`; other tool kinds (server
/// tools) are not Anthropic's to run and are dropped.
fn tool(t: &Value) -> Option<Value> {
    if t.get("type").and_then(Value::as_str) != Some("function") {
        return None;
    }
    let f = t.get("function")?;
    let mut out = Map::new();
    out.insert("name".into(), f.get("name")?.clone());
    if let Some(d) = f.get("description") {
        out.insert("description".into(), d.clone());
    }
    let schema = f
        .get("parameters")
        .cloned()
        .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
    out.insert("input_schema".into(), schema);
    if let Some(cc) = t.get("cache_control") {
        out.insert("cache_control".into(), cc.clone());
    }
    Some(Value::Object(out))
}

fn tool_choice(req: &Map<String, Value>) -> Result<Option<Value>, TranslateError> {
    let parsed = common::tool_choice(req)?;
    let mut choice = match parsed.unwrap_or(ToolChoice::Auto) {
        ToolChoice::Auto => json!({"type": "auto"}),
        ToolChoice::None => json!({"type": "none"}),
        ToolChoice::Required => json!({"type": "any"}),
        ToolChoice::Function(name) => json!({"type": "tool", "name": name}),
    };
    let serial = req.get("parallel_tool_calls").and_then(Value::as_bool) == Some(false);
    if serial && choice["type"] != "none" {
        choice["disable_parallel_tool_use"] = json!(true);
    } else if parsed.is_none() {
        return Ok(None);
    }
    Ok(Some(choice))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_respects_anthropic_bounds() {
        assert_eq!(
            thinking_budget(&Reasoning::Effort("high".into()), 10_000),
            (8_000, 10_000)
        );
        assert_eq!(
            thinking_budget(&Reasoning::Effort("minimal".into()), 4_000),
            (1_024, 4_000)
        );
        assert_eq!(
            thinking_budget(&Reasoning::Effort("low".into()), 500),
            (1_024, 1_524)
        );
        assert_eq!(
            thinking_budget(&Reasoning::Budget(20_000), 16_000),
            (20_000, 36_000)
        );
        assert_eq!(thinking_budget(&Reasoning::Default, 8_000), (4_000, 8_000));
    }
}
