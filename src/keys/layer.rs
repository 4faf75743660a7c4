//! The key layers: [`AuthLayer`] at the edge (who is calling) and [`CreditLayer`] after routing
//! (can they afford it).
//!
//! Auth:
//! 1. Read `Authorization: Bearer <key>`; a missing or unknown key is 401, a disabled one 403.
//!    The key is hashed and compared in constant time; it is never logged or echoed. Over keys
//!    shared with other instances, a key unknown here is first looked up in the shared store
//!    (on a blocking thread); when that store cannot be asked, 503.
//! 2. Insert [`CallerKey`] for the layers inside. The client's `Authorization` never travels
//!    further than this: upstream requests are built afresh by the translate layer.
//!
//! Credits:
//! 0. The key's model allow-list (`models = ["openai/*"]`): candidates whose model it does not
//!    allow are dropped; when none is left, 403 naming the model.
//! 1. The worst case of the request: over the candidates that may be tried, the largest of
//!    `estimated prompt tokens × prompt price + max output × completion price + request price`,
//!    where max output is `max_tokens`, else the endpoint's or model's max completion, else the
//!    context left after the prompt.
//! 2. Ask the [`Admission`] (in process by default, or a shared store such as Redis): the
//!    key's requests/tokens per minute (over: 429 with `Retry-After` and `X-RateLimit-*`), then
//!    reserve the worst case atomically against the key's remaining limit (limit − spend in the
//!    period − other holds); when it does not fit: 402 naming what is left and what was
//!    needed. A shared store that cannot be reached refuses with 503: money fails closed.
//! 3. Put the hold on the request's [`RequestContext`]; the meter settles it to the actual cost
//!    when the response ends, and a failed or cancelled request releases it.
//!
//! # Contracts
//!
//! | layer | reads | writes | when an input is missing |
//! |---|---|---|---|
//! | [`AuthLayer`] | `Authorization` | [`CallerKey`] | 401 (or passes keyless requests when [`optional`](AuthLayer::optional)) |
//! | [`CreditLayer`] | [`CallerKey`], [`ChatRequest`], [`Candidates`], [`RequestContext`] (all required) | a credit hold on the context | money fails closed: no key → 401 (unless [`allow_anonymous`](CreditLayer::allow_anonymous)); no request, candidates or context → [`MissingInput`] |

use super::{AuthError, KeyInfo, KeyLookupError, KeyStore, ReserveError};
use crate::BoxError;
use crate::body::Body;
use crate::catalog::Usd;
use crate::context::{CallerKey, Candidates, ChatRequest, CreditSettle, RequestContext};
use crate::error::GatewayError;
use crate::error::MissingInput;
use crate::future::ResponseFuture;
use crate::state::{Admission, Admit, LocalAdmission, Refusal};
use futures_util::future::{BoxFuture, FutureExt};
use http::{HeaderValue, Request, Response, StatusCode};
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

impl From<AuthError> for GatewayError {
    fn from(e: AuthError) -> Self {
        let kind = if e == AuthError::Disabled {
            "permission_denied"
        } else {
            "authentication"
        };
        GatewayError::new(e.status(), kind, e.to_string())
    }
}

impl From<KeyLookupError> for GatewayError {
    fn from(e: KeyLookupError) -> Self {
        match e {
            KeyLookupError::Auth(a) => a.into(),
            KeyLookupError::Unavailable(_) => GatewayError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                e.to_string(),
            ),
        }
    }
}

/// [`KeyStore::authenticate_or_find`] without blocking the executor: a key known here answers
/// at once; the look-up of an unknown one in a shared store runs on a blocking thread.
pub async fn authenticate_shared(
    store: &KeyStore,
    bearer: &str,
) -> Result<KeyInfo, KeyLookupError> {
    match store.authenticate(bearer) {
        Err(AuthError::Unknown) if store.is_shared() => {
            find_shared(store.clone(), bearer.to_owned()).await
        }
        other => other.map_err(Into::into),
    }
}

/// Looks up in the shared store a key this instance does not know, on a blocking thread.
async fn find_shared(store: KeyStore, bearer: String) -> Result<KeyInfo, KeyLookupError> {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => rt
            .spawn_blocking(move || store.authenticate_or_find(&bearer))
            .await
            .unwrap_or_else(|e| {
                Err(KeyLookupError::Unavailable(
                    super::KeyStoreError::Persistence(format!("the look-up ended: {e}")),
                ))
            }),
        Err(_) => store.authenticate_or_find(&bearer),
    }
}

impl From<ReserveError> for GatewayError {
    fn from(e: ReserveError) -> Self {
        match &e {
            ReserveError::Insufficient(i) => GatewayError::new(
                StatusCode::PAYMENT_REQUIRED,
                "payment_required",
                i.to_string(),
            )
            .with_metadata("limit_remaining", i.remaining.as_f64())
            .with_metadata("needed", i.needed.as_f64()),
            ReserveError::UnknownKey => AuthError::Unknown.into(),
            ReserveError::Disabled => AuthError::Disabled.into(),
        }
    }
}

