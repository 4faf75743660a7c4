//! Parse: the edge of the stack. Buffers the body once (with a size limit and a read deadline),
//! parses it into a [`ChatRequest`] extension, assigns the generation id, and turns every error
//! from the layers inside into OpenRouter's error envelope.
//!
//! 1. Reject a `Content-Length` over the limit at once (413); otherwise read the body, stopping
//!    at the limit (413) or the read deadline (408).
//! 2. Parse JSON; malformed JSON is a 400 naming the line and column.
//! 3. Validate the fields routing relies on (`model`, `models`, `provider`, `messages` or
//!    `prompt`), each error naming the field.
//! 4. Insert the [`ChatRequest`] and a new [`RequestContext`] (the generation id, the arrival
//!    time), pass the body on as a [`ChatBody`], call the inner service, and add
//!    `X-Generation-Id` to the response.
//! 5. Add `x-switchyard-overhead-us`: the time in the gateway minus the time waiting on
//!    upstreams ([`crate::overhead`]).
//! 6. With [`ParseLayer::metrics`], count every response it returns by status (its own errors
//!    included) and put the overhead of those that carry the header in the histogram.
//!
//! # Contract
//!
//! | | |
//! |---|---|
//! | reads | the body (any `http_body::Body`), `x-session-id`, `X-OpenRouter-Metadata` |
//! | writes | `Arc<ChatRequest>`, a new [`RequestContext`]; the body passed on is the same request ([`ChatBody`]) |
//! | inner service | returns `Response<Body>`; any error it returns becomes the error envelope here |
//!
//! ```
//! use switchyard::parse::ParseLayer;
//! use switchyard::context::ApiKind;
//! let layer = ParseLayer::new(ApiKind::Chat).max_body_bytes(1 << 20);
//! # let _ = layer;
//! ```

use crate::BoxError;
use crate::body::{self, Body};
use crate::context::{ApiKind, ChatBody, ChatRequest, GenerationId, RequestContext};
use crate::error::{GatewayError, error_response};
use crate::ledger::Ingress;
use crate::metrics::Metrics;
use crate::overhead;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tower::{Layer, Service};

/// Header carrying the generation id on every completion response.
pub const GENERATION_ID_HEADER: &str = "x-generation-id";

/// Configures [`Parse`].
#[derive(Debug, Clone)]
pub struct ParseLayer {
    kind: ApiKind,
    max_body_bytes: usize,
    read_timeout: Duration,
    metrics: Option<Arc<Metrics>>,
}

impl ParseLayer {
    /// For the given client API, with a 32 MiB body limit and a 30 s read deadline.
    pub fn new(kind: ApiKind) -> Self {
        ParseLayer {
            kind,
            max_body_bytes: 32 * 1024 * 1024,
            read_timeout: Duration::from_secs(30),
            metrics: None,
        }
    }

    /// Largest accepted body; larger ones get 413.
    pub fn max_body_bytes(mut self, n: usize) -> Self {
        self.max_body_bytes = n;
        self
    }

    /// Deadline for reading the whole body (slow clients get 408).
    pub fn read_timeout(mut self, d: Duration) -> Self {
        self.read_timeout = d;
        self
    }

    /// Records each response in a metrics registry: its status
    /// (`switchyard_requests_total`) and its overhead (`switchyard_overhead_seconds`).
    pub fn metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }
}

impl<S> Layer<S> for ParseLayer {
    type Service = Parse<S>;
    fn layer(&self, inner: S) -> Parse<S> {
        Parse {
            inner,
            config: self.clone(),
        }
    }
}

/// The parse service; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Parse<S> {
    inner: S,
    config: ParseLayer,
}

impl<S, B> Service<Request<B>> for Parse<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The inner service is cloned per request (below), so readiness is checked there.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        Box::pin(async move {
            // Every response leaves through here, so each is counted exactly once.
            let (mut parts, body) = req.into_parts();
            // Requests the Messages or Responses layer made are counted under that API.
            let ingress = parts.extensions.get::<Ingress>().copied();
            let counted = |resp: Response<Body>| -> Result<Response<Body>, Infallible> {
                if let Some(m) = &config.metrics {
                    m.record_request_from(ingress, config.kind, resp.status().as_u16());
                }
                Ok(resp)
            };
            let start = Instant::now();
            let bytes = match read_body(&parts.headers, body, &config).await {
                Ok(b) => b,
                Err(e) => return counted(e.into_response()),
            };
            // The request keeps the buffer: OpenAI-style upstream bodies copy the client's
            // bytes of the fields no layer changed instead of serialising them again.
            let chat = match ChatRequest::from_json_with_headers(config.kind, bytes, &parts.headers)
            {
                Ok(c) => Arc::new(c),
                Err(e) => return counted(e.into_response()),
            };
            let id = GenerationId::new();
            // The overhead clock (src/overhead.rs): upstream adds its waits to the context's.
            let ctx = RequestContext::with_id(id.clone(), start);
            parts.extensions.insert(Arc::clone(&chat));
            parts.extensions.insert(ctx.clone());
            let req = Request::from_parts(parts, body::boxed(ChatBody::new(chat)));
            let result: Result<Response<Body>, BoxError> =
                match std::future::poll_fn(|cx| inner.poll_ready(cx))
                    .await
                    .map_err(Into::into)
                {
                    Ok(()) => crate::body::call_boxed(&mut inner, req).await,
                    Err(e) => Err(e),
                };
            let wait = ctx.upstream_wait();
            let mut resp = result.unwrap_or_else(|e| error_response(&e));
            let spent = overhead::overhead(start, wait);
            overhead::set_header(resp.headers_mut(), spent);
            if let Some(m) = &config.metrics {
                m.record_overhead(spent);
            }
            // A stream's frames still pass through upstream's wait clocks: they need not
            // read the clock any more.
            wait.close();
            if let Ok(v) = HeaderValue::from_str(id.as_str()) {
                resp.headers_mut().insert(GENERATION_ID_HEADER, v);
            }
            counted(resp)
        })
    }
}

async fn read_body<B>(
    headers: &http::HeaderMap,
    body: B,
    config: &ParseLayer,
) -> Result<Bytes, GatewayError>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let too_large = || {
        GatewayError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "Request body exceeds the gateway's limit of {} bytes",
                config.max_body_bytes
            ),
        )
    };
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > config.max_body_bytes as u64) {
        return Err(too_large());
    }
    let mut collect = std::pin::pin!(Limited::new(body, config.max_body_bytes).collect());
    // A small body usually arrived with the headers: one poll collects it, and no read deadline
    // (a timer registered and cancelled on every request) is needed.
    let first = std::future::poll_fn(|cx| Poll::Ready(collect.as_mut().poll(cx))).await;
    let collected = match first {
        Poll::Ready(done) => Ok(done),
        Poll::Pending => tokio::time::timeout(config.read_timeout, collect).await,
    };
    match collected {
        Err(_) => Err(GatewayError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!(
                "Request body not received within {} s",
                config.read_timeout.as_secs()
            ),
        )),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(e)) => Err(GatewayError::bad_request(format!(
            "Could not read the request body: {e}"
        ))),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}
