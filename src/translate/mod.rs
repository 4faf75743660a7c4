//! Translate: speaks the attempt's upstream wire format and hands back the gateway's own shape.
//!
//! Chosen per attempt by the target provider's [`Api`]:
//!
//! 1. Build the upstream request from the parsed [`ChatRequest`]: path, body (`model` → the
//!    endpoint's upstream id, unsupported parameters dropped, usage requested on streams) and
//!    only the headers the upstream needs — nothing of the client's.
//! 2. On an error status, read the (small) error body and answer with the same status and the
//!    envelope `{"error":{"code","message","metadata":{"raw","provider_name","error_type"}}}`,
//!    the provider's own reason in `message`. The [`ProviderFailure`] response extension carries
//!    the same error for the fallback layer, so it never re-parses bodies.
//! 3. On success, answer an OpenAI `chat.completion` (or `text_completion`) stamped with the
//!    generation id, the served model slug, the provider's display name and
//!    `native_finish_reason`; an error object inside a 200 becomes an error response.
//! 4. Streams become one normalised chunk event per frame, ending with `data: [DONE]`; a stream
//!    that breaks off, stalls or carries an error event ends in an error for the outer layers.
//!
//! # Contract
//!
//! | | |
//! |---|---|
//! | reads (required) | `Arc<ChatRequest>`, [`Target`]; missing → [`MissingInput`] |
//! | reads (optional) | [`RequestContext`] (the id stamped on responses; copied onto the upstream request), [`NativeRequest`] (sent as is, with its forwarded headers, to an endpoint speaking its format) |
//! | writes | the upstream request: a path relative to the provider's base URL, the body in its wire format, only the headers it needs, and the attempt's extensions (the [`Target`] and [`RequestContext`] among them); responses in OpenAI's shape, streams marked [`OneEventPerFrame`](crate::sse::OneEventPerFrame) |
//! | inner service | sends to the provider ([`Upstream`](crate::upstream::Upstream), or your own client) |

pub mod anthropic;
mod common;
mod dialect;
pub mod gemini;
mod normalize;
mod openai;
mod pieces;
mod response;
mod splice;
#[cfg(test)]
mod splice_serde;
mod stream;

pub use common::{FinishReason, ProviderError, TranslateError};

pub(crate) use common::now as now_secs;
pub use normalize::{chunk_has_content, normalize_finish_reason};
pub(crate) use openai::error_from_body as openai_error_from_body;

use crate::BoxError;
use crate::body::{self, Body};
use crate::body::{MAX_RESPONSE_BYTES as MAX_RESPONSE_BODY, read_limited};
use crate::catalog::Api;
use crate::context::{ApiKind, ChatRequest, GenerationId, NativeRequest, RequestContext, Target};
use crate::deferred_json::DeferredJson;
use crate::error::GatewayError;
use crate::error::MissingInput;
use crate::upstream::{UpstreamError as TransportError, UpstreamErrorKind};
use futures_util::TryFutureExt;
use futures_util::future::BoxFuture;
use http::{HeaderValue, Request, Response, StatusCode, header};
use normalize::{Name, Stamp, stamp};
use pieces::Pieces;
use serde_json::Value;
use std::sync::Arc;
use std::task::{Context, Poll};
use stream::{StreamMapper, TranslatedStream};
use tower::{Layer, Service};

/// The Anthropic API version header, sent to every Anthropic upstream.
const ANTHROPIC_VERSION: http::HeaderName = http::HeaderName::from_static("anthropic-version");
/// Anthropic's beta-feature header, forwarded from a native Messages request.
const ANTHROPIC_BETA: http::HeaderName = http::HeaderName::from_static("anthropic-beta");

/// Largest upstream error body read (the rest is cut).
const MAX_ERROR_BODY: usize = 1024 * 1024;

/// The error a provider answered with (a [`ProviderError`] in the gateway's terms), as an
/// extension on the translated error response, so the fallback layer can classify the attempt
/// without reading the body again. A transport failure (no answer at all) is an
/// [`UpstreamError`](crate::error::UpstreamError) instead.
#[derive(Debug, Clone)]
pub struct ProviderFailure(pub GatewayError);

/// Applies [`Translate`].
#[derive(Debug, Clone, Default)]
pub struct TranslateLayer {
    _priv: (),
}

