//! An OpenRouter-format `/models` dump rewritten as config TOML (`switchyard catalog import`),
//! so a user can start from OpenRouter's whole model list and edit it.
//!
//! Each model becomes a `[[models]]` entry with one endpoint on the `openrouter` provider,
//! declared at the top of the file. Prices are converted exactly: the dump's per-token decimal
//! strings are read into picodollars and written back per million tokens (the config's unit),
//! so the file gives the same prices as importing the dump with `[catalog] models_json`.
//!
//! ```
//! use switchyard::catalog::{Catalog, Config, import_openrouter_models};
//! use std::path::Path;
//!
//! let dump = r#"{"data":[{"id":"openai/gpt-4o","name":"GPT-4o","context_length":128000,
//!     "pricing":{"prompt":"0.0000025","completion":"0.00001"}}]}"#;
//! let imported = import_openrouter_models(Path::new("models.json"), dump)?;
//! assert!(imported.toml.contains("pricing = { prompt = 2.5, completion = 10.0 }"));
//! let config = Config::parse(Path::new("catalog.toml"), &imported.toml)?;
//! let catalog = Catalog::from_config_with_env(&config, Path::new("."), &|_| Some("key".into()))?;
//! assert_eq!(&*catalog.model("openai/gpt-4o").unwrap().endpoints[0].provider.slug, "openrouter");
//! # Ok::<(), switchyard::catalog::ConfigError>(())
//! ```

use super::openrouter_json::{self, DumpModel, pricing_from};
use super::{ConfigError, PriceSet, Pricing, Usd};
use std::fmt::Write as _;
use std::path::Path;

/// The pricing keys the config format has; others in a dump are listed as not imported.
const KNOWN_PRICES: &[&str] = &[
    "prompt",
    "completion",
    "request",
    "image",
    "web_search",
    "internal_reasoning",
    "input_cache_read",
    "input_cache_write",
    "input_cache_write_1h",
    "discount",
    "overrides",
];

/// A dump rendered as config TOML.
#[derive(Debug, Clone)]
pub struct ImportedCatalog {
    /// The config text: the `openrouter` provider and one `[[models]]` entry per model.
    pub toml: String,
    /// Models written.
    pub models: usize,
    /// Models left out, each with the reason (a negative, i.e. variable, price; a slug that is
    /// not `author/name`).
    pub skipped: Vec<(String, String)>,
}

/// Renders the OpenRouter `/models` dump `text` (read from `path`, named in errors) as config
/// TOML.
pub fn import_openrouter_models(path: &Path, text: &str) -> Result<ImportedCatalog, ConfigError> {
    let models = openrouter_json::parse(path, text)?;
    let mut out = format!(
        "# Imported from {} by `switchyard catalog import`: OpenRouter's models, each served\n\
         # through the `openrouter` provider below. Prices are USD per million tokens (the\n\
         # dump's per-token prices × 1,000,000). This file declares a provider, so the embedded\n\
         # default catalogue is left out unless `[catalog] include_default = true` is added.\n\n\
         [[providers]]\n\
         slug = \"openrouter\"\n\
         name = \"OpenRouter\"\n\
         api = \"openai\"\n\
         base_url = \"https://openrouter.ai/api/v1\"\n\
         api_key_env = \"OPENROUTER_API_KEY\"\n",
        path.display()
    );
    let mut written = 0;
    let mut skipped = Vec::new();
    for m in models {
        match model_toml(&m) {
            Ok(entry) => {
                out.push('\n');
                out.push_str(&entry);
                written += 1;
            }
            Err(reason) => skipped.push((m.id, reason)),
        }
    }
    Ok(ImportedCatalog {
        toml: out,
        models: written,
        skipped,
    })
}

