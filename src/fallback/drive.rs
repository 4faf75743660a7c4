//! The attempt loop.

use super::body::{StreamGuard, is_content_event, is_done_event};
use super::metadata;
use super::outcome::{ChunkStamp, Failure, Outcome};
use crate::BoxError;
use crate::body::{self as b, Body};
use crate::classify::{Class, classify_error, classify_status};
use crate::context::{
    ApiKind, Attempt, Candidates, ChatBody, ChatRequest, FromChat, GenerationId, RequestContext,
    Target,
};
use crate::error::GatewayError;
use crate::health::Outcome as HealthOutcome;
use crate::translate::ProviderFailure;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::json;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use tower::{Service, ServiceExt};
use tracing::Instrument as _;

/// Why one attempt did not commit.
struct AttemptFailure {
    class: Class,
    error: GatewayError,
    retry_after: Option<HeaderValue>,
}

pub(super) fn drive<S, B>(
    mut inner: S,
    parts: http::request::Parts,
    candidates: Candidates,
    chat: Arc<ChatRequest>,
    // The layer's settings whole: one refcount instead of one per shared registry.
    config: Arc<super::FallbackLayer>,
) -> impl Future<Output = Outcome> + Send + 'static
where
    S: Service<Request<B>, Response = Response<Body>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: FromChat + Send + 'static,
{
    let extensions = parts.extensions;
    // The client's header map, emptied: the last attempt reuses its storage (none of the
    // client's headers go upstream).
    let mut headers = parts.headers;
    headers.clear();
    async move {
        // The fallback layer inserts a context when the request came without one.
        let ctx = extensions
            .get::<RequestContext>()
            .cloned()
            .unwrap_or_default();
        let id = ctx.id().clone();
        let limit = candidates.limit.unwrap_or(usize::MAX);
        let mut skip_model: Option<String> = None;
        let mut last: Option<AttemptFailure> = None;
        let mut previous = Vec::new();
        let mut extensions = extensions;
        let tried = candidates.targets.len().min(limit);
        for (index, target) in candidates.targets.iter().take(limit).enumerate() {
            if skip_model.as_deref() == Some(&*target.model.slug) {
                continue;
            }
            if let Some(h) = &config.health {
                if h.cooling_down(target.key()) && candidates.targets.len() > 1 {
                    continue;
                }
            }
            let body = B::from_chat(ChatBody::for_target(Arc::clone(&chat), target.clone()));
            let mut req = Request::new(body);
            *req.method_mut() = http::Method::POST;
            *req.uri_mut() = http::Uri::from_static(api_path(chat.kind));
            // The last candidate takes the extensions and the header map instead of copies
            // (a map of boxed clones): a model with one endpoint never copies them.
            let final_attempt = index + 1 == tried;
            if final_attempt {
                *req.headers_mut() = std::mem::take(&mut headers);
            }
            req.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            *req.extensions_mut() = if final_attempt {
                std::mem::take(&mut extensions)
            } else {
                extensions.clone()
            };
            req.extensions_mut().insert(target.clone());
            let start = Instant::now();
            let span = attempt_span(target, index);
            // Each attempt's future owns what it needs: the one inner service serves them all.
            let attempt = async {
                let ready: Result<&mut S, BoxError> = inner.ready().await.map_err(Into::into);
                let result = match ready {
                    Ok(svc) => svc.call(req).await.map_err(Into::into),
                    Err(e) => Err(e),
                };
                match result {
                    Ok(resp) => commit_or_fail(resp, &chat, &target.endpoint().provider.name).await,
                    Err(e) => Err(AttemptFailure {
                        class: classify_error(&e),
                        error: GatewayError::from_box(&e),
                        retry_after: None,
                    }),
                }
            }
            .instrument(span.clone())
            .await;
            let provider = &target.endpoint().provider;
            let elapsed = start.elapsed();
            let status = match &attempt {
                Ok(_) => 200,
                Err(f) => f.error.status.as_u16(),
            };
            record_attempt_span(&span, status, elapsed, attempt.as_ref().err());
            drop(span);
            ctx.record_attempt(Attempt {
                provider: provider.name.clone(),
                provider_slug: provider.slug.clone(),
                model: target.model.slug.clone(),
                status,
                latency_ms: elapsed.as_millis() as u64,
                error: attempt.as_ref().err().map(|f| f.error.message.clone()),
            });
            if let Some(m) = &config.metrics {
                m.record_attempt(&provider.slug, attempt.is_ok());
            }
            if let Some(h) = &config.health {
                let retry_after = attempt
                    .as_ref()
                    .err()
                    .and_then(|f| f.retry_after.as_ref())
                    .and_then(parse_retry_after);
                h.record(
                    target.key(),
                    HealthOutcome {
                        success: attempt.is_ok(),
                        status,
                        retry_after,
                    },
                );
            }
            match attempt {
                Ok(resp) => {
                    if let (Some(sticky), Some(session)) = (&config.sticky, &chat.session_id) {
                        if chat.provider.order.is_none() {
                            sticky.remember(session, &target.model.slug, target.key());
                        }
                    }
                    let resp = finish_success(resp, &chat, &ctx, &candidates, target, &id).await;
                    return Outcome::Committed(resp);
                }
                Err(f) => {
                    previous.push(json!({"provider": provider.name, "model": target.model.slug, "status": status, "message": f.error.message}));
                    match f.class {
                        Class::Final | Class::Success => {
                            return Outcome::Failed(failure(f, &previous, target, &id));
                        }
                        Class::NextModel => skip_model = Some(target.model.slug.to_string()),
                        Class::NextEndpoint => {}
                    }
                    last = Some(f);
                }
            }
        }
        let target = candidates.targets.first();
        match (last, target) {
            (Some(f), Some(t)) => Outcome::Failed(failure(f, &previous, t, &id)),
            _ => {
                // Every candidate was cooling down after 429s: say so and when to come back.
                let mut e = GatewayError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limit_exceeded",
                    "Every provider of this model is rate limited right now; retry shortly",
                );
                e.availability = Some(json!({"code": "capacity_exhausted", "retryable": true}));
                let stamp = ChunkStamp {
                    id: id.shared(),
                    model: chat.model.as_deref().unwrap_or_default().into(),
                    provider: Arc::default(),
                };
                Outcome::Failed(Failure {
                    error: e,
                    retry_after: Some(HeaderValue::from_static("1")),
                    stamp,
                })
            }
        }
    }
}

