//! Pieces shared by every upstream dialect: the error types, finish reasons, usage and chunk
//! builders, and the reading of the OpenAI request fields that more than one dialect needs.

use serde_json::{Map, Value, json};
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// A request that cannot be expressed for the target API (→ 400 naming the field).
#[derive(Debug, Clone, PartialEq)]
pub struct TranslateError {
    /// What is wrong, naming the offending request field.
    pub message: String,
}

impl TranslateError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        TranslateError {
            message: message.into(),
        }
    }
}

impl fmt::Display for TranslateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TranslateError {}

/// An upstream error mapped to gateway terms.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderError {
    /// The HTTP status the gateway should answer with.
    pub status: u16,
    /// The OpenRouter `error_type` (`rate_limit_exceeded`, `provider_overloaded`, …).
    pub error_type: &'static str,
    /// The provider's own message, kept verbatim so clients see the real reason.
    pub message: String,
    /// The raw upstream body, for `error.metadata.raw`.
    pub raw: String,
}

impl ProviderError {
    /// An upstream body that is not the JSON it should be: the provider misbehaved (502).
    pub(crate) fn invalid_body(what: &str, err: &serde_json::Error, body: &[u8]) -> Self {
        ProviderError {
            status: 502,
            error_type: "provider_unavailable",
            message: format!("upstream returned an invalid {what}: {err}"),
            raw: String::from_utf8_lossy(body).into_owned(),
        }
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "upstream error {} ({}): {}",
            self.status, self.error_type, self.message
        )
    }
}

impl std::error::Error for ProviderError {}

/// The `error_type` for an upstream status when the body says nothing more specific.
pub(crate) fn error_type_for_status(status: u16) -> &'static str {
    match status {
        400 => "invalid_request",
        401 => "authentication",
        402 => "payment_required",
        403 => "permission_denied",
        404 => "not_found",
        408 | 504 => "timeout",
        412 => "precondition_failed",
        413 => "payload_too_large",
        422 => "unprocessable",
        429 => "rate_limit_exceeded",
        503 | 529 => "provider_overloaded",
        502 => "provider_unavailable",
        500..=599 => "server",
        _ => "unmapped",
    }
}

/// Normalised finish reason (stop|length|tool_calls|content_filter|error) from a native one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// The model finished naturally or hit a stop sequence.
    Stop,
    /// The output token limit was reached.
    Length,
    /// The model wants tool results.
    ToolCalls,
    /// The provider withheld or cut the output.
    ContentFilter,
    /// Generation failed.
    Error,
}

impl FinishReason {
    /// The OpenAI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::Error => "error",
        }
    }
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Token counts in OpenAI semantics: `prompt` includes cached and cache-written tokens,
/// `completion` includes reasoning tokens.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Usage {
    pub(crate) prompt: u64,
    pub(crate) completion: u64,
    pub(crate) cached: u64,
    pub(crate) cache_write: u64,
    pub(crate) reasoning: u64,
}

impl Usage {
    pub(crate) fn to_json(self) -> Value {
        json!({
            "prompt_tokens": self.prompt,
            "completion_tokens": self.completion,
            "total_tokens": self.prompt + self.completion,
            "prompt_tokens_details": {"cached_tokens": self.cached, "cache_write_tokens": self.cache_write},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning},
        })
    }
}

/// The fields every chunk of one stream shares.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChunkHead {
    pub(crate) id: String,
    pub(crate) model: String,
    pub(crate) created: u64,
}

impl ChunkHead {
    /// A chunk with one choice carrying `delta`; `finish` is `(normalised, native)`.
    pub(crate) fn chunk(&self, delta: Value, finish: Option<(FinishReason, &str)>) -> Value {
        let (finish_reason, native) = match finish {
            Some((f, native)) => (json!(f.as_str()), json!(native)),
            None => (Value::Null, Value::Null),
        };
        let mut choice = Map::with_capacity(4);
        choice.insert("index".into(), json!(0));
        choice.insert("delta".into(), delta);
        choice.insert("finish_reason".into(), finish_reason);
        choice.insert("native_finish_reason".into(), native);
        let mut chunk = self.envelope("chat.completion.chunk");
        chunk.insert("choices".into(), Value::Array(vec![Value::Object(choice)]));
        Value::Object(chunk)
    }

