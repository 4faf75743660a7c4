//! The axum router: the completion stacks, the catalogue, key and metrics endpoints under
//! `/api/v1/` and `/v1/`, `/healthz` at the root, and JSON errors for unknown routes.

use super::{Gateway, anthropic_api, catalog_api, dashboard_api, error, keys_api, metrics_api};
use crate::context::ApiKind;
use crate::error::GatewayError;
use axum::extract::{Path as AxPath, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, post_service};
use axum::{Json, Router};
use http::StatusCode;
use serde_json::json;

impl Gateway {
    /// The axum router with every endpoint, under `/api/v1/` and `/v1/`, and `/healthz`,
    /// `/metrics` (unless `[server] metrics = false`) and `/dashboard` (unless `[telemetry]
    /// dashboard = false`) at the root.
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
            .route_service("/embeddings", post_service(self.embeddings_service()))
            .route_service("/messages", post_service(self.messages_service()))
            .route("/messages/count_tokens", post(anthropic_api::count_tokens))
            .route_service("/responses", post_service(self.responses_service()))
            .route("/models", get(list_models))
            .route("/models/{author}/{slug}/endpoints", get(model_endpoints))
            .route("/model/{author}/{slug}", get(one_model))
            .route("/providers", get(list_providers))
            .route("/generation", get(keys_api::generation))
            .route("/key", get(keys_api::key_info))
            .route("/auth/key", get(keys_api::key_info))
            .route("/credits", get(keys_api::credits))
            .route("/keys", any(keys_api::manage))
            .route("/keys/{hash}", any(keys_api::manage))
            .with_state(self.clone());
        let mut root = Router::new()
            .nest("/api/v1", api.clone())
            .nest("/v1", api)
            .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }));
        if self.config.server.metrics {
            root = root.route(
                "/metrics",
                get(metrics_api::metrics).with_state(self.clone()),
            );
        }
        if self.config.telemetry.dashboard {
            root = root
                .route(
                    "/dashboard",
                    get(dashboard_api::page).with_state(self.clone()),
                )
                .route(
                    "/dashboard/data",
                    get(dashboard_api::data).with_state(self.clone()),
                );
        }
        root.fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
    }
}

async fn list_models(
    State(gw): State<Gateway>,
    Query(q): Query<catalog_api::ModelsQuery>,
    headers: http::HeaderMap,
) -> Response {
    // Claude clients discover models with `anthropic-version` set, and read Anthropic's shape.
    if headers.contains_key("anthropic-version") {
        return Json(anthropic_api::models_json(&gw.catalog)).into_response();
    }
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

/// `GET /model/{author}/{slug}`: one model; plain aliases and variant suffixes resolve to the
/// model they name (with `alias_target` when it was an alias).
async fn one_model(
    State(gw): State<Gateway>,
    AxPath((author, slug)): AxPath<(String, String)>,
) -> Response {
    let id = format!("{author}/{slug}");
    let base = id.split_once(':').map_or(id.as_str(), |(b, _)| b);
    let aliases = gw.aliases.current();
    let (model, alias) = match gw.catalog.model(&id).or_else(|| gw.catalog.model(base)) {
        Some(m) => (Some(m), false),
        None => (aliases.get(base).and_then(|t| gw.catalog.model(t)), true),
    };
    match model {
        Some(m) => {
            let mut v = catalog_api::model_json(m);
            if alias {
                v["alias_target"] = json!({"name": m.name, "slug": m.slug});
                v["id"] = json!(id);
            }
            Json(json!({ "data": v })).into_response()
        }
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
