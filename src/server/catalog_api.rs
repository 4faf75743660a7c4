//! `GET /models`, `GET /models/{author}/{slug}/endpoints`, `GET /providers` in OpenRouter's
//! schema (SPEC 1.5–1.7): per-token prices as decimal strings, `architecture`, `top_provider`.

use crate::catalog::{Catalog, Endpoint, Model, Pricing, Usd};
use crate::health::Health;
use serde_json::{Map, Value, json};

/// Query of `GET /models`.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct ModelsQuery {
    output_modalities: Option<String>,
    supported_parameters: Option<String>,
    sort: Option<String>,
    offset: Option<usize>,
    limit: Option<usize>,
}

fn price_str(u: Usd) -> Value {
    Value::from(u.to_string())
}

/// The pricing object: per-token decimal strings.
pub(crate) fn pricing_json(p: &Pricing) -> Value {
    let mut m = Map::new();
    m.insert("prompt".into(), price_str(p.prompt));
    m.insert("completion".into(), price_str(p.completion));
    m.insert("request".into(), price_str(p.request));
    m.insert("image".into(), price_str(p.image));
    m.insert("web_search".into(), price_str(p.web_search));
    m.insert(
        "internal_reasoning".into(),
        price_str(p.internal_reasoning.unwrap_or(Usd::ZERO)),
    );
    if let Some(v) = p.input_cache_read {
        m.insert("input_cache_read".into(), price_str(v));
    }
    if let Some(v) = p.input_cache_write {
        m.insert("input_cache_write".into(), price_str(v));
    }
    if let Some(v) = p.input_cache_write_1h {
        m.insert("input_cache_write_1h".into(), price_str(v));
    }
    if p.discount_ppm > 0 {
        m.insert(
            "discount".into(),
            Value::from(f64::from(p.discount_ppm) / 1e6),
        );
    }
    if !p.overrides.is_empty() {
        let list: Vec<Value> = p
            .overrides
            .iter()
            .map(|o| {
                let mut e = Map::new();
                if let Some(v) = o.min_prompt_tokens {
                    e.insert("min_prompt_tokens".into(), v.into());
                }
                if let Some(v) = o.utc_start {
                    e.insert("utc_start".into(), format!("{v:04}").into());
                }
                if let Some(v) = o.utc_end {
                    e.insert("utc_end".into(), format!("{v:04}").into());
                }
                let s = &o.prices;
                for (k, v) in [
                    ("prompt", s.prompt),
                    ("completion", s.completion),
                    ("input_cache_read", s.input_cache_read),
                    ("input_cache_write", s.input_cache_write),
                    ("internal_reasoning", s.internal_reasoning),
                    ("request", s.request),
                    ("image", s.image),
                ] {
                    if let Some(v) = v {
                        e.insert(k.into(), price_str(v));
                    }
                }
                Value::Object(e)
            })
            .collect();
        m.insert("overrides".into(), Value::from(list));
    }
    Value::Object(m)
}

fn architecture(m: &Model) -> Value {
    json!({
        "modality": format!("{}->{}", m.input_modalities.join("+"), m.output_modalities.join("+")),
        "input_modalities": m.input_modalities,
        "output_modalities": m.output_modalities,
        "tokenizer": m.tokenizer,
        "instruct_type": null,
    })
}

/// The endpoint shown as the model's price and limits: the cheapest enabled one.
fn top_endpoint(m: &Model) -> Option<&Endpoint> {
    m.enabled_endpoints()
        .map(|(_, e)| e)
        .min_by_key(|e| e.pricing.prompt + e.pricing.completion)
}

/// One model object (SPEC 1.5).
pub(crate) fn model_json(m: &Model) -> Value {
    let top = top_endpoint(m);
    json!({
        "id": m.slug,
        // OpenAI's list shape, so OpenAI SDKs that type `models.list()` strictly accept it.
        "object": "model",
        "owned_by": m.author(),
        "canonical_slug": m.canonical_slug,
        "hugging_face_id": null,
        "name": m.name,
        "created": m.created,
        "description": m.description,
        "context_length": m.context_length,
        "architecture": architecture(m),
        "pricing": top.map_or_else(|| pricing_json(&Pricing::default()), |e| pricing_json(&e.pricing)),
        "top_provider": {
            "context_length": top.and_then(|e| e.context_length(m)),
            "max_completion_tokens": top.and_then(|e| e.max_completion_tokens).or(m.max_completion_tokens),
            "is_moderated": false,
        },
        "per_request_limits": null,
        "supported_parameters": m.supported_parameters(),
        "default_parameters": null,
        "supported_voices": null,
        "expiration_date": null,
        "knowledge_cutoff": null,
        "links": { "details": format!("/api/v1/models/{}/endpoints", m.slug) },
    })
}