impl TranslateLayer {
    /// The layer.
    pub fn new() -> Self {
        TranslateLayer::default()
    }
}

impl<S> Layer<S> for TranslateLayer {
    type Service = Translate<S>;
    fn layer(&self, inner: S) -> Translate<S> {
        Translate { inner }
    }
}

/// The translate service; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Translate<S> {
    inner: S,
}

impl<S> Service<Request<Body>> for Translate<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<Body>, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        // Everything before the upstream call is synchronous, so the inner service is called
        // here, as it is (its readiness was polled through ours), and never cloned.
        match self.send(req) {
            // A combinator over the inner future, not an async block holding it: one box.
            Ok((upstream_req, chat, target, id)) => Box::pin(
                self.inner
                    .call(upstream_req)
                    .map_err(Into::into)
                    .and_then(move |resp| respond(resp, chat, target, id)),
            ),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }
}

/// The upstream request of one attempt, and what turning its answer into the client's needs.
type Sent = (Request<Body>, Arc<ChatRequest>, Target, GenerationId);

impl<S> Translate<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Send + 'static,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
{
    /// Builds the upstream request for the attempt in `req`.
    fn send(&mut self, req: Request<Body>) -> Result<Sent, BoxError> {
        let chat = req
            .extensions()
            .get::<Arc<ChatRequest>>()
            .cloned()
            .ok_or_else(|| {
                MissingInput::new("translate", "ChatRequest", "set by the parse layer")
            })?;
        let target = req.extensions().get::<Target>().cloned().ok_or_else(|| {
            MissingInput::new(
                "translate",
                "Target",
                "set by the fallback layer per attempt",
            )
        })?;
        // Without a context (translate used alone) the response still gets an id of its own.
        let id = req
            .extensions()
            .get::<RequestContext>()
            .map_or_else(GenerationId::new, |c| c.id().clone());
        // The attempt's extensions travel on (the Target and the context among them), in the
        // map they already have; its headers and body do not.
        let (parts, _) = req.into_parts();
        let upstream_req = build_request(&chat, &target, parts)?;
        Ok((upstream_req, chat, target, id))
    }
}

/// Turns the upstream's answer into the client's: errors worded, streams mapped, JSON spliced.
async fn respond(
    resp: Response<Body>,
    chat: Arc<ChatRequest>,
    target: Target,
    id: GenerationId,
) -> Result<Response<Body>, BoxError> {
    let endpoint = target.endpoint();
    let provider = endpoint.provider.clone();
    let strip_reasoning = chat
        .field("reasoning")
        .and_then(|r| r.get("exclude"))
        .and_then(Value::as_bool)
        == Some(true)
        || chat.field("include_reasoning").and_then(Value::as_bool) == Some(false);
    let stamp = Stamp {
        id: Name::Shared(id.0.clone()),
        model: Name::Slug(target.model.clone()),
        provider: Name::Title(provider.clone()),
        strip_reasoning,
    };
    let (parts, body) = resp.into_parts();
    // Upstreams echo the key they were sent in their errors ("Incorrect API key provided:
    // sk-…"); it never reaches the client.
    let redact = |mut e: GatewayError| {
        if let Some(k) = &provider.api_key {
            redact_error(&mut e, k.expose());
        }
        e
    };
    if !parts.status.is_success() {
        let bytes = read_limited(body, MAX_ERROR_BODY).await.unwrap_or_default();
        let err = upstream_error(provider.api, parts.status.as_u16(), &bytes, &provider.name);
        return Ok(failure_response(
            redact(err),
            parts.headers.get(header::RETRY_AFTER).cloned(),
        ));
    }
    let is_sse = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    if chat.stream && is_sse {
        let mapper = stream_mapper(provider.api, &provider.name);
        let body = body::boxed_as_is(
            TranslatedStream::new(body, mapper, stamp).redacting(provider.clone()),
        );
        let mut resp = Response::new(body);
        resp.extensions_mut().insert(crate::sse::OneEventPerFrame);
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        return Ok(resp);
    }
    let bytes = match read_limited(body, MAX_RESPONSE_BODY).await {
        Ok(b) => b,
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            let e = TransportError {
                kind: UpstreamErrorKind::Invalid,
                provider: provider.name.clone(),
                detail: format!("the response body exceeded {MAX_RESPONSE_BODY} bytes"),
            };
            return Err(Box::new(e) as BoxError);
        }
        Err(e) => return Err(e),
    };
    let object = match chat.kind {
        ApiKind::Chat => "chat.completion",
        ApiKind::Completions => "text_completion",
        ApiKind::Embeddings => "list",
    };
    // The usual OpenAI-compatible answer is spliced, never a `Value`; anything unusual
    // (errors included) takes the `Value` path below.
    let spliced =
        (!chat.stream && matches!(provider.api, Api::OpenAi) && chat.kind != ApiKind::Embeddings)
            .then(|| response::splice_response(&bytes, &stamp, object))
            .flatten();
    if let Some(out) = spliced {
        return Ok(json_response(
            parts,
            DeferredJson::spliced(out.json, out.usage, out.first),
        ));
    }
    let mut value = match parse_response(provider.api, chat.kind, &bytes, &provider.name) {
        Ok(v) => v,
        Err(e) => return Ok(failure_response(redact(e), None)),
    };
    if chat.stream {
        // The upstream ignored `stream: true` and answered JSON: an error, or garbage.
        let e = GatewayError::new(
            StatusCode::BAD_GATEWAY,
            "provider_unavailable",
            format!(
                "{} answered a streaming request with JSON instead of an event stream",
                provider.name
            ),
        )
        .with_metadata("provider_name", &*provider.name)
        .with_metadata("raw", String::from_utf8_lossy(&bytes).into_owned());
        return Ok(failure_response(redact(e), None));
    }
    stamp_response(&mut value, &stamp, object);
    Ok(json_response(parts, DeferredJson::new(value)))
}

