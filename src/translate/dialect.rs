//! Glue between the translate layer and the Anthropic and Gemini translators: paths, request
//! bodies, stream mappers and errors, all in the gateway's terms.

use super::common::ProviderError;
use super::stream::StreamMapper;
use super::{anthropic, gemini};
use crate::BoxError;
use crate::catalog::{Api, Endpoint, Model};
use crate::context::{ApiKind, ChatRequest};
use crate::error::GatewayError;
use crate::sse::Event;
use http::StatusCode;
use serde_json::{Map, Value, json};

/// Default `max_tokens` for Anthropic, which requires one, when neither the request nor the
/// catalogue gives it.
const DEFAULT_MAX_TOKENS: u32 = 4096;

/// A provider's mapped error as the client's error.
pub(crate) fn gateway_error(e: ProviderError, provider: &str) -> GatewayError {
    // Status 0: an error inside a 200 or mid-stream, no HTTP status of its own.
    let status = if e.status == 0 { 502 } else { e.status };
    GatewayError::new(
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
        e.error_type,
        format!("{provider}: {}", e.message),
    )
    .with_metadata("provider_name", provider)
    .with_metadata("raw", e.raw)
}

/// The chat-shaped body a legacy `/completions` request stands for (for upstreams without one).
fn as_chat(chat: &ChatRequest) -> Map<String, Value> {
    let mut body = chat.body().clone();
    if chat.kind == ApiKind::Completions {
        let prompt = match body.remove("prompt") {
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("\n"),
            Some(Value::String(s)) => s,
            _ => String::new(),
        };
        body.insert(
            "messages".into(),
            json!([{"role": "user", "content": prompt}]),
        );
    }
    body
}

/// Path and body for an Anthropic or Gemini upstream.
pub(crate) fn request(
    chat: &ChatRequest,
    model: &Model,
    endpoint: &Endpoint,
) -> Result<(String, Vec<u8>), BoxError> {
    let body = as_chat(chat);
    let bad =
        |e: super::TranslateError| -> BoxError { Box::new(GatewayError::bad_request(e.message)) };
    match endpoint.provider.api {
        Api::Anthropic => {
            let max = endpoint
                .max_completion_tokens
                .or(model.max_completion_tokens)
                .unwrap_or(DEFAULT_MAX_TOKENS);
            let v = anthropic::request(&body, &endpoint.upstream_model, max).map_err(bad)?;
            Ok(("/messages".to_owned(), serde_json::to_vec(&v)?))
        }
        Api::Gemini => {
            let v = gemini::request(&body, &endpoint.upstream_model).map_err(bad)?;
            let model = endpoint.upstream_model.trim_start_matches("models/");
            let path = if chat.stream {
                format!("/models/{model}:streamGenerateContent?alt=sse")
            } else {
                format!("/models/{model}:generateContent")
            };
            Ok((path, serde_json::to_vec(&v)?))
        }
        Api::OpenAi => Err("dialect::request is for Anthropic and Gemini upstreams".into()),
    }
}

/// A successful non-streaming body in OpenAI shape.
pub(crate) fn response(
    api: Api,
    kind: ApiKind,
    bytes: &[u8],
    provider: &str,
) -> Result<Value, GatewayError> {
    let mut v = match api {
        Api::Anthropic => anthropic::response(bytes),
        Api::Gemini => gemini::response(bytes),
        Api::OpenAi => {
            return Err(GatewayError::bad_request(
                "dialect::response is for Anthropic and Gemini",
            ));
        }
    }
    .map_err(|e| gateway_error(e, provider))?;
    if kind == ApiKind::Completions {
        // Legacy clients read `choices[].text`.
        if let Some(choices) = v.get_mut("choices").and_then(Value::as_array_mut) {
            for c in choices {
                let text = c["message"]["content"].as_str().unwrap_or("").to_owned();
                if let Some(o) = c.as_object_mut() {
                    o.remove("message");
                    o.insert("text".into(), Value::from(text));
                }
            }
        }
    }
    Ok(v)
}

/// An error status from an Anthropic or Gemini upstream.
pub(crate) fn error(api: Api, status: u16, bytes: &[u8], provider: &str) -> GatewayError {
    let e = match api {
        Api::Anthropic => anthropic::error(status, bytes),
        _ => gemini::error(status, bytes),
    };
    gateway_error(e, provider)
}

/// Anthropic's stream: complete at `message_stop`.
pub(crate) struct AnthropicMapper {
    inner: anthropic::StreamTranslator,
    provider: String,
}

impl AnthropicMapper {
    pub(crate) fn new(provider: String) -> Self {
        AnthropicMapper {
            inner: anthropic::StreamTranslator::new(),
            provider,
        }
    }
}

impl StreamMapper for AnthropicMapper {
    fn on_event(&mut self, ev: &Event, out: &mut Vec<Value>) -> Result<bool, BoxError> {
        self.inner
            .on_event(ev.event.as_deref(), &ev.data, out)
            .map_err(|e| Box::new(gateway_error(e, &self.provider)) as BoxError)?;
        Ok(ev.event.as_deref() == Some("message_stop"))
    }

    fn on_end(&mut self, _out: &mut Vec<Value>) -> Result<bool, BoxError> {
        Ok(false) // closed before `message_stop`: truncated
    }
}

/// Gemini's stream: no end marker; complete when a candidate finished before the close.
pub(crate) struct GeminiMapper {
    inner: gemini::StreamTranslator,
    provider: String,
    finished: bool,
}

impl GeminiMapper {
    pub(crate) fn new(provider: String) -> Self {
        GeminiMapper {
            inner: gemini::StreamTranslator::new(),
            provider,
            finished: false,
        }
    }
}

impl StreamMapper for GeminiMapper {
    fn on_event(&mut self, ev: &Event, out: &mut Vec<Value>) -> Result<bool, BoxError> {
        let before = out.len();
        self.inner
            .on_event(None, &ev.data, out)
            .map_err(|e| Box::new(gateway_error(e, &self.provider)) as BoxError)?;
        self.finished |= out[before..]
            .iter()
            .any(|c| c["choices"][0]["finish_reason"].is_string());
        Ok(false)
    }

    fn on_end(&mut self, out: &mut Vec<Value>) -> Result<bool, BoxError> {
        if self.finished {
            self.inner.finish(out);
        }
        Ok(self.finished)
    }
}
