//! An OpenAI Responses request body as the Chat Completions body the stack routes.
//!
//! `input` (a string, or items) becomes `messages`: message items with their content parts,
//! `function_call` items an assistant's `tool_calls` (consecutive calls share one message),
//! `function_call_output` items `tool` messages (freeform `custom` tools and their calls as
//! function tools: see [`custom`](super::custom)), `reasoning` items the next assistant
//! message's `reasoning_details`. `instructions` is the system message. A field or item this
//! gateway cannot carry (a hosted tool, a background run) is a 400 naming it, never a silent
//! drop.

use super::{custom, sealed};
use crate::error::GatewayError;
use serde_json::{Map, Value, json};

/// Fields passed to the chat request under the same name.
const SAME_NAME: [&str; 7] = [
    "model",
    "temperature",
    "top_p",
    "stream",
    "parallel_tool_calls",
    "user",
    "prompt_cache_key",
];

/// Fields read and dropped: they shape nothing a chat upstream would do differently here
/// (`store` and `previous_response_id` are the layer's own).
const IGNORED: [&str; 12] = [
    "client_metadata",
    "prompt_cache_retention",
    "store",
    "previous_response_id",
    "metadata",
    "include",
    "truncation",
    "service_tier",
    "stream_options",
    "top_logprobs",
    "safety_identifier",
    "max_tool_calls",
];

/// OpenRouter's own request fields, which ride along unchanged.
const GATEWAY_FIELDS: [&str; 6] = [
    "provider",
    "models",
    "session_id",
    "transforms",
    "route",
    "usage",
];

/// The request's conversation as Responses items: `input` as sent, a string as one user
/// message item.
pub fn input_items(req: &Map<String, Value>) -> Result<Vec<Value>, GatewayError> {
    match req.get("input") {
        Some(Value::String(s)) => Ok(vec![
            json!({"type": "message", "role": "user", "content": s}),
        ]),
        Some(Value::Array(items)) => Ok(items.clone()),
        None | Some(Value::Null) => Err(bad("`input` is required (a string or an array of items)")),
        Some(_) => Err(bad("`input` must be a string or an array of items")),
    }
}

/// The Chat Completions body for a Responses request whose conversation is `items` (earlier
/// turns from `previous_response_id` first, then [`input_items`]).
pub fn to_chat(
    req: &Map<String, Value>,
    items: &[Value],
) -> Result<Map<String, Value>, GatewayError> {
    let mut chat = Map::new();
    if !req.get("model").is_some_and(Value::is_string) {
        return Err(bad("`model` is required and must be a string"));
    }
    let mut messages = Vec::new();
    if let Some(instructions) = req.get("instructions").filter(|v| !v.is_null()) {
        let text = instructions
            .as_str()
            .ok_or_else(|| bad("`instructions` must be a string"))?;
        messages.push(json!({"role": "system", "content": text}));
    }
    items_to_messages(items, &mut messages)?;
    chat.insert("messages".into(), Value::Array(messages));
    for (key, value) in req {
        match key.as_str() {
            "input" | "instructions" => {}
            k if SAME_NAME.contains(&k) || GATEWAY_FIELDS.contains(&k) => {
                chat.insert(key.clone(), value.clone());
            }
            k if IGNORED.contains(&k) => {}
            "max_output_tokens" => {
                if !value.is_null() {
                    chat.insert("max_tokens".into(), value.clone());
                }
            }
            "tools" if value.is_null() => {}
            "tools" => {
                chat.insert("tools".into(), tools(value)?);
            }
            "tool_choice" => {
                chat.insert("tool_choice".into(), tool_choice(value)?);
            }
            "text" => text(value, &mut chat)?,
            "reasoning" => {
                if let Some(effort) = value.get("effort").filter(|e| !e.is_null()) {
                    chat.insert("reasoning".into(), json!({"effort": effort}));
                }
            }
            "background" if value.as_bool() != Some(true) => {}
            other => return Err(bad(format!("unsupported field `{other}`"))),
        }
    }
    // Chat APIs refuse an empty `tools` list, and a `tool_choice` without tools.
    if chat
        .get("tools")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        chat.remove("tools");
        chat.remove("tool_choice");
        chat.remove("parallel_tool_calls");
    }
    Ok(chat)
}

