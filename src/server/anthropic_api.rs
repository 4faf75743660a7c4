//! Anthropic's API surface on the gateway: `POST /messages` (the completion stack behind
//! [`MessagesLayer`]), `POST /messages/count_tokens`, and `GET /models` in Anthropic's list
//! shape when the client sends `anthropic-version`.

use super::stack::CompletionService;
use super::{Gateway, keys_api};
use crate::BoxError;
use crate::body::{self, Body, read_limited};
use crate::catalog::{Api, Catalog, Model};
use crate::context::{ApiKind, Target};
use crate::error::GatewayError;
use crate::ingress::anthropic::{MessagesLayer, anthropic_error, model_name_candidates};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Map, Value, json};
use std::convert::Infallible;
use std::sync::Arc;
use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceExt};

/// Which fields of a Messages request Anthropic's token counter takes.
const COUNTED_FIELDS: [&str; 6] = [
    "model",
    "messages",
    "system",
    "tools",
    "tool_choice",
    "thinking",
];

/// Largest count answer read back from a provider.
const MAX_COUNT_ANSWER: usize = 64 * 1024;

impl Gateway {
    /// The Messages endpoint: [`MessagesLayer`] over the chat completion stack, with Claude
    /// model names mapped onto the catalogue and the aliases.
    pub fn messages_service(&self) -> CompletionService {
        let names = {
            let gw = self.clone();
            move |name: &str| gw.anthropic_slug(name)
        };
        let stack = self
            .completion_service(ApiKind::Chat)
            .map_request(into_axum_request);
        let messages = MessagesLayer::new()
            .max_body_bytes(self.config.server.max_body_bytes)
            .model_names(names)
            .layer(stack);
        // The router mounts services that cannot fail: a failure is an Anthropic error answer.
        BoxCloneSyncService::new(tower::service_fn(
            move |req: http::Request<axum::body::Body>| {
                // Boxed in a plain call, not awaited generically: see `body::call_boxed`.
                let answer: BoxFuture<'static, Result<http::Response<Body>, BoxError>> =
                    Box::pin(messages.clone().oneshot(req));
                async move {
                    Ok::<_, Infallible>(match answer.await {
                        Ok(resp) => resp,
                        Err(e) => anthropic_error(&GatewayError::from_box(&e)),
                    })
                }
            },
        ))
    }

    /// The slug a Claude model name stands for: the first of its candidate spellings that the
    /// catalogue or the alias table knows. `None` keeps the name as sent, so routing names it
    /// in its 404.
    fn anthropic_slug(&self, name: &str) -> Option<String> {
        let aliases = self.aliases.current();
        model_name_candidates(name).into_iter().find(|c| {
            let base = c.split_once(':').map_or(c.as_str(), |(b, _)| b);
            self.catalog.model(c).is_some()
                || self.catalog.model(base).is_some()
                || aliases.get(c).is_some()
        })
    }

    /// The catalogue model a Claude name resolves to, through the aliases.
    fn anthropic_model(&self, name: &str) -> Option<Arc<Model>> {
        let slug = self.anthropic_slug(name)?;
        let aliases = self.aliases.current();
        let resolved = aliases.get(&slug).unwrap_or(&slug);
        let base = resolved.split_once(':').map_or(resolved, |(b, _)| b);
        self.catalog
            .model(resolved)
            .or_else(|| self.catalog.model(base))
            .cloned()
    }
}

fn into_axum_request(req: http::Request<Body>) -> http::Request<axum::body::Body> {
    req.map(axum::body::Body::new)
}

/// `GET /models` with an `anthropic-version` header: Anthropic's list shape.
pub(super) fn models_json(catalog: &Catalog) -> Value {
    let data: Vec<Value> = catalog
        .models()
        .iter()
        .map(|m| {
            let ms = i64::try_from(m.created.saturating_mul(1000)).unwrap_or(i64::MAX);
            json!({
                "id": &*m.slug,
                "type": "model",
                "display_name": m.name,
                "created_at": crate::keys::period::iso8601(ms),
            })
        })
        .collect();
    let first = data.first().map(|m| m["id"].clone());
    let last = data.last().map(|m| m["id"].clone());
    json!({
        "data": data,
        "has_more": false,
        "first_id": first,
        "last_id": last,
    })
}

