//! Gemini `GenerateContentResponse` and error → OpenAI `chat.completion` and gateway errors.

use super::REASONING_FORMAT;
use crate::translate::common::{
    ChunkHead, FinishReason, UpstreamError, Usage, assistant_message, choice, completion, count,
    error_type_for_status, now, tool_call,
};
use serde_json::{Value, json};

/// Translates a non-streaming Gemini `generateContent` body into an OpenAI `chat.completion`.
///
/// Function calls get ids `call_<responseId>_<n>` unless Gemini sent its own; thought
/// signatures become `reasoning.encrypted` details whose `id` is the tool call they belong to,
/// so [`request`](super::request) can put them back on the next turn.
pub fn response(body: &[u8]) -> Result<Value, UpstreamError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| UpstreamError::invalid_body("JSON body", &e, body))?;
    if v.get("error").is_some() || v.is_array() {
        return Err(error(0, body));
    }
    let head = head(&v, now());
    let mut seen = Seen::default();
    let candidates: Vec<Option<&Value>> = match v.get("candidates").and_then(Value::as_array) {
        Some(c) if !c.is_empty() => c.iter().map(Some).collect(),
        _ => vec![None], // a blocked prompt still gets one (empty) choice
    };
    let mut choices = Vec::with_capacity(candidates.len());
    for (i, candidate) in candidates.into_iter().enumerate() {
        let mut parts = read_parts(candidate, &head.id, &mut seen);
        for call in parts.calls.iter_mut().filter_map(Value::as_object_mut) {
            call.remove("index");
        }
        let finish = finish(&v, candidate, !parts.calls.is_empty());
        let message = assistant_message(&parts.text, parts.calls, &parts.reasoning, parts.details);
        choices.push(choice(
            i,
            message,
            finish.unwrap_or((FinishReason::Stop, "")),
        ));
    }
    Ok(completion(&head, choices, usage(&v)))
}

pub(crate) fn head(v: &Value, created: u64) -> ChunkHead {
    ChunkHead {
        id: v
            .get("responseId")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        model: v
            .get("modelVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        created,
    }
}

/// How many tool calls and reasoning details a response or stream has produced so far.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    pub(crate) calls: usize,
    pub(crate) details: usize,
}

/// What one candidate's parts say, in OpenAI fields.
#[derive(Debug, Default)]
pub(crate) struct Parts {
    pub(crate) text: String,
    pub(crate) reasoning: String,
    /// Tool calls, each with its stream `index` (ignored by non-streaming clients).
    pub(crate) calls: Vec<Value>,
    pub(crate) details: Vec<Value>,
}

/// A candidate's parts, sorted into OpenAI fields.
pub(crate) fn read_parts(candidate: Option<&Value>, response_id: &str, seen: &mut Seen) -> Parts {
    let mut out = Parts::default();
    let parts = candidate
        .and_then(|c| c.get("content"))
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array);
    for part in parts.into_iter().flatten() {
        let mut call_id = Value::Null;
        if let Some(text) = part.get("text").and_then(Value::as_str) {
            if part.get("thought").and_then(Value::as_bool) == Some(true) {
                out.reasoning.push_str(text);
                out.details
                    .push(json!({"type": "reasoning.text", "text": text,
                                        "format": REASONING_FORMAT, "index": seen.details}));
                seen.details += 1;
            } else {
                out.text.push_str(text);
            }
        } else if let Some(fc) = part.get("functionCall") {
            let id = match fc.get("id").and_then(Value::as_str) {
                Some(id) => id.to_owned(),
                None if response_id.is_empty() => format!("call_{}", seen.calls),
                None => format!("call_{response_id}_{}", seen.calls),
            };
            let name = fc.get("name").and_then(Value::as_str).unwrap_or("");
            let mut call = tool_call(&id, name, fc.get("args").unwrap_or(&json!({})));
            call["index"] = json!(seen.calls);
            seen.calls += 1;
            out.calls.push(call);
            call_id = json!(id);
        }
        if let Some(sig) = part.get("thoughtSignature") {
            out.details.push(
                json!({"type": "reasoning.encrypted", "data": sig, "id": call_id,
                                    "format": REASONING_FORMAT, "index": seen.details}),
            );
            seen.details += 1;
        }
    }
    out
}

