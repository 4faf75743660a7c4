//! [`NativeRequest`]: the client's request in a provider's own format, for an upstream that
//! speaks it.

use crate::catalog::Api;
use http::HeaderMap;
use serde_json::{Map, Value};
use std::sync::Arc;

/// Fields of the gateway's own (OpenRouter's) request options that an ingress carries into the
/// chat request and that no provider accepts in its native body.
const GATEWAY_FIELDS: [&str; 6] = [
    "provider",
    "models",
    "session_id",
    "transforms",
    "route",
    "usage",
];

/// The client's own request body in a provider API's format, beside the chat request the
/// stack routes. When an attempt's endpoint speaks that API, translate sends this body (with
/// the endpoint's model id) and the forwarded headers instead of translating the chat request,
/// so nothing the chat shape cannot hold — `cache_control` anywhere, thinking settings, beta
/// features — is lost. Cloned per attempt: it is shared, not copied.
///
/// ```
/// use switchyard::catalog::Api;
/// use switchyard::context::NativeRequest;
/// let body = serde_json::json!({"model": "claude-sonnet-4-5", "max_tokens": 10, "models": ["a/b"]});
/// let native = NativeRequest::new(Api::Anthropic, body.as_object().unwrap().clone(), Default::default());
/// let sent = native.body_for("claude-sonnet-4-5-20250929");
/// assert_eq!(sent["model"], "claude-sonnet-4-5-20250929");
/// assert!(sent.get("models").is_none()); // the gateway's own fields stay here
/// ```
#[derive(Debug, Clone)]
pub struct NativeRequest {
    api: Api,
    body: Arc<Map<String, Value>>,
    headers: Arc<HeaderMap>,
}

impl NativeRequest {
    /// The body of a request in `api`'s format, and the client headers to forward with it
    /// (e.g. `anthropic-version`, `anthropic-beta`).
    pub fn new(api: Api, body: Map<String, Value>, headers: HeaderMap) -> Self {
        NativeRequest {
            api,
            body: Arc::new(body),
            headers: Arc::new(headers),
        }
    }

    /// The API the body is in.
    pub fn api(&self) -> Api {
        self.api
    }

    /// The client's body as sent.
    pub fn body(&self) -> &Map<String, Value> {
        &self.body
    }

    /// The headers to forward.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body for an endpoint: `model` its upstream id, the gateway's own fields removed.
    pub fn body_for(&self, upstream_model: &str) -> Map<String, Value> {
        let mut body: Map<String, Value> = self
            .body
            .iter()
            .filter(|(k, _)| !GATEWAY_FIELDS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        body.insert("model".into(), upstream_model.into());
        body
    }
}
