//! [`RouteLayer`] and the [`Route`] service.

use super::router::Router;
use super::{Plan, SessionPins};
use crate::BoxError;
use crate::catalog::Catalog;
use crate::context::{ChatRequest, FromChat, parse_then_call};
use crate::error::GatewayError;
use crate::future::ResponseFuture;
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
    sticky: Option<Arc<dyn SessionPins>>,
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

    /// Puts each session's remembered endpoint first. A shared store that must be asked
    /// about a session this instance has not seen is awaited before planning (within its
    /// timeout; no answer means default order).
    pub fn sticky(mut self, sticky: Arc<dyn SessionPins>) -> Self {
        self.sticky = Some(sticky);
        self
    }

    /// Steps 1–6 of the [module docs](crate::route) for one request.
    pub fn plan(&self, chat: &ChatRequest) -> Result<Plan, GatewayError> {
        Router {
            catalog: &self.catalog,
            health: self.health.as_ref(),
            sticky: self.sticky.as_deref(),
        }
        .plan(chat)
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
    S: Service<Request<B>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + FromChat + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // The request is read in place (no refcount taken): the plan owns what it keeps.
        let Some(chat) = req.extensions().get::<Arc<ChatRequest>>() else {
            // No parse layer in front: the body is read here, then routed the same way.
            let clone = self.inner.clone();
            let inner = std::mem::replace(&mut self.inner, clone);
            let layer = Arc::clone(&self.layer);
            return ResponseFuture::read(parse_then_call(req, inner, move |req, chat| {
                layer.insert_plan(req, chat)
            }));
        };
        let chat = Arc::clone(chat);
        if let Some(fetch) = self.layer.fetch_pins(&chat) {
            let clone = self.inner.clone();
            let mut inner = std::mem::replace(&mut self.inner, clone);
            let layer = Arc::clone(&self.layer);
            return ResponseFuture::read(Box::pin(async move {
                fetch.await;
                layer.insert_plan(&mut req, &chat)?;
                std::future::poll_fn(|cx| inner.poll_ready(cx))
                    .await
                    .map_err(Into::into)?;
                inner.call(req).await.map_err(Into::into)
            }));
        }
        match self.layer.insert_plan(&mut req, &chat) {
            Ok(()) => ResponseFuture::called(self.inner.call(req)),
            Err(e) => ResponseFuture::refused(e),
        }
    }
}

impl RouteLayer {
    /// The shared-pin lookup to await first, when the request's session may be pinned
    /// elsewhere (only where a pin is used: no `provider.order`, no sort).
    fn fetch_pins(
        &self,
        chat: &ChatRequest,
    ) -> Option<futures_util::future::BoxFuture<'static, ()>> {
        let (sticky, session) = (self.sticky.as_ref()?, chat.session_id.as_deref()?);
        if chat.provider.order.is_some() || chat.provider.sort.is_some() {
            return None;
        }
        let models: Vec<&str> = chat.model_chain_iter().collect();
        sticky.fetch(session, &models)
    }

    /// Plans `chat` and leaves the result on `req`: the [`Candidates`](crate::context::Candidates)
    /// always, and the [`Plan`] too when the balance layer may still reorder it.
    fn insert_plan<B>(&self, req: &mut Request<B>, chat: &ChatRequest) -> Result<(), GatewayError> {
        let plan = self.plan(chat)?;
        req.extensions_mut().insert(plan.candidates());
        if plan.balanced() {
            req.extensions_mut().insert(plan);
        }
        Ok(())
    }
}
