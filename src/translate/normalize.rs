//! Rewrites of an OpenAI-shaped response into the gateway's shape (SPEC 7.1): our `id`, the
//! served `model` slug, the provider's display name, and `native_finish_reason` beside a
//! normalised `finish_reason`.

use crate::catalog::{Model, Provider};
use serde_json::{Map, Value};
use std::sync::Arc;

/// What every response and chunk of one attempt is stamped with.
#[derive(Debug, Clone)]
pub(crate) struct Stamp {
    pub(crate) id: Name,
    pub(crate) model: Name,
    pub(crate) provider: Name,
    /// `reasoning.exclude: true` (or `include_reasoning: false`): the model reasons, the client
    /// does not see it.
    pub(crate) strip_reasoning: bool,
}

/// A name a stamp writes, read from where it already lives: building a stamp copies no string
/// (it runs once per attempt, and three `String` copies were three allocations).
#[derive(Clone)]
pub(crate) enum Name {
    /// A shared string: the generation id, or a literal (`"x".into()`).
    Shared(Arc<str>),
    /// The model's slug.
    Slug(Arc<Model>),
    /// The provider's display name.
    Title(Arc<Provider>),
}

impl Name {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Name::Shared(s) => s,
            Name::Slug(m) => &m.slug,
            Name::Title(p) => &p.name,
        }
    }
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Self {
        Name::Shared(s.into())
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Normalises a native finish reason to `stop | length | tool_calls | content_filter | error`.
pub fn normalize_finish_reason(native: &str) -> &'static str {
    // Compared without case instead of lowercased into a new `String`: this runs on the
    // finishing chunk of every completion.
    const NATIVE: &[(&str, &str)] = &[
        ("length", "length"),
        ("max_tokens", "length"),
        ("model_length", "length"),
        ("max_output_tokens", "length"),
        ("tool_calls", "tool_calls"),
        ("tool_use", "tool_calls"),
        ("function_call", "tool_calls"),
        ("content_filter", "content_filter"),
        ("safety", "content_filter"),
        ("recitation", "content_filter"),
        ("blocklist", "content_filter"),
        ("prohibited_content", "content_filter"),
        ("spii", "content_filter"),
        ("refusal", "content_filter"),
        ("error", "error"),
        ("malformed_function_call", "error"),
    ];
    NATIVE
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(native))
        .map_or("stop", |(_, normal)| normal)
}

/// Stamps a response object or chunk. `chunk` selects `chat.completion.chunk` vs
/// `chat.completion` for chat; legacy completions keep `text_completion`.
pub(crate) fn stamp(v: &mut Value, s: &Stamp, object: &str) {
    let Some(obj) = v.as_object_mut() else { return };
    obj.insert("id".into(), Value::from(s.id.as_str()));
    obj.insert("model".into(), Value::from(s.model.as_str()));
    obj.insert("provider".into(), Value::from(s.provider.as_str()));
    obj.insert("object".into(), Value::from(object));
    if !obj.get("created").is_some_and(Value::is_u64) {
        obj.insert("created".into(), Value::from(super::common::now()));
    }
    if let Some(Value::Array(choices)) = obj.get_mut("choices") {
        for c in choices {
            if let Some(c) = c.as_object_mut() {
                normalize_choice(c);
                if s.strip_reasoning {
                    for k in ["message", "delta"] {
                        if let Some(m) = c.get_mut(k).and_then(Value::as_object_mut) {
                            m.remove("reasoning");
                            m.remove("reasoning_details");
                        }
                    }
                }
            }
        }
    }
}

fn normalize_choice(c: &mut Map<String, Value>) {
    let native = c
        .get("native_finish_reason")
        .and_then(Value::as_str)
        .map(str::to_owned);
    match c
        .get("finish_reason")
        .and_then(Value::as_str)
        .map(str::to_owned)
    {
        Some(raw) => {
            c.insert(
                "finish_reason".into(),
                Value::from(normalize_finish_reason(&raw)),
            );
            c.insert(
                "native_finish_reason".into(),
                Value::from(native.unwrap_or(raw)),
            );
        }
        None => {
            c.entry("finish_reason").or_insert(Value::Null);
            c.entry("native_finish_reason").or_insert(Value::Null);
        }
    }
}

