//! The catalogue: providers, models, endpoints and prices.
//!
//! An immutable snapshot, shared behind `Arc` by every layer that needs it. It is built from a
//! [`Config`] (the TOML file documented in `docs/config.md`), the embedded default catalogue of
//! real providers, and optionally an OpenRouter-format `/models` dump.
//!
//! ```
//! use switchyard::catalog::{Catalog, Config};
//! use std::path::Path;
//!
//! let config = Config::parse(Path::new("inline.toml"), r#"
//!     [[providers]]
//!     slug = "local"
//!     base_url = "http://127.0.0.1:9/v1"
//!
//!     [[models]]
//!     slug = "acme/tiny"
//!     [[models.endpoints]]
//!     provider = "local"
//!     model = "tiny-1"
//!     pricing = { prompt = 0.1, completion = 0.2 }
//! "#).unwrap();
//! let catalog = Catalog::from_config(&config, Path::new(".")).unwrap();
//! let model = catalog.model("acme/tiny").unwrap();
//! assert_eq!(&*model.endpoints[0].upstream_model, "tiny-1");
//! ```

mod builder;
mod config;
mod import;
mod model;
mod openrouter_json;
mod pricing;
mod provider;
mod sections;
mod upstream_parts;

pub use builder::{CatalogBuilder, EndpointSpec, ProviderSpec};
pub use config::{
    AuthConfig, AutoConfig, AutoModelConfig, CatalogConfig, Config, ConfigError, EndpointConfig,
    KeyConfig, LedgerConfig, LedgerTarget, ModelConfig, OverrideConfig, PricingConfig,
    ProviderConfig, ServerConfig, StateConfig, TimeoutsConfig,
};
pub use import::{ImportedCatalog, import_openrouter_models};
pub use model::{Endpoint, Model};
pub(crate) use pricing::de_per_million_opt;
pub use pricing::{PriceOverride, PriceSet, Pricing, Usd};
pub use provider::{Api, ApiKey, Provider, Timeouts};
pub use upstream_parts::UpstreamParts;

use std::collections::HashMap;

/// Models by slug. The keys come from the configuration, not from requests, so a fast hash
/// is safe; every request looks one up.
type ModelMap = HashMap<String, Arc<Model>, foldhash::fast::RandomState>;
use std::path::Path;
use std::sync::Arc;

/// The embedded default catalogue (TOML, same schema as a config file).
pub const DEFAULT_CATALOG: &str = include_str!("default.toml");

/// The parameters an endpoint supports when its config lists none.
pub const DEFAULT_PARAMETERS: &[&str] = &[
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "frequency_penalty",
    "presence_penalty",
    "seed",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "response_format",
    "structured_outputs",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
];

/// An immutable snapshot of providers and models.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    providers: Vec<Arc<Provider>>,
    models: ModelMap,
    /// Models in listing order (config order).
    order: Vec<Arc<Model>>,
}

impl Catalog {
    /// Builds the catalogue a config describes: its own providers and models, plus the embedded
    /// default and a `/models` dump when the config asks for them. Relative paths resolve
    /// against `base_dir`. Provider keys are read from the environment.
    pub fn from_config(config: &Config, base_dir: &Path) -> Result<Catalog, ConfigError> {
        Self::from_config_with_env(config, base_dir, &|name| std::env::var(name).ok())
    }

    /// As [`Catalog::from_config`], reading variables through `env` (for tests).
    pub fn from_config_with_env(
        config: &Config,
        base_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Catalog, ConfigError> {
        let mut builder = Builder::default();
        let include_default = config
            .catalog
            .include_default
            .unwrap_or(config.providers.is_empty());
        let source = config
            .source
            .clone()
            .unwrap_or_else(|| base_dir.join("<config>"));
        let embedded = Path::new("<embedded default catalogue>");
        let default = if include_default {
            Some(Config::parse(embedded, DEFAULT_CATALOG)?)
        } else {
            None
        };
        // All providers first, so a provider the file redefines (same slug) also serves the
        // default catalogue's models.
        if let Some(d) = &default {
            builder.add_providers(d, env);
        }
        builder.add_providers(config, env);
        if let Some(d) = &default {
            builder.add_models(d, embedded)?;
        }
        builder.add_models(config, &source)?;
        if let Some(dump) = &config.catalog.models_json {
            let path = base_dir.join(dump);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                ConfigError::new(&path, format!("cannot read the models file: {e}"))
            })?;
            let models = openrouter_json::parse(&path, &text)?;
            let provider = builder.openrouter_provider(env);
            for m in models {
                builder.add_model(openrouter_json::into_model(m, provider.clone()));
            }
        }
        Ok(builder.finish())
    }

    /// The embedded default catalogue alone, keys from the environment.
    pub fn embedded_default() -> Catalog {
        let config = Config {
            catalog: CatalogConfig {
                include_default: Some(true),
                models_json: None,
            },
            ..Config::default()
        };
        // The embedded file is tested to parse, so this cannot fail at run time.
        Catalog::from_config(&config, Path::new(".")).unwrap_or_default()
    }

    /// Looks a model up by its exact slug.
    pub fn model(&self, slug: &str) -> Option<&Arc<Model>> {
        self.models.get(slug)
    }

    /// All models in listing order.
    pub fn models(&self) -> &[Arc<Model>] {
        &self.order
    }

    /// All providers.
    pub fn providers(&self) -> &[Arc<Provider>] {
        &self.providers
    }

    /// A provider by slug.
    pub fn provider(&self, slug: &str) -> Option<&Arc<Provider>> {
        self.providers.iter().find(|p| &*p.slug == slug)
    }

    /// The providers whose key is present (or who need none).
    pub fn enabled_providers(&self) -> impl Iterator<Item = &Arc<Provider>> {
        self.providers.iter().filter(|p| p.enabled)
    }
}

