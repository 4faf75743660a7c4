//! OpenAI-compatible upstreams: request rewriting, error bodies and the stream mapper.

use super::pieces::Pieces;
use super::splice::ChunkWriter;
use super::stream::StreamMapper;
use crate::BoxError;
use crate::catalog::Endpoint;
use crate::classify::error_type_from_message;
use crate::context::{ApiKind, ChatRequest};
use crate::error::GatewayError;
use crate::sse::Event;
use crate::upstream::{UpstreamError, UpstreamErrorKind};
use bytes::Bytes;
use http::StatusCode;
use serde_json::Value;
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
        ApiKind::Embeddings => "/embeddings",
    }
}

/// The body for an OpenAI-compatible upstream: the client's body with `model` rewritten,
/// gateway-only fields removed, unsupported parameters dropped, `user` hashed, and usage
/// requested on streams.
///
/// Written field by field straight from the parsed request — the body is never cloned. A large
/// field no layer changed is copied from the client's bytes ([`ChatRequest::verbatim_field`]):
/// serialising `messages` again would escape the whole conversation a second time.
pub(crate) fn request_body(
    chat: &ChatRequest,
    endpoint: &Endpoint,
) -> Result<Pieces, serde_json::Error> {
    let to_openrouter = &*endpoint.provider.slug == "openrouter";
    // Large fields go out as shared pieces; the rest is copied or serialised here.
    let inline = if chat.prompt_chars >= MIN_SHARED_PIECE {
        512
    } else {
        256 + chat.prompt_chars + chat.prompt_chars / 8
    };
    let mut out = Pieces::with_capacity(inline);
    let mut obj = ObjectWriter::new(&mut out);
    let mut has_effort = false;
    // `fields`, not `body()`: a deferred `messages` (its stand-in here) is copied from the
    // client's bytes below without ever being parsed.
    for (k, v) in &chat.fields {
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
                obj.entry(key, &hex::encode(&digest[..16]))?;
                continue;
            }
        }
        has_effort |= key == "reasoning_effort";
        match chat.verbatim_shared(key) {
            Some(raw) => obj.raw_entry(key, raw)?,
            None => {
                // A deferred `messages` always has its bytes (`ChatRequest` keeps them in step).
                debug_assert!(!(chat.messages_deferred && key == "messages"));
                obj.entry(key, v)?
            }
        }
    }
    if !to_openrouter
        && !has_effort
        && (endpoint.supports("reasoning") || endpoint.supports("reasoning_effort"))
    {
        if let Some(effort) = chat
            .field("reasoning")
            .and_then(|r| r.get("effort"))
            .and_then(Value::as_str)
        {
            obj.entry("reasoning_effort", effort)?;
        }
    }
    obj.entry("model", &endpoint.upstream_model)?;
    if chat.stream {
        obj.raw_entry(
            "stream_options",
            Bytes::from_static(br#"{"include_usage":true}"#),
        )?;
    }
    obj.end();
    Ok(out)
}

/// Pieces shorter than this are copied: a separate piece (an iovec, a frame) costs more.
const MIN_SHARED_PIECE: usize = 4096;

/// Writes a JSON object entry by entry: serialised values, or raw JSON sent as it is.
struct ObjectWriter<'a> {
    out: &'a mut Pieces,
    empty: bool,
}

impl<'a> ObjectWriter<'a> {
    fn new(out: &'a mut Pieces) -> Self {
        out.small().push(b'{');
        ObjectWriter { out, empty: true }
    }

    fn key(&mut self, key: &str) -> Result<(), serde_json::Error> {
        let small = self.out.small();
        if !std::mem::take(&mut self.empty) {
            small.push(b',');
        }
        serde_json::to_writer(&mut *small, key)?;
        small.push(b':');
        Ok(())
    }

    fn entry<T: serde::Serialize + ?Sized>(
        &mut self,
        key: &str,
        value: &T,
    ) -> Result<(), serde_json::Error> {
        self.key(key)?;
        serde_json::to_writer(self.out.small(), value)
    }

    /// `raw` must be one valid JSON value (the parser's own slice of the client's body).
    fn raw_entry(&mut self, key: &str, raw: Bytes) -> Result<(), serde_json::Error> {
        self.key(key)?;
        if raw.len() >= MIN_SHARED_PIECE {
            self.out.push(raw);
        } else {
            self.out.small().extend_from_slice(&raw);
        }
        Ok(())
    }

