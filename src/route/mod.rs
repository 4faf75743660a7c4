//! Route: from the requested model (and the `models` fallback list) to the ordered
//! [`Candidates`] the fallback layer will try.
//!
//! 1. For each model of the chain (`model`, then `models`), look it up in the catalogue; an
//!    unknown model is a 400 that names it (`availability.code = model_not_found`).
//! 2. Keep the model's endpoints whose provider is enabled, and that pass the request's hard
//!    filters.
//! 3. Order each model's endpoints cheapest first (the balance layer may reorder), and chain the
//!    models in request order.
//! 4. When nothing qualifies: 404 naming why each endpoint was excluded.

use crate::BoxError;
use crate::catalog::Catalog;
use crate::error::GatewayError;
use crate::ext::{Candidates, ChatRequest, Target};
use futures_util::future::{BoxFuture, FutureExt};
use http::{Request, StatusCode};
use serde_json::json;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Applies [`Route`] over a catalogue snapshot.
#[derive(Debug, Clone)]
pub struct RouteLayer {
    catalog: Arc<Catalog>,
}

impl RouteLayer {
    /// Routes over `catalog`.
    pub fn new(catalog: Arc<Catalog>) -> Self {
        RouteLayer { catalog }
    }
}

impl<S> Layer<S> for RouteLayer {
    type Service = Route<S>;
    fn layer(&self, inner: S) -> Route<S> {
        Route {
            inner,
            catalog: self.catalog.clone(),
        }
    }
}

/// The route service; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Route<S> {
    inner: S,
    catalog: Arc<Catalog>,
}

impl<S, B> Service<Request<B>> for Route<S>
where
    S: Service<Request<B>, Error = BoxError>,
    S::Response: Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<S::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let Some(chat) = req.extensions().get::<Arc<ChatRequest>>().cloned() else {
            return std::future::ready(Err(
                "route: no parsed ChatRequest (is the parse layer missing?)".into(),
            ))
            .boxed();
        };
        match candidates(&self.catalog, &chat) {
            Ok(c) => {
                req.extensions_mut().insert(c);
                self.inner.call(req).boxed()
            }
            Err(e) => std::future::ready(Err(Box::new(e) as BoxError)).boxed(),
        }
    }
}

/// Computes the candidates for a request.
pub fn candidates(catalog: &Catalog, chat: &ChatRequest) -> Result<Candidates, GatewayError> {
    let mut targets = Vec::new();
    let mut reasons: Vec<String> = Vec::new();
    for slug in chat.model_chain() {
        let model = catalog.model(slug).ok_or_else(|| {
            let mut e = GatewayError::bad_request(format!("`{slug}` is not a valid model ID"));
            e.availability = Some(json!({"code": "model_not_found", "requested_models": [slug]}));
            e
        })?;
        let mut own: Vec<Target> = Vec::new();
        for (i, e) in model.endpoints.iter().enumerate() {
            if !e.provider.enabled {
                reasons.push(format!(
                    "{} via {} is disabled (set {})",
                    model.slug,
                    e.provider.slug,
                    e.provider.api_key_env.as_deref().unwrap_or("its key")
                ));
                continue;
            }
            if chat.hints.free_only && !e.pricing.is_free() {
                continue;
            }
            own.push(Target {
                model: model.clone(),
                endpoint: i,
            });
        }
        own.sort_by_key(|t| {
            let p = &t.endpoint().pricing;
            p.prompt + p.completion
        });
        targets.extend(own);
    }
    if targets.is_empty() {
        let mut e = GatewayError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "No endpoints found for {}: {}",
                chat.model_chain().join(", "),
                reasons.join("; ")
            ),
        );
        e.availability =
            Some(json!({"code": "no_endpoints", "requested_models": chat.model_chain()}));
        return Err(e);
    }
    let strategy = if chat.models.is_empty() {
        "direct"
    } else {
        "fallback"
    };
    Ok(Candidates {
        targets,
        limit: None,
        strategy: Some(strategy),
    })
}
