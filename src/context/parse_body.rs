//! Field validation of a chat or completions body.

use super::{ApiKind, ChatRequest, ProviderPrefs, RoutingHints};
use crate::error::GatewayError;
use bytes::Bytes;
use http::{HeaderMap, HeaderName};
use serde_json::{Map, Value};

/// Parses and validates a request body. Every error names the field or the byte position.
///
/// Copies `bytes` once; the parse layer hands its buffer over with `parse_request_bytes`.
pub fn parse_request(
    kind: ApiKind,
    bytes: &[u8],
    headers: &HeaderMap,
) -> Result<ChatRequest, GatewayError> {
    parse_request_bytes(kind, Bytes::copy_from_slice(bytes), headers)
}

/// [`parse_request`] over an owned buffer, which the request keeps for
/// [`ChatRequest::verbatim_field`].
pub(crate) fn parse_request_bytes(
    kind: ApiKind,
    bytes: Bytes,
    headers: &HeaderMap,
) -> Result<ChatRequest, GatewayError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(GatewayError::bad_request(
            "Request body is empty: expected a JSON object",
        ));
    }
    let malformed = |e: serde_json::Error| {
        GatewayError::bad_request(format!(
            "Malformed JSON in request body at line {}, column {}: {e}",
            e.line(),
            e.column()
        ))
    };
    let is_object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if !is_object {
        // Valid JSON of another type, or garbage: say which.
        serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).map_err(malformed)?;
        return Err(GatewayError::bad_request(
            "Request body must be a JSON object",
        ));
    }
    let source = bytes.clone();
    let parsed = super::verbatim::parse_object(bytes).map_err(malformed)?;
    let (body, verbatim) = (parsed.fields, parsed.verbatim);
    let model = match body.get("model") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Some(_) => {
            return Err(GatewayError::bad_request(
                "`model` must be a non-empty string",
            ));
        }
    };
    let models = match body.get("models") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| GatewayError::bad_request("`models` must be an array of model ids"))?,
        Some(_) => {
            return Err(GatewayError::bad_request(
                "`models` must be an array of model ids",
            ));
        }
    };
    if model.is_none() && models.is_empty() {
        return Err(GatewayError::bad_request(
            "`model` is required (or a non-empty `models` list)",
        ));
    }
    let stream = match body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(GatewayError::bad_request("`stream` must be a boolean")),
    };
    let provider: ProviderPrefs = match body.get("provider") {
        None | Some(Value::Null) => ProviderPrefs::default(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| GatewayError::bad_request(format!("Invalid `provider` object: {e}")))?,
    };
    let max_tokens = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|k| body.get(*k).filter(|v| !v.is_null()).map(|v| (k, v)))
        .map(|(k, v)| {
            v.as_u64()
                .filter(|n| *n >= 1)
                .map(|n| n.min(u64::from(u32::MAX)) as u32)
                .ok_or_else(|| {
                    GatewayError::bad_request(format!("`{k}` must be a positive integer"))
                })
        })
        .transpose()?;
    check_reasoning(&body)?;
    let prompt_chars = match (kind, parsed.messages) {
        // Checked on its bytes: a non-empty array of messages with roles.
        (ApiKind::Chat, Some(checked)) => checked.prompt_chars,
        (ApiKind::Chat, None) => {
            let Some(Value::Array(messages)) = body.get("messages") else {
                return Err(GatewayError::bad_request(
                    "`messages` is required and must be an array",
                ));
            };
            if messages.is_empty() {
                return Err(GatewayError::bad_request("`messages` must not be empty"));
            }
            for (i, m) in messages.iter().enumerate() {
                if !m.get("role").is_some_and(Value::is_string) {
                    return Err(GatewayError::bad_request(format!(
                        "`messages[{i}].role` is required"
                    )));
                }
            }
            messages
                .iter()
                .map(|m| m.get("content").map_or(0, text_len))
                .sum()
        }
        (ApiKind::Embeddings, _) => {
            if stream {
                return Err(GatewayError::bad_request(
                    "`stream` is not supported for embeddings",
                ));
            }
            match body.get("input") {
                Some(i @ (Value::String(_) | Value::Array(_))) => embedding_chars(i),
                _ => {
                    return Err(GatewayError::bad_request(
                        "`input` is required (a string, an array of strings, or token arrays)",
                    ));
                }
            }
        }
        (ApiKind::Completions, _) => match body.get("prompt") {
            Some(p @ (Value::String(_) | Value::Array(_))) => text_len(p),
            _ => {
                return Err(GatewayError::bad_request(
                    "`prompt` is required (a string or an array of strings)",
                ));
            }
        },
    };
    let session_id = body
        .get("session_id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            headers
                .get(&SESSION_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .or_else(|| {
            body.get("prompt_cache_key")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .map(|s| s.chars().take(256).collect());
    let wants_metadata = METADATA_HEADERS.iter().any(|h| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("enabled"))
    });
    Ok(ChatRequest {
        kind,
        fields: body,
        verbatim,
        model,
        models,
        stream,
        provider,
        max_tokens,
        session_id,
        wants_metadata,
        prompt_chars,
        hints: RoutingHints::default(),
        messages_deferred: parsed.messages.is_some(),
        full: Default::default(),
        source: Some(source),
    })
}

/// Header names as constants: a lookup by `&str` parses the name on every request.
static SESSION_HEADER: HeaderName = HeaderName::from_static("x-session-id");
static METADATA_HEADERS: [HeaderName; 2] = [
    HeaderName::from_static("x-openrouter-metadata"),
    HeaderName::from_static("x-openrouter-experimental-metadata"),
];

fn check_reasoning(body: &Map<String, Value>) -> Result<(), GatewayError> {
    let short = body.get("reasoning_effort").and_then(Value::as_str);
    let long = body
        .get("reasoning")
        .and_then(|r| r.get("effort"))
        .and_then(Value::as_str);
    if let (Some(a), Some(b)) = (short, long) {
        if a != b {
            return Err(GatewayError::bad_request(format!(
                "`reasoning_effort` (\"{a}\") conflicts with `reasoning.effort` (\"{b}\"): send one"
            )));
        }
    }
    Ok(())
}

/// Characters an embeddings `input` stands for: its text, and about four per token id.
fn embedding_chars(input: &Value) -> usize {
    match input {
        Value::Array(items) => items.iter().map(embedding_chars).sum(),
        Value::String(s) => s.len(),
        Value::Number(_) => 4,
        _ => 0,
    }
}

/// Characters of text in a content value (string, parts, or prompt array).
pub(crate) fn text_len(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match p {
                Value::String(s) => s.len(),
                Value::Object(o) => o.get("text").and_then(Value::as_str).map_or(0, str::len),
                _ => 0,
            })
            .sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ChatRequest, GatewayError> {
        parse_request(ApiKind::Chat, s.as_bytes(), &HeaderMap::new())
    }

    #[test]
    fn malformed_json_names_position() {
        let e = parse("{\"model\": \"a/b\",\n \"messages\": [}").unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("line 2, column"), "{}", e.message);
    }

    #[test]
    fn fields_are_validated_by_name() {
        assert!(
            parse(r#"{"model":"a/b"}"#)
                .unwrap_err()
                .message
                .contains("`messages`")
        );
        assert!(
            parse(r#"{"model":1,"messages":[]}"#)
                .unwrap_err()
                .message
                .contains("`model`")
        );
        let e = parse(r#"{"model":"a/b","messages":[{"role":"user","content":"x"}],"provider":{"order":"openai"}}"#).unwrap_err();
        assert!(e.message.contains("provider"), "{}", e.message);
        let e =
            parse(r#"{"model":"a/b","messages":[{"role":"user","content":"x"}],"max_tokens":0}"#)
                .unwrap_err();
        assert!(e.message.contains("max_tokens"), "{}", e.message);
    }

    #[test]
    fn keeps_unknown_fields_and_reads_routing_ones() {
        let r = parse(r#"{"model":"a/b","models":["c/d"],"stream":true,"safe_prompt":true,
            "messages":[{"role":"user","content":[{"type":"text","text":"hello"}]}],
            "provider":{"max_price":{"prompt":"1","completion":2},"sort":{"by":"price","partition":"none"}}}"#).unwrap();
        assert!(r.body().contains_key("safe_prompt"));
        assert_eq!(r.model_chain(), ["a/b", "c/d"]);
        assert_eq!(r.prompt_chars, 5);
        assert_eq!(
            r.provider.sort.as_ref().map(|s| s.partition()),
            Some("none")
        );
        assert_eq!(
            r.provider.max_price.unwrap().completion,
            Some(crate::catalog::Usd::from_per_million(2.0))
        );
    }
}