/// `GET /models`: routable models (at least one enabled endpoint), filtered.
pub(crate) fn models_json(catalog: &Catalog, q: &ModelsQuery) -> Value {
    let modalities: Option<Vec<&str>> = match q.output_modalities.as_deref().map(str::trim) {
        Some("all") => None,
        Some(list) if !list.is_empty() => Some(list.split(',').map(str::trim).collect()),
        _ => Some(vec!["text"]),
    };
    let params: Vec<&str> = q
        .supported_parameters
        .as_deref()
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let mut selected: Vec<&std::sync::Arc<Model>> = catalog
        .models()
        .iter()
        .filter(|m| m.enabled_endpoints().next().is_some())
        .filter(|m| {
            modalities.as_ref().is_none_or(|want| {
                want.iter()
                    .any(|w| m.output_modalities.iter().any(|o| o == w))
            })
        })
        .filter(|m| {
            params.is_empty() || {
                let supported = m.supported_parameters();
                params.iter().all(|p| supported.iter().any(|s| s == p))
            }
        })
        .collect();
    // Stable sorts keep the catalogue order among equals; models with no data for the key
    // (no enabled endpoint price, unknown context) go last, as on OpenRouter.
    let price = |m: &Model| top_endpoint(m).map(|e| e.pricing.prompt + e.pricing.completion);
    match q.sort.as_deref() {
        Some("pricing-low-to-high") => {
            selected.sort_by_key(|m| price(m).map_or((1, Usd::ZERO), |p| (0, p)))
        }
        Some("pricing-high-to-low") => {
            selected.sort_by_key(|m| price(m).map_or((1, Usd::ZERO), |p| (0, Usd::ZERO - p)));
        }
        Some("context-high-to-low") => {
            selected.sort_by_key(|m| m.context_length.map_or((1, 0), |c| (0, u32::MAX - c)))
        }
        Some("newest") => selected.sort_by_key(|m| u64::MAX - m.created),
        _ => {}
    }
    let total = selected.len();
    let paged = q.offset.is_some() || q.limit.is_some();
    let offset = q.offset.unwrap_or(0);
    let limit = if paged {
        q.limit.unwrap_or(500).min(1000)
    } else {
        usize::MAX
    };
    let data: Vec<Value> = selected
        .iter()
        .skip(offset)
        .take(limit)
        .map(|m| model_json(m))
        .collect();
    let next = (paged && offset + data.len() < total).then(|| {
        format!(
            "/api/v1/models?offset={}&limit={limit}",
            offset + data.len()
        )
    });
    json!({ "object": "list", "data": data, "total_count": total, "links": { "next": next } })
}

/// `GET /models/{author}/{slug}/endpoints`.
pub(crate) fn endpoints_json(m: &Model, health: &Health) -> Value {
    let endpoints: Vec<Value> = m
        .enabled_endpoints()
        .map(|(i, e)| {
            let key = format!("{}@{}", m.slug, e.tag);
            let _ = i;
            json!({
                "name": format!("{} | {}", e.provider.name, m.slug),
                "model_id": m.canonical_slug,
                "model_name": m.name,
                "provider_name": e.provider.name,
                "tag": e.tag,
                "context_length": e.context_length(m),
                "max_prompt_tokens": null,
                "max_completion_tokens": e.max_completion_tokens.or(m.max_completion_tokens),
                "pricing": pricing_json(&e.pricing),
                "quantization": e.quantization.clone().unwrap_or_else(|| "unknown".into()),
                "supported_parameters": e.supported_parameters.clone().unwrap_or_else(|| crate::catalog::DEFAULT_PARAMETERS.iter().map(|s| (*s).to_owned()).collect()),
                "supports_implicit_caching": e.pricing.input_cache_read.is_some(),
                "status": if health.is_unstable(&key) { -1 } else { 0 },
                "uptime_last_30m": null,
                "latency_last_30m": null,
                "throughput_last_30m": null,
            })
        })
        .collect();
    json!({ "data": {
        "id": m.slug,
        "name": m.name,
        "created": m.created,
        "description": m.description,
        "architecture": architecture(m),
        "endpoints": endpoints,
    }})
}

/// `GET /providers`.
pub(crate) fn providers_json(catalog: &Catalog) -> Value {
    let data: Vec<Value> = catalog
        .providers()
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "slug": p.slug,
                "privacy_policy_url": p.privacy_policy_url,
                "terms_of_service_url": p.terms_of_service_url,
                "status_page_url": p.status_page_url,
                "headquarters": p.headquarters,
                "datacenters": Vec::<String>::new(),
                "enabled": p.enabled,
            })
        })
        .collect();
    json!({ "data": data })
}
