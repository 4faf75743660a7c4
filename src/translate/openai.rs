//! OpenAI-compatible upstreams: request rewriting, error bodies and the stream mapper.

use super::splice::ChunkWriter;
use super::stream::StreamMapper;
use crate::BoxError;
use crate::catalog::Endpoint;
use crate::classify::error_type_from_message;
use crate::error::GatewayError;
use crate::ext::{ApiKind, ChatRequest};
use crate::sse::Event;
use crate::upstream::{UpstreamError, UpstreamErrorKind};
use bytes::Bytes;
use http::StatusCode;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;

/// Fields only the gateway understands: never sent to a plain OpenAI-compatible upstream.
const GATEWAY_ONLY: &[&str] = &[
    "models",
    "provider",
    "route",
    "transforms",
    "plugins",
    "usage",
    "preset",
    "session_id",
    "debug",
    "reasoning",
    "include_reasoning",
    "top_a",
    "verbosity_hint",
];

/// Parameters of the OpenRouter vocabulary; those an endpoint does not list are dropped (SPEC 11).
/// Fields outside this list are provider extras and pass through untouched.
const KNOWN_PARAMETERS: &[&str] = &[
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "top_a",
    "frequency_penalty",
    "presence_penalty",
    "repetition_penalty",
    "max_tokens",
    "max_completion_tokens",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "prediction",
    "seed",
    "response_format",
    "stop",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "reasoning_effort",
    "web_search_options",
    "verbosity",
];

/// The upstream path for the client API.
pub(crate) fn path(kind: ApiKind) -> &'static str {
    match kind {
        ApiKind::Chat => "/chat/completions",
        ApiKind::Completions => "/completions",
    }
}

/// The body for an OpenAI-compatible upstream: the client's body with `model` rewritten,
/// gateway-only fields removed, unsupported parameters dropped, `user` hashed, and usage
/// requested on streams.
///
/// Written field by field straight from the parsed request — the body is never cloned, and
/// fields the gateway does not touch are serialised once.
pub(crate) fn request_bytes(
    chat: &ChatRequest,
    endpoint: &Endpoint,
) -> Result<Vec<u8>, serde_json::Error> {
    use serde::ser::{SerializeMap, Serializer};
    let to_openrouter = endpoint.provider.slug == "openrouter";
    let mut out = Vec::with_capacity(256 + chat.prompt_chars + chat.prompt_chars / 8);
    let mut ser = serde_json::Serializer::new(&mut out);
    let mut map = ser.serialize_map(None)?;
    let mut has_effort = false;
    for (k, v) in &chat.body {
        let key = k.as_str();
        let skip = match key {
            // Written below with the gateway's values.
            "model" | "stream_options" => true,
            // OpenRouter understands its own fields; routing was already done here.
            "models" | "provider" | "route" if to_openrouter => true,
            _ if to_openrouter => false,
            _ => {
                GATEWAY_ONLY.contains(&key)
                    || (KNOWN_PARAMETERS.contains(&key) && !endpoint.supports(key))
            }
        };
        if skip {
            continue;
        }
        if key == "user" {
            if let Value::String(user) = v {
                // SPEC 2.1: the end-user id is hashed before it leaves the gateway.
                let digest = Sha256::digest(user.as_bytes());
                map.serialize_entry("user", &hex::encode(&digest[..16]))?;
                continue;
            }
        }
        has_effort |= key == "reasoning_effort";
        map.serialize_entry(key, v)?;
    }
    if !to_openrouter
        && !has_effort
        && (endpoint.supports("reasoning") || endpoint.supports("reasoning_effort"))
    {
        if let Some(effort) = chat
            .body
            .get("reasoning")
            .and_then(|r| r.get("effort"))
            .and_then(Value::as_str)
        {
            map.serialize_entry("reasoning_effort", effort)?;
        }
    }
    map.serialize_entry("model", &endpoint.upstream_model)?;
    if chat.stream {
        let mut opts = Map::new();
        opts.insert("include_usage".into(), Value::Bool(true));
        map.serialize_entry("stream_options", &opts)?;
    }
    map.end()?;
    Ok(out)
}

