//! Hard filters (SPEC 3.3) and the 404 that names, per excluded endpoint, what excluded it.

use super::sort::{discounted, prices};
use crate::catalog::{Endpoint, Model, Usd};
use crate::context::ModelHints;
use crate::context::{ChatRequest, MaxPrice, Target};
use crate::error::GatewayError;
use http::StatusCode;
use serde_json::{Value, json};

/// The OpenRouter parameter vocabulary checked by `require_parameters`, with the request field
/// that uses each (`structured_outputs` is a `json_schema` `response_format`).
const PARAMETERS: &[&str] = &[
    "tools",
    "tool_choice",
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "top_a",
    "min_p",
    "frequency_penalty",
    "presence_penalty",
    "repetition_penalty",
    "seed",
    "stop",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "response_format",
    "reasoning",
    "include_reasoning",
    "web_search_options",
    "verbosity",
    "parallel_tool_calls",
];

/// Parameters preferred even without `require_parameters`: when some endpoints of a model
/// support one the request uses, only those are kept (never emptying the model).
pub(crate) const PREFERRED: &[&str] = &["tools", "response_format", "verbosity"];

/// Why one endpoint was excluded.
#[derive(Debug, Clone)]
pub(crate) struct Exclusion {
    /// `model@tag`.
    pub(crate) key: String,
    /// A SPEC 7.3 `excluded_by` value, or `disabled` (no key configured).
    pub(crate) code: &'static str,
    /// Human-readable detail.
    pub(crate) detail: String,
}

/// The parameters of the vocabulary a request uses, in the order `require_parameters` reports
/// them: [`PARAMETERS`] order, then `max_tokens` when only its newer name was sent, then
/// `structured_outputs`. A bit set rather than a list: it is built on every request.
#[derive(Debug, Clone, Copy, Default)]
struct Used {
    /// Bit `i` set: the request uses `PARAMETERS[i]`.
    params: u32,
    /// `max_tokens` applies under its newer name only.
    late_max_tokens: bool,
    /// A `json_schema` `response_format`.
    structured: bool,
}

const _: () = assert!(PARAMETERS.len() <= 32, "Used::params has 32 bits");

impl Used {
    fn of(chat: &ChatRequest) -> Used {
        // Each body key is matched once against the vocabulary (bodies have few keys).
        let mut params = 0u32;
        // `fields`: a deferred `messages` stands as an empty array, which is not null either.
        for (k, v) in &chat.fields {
            if let Some(i) = PARAMETERS.iter().position(|p| p == k) {
                if !v.is_null() {
                    params |= 1 << i;
                }
            }
        }
        let mut used = Used {
            params,
            ..Used::default()
        };
        used.late_max_tokens = chat.max_tokens.is_some() && !used.contains("max_tokens");
        used.structured = chat
            .field("response_format")
            .and_then(|r| r.get("type"))
            .and_then(Value::as_str)
            == Some("json_schema");
        used
    }

    fn iter(self) -> impl Iterator<Item = &'static str> {
        let params = PARAMETERS
            .iter()
            .enumerate()
            .filter(move |(i, _)| self.params & (1 << i) != 0)
            .map(|(_, p)| *p);
        let late = self.late_max_tokens.then_some("max_tokens");
        let structured = self.structured.then_some("structured_outputs");
        params.chain(late).chain(structured)
    }

    fn contains(self, p: &str) -> bool {
        match p {
            "max_tokens" if self.late_max_tokens => true,
            "structured_outputs" => self.structured,
            _ => PARAMETERS
                .iter()
                .position(|q| *q == p)
                .is_some_and(|i| self.params & (1 << i) != 0),
        }
    }
}

/// The request's hard constraints, computed once per request.
#[derive(Debug)]
pub(crate) struct Filters<'a> {
    chat: &'a ChatRequest,
    used: Used,
    prompt_tokens: u64,
    max_request: Option<Usd>,
    max_image: Option<Usd>,
    tier: Option<&'static str>,
}

impl<'a> Filters<'a> {
    pub(crate) fn new(chat: &'a ChatRequest) -> Self {
        let used = Used::of(chat);
        let mp = chat.provider.max_price.as_ref();
        let tier = match chat.field("service_tier").and_then(Value::as_str) {
            Some("priority" | "fast") => Some("priority"),
            Some("flex") => Some("flex"),
            Some("scale") => Some("scale"),
            _ => None,
        };
        Filters {
            chat,
            used,
            prompt_tokens: chat.estimated_prompt_tokens(),
            max_request: mp.and_then(|m| dollars(m.request.as_ref())),
            max_image: mp.and_then(|m| dollars(m.image.as_ref())),
            tier,
        }
    }

