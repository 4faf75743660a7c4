//! A catalogue built in code: [`CatalogBuilder`], for stacks with no config file.

use super::{Api, Catalog, Config, ConfigError};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;

/// Builds a [`Catalog`] in code, as a config file would describe it. Prices are USD per
/// million tokens, as in the config file.
///
/// ```
/// use switchyard::catalog::{Catalog, EndpointSpec, ProviderSpec};
/// let catalog = Catalog::builder()
///     .provider(ProviderSpec::openai("alpha", "http://127.0.0.1:9001/v1"))
///     .provider(ProviderSpec::openai("beta", "http://127.0.0.1:9002/v1").api_key("sk-beta"))
///     .model("acme/chat", [
///         EndpointSpec::new("alpha", "chat-small").price(0.15, 0.60),
///         EndpointSpec::new("beta", "chat-small-v2").price(0.20, 0.80),
///     ])
///     .build()?;
/// let model = catalog.model("acme/chat").expect("built");
/// assert_eq!(model.endpoints.len(), 2);
/// assert_eq!(&*model.endpoints[1].upstream_model, "chat-small-v2");
/// # Ok::<(), switchyard::catalog::ConfigError>(())
/// ```
#[derive(Debug, Default)]
pub struct CatalogBuilder {
    providers: Vec<Value>,
    models: Vec<Value>,
    keys: HashMap<String, String>,
}

/// One provider of a [`CatalogBuilder`].
#[derive(Debug, Clone)]
pub struct ProviderSpec {
    slug: String,
    name: Option<String>,
    api: Api,
    base_url: String,
    api_key: Option<String>,
    headers: Vec<(String, String)>,
}

impl ProviderSpec {
    /// A provider speaking `api` at `base_url` (with the API version path, e.g. `…/v1`).
    pub fn new(slug: &str, api: Api, base_url: &str) -> ProviderSpec {
        ProviderSpec {
            slug: slug.to_owned(),
            name: None,
            api,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: None,
            headers: Vec::new(),
        }
    }

    /// An OpenAI-compatible provider.
    pub fn openai(slug: &str, base_url: &str) -> ProviderSpec {
        Self::new(slug, Api::OpenAi, base_url)
    }

    /// Its display name (default: the slug).
    pub fn name(mut self, name: &str) -> ProviderSpec {
        self.name = Some(name.to_owned());
        self
    }

    /// The key sent upstream, the way its API expects it.
    pub fn api_key(mut self, key: &str) -> ProviderSpec {
        self.api_key = Some(key.to_owned());
        self
    }

    /// A header sent with every request to it.
    pub fn header(mut self, name: &str, value: &str) -> ProviderSpec {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// One endpoint of a model in a [`CatalogBuilder`]: a provider and its own model id.
#[derive(Debug, Clone)]
pub struct EndpointSpec {
    provider: String,
    upstream_model: String,
    prompt: f64,
    completion: f64,
    request: f64,
    context_length: Option<u32>,
}

impl EndpointSpec {
    /// The model as `provider` serves it under `upstream_model`; free until priced.
    pub fn new(provider: &str, upstream_model: &str) -> EndpointSpec {
        EndpointSpec {
            provider: provider.to_owned(),
            upstream_model: upstream_model.to_owned(),
            prompt: 0.0,
            completion: 0.0,
            request: 0.0,
            context_length: None,
        }
    }

    /// USD per million prompt and completion tokens.
    pub fn price(mut self, prompt_per_million: f64, completion_per_million: f64) -> Self {
        self.prompt = prompt_per_million;
        self.completion = completion_per_million;
        self
    }

    /// USD per request, on top of the token prices.
    pub fn per_request(mut self, usd: f64) -> Self {
        self.request = usd;
        self
    }

    /// The endpoint's context window in tokens.
    pub fn context_length(mut self, tokens: u32) -> Self {
        self.context_length = Some(tokens);
        self
    }
}

impl CatalogBuilder {
    /// Adds a provider.
    pub fn provider(mut self, p: ProviderSpec) -> Self {
        let mut v = json!({
            "slug": p.slug,
            "api": p.api.as_str(),
            "base_url": p.base_url,
            "headers": p
                .headers
                .into_iter()
                .map(|(k, v)| (k, Value::from(v)))
                .collect::<serde_json::Map<String, Value>>(),
        });
        if let Some(name) = p.name {
            v["name"] = Value::from(name);
        }
        if let Some(key) = p.api_key {
            // The config reads keys from variables: this builder's are looked up by name below.
            let var = format!("switchyard-builder-key/{}", p.slug);
            v["api_key_env"] = Value::from(var.clone());
            self.keys.insert(var, key);
        }
        self.providers.push(v);
        self
    }

    /// Adds a model served by these endpoints, tried in this order when no price decides.
    pub fn model(mut self, slug: &str, endpoints: impl IntoIterator<Item = EndpointSpec>) -> Self {
        let endpoints: Vec<Value> = endpoints
            .into_iter()
            .map(|e| {
                let mut v = json!({
                    "provider": e.provider,
                    "model": e.upstream_model,
                    "pricing": {"prompt": e.prompt, "completion": e.completion, "request": e.request},
                });
                if let Some(c) = e.context_length {
                    v["context_length"] = Value::from(c);
                }
                v
            })
            .collect();
        self.models
            .push(json!({"slug": slug, "endpoints": endpoints}));
        self
    }

    /// The catalogue; an error names the provider or model at fault (an endpoint naming an
    /// unknown provider, a bad base URL, …).
    pub fn build(self) -> Result<Catalog, ConfigError> {
        let origin = Path::new("<catalogue built in code>");
        let invalid = |e: serde_json::Error| ConfigError::new(origin, e.to_string());
        let mut config = Config::default();
        for p in self.providers {
            config
                .providers
                .push(serde_json::from_value(p).map_err(invalid)?);
        }
        for m in self.models {
            config
                .models
                .push(serde_json::from_value(m).map_err(invalid)?);
        }
        config.catalog.include_default = Some(false);
        config.source = Some(origin.to_path_buf());
        let keys = self.keys;
        Catalog::from_config_with_env(&config, Path::new("."), &|var| keys.get(var).cloned())
    }
}

impl Catalog {
    /// A catalogue built in code (see [`CatalogBuilder`]).
    pub fn builder() -> CatalogBuilder {
        CatalogBuilder::default()
    }
}