/// The JSON response over `json`, its handle in the extensions: meter and fallback edit the
/// same body, serialised once, when written. Built in the upstream response's `parts`, whose
/// header map is reused once cleared: none of the upstream's headers reach the client.
fn json_response(mut parts: http::response::Parts, json: DeferredJson) -> Response<Body> {
    parts.status = StatusCode::OK;
    parts.version = http::Version::default();
    parts.headers.clear();
    parts.extensions.clear();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.extensions.insert(json.clone());
    Response::from_parts(parts, body::boxed(json))
}

fn stamp_response(v: &mut Value, s: &Stamp, object: &str) {
    stamp(v, s, object);
}

/// The upstream request for one attempt, in the attempt request's `parts`: its extensions are
/// kept, its method, path and headers replaced (the header map's storage reused).
fn build_request(
    chat: &ChatRequest,
    target: &Target,
    mut parts: http::request::Parts,
) -> Result<Request<Body>, BoxError> {
    let endpoint = target.endpoint();
    let native = parts
        .extensions
        .get::<NativeRequest>()
        .filter(|n| n.api() == endpoint.provider.api && chat.kind == ApiKind::Chat)
        .cloned();
    // Static parts stay static: the OpenAI path and the two header values cost no allocation.
    let (path, body) = match endpoint.provider.api {
        Api::Anthropic if native.is_some() => {
            let body = native
                .as_ref()
                .map(|n| n.body_for(&endpoint.upstream_model));
            (
                http::Uri::from_static("/messages"),
                Pieces::from(serde_json::to_vec(&body)?),
            )
        }
        Api::OpenAi => (
            http::Uri::from_static(openai::path(chat.kind)),
            openai::request_body(chat, endpoint)?,
        ),
        Api::Anthropic | Api::Gemini => {
            let (path, bytes) = dialect::request(chat, &target.model, endpoint)?;
            (http::Uri::try_from(path)?, Pieces::from(bytes))
        }
    };
    let accept = if chat.stream {
        "text/event-stream"
    } else {
        "application/json"
    };
    let body = body.into_body();
    // Set here, hyper would format it with an allocation more.
    let length = http_body::Body::size_hint(&body).exact();
    parts.method = http::Method::POST;
    parts.uri = path;
    // As a new request would be: the client's own version (HTTP/2, say) is not the upstream's.
    parts.version = http::Version::default();
    parts.headers.clear();
    let headers = &mut parts.headers;
    if let Some(n) = length {
        headers.insert(header::CONTENT_LENGTH, crate::decimal::header_value(n));
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::ACCEPT, HeaderValue::from_static(accept));
    if endpoint.provider.api == Api::Anthropic {
        // Anthropic rejects a request without a version; the provider's configured headers,
        // set after this by the upstream service, override it.
        headers.insert(ANTHROPIC_VERSION, HeaderValue::from_static("2023-06-01"));
        if let Some(n) = &native {
            for name in [ANTHROPIC_VERSION, ANTHROPIC_BETA] {
                if let Some(v) = n.headers().get(&name) {
                    headers.insert(name, v.clone());
                }
            }
        }
    }
    Ok(Request::from_parts(parts, body::boxed(body)))
}

