//! `GET /generation`, `GET /key` (`/auth/key`), `GET /credits` and the management API
//! `/keys` (SPEC 1.8, 1.9; management needs the management key).

use super::{Gateway, error};
use crate::error::GatewayError;
use crate::keys::api;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode, Uri};
use std::collections::HashMap;

pub(super) fn bearer(headers: &HeaderMap) -> &str {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn no_keys() -> Response {
    error(GatewayError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "This gateway has no keys: configure [auth] or [[keys]] (docs/config.md)",
    ))
}

/// `GET /generation?id=gen-…`: the ledger record, found as soon as its response has ended.
pub(super) async fn generation(
    State(gw): State<Gateway>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(id) = q.get("id").filter(|s| !s.is_empty()) else {
        return error(GatewayError::bad_request(
            "`id` query parameter is required",
        ));
    };
    match gw.ledger.get(id) {
        Some(rec) => Json(rec.to_api_json()).into_response(),
        None => error(GatewayError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("Generation `{id}` not found"),
        )),
    }
}

/// `GET /key`: the calling key's limits and usage.
pub(super) async fn key_info(State(gw): State<Gateway>, headers: HeaderMap) -> Response {
    let Some(store) = gw.keys.as_ref() else {
        return no_keys();
    };
    let b = bearer(&headers);
    if let Some(info) = store.management_key_info(b) {
        return Json(api::key_info_json(&info)).into_response();
    }
    match crate::keys::authenticate_shared(store, b).await {
        Ok(info) => Json(api::key_info_json(&info)).into_response(),
        Err(e) => error(e.into()),
    }
}

/// `GET /credits`: needs the management key (as OpenRouter's current API does).
pub(super) async fn credits(State(gw): State<Gateway>, headers: HeaderMap) -> Response {
    let Some(store) = gw.keys.as_ref() else {
        return no_keys();
    };
    if !store.is_management_key(bearer(&headers)) {
        return error(GatewayError::new(
            StatusCode::FORBIDDEN,
            "permission_denied",
            "GET /credits needs the management key",
        ));
    }
    Json(api::credits_json(store)).into_response()
}

/// `/keys` and `/keys/{hash}`: the management API; ordinary keys are refused.
pub(super) async fn manage(
    State(gw): State<Gateway>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(store) = gw.keys.as_ref() else {
        return no_keys();
    };
    let b = bearer(&headers);
    if !store.is_management_key(b) {
        let (status, message) = if b.is_empty() {
            (
                StatusCode::UNAUTHORIZED,
                "The key management API needs the management key",
            )
        } else {
            (
                StatusCode::FORBIDDEN,
                "The key management API needs the management key, not an ordinary key",
            )
        };
        return error(GatewayError::new(status, "permission_denied", message));
    }
    let path = uri.path();
    let tail = path.find("/keys").map_or("", |i| &path[i..]).to_owned();
    // Changes are written through to the key store's persistence (a file, PostgreSQL): off the
    // async executor.
    let store = store.clone();
    let answer =
        tokio::task::spawn_blocking(move || api::handle(&store, &method, &tail, &body)).await;
    match answer {
        Ok((status, value)) => (status, Json(value)).into_response(),
        Err(e) => error(GatewayError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the key management request ended: {e}"),
        )),
    }
}