    fn end(self) {
        self.out.small().push(b'}');
    }
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
            provider: self.provider.as_str().into(),
            detail: format!("malformed JSON in stream event: {e}"),
        })?;
        if !v.is_object() {
            // Valid JSON but no chunk (a string, a number): garbage, not passed on.
            return Err(Box::new(UpstreamError {
                kind: UpstreamErrorKind::Invalid,
                provider: self.provider.as_str().into(),
                detail: format!(
                    "a stream event is not a JSON object: {}",
                    &data[..data.len().min(200)]
                ),
            }));
        }
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
        chunks: &mut ChunkWriter,
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
            crate::context::parse_request(ApiKind::Chat, json.as_bytes(), &http::HeaderMap::new())
                .expect("parse");
        chat.stream = stream;
        let e = endpoint(
            "acme",
            "supported_parameters = [\"temperature\", \"reasoning\"]\n",
        );
        serde_json::from_slice(&request_body(&chat, &e).expect("bytes").to_vec()).expect("json")
    }

    #[test]
    fn copies_unchanged_large_fields_byte_for_byte() {
        // Spacing and escapes the serialiser would normalise prove the bytes were copied.
        let messages =
            r#"[ {"role" : "user", "content" : "caf\u00e9 \/ a question long enough to copy"} ]"#;
        let json = format!(r#"{{"model":"a/m","messages":{messages},"temperature":0.5}}"#);
        let mut chat =
            crate::context::parse_request(ApiKind::Chat, json.as_bytes(), &http::HeaderMap::new())
                .expect("parse");
        let e = endpoint("acme", "supported_parameters = [\"temperature\"]\n");
        let bytes = request_body(&chat, &e).expect("bytes").to_vec();
        let text = String::from_utf8(bytes).expect("utf-8");
        assert!(text.contains(messages), "{text}");
        let v: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["model"], "up-m");
        assert_eq!(v["temperature"], 0.5);
        // A layer that changes the field gets its value serialised, not the stale bytes.
        chat.set_field(
            "messages",
            serde_json::json!([{"role": "user", "content": "new"}]),
        );
        let v: Value = serde_json::from_slice(&request_body(&chat, &e).expect("bytes").to_vec())
            .expect("json");
        assert_eq!(v["messages"][0]["content"], "new");
        chat.body_mut()
            .insert("temperature".into(), Value::from(0.25));
        let v: Value = serde_json::from_slice(&request_body(&chat, &e).expect("bytes").to_vec())
            .expect("json");
        assert_eq!(v["temperature"], 0.25);
    }

    #[test]
    fn unparsed_messages_are_copied_whatever_their_length() {
        // Short, and spaced as no serialiser would: only a copy of the bytes keeps it so.
        let messages = r#"[ {"role":"user" , "content":"hi"} ]"#;
        let json = format!(r#"{{"model":"a/m","messages":{messages}}}"#);
        let chat =
            crate::context::parse_request(ApiKind::Chat, json.as_bytes(), &http::HeaderMap::new())
                .expect("parse");
        assert!(chat.messages_deferred);
        let e = endpoint("acme", "");
        let text =
            String::from_utf8(request_body(&chat, &e).expect("bytes").to_vec()).expect("utf-8");
        assert!(
            text.contains(&format!(r#""messages":{messages}"#)),
            "{text}"
        );
        assert!(chat.full.get().is_none(), "messages were never parsed");
    }

    #[tokio::test]
    async fn large_fields_are_sent_as_shared_pieces() {
        use http_body::Body as _;
        use http_body_util::BodyExt;
        let content = "long \\\" text ".repeat(1000);
        let json = format!(
            r#"{{"model":"a/m","messages":[{{"role":"user","content":"{content}"}}],"temperature":1}}"#
        );
        let chat =
            crate::context::parse_request(ApiKind::Chat, json.as_bytes(), &http::HeaderMap::new())
                .expect("parse");
        let e = endpoint("acme", "supported_parameters = [\"temperature\"]\n");
        let body = request_body(&chat, &e).expect("body").into_body();
        let len = body.size_hint().exact().expect("exact length");
        let bytes = body.collect().await.expect("collect").to_bytes();
        assert_eq!(bytes.len() as u64, len);
        let v: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(v["messages"], chat.body()["messages"]);
        assert_eq!(v["model"], "up-m");
        assert_eq!(v["temperature"], 1);
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
        let mut chunks = ChunkWriter::new(&stamp, "chat.completion.chunk");
        let ev = Event {
            event: None,
            data: data.into(),
        };
        let (mut values, mut frames) = (Vec::new(), VecDeque::new());
        let r = mapper.on_event_framed(&ev, &mut chunks, &mut values, &mut frames);
        let mut out: Vec<Value> = frames
            .iter()
            .map(|f| serde_json::from_slice(&f[b"data: ".len()..]).expect("json"))
            .collect();
        out.append(&mut values);
        (r, out)
    }

    #[test]
    fn a_stream_event_that_is_json_but_not_an_object_is_an_upstream_error() {
        let mut m = OpenAiMapper::new("Acme".into());
        for data in [r#""[DONE""#, "7", "[1]"] {
            let (r, out) = map(&mut m, data);
            assert!(r.is_err() && out.is_empty(), "{data}");
        }
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
