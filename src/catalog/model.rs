//! Models and their endpoints (a model served by one provider, at one price).

use super::pricing::Pricing;
use super::provider::Provider;
use std::sync::Arc;

/// One way to serve a model: a provider, the provider's own model id, and a price.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The provider serving it.
    pub provider: Arc<Provider>,
    /// Routing tag: the provider slug, or `slug/variant` (`deepinfra/turbo`). A base slug in
    /// `provider.order`/`only`/`ignore` matches every tag of the provider.
    pub tag: String,
    /// The upstream's own model id, sent as `model` (shared, as `Model::slug`).
    pub upstream_model: Arc<str>,
    /// Prices.
    pub pricing: Pricing,
    /// Context window in tokens, if it differs from the model's.
    pub context_length: Option<u32>,
    /// Largest completion the endpoint returns.
    pub max_completion_tokens: Option<u32>,
    /// `int4`, `fp8`, `bf16`, …; `None` means unknown.
    pub quantization: Option<String>,
    /// Request parameters this endpoint honours; `None` means "everything the OpenAI schema has".
    pub supported_parameters: Option<Vec<String>>,
    /// Service tier (`priority`, `flex`): tier endpoints are only used when asked for.
    pub service_tier: Option<String>,
    /// `model slug @ tag`: the endpoint's key in health and sticky tables, built once so the hot
    /// path never formats it.
    pub key: String,
}

impl Endpoint {
    /// Whether the endpoint accepts a request parameter.
    pub fn supports(&self, param: &str) -> bool {
        match &self.supported_parameters {
            None => true,
            Some(list) => list.iter().any(|p| p == param),
        }
    }

    /// The context window: the endpoint's own or else the model's.
    pub fn context_length(&self, model: &Model) -> Option<u32> {
        self.context_length.or(model.context_length)
    }

    /// True when `name` (a base slug like `deepinfra` or a full tag like `deepinfra/turbo`)
    /// designates this endpoint, per OpenRouter's slug-matching rule: a base slug matches all
    /// of the provider's endpoints except service-tier ones.
    pub fn matches_slug(&self, name: &str) -> bool {
        let name = name.trim();
        if name.eq_ignore_ascii_case(&self.tag) {
            return true;
        }
        self.service_tier.is_none()
            && (name.eq_ignore_ascii_case(&self.provider.slug)
                || name.eq_ignore_ascii_case(&self.provider.name))
    }
}

/// A model: what clients name in `model`.
#[derive(Debug, Clone)]
pub struct Model {
    /// Routing slug, `author/name[:variant]` (shared: every record and attempt that names the
    /// model points at this one copy).
    pub slug: Arc<str>,
    /// Permanent slug (often dated); defaults to `slug`.
    pub canonical_slug: String,
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Unix seconds the model was released; orders `~author/family-latest`.
    pub created: u64,
    /// Context window in tokens.
    pub context_length: Option<u32>,
    /// Largest completion any endpoint returns by default.
    pub max_completion_tokens: Option<u32>,
    /// `text`, `image`, `file`, `audio`, `video`.
    pub input_modalities: Vec<String>,
    /// `text`, `image`, `embeddings`, …
    pub output_modalities: Vec<String>,
    /// `GPT`, `Claude`, `Gemini`, `Llama3`, …
    pub tokenizer: String,
    /// Family for `~author/family-latest` (`claude-sonnet`, `gpt`); `None` when not in one.
    pub family: Option<String>,
    /// The endpoints serving it.
    pub endpoints: Vec<Endpoint>,
}

impl Model {
    /// The endpoints whose provider is enabled.
    pub fn enabled_endpoints(&self) -> impl Iterator<Item = (usize, &Endpoint)> {
        self.endpoints
            .iter()
            .enumerate()
            .filter(|(_, e)| e.provider.enabled)
    }

    /// True when the model answers `POST /embeddings`: its `output_modalities` include
    /// `embeddings`, as OpenRouter's `/models` lists embedding models.
    pub fn embeds(&self) -> bool {
        self.output_modalities.iter().any(|m| m == "embeddings")
    }

    /// `author` of `author/name`.
    pub fn author(&self) -> &str {
        self.slug.split_once('/').map_or("", |(a, _)| a)
    }

    /// Union of the endpoints' supported parameters.
    pub fn supported_parameters(&self) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        for e in &self.endpoints {
            let list = match &e.supported_parameters {
                Some(l) => l.clone(),
                None => super::DEFAULT_PARAMETERS
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect(),
            };
            for p in list {
                if !all.contains(&p) {
                    all.push(p);
                }
            }
        }
        all
    }
}
