//! One generation, as stored in the ledger and served by `GET /api/v1/generation`.

use crate::catalog::Usd;
use crate::keys::period::iso8601;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// One upstream attempt of a generation (fallbacks included): `provider_responses` in
/// `/generation`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// Provider slug.
    pub provider: Arc<str>,
    /// Upstream model id.
    pub model: Arc<str>,
    /// HTTP status the upstream answered (0 when it never answered).
    pub status: u16,
    /// Time to the upstream's answer, in milliseconds.
    pub latency_ms: u64,
}

/// A finished (or cancelled) generation: the SPEC §1.8 fields the gateway can fill.
///
/// Money is in picodollars (`total_cost`), so ledgers add up exactly; [`to_api_json`] renders
/// USD floats.
///
/// [`to_api_json`]: GenerationRecord::to_api_json
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerationRecord {
    /// `gen-…`, as in the response's `id` and `X-Generation-Id`.
    pub id: Arc<str>,
    /// Creation time, unix milliseconds.
    pub created_at: i64,
    /// The served model slug (after alias, auto or fallback resolution).
    pub model: Arc<str>,
    /// Display name of the provider that served it.
    pub provider_name: Arc<str>,
    /// Slug of the provider that served it.
    pub provider_slug: Arc<str>,
    /// The upstream's model id.
    pub upstream_model: Arc<str>,
    /// The upstream's own response id.
    pub upstream_id: Option<String>,
    /// SHA-256 hex of the gateway key that paid, if any.
    pub api_key_hash: Option<String>,
    /// Label of that key.
    pub label: Option<String>,
    /// Served as SSE.
    pub streamed: bool,
    /// The client went away before the end.
    pub cancelled: bool,
    /// Normalised finish reason.
    pub finish_reason: Option<String>,
    /// The upstream's raw finish reason.
    pub native_finish_reason: Option<String>,
    /// Prompt tokens.
    pub tokens_prompt: u64,
    /// Completion tokens.
    pub tokens_completion: u64,
    /// Prompt tokens read from the cache.
    pub native_tokens_cached: u64,
    /// Prompt tokens written to the cache.
    pub native_tokens_cache_write: u64,
    /// Reasoning tokens.
    pub native_tokens_reasoning: u64,
    /// Images in the prompt.
    pub num_media_prompt: u64,
    /// Web searches run.
    pub num_search_results: u64,
    /// What the user was charged, in picodollars.
    pub total_cost: i64,
    /// What the upstream charged, in picodollars, when known.
    pub upstream_inference_cost: Option<i64>,
    /// Milliseconds to the first byte sent to the client.
    pub latency_ms: u64,
    /// Milliseconds from the first to the last byte.
    pub generation_time_ms: u64,
    /// Milliseconds from the request's arrival to the first content token: a stream's first
    /// content event, a JSON answer's whole body (0 in records written before it was kept).
    pub ttft_ms: u64,
    /// Bring-your-own-key request.
    pub is_byok: bool,
    /// The token counts were estimated, not reported by the upstream.
    pub usage_estimated: bool,
    /// Upstream attempts in order, the serving one last.
    pub attempts: Vec<AttemptRecord>,
    /// The router slug the client asked for (e.g. `openrouter/auto`).
    pub router: Option<String>,
    /// The request's `session_id`.
    pub session_id: Option<String>,
    /// The request's `user`.
    pub external_user: Option<String>,
    /// How the model was chosen (`direct`, `auto`, `fallback`, …).
    pub strategy: Option<String>,
    /// The Auto Router's score for the prompt.
    pub autoroute_score: Option<f64>,
    /// The Auto Router's scorer.
    pub scorer: Option<String>,
    /// The client-facing API the request came through.
    pub api: Ingress,
}

/// The client-facing API a generation came through: `api_type` in `/generation`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Ingress {
    /// OpenAI Chat Completions (`/chat/completions`), and legacy `/completions`.
    #[default]
    Completions,
    /// Anthropic Messages (`/messages`).
    Messages,
    /// OpenAI Responses (`/responses`).
    Responses,
    /// Embeddings (`/embeddings`).
    Embeddings,
}

impl Ingress {
    /// The name stored and shown: `completions`, `messages`, `responses`, `embeddings`.
    pub fn as_str(self) -> &'static str {
        match self {
            Ingress::Completions => "completions",
            Ingress::Messages => "messages",
            Ingress::Responses => "responses",
            Ingress::Embeddings => "embeddings",
        }
    }
}

