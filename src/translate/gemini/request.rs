//! OpenAI Chat Completions request → Gemini `generateContent` request body.

use super::REASONING_FORMAT;
use super::schema::clean_schema;
use crate::translate::common::{self, ToolChoice};
use crate::translate::common::{
    Reasoning, TranslateError, content_text, effort_fraction, max_tokens, parse_arguments,
    parse_data_url, reasoning_excluded, stop_sequences,
};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// The output budget effort levels are a share of when the client set no `max_tokens`.
const NOMINAL_MAX_TOKENS: u64 = 32_768;

/// Translates an OpenAI chat request into a Gemini `generateContent` /
/// `streamGenerateContent` body. The model goes in the URL, which the layer builds;
/// `upstream_model` only picks the thinking control (`thinkingLevel` on Gemini 3,
/// `thinkingBudget` before).
pub fn request(openai: &Map<String, Value>, upstream_model: &str) -> Result<Value, TranslateError> {
    let messages = openai
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::new("messages: required array"))?;
    let mut body = Map::new();
    let (system, contents) = contents(messages)?;
    body.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        body.insert(
            "systemInstruction".into(),
            json!({"parts": [{"text": system}]}),
        );
    }
    if let Some(tools) = openai.get("tools").and_then(Value::as_array) {
        let decls: Vec<Value> = tools.iter().filter_map(declaration).collect();
        if !decls.is_empty() {
            body.insert("tools".into(), json!([{"functionDeclarations": decls}]));
        }
    }
    if let Some(config) = tool_config(openai)? {
        body.insert("toolConfig".into(), config);
    }
    let config = generation_config(openai, upstream_model)?;
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    Ok(Value::Object(body))
}

/// `(system instruction text, contents)`.
fn contents(messages: &[Value]) -> Result<(String, Vec<Value>), TranslateError> {
    let mut system = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    // functionResponse needs the function's name, which OpenAI tool messages only reference.
    let mut names: HashMap<&str, &str> = HashMap::new();
    for (i, m) in messages.iter().enumerate() {
        let field = format!("messages[{i}]");
        let content = m.get("content").unwrap_or(&Value::Null);
        let (role, parts) = match m.get("role").and_then(Value::as_str).unwrap_or("") {
            "system" | "developer" => {
                system.push(content_text(content));
                continue;
            }
            "user" => {
                let mut parts = user_parts(content, &field)?;
                let name = m.get("name").and_then(Value::as_str);
                if let (Some(name), Some(Value::String(t))) =
                    (name, parts.first_mut().and_then(|p| p.get_mut("text")))
                {
                    *t = format!("{name}: {t}");
                }
                ("user", parts)
            }
            "assistant" => {
                for call in m
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let (Some(id), Some(name)) = (
                        call.get("id").and_then(Value::as_str),
                        call.pointer("/function/name").and_then(Value::as_str),
                    ) {
                        names.insert(id, name);
                    }
                }
                ("model", model_parts(m, &field)?)
            }
            "tool" => {
                let id = m.get("tool_call_id").and_then(Value::as_str).unwrap_or("");
                let name = names.get(id).copied().ok_or_else(|| {
                    TranslateError::new(format!(
                        "{field}.tool_call_id: {id:?} matches no earlier assistant tool call"
                    ))
                })?;
                let text = content_text(content);
                // Gemini wants an object; JSON object results are passed as they are.
                let response = match serde_json::from_str::<Value>(&text) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => json!({"content": text}),
                };
                let part = json!({"functionResponse": {"name": name, "response": response}});
                ("user", vec![part])
            }
            other => {
                return Err(TranslateError::new(format!(
                    "{field}.role: unsupported role {other:?}"
                )));
            }
        };
        if parts.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, p)) if *last == role => p.extend(parts),
            _ => turns.push((role, parts)),
        }
    }
    let contents = turns
        .into_iter()
        .map(|(role, parts)| json!({"role": role, "parts": parts}))
        .collect();
    Ok((system.join("\n\n"), contents))
}

fn user_parts(content: &Value, field: &str) -> Result<Vec<Value>, TranslateError> {
    let parts = match content {
        Value::String(s) if s.is_empty() => return Ok(Vec::new()),
        Value::String(s) => return Ok(vec![json!({"text": s})]),
        Value::Array(parts) => parts,
        _ => return Ok(Vec::new()),
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, p) in parts.iter().enumerate() {
        let field = format!("{field}.content[{j}]");
        let url = match p.get("type").and_then(Value::as_str) {
            Some("text") => {
                out.push(json!({"text": p.get("text").and_then(Value::as_str).unwrap_or("")}));
                continue;
            }
            Some("image_url") => p.pointer("/image_url/url"),
            Some("file") => p.pointer("/file/file_data"),
            Some("input_audio") => {
                let data = p
                    .pointer("/input_audio/data")
                    .cloned()
                    .unwrap_or(Value::Null);
                let format = p
                    .pointer("/input_audio/format")
                    .and_then(Value::as_str)
                    .unwrap_or("wav");
                out.push(
                    json!({"inlineData": {"mimeType": format!("audio/{format}"), "data": data}}),
                );
                continue;
            }
            other => {
                return Err(TranslateError::new(format!(
                    "{field}.type: {other:?} content is not supported by this provider"
                )));
            }
        };
        let url = url
            .and_then(Value::as_str)
            .ok_or_else(|| TranslateError::new(format!("{field}: missing URL")))?;
        out.push(match parse_data_url(url) {
            Some((mime, data)) => json!({"inlineData": {"mimeType": mime, "data": data}}),
            None => json!({"fileData": {"mimeType": mime_from_url(url), "fileUri": url}}),
        });
    }
    Ok(out)
}

