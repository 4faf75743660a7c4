//! Import of an OpenRouter-format `/models` dump (`{"data": [Model, …]}`), so a user can start from
//! OpenRouter's own catalogue. Imported models are served through the `openrouter` provider, with
//! the dump's per-token decimal-string prices.

use super::config::ConfigError;
use super::model::{Endpoint, Model};
use super::pricing::{PriceOverride, PriceSet, Pricing, Usd};
use super::provider::Provider;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, Deserialize)]
struct Dump {
    data: Vec<DumpModel>,
}

#[derive(Debug, Deserialize)]
pub(super) struct DumpModel {
    pub(super) id: String,
    #[serde(default)]
    pub(super) canonical_slug: Option<String>,
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) description: Option<String>,
    #[serde(default)]
    pub(super) created: Option<u64>,
    #[serde(default)]
    pub(super) context_length: Option<u32>,
    #[serde(default)]
    pub(super) architecture: Option<Architecture>,
    #[serde(default)]
    pub(super) pricing: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub(super) top_provider: Option<TopProvider>,
    #[serde(default)]
    pub(super) supported_parameters: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Architecture {
    #[serde(default)]
    pub(super) input_modalities: Vec<String>,
    #[serde(default)]
    pub(super) output_modalities: Vec<String>,
    #[serde(default)]
    pub(super) tokenizer: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct TopProvider {
    #[serde(default)]
    pub(super) context_length: Option<u32>,
    #[serde(default)]
    pub(super) max_completion_tokens: Option<u32>,
}

pub(super) fn parse(path: &Path, text: &str) -> Result<Vec<DumpModel>, ConfigError> {
    let dump: Dump = serde_json::from_str(text).map_err(|e| ConfigError {
        path: path.to_owned(),
        line: Some(e.line()),
        column: Some(e.column()),
        message: format!("not an OpenRouter /models dump: {e}"),
    })?;
    Ok(dump.data)
}

fn price(map: &BTreeMap<String, serde_json::Value>, key: &str) -> Option<Usd> {
    match map.get(key)? {
        serde_json::Value::String(s) => Usd::parse_decimal(s),
        serde_json::Value::Number(n) => n.as_f64().map(Usd::from_dollars),
        _ => None,
    }
}

pub(super) fn pricing_from(map: &BTreeMap<String, serde_json::Value>) -> Pricing {
    let overrides = map
        .get("overrides")
        .and_then(|v| v.as_array())
        .map(|list| {
            list.iter()
                .filter_map(|o| o.as_object())
                .map(|o| {
                    let m: BTreeMap<String, serde_json::Value> =
                        o.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                    PriceOverride {
                        min_prompt_tokens: m.get("min_prompt_tokens").and_then(|v| v.as_u64()),
                        utc_start: m.get("utc_start").and_then(hhmm),
                        utc_end: m.get("utc_end").and_then(hhmm),
                        prices: PriceSet {
                            prompt: price(&m, "prompt"),
                            completion: price(&m, "completion"),
                            input_cache_read: price(&m, "input_cache_read"),
                            input_cache_write: price(&m, "input_cache_write"),
                            internal_reasoning: price(&m, "internal_reasoning"),
                            request: price(&m, "request"),
                            image: price(&m, "image"),
                        },
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let discount = map.get("discount").and_then(|v| v.as_f64()).unwrap_or(0.0);
    Pricing {
        prompt: price(map, "prompt").unwrap_or_default(),
        completion: price(map, "completion").unwrap_or_default(),
        request: price(map, "request").unwrap_or_default(),
        image: price(map, "image").unwrap_or_default(),
        web_search: price(map, "web_search").unwrap_or_default(),
        // OpenRouter lists `"internal_reasoning": "0"` for models that bill reasoning as
        // completion tokens; a zero here is "not priced apart", not "reasoning is free".
        internal_reasoning: price(map, "internal_reasoning").filter(|p| !p.is_zero()),
        input_cache_read: price(map, "input_cache_read"),
        input_cache_write: price(map, "input_cache_write"),
        input_cache_write_1h: price(map, "input_cache_write_1h"),
        discount_ppm: (discount.clamp(0.0, 1.0) * 1e6).round() as u32,
        overrides,
    }
}

fn hhmm(v: &serde_json::Value) -> Option<u16> {
    match v {
        serde_json::Value::Number(n) => n.as_u64().map(|n| n as u16),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub(super) fn into_model(m: DumpModel, provider: Arc<Provider>) -> Model {
    let arch = m.architecture.unwrap_or_default();
    let top = m.top_provider.unwrap_or_default();
    let pricing = pricing_from(&m.pricing);
    let tag = provider.slug.clone();
    Model {
        canonical_slug: m.canonical_slug.unwrap_or_else(|| m.id.clone()),
        name: m.name.unwrap_or_else(|| m.id.clone()),
        description: m.description.unwrap_or_default(),
        created: m.created.unwrap_or(0),
        context_length: m.context_length,
        max_completion_tokens: top.max_completion_tokens,
        input_modalities: if arch.input_modalities.is_empty() {
            vec!["text".into()]
        } else {
            arch.input_modalities
        },
        output_modalities: if arch.output_modalities.is_empty() {
            vec!["text".into()]
        } else {
            arch.output_modalities
        },
        tokenizer: arch.tokenizer.unwrap_or_else(|| "Other".into()),
        family: None,
        endpoints: vec![Endpoint {
            tag: tag.to_string(),
            provider,
            upstream_model: m.id.as_str().into(),
            pricing,
            context_length: top.context_length,
            max_completion_tokens: top.max_completion_tokens,
            quantization: None,
            supported_parameters: m.supported_parameters,
            service_tier: None,
            key: format!("{}@{}", m.id, tag),
        }],
        slug: m.id.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Catalog, Config};

    #[test]
    fn imports_a_dump() {
        let dir = std::env::temp_dir().join(format!("switchyard-dump-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("models.json"),
            r#"{"data":[{"id":"openai/gpt-4o","name":"GPT-4o","context_length":128000,
               "pricing":{"prompt":"0.0000025","completion":"0.00001","request":"0","internal_reasoning":"0"},
               "architecture":{"input_modalities":["text","image"],"output_modalities":["text"],"tokenizer":"GPT"},
               "top_provider":{"max_completion_tokens":16384},"supported_parameters":["tools"]}]}"#,
        )
        .unwrap();
        let cfg = Config::parse(
            Path::new("c.toml"),
            "[catalog]\ninclude_default = false\nmodels_json = \"models.json\"\n",
        )
        .unwrap();
        let cat = Catalog::from_config_with_env(&cfg, &dir, &|_| Some("k".into())).unwrap();
        let m = cat.model("openai/gpt-4o").unwrap();
        assert_eq!(m.endpoints[0].pricing.prompt, Usd::from_per_million(2.5));
        // "internal_reasoning": "0" → reasoning pays the completion price.
        assert_eq!(m.endpoints[0].pricing.internal_reasoning, None);
        assert_eq!(&*m.endpoints[0].provider.slug, "openrouter");
        assert_eq!(m.input_modalities, ["text", "image"]);
    }

    #[test]
    fn bad_dump_names_line() {
        let err = parse(Path::new("m.json"), "{\"data\": [ {\"name\": 1} ]}").unwrap_err();
        assert!(err.to_string().starts_with("m.json:1:"), "{err}");
    }
}
