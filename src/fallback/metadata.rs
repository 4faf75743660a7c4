//! `openrouter_metadata` (SPEC 7.1): the routing trace, opted into with
//! `X-OpenRouter-Metadata: enabled`.

use crate::body::{self as b, Body};
use crate::context::{Candidates, RequestContext};
use crate::deferred_json::DeferredJson;
use bytes::Bytes;
use http::Response;
use serde_json::{Value, json};

/// What the trace is built from.
#[derive(Debug, Clone)]
pub(crate) struct MetadataSource {
    pub(crate) chat_requested: Option<String>,
    pub(crate) strategy: &'static str,
    pub(crate) ctx: RequestContext,
    pub(crate) candidates: Candidates,
    pub(crate) selected: String,
    pub(crate) auto: Option<crate::context::AutoDecision>,
}

impl MetadataSource {
    fn to_json(&self) -> Value {
        let attempts = self.ctx.attempts();
        let strategy = if attempts.len() > 1 && self.strategy == "direct" {
            "fallback"
        } else {
            self.strategy
        };
        let pipeline: Vec<Value> = self
            .auto
            .iter()
            .map(|a| json!({"type": "router", "name": a.scorer, "data": {"score": a.score, "tier": a.tier}}))
            .collect();
        json!({
            "pipeline": pipeline,
            "requested": self.chat_requested,
            "strategy": strategy,
            "attempt": attempts.len(),
            "is_byok": false,
            "attempts": attempts.iter().map(|a| json!({"provider": a.provider, "model": a.model, "status": a.status})).collect::<Vec<_>>(),
            "endpoints": {
                "total": self.candidates.targets.len(),
                "available": self.candidates.targets.iter().map(|t| json!({
                    "provider": t.endpoint().provider.name,
                    "model": t.model.slug,
                    "selected": t.key() == self.selected,
                })).collect::<Vec<_>>(),
            },
        })
    }
}

/// Adds the trace to a JSON response body (left as it is if the body is not a JSON object).
pub(crate) async fn attach_to_json(resp: Response<Body>, meta: MetadataSource) -> Response<Body> {
    let (parts, body) = resp.into_parts();
    // The translator's parsed value, when it answered: edited in place, serialised once.
    if let Some(json) = parts.extensions.get::<DeferredJson>().cloned() {
        let edited = json.edit(|v| {
            if let Some(o) = v.as_object_mut() {
                o.insert("openrouter_metadata".into(), meta.to_json());
            }
        });
        if edited.is_some() {
            return Response::from_parts(parts, body);
        }
    }
    let bytes = match crate::body::read_limited(body, crate::body::MAX_RESPONSE_BYTES).await {
        Ok(b) => b,
        Err(e) => return crate::error::error_response(&e),
    };
    let rebuilt = match serde_json::from_slice::<Value>(&bytes) {
        Ok(mut v) => {
            if let Some(o) = v.as_object_mut() {
                o.insert("openrouter_metadata".into(), meta.to_json());
            }
            Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
        }
        Err(_) => bytes,
    };
    let mut parts = parts;
    parts.headers.remove(http::header::CONTENT_LENGTH);
    Response::from_parts(parts, b::full(rebuilt))
}

/// Adds the trace to one SSE chunk event.
pub(crate) fn attach_to_event(frame: &Bytes, meta: &MetadataSource) -> Bytes {
    let data = frame
        .strip_prefix(b"data: ")
        .unwrap_or(frame)
        .trim_ascii_end();
    match serde_json::from_slice::<Value>(data) {
        Ok(mut v) => {
            if let Some(o) = v.as_object_mut() {
                o.insert("openrouter_metadata".into(), meta.to_json());
            }
            b::sse_event(&v)
        }
        Err(_) => frame.clone(),
    }
}