impl From<Refusal> for GatewayError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Credit(e) => e.into(),
            Refusal::Rate(e) => {
                let mut g =
                    GatewayError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limit", e.to_string())
                        .with_metadata("limit", e.limit_kind)
                        .with_metadata("limit_value", e.limit)
                        .with_metadata("reset_ms", e.reset_at_ms);
                g.retry_after = Some(e.retry_after_secs());
                g
            }
            Refusal::Unavailable(e) => GatewayError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                e.to_string(),
            ),
        }
    }
}

/// A refusal as the client sees it: the error envelope, and on a 429 `Retry-After` with
/// `X-RateLimit-Limit`, `X-RateLimit-Remaining` (0) and `X-RateLimit-Reset` (unix ms at which
/// the window ends). An answer, not an error: nothing downstream ran.
fn refusal_response(refusal: Refusal) -> Response<Body> {
    let rate = match &refusal {
        Refusal::Rate(e) => Some((e.limit, e.reset_at_ms)),
        _ => None,
    };
    let mut resp = GatewayError::from(refusal).into_response();
    if let Some((limit, reset)) = rate {
        let h = resp.headers_mut();
        h.insert("x-ratelimit-limit", HeaderValue::from(limit));
        h.insert("x-ratelimit-remaining", HeaderValue::from(0));
        h.insert("x-ratelimit-reset", HeaderValue::from(reset));
    }
    resp
}

/// A model the key's allow-list does not include (403).
fn model_not_allowed(key: &str, model: &str) -> GatewayError {
    GatewayError::new(
        StatusCode::FORBIDDEN,
        "permission_denied",
        format!("The key `{key}` may not use the model `{model}` (see its `models` allow-list)"),
    )
    .with_metadata("model", model)
}

/// Requires a valid gateway key on every request (or, when optional, recognises one if given).
#[derive(Debug, Clone)]
pub struct AuthLayer {
    store: KeyStore,
    required: bool,
}

impl AuthLayer {
    /// Authenticates against `store`; every request needs a key.
    pub fn new(store: KeyStore) -> Self {
        AuthLayer {
            store,
            required: true,
        }
    }

    /// Keys optional (`[auth] required = false`): a known key is recognised (its limits apply),
    /// a missing or unknown one is served anonymously — OpenAI SDKs always send some key. A
    /// disabled key is still refused.
    pub fn optional(mut self) -> Self {
        self.required = false;
        self
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;
    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            store: self.store.clone(),
            required: self.required,
        }
    }
}

/// The auth service; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Auth<S> {
    inner: S,
    store: KeyStore,
    required: bool,
}

impl<S, B> Service<Request<B>> for Auth<S>
where
    S: Service<Request<B>, Response = Response<Body>> + Clone + Send + 'static,
    S::Error: Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    // Refusals are responses, so this layer adds no failure mode of its own.
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let bearer = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let required = self.required;
        match self.store.authenticate(bearer) {
            Ok(info) => {
                req.extensions_mut().insert(CallerKey {
                    hash: info.hash,
                    name: info.name,
                });
                self.inner.call(req).boxed()
            }
            // Perhaps created through another instance: ask the shared store.
            Err(AuthError::Unknown) if self.store.is_shared() => {
                let (store, bearer) = (self.store.clone(), bearer.to_owned());
                // The clone that was made ready goes with the request (tower's usual swap).
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                async move {
                    match find_shared(store, bearer).await {
                        Ok(info) => {
                            req.extensions_mut().insert(CallerKey {
                                hash: info.hash,
                                name: info.name,
                            });
                            inner.call(req).await
                        }
                        Err(KeyLookupError::Auth(AuthError::Unknown)) if !required => {
                            inner.call(req).await
                        }
                        Err(e) => Ok(GatewayError::from(e).into_response()),
                    }
                }
                .boxed()
            }
            Err(AuthError::Missing | AuthError::Unknown) if !required => {
                self.inner.call(req).boxed()
            }
            Err(e) => std::future::ready(Ok(GatewayError::from(e).into_response())).boxed(),
        }
    }
}

/// Reserves each request's worst-case cost on its key; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct CreditLayer {
    store: KeyStore,
    admission: Arc<dyn Admission>,
    allow_anonymous: bool,
}

impl CreditLayer {
    /// Holds credits in `store`, counting rate limits in process; a request without a
    /// [`CallerKey`] is refused (401).
    pub fn new(store: KeyStore) -> Self {
        CreditLayer {
            admission: Arc::new(LocalAdmission::new(store.clone())),
            store,
            allow_anonymous: false,
        }
    }

    /// Admits requests through `admission` (a shared store) instead of in process; `store`
    /// still holds the keys' settings.
    pub fn admission(mut self, admission: Arc<dyn Admission>) -> Self {
        self.admission = admission;
        self
    }

    /// Lets requests without a [`CallerKey`] through unchecked: for a gateway whose keys are
    /// optional ([`AuthLayer::optional`]), where keyless callers have no limit to enforce.
    pub fn allow_anonymous(mut self) -> Self {
        self.allow_anonymous = true;
        self
    }
}