    /// Checks one endpoint; `Err((code, detail))` names the first constraint it fails.
    pub(crate) fn check(
        &self,
        model: &Model,
        e: &Endpoint,
        hints: &ModelHints,
    ) -> Result<(), (&'static str, String)> {
        let prefs = &self.chat.provider;
        if !e.provider.enabled {
            let var = e.provider.api_key_env.as_deref().unwrap_or("its key");
            return Err(("disabled", format!("provider disabled (set {var})")));
        }
        if let Some(tier) = &e.service_tier {
            let named = |l: &Option<Vec<String>>| {
                l.iter()
                    .flatten()
                    .any(|s| s.trim().eq_ignore_ascii_case(&e.tag))
            };
            let opted = hints.tier() == Some(tier.as_str())
                || self.tier == Some(tier.as_str())
                || named(&prefs.order)
                || named(&prefs.only);
            if !opted {
                let msg = format!("service tier `{tier}` not requested");
                return Err(("allowed_providers", msg));
            }
        }
        if let Some(only) = &prefs.only {
            if !only.iter().any(|s| e.matches_slug(s)) {
                return Err(("allowed_providers", "not in provider.only".into()));
            }
        }
        if let Some(s) = prefs.ignore.iter().flatten().find(|s| e.matches_slug(s)) {
            return Err((
                "allowed_providers",
                format!("ignored by provider.ignore `{s}`"),
            ));
        }
        if prefs.data_collection.as_deref() == Some("deny") && e.provider.collects_data {
            let msg = "provider may store or train on prompts (data_collection: deny)";
            return Err(("data_policy:training", msg.into()));
        }
        if prefs.zdr == Some(true) && !e.provider.zdr {
            return Err((
                "data_policy:zdr",
                "not a zero-data-retention endpoint".into(),
            ));
        }
        if let Some(qs) = &prefs.quantizations {
            let q = e.quantization.as_deref().unwrap_or("unknown");
            if !qs.iter().any(|x| x.trim().eq_ignore_ascii_case(q)) {
                return Err((
                    "quantization",
                    format!("quantization `{q}` not in provider.quantizations"),
                ));
            }
        }
        self.check_price(e, hints)?;
        self.check_length(model, e)?;
        if prefs.require_parameters == Some(true) {
            if let Some(p) = self.used.iter().find(|p| !supports(e, p)) {
                return Err(("require_parameters", format!("does not support `{p}`")));
            }
        }
        Ok(())
    }

    fn check_price(&self, e: &Endpoint, hints: &ModelHints) -> Result<(), (&'static str, String)> {
        let p = prices(e, self.prompt_tokens);
        if hints.free_only && !p.is_free() {
            return Err(("max_price", "not free (:free)".into()));
        }
        let Some(max) = &self.chat.provider.max_price else {
            return Ok(());
        };
        let over = |name: &str, price: Usd, cap: Option<Usd>, per_m: bool| match cap {
            Some(cap) if discounted(&p, price) > cap => {
                let (a, b, unit) = if per_m {
                    (price.per_million(), cap.per_million(), "/M tokens")
                } else {
                    (price.as_f64(), cap.as_f64(), "")
                };
                Err((
                    "max_price",
                    format!("{name} price ${a}{unit} > max_price ${b}{unit}"),
                ))
            }
            _ => Ok(()),
        };
        let MaxPrice {
            prompt, completion, ..
        } = max;
        over("prompt", p.prompt, *prompt, true)?;
        over("completion", p.completion, *completion, true)?;
        over("request", p.request, self.max_request, false)?;
        over("image", p.image, self.max_image, false)
    }

    fn check_length(&self, model: &Model, e: &Endpoint) -> Result<(), (&'static str, String)> {
        let max_tokens = self.chat.max_tokens.map_or(0, u64::from);
        if let Some(ctx) = e.context_length(model) {
            let need = self.prompt_tokens + max_tokens;
            if need > u64::from(ctx) {
                let msg = format!("context length {ctx} < ~{need} tokens (prompt + max_tokens)");
                return Err(("context_length", msg));
            }
        }
        let cap = e.max_completion_tokens.or(model.max_completion_tokens);
        if let (Some(cap), Some(want)) = (cap, self.chat.max_tokens) {
            if want > cap {
                let msg = format!("max completion tokens {cap} < max_tokens {want}");
                return Err(("context_length", msg));
            }
        }
        Ok(())
    }