fn bad(message: impl Into<String>) -> GatewayError {
    GatewayError::bad_request(message.into())
}

/// Appends the chat messages for `items` to `out`.
fn items_to_messages(items: &[Value], out: &mut Vec<Value>) -> Result<(), GatewayError> {
    // Reasoning waits for the assistant message it belongs to.
    let mut reasoning: Vec<Value> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let kind = item.get("type").and_then(Value::as_str);
        match kind {
            Some("message") | None if item.get("role").is_some() => {
                let msg = message(item, i)?;
                if msg["role"] == "assistant" {
                    push_assistant(out, msg, &mut reasoning);
                } else {
                    out.push(msg);
                }
            }
            Some(kind @ ("function_call" | "custom_tool_call")) => {
                let arguments = match item["input"].as_str() {
                    Some(input) if kind == "custom_tool_call" => Value::from(custom::wrap(input)),
                    _ => item["arguments"].clone(),
                };
                let call = json!({
                    "id": item["call_id"],
                    "type": "function",
                    "function": {"name": item["name"], "arguments": arguments},
                });
                if !call["id"].is_string() || !item["name"].is_string() {
                    return Err(bad(format!(
                        "input[{i}]: {kind} needs `call_id` and `name`"
                    )));
                }
                // Calls right after an assistant message (or each other) belong to it.
                match out.last_mut() {
                    Some(last) if last["role"] == "assistant" => {
                        if !last["tool_calls"].is_array() {
                            last["tool_calls"] = json!([]);
                        }
                        if let Some(calls) = last["tool_calls"].as_array_mut() {
                            calls.push(call);
                        }
                    }
                    _ => push_assistant(
                        out,
                        json!({"role": "assistant", "content": null, "tool_calls": [call]}),
                        &mut reasoning,
                    ),
                }
            }
            Some(kind @ ("function_call_output" | "custom_tool_call_output")) => {
                let id = item["call_id"]
                    .as_str()
                    .ok_or_else(|| bad(format!("input[{i}]: {kind} needs `call_id`")))?;
                let output = match &item["output"] {
                    Value::String(s) => s.clone(),
                    Value::Array(parts) => parts
                        .iter()
                        .filter_map(|p| p["text"].as_str())
                        .collect::<Vec<_>>()
                        .join("\n"),
                    _ => {
                        return Err(bad(format!(
                            "input[{i}]: `output` must be a string or parts"
                        )));
                    }
                };
                out.push(json!({"role": "tool", "tool_call_id": id, "content": output}));
            }
            Some("reasoning") => reasoning.extend(reasoning_details(item)),
            other => {
                return Err(bad(format!(
                    "input[{i}]: unsupported item type `{}`",
                    other.unwrap_or("?")
                )));
            }
        }
    }
    Ok(())
}

/// Pushes an assistant message, giving it the reasoning that came before it.
fn push_assistant(out: &mut Vec<Value>, mut msg: Value, reasoning: &mut Vec<Value>) {
    if !reasoning.is_empty() {
        msg["reasoning_details"] = Value::Array(std::mem::take(reasoning));
    }
    out.push(msg);
}

/// The `reasoning_details[].format` of reasoning from a Responses client: marked as OpenAI's,
/// so a translator for another provider (Anthropic's, which needs its own signatures) leaves
/// it out instead of replaying it.
const REASONING_FORMAT: &str = "openai-responses-v1";

/// A reasoning item's summary and content texts, and its encrypted content, as
/// `reasoning_details`.
fn reasoning_details(item: &Value) -> Vec<Value> {
    // This gateway's own: the provider's details as they were, signatures included.
    if let Some(details) = item["encrypted_content"].as_str().and_then(sealed::open) {
        return details;
    }
    let texts = ["summary", "content"]
        .iter()
        .flat_map(|k| item[*k].as_array().into_iter().flatten())
        .filter_map(|p| p["text"].as_str())
        .map(|t| json!({"type": "reasoning.text", "text": t, "format": REASONING_FORMAT}));
    let encrypted = item["encrypted_content"]
        .as_str()
        .map(|d| json!({"type": "reasoning.encrypted", "data": d, "format": REASONING_FORMAT}));
    texts.chain(encrypted).collect()
}