impl CreditSettle for super::Reservation {
    fn settle(self: Box<Self>, actual: Usd) {
        super::Reservation::settle(*self, actual);
    }
}

impl<S> Layer<S> for CreditLayer {
    type Service = Credit<S>;
    fn layer(&self, inner: S) -> Credit<S> {
        Credit {
            inner,
            store: self.store.clone(),
            admission: Arc::clone(&self.admission),
            allow_anonymous: self.allow_anonymous,
        }
    }
}

/// The credit service; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Credit<S> {
    inner: S,
    store: KeyStore,
    admission: Arc<dyn Admission>,
    allow_anonymous: bool,
}

/// The worst-case cost of a request over the candidates that may be tried.
pub fn worst_case(chat: &ChatRequest, candidates: &Candidates) -> Usd {
    let prompt = chat.estimated_prompt_tokens();
    let limit = candidates.limit.unwrap_or(usize::MAX);
    candidates
        .targets
        .iter()
        .take(limit)
        .map(|t| {
            let e = t.endpoint();
            let context_left = e
                .context_length(&t.model)
                .map(|c| u64::from(c).saturating_sub(prompt));
            let output = chat
                .max_tokens
                .map(u64::from)
                .or(e
                    .max_completion_tokens
                    .or(t.model.max_completion_tokens)
                    .map(u64::from))
                .or(context_left)
                .unwrap_or(4096);
            let p = e.pricing.effective(prompt, 0);
            p.prompt * prompt + p.completion * output + p.request
        })
        .max()
        .unwrap_or(Usd::ZERO)
}

impl<S, B> Service<Request<B>> for Credit<S>
where
    S: Service<Request<B>, Response = Response<Body>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, Response<Body>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if let Err(refusal) = self.allowed_models(&mut req) {
            return ResponseFuture::refused(refusal);
        }
        let ext = req.extensions();
        let Some(key) = ext.get::<CallerKey>() else {
            if self.allow_anonymous {
                return ResponseFuture::called(self.inner.call(req));
            }
            return ResponseFuture::refused(GatewayError::new(
                StatusCode::UNAUTHORIZED,
                "authentication",
                "credits: the request carries no gateway key, so its spending cannot be checked",
            ));
        };
        let missing =
            |input| MissingInput::new("credits", input, "set by the parse and route layers");
        let Some(chat) = ext.get::<Arc<ChatRequest>>() else {
            return ResponseFuture::refused(missing("ChatRequest"));
        };
        let Some(candidates) = ext.get::<Candidates>() else {
            return ResponseFuture::refused(missing("Candidates"));
        };
        let Some(ctx) = ext.get::<RequestContext>() else {
            return ResponseFuture::refused(missing("RequestContext"));
        };
        let needed = worst_case(chat, candidates);
        match self.admission.admit(&key.hash, needed) {
            Admit::Ready(Ok(hold)) => {
                ctx.hold_credit_boxed(hold);
                ResponseFuture::called(self.inner.call(req))
            }
            Admit::Ready(Err(e @ Refusal::Rate(_))) => {
                let resp = refusal_response(e);
                ResponseFuture::read(Box::pin(std::future::ready(Ok(resp))))
            }
            Admit::Ready(Err(e)) => ResponseFuture::refused(GatewayError::from(e)),
            Admit::Pending(decision) => {
                let ctx = ctx.clone();
                // The clone that was made ready goes with the request (tower's usual swap).
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::read(Box::pin(async move {
                    let hold = match decision.await {
                        Ok(hold) => hold,
                        Err(e) => return Ok(refusal_response(e)),
                    };
                    ctx.hold_credit_boxed(hold);
                    inner.call(req).await.map_err(Into::into)
                }))
            }
        }
    }
}

impl<S> Credit<S> {
    /// Drops the candidates whose model the caller's key does not allow; 403 naming the model
    /// when none is left. Keys without an allow-list (and keyless requests) pass untouched.
    fn allowed_models<B>(&self, req: &mut Request<B>) -> Result<(), GatewayError> {
        let ext = req.extensions();
        let Some(key) = ext.get::<CallerKey>() else {
            return Ok(());
        };
        let Some(limits) = self
            .store
            .limits(&key.hash)
            .filter(|l| !l.models.is_empty())
        else {
            return Ok(());
        };
        let Some(candidates) = ext.get::<Candidates>() else {
            return Ok(());
        };
        if candidates
            .targets
            .iter()
            .all(|t| limits.allows(&t.model.slug))
        {
            return Ok(());
        }
        let Some(first) = candidates.targets.first() else {
            return Ok(());
        };
        let refused = model_not_allowed(&key.name, &first.model.slug);
        let mut kept = candidates.clone();
        kept.targets.retain(|t| limits.allows(&t.model.slug));
        if kept.targets.is_empty() {
            return Err(refused);
        }
        req.extensions_mut().insert(kept);
        Ok(())
    }
}