/// One `[[models]]` entry, or why the model cannot be one.
fn model_toml(m: &DumpModel) -> Result<String, String> {
    if !m.id.contains('/') {
        return Err("its id is not `author/name`".into());
    }
    let pricing = pricing_from(&m.pricing);
    if negative(&pricing) {
        return Err("it has a negative (variable) price".into());
    }
    let mut out = String::from("[[models]]\n");
    let _ = writeln!(out, "slug = {}", quote(&m.id));
    if let Some(name) = &m.name {
        let _ = writeln!(out, "name = {}", quote(name));
    }
    if let Some(c) = m.canonical_slug.as_ref().filter(|c| **c != m.id) {
        let _ = writeln!(out, "canonical_slug = {}", quote(c));
    }
    if let Some(d) = m.description.as_ref().filter(|d| !d.is_empty()) {
        let _ = writeln!(out, "description = {}", quote(d));
    }
    if let Some(c) = m.created {
        let _ = writeln!(out, "created = {c}");
    }
    if let Some(c) = m.context_length {
        let _ = writeln!(out, "context_length = {c}");
    }
    let top = m.top_provider.as_ref();
    if let Some(c) = top.and_then(|t| t.max_completion_tokens) {
        let _ = writeln!(out, "max_completion_tokens = {c}");
    }
    if let Some(arch) = &m.architecture {
        if !arch.input_modalities.is_empty() {
            let _ = writeln!(out, "input_modalities = {}", list(&arch.input_modalities));
        }
        if !arch.output_modalities.is_empty() {
            let _ = writeln!(out, "output_modalities = {}", list(&arch.output_modalities));
        }
        if let Some(t) = &arch.tokenizer {
            let _ = writeln!(out, "tokenizer = {}", quote(t));
        }
    }
    for (key, value) in &m.pricing {
        let zero = value.as_str().map_or_else(
            || value.as_f64() == Some(0.0),
            |s| s.parse::<f64>() == Ok(0.0),
        );
        if !KNOWN_PRICES.contains(&key.as_str()) && !zero {
            let _ = writeln!(
                out,
                "# not imported: pricing.{key} = {value} (the config format has no such price)"
            );
        }
    }
    out.push_str("\n[[models.endpoints]]\nprovider = \"openrouter\"\n");
    let _ = writeln!(out, "model = {}", quote(&m.id));
    if let Some(c) = top
        .and_then(|t| t.context_length)
        .filter(|c| Some(*c) != m.context_length)
    {
        let _ = writeln!(out, "context_length = {c}");
    }
    if let Some(c) = top.and_then(|t| t.max_completion_tokens) {
        let _ = writeln!(out, "max_completion_tokens = {c}");
    }
    if let Some(params) = &m.supported_parameters {
        let _ = writeln!(out, "supported_parameters = {}", list(params));
    }
    let _ = writeln!(out, "pricing = {}", pricing_toml(&pricing));
    Ok(out)
}

fn negative(p: &Pricing) -> bool {
    let neg = |u: Usd| u.picodollars() < 0;
    let neg_opt = |u: Option<Usd>| u.is_some_and(neg);
    let set_neg = |s: &PriceSet| {
        [
            s.prompt,
            s.completion,
            s.input_cache_read,
            s.input_cache_write,
            s.internal_reasoning,
            s.request,
            s.image,
        ]
        .into_iter()
        .any(neg_opt)
    };
    [p.prompt, p.completion, p.request, p.image, p.web_search]
        .into_iter()
        .any(neg)
        || [
            p.internal_reasoning,
            p.input_cache_read,
            p.input_cache_write,
            p.input_cache_write_1h,
        ]
        .into_iter()
        .any(neg_opt)
        || p.overrides.iter().any(|o| set_neg(&o.prices))
}

/// The inline `pricing = { … }` table: token prices per million, the rest per unit.
fn pricing_toml(p: &Pricing) -> String {
    let mut parts = vec![
        format!("prompt = {}", per_million(p.prompt)),
        format!("completion = {}", per_million(p.completion)),
    ];
    let mut unit = |key: &str, u: Usd| {
        if !u.is_zero() {
            parts.push(format!("{key} = {}", dollars(u)));
        }
    };
    unit("request", p.request);
    unit("image", p.image);
    unit("web_search", p.web_search);
    for (key, u) in [
        ("internal_reasoning", p.internal_reasoning),
        ("input_cache_read", p.input_cache_read),
        ("input_cache_write", p.input_cache_write),
        ("input_cache_write_1h", p.input_cache_write_1h),
    ] {
        if let Some(u) = u {
            parts.push(format!("{key} = {}", per_million(u)));
        }
    }
    if p.discount_ppm > 0 {
        parts.push(format!(
            "discount = {}",
            decimal(i64::from(p.discount_ppm), 1_000_000)
        ));
    }
    if !p.overrides.is_empty() {
        let overrides: Vec<String> = p
            .overrides
            .iter()
            .map(|o| {
                let mut f = Vec::new();
                if let Some(n) = o.min_prompt_tokens {
                    f.push(format!("min_prompt_tokens = {n}"));
                }
                if let Some(t) = o.utc_start {
                    f.push(format!("utc_start = {t}"));
                }
                if let Some(t) = o.utc_end {
                    f.push(format!("utc_end = {t}"));
                }
                let s = &o.prices;
                for (key, u) in [
                    ("prompt", s.prompt),
                    ("completion", s.completion),
                    ("input_cache_read", s.input_cache_read),
                    ("input_cache_write", s.input_cache_write),
                    ("internal_reasoning", s.internal_reasoning),
                ] {
                    if let Some(u) = u {
                        f.push(format!("{key} = {}", per_million(u)));
                    }
                }
                for (key, u) in [("request", s.request), ("image", s.image)] {
                    if let Some(u) = u {
                        f.push(format!("{key} = {}", dollars(u)));
                    }
                }
                format!("{{ {} }}", f.join(", "))
            })
            .collect();
        parts.push(format!("overrides = [{}]", overrides.join(", ")));
    }
    format!("{{ {} }}", parts.join(", "))
}