/// The `error` object a provider put inside a 200 (a body or a chunk), if any:
/// (status, message, error_type).
pub(crate) fn embedded_error(v: &Value) -> Option<(u16, String, Option<String>)> {
    let err = v.get("error").filter(|e| !e.is_null())?;
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| err.to_string());
    let status = match err.get("code") {
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|c| (400..600).contains(c))
            .map_or(502, |c| c as u16),
        _ => 502,
    };
    let error_type = err
        .get("metadata")
        .and_then(|m| m.get("error_type"))
        .or_else(|| err.get("type"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Some((status, message, error_type))
}

/// True when a chunk carries content: text, reasoning, a tool call or a refusal. The role-only
/// first chunk and empty deltas do not count (the fallback layer commits on the first content).
pub fn chunk_has_content(v: &Value) -> bool {
    let Some(choices) = v.get("choices").and_then(Value::as_array) else {
        return false;
    };
    choices.iter().any(|c| {
        if c.get("text")
            .and_then(Value::as_str)
            .is_some_and(|t| !t.is_empty())
        {
            return true;
        }
        let Some(d) = c.get("delta") else {
            return false;
        };
        let non_empty_str = |k: &str| {
            d.get(k)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
        };
        let non_empty_arr = |k: &str| {
            d.get(k)
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
        };
        non_empty_str("content")
            || non_empty_str("reasoning")
            || non_empty_str("refusal")
            || non_empty_arr("tool_calls")
            || non_empty_arr("reasoning_details")
            || d.get("audio").is_some_and(|a| !a.is_null())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// The lowercasing `match` the table replaced.
    fn by_lowercase(native: &str) -> &'static str {
        match native.to_ascii_lowercase().as_str() {
            "length" | "max_tokens" | "model_length" | "max_output_tokens" => "length",
            "tool_calls" | "tool_use" | "function_call" => "tool_calls",
            "content_filter" | "safety" | "recitation" | "blocklist" | "prohibited_content"
            | "spii" | "refusal" => "content_filter",
            "error" | "malformed_function_call" => "error",
            _ => "stop",
        }
    }

    proptest! {
        #[test]
        fn finish_reasons_normalise_as_the_lowercasing_match_did(
            native in prop_oneof![
                "(?i)(length|max_tokens|tool_use|safety|refusal|error|spii|stop|end_turn)",
                ".{0,12}",
            ],
        ) {
            prop_assert_eq!(normalize_finish_reason(&native), by_lowercase(&native));
        }
    }

    #[test]
    fn stamps_and_normalises() {
        let mut v = json!({"id":"chatcmpl-1","model":"gpt-4o-mini-2024","choices":[{"index":0,"finish_reason":"end_turn","message":{"reasoning":"secret"}}]});
        stamp(
            &mut v,
            &Stamp {
                id: "gen-1".into(),
                model: "openai/gpt-4o-mini".into(),
                provider: "OpenAI".into(),
                strip_reasoning: true,
            },
            "chat.completion",
        );
        assert_eq!(v["id"], "gen-1");
        assert_eq!(v["provider"], "OpenAI");
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(v["choices"][0]["native_finish_reason"], "end_turn");
        assert!(
            v["choices"][0]["message"].get("reasoning").is_none(),
            "reasoning.exclude"
        );
    }

    #[test]
    fn content_detection_ignores_role_only_chunks() {
        assert!(!chunk_has_content(
            &json!({"choices":[{"delta":{"role":"assistant","content":""}}]})
        ));
        assert!(chunk_has_content(
            &json!({"choices":[{"delta":{"content":"Hi"}}]})
        ));
        assert!(chunk_has_content(
            &json!({"choices":[{"delta":{"tool_calls":[{"index":0}]}}]})
        ));
        assert!(!chunk_has_content(&json!({"choices":[],"usage":{}})));
    }
}
