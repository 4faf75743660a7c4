//! `GET /metrics`: the [`Metrics`](crate::metrics::Metrics) registry in Prometheus's text
//! format, at the root beside `/healthz` (scrapers expect it there, not under an API prefix).
//!
//! The counts reveal traffic and providers, so a gateway with keys serves them only to the
//! management key, as it does `/credits`; a gateway without keys is open to whoever reaches
//! it, and so is this.

use super::keys_api::bearer;
use super::{Gateway, error};
use crate::error::GatewayError;
use crate::metrics::CONTENT_TYPE;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};

/// `GET /metrics`: needs the management key when the gateway has keys.
pub(super) async fn metrics(State(gw): State<Gateway>, headers: HeaderMap) -> Response {
    if let Some(store) = gw.keys.as_ref()
        && !store.is_management_key(bearer(&headers))
    {
        return error(GatewayError::new(
            StatusCode::UNAUTHORIZED,
            "authentication",
            "GET /metrics needs the management key",
        ));
    }
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        {
            let mut text = gw.metrics.render();
            crate::metrics::render_endpoint_health(&gw.catalog, &gw.health, &mut text);
            text
        },
    )
        .into_response()
}
