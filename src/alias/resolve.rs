//! Resolution of one model name: aliases, `~author/family-latest`, variant suffixes.

use super::table::AliasTable;
use crate::catalog::Catalog;
use crate::context::ModelHints;
use crate::error::GatewayError;
use serde_json::json;
use std::collections::HashMap;

/// Static variants: separate catalogue entries (`author/slug:thinking`).
const STATIC_VARIANTS: &[&str] = &["free", "extended", "thinking", "beta"];

/// What one name resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Resolved {
    pub(super) slug: String,
    pub(super) hints: ModelHints,
    pub(super) strategy: Option<&'static str>,
    /// `:online`: add the `web` plugin.
    pub(super) web: bool,
}

/// `~author/family-latest` → the family's newest model (by `created`, then slug), variants
/// excluded. Built once per catalogue, so a request never scans it.
pub(super) fn latest_index(catalog: &Catalog) -> HashMap<String, String> {
    let mut best: HashMap<String, (u64, &str)> = HashMap::new();
    for m in catalog.models() {
        let Some(family) = &m.family else { continue };
        if m.slug.contains(':') {
            continue;
        }
        let key = format!("~{}/{}-latest", m.author(), family);
        let cand = (m.created, &*m.slug);
        let slot = best.entry(key).or_insert(cand);
        if cand > *slot {
            *slot = cand;
        }
    }
    best.into_iter()
        .map(|(k, (_, s))| (k, s.to_owned()))
        .collect()
}

fn bad(entry: &str, message: String) -> GatewayError {
    let mut e = GatewayError::bad_request(message);
    e.availability = Some(json!({"code": "model_not_found", "requested_models": [entry]}));
    e
}

/// Resolves one entry of the model chain.
pub(super) fn resolve(
    entry: &str,
    catalog: &Catalog,
    latest: &HashMap<String, String>,
    table: &AliasTable,
) -> Result<Resolved, GatewayError> {
    let mut out = Resolved {
        slug: entry.to_owned(),
        hints: ModelHints::default(),
        strategy: None,
        web: false,
    };
    // 1. An exact catalogue slug (static variants included) is used as is.
    if catalog.model(entry).is_some() {
        return Ok(out);
    }
    // 2. The whole name as an alias or latest slug; else split off a `:variant`.
    let (base, variant) = match lookup(entry, latest, table) {
        Some((target, strategy)) => {
            out.strategy = Some(strategy);
            if catalog.model(target).is_some() {
                out.slug = target.to_owned();
                return Ok(out);
            }
            match split_variant(target) {
                (b, Some(v)) => (b.to_owned(), Some(v)),
                (_, None) => {
                    return Err(bad(
                        entry,
                        format!(
                            "`{entry}` is an alias of `{target}`, which is not in the catalogue"
                        ),
                    ));
                }
            }
        }
        None => {
            let (b, v) = split_variant(entry);
            (b.to_owned(), v)
        }
    };
    // 3. Resolve the base the same way (an alias or latest slug with a suffix).
    let base = match lookup(&base, latest, table) {
        Some((target, strategy)) if catalog.model(&base).is_none() => {
            out.strategy = Some(strategy);
            if catalog.model(target).is_none() {
                return Err(bad(
                    entry,
                    format!("`{base}` is an alias of `{target}`, which is not in the catalogue"),
                ));
            }
            target.to_owned()
        }
        _ if base.starts_with('~') => {
            return Err(bad(
                entry,
                format!("`{base}`: no model of that family is in the catalogue"),
            ));
        }
        _ => base,
    };
    // 4. The variant.
    let Some(variant) = variant else {
        out.slug = base;
        return Ok(out);
    };
    let exact = format!("{base}:{variant}");
    match variant {
        "nitro" => out.hints.sort = Some("throughput".into()),
        "floor" => out.hints.sort = Some("price".into()),
        "exacto" => out.hints.sort = Some("exacto".into()),
        "online" => out.web = true,
        "free" if catalog.model(&exact).is_none() => out.hints.free_only = true,
        _ if catalog.model(&exact).is_some() => {
            out.slug = exact;
            return Ok(out);
        }
        _ if STATIC_VARIANTS.contains(&variant) => {
            return Err(bad(
                entry,
                format!("`{entry}`: the `:{variant}` variant of `{base}` is not in the catalogue"),
            ));
        }
        _ => {
            return Err(bad(
                entry,
                format!(
                    "`{entry}`: unknown variant `:{variant}` (known: nitro, floor, exacto, online, free, extended, thinking)"
                ),
            ));
        }
    }
    out.slug = base;
    Ok(out)
}

/// An alias or a latest slug, with its strategy name.
fn lookup<'a>(
    name: &str,
    latest: &'a HashMap<String, String>,
    table: &'a AliasTable,
) -> Option<(&'a str, &'static str)> {
    if let Some(t) = table.get(name) {
        return Some((t, "alias"));
    }
    latest.get(name).map(|t| (t.as_str(), "latest"))
}

/// `author/slug:variant` (or `alias:variant`) → (`author/slug`, `variant`); a colon before the
/// last `/` is not a variant.
fn split_variant(name: &str) -> (&str, Option<&str>) {
    match name.rsplit_once(':') {
        Some((b, v)) if !b.is_empty() && !v.contains('/') && !v.is_empty() => (b, Some(v)),
        _ => (name, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_split_at_the_last_colon_after_the_slug() {
        assert_eq!(split_variant("a/b:nitro"), ("a/b", Some("nitro")));
        assert_eq!(split_variant("fast:floor"), ("fast", Some("floor")));
        assert_eq!(split_variant("a/b"), ("a/b", None));
        assert_eq!(split_variant("a/b:"), ("a/b:", None));
        assert_eq!(split_variant("host:8080/model"), ("host:8080/model", None));
    }
}
