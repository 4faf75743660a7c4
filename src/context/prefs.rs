//! What the client asked of routing: the `provider` object, and the hints aliases and variant
//! suffixes add.

use crate::catalog::Usd;
use crate::catalog::de_per_million_opt;
use serde::Deserialize;
use serde_json::Value;

/// Hints from aliases and variant suffixes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoutingHints {
    /// `:nitro`/`:floor`/`:exacto` → a sort key.
    pub sort: Option<String>,
    /// `:free`: only zero-priced endpoints.
    pub free_only: bool,
    /// The model as the client wrote it, when an alias or variant rewrote it.
    pub requested: Option<String>,
    /// `latest`, `alias`, `auto`, … for `openrouter_metadata.strategy`.
    pub strategy: Option<&'static str>,
    /// The Auto Router's decision, when it chose the model.
    pub auto: Option<AutoDecision>,
    /// Hints of each model of the chain from its own variant suffix (`models: ["a:nitro",
    /// "b:floor"]`), set by the alias layer. Empty: `sort` and `free_only` apply to every model.
    pub per_model: Vec<(String, ModelHints)>,
}

/// Routing hints of one model of the chain, from its own variant suffix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelHints {
    /// `throughput` (`:nitro`), `price` (`:floor`), `exacto`.
    pub sort: Option<String>,
    /// `:free` on a model without a separate `…:free` entry: only zero-priced endpoints.
    pub free_only: bool,
}

impl ModelHints {
    /// The service tier the variant opts into: `:nitro` → priority, `:floor` → flex.
    pub fn tier(&self) -> Option<&'static str> {
        match self.sort.as_deref() {
            Some("throughput") => Some("priority"),
            Some("price") => Some("flex"),
            _ => None,
        }
    }
}

/// What the Auto Router decided, for `openrouter_metadata` and the generation record.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoDecision {
    /// The scorer's output: probability the cheap tier is not good enough.
    pub score: f32,
    /// The scorer's name.
    pub scorer: String,
    /// The chosen tier.
    pub tier: u8,
}

/// The `provider` object (SPEC 2.4). Unknown fields are ignored; every field is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ProviderPrefs {
    /// Providers to try first, in order.
    pub order: Option<Vec<String>>,
    /// Fall back beyond `order`/`only` and the first pick (default true).
    pub allow_fallbacks: Option<bool>,
    /// Only endpoints supporting every request parameter.
    pub require_parameters: Option<bool>,
    /// `allow` | `deny`.
    pub data_collection: Option<String>,
    /// Zero-data-retention endpoints only.
    pub zdr: Option<bool>,
    /// Allow-list.
    pub only: Option<Vec<String>>,
    /// Deny-list.
    pub ignore: Option<Vec<String>>,
    /// Quantization filter.
    pub quantizations: Option<Vec<String>>,
    /// `"price"` or `{by, partition}`.
    pub sort: Option<SortPref>,
    /// Hard price ceiling.
    pub max_price: Option<MaxPrice>,
    /// Soft throughput floor.
    pub preferred_min_throughput: Option<Value>,
    /// Soft latency ceiling.
    pub preferred_max_latency: Option<Value>,
}

impl ProviderPrefs {
    /// `allow_fallbacks`, default true.
    pub fn allow_fallbacks(&self) -> bool {
        self.allow_fallbacks.unwrap_or(true)
    }
}

/// `provider.sort`: a string or `{by, partition}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum SortPref {
    /// `"price" | "throughput" | "latency" | "exacto"`.
    By(String),
    /// `{by, partition: "model" | "none"}`.
    Object {
        /// The key.
        by: Option<String>,
        /// `model` (default) or `none`.
        partition: Option<String>,
    },
}

impl SortPref {
    /// The sort key.
    pub fn by(&self) -> Option<&str> {
        match self {
            SortPref::By(s) => Some(s),
            SortPref::Object { by, .. } => by.as_deref(),
        }
    }

    /// The partition, `model` by default.
    pub fn partition(&self) -> &str {
        match self {
            SortPref::Object {
                partition: Some(p), ..
            } => p,
            _ => "model",
        }
    }
}

/// `provider.max_price`: prompt/completion per million tokens, request per request, image per
/// image. Numbers and decimal strings are accepted.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MaxPrice {
    /// Per-token ceiling (converted from per million).
    #[serde(deserialize_with = "de_per_million_opt")]
    pub prompt: Option<Usd>,
    /// Per-token ceiling (converted from per million).
    #[serde(deserialize_with = "de_per_million_opt")]
    pub completion: Option<Usd>,
    /// Per-request ceiling in USD.
    pub request: Option<Value>,
    /// Per-image ceiling in USD.
    pub image: Option<Value>,
}