/// `POST /messages/count_tokens`: the provider's count when the model has an Anthropic
/// endpoint that answers, else an estimate (about four bytes a token). `source` and the
/// `x-switchyard-token-count` header say which.
pub(super) async fn count_tokens(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    match count(gw, headers, body).await {
        Ok((tokens, source)) => {
            let mut resp =
                axum::Json(json!({"input_tokens": tokens, "source": source})).into_response();
            resp.headers_mut()
                .insert("x-switchyard-token-count", HeaderValue::from_static(source));
            resp
        }
        Err(e) => {
            let (parts, body) = anthropic_error(&e).into_parts();
            Response::from_parts(parts, axum::body::Body::new(body))
        }
    }
}

async fn count(
    gw: Gateway,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<(u64, &'static str), GatewayError> {
    authorize(&gw, &headers).await?;
    let max = gw.config.server.max_body_bytes;
    let bytes = read_boxed(body, max).await.map_err(|_| {
        GatewayError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body exceeds {max} bytes or could not be read"),
        )
    })?;
    let msg: Map<String, Value> = serde_json::from_slice(&bytes)
        .map_err(|e| GatewayError::bad_request(format!("the body is not a JSON object: {e}")))?;
    let name = msg
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| GatewayError::bad_request("`model` is required"))?
        .to_owned();
    if !msg.get("messages").is_some_and(Value::is_array) {
        return Err(GatewayError::bad_request("`messages` must be an array"));
    }
    let model = gw.anthropic_model(&name).ok_or_else(|| {
        GatewayError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("Model `{name}` is not in the catalogue"),
        )
    })?;
    let counted: Map<String, Value> = COUNTED_FIELDS
        .iter()
        .filter_map(|f| msg.get(*f).map(|v| ((*f).to_owned(), v.clone())))
        .collect();
    let anthropic: Vec<usize> = model
        .enabled_endpoints()
        .filter(|(_, e)| {
            e.provider.api == Api::Anthropic
                && !gw.health.is_unstable(&format!("{}@{}", model.slug, e.tag))
        })
        .map(|(idx, _)| idx)
        .collect();
    for idx in anthropic {
        let upstream = gw.upstream.clone();
        let target = Target::new(model.clone(), idx);
        if let Some(n) = provider_count(upstream, target, counted.clone(), headers.clone()).await {
            return Ok((n, "provider"));
        }
    }
    let text: usize = COUNTED_FIELDS[1..]
        .iter()
        .filter_map(|f| msg.get(*f))
        .map(|v| v.to_string().len())
        .sum();
    Ok((text.div_ceil(4) as u64, "estimate"))
}

/// The gateway's key rules, as the completion stack applies them.
async fn authorize(gw: &Gateway, headers: &HeaderMap) -> Result<(), GatewayError> {
    let Some(store) = &gw.keys else { return Ok(()) };
    let bearer = keys_api::bearer(headers);
    let key = if bearer.is_empty() {
        headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    } else {
        bearer
    };
    match crate::keys::authenticate_shared(store, key).await {
        Ok(_) => Ok(()),
        Err(_) if key.is_empty() && !gw.auth_required() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// One Anthropic endpoint's own count; `None` when it does not answer with one.
async fn provider_count(
    upstream: crate::upstream::Upstream,
    target: Option<Target>,
    mut body: Map<String, Value>,
    client_headers: HeaderMap,
) -> Option<u64> {
    let target = target?;
    let endpoint = target.endpoint();
    body.insert("model".into(), json!(endpoint.upstream_model));
    let bytes = serde_json::to_vec(&body).ok()?;
    let mut req = http::Request::post("/messages/count_tokens")
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("anthropic-version", "2023-06-01")
        .body(body::full(bytes))
        .ok()?;
    for name in ["anthropic-version", "anthropic-beta"] {
        if let Some(v) = client_headers.get(name) {
            req.headers_mut().insert(name, v.clone());
        }
    }
    req.extensions_mut().insert(target);
    let resp = send(upstream, req).await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let bytes = read_boxed(resp.into_body(), MAX_COUNT_ANSWER).await.ok()?;
    serde_json::from_slice::<Value>(&bytes).ok()?["input_tokens"].as_u64()
}

/// Boxed in a plain function, not awaited generically: see `body::call_boxed`.
fn send(
    upstream: crate::upstream::Upstream,
    req: http::Request<Body>,
) -> BoxFuture<'static, Result<http::Response<Body>, BoxError>> {
    Box::pin(upstream.oneshot(req))
}

/// [`read_limited`], boxed for the same reason as [`send`].
fn read_boxed<B>(body: B, max: usize) -> BoxFuture<'static, Result<bytes::Bytes, BoxError>>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    Box::pin(read_limited(body, max))
}