#[derive(Default)]
struct Builder {
    providers: Vec<Arc<Provider>>,
    models: ModelMap,
    order: Vec<String>,
}

impl Builder {
    fn add_providers(&mut self, config: &Config, env: &dyn Fn(&str) -> Option<String>) {
        for p in &config.providers {
            let key = p
                .api_key_env
                .as_deref()
                .and_then(env)
                .filter(|k| !k.is_empty());
            let base_url = p.base_url.trim_end_matches('/').to_owned();
            let headers: Vec<(String, String)> = p
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let provider = Provider {
                slug: p.slug.as_str().into(),
                name: p.name.as_deref().unwrap_or(&p.slug).into(),
                api: p.api,
                upstream_parts: UpstreamParts::new(&base_url, &headers),
                base_url,
                enabled: p.api_key_env.is_none() || key.is_some(),
                api_key: key.map(ApiKey::new),
                api_key_env: p.api_key_env.clone(),
                timeouts: p.timeouts.resolve(),
                collects_data: p.collects_data,
                zdr: p.zdr,
                headers,
                privacy_policy_url: p.privacy_policy_url.clone(),
                terms_of_service_url: p.terms_of_service_url.clone(),
                status_page_url: p.status_page_url.clone(),
                headquarters: p.headquarters.clone(),
            };
            // A later definition of the same slug (the user's file after the default) wins.
            self.providers.retain(|q| q.slug != provider.slug);
            self.providers.push(Arc::new(provider));
        }
    }

    fn add_models(&mut self, config: &Config, source: &Path) -> Result<(), ConfigError> {
        for m in &config.models {
            let mut endpoints = Vec::with_capacity(m.endpoints.len());
            for e in &m.endpoints {
                let provider = self.providers.iter().find(|p| *p.slug == *e.provider).ok_or_else(|| {
                    ConfigError::new(
                        source,
                        format!(
                            "model `{}`: endpoint names provider `{}`, which no [[providers]] entry declares",
                            m.slug, e.provider
                        ),
                    )
                })?;
                endpoints.push(Endpoint {
                    provider: provider.clone(),
                    tag: e.tag.clone().unwrap_or_else(|| provider.slug.to_string()),
                    upstream_model: e.model.as_str().into(),
                    pricing: e.pricing.resolve(),
                    context_length: e.context_length,
                    max_completion_tokens: e.max_completion_tokens,
                    quantization: e.quantization.clone(),
                    supported_parameters: e.supported_parameters.clone(),
                    service_tier: e.service_tier.clone(),
                    key: format!("{}@{}", m.slug, e.tag.as_deref().unwrap_or(&provider.slug)),
                });
            }
            if !m.slug.contains('/') {
                return Err(ConfigError::new(
                    source,
                    format!("model slug `{}` must look like `author/name`", m.slug),
                ));
            }
            self.add_model(Model {
                slug: m.slug.as_str().into(),
                canonical_slug: m.canonical_slug.clone().unwrap_or_else(|| m.slug.clone()),
                name: m.name.clone().unwrap_or_else(|| m.slug.clone()),
                description: m.description.clone(),
                created: m.created,
                context_length: m.context_length,
                max_completion_tokens: m.max_completion_tokens,
                input_modalities: m
                    .input_modalities
                    .clone()
                    .unwrap_or_else(|| vec!["text".into()]),
                output_modalities: m
                    .output_modalities
                    .clone()
                    .unwrap_or_else(|| vec!["text".into()]),
                tokenizer: m.tokenizer.clone().unwrap_or_else(|| "Other".into()),
                family: m.family.clone(),
                endpoints,
            });
        }
        Ok(())
    }