/// An OpenAI-style error body (`{"error":{"message","type","code"}}` or anything else) as the
/// client's error: the provider's own message, its raw body, its name.
pub(crate) fn error_from_body(status: u16, body: &[u8], provider: &str) -> GatewayError {
    let raw = String::from_utf8_lossy(body).into_owned();
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let err = parsed.as_ref().and_then(|v| v.get("error"));
    let message = err
        .and_then(|e| {
            e.get("message")
                .and_then(Value::as_str)
                .or_else(|| e.as_str())
        })
        .map(str::to_owned)
        .or_else(|| {
            parsed
                .as_ref()
                .and_then(|v| v.get("message"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| truncate(raw.trim(), 500).to_owned());
    let code = err
        .and_then(|e| e.get("code"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let error_type = match code.as_deref() {
        Some("context_length_exceeded") => "context_length_exceeded",
        Some("content_filter" | "content_policy_violation") => "content_policy_violation",
        Some("rate_limit_exceeded") => "rate_limit_exceeded",
        _ => error_type_from_message(status, &message),
    };
    let status_code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let message = if message.is_empty() {
        format!("{provider} returned HTTP {status}")
    } else {
        format!("{provider}: {message}")
    };
    let mut e = GatewayError::new(status_code, error_type, message)
        .with_metadata("provider_name", provider)
        .with_metadata("raw", raw);
    if let Some(code) = code {
        e = e.with_metadata("provider_code", code);
    }
    e
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Streams of OpenAI-compatible upstreams: chunks pass through (stamped later); `[DONE]` ends
/// the stream; an `error` object inside a chunk is a provider error.
#[derive(Debug)]
pub(crate) struct OpenAiMapper {
    provider: String,
    saw_finish: bool,
}

impl OpenAiMapper {
    pub(crate) fn new(provider: String) -> Self {
        OpenAiMapper {
            provider,
            saw_finish: false,
        }
    }
}

impl OpenAiMapper {
    /// `[DONE]`, or nothing to map, or the chunk's text.
    fn data(ev: &Event) -> Result<&str, bool> {
        match ev.data.trim() {
            "[DONE]" => Err(true),
            "" => Err(false),
            data => Ok(data),
        }
    }
}

impl StreamMapper for OpenAiMapper {
    fn on_event(&mut self, ev: &Event, out: &mut Vec<Value>) -> Result<bool, BoxError> {
        let data = match Self::data(ev) {
            Ok(data) => data,
            Err(done) => return Ok(done),
        };
        let v: Value = serde_json::from_str(data).map_err(|e| UpstreamError {
            kind: UpstreamErrorKind::Invalid,
            provider: self.provider.clone(),
            detail: format!("malformed JSON in stream event: {e}"),
        })?;
        if let Some((status, message, error_type)) = super::normalize::embedded_error(&v) {
            let kind = error_type
                .as_deref()
                .map_or_else(|| error_type_from_message(status, &message), leak_known);
            let e = GatewayError::new(
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
                kind,
                format!("{}: {message}", self.provider),
            )
            .with_metadata("provider_name", self.provider.clone())
            .with_metadata("raw", data.to_owned());
            return Err(Box::new(e));
        }
        if v.get("choices").and_then(Value::as_array).is_some_and(|c| {
            c.iter()
                .any(|c| c.get("finish_reason").is_some_and(|f| !f.is_null()))
        }) {
            self.saw_finish = true;
        }
        out.push(v);
        Ok(false)
    }

    /// An ordinary chunk is spliced (no `Value` tree); anything else — malformed JSON, an
    /// embedded error, an odd shape — takes [`StreamMapper::on_event`].
    fn on_event_framed(
        &mut self,
        ev: &Event,
        chunks: &ChunkWriter,
        out: &mut Vec<Value>,
        frames: &mut VecDeque<Bytes>,
    ) -> Result<bool, BoxError> {
        let data = match Self::data(ev) {
            Ok(data) => data,
            Err(done) => return Ok(done),
        };
        match chunks.splice(data) {
            Some((frame, finished)) => {
                self.saw_finish |= finished;
                frames.push_back(frame);
                Ok(false)
            }
            None => self.on_event(ev, out),
        }
    }

    fn on_end(&mut self, _out: &mut Vec<Value>) -> Result<bool, BoxError> {
        // Some OpenAI-compatible servers omit `[DONE]`; a stream that finished its choice is whole.
        Ok(self.saw_finish)
    }
}

/// Maps a provider's error type string onto the static vocabulary (unknown → `server`).
pub(crate) fn leak_known(t: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "context_length_exceeded",
        "max_tokens_exceeded",
        "token_limit_exceeded",
        "string_too_long",
        "authentication",
        "permission_denied",
        "payment_required",
        "rate_limit_exceeded",
        "provider_overloaded",
        "provider_unavailable",
        "invalid_request",
        "invalid_prompt",
        "not_found",
        "payload_too_large",
        "unprocessable",
        "content_policy_violation",
        "refusal",
        "server",
        "timeout",
    ];
    KNOWN.iter().find(|k| **k == t).copied().unwrap_or("server")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Catalog, Config};
    use std::path::Path;

    fn endpoint(slug: &str, params: &str) -> Endpoint {
        let text = format!(
            "[[providers]]\nslug = \"{slug}\"\nbase_url = \"http://x/v1\"\n[[models]]\nslug = \"a/m\"\n[[models.endpoints]]\nprovider = \"{slug}\"\nmodel = \"up-m\"\n{params}"
        );
        let cfg = Config::parse(Path::new("t.toml"), &text).expect("config");
        let cat = Catalog::from_config_with_env(&cfg, Path::new("."), &|_| None).expect("catalog");
        cat.model("a/m").expect("model").endpoints[0].clone()
    }

    fn body(json: &str, stream: bool) -> Value {
        let mut chat =
            crate::parse::parse_request(ApiKind::Chat, json.as_bytes(), &http::HeaderMap::new())
                .expect("parse");
        chat.stream = stream;
        let e = endpoint(
            "acme",
            "supported_parameters = [\"temperature\", \"reasoning\"]\n",
        );
        serde_json::from_slice(&request_bytes(&chat, &e).expect("bytes")).expect("json")
    }

    #[test]
    fn rewrites_only_what_it_must() {
        let v = body(
            r#"{"model":"a/m","messages":[{"role":"user","content":"hi"}],"temperature":0.5,"top_k":3,
                "safe_prompt":true,"provider":{"sort":"price"},"models":["b/c"],"user":"alice",
                "reasoning":{"effort":"high"},"stream_options":{"include_usage":false}}"#,
            true,
        );
        assert_eq!(v["model"], "up-m");
        assert_eq!(v["temperature"], 0.5);
        assert!(
            v.get("top_k").is_none(),
            "unsupported parameters are dropped"
        );
        assert_eq!(v["safe_prompt"], true, "provider extras pass through");
        assert!(
            v.get("provider").is_none()
                && v.get("models").is_none()
                && v.get("reasoning").is_none()
        );
        assert_eq!(v["reasoning_effort"], "high");
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["user"].as_str().map(str::len), Some(32), "hashed");
        let v = body(
            r#"{"model":"a/m","messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":true}}"#,
            false,
        );
        assert!(v.get("stream_options").is_none());
    }

    fn map(mapper: &mut OpenAiMapper, data: &str) -> (Result<bool, BoxError>, Vec<Value>) {
        let stamp = super::super::normalize::Stamp {
            id: "gen-1".into(),
            model: "a/m".into(),
            provider: "Acme".into(),
            strip_reasoning: false,
        };
        let chunks = ChunkWriter::new(&stamp, "chat.completion.chunk");
        let ev = Event {
            event: None,
            data: data.into(),
        };
        let (mut values, mut frames) = (Vec::new(), VecDeque::new());
        let r = mapper.on_event_framed(&ev, &chunks, &mut values, &mut frames);
        let mut out: Vec<Value> = frames
            .iter()
            .map(|f| serde_json::from_slice(&f[b"data: ".len()..]).expect("json"))
            .collect();
        out.append(&mut values);
        (r, out)
    }

    #[test]
    fn stream_events_keep_their_meaning() {
        let mut m = OpenAiMapper::new("Acme".into());
        let (r, out) = map(&mut m, r#"{"choices":[{"delta":{"content":"x"}}]}"#);
        assert!(matches!(r, Ok(false)) && out[0]["model"] == "a/m");
        // Pretty-printed: the Value path, same meaning.
        let (r, out) = map(&mut m, "{ \"choices\": [ {\"finish_reason\": \"stop\"} ] }");
        assert!(matches!(r, Ok(false)) && out[0]["choices"][0]["finish_reason"] == "stop");
        assert!(
            m.on_end(&mut Vec::new()).is_ok_and(|whole| whole),
            "saw the finish"
        );
        assert!(matches!(map(&mut m, " [DONE] ").0, Ok(true)));
        assert!(matches!(map(&mut m, "").0, Ok(false)));

        let (r, out) = map(&mut m, r#"{"choices":[{"delta":{"content":"x"}}"#);
        let e = r.expect_err("malformed");
        let e = e
            .downcast_ref::<UpstreamError>()
            .expect("an upstream error");
        assert_eq!(e.kind, UpstreamErrorKind::Invalid);
        assert!(out.is_empty());

        let (r, _) = map(
            &mut m,
            r#"{"error":{"message":"slow down","code":429,"type":"rate_limit_exceeded"}}"#,
        );
        let e = r.expect_err("embedded error");
        let e = e.downcast_ref::<GatewayError>().expect("a gateway error");
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.error_type, "rate_limit_exceeded");
    }
}