/// A message item as a chat message (`developer` as `system`).
fn message(item: &Value, i: usize) -> Result<Value, GatewayError> {
    let role = match item["role"].as_str() {
        Some(r @ ("user" | "assistant" | "system")) => r,
        Some("developer") => "system",
        Some(r) => {
            return Err(bad(format!(
                "input[{i}].role `{r}` is not user, assistant, system or developer"
            )));
        }
        None => return Err(bad(format!("input[{i}].role must be a string"))),
    };
    let content = match &item["content"] {
        Value::String(s) => Value::from(s.as_str()),
        Value::Array(parts) if role == "assistant" => {
            // Chat assistant content is text: output_text and refusal parts joined.
            let text: String = parts
                .iter()
                .filter_map(|p| p["text"].as_str().or_else(|| p["refusal"].as_str()))
                .collect();
            Value::from(text)
        }
        Value::Array(parts) => Value::Array(
            parts
                .iter()
                .map(|p| content_part(p, i))
                .collect::<Result<_, _>>()?,
        ),
        _ => return Err(bad(format!("input[{i}].content must be a string or parts"))),
    };
    Ok(json!({"role": role, "content": content}))
}

fn content_part(part: &Value, i: usize) -> Result<Value, GatewayError> {
    match part["type"].as_str() {
        Some("input_text" | "output_text" | "text") => {
            Ok(json!({"type": "text", "text": part["text"]}))
        }
        Some("input_image") => {
            let url = part["image_url"].as_str().ok_or_else(|| {
                bad(format!(
                    "input[{i}]: input_image needs `image_url` (file ids are not supported)"
                ))
            })?;
            let mut image = json!({"url": url});
            if let Some(d) = part.get("detail").filter(|d| d.is_string()) {
                image["detail"] = d.clone();
            }
            Ok(json!({"type": "image_url", "image_url": image}))
        }
        Some("input_file") => {
            let data = part["file_data"].as_str().ok_or_else(|| {
                bad(format!(
                    "input[{i}]: input_file needs `file_data` (file ids are not supported)"
                ))
            })?;
            Ok(json!({"type": "file", "file": {
                "filename": part["filename"].as_str().unwrap_or("file"),
                "file_data": data,
            }}))
        }
        other => Err(bad(format!(
            "input[{i}]: unsupported content part `{}`",
            other.unwrap_or("?")
        ))),
    }
}