fn stream_mapper(api: Api, provider: &str) -> Box<dyn StreamMapper> {
    let provider = provider.to_owned();
    match api {
        Api::OpenAi => Box::new(openai::OpenAiMapper::new(provider)),
        Api::Anthropic => Box::new(dialect::AnthropicMapper::new(provider)),
        Api::Gemini => Box::new(dialect::GeminiMapper::new(provider)),
    }
}

fn upstream_error(api: Api, status: u16, body: &[u8], provider: &str) -> GatewayError {
    match api {
        Api::OpenAi => openai::error_from_body(status, body, provider),
        Api::Anthropic | Api::Gemini => dialect::error(api, status, body, provider),
    }
}

/// Parses a successful non-streaming body into an OpenAI-shaped object.
fn parse_response(
    api: Api,
    kind: ApiKind,
    bytes: &[u8],
    provider: &str,
) -> Result<Value, GatewayError> {
    let invalid = |detail: String| {
        TransportError {
            kind: UpstreamErrorKind::Invalid,
            provider: provider.into(),
            detail,
        }
        .to_gateway_error()
        .with_metadata(
            "raw",
            String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]).into_owned(),
        )
    };
    match api {
        Api::Anthropic | Api::Gemini => dialect::response(api, kind, bytes, provider),
        Api::OpenAi => {
            let v: Value = serde_json::from_slice(bytes)
                .map_err(|e| invalid(format!("malformed JSON: {e}")))?;
            if let Some((status, message, error_type)) = normalize::embedded_error(&v) {
                let kind = error_type.as_deref().map_or_else(
                    || crate::classify::error_type_from_message(status, &message),
                    openai::leak_known,
                );
                return Err(GatewayError::new(
                    StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
                    kind,
                    format!("{provider}: {message}"),
                )
                .with_metadata("provider_name", provider)
                .with_metadata("raw", String::from_utf8_lossy(bytes).into_owned()));
            }
            // An embeddings list carries `data`; a completion `choices`.
            let list = if kind == ApiKind::Embeddings {
                "data"
            } else {
                "choices"
            };
            if !v.get(list).is_some_and(Value::is_array) {
                return Err(invalid(format!("the response has no `{list}`")));
            }
            Ok(v)
        }
    }
}

/// Replaces every occurrence of `secret` in an error's message and string metadata.
pub(crate) fn redact_error(e: &mut GatewayError, secret: &str) {
    const MASK: &str = "[redacted]";
    if secret.is_empty() {
        return;
    }
    if e.message.contains(secret) {
        e.message = e.message.replace(secret, MASK);
    }
    for v in e.metadata.values_mut() {
        if let Value::String(s) = v {
            if s.contains(secret) {
                *s = s.replace(secret, MASK);
            }
        }
    }
}

/// As [`redact_error`], for a boxed error of the stack (gateway errors and upstream errors).
pub(crate) fn redact_box(e: BoxError, secret: &str) -> BoxError {
    if let Some(g) = e.downcast_ref::<GatewayError>() {
        let mut g = g.clone();
        redact_error(&mut g, secret);
        return Box::new(g);
    }
    if let Some(u) = e.downcast_ref::<TransportError>() {
        if u.detail.contains(secret) || u.provider.contains(secret) {
            let mut u = u.clone();
            u.detail = u.detail.replace(secret, "[redacted]");
            return Box::new(u);
        }
    }
    e
}

fn failure_response(err: GatewayError, retry_after: Option<HeaderValue>) -> Response<Body> {
    let mut resp = err.clone().into_response();
    if let Some(v) = retry_after {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp.extensions_mut().insert(ProviderFailure(err));
    resp
}
