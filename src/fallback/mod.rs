//! Fallback: runs the candidate order until one attempt succeeds, invisibly to the client.
//!
//! # Contract
//!
//! | | |
//! |---|---|
//! | reads (required) | [`Candidates`]: from the route layer, or fixed with [`FallbackLayer::candidates`]; missing → [`MissingInput`] |
//! | reads (optional) | [`ChatRequest`](crate::context::ChatRequest) (else parsed from the body: 400/413 on a bad one), [`RequestContext`] (else one is made) |
//! | writes | per attempt: [`Target`](crate::context::Target), a [`ChatBody`](crate::context::ChatBody) body with `model` set to the endpoint's upstream id, and the URI `/chat/completions` (or `/completions`), relative to the provider's base URL; each attempt in [`RequestContext::record_attempt`] |
//! | inner service | gets one request per attempt; answers any OpenAI-compatible response (a stream in any chunking) |
//!
//! # Algorithm
//!
//! 1. Take the [`Candidates`] and try them in order, each attempt a fresh request carrying its
//!    [`Target`](crate::context::Target) and the real request body.
//! 2. Classify each outcome with [`crate::classify`]: connect errors, timeouts, 408, 429, 5xx, 529
//!    and provider errors inside a 200 move to the next candidate; context-length and moderation
//!    errors skip the rest of that model's endpoints (the next model of a `models` list); other
//!    4xx are returned at once. `allow_fallbacks: false` caps the attempts at
//!    [`Candidates::limit`].
//! 3. Streams commit only when the first *content* event arrives (a delta with content,
//!    reasoning or a tool call — not the role-only first chunk). Before that, an error status,
//!    reset, stall or early end moves on to the next candidate and the client sees nothing of it.
//! 4. While no candidate has committed after `keepalive_after`, a streaming client gets the
//!    200 headers and `: OPENROUTER PROCESSING` comment lines; if every candidate then fails, the
//!    stream ends with an error chunk and `data: [DONE]`.
//! 5. After the commit, an upstream failure ends the stream with the content so far, one error
//!    chunk (`finish_reason: "error"`, top-level `error`) and `data: [DONE]` — never a silently
//!    truncated 200.
//! 6. Every attempt is recorded in the [`RequestContext`]; with `X-OpenRouter-Metadata: enabled`
//!    the response (or the final stream chunk) carries `openrouter_metadata`. With
//!    [`FallbackLayer::metrics`], each attempt also counts in
//!    `switchyard_upstream_attempts_total` by provider and outcome.
//!
//! # Alone
//!
//! Over two OpenAI-compatible base URLs, with no catalogue file and no other layer
//! ([`over_base_urls`]; [`over_services`] takes your own services instead):
//!
//! ```
//! # use switchyard::test_util::{start_fake};
//! use http_body_util::BodyExt;
//! use tower::ServiceExt;
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), switchyard::BoxError> {
//! # let (addr, _) = start_fake().await;
//! // The first upstream answers 503; the second serves.
//! let primary = format!("http://{addr}/status-503/v1");
//! let backup = format!("http://{addr}/ok/v1");
//! let fallback = switchyard::fallback::over_base_urls(&[&primary, &backup])?;
//! let req = http::Request::post("/v1/chat/completions").body(switchyard::body::full(
//!     r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#,
//! ))?;
//! let resp = fallback.oneshot(req).await?;
//! assert_eq!(resp.status(), 200);
//! let body = resp.into_body().collect().await?.to_bytes();
//! assert!(std::str::from_utf8(&body)?.contains("choices"));
//! # Ok(()) }
//! ```

mod alone;
mod body;
mod drive;
mod metadata;
mod outcome;

pub use alone::{ByProvider, over_base_urls, over_services};

use crate::BoxError;
use crate::body::Body;
use crate::context::{Candidates, FromChat, RequestContext, chat_of};
use crate::error::MissingInput;
use crate::health::Health;
use crate::metrics::Metrics;
use crate::route::SessionPins;
use drive::drive;
use futures_util::future::{BoxFuture, Either, select};
use http::{Request, Response};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tower::{Layer, Service};

/// Applies [`Fallback`].
#[derive(Debug, Clone)]
pub struct FallbackLayer {
    keepalive_after: Duration,
    keepalive_every: Duration,
    health: Option<Arc<Health>>,
    sticky: Option<Arc<dyn SessionPins>>,
    metrics: Option<Arc<Metrics>>,
    fixed: Option<Candidates>,
    max_body_bytes: usize,
}

impl Default for FallbackLayer {
    fn default() -> Self {
        FallbackLayer {
            keepalive_after: Duration::from_secs(1),
            keepalive_every: Duration::from_secs(3),
            health: None,
            sticky: None,
            metrics: None,
            fixed: None,
            max_body_bytes: crate::context::DEFAULT_MAX_BODY_BYTES,
        }
    }
}

impl FallbackLayer {
    /// Keep-alives after 1 s without a commit, every 3 s.
    pub fn new() -> Self {
        Self::default()
    }

    /// How long a streaming client waits for the headers before keep-alive comments start.
    pub fn keepalive_after(mut self, d: Duration) -> Self {
        self.keepalive_after = d;
        self
    }

    /// The interval between keep-alive comments.
    pub fn keepalive_every(mut self, d: Duration) -> Self {
        self.keepalive_every = d;
        self
    }

    /// Pins a session (`session_id`, `x-session-id`, `prompt_cache_key`) to the endpoint that
    /// served it, for the route layer's sticky routing (not when `provider.order` is set).
    pub fn sticky(mut self, sticky: Arc<dyn SessionPins>) -> Self {
        self.sticky = Some(sticky);
        self
    }

    /// Reports each attempt's outcome to a health registry (outage detection, 429 cool-downs).
    pub fn health(mut self, health: Arc<Health>) -> Self {
        self.health = Some(health);
        self
    }

    /// Counts each attempt in a metrics registry by provider and outcome.
    pub fn metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Tries these candidates for requests that carry none (no route layer in front).
    pub fn candidates(mut self, candidates: Candidates) -> Self {
        self.fixed = Some(candidates);
        self
    }

    /// The body limit when this layer reads the body itself (no parse layer in front).
    pub fn max_body_bytes(mut self, n: usize) -> Self {
        self.max_body_bytes = n;
        self
    }
}

impl<S> Layer<S> for FallbackLayer {
    type Service = Fallback<S>;
    fn layer(&self, inner: S) -> Fallback<S> {
        Fallback {
            inner,
            config: Arc::new(self.clone()),
        }
    }
}

/// The fallback service; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Fallback<S> {
    inner: S,
    /// One refcount per clone of the stack and per request (see [`crate::alias::Alias`]).
    config: Arc<FallbackLayer>,
}