    /// Keeps, for each preferred parameter the request uses, only the endpoints supporting it
    /// when at least one does.
    pub(crate) fn prefer_supported(&self, group: &mut Vec<Target>) {
        for p in PREFERRED.iter().filter(|p| self.used.contains(p)) {
            if group.iter().any(|t| supports(t.endpoint(), p)) {
                group.retain(|t| supports(t.endpoint(), p));
            }
        }
    }
}

/// `max_tokens` is also honoured under its newer name.
fn supports(e: &Endpoint, p: &str) -> bool {
    e.supports(p) || (p == "max_tokens" && e.supports("max_completion_tokens"))
}

/// A per-request or per-image USD ceiling, as a number or a decimal string.
fn dollars(v: Option<&Value>) -> Option<Usd> {
    match v? {
        Value::Number(n) => n.as_f64().map(Usd::from_dollars),
        Value::String(s) => Usd::parse_decimal(s),
        _ => None,
    }
}

/// The 404 for a request that no endpoint qualifies for.
pub(crate) fn no_endpoints(chat: &ChatRequest, excluded: &[Exclusion]) -> GatewayError {
    let models = chat.model_chain();
    let mut by: Vec<&'static str> = Vec::new();
    for x in excluded.iter().filter(|x| x.code != "disabled") {
        if !by.contains(&x.code) {
            by.push(x.code);
        }
    }
    let code = if by.is_empty() {
        "no_endpoints"
    } else if by.iter().all(|c| c.starts_with("data_policy:")) {
        "privacy_restricted"
    } else {
        "constraint_filtered"
    };
    let detail: Vec<String> = excluded
        .iter()
        .map(|x| format!("{} excluded by {}: {}", x.key, x.code, x.detail))
        .collect();
    let what = if code == "privacy_restricted" {
        "matching your data policy"
    } else {
        "matching your request"
    };
    let mut message = format!("No endpoints found for {} {what}", models.join(", "));
    if !detail.is_empty() {
        message.push_str(": ");
        message.push_str(&detail.join("; "));
    }
    let mut e = GatewayError::new(StatusCode::NOT_FOUND, "not_found", message);
    e.availability = Some(json!({
        "code": code,
        "retryable": false,
        "excluded_by": by,
        "requested_models": models,
    }));
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::ApiKind;

    fn used(body: &str) -> Vec<&'static str> {
        let chat =
            crate::context::parse_request(ApiKind::Chat, body.as_bytes(), &Default::default())
                .expect("parse");
        Used::of(&chat).iter().collect()
    }

    #[test]
    fn used_parameters_keep_the_reporting_order() {
        let m = r#""model":"a/b","messages":[{"role":"user","content":"x"}]"#;
        assert!(used(&format!("{{{m}}}")).is_empty());
        assert_eq!(
            used(&format!(
                r#"{{{m},"seed":1,"tools":[],"top_p":null,"max_completion_tokens":5,"response_format":{{"type":"json_schema"}}}}"#
            )),
            [
                "tools",
                "seed",
                "response_format",
                "max_tokens",
                "structured_outputs"
            ]
        );
        assert_eq!(
            used(&format!(r#"{{{m},"max_tokens":5,"temperature":0.5}}"#)),
            ["max_tokens", "temperature"]
        );
        let chat = crate::context::parse_request(
            ApiKind::Chat,
            format!(r#"{{{m},"max_completion_tokens":5,"tools":[]}}"#).as_bytes(),
            &Default::default(),
        )
        .expect("parse");
        let u = Used::of(&chat);
        for p in ["max_tokens", "tools"] {
            assert!(u.contains(p), "{p}");
        }
        for p in ["structured_outputs", "seed", "unknown"] {
            assert!(!u.contains(p), "{p}");
        }
        let chat = crate::context::parse_request(
            ApiKind::Chat,
            format!(r#"{{{m},"max_tokens":5}}"#).as_bytes(),
            &Default::default(),
        )
        .expect("parse");
        assert!(Used::of(&chat).contains("max_tokens"));
    }
}
