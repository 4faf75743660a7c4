//! [`MessagesLayer`]: Anthropic Messages in, over a chat completion service.

use super::request::to_chat;
use super::response::{error_body, to_message};
use super::stream::MessagesStream;
use crate::BoxError;
use crate::body::{self, Body};
use crate::catalog::Api;
use crate::context::{DEFAULT_MAX_BODY_BYTES, NativeRequest};
use crate::error::GatewayError;
use crate::ingress::chat_side::{
    ChatAnswer, chat_request, error_answer, json_answer, read_answer, read_object,
};
use crate::ingress::remap::Remapped;
use crate::ledger::Ingress;
use futures_util::future::BoxFuture;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, header};
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Maps the model name a Claude client sends to the slug the service below routes (`None`:
/// keep it).
pub type ModelNames = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Applies [`Messages`]; see the [module docs](super).
#[derive(Clone)]
pub struct MessagesLayer {
    max_body_bytes: usize,
    models: Option<ModelNames>,
}

impl fmt::Debug for MessagesLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessagesLayer")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("models", &self.models.is_some())
            .finish()
    }
}

impl Default for MessagesLayer {
    fn default() -> Self {
        MessagesLayer::new()
    }
}

impl MessagesLayer {
    /// The layer: bodies up to [`DEFAULT_MAX_BODY_BYTES`], model names kept as sent.
    pub fn new() -> Self {
        MessagesLayer {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            models: None,
        }
    }

    /// Refuses request bodies larger than `max` bytes with a 413.
    pub fn max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = max;
        self
    }

    /// Maps each request's `model` through `names` before the service below sees it.
    pub fn model_names(
        mut self,
        names: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.models = Some(Arc::new(names));
        self
    }
}

impl<S> Layer<S> for MessagesLayer {
    type Service = Messages<S>;
    fn layer(&self, inner: S) -> Messages<S> {
        Messages {
            inner,
            config: self.clone(),
        }
    }
}

/// The Messages service; see the [module docs](super).
#[derive(Clone, Debug)]
pub struct Messages<S> {
    inner: S,
    config: MessagesLayer,
}

impl<S, B> Service<Request<B>> for Messages<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<Body>, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The ready service goes into the future; its clone stays for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let prepared = match prepare(parts, body, &config).await {
                Ok(p) => p,
                Err(e) => return Ok(anthropic_error(&e)),
            };
            let (chat_req, model, estimate) = prepared;
            let resp = crate::body::call_boxed(&mut inner, chat_req).await;
            match resp {
                Ok(resp) => answer(resp, model, estimate).await,
                Err(e) => Ok(anthropic_error(&GatewayError::from_box(&e))),
            }
        })
    }
}

/// The chat request for a Messages request, the model name to answer with, and the prompt
/// token estimate.
async fn prepare<B>(
    mut parts: http::request::Parts,
    body: B,
    config: &MessagesLayer,
) -> Result<(Request<Body>, String, u64), GatewayError>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (msg, len) = read_object(body, config.max_body_bytes).await?;
    let mut chat = to_chat(&msg)?;
    let asked = msg["model"].as_str().unwrap_or_default().to_owned();
    if let Some(slug) = config.models.as_ref().and_then(|names| names(&asked)) {
        chat.insert("model".into(), slug.into());
    }
    let estimate = (len as u64).div_ceil(4);
    let forwarded = forwarded_headers(&parts.headers);
    // Claude clients authenticate with `x-api-key`; the gateway's key check reads Bearer.
    if !parts.headers.contains_key(header::AUTHORIZATION)
        && let Some(key) = parts.headers.get("x-api-key").and_then(|k| k.to_str().ok())
        && let Ok(v) = HeaderValue::from_str(&format!("Bearer {key}"))
    {
        parts.headers.insert(header::AUTHORIZATION, v);
    }
    parts.headers.remove("x-api-key");
    parts
        .extensions
        .insert(NativeRequest::new(Api::Anthropic, msg, forwarded));
    let chat = chat_request(parts, "/messages", &chat, Ingress::Messages)?;
    Ok((chat, asked, estimate))
}

/// The client headers an Anthropic upstream gets with the native body.
fn forwarded_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in ["anthropic-version", "anthropic-beta"] {
        if let Some(v) = headers.get(name) {
            out.insert(HeaderName::from_static(name), v.clone());
        }
    }
    out
}

/// The chat service's answer in Anthropic's shape.
async fn answer(
    resp: Response<Body>,
    model: String,
    estimate: u64,
) -> Result<Response<Body>, BoxError> {
    match read_answer(resp).await? {
        ChatAnswer::Stream(parts, body) => {
            let stream = Remapped::new(body, MessagesStream::new(model, estimate));
            Ok(Response::from_parts(parts, body::boxed(stream)))
        }
        ChatAnswer::Completion(parts, json) => json_answer(parts, &to_message(&json, &model)),
        ChatAnswer::Failure(parts, json) => {
            let body = error_body(parts.status.as_u16(), &json);
            json_answer(parts, &body)
        }
    }
}

/// A gateway error as an Anthropic error response.
pub(crate) fn anthropic_error(e: &GatewayError) -> Response<Body> {
    error_answer(e.status, &error_body(e.status.as_u16(), &e.to_json()))
}