impl<S, B> Service<Request<B>> for Fallback<S>
where
    S: Service<Request<B>, Response = Response<Body>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + FromChat + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<Body>, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Each attempt waits for the inner service's readiness itself.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let inner = self.inner.clone();
        let config = Arc::clone(&self.config);
        Box::pin(async move {
            let (req, chat) = chat_of(req, config.max_body_bytes).await?;
            let (mut parts, _) = req.into_parts();
            // Taken out, not copied: every attempt clones the extensions, and the layers inside
            // need only their own Target.
            let candidates = match parts.extensions.remove::<Candidates>() {
                Some(c) => c,
                None => config.fixed.clone().ok_or_else(|| {
                    MissingInput::new(
                        "fallback",
                        "Candidates",
                        "set by the route layer, or given with FallbackLayer::candidates",
                    )
                })?,
            };
            if parts.extensions.get::<RequestContext>().is_none() {
                parts.extensions.insert(RequestContext::new());
            }
            let stream = chat.stream;
            let run = drive(inner, parts, candidates, chat, Arc::clone(&config));
            if !stream {
                return Ok(run.await.into_response());
            }
            // Boxed only here: the keep-alive body owns it, by a type it can name.
            let run: BoxFuture<'static, outcome::Outcome> = Box::pin(run);
            let timer = Box::pin(tokio::time::sleep(config.keepalive_after));
            match select(run, timer).await {
                Either::Left((outcome, _)) => Ok(outcome.into_response()),
                Either::Right(((), run)) => {
                    Ok(body::keepalive_response(run, config.keepalive_every))
                }
            }
        })
    }
}