/// Gemini's `fileData` needs a MIME type; guess it from the extension.
fn mime_from_url(url: &str) -> &'static str {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase();
    match path.rsplit('.').next().unwrap_or("") {
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        _ => "image/jpeg",
    }
}

/// Text, then `functionCall` parts; thought signatures go back on the part they came from.
fn model_parts(m: &Value, field: &str) -> Result<Vec<Value>, TranslateError> {
    let mut parts = Vec::new();
    let text = content_text(m.get("content").unwrap_or(&Value::Null));
    if !text.is_empty() {
        parts.push(json!({"text": text}));
    }
    let mut call_ids = Vec::new();
    for (k, call) in m
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = call
            .pointer("/function/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let args = parse_arguments(call, &format!("{field}.tool_calls[{k}]"))?;
        call_ids.push((parts.len(), call.get("id").and_then(Value::as_str)));
        parts.push(json!({"functionCall": {"name": name, "args": args}}));
    }
    for d in m
        .get("reasoning_details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let ours = d.get("format").and_then(Value::as_str) == Some(REASONING_FORMAT)
            && d.get("type").and_then(Value::as_str) == Some("reasoning.encrypted");
        let Some(sig) = d.get("data").filter(|_| ours) else {
            continue;
        };
        let id = d.get("id").and_then(Value::as_str);
        let target = call_ids
            .iter()
            .find(|(_, call_id)| id.is_some() && *call_id == id)
            .map_or(0, |(at, _)| *at);
        if let Some(Value::Object(part)) = parts.get_mut(target) {
            part.insert("thoughtSignature".into(), sig.clone());
        }
    }
    Ok(parts)
}

fn declaration(t: &Value) -> Option<Value> {
    if t.get("type").and_then(Value::as_str) != Some("function") {
        return None;
    }
    let f = t.get("function")?;
    let mut d = Map::new();
    d.insert("name".into(), f.get("name")?.clone());
    if let Some(desc) = f.get("description") {
        d.insert("description".into(), desc.clone());
    }
    // A function without parameters must omit the field; an empty object schema is rejected.
    if let Some(p) = f.get("parameters").filter(|p| has_properties(p)) {
        d.insert("parameters".into(), clean_schema(p));
    }
    Some(Value::Object(d))
}

fn has_properties(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) != Some("object")
        || schema
            .get("properties")
            .and_then(Value::as_object)
            .is_some_and(|p| !p.is_empty())
}

fn tool_config(req: &Map<String, Value>) -> Result<Option<Value>, TranslateError> {
    let Some(choice) = common::tool_choice(req)? else {
        return Ok(None);
    };
    let config = match choice {
        ToolChoice::Auto => json!({"mode": "AUTO"}),
        ToolChoice::None => json!({"mode": "NONE"}),
        ToolChoice::Required => json!({"mode": "ANY"}),
        ToolChoice::Function(name) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
    };
    Ok(Some(json!({"functionCallingConfig": config})))
}

fn generation_config(
    req: &Map<String, Value>,
    model: &str,
) -> Result<Map<String, Value>, TranslateError> {
    let mut c = Map::new();
    let max = max_tokens(req);
    if let Some(max) = max {
        c.insert("maxOutputTokens".into(), json!(max));
    }
    for (from, to) in [
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ] {
        if let Some(v) = req.get(from).filter(|v| v.is_number()) {
            c.insert(to.into(), v.clone());
        }
    }
    // Streams are translated for one candidate only, so `n` is honoured without streaming.
    let streaming = req.get("stream").and_then(Value::as_bool) == Some(true);
    if let Some(n) = req.get("n").filter(|n| n.is_number() && !streaming) {
        c.insert("candidateCount".into(), n.clone());
    }
    if let Some(stop) = stop_sequences(req) {
        c.insert("stopSequences".into(), stop);
    }
    if let Some(rf) = req.get("response_format") {
        match rf.get("type").and_then(Value::as_str) {
            Some("json_object") => {
                c.insert("responseMimeType".into(), json!("application/json"));
            }
            Some("json_schema") => {
                c.insert("responseMimeType".into(), json!("application/json"));
                if let Some(schema) = rf.pointer("/json_schema/schema") {
                    c.insert("responseSchema".into(), clean_schema(schema));
                }
            }
            _ => {}
        }
    }
    if let Some(r) = Reasoning::from_request(req)? {
        c.insert(
            "thinkingConfig".into(),
            thinking_config(&r, max, model, !reasoning_excluded(req)),
        );
    }
    Ok(c)
}

/// Gemini 3 takes a `thinkingLevel`; earlier models a `thinkingBudget` (0 = off, −1 = dynamic).
fn thinking_config(r: &Reasoning, max: Option<u64>, model: &str, include: bool) -> Value {
    let gemini3 = model.starts_with("gemini-3");
    let include = include && *r != Reasoning::Off;
    match r {
        Reasoning::Off => json!({"thinkingBudget": 0, "includeThoughts": false}),
        Reasoning::Budget(b) => json!({"thinkingBudget": b, "includeThoughts": include}),
        Reasoning::Default => json!({"thinkingBudget": -1, "includeThoughts": include}),
        Reasoning::Effort(e) if gemini3 => {
            let level = if matches!(e.as_str(), "minimal" | "low") {
                "low"
            } else {
                "high"
            };
            json!({"thinkingLevel": level, "includeThoughts": include})
        }
        Reasoning::Effort(e) => {
            let base = max.unwrap_or(NOMINAL_MAX_TOKENS) as f64;
            let budget = effort_fraction(e).map_or(-1, |f| (base * f) as i64);
            json!({"thinkingBudget": budget, "includeThoughts": include})
        }
    }
}