    fn envelope(&self, object: &str) -> Map<String, Value> {
        let mut m = Map::with_capacity(6);
        m.insert("id".into(), json!(self.id));
        m.insert("object".into(), json!(object));
        m.insert("created".into(), json!(self.created));
        m.insert("model".into(), json!(self.model));
        m
    }

    /// The final usage-only chunk (`choices: []`).
    pub(crate) fn usage_chunk(&self, usage: Usage) -> Value {
        let mut chunk = self.envelope("chat.completion.chunk");
        chunk.insert("choices".into(), json!([]));
        chunk.insert("usage".into(), usage.to_json());
        Value::Object(chunk)
    }
}

/// One choice of a `chat.completion`.
pub(crate) fn choice(index: usize, message: Value, finish: (FinishReason, &str)) -> Value {
    let mut choice = Map::with_capacity(5);
    choice.insert("index".into(), json!(index));
    choice.insert("message".into(), message);
    choice.insert("finish_reason".into(), json!(finish.0.as_str()));
    choice.insert("native_finish_reason".into(), json!(finish.1));
    choice.insert("logprobs".into(), Value::Null);
    Value::Object(choice)
}

/// A whole `chat.completion`.
pub(crate) fn completion(head: &ChunkHead, choices: Vec<Value>, usage: Usage) -> Value {
    let mut body = head.envelope("chat.completion");
    body.insert("choices".into(), Value::Array(choices));
    body.insert("usage".into(), usage.to_json());
    Value::Object(body)
}

/// The assistant message of a non-streaming response.
pub(crate) fn assistant_message(
    text: &str,
    tool_calls: Vec<Value>,
    reasoning: &str,
    details: Vec<Value>,
) -> Value {
    let mut m = Map::new();
    m.insert("role".into(), json!("assistant"));
    let content = if text.is_empty() {
        Value::Null
    } else {
        json!(text)
    };
    m.insert("content".into(), content);
    m.insert("refusal".into(), Value::Null);
    if !tool_calls.is_empty() {
        m.insert("tool_calls".into(), Value::Array(tool_calls));
    }
    m.insert(
        "reasoning".into(),
        if reasoning.is_empty() {
            Value::Null
        } else {
            json!(reasoning)
        },
    );
    m.insert("reasoning_details".into(), Value::Array(details));
    Value::Object(m)
}

/// An OpenAI tool call with its arguments serialised.
pub(crate) fn tool_call(id: &str, name: &str, args: &Value) -> Value {
    json!({"id": id, "type": "function", "function": {"name": name, "arguments": args.to_string()}})
}

/// A `u64` field, 0 when absent.
pub(crate) fn count(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// The text of a message's `content`: a string, or the `text` parts joined.
pub(crate) fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// `data:<mime>;base64,<data>` split into `(mime, data)`.
pub(crate) fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let mime = meta.strip_suffix(";base64")?;
    Some((mime, data))
}

/// `stop` as a list of sequences.
pub(crate) fn stop_sequences(req: &Map<String, Value>) -> Option<Value> {
    match req.get("stop")? {
        Value::String(s) => Some(json!([s])),
        Value::Array(a) if !a.is_empty() => Some(Value::Array(a.clone())),
        _ => None,
    }
}

/// The client's output limit: `max_completion_tokens` wins over the deprecated `max_tokens`.
pub(crate) fn max_tokens(req: &Map<String, Value>) -> Option<u64> {
    req.get("max_completion_tokens")
        .and_then(Value::as_u64)
        .or_else(|| req.get("max_tokens").and_then(Value::as_u64))
}

/// The arguments string of a tool call parsed to JSON (an empty string is `{}`).
pub(crate) fn parse_arguments(call: &Value, field: &str) -> Result<Value, TranslateError> {
    let args = call
        .pointer("/function/arguments")
        .and_then(Value::as_str)
        .unwrap_or("");
    if args.trim().is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_str(args).map_err(|e| {
        TranslateError::new(format!("{field}.function.arguments is not valid JSON: {e}"))
    })
}

/// The share of the output budget each effort level spends on reasoning (SPEC 2.5).
pub(crate) fn effort_fraction(effort: &str) -> Option<f64> {
    Some(match effort {
        "max" | "xhigh" => 0.95,
        "high" => 0.8,
        "medium" => 0.5,
        "low" => 0.2,
        "minimal" => 0.1,
        _ => return None,
    })
}