/// One attempt's span, a child of the request's (see [`crate::telemetry`]): the OpenTelemetry
/// GenAI fields of the endpoint tried, then its outcome (integers as `i64`: OpenTelemetry
/// exports a `u64` as text). It ends when the attempt is classified,
/// which for a stream is its first content event: its duration is the attempt's time to first
/// token.
fn attempt_span(target: &Target, index: usize) -> tracing::Span {
    let e = target.endpoint();
    tracing::info_span!(
        target: "switchyard::attempt",
        "gen_ai.attempt",
        otel.name = %format_args!("attempt {} {}", index + 1, e.provider.slug),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        gen_ai.provider.name = &*e.provider.slug,
        gen_ai.request.model = &*e.upstream_model,
        switchyard.model = &*target.model.slug,
        switchyard.attempt = i64::try_from(index + 1).unwrap_or(i64::MAX),
        switchyard.outcome = tracing::field::Empty,
        switchyard.latency_ms = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
    )
}

fn record_attempt_span(
    span: &tracing::Span,
    status: u16,
    elapsed: std::time::Duration,
    failure: Option<&AttemptFailure>,
) {
    // The failure's message is left out: an upstream's error text can echo what it was sent.
    span.record("http.response.status_code", i64::from(status));
    span.record(
        "switchyard.latency_ms",
        i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX),
    );
    span.record(
        "switchyard.outcome",
        if failure.is_some() {
            "failure"
        } else {
            "success"
        },
    );
    if failure.is_some() {
        span.record("otel.status_code", "ERROR");
    }
}

fn parse_retry_after(v: &HeaderValue) -> Option<std::time::Duration> {
    v.to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(std::time::Duration::from_secs)
}

fn failure(
    f: AttemptFailure,
    previous: &[serde_json::Value],
    target: &Target,
    id: &GenerationId,
) -> Failure {
    let mut error = f.error;
    if previous.len() > 1 {
        error.metadata.insert(
            "previous_errors".into(),
            serde_json::Value::from(previous[..previous.len() - 1].to_vec()),
        );
    }
    Failure {
        error,
        retry_after: f.retry_after,
        stamp: ChunkStamp {
            id: id.shared(),
            model: target.model.slug.clone(),
            provider: target.endpoint().provider.name.clone(),
        },
    }
}