/// A fresh generation id: `gen-<unix seconds>-<20 random alphanumerics>`, OpenRouter's shape.
pub fn generation_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let suffix: String = (0..20)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("gen-{}-{suffix}", now_ms() / 1000)
}

/// Now, in unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl GenerationRecord {
    /// What the user was charged.
    pub fn cost(&self) -> Usd {
        Usd::from_picodollars(self.total_cost)
    }

    /// The `GET /api/v1/generation` body: `{"data": {…}}`, money in USD, times in ms.
    pub fn to_api_json(&self) -> Value {
        let usd = |p: i64| Usd::from_picodollars(p).as_f64();
        let attempts: Vec<Value> = self
            .attempts
            .iter()
            .map(|a| {
                json!({
                    "provider": a.provider,
                    "model": a.model,
                    "status": a.status,
                    "latency_ms": a.latency_ms,
                })
            })
            .collect();
        json!({"data": {
            "id": self.id,
            "upstream_id": self.upstream_id,
            "created_at": iso8601(self.created_at),
            "model": self.model,
            "provider_name": self.provider_name,
            "router": self.router,
            "api_type": self.api.as_str(),
            "origin": "",
            "app_id": null,
            "external_user": self.external_user,
            "session_id": self.session_id,
            "total_cost": usd(self.total_cost),
            "usage": usd(self.total_cost),
            "upstream_inference_cost": self.upstream_inference_cost.map(usd),
            "is_byok": self.is_byok,
            "usage_estimated": self.usage_estimated,
            "tokens_prompt": self.tokens_prompt,
            "tokens_completion": self.tokens_completion,
            "native_tokens_prompt": self.tokens_prompt,
            "native_tokens_completion": self.tokens_completion,
            "native_tokens_reasoning": self.native_tokens_reasoning,
            "native_tokens_cached": self.native_tokens_cached,
            "native_tokens_cache_write": self.native_tokens_cache_write,
            "num_media_prompt": self.num_media_prompt,
            "num_media_completion": 0,
            "num_search_results": self.num_search_results,
            "latency": self.latency_ms,
            "generation_time": self.generation_time_ms,
            "moderation_latency": null,
            "finish_reason": self.finish_reason,
            "native_finish_reason": self.native_finish_reason,
            "streamed": self.streamed,
            "cancelled": self.cancelled,
            "provider_responses": attempts,
            "strategy": self.strategy,
            "autoroute_score": self.autoroute_score,
            "scorer": self.scorer,
        }})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_openrouter_shape() {
        let id = generation_id();
        let parts: Vec<&str> = id.splitn(3, '-').collect();
        assert_eq!(parts[0], "gen");
        assert!(parts[1].parse::<u64>().is_ok());
        assert_eq!(parts[2].len(), 20);
        assert_ne!(id, generation_id());
    }

    #[test]
    fn api_json_renders_usd_and_ms() {
        let rec = GenerationRecord {
            id: "gen-1-abc".into(),
            created_at: 86_400_000 + 1_500,
            total_cost: 140_000_000,
            latency_ms: 320,
            generation_time_ms: 1_200,
            attempts: vec![AttemptRecord {
                provider: "openai".into(),
                model: "gpt-4o".into(),
                status: 200,
                latency_ms: 300,
            }],
            router: Some("openrouter/auto".into()),
            ..GenerationRecord::default()
        };
        let v = rec.to_api_json();
        let d = &v["data"];
        assert_eq!(d["total_cost"], 0.00014);
        assert_eq!(d["usage"], 0.00014);
        assert_eq!(d["latency"], 320);
        assert_eq!(d["generation_time"], 1_200);
        assert_eq!(d["created_at"], "1970-01-02T00:00:01.500Z");
        assert_eq!(d["provider_responses"][0]["status"], 200);
        assert_eq!(d["router"], "openrouter/auto");
    }

    #[test]
    fn old_records_without_new_fields_still_parse() {
        let rec: GenerationRecord =
            serde_json::from_str(r#"{"id":"gen-1","total_cost":5}"#).expect("parse");
        assert_eq!((&*rec.id, rec.total_cost), ("gen-1", 5));
    }
}