    fn add_model(&mut self, model: Model) {
        if !self.models.contains_key(&*model.slug) {
            self.order.push(model.slug.to_string());
        }
        self.models.insert(model.slug.to_string(), Arc::new(model));
    }

    /// The `openrouter` provider for imported models: the one declared, or OpenRouter itself.
    fn openrouter_provider(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Arc<Provider> {
        if let Some(p) = self.providers.iter().find(|p| &*p.slug == "openrouter") {
            return p.clone();
        }
        let key = env("OPENROUTER_API_KEY").filter(|k| !k.is_empty());
        let p = Arc::new(Provider {
            slug: "openrouter".into(),
            name: "OpenRouter".into(),
            api: Api::OpenAi,
            base_url: "https://openrouter.ai/api/v1".into(),
            upstream_parts: UpstreamParts::new("https://openrouter.ai/api/v1", &[]),
            api_key_env: Some("OPENROUTER_API_KEY".into()),
            enabled: key.is_some(),
            api_key: key.map(ApiKey::new),
            timeouts: Timeouts::default(),
            collects_data: false,
            zdr: false,
            headers: Vec::new(),
            privacy_policy_url: Some("https://openrouter.ai/privacy".into()),
            terms_of_service_url: Some("https://openrouter.ai/terms".into()),
            status_page_url: Some("https://status.openrouter.ai".into()),
            headquarters: Some("US".into()),
        });
        self.providers.push(p.clone());
        p
    }

    fn finish(self) -> Catalog {
        let order = self
            .order
            .iter()
            .filter_map(|s| self.models.get(s).cloned())
            .collect();
        Catalog {
            providers: self.providers,
            models: self.models,
            order,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // panicking is how tests fail
mod tests {
    use super::*;

    #[test]
    fn embedded_default_parses_and_is_consistent() {
        let config = Config::parse(Path::new("default.toml"), DEFAULT_CATALOG).unwrap();
        let catalog = Catalog::from_config_with_env(&config, Path::new("."), &|_| None).unwrap();
        for slug in [
            "openai",
            "anthropic",
            "google",
            "mistral",
            "deepseek",
            "groq",
            "together",
            "fireworks",
            "deepinfra",
            "openrouter",
        ] {
            assert!(
                catalog.provider(slug).is_some(),
                "default catalogue lacks provider {slug}"
            );
        }
        assert!(catalog.models().len() >= 20);
        // Without keys nothing is enabled.
        assert_eq!(catalog.enabled_providers().count(), 0);
        let with_key = Catalog::from_config_with_env(&config, Path::new("."), &|v| {
            (v == "OPENAI_API_KEY").then(|| "sk".into())
        })
        .unwrap();
        let enabled: Vec<_> = with_key
            .enabled_providers()
            .map(|p| p.slug.to_string())
            .collect();
        assert_eq!(enabled, ["openai"]);
    }

    #[test]
    fn embedded_default_has_the_popular_models_everywhere() {
        let config = Config::parse(Path::new("default.toml"), DEFAULT_CATALOG).unwrap();
        let catalog = Catalog::from_config_with_env(&config, Path::new("."), &|_| None).unwrap();
        assert!(catalog.models().len() >= 25);
        for slug in [
            "openai/gpt-4o",
            "openai/gpt-4o-mini",
            "openai/gpt-4.1",
            "openai/gpt-4.1-mini",
            "openai/gpt-4.1-nano",
            "openai/o3",
            "openai/o4-mini",
            "openai/gpt-5",
            "openai/gpt-5-mini",
            "anthropic/claude-sonnet-4",
            "anthropic/claude-opus-4.1",
            "anthropic/claude-3.5-haiku",
            "google/gemini-2.5-pro",
            "google/gemini-2.5-flash",
            "google/gemini-2.0-flash-001",
            "mistralai/mistral-large",
            "mistralai/mistral-small",
            "mistralai/codestral",
            "deepseek/deepseek-chat",
            "deepseek/deepseek-r1",
            "meta-llama/llama-3.3-70b-instruct",
            "meta-llama/llama-3.1-8b-instruct",
        ] {
            assert!(
                catalog.model(slug).is_some(),
                "default catalogue lacks {slug}"
            );
        }
        for model in catalog.models() {
            let m = &model.slug;
            assert!(model.created > 0, "{m}: created");
            assert!(model.family.is_some(), "{m}: family");
            assert!(model.context_length.is_some(), "{m}: context_length");
            assert_ne!(model.tokenizer, "", "{m}: tokenizer");
            assert!(
                model
                    .endpoints
                    .iter()
                    .any(|e| &*e.provider.slug == "openrouter"),
                "{m}: no openrouter endpoint"
            );
            let mut tags: Vec<_> = model.endpoints.iter().map(|e| &e.tag).collect();
            tags.sort();
            tags.dedup();
            assert_eq!(tags.len(), model.endpoints.len(), "{m}: duplicate tags");
            for e in &model.endpoints {
                assert!(!e.pricing.is_free(), "{m} via {}: no price", e.tag);
                if model
                    .supported_parameters()
                    .iter()
                    .any(|p| p == "reasoning")
                {
                    assert!(
                        e.supports("reasoning") && e.supports("include_reasoning"),
                        "{m} via {}: reasoning not listed",
                        e.tag
                    );
                }
            }
        }
        // Open-weight models are spread across providers.
        let llama = catalog.model("meta-llama/llama-3.3-70b-instruct").unwrap();
        for p in ["groq", "together", "fireworks", "deepinfra", "openrouter"] {
            assert!(
                llama.endpoints.iter().any(|e| &*e.provider.slug == p),
                "{p}"
            );
        }
        // Gemini 2.5 Pro's long-context tier.
        let pro = catalog.model("google/gemini-2.5-pro").unwrap();
        let google = &pro.endpoints[0].pricing;
        assert_eq!(
            google.effective(200_000, 0).prompt,
            Usd::from_per_million(1.25)
        );
        assert_eq!(
            google.effective(200_001, 0).prompt,
            Usd::from_per_million(2.5)
        );
        // Anthropic needs its version header.
        let anthropic = catalog.provider("anthropic").unwrap();
        assert_eq!(anthropic.api, Api::Anthropic);
        assert!(
            anthropic
                .headers
                .iter()
                .any(|(k, _)| k == "anthropic-version")
        );
    }

    #[test]
    fn example_config_parses() {
        let text = include_str!("../../examples/config/gateway.toml");
        let config = Config::parse(Path::new("examples/config/gateway.toml"), text).unwrap();
        assert_eq!(config.catalog.include_default, Some(false));
        assert_eq!(config.keys.len(), 2);
        assert_eq!(config.aliases["acme/default"], "acme/small");
        assert!(config.auth.is_some() && config.ledger.is_some());
        assert_eq!(config.auto.as_ref().map(|a| a.models.len()), Some(2));
        let catalog = Catalog::from_config_with_env(&config, Path::new("."), &|_| None).unwrap();
        assert_eq!(catalog.providers().len(), 2);
        assert_eq!(catalog.enabled_providers().count(), 2);
        assert_eq!(catalog.models().len(), 3);
        for provider in catalog.providers() {
            assert_eq!(provider.base_url, "http://127.0.0.1:9000/v1");
        }
        let large = &catalog.model("acme/large").unwrap().endpoints[0].pricing;
        assert_eq!(
            large.effective(128_001, 1200).prompt,
            Usd::from_per_million(4.0)
        );
        assert_eq!(
            large.effective(1000, 2300).completion,
            Usd::from_per_million(6.0)
        );
        let small = catalog.model("acme/small").unwrap();
        assert_eq!(small.endpoints[1].pricing.discount_ppm, 250_000);
        let reasoner = catalog.model("acme/reasoner").unwrap();
        assert_eq!(reasoner.endpoints[1].tag, "local/priority");
    }

    #[test]
    fn config_reference_examples_parse() {
        let doc = include_str!("../../docs/config.md");
        let mut checked = 0;
        for block in doc.split("```toml\n").skip(1) {
            let block = block.split("```").next().unwrap_or_default();
            // Fragments of one entry, shown out of context.
            if block.starts_with("pricing") || block.starts_with("[[models.endpoints]]") {
                continue;
            }
            if let Err(e) = Config::parse(Path::new("docs/config.md"), block) {
                panic!("{e}\n{block}");
            }
            checked += 1;
        }
        assert!(checked >= 4, "{checked}");
    }

    #[test]
    fn unknown_provider_in_endpoint_is_named() {
        let text = "[[providers]]\nslug=\"a\"\nbase_url=\"http://x\"\n[[models]]\nslug=\"x/y\"\n[[models.endpoints]]\nprovider=\"b\"\nmodel=\"m\"\n";
        let cfg = Config::parse(Path::new("c.toml"), text).unwrap();
        let err = Catalog::from_config_with_env(&cfg, Path::new("."), &|_| None).unwrap_err();
        assert!(err.to_string().contains("provider `b`"), "{err}");
    }
}
