//! One completion stack: the layers in their order over an upstream service, type-erased for
//! the router.

use super::Gateway;
use crate::alias::AliasLayer;
use crate::balance::BalanceLayer;
use crate::body::Body;
use crate::context::ApiKind;
use crate::fallback::FallbackLayer;
use crate::keys::AuthLayer;
use crate::meter::MeterLayer;
use crate::parse::ParseLayer;
use crate::route::RouteLayer;
use crate::telemetry::TelemetryLayer;
use crate::translate::TranslateLayer;
use std::convert::Infallible;
use std::time::Duration;
use tower::ServiceBuilder;
use tower::util::BoxCloneSyncService;

/// A completion stack with its type erased, as the router mounts it.
pub type CompletionService =
    BoxCloneSyncService<http::Request<axum::body::Body>, http::Response<Body>, Infallible>;

/// What a completion stack can sit on: a cloneable service taking each attempt's upstream
/// request (named once here for the two functions that build a stack).
pub trait UpstreamService:
    tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = crate::BoxError>
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<U> UpstreamService for U where
    U: tower::Service<
            http::Request<Body>,
            Response = http::Response<Body>,
            Error = crate::BoxError,
        > + Clone
        + Send
        + Sync
        + 'static
{
}

impl Gateway {
    /// The completion stack for one client API, outermost first:
    /// auth → parse → telemetry (when `[telemetry]` asks for it) → alias → route → balance → credits → fallback → meter → translate →
    /// upstream; what is still in flight when a graceful stop's grace is over is ended with a
    /// 503 (a stream: a final error event) by the drain around it.
    pub fn completion_service(&self, kind: ApiKind) -> CompletionService {
        self.completion_service_over(kind, self.upstream.clone())
    }

    /// `POST /embeddings`: the same stack for [`ApiKind::Embeddings`] (routed only to models
    /// that embed, passed through to OpenAI-style endpoints, metered per input token), its
    /// generations recorded as [`Ingress::Embeddings`](crate::ledger::Ingress).
    pub fn embeddings_service(&self) -> CompletionService {
        let stack = self.completion_service(ApiKind::Embeddings);
        BoxCloneSyncService::new(tower::ServiceExt::map_request(
            stack,
            |mut req: http::Request<axum::body::Body>| {
                req.extensions_mut()
                    .insert(crate::ledger::Ingress::Embeddings);
                req
            },
        ))
    }

    /// [`Gateway::completion_service`] over another upstream service than the HTTP client: an
    /// in-process model server, a custom client, a test double. It receives each attempt's
    /// request as translate built it (the provider's wire format, the [`crate::context::Target`]
    /// extension naming the endpoint).
    pub fn completion_service_over<U>(&self, kind: ApiKind, upstream: U) -> CompletionService
    where
        U: UpstreamService,
        U::Future: Send + 'static,
    {
        BoxCloneSyncService::new(self.completion_stack(kind, upstream))
    }

    /// The completion stack by its own type: the accept loop clones it per request, which
    /// costs no allocation (a boxed service's clone costs one, and its future another).
    pub(super) fn completion_stack<U>(
        &self,
        kind: ApiKind,
        upstream: U,
    ) -> impl tower::Service<
        http::Request<axum::body::Body>,
        Response = http::Response<Body>,
        Error = Infallible,
        Future: Send + 'static,
    >
    + Clone
    + Send
    + Sync
    + 'static
    + use<U>
    where
        U: UpstreamService,
        U::Future: Send + 'static,
    {
        let server = &self.config.server;
        let auth = self.keys.clone().map(|store| {
            let layer = AuthLayer::new(store);
            if self.auth_required() {
                layer
            } else {
                layer.optional()
            }
        });
        let credits = self.keys.clone().map(|store| {
            let layer = self.credit_layer(store);
            if self.auth_required() {
                layer
            } else {
                layer.allow_anonymous()
            }
        });
        let mut parse = ParseLayer::new(kind).max_body_bytes(server.max_body_bytes);
        let mut fallback = FallbackLayer::new()
            .keepalive_after(Duration::from_millis(server.keepalive_ms))
            .health(self.health.clone())
            .sticky(self.sticky.clone());
        let mut meter = MeterLayer::new()
            .sink(self.ledger.clone())
            .health(self.health.clone());
        if let Some(bound) = self.commit_wait {
            meter = meter.commit_before_answer(bound);
        }
        if server.metrics {
            parse = parse.metrics(self.metrics.clone());
            fallback = fallback.metrics(self.metrics.clone());
            let metrics = self.metrics.clone();
            meter = meter.on_record(move |r| metrics.record_generation(r));
        }
        let telemetry = self
            .config
            .telemetry
            .observes()
            .then(|| TelemetryLayer::new(self.telemetry.clone()));
        let stack = ServiceBuilder::new()
            .option_layer(auth)
            .layer(parse)
            .option_layer(telemetry)
            .layer(AliasLayer::with_handle(
                self.catalog.clone(),
                self.aliases.clone(),
            ))
            .layer(self.auto.clone())
            .layer(
                RouteLayer::new(self.catalog.clone())
                    .health(self.health.clone())
                    .sticky(self.sticky.clone()),
            )
            .layer(BalanceLayer::new().health(self.health.clone()))
            .option_layer(credits)
            .layer(fallback)
            .layer(meter)
            .layer(TranslateLayer::new())
            .service(upstream);
        self.drain.wrap(stack)
    }
}