/// A per-token price as USD per million tokens, exactly (one picodollar per token is
/// 0.000001 per million).
fn per_million(u: Usd) -> String {
    decimal(u.picodollars(), 1_000_000)
}

/// An amount in USD, exactly.
fn dollars(u: Usd) -> String {
    decimal(u.picodollars(), Usd::PICO)
}

/// `value / scale` as a TOML float with no rounding (`scale` a power of ten).
fn decimal(value: i64, scale: i64) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let v = value.unsigned_abs();
    let scale = scale.unsigned_abs();
    let digits = scale.ilog10() as usize;
    let frac = format!("{:0digits$}", v % scale);
    let frac = frac.trim_end_matches('0');
    let frac = if frac.is_empty() { "0" } else { frac };
    format!("{sign}{}.{frac}", v / scale)
}

/// A TOML basic string: JSON's string escapes are all valid in TOML.
fn quote(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(", "))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // panicking is how tests fail
mod tests {
    use super::*;
    use crate::catalog::{Catalog, Config};

    const FIXTURE: &str = include_str!("../../tests/fixtures/openrouter/models.json");

    #[test]
    fn decimals_are_exact() {
        assert_eq!(decimal(2_500_000, 1_000_000), "2.5");
        assert_eq!(decimal(1, 1_000_000), "0.000001");
        assert_eq!(decimal(0, 1_000_000), "0.0");
        assert_eq!(decimal(15_000_000, 1_000_000), "15.0");
        assert_eq!(decimal(-1_000_000_000_000, Usd::PICO), "-1.0");
        assert_eq!(
            per_million(Usd::parse_decimal("0.00000015").unwrap()),
            "0.15"
        );
    }

    /// The TOML gives every model the prices, limits and modalities that importing the dump
    /// itself (`[catalog] models_json`) gives.
    #[test]
    fn the_fixture_imports_like_models_json() {
        let imported = import_openrouter_models(Path::new("models.json"), FIXTURE).unwrap();
        assert_eq!(imported.models, 3, "{}", imported.toml);
        assert_eq!(imported.skipped.len(), 1);
        assert_eq!(imported.skipped[0].0, "openrouter/auto");
        assert!(
            imported.toml.contains("# not imported: pricing.audio"),
            "{}",
            imported.toml
        );

        let key = |_: &str| Some("k".to_owned());
        let config = Config::parse(Path::new("imported.toml"), &imported.toml).unwrap();
        let from_toml = Catalog::from_config_with_env(&config, Path::new("."), &key).unwrap();

        let dir = std::env::temp_dir().join(format!("switchyard-import-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("models.json"), FIXTURE).unwrap();
        let direct = Config::parse(
            Path::new("c.toml"),
            "[catalog]\ninclude_default = false\nmodels_json = \"models.json\"\n",
        )
        .unwrap();
        let from_json = Catalog::from_config_with_env(&direct, &dir, &key).unwrap();

        assert_eq!(from_toml.models().len(), 3);
        for m in from_toml.models() {
            let j = from_json.model(&m.slug).unwrap();
            let (e, je) = (&m.endpoints[0], &j.endpoints[0]);
            assert_eq!(e.pricing, je.pricing, "{}", m.slug);
            assert_eq!(&*e.provider.slug, "openrouter");
            assert_eq!(e.upstream_model, je.upstream_model);
            assert_eq!(e.context_length(m), je.context_length(j), "{}", m.slug);
            assert_eq!(e.max_completion_tokens, je.max_completion_tokens);
            assert_eq!(e.supported_parameters, je.supported_parameters);
            assert_eq!(
                (&m.name, &m.input_modalities, &m.tokenizer, m.created),
                (&j.name, &j.input_modalities, &j.tokenizer, j.created)
            );
        }
        let sonnet = from_toml.model("anthropic/claude-sonnet-4").unwrap();
        assert_eq!(
            sonnet.endpoints[0].pricing.prompt,
            Usd::from_per_million(3.0)
        );
        assert_eq!(
            sonnet.endpoints[0].pricing.input_cache_write,
            Some(Usd::from_per_million(3.75))
        );
    }

    #[test]
    fn a_file_that_is_not_a_dump_is_named() {
        let err = import_openrouter_models(Path::new("x.json"), "[1, 2]").unwrap_err();
        assert!(err.to_string().starts_with("x.json:1:"), "{err}");
    }
}