/// Decides whether an attempt's response commits: error statuses fail; streams must deliver
/// their first content event (or complete) first.
async fn commit_or_fail(
    resp: Response<Body>,
    chat: &ChatRequest,
    provider: &str,
) -> Result<Response<Body>, AttemptFailure> {
    if !resp.status().is_success() {
        let status = resp.status();
        let retry_after = resp.headers().get(header::RETRY_AFTER).cloned();
        let error = match resp.extensions().get::<ProviderFailure>() {
            Some(ProviderFailure(e)) => e.clone(),
            // Not from the translate layer: the upstream's own (OpenAI-style) error body says
            // why, read as translate reads one.
            None => {
                let body = crate::body::read_limited(resp.into_body(), MAX_ERROR_BODY)
                    .await
                    .unwrap_or_default();
                crate::translate::openai_error_from_body(status.as_u16(), &body, provider)
            }
        };
        let class = classify_status(status.as_u16(), Some(error.error_type));
        return Err(AttemptFailure {
            class,
            error,
            retry_after,
        });
    }
    if !chat.stream {
        return Ok(resp);
    }
    let (parts, mut body) = crate::sse::ensure_event_frames(resp).into_parts();
    let mut prefix: Vec<Bytes> = Vec::new();
    loop {
        match body.frame().await {
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                let content = is_content_event(&data);
                let done = is_done_event(&data);
                prefix.push(data);
                if content || done {
                    break;
                }
            }
            Some(Err(e)) => {
                return Err(AttemptFailure {
                    class: classify_error(&e),
                    error: GatewayError::from_box(&e),
                    retry_after: None,
                });
            }
            None => {
                let e = GatewayError::new(
                    StatusCode::BAD_GATEWAY,
                    "provider_unavailable",
                    "the upstream stream ended before any content",
                );
                return Err(AttemptFailure {
                    class: Class::NextEndpoint,
                    error: e,
                    retry_after: None,
                });
            }
        }
    }
    let rest = b::boxed_as_is(PrefixedBody::new(prefix, body));
    Ok(Response::from_parts(parts, rest))
}

async fn finish_success(
    resp: Response<Body>,
    chat: &ChatRequest,
    ctx: &RequestContext,
    candidates: &Candidates,
    target: &Target,
    id: &GenerationId,
) -> Response<Body> {
    let meta = chat.wants_metadata.then(|| metadata::MetadataSource {
        chat_requested: chat.hints.requested.clone().or_else(|| chat.model.clone()),
        strategy: chat
            .hints
            .strategy
            .or(candidates.strategy)
            .unwrap_or("direct"),
        ctx: ctx.clone(),
        candidates: candidates.clone(),
        selected: target.key().to_owned(),
        auto: chat.hints.auto.clone(),
    });
    if !chat.stream {
        return match meta {
            Some(m) => metadata::attach_to_json(resp, m).await,
            None => resp,
        };
    }
    // Only a stream needs the stamp (for an error event after its start).
    let stamp = ChunkStamp {
        id: id.shared(),
        model: target.model.slug.clone(),
        provider: target.endpoint().provider.name.clone(),
    };
    let (parts, body) = resp.into_parts();
    Response::from_parts(parts, b::boxed_as_is(StreamGuard::new(body, stamp, meta)))
}

pin_project_lite::pin_project! {
    /// Replays the frames read while probing, then the rest of the body.
    struct PrefixedBody {
        prefix: std::collections::VecDeque<Bytes>,
        #[pin]
        rest: Body,
    }
}

impl PrefixedBody {
    fn new(prefix: Vec<Bytes>, rest: Body) -> Self {
        PrefixedBody {
            prefix: prefix.into(),
            rest,
        }
    }
}

impl http_body::Body for PrefixedBody {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        let this = self.project();
        if let Some(b) = this.prefix.pop_front() {
            return std::task::Poll::Ready(Some(Ok(http_body::Frame::data(b))));
        }
        this.rest.poll_frame(cx)
    }
}

/// Largest error body read from an upstream that is not behind the translate layer.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The relative path of an attempt: what an OpenAI-compatible base URL is joined with.
fn api_path(kind: ApiKind) -> &'static str {
    match kind {
        ApiKind::Chat => "/chat/completions",
        ApiKind::Completions => "/completions",
        ApiKind::Embeddings => "/embeddings",
    }
}
