//! The `usage` object of a response (SPEC §7.1), written straight from the typed counts.
//!
//! Building it as a `serde_json::Value` costs a `String` per key and a map per nested object
//! (≈ 25 allocations) on every request; this struct serialises the same JSON with none. Fields
//! are declared in alphabetical order, the order a `Value` map writes them, so the bytes match
//! what [`usage_json`](super::cost::usage_json) produces.
//!
//! ```
//! use switchyard::meter::cost::{Cost, usage_json};
//! use switchyard::meter::report::UsageReport;
//! use switchyard::meter::usage::Usage;
//! let usage = Usage { prompt_tokens: 3, completion_tokens: 2, ..Usage::default() };
//! let report = UsageReport::new(&usage, &Cost::default(), false);
//! let text = serde_json::to_string(&report).unwrap();
//! assert_eq!(text, usage_json(&usage, &Cost::default(), false).to_string());
//! ```

use super::cost::Cost;
use super::usage::Usage;
use crate::catalog::Usd;
use serde::Serialize;
use serde_json::value::RawValue;

/// The `usage` object: token counts, cost and cost details.
#[derive(Debug, Serialize)]
pub struct UsageReport {
    completion_tokens: u64,
    completion_tokens_details: CompletionDetails,
    cost: f64,
    cost_details: CostDetails,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    estimated: bool,
    is_byok: bool,
    prompt_tokens: u64,
    prompt_tokens_details: PromptDetails,
    server_tool_use: ServerToolUse,
    total_tokens: u64,
}

#[derive(Debug, Serialize)]
struct CompletionDetails {
    audio_tokens: u64,
    image_tokens: u64,
    reasoning_tokens: u64,
}

#[derive(Debug, Serialize)]
struct CostDetails {
    upstream_inference_completions_cost: f64,
    upstream_inference_cost: Option<f64>,
    upstream_inference_prompt_cost: f64,
}

#[derive(Debug, Serialize)]
struct PromptDetails {
    audio_tokens: u64,
    cache_write_tokens: u64,
    cached_tokens: u64,
    video_tokens: u64,
}

#[derive(Debug, Serialize)]
struct ServerToolUse {
    web_search_requests: u64,
}

impl UsageReport {
    /// The report for `usage` priced at `cost`. BYOK requests are charged nothing by the
    /// gateway, so `cost` is `0` and `upstream_inference_cost` carries what the provider bills;
    /// otherwise `upstream_inference_cost` is `null`, as on OpenRouter. `estimated` appears
    /// (as `true`) only when the counts were estimated.
    pub fn new(usage: &Usage, cost: &Cost, is_byok: bool) -> Self {
        let charged = if is_byok { Usd::ZERO } else { cost.total };
        UsageReport {
            completion_tokens: usage.completion_tokens,
            completion_tokens_details: CompletionDetails {
                audio_tokens: 0,
                image_tokens: 0,
                reasoning_tokens: usage.reasoning_tokens,
            },
            cost: charged.as_f64(),
            cost_details: CostDetails {
                upstream_inference_completions_cost: cost.completion_side().as_f64(),
                upstream_inference_cost: is_byok.then(|| cost.upstream_inference_cost.as_f64()),
                upstream_inference_prompt_cost: cost.prompt_side().as_f64(),
            },
            estimated: usage.estimated,
            is_byok,
            prompt_tokens: usage.prompt_tokens,
            prompt_tokens_details: PromptDetails {
                audio_tokens: 0,
                cache_write_tokens: usage.cache_write_tokens,
                cached_tokens: usage.cached_tokens,
                video_tokens: 0,
            },
            server_tool_use: ServerToolUse {
                web_search_requests: usage.web_search_requests,
            },
            total_tokens: usage.total_tokens(),
        }
    }

    /// The report as ready JSON text.
    pub fn to_raw(&self) -> Box<RawValue> {
        // Plain numbers, bools and fixed keys: serialising cannot fail.
        serde_json::value::to_raw_value(self).unwrap_or_else(|_| RawValue::NULL.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meter::cost::usage_json;

    #[test]
    fn same_bytes_as_the_value_it_replaces() {
        let usage = Usage {
            prompt_tokens: 10,
            completion_tokens: 4,
            cached_tokens: 2,
            cache_write_tokens: 1,
            reasoning_tokens: 1,
            web_search_requests: 1,
            ..Usage::default()
        };
        let cost = Cost {
            total: Usd::from_per_million(140.0),
            prompt: Usd::from_per_million(40.0),
            completion: Usd::from_per_million(100.0),
            upstream_inference_cost: Usd::from_per_million(140.0),
            ..Cost::default()
        };
        for byok in [false, true] {
            let typed = UsageReport::new(&usage, &cost, byok).to_raw();
            assert_eq!(typed.get(), usage_json(&usage, &cost, byok).to_string());
        }
        let estimated = Usage {
            estimated: true,
            ..usage
        };
        let v: serde_json::Value =
            serde_json::from_str(UsageReport::new(&estimated, &cost, false).to_raw().get())
                .expect("json");
        assert_eq!(v["estimated"], true);
    }
}
