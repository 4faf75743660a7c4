//! Price typos `switchyard check` warns about, read from the file's own numbers (before they
//! are rounded to picodollars): a per-token price written where per-million is expected, a
//! negative price, an absurdly large one, a discount outside `[0, 1]`, an endpoint with no
//! price at all.

use crate::catalog::{Config, PricingConfig};

/// Below this many USD per million tokens, a non-zero price is almost surely a per-token
/// price (the cheapest real models cost about $0.01 per million).
const PER_TOKEN_LOOKALIKE: f64 = 0.001;
/// Above this many USD per million tokens, a price is almost surely a typo (the dearest real
/// models cost about $600 per million).
const ABSURD_PER_MILLION: f64 = 1_000.0;
/// Above this many USD per request or per image, a price is almost surely a typo.
const ABSURD_PER_UNIT: f64 = 10.0;

/// One warning per suspicious price of the file's `[[models.endpoints]]`.
pub(super) fn warnings(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for m in &config.models {
        for e in &m.endpoints {
            let at = format!(
                "model `{}` via `{}`",
                m.slug,
                e.tag.as_deref().unwrap_or(&e.provider)
            );
            check(&at, &e.pricing, m.slug.ends_with(":free"), &mut out);
        }
    }
    out
}

fn check(at: &str, p: &PricingConfig, free_by_name: bool, out: &mut Vec<String>) {
    let mut tokens: Vec<(String, f64)> = vec![
        ("prompt".into(), p.prompt),
        ("completion".into(), p.completion),
    ];
    for (key, v) in [
        ("internal_reasoning", p.internal_reasoning),
        ("input_cache_read", p.input_cache_read),
        ("input_cache_write", p.input_cache_write),
        ("input_cache_write_1h", p.input_cache_write_1h),
    ] {
        if let Some(v) = v {
            tokens.push((key.into(), v));
        }
    }
    let mut units: Vec<(String, f64)> = vec![
        ("request".into(), p.request),
        ("image".into(), p.image),
        ("web_search".into(), p.web_search),
    ];
    for (i, o) in p.overrides.iter().enumerate() {
        for (key, v) in [
            ("prompt", o.prompt),
            ("completion", o.completion),
            ("input_cache_read", o.input_cache_read),
            ("input_cache_write", o.input_cache_write),
            ("internal_reasoning", o.internal_reasoning),
        ] {
            if let Some(v) = v {
                tokens.push((format!("overrides[{i}].{key}"), v));
            }
        }
        for (key, v) in [("request", o.request), ("image", o.image)] {
            if let Some(v) = v {
                units.push((format!("overrides[{i}].{key}"), v));
            }
        }
    }
    for (key, v) in &tokens {
        if *v < 0.0 {
            out.push(format!("{at}: pricing.{key} = {v} is negative"));
        } else if *v > 0.0 && *v < PER_TOKEN_LOOKALIKE {
            out.push(format!(
                "{at}: pricing.{key} = {v} looks like a price per token; prices here are USD \
                 per million tokens (per token {v} would be {})",
                v * 1e6
            ));
        } else if *v > ABSURD_PER_MILLION {
            out.push(format!(
                "{at}: pricing.{key} = {v} is ${v} per million tokens, far above any real price"
            ));
        }
    }
    for (key, v) in &units {
        if *v < 0.0 {
            out.push(format!("{at}: pricing.{key} = {v} is negative"));
        } else if *v > ABSURD_PER_UNIT {
            out.push(format!(
                "{at}: pricing.{key} = {v} is ${v} for each one, far above any real price"
            ));
        }
    }
    if !(0.0..=1.0).contains(&p.discount) {
        out.push(format!(
            "{at}: pricing.discount = {} is outside [0, 1] and will be clamped",
            p.discount
        ));
    }
    if p.prompt == 0.0 && p.completion == 0.0 && p.request == 0.0 && !free_by_name {
        out.push(format!(
            "{at}: no prompt, completion or request price: it is served for free"
        ));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // panicking is how tests fail
mod tests {
    use super::*;
    use std::path::Path;

    fn warn(pricing: &str) -> Vec<String> {
        let text = format!(
            "[[providers]]\nslug = \"p\"\nbase_url = \"http://x/v1\"\n[[models]]\nslug = \"a/b\"\n\
             [[models.endpoints]]\nprovider = \"p\"\nmodel = \"m\"\npricing = {pricing}\n"
        );
        warnings(&Config::parse(Path::new("t.toml"), &text).unwrap())
    }

    #[test]
    fn real_prices_pass() {
        assert!(warn("{ prompt = 2.5, completion = 10.0, input_cache_read = 1.25 }").is_empty());
        assert!(warn("{ prompt = 0.02, completion = 0.05, request = 0.005 }").is_empty());
    }

    #[test]
    fn typos_are_named() {
        let w = warn("{ prompt = 0.0000025, completion = 10.0 }");
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains(
                "model `a/b` via `p`: pricing.prompt = 0.0000025 looks like a price per token"
            ),
            "{}",
            w[0]
        );
        assert!(w[0].contains("would be 2.5"), "{}", w[0]);

        let w = warn("{ prompt = -1.0, completion = 15000.0, discount = 1.5 }");
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].contains("pricing.prompt = -1 is negative"), "{}", w[0]);
        assert!(
            w[1].contains("completion = 15000 is $15000 per million"),
            "{}",
            w[1]
        );
        assert!(
            w[2].contains("discount = 1.5 is outside [0, 1]"),
            "{}",
            w[2]
        );

        let w = warn(
            "{ prompt = 1.0, request = 50.0, overrides = [{ min_prompt_tokens = 10, prompt = 0.0000001 }] }",
        );
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w.iter().any(|m| m.contains("overrides[0].prompt")), "{w:?}");
        assert!(
            w.iter().any(|m| m.contains("pricing.request = 50")),
            "{w:?}"
        );

        let w = warn("{ }");
        assert!(w[0].contains("served for free"), "{w:?}");
    }
}