/// Flat function tools as chat function tools; hosted tools cannot run elsewhere.
fn tools(value: &Value) -> Result<Value, GatewayError> {
    let list = value
        .as_array()
        .ok_or_else(|| bad("`tools` must be an array"))?;
    list.iter()
        .map(|t| {
            let kind = t["type"].as_str().unwrap_or("?");
            if kind != "function" && kind != "custom" {
                return Err(bad(format!(
                    "tool type `{kind}` is hosted by OpenAI and cannot run through this gateway; \
                     define it as a function tool"
                )));
            }
            let name = t["name"]
                .as_str()
                .ok_or_else(|| bad(format!("every {kind} tool needs a `name`")))?;
            if kind == "custom" {
                return Ok(custom::as_function(t, name));
            }
            let mut f = json!({"name": name,
                "parameters": t.get("parameters").filter(|p| !p.is_null()).cloned()
                    .unwrap_or(json!({"type": "object", "properties": {}}))});
            for key in ["description", "strict"] {
                if let Some(v) = t.get(key).filter(|v| !v.is_null()) {
                    f[key] = v.clone();
                }
            }
            Ok(json!({"type": "function", "function": f}))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

fn tool_choice(value: &Value) -> Result<Value, GatewayError> {
    match value {
        Value::String(s) if matches!(s.as_str(), "auto" | "none" | "required") => Ok(value.clone()),
        Value::Object(o)
            if matches!(
                o.get("type").and_then(Value::as_str),
                Some("function" | "custom")
            ) =>
        {
            Ok(json!({"type": "function", "function": {"name": o.get("name")}}))
        }
        _ => Err(bad(
            "`tool_choice` must be auto, none, required or {\"type\":\"function\",\"name\":…}",
        )),
    }
}

/// `text.format` as `response_format`; `text.verbosity` as `verbosity`.
fn text(value: &Value, chat: &mut Map<String, Value>) -> Result<(), GatewayError> {
    if let Some(v) = value.get("verbosity").filter(|v| !v.is_null()) {
        chat.insert("verbosity".into(), v.clone());
    }
    let Some(format) = value.get("format").filter(|f| !f.is_null()) else {
        return Ok(());
    };
    match format["type"].as_str() {
        Some("text") => {}
        Some("json_object") => {
            chat.insert("response_format".into(), json!({"type": "json_object"}));
        }
        Some("json_schema") => {
            let mut schema = Map::new();
            for key in ["name", "schema", "strict", "description"] {
                if let Some(v) = format.get(key).filter(|v| !v.is_null()) {
                    schema.insert(key.into(), v.clone());
                }
            }
            chat.insert(
                "response_format".into(),
                json!({"type": "json_schema", "json_schema": schema}),
            );
        }
        _ => {
            return Err(bad(
                "`text.format.type` must be text, json_object or json_schema",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(v: &Value) -> Map<String, Value> {
        let req = v.as_object().expect("object");
        to_chat(req, &input_items(req).expect("items")).expect("converts")
    }

    #[test]
    fn a_function_call_round_trip_maps_every_item() {
        let c = chat(&json!({
            "model": "openai/gpt-5", "instructions": "Be brief.", "max_output_tokens": 100,
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "weather?"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AA"}]},
                {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "hm"}]},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
                {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
                {"type": "function_call", "id": "fc_2", "call_id": "call_2", "name": "get_time", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
                {"type": "function_call_output", "call_id": "call_2", "output": "noon"},
                {"role": "developer", "content": "Answer in French."}
            ],
            "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}, "strict": true}],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": true}},
            "reasoning": {"effort": "low", "summary": "auto"}, "store": false, "stream": true
        }));
        let m = &c["messages"];
        assert_eq!(m[0], json!({"role": "system", "content": "Be brief."}));
        assert_eq!(
            m[1]["content"][1]["image_url"]["url"],
            "data:image/png;base64,AA"
        );
        assert_eq!(m[2]["content"], "Checking.");
        assert_eq!(m[2]["reasoning_details"][0]["text"], "hm");
        assert_eq!(
            m[2]["reasoning_details"][0]["format"],
            "openai-responses-v1"
        );
        assert_eq!(m[2]["tool_calls"][1]["function"]["name"], "get_time");
        assert_eq!(
            m[3],
            json!({"role": "tool", "tool_call_id": "call_1", "content": "18C"})
        );
        assert_eq!(m[5]["role"], "system");
        assert_eq!(c["max_tokens"], 100);
        assert_eq!(c["tools"][0]["function"]["strict"], true);
        assert_eq!(c["tool_choice"]["function"]["name"], "get_weather");
        assert_eq!(c["response_format"]["json_schema"]["name"], "w");
        assert_eq!(c["reasoning"], json!({"effort": "low"}));
        assert_eq!(c["stream"], true);
        assert!(c.get("store").is_none());
        let no_tools = chat(&json!({"model": "m", "input": "x", "tools": [],
                                    "tool_choice": "auto", "parallel_tool_calls": true}));
        assert!(no_tools.get("tools").is_none() && no_tools.get("tool_choice").is_none());
    }

    #[test]
    fn what_cannot_be_carried_is_named() {
        let err = |v: Value| {
            let req = v.as_object().expect("object").clone();
            input_items(&req)
                .and_then(|items| to_chat(&req, &items))
                .expect_err("refused")
                .message
        };
        assert!(err(json!({"model": "m"})).contains("input"));
        assert!(
            err(json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}]}))
                .contains("web_search")
        );
        assert!(
            err(json!({"model": "m", "input": "x", "background": true})).contains("background")
        );
        assert!(
            err(json!({"model": "m", "input": [{"type": "item_reference", "id": "x"}]}))
                .contains("item_reference")
        );
    }
}
