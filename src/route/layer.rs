//! [`RouteLayer`] and the [`Route`] service.

use super::future::ResponseFuture;
use super::router::Router;
use super::{ChainHints, Plan, Sticky};
use crate::BoxError;
use crate::catalog::Catalog;
use crate::error::GatewayError;
use crate::ext::ChatRequest;
use crate::health::Health;
use http::Request;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Applies [`Route`] over a catalogue snapshot.
#[derive(Debug, Clone)]
pub struct RouteLayer {
    catalog: Arc<Catalog>,
    health: Option<Arc<Health>>,
    sticky: Option<Arc<Sticky>>,
}

impl RouteLayer {
    /// Routes over `catalog`.
    pub fn new(catalog: Arc<Catalog>) -> Self {
        RouteLayer {
            catalog,
            health: None,
            sticky: None,
        }
    }

    /// Reads speed and outages from `health` (sorts, soft preferences, default order).
    pub fn health(mut self, health: Arc<Health>) -> Self {
        self.health = Some(health);
        self
    }

    /// Puts each session's remembered endpoint first.
    pub fn sticky(mut self, sticky: Arc<Sticky>) -> Self {
        self.sticky = Some(sticky);
        self
    }

    /// Steps 1–6 of the [module docs](crate::route) for one request.
    pub fn plan(
        &self,
        chat: &ChatRequest,
        hints: Option<&ChainHints>,
    ) -> Result<Plan, GatewayError> {
        Router {
            catalog: &self.catalog,
            health: self.health.as_ref(),
            sticky: self.sticky.as_deref(),
        }
        .plan(chat, hints)
    }
}

impl<S> Layer<S> for RouteLayer {
    type Service = Route<S>;
    fn layer(&self, inner: S) -> Route<S> {
        Route {
            inner,
            layer: Arc::new(self.clone()),
        }
    }
}

/// The route service; see the [module docs](crate::route).
#[derive(Debug, Clone)]
pub struct Route<S> {
    inner: S,
    /// One refcount per clone of the stack (see [`crate::alias::Alias`]).
    layer: Arc<RouteLayer>,
}

impl<S, B> Service<Request<B>> for Route<S>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // The request is read in place (no refcount taken): the plan owns what it keeps.
        let ext = req.extensions();
        let Some(chat) = ext.get::<Arc<ChatRequest>>() else {
            return ResponseFuture::refused(
                "route: no parsed ChatRequest (is the parse layer missing?)",
            );
        };
        match self.layer.plan(chat, ext.get::<ChainHints>()) {
            Ok(plan) => {
                // A plan the balance layer may reorder is materialised after it (see
                // `candidates_in`); any other is final now.
                if !plan.balanced() {
                    req.extensions_mut().insert(plan.candidates());
                }
                req.extensions_mut().insert(plan);
                ResponseFuture::called(self.inner.call(req))
            }
            Err(e) => ResponseFuture::refused(e),
        }
    }
}