/// What the client asked for with `reasoning`, `reasoning_effort` and `include_reasoning`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reasoning {
    /// Explicitly off (`effort: "none"`, `enabled: false`).
    Off,
    /// An effort level other than `none`.
    Effort(String),
    /// An explicit token budget.
    Budget(u64),
    /// On, with default settings.
    Default,
}

impl Reasoning {
    /// `None` when the request says nothing about reasoning.
    pub(crate) fn from_request(req: &Map<String, Value>) -> Result<Option<Self>, TranslateError> {
        let obj = req.get("reasoning").and_then(Value::as_object);
        let field = |k: &str| obj.and_then(|o| o.get(k));
        let effort = field("effort").and_then(Value::as_str);
        let shorthand = req.get("reasoning_effort").and_then(Value::as_str);
        if let (Some(a), Some(b)) = (effort, shorthand) {
            if a != b {
                return Err(TranslateError::new(format!(
                    "reasoning.effort ({a}) and reasoning_effort ({b}) disagree"
                )));
            }
        }
        if let Some(budget) = field("max_tokens").and_then(Value::as_u64) {
            return Ok(Some(Reasoning::Budget(budget)));
        }
        if let Some(e) = effort.or(shorthand) {
            if e == "none" {
                return Ok(Some(Reasoning::Off));
            }
            if effort_fraction(e).is_none() {
                return Err(TranslateError::new(format!(
                    "reasoning.effort: unknown level {e:?}"
                )));
            }
            return Ok(Some(Reasoning::Effort(e.to_owned())));
        }
        let enabled = field("enabled")
            .and_then(Value::as_bool)
            .or_else(|| req.get("include_reasoning").and_then(Value::as_bool));
        Ok(match enabled {
            Some(true) => Some(Reasoning::Default),
            Some(false) => Some(Reasoning::Off),
            None => None,
        })
    }
}

/// Whether the client asked not to see the reasoning text.
pub(crate) fn reasoning_excluded(req: &Map<String, Value>) -> bool {
    req.get("reasoning")
        .and_then(|r| r.get("exclude"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn reasoning_forms() {
        let r = |v| Reasoning::from_request(&req(v));
        assert_eq!(r(json!({})), Ok(None));
        assert_eq!(
            r(json!({"reasoning_effort": "none"})),
            Ok(Some(Reasoning::Off))
        );
        assert_eq!(
            r(json!({"reasoning": {"effort": "high"}})),
            Ok(Some(Reasoning::Effort("high".into())))
        );
        assert_eq!(
            r(json!({"reasoning": {"max_tokens": 2000, "effort": "low"}})),
            Ok(Some(Reasoning::Budget(2000)))
        );
        assert_eq!(
            r(json!({"reasoning": {"enabled": true}})),
            Ok(Some(Reasoning::Default))
        );
        assert!(r(json!({"reasoning": {"effort": "high"}, "reasoning_effort": "low"})).is_err());
        assert!(r(json!({"reasoning": {"effort": "huge"}})).is_err());
    }

    #[test]
    fn data_urls() {
        assert_eq!(
            parse_data_url("data:image/png;base64,AAAA"),
            Some(("image/png", "AAAA"))
        );
        assert_eq!(parse_data_url("https://x/y.png"), None);
    }
}

/// OpenAI's `tool_choice`, read once for every target API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ToolChoice<'a> {
    /// `"auto"`.
    Auto,
    /// `"none"`.
    None,
    /// `"required"`: some tool must be called.
    Required,
    /// `{"type": "function", "function": {"name"}}`: this tool must be called.
    Function(&'a str),
}

/// Reads `tool_choice`; `None` when absent or null; an unknown value is an error naming it.
pub(crate) fn tool_choice(
    req: &Map<String, Value>,
) -> Result<Option<ToolChoice<'_>>, TranslateError> {
    Ok(Some(match req.get("tool_choice") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            other => {
                return Err(TranslateError::new(format!(
                    "tool_choice: unknown value {other:?}"
                )));
            }
        },
        Some(obj) => ToolChoice::Function(
            obj.pointer("/function/name")
                .and_then(Value::as_str)
                .ok_or_else(|| TranslateError::new("tool_choice.function.name: missing"))?,
        ),
    }))
}