/// The first candidate, the only one streams are translated for. (`Value::pointer` would
/// allocate per path segment, once per stream chunk.)
pub(crate) fn first_candidate(v: &Value) -> Option<&Value> {
    v.get("candidates").and_then(|c| c.get(0))
}

/// The normalised and native finish reason of `candidate`, or of a response whose prompt
/// was blocked, if there is one.
pub(crate) fn finish<'a>(
    v: &'a Value,
    candidate: Option<&'a Value>,
    has_calls: bool,
) -> Option<(FinishReason, &'a str)> {
    if let Some(native) = candidate
        .and_then(|c| c.get("finishReason"))
        .and_then(Value::as_str)
    {
        let f = match native {
            "STOP" if has_calls => FinishReason::ToolCalls,
            "MAX_TOKENS" => FinishReason::Length,
            "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII"
            | "IMAGE_SAFETY" => FinishReason::ContentFilter,
            "MALFORMED_FUNCTION_CALL" | "UNEXPECTED_TOOL_CALL" | "OTHER" | "LANGUAGE" => {
                FinishReason::Error
            }
            _ => FinishReason::Stop,
        };
        return Some((f, native));
    }
    let blocked = v
        .pointer("/promptFeedback/blockReason")
        .and_then(Value::as_str);
    let no_candidates = v
        .get("candidates")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    match blocked {
        Some(reason) if no_candidates => Some((FinishReason::ContentFilter, reason)),
        _ => None,
    }
}

/// `usageMetadata` in OpenAI semantics: thinking tokens are completion tokens.
pub(crate) fn usage(v: &Value) -> Usage {
    let u = v.get("usageMetadata").unwrap_or(&Value::Null);
    let thoughts = count(u, "thoughtsTokenCount");
    Usage {
        prompt: count(u, "promptTokenCount") + count(u, "toolUsePromptTokenCount"),
        completion: count(u, "candidatesTokenCount") + thoughts,
        cached: count(u, "cachedContentTokenCount"),
        cache_write: 0,
        reasoning: thoughts,
    }
}

/// Maps a Gemini error (`{error:{code, message, status}}`, possibly wrapped in an array as
/// streaming endpoints do) to gateway terms, keeping the provider's message.
///
/// The `status` string decides; the HTTP `status` (0 when unknown) is the fallback.
pub fn error(status: u16, body: &[u8]) -> UpstreamError {
    let raw = String::from_utf8_lossy(body).into_owned();
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let e = v
        .get("error")
        .or_else(|| v.pointer("/0/error"))
        .unwrap_or(&Value::Null);
    let message = e
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("upstream returned HTTP {status}"));
    let code = e
        .get("code")
        .and_then(Value::as_u64)
        .map_or(status, |c| c as u16);
    let bad_key = message.contains("API key not valid") || raw.contains("API_KEY_INVALID");
    let (status, error_type) = match e.get("status").and_then(Value::as_str).unwrap_or("") {
        "INVALID_ARGUMENT" if bad_key => (401, "authentication"),
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => (400, "invalid_request"),
        "UNAUTHENTICATED" => (401, "authentication"),
        "PERMISSION_DENIED" => (403, "permission_denied"),
        "NOT_FOUND" => (404, "not_found"),
        "RESOURCE_EXHAUSTED" => (429, "rate_limit_exceeded"),
        "CANCELLED" => (499, "unmapped"),
        "INTERNAL" | "UNKNOWN" => (500, "server"),
        "UNAVAILABLE" => (503, "provider_overloaded"),
        "DEADLINE_EXCEEDED" => (504, "timeout"),
        _ if code == 0 => (502, "provider_unavailable"),
        _ => (code, error_type_for_status(code)),
    };
    UpstreamError {
        status,
        error_type,
        message,
        raw,
    }
}
