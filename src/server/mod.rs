//! The ready-to-run gateway: the layers stacked in their order, mounted under `/api/v1/` and
//! `/v1/` with the catalogue endpoints, on axum.
//!
//! ```no_run
//! use switchyard::server::Gateway;
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let gateway = Gateway::embedded_default();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! gateway.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

mod catalog_api;

use crate::catalog::{Catalog, Config, ConfigError};
use crate::error::GatewayError;
use crate::ext::ApiKind;
use crate::fallback::FallbackLayer;
use crate::health::Health;
use crate::parse::ParseLayer;
use crate::route::RouteLayer;
use crate::translate::TranslateLayer;
use crate::upstream::Upstream;
use axum::extract::{Path as AxPath, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post_service};
use axum::{Json, Router};
use http::StatusCode;
use serde_json::json;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceBuilder;

/// A configured gateway: catalogue, shared state and settings.
#[derive(Debug, Clone)]
pub struct Gateway {
    config: Arc<Config>,
    catalog: Arc<Catalog>,
    health: Arc<Health>,
    upstream: Upstream,
}

impl Gateway {
    /// A gateway for a parsed config; relative paths resolve against `base_dir`.
    pub fn from_config(config: Config, base_dir: &Path) -> Result<Gateway, ConfigError> {
        let catalog = Catalog::from_config(&config, base_dir)?;
        Ok(Gateway::new(config, catalog))
    }

    /// Reads a config file and builds the gateway.
    pub fn from_file(path: &Path) -> Result<Gateway, ConfigError> {
        let config = Config::load(path)?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        Gateway::from_config(config, base)
    }

    /// The gateway over the embedded default catalogue (providers enabled by their key variables).
    pub fn embedded_default() -> Gateway {
        Gateway::new(Config::default(), Catalog::embedded_default())
    }

    /// A gateway over an already built catalogue.
    pub fn new(config: Config, catalog: Catalog) -> Gateway {
        Gateway {
            config: Arc::new(config),
            catalog: Arc::new(catalog),
            health: Arc::new(Health::new()),
            upstream: Upstream::new(),
        }
    }

    /// The config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The catalogue.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The health registry.
    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    /// The completion stack for one client API, outermost first:
    /// parse → route → fallback → translate → upstream.
    pub fn completion_service(
        &self,
        kind: ApiKind,
    ) -> crate::parse::Parse<
        crate::route::Route<crate::fallback::Fallback<crate::translate::Translate<Upstream>>>,
    > {
        let server = &self.config.server;
        ServiceBuilder::new()
            .layer(ParseLayer::new(kind).max_body_bytes(server.max_body_bytes))
            .layer(RouteLayer::new(self.catalog.clone()))
            .layer(
                FallbackLayer::new()
                    .keepalive_after(Duration::from_millis(server.keepalive_ms))
                    .health(self.health.clone()),
            )
            .layer(TranslateLayer::new())
            .service(self.upstream.clone())
    }

    /// The axum router with every endpoint, under `/api/v1/` and `/v1/`.
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route_service(
                "/chat/completions",
                post_service(self.completion_service(ApiKind::Chat)),
            )
            .route_service(
                "/completions",
                post_service(self.completion_service(ApiKind::Completions)),
            )
            .route("/models", get(list_models))
            .route("/models/{author}/{slug}/endpoints", get(model_endpoints))
            .route("/providers", get(list_providers))
            .with_state(self.clone());
        Router::new()
            .nest("/api/v1", api.clone())
            .nest("/v1", api)
            .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
    }

    /// Serves on `listener` until `shutdown` resolves, then lets in-flight requests (streams
    /// included) finish for at most `[server].shutdown_grace_ms`.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let grace = Duration::from_millis(self.config.server.shutdown_grace_ms);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = self.router();
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            shutdown.await;
            let _ = tx.send(());
        });
        tokio::select! {
            result = server.into_future() => result,
            () = async move {
                if rx.await.is_ok() {
                    tokio::time::sleep(grace).await;
                } else {
                    std::future::pending::<()>().await;
                }
            } => {
                tracing::warn!("in-flight requests still running after {} ms; exiting", grace.as_millis());
                Ok(())
            }
        }
    }
}

async fn list_models(
    State(gw): State<Gateway>,
    Query(q): Query<catalog_api::ModelsQuery>,
) -> Response {
    Json(catalog_api::models_json(&gw.catalog, &q)).into_response()
}

async fn model_endpoints(
    State(gw): State<Gateway>,
    AxPath((author, slug)): AxPath<(String, String)>,
) -> Response {
    let id = format!("{author}/{slug}");
    match gw.catalog.model(&id) {
        Some(m) => Json(catalog_api::endpoints_json(m, &gw.health)).into_response(),
        None => error(GatewayError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("Model `{id}` is not in the catalogue"),
        )),
    }
}

async fn list_providers(State(gw): State<Gateway>) -> Response {
    Json(catalog_api::providers_json(&gw.catalog)).into_response()
}

async fn not_found(uri: http::Uri) -> Response {
    error(GatewayError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("No route for {}", uri.path()),
    ))
}

async fn method_not_allowed(method: http::Method, uri: http::Uri) -> Response {
    error(GatewayError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request",
        format!("{method} is not allowed on {}", uri.path()),
    ))
}

/// An error envelope as an axum response.
fn error(e: GatewayError) -> Response {
    e.into_response().into_response()
}
