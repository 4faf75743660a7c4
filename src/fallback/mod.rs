//! Fallback: runs the candidate order until one attempt succeeds, invisibly to the client.
//!
//! 1. Take the [`Candidates`] (from the route layer) and try them in order, each attempt a fresh
//!    request carrying its [`Target`](crate::ext::Target).
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
//! 6. Every attempt is recorded in the [`AttemptLog`]; with `X-OpenRouter-Metadata: enabled` the
//!    response (or the final stream chunk) carries `openrouter_metadata`. With
//!    [`FallbackLayer::metrics`], each attempt also counts in
//!    `switchyard_upstream_attempts_total` by provider and outcome.
//!
//! ```no_run
//! use switchyard::fallback::FallbackLayer;
//! use std::time::Duration;
//! let layer = FallbackLayer::new().keepalive_after(Duration::from_millis(500));
//! # let _ = layer;
//! ```

mod body;
mod drive;
mod metadata;

use crate::BoxError;
use crate::body::Body;
use crate::ext::{AttemptLog, Candidates, ChatRequest};
use crate::health::Health;
use crate::metrics::Metrics;
use crate::route::Sticky;
use drive::{Outcome, drive};
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
    sticky: Option<Arc<Sticky>>,
    metrics: Option<Arc<Metrics>>,
}

impl Default for FallbackLayer {
    fn default() -> Self {
        FallbackLayer {
            keepalive_after: Duration::from_secs(1),
            keepalive_every: Duration::from_secs(3),
            health: None,
            sticky: None,
            metrics: None,
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
    pub fn sticky(mut self, sticky: Arc<Sticky>) -> Self {
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

impl<S> Service<Request<Body>> for Fallback<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<Body>, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Each attempt waits for the inner service's readiness itself.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        let config = Arc::clone(&self.config);
        Box::pin(async move {
            let (mut parts, _) = req.into_parts();
            // Taken out, not copied: every attempt clones the extensions, and the layers inside
            // need only their own Target.
            crate::route::candidates_in(&mut parts.extensions);
            let candidates = parts
                .extensions
                .remove::<Candidates>()
                .ok_or("fallback: the request has no Candidates (is the route layer missing?)")?;
            parts.extensions.remove::<crate::route::ChainHints>();
            let chat = parts
                .extensions
                .get::<Arc<ChatRequest>>()
                .cloned()
                .ok_or("fallback: the request has no parsed ChatRequest")?;
            if parts.extensions.get::<AttemptLog>().is_none() {
                parts.extensions.insert(AttemptLog::default());
            }
            let stream = chat.stream;
            let run = drive(
                inner,
                parts.extensions,
                candidates,
                chat,
                Arc::clone(&config),
            );
            if !stream {
                return Ok(run.await.into_response());
            }
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

impl Outcome {
    fn into_response(self) -> Response<Body> {
        match self {
            Outcome::Committed(resp) => resp,
            Outcome::Failed(failure) => failure.into_response(),
        }
    }
}
