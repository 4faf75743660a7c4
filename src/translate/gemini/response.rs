//! Gemini `GenerateContentResponse` and error → OpenAI `chat.completion` and gateway errors.

use super::REASONING_FORMAT;
use crate::translate::common::{
    ChunkHead, FinishReason, ProviderError, Usage, assistant_message, choice, completion, count,
    error_type_for_status, now, tool_call,
};
use serde::Deserialize;
use serde_json::{Value, json};
use std::borrow::Cow;

/// The parts of a `GenerateContentResponse` the translation reads. Typed so streamed text is
/// borrowed from the input rather than copied into a map per chunk.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GenerateResponse<'a> {
    #[serde(borrow, default)]
    pub(crate) candidates: Vec<Candidate<'a>>,
    #[serde(default)]
    prompt_feedback: Value,
    #[serde(default)]
    pub(crate) usage_metadata: Option<Value>,
    #[serde(borrow, default)]
    model_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    response_id: Option<Cow<'a, str>>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Candidate<'a> {
    #[serde(borrow, default)]
    content: Option<Content<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Content<'a> {
    #[serde(borrow, default)]
    parts: Vec<Part<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(default)]
    thought: bool,
    #[serde(borrow, default)]
    function_call: Option<FunctionCall<'a>>,
    #[serde(borrow, default)]
    thought_signature: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct FunctionCall<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Cow<'a, str>,
    #[serde(default)]
    args: Value,
}

/// Parses one response body or stream chunk; an error object (bare or wrapped in an array, as
/// streaming endpoints send it) is `Err` mapped by [`error`].
pub(crate) fn parse<'a>(data: &'a str, what: &str) -> Result<GenerateResponse<'a>, ProviderError> {
    match serde_json::from_str::<GenerateResponse<'a>>(data) {
        Ok(r) if r.error.is_none() => Ok(r),
        Ok(_) => Err(error(0, data.as_bytes())),
        Err(e) => match serde_json::from_str::<Value>(data) {
            Ok(Value::Array(_)) => Err(error(0, data.as_bytes())),
            _ => Err(ProviderError::invalid_body(what, &e, data.as_bytes())),
        },
    }
}

/// Translates a non-streaming Gemini `generateContent` body into an OpenAI `chat.completion`.
///
/// Function calls get ids `call_<responseId>_<n>` unless Gemini sent its own; thought
/// signatures become `reasoning.encrypted` details whose `id` is the tool call they belong to,
/// so [`request`](super::request) can put them back on the next turn.
pub fn response(body: &[u8]) -> Result<Value, ProviderError> {
    let text = std::str::from_utf8(body).map_err(|e| ProviderError {
        status: 502,
        error_type: "provider_unavailable",
        message: format!("upstream returned an invalid JSON body: {e}"),
        raw: String::from_utf8_lossy(body).into_owned(),
    })?;
    let r = parse(text, "JSON body")?;
    let head = head(&r, now());
    let mut seen = Seen::default();
    let candidates: Vec<Option<&Candidate<'_>>> = if r.candidates.is_empty() {
        vec![None] // a blocked prompt still gets one (empty) choice
    } else {
        r.candidates.iter().map(Some).collect()
    };
    let mut choices = Vec::with_capacity(candidates.len());
    for (i, candidate) in candidates.into_iter().enumerate() {
        let mut parts = read_parts(candidate, &head.id, &mut seen);
        for call in parts.calls.iter_mut().filter_map(Value::as_object_mut) {
            call.remove("index");
        }
        let finish = finish(&r, candidate, !parts.calls.is_empty());
        let message = assistant_message(&parts.text, parts.calls, &parts.reasoning, parts.details);
        choices.push(choice(
            i,
            message,
            finish.unwrap_or((FinishReason::Stop, "")),
        ));
    }
    Ok(completion(&head, choices, usage(r.usage_metadata.as_ref())))
}

pub(crate) fn head(r: &GenerateResponse<'_>, created: u64) -> ChunkHead {
    ChunkHead {
        id: r.response_id.as_deref().unwrap_or("").to_owned(),
        model: r.model_version.as_deref().unwrap_or("").to_owned(),
        created,
    }
}

/// How many tool calls and reasoning details a response or stream has produced so far.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    pub(crate) calls: usize,
    pub(crate) details: usize,
    /// The detail index of the run of thought parts in progress: consecutive thoughts, even
    /// across stream chunks, are one `reasoning.text` detail.
    thought: Option<usize>,
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
pub(crate) fn read_parts(
    candidate: Option<&Candidate<'_>>,
    response_id: &str,
    seen: &mut Seen,
) -> Parts {
    let mut out = Parts::default();
    let parts = candidate
        .and_then(|c| c.content.as_ref())
        .map(|c| c.parts.as_slice());
    for part in parts.unwrap_or_default() {
        let mut call_id = Value::Null;
        if let Some(text) = part.text.as_deref() {
            if part.thought {
                out.reasoning.push_str(text);
                push_thought(&mut out.details, seen, text);
            } else {
                seen.thought = None;
                out.text.push_str(text);
            }
        } else if let Some(fc) = &part.function_call {
            seen.thought = None;
            let id = match fc.id.as_deref() {
                Some(id) => id.to_owned(),
                None if response_id.is_empty() => format!("call_{}", seen.calls),
                None => format!("call_{response_id}_{}", seen.calls),
            };
            let args = if fc.args.is_null() {
                &json!({})
            } else {
                &fc.args
            };
            let mut call = tool_call(&id, &fc.name, args);
            call["index"] = json!(seen.calls);
            seen.calls += 1;
            out.calls.push(call);
            call_id = json!(id);
        }
        if let Some(sig) = &part.thought_signature {
            seen.thought = None;
            out.details.push(
                json!({"type": "reasoning.encrypted", "data": sig, "id": call_id,
                                    "format": REASONING_FORMAT, "index": seen.details}),
            );
            seen.details += 1;
        }
    }
    out
}

/// Appends thought text to the open `reasoning.text` detail, or opens one.
fn push_thought(details: &mut Vec<Value>, seen: &mut Seen, text: &str) {
    let index = match seen.thought {
        Some(i) => i,
        None => {
            seen.details += 1;
            *seen.thought.insert(seen.details - 1)
        }
    };
    if let Some(Value::String(t)) = details
        .last_mut()
        .filter(|d| d["type"] == "reasoning.text" && d["index"] == index)
        .and_then(|d| d.get_mut("text"))
    {
        t.push_str(text);
        return;
    }
    details.push(
        json!({"type": "reasoning.text", "text": text, "format": REASONING_FORMAT, "index": index}),
    );
}

/// The normalised and native finish reason of `candidate`, or of a response whose prompt
/// was blocked, if there is one.
pub(crate) fn finish<'a>(
    r: &'a GenerateResponse<'_>,
    candidate: Option<&'a Candidate<'_>>,
    has_calls: bool,
) -> Option<(FinishReason, &'a str)> {
    if let Some(native) = candidate.and_then(|c| c.finish_reason.as_deref()) {
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
    let blocked = r.prompt_feedback.get("blockReason").and_then(Value::as_str);
    match blocked {
        Some(reason) if r.candidates.is_empty() => Some((FinishReason::ContentFilter, reason)),
        _ => None,
    }
}

/// `usageMetadata` in OpenAI semantics: thinking tokens are completion tokens.
pub(crate) fn usage(u: Option<&Value>) -> Usage {
    let u = u.unwrap_or(&Value::Null);
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
pub fn error(status: u16, body: &[u8]) -> ProviderError {
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
    ProviderError {
        status,
        error_type,
        message,
        raw,
    }
}
