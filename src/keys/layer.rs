//! The key layers: [`AuthLayer`] at the edge (who is calling) and [`CreditLayer`] after routing
//! (can they afford it).
//!
//! Auth:
//! 1. Read `Authorization: Bearer <key>`; a missing or unknown key is 401, a disabled one 403.
//!    The key is hashed and compared in constant time; it is never logged or echoed.
//! 2. Insert [`CallerKey`] for the layers inside. The client's `Authorization` never travels
//!    further than this: upstream requests are built afresh by the translate layer.
//!
//! Credits:
//! 1. The worst case of the request: over the candidates that may be tried, the largest of
//!    `estimated prompt tokens × prompt price + max output × completion price + request price`,
//!    where max output is `max_tokens`, else the endpoint's or model's max completion, else the
//!    context left after the prompt.
//! 2. Reserve it atomically against the key's remaining limit (limit − spend in the period −
//!    other holds); when it does not fit: 402 naming what is left and what was needed.
//! 3. Put the hold on the request's [`RequestContext`]; the meter settles it to the actual cost
//!    when the response ends, and a failed or cancelled request releases it.
//!
//! # Contracts
//!
//! | layer | reads | writes | when an input is missing |
//! |---|---|---|---|
//! | [`AuthLayer`] | `Authorization` | [`CallerKey`] | 401 (or passes keyless requests when [`optional`](AuthLayer::optional)) |
//! | [`CreditLayer`] | [`CallerKey`], [`ChatRequest`], [`Candidates`], [`RequestContext`] (all required) | a credit hold on the context | money fails closed: no key → 401 (unless [`allow_anonymous`](CreditLayer::allow_anonymous)); no request, candidates or context → [`MissingInput`] |

use super::{AuthError, KeyStore, ReserveError};
use crate::BoxError;
use crate::body::Body;
use crate::catalog::Usd;
use crate::context::{CallerKey, Candidates, ChatRequest, CreditSettle, RequestContext};
use crate::error::GatewayError;
use crate::error::MissingInput;
use crate::future::ResponseFuture;
use futures_util::future::{BoxFuture, FutureExt};
use http::{Request, Response, StatusCode};
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
    S: Service<Request<B>, Response = Response<Body>>,
    S::Error: Send + 'static,
    S::Future: Send + 'static,
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
        match self.store.authenticate(bearer) {
            Ok(info) => {
                req.extensions_mut().insert(CallerKey {
                    hash: info.hash,
                    name: info.name,
                });
                self.inner.call(req).boxed()
            }
            Err(AuthError::Missing | AuthError::Unknown) if !self.required => {
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
    allow_anonymous: bool,
}

impl CreditLayer {
    /// Holds credits in `store`; a request without a [`CallerKey`] is refused (401).
    pub fn new(store: KeyStore) -> Self {
        CreditLayer {
            store,
            allow_anonymous: false,
        }
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
            allow_anonymous: self.allow_anonymous,
        }
    }
}

/// The credit service; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Credit<S> {
    inner: S,
    store: KeyStore,
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
    S: Service<Request<B>, Response = Response<Body>>,
    S::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, Response<Body>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
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
        match self.store.reserve(&key.hash, needed) {
            Ok(reservation) => {
                ctx.hold_credit(reservation);
                ResponseFuture::called(self.inner.call(req))
            }
            Err(e) => ResponseFuture::refused(GatewayError::from(e)),
        }
    }
}
