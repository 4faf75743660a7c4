//! The `usage` object of a response (SPEC §7.1), written straight from the typed counts.
//!
//! Building it as a `serde_json::Value` costs a `String` per key and a map per nested object
//! (≈ 25 allocations) on every request; this struct serialises the same JSON with none. Fields
//! are declared in alphabetical order, the order a `Value` map writes them, so the bytes match
//! what [`usage_json`](usage_json) produces.
//!
//! Meter writes the object on every non-streaming request, so [`UsageReport::to_json`] writes
//! those bytes by hand — literal keys, numbers formatted by serde_json's own number
//! serialiser — rather than through the derived `Serialize` (a call per key, each key escaped);
//! the derive stays for [`usage_json`](usage_json), and a test holds the two to the
//! same bytes.
//!
//! ```
//! use switchyard::meter::cost::Cost;
//! use switchyard::meter::report::usage_json;
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
use serde_json::Value;
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
        // The writer's text is JSON: it always parses.
        RawValue::from_string(self.to_json()).unwrap_or_else(|_| RawValue::NULL.to_owned())
    }

    /// The report's JSON text: exactly the bytes `serde_json::to_vec` writes for it.
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(512);
        self.write(&mut out);
        // Only ASCII keys and number text were written.
        String::from_utf8(out).unwrap_or_default()
    }

    /// Appends the report's JSON to `out`, keys in the derive's (alphabetical) order.
    fn write(&self, out: &mut Vec<u8>) {
        let c = &self.completion_tokens_details;
        out.extend_from_slice(b"{\"completion_tokens\":");
        int(out, self.completion_tokens);
        out.extend_from_slice(b",\"completion_tokens_details\":{\"audio_tokens\":");
        int(out, c.audio_tokens);
        out.extend_from_slice(b",\"image_tokens\":");
        int(out, c.image_tokens);
        out.extend_from_slice(b",\"reasoning_tokens\":");
        int(out, c.reasoning_tokens);
        out.extend_from_slice(b"},\"cost\":");
        float(out, self.cost);
        let d = &self.cost_details;
        out.extend_from_slice(b",\"cost_details\":{\"upstream_inference_completions_cost\":");
        float(out, d.upstream_inference_completions_cost);
        out.extend_from_slice(b",\"upstream_inference_cost\":");
        match d.upstream_inference_cost {
            Some(f) => float(out, f),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"upstream_inference_prompt_cost\":");
        float(out, d.upstream_inference_prompt_cost);
        out.extend_from_slice(b"}");
        if self.estimated {
            out.extend_from_slice(b",\"estimated\":true");
        }
        out.extend_from_slice(if self.is_byok {
            b",\"is_byok\":true"
        } else {
            b",\"is_byok\":false"
        });
        let p = &self.prompt_tokens_details;
        out.extend_from_slice(b",\"prompt_tokens\":");
        int(out, self.prompt_tokens);
        out.extend_from_slice(b",\"prompt_tokens_details\":{\"audio_tokens\":");
        int(out, p.audio_tokens);
        out.extend_from_slice(b",\"cache_write_tokens\":");
        int(out, p.cache_write_tokens);
        out.extend_from_slice(b",\"cached_tokens\":");
        int(out, p.cached_tokens);
        out.extend_from_slice(b",\"video_tokens\":");
        int(out, p.video_tokens);
        out.extend_from_slice(b"},\"server_tool_use\":{\"web_search_requests\":");
        int(out, self.server_tool_use.web_search_requests);
        out.extend_from_slice(b"},\"total_tokens\":");
        int(out, self.total_tokens);
        out.extend_from_slice(b"}");
    }
}

/// Appends `n` as serde_json writes it.
fn int(out: &mut Vec<u8>, n: u64) {
    // Writing into a `Vec` cannot fail.
    let _ = serde_json::to_writer(out, &n);
}

/// Appends `f` as serde_json writes it (shortest round-trip digits; `null` when not finite), by
/// its own serialiser, so the text follows whatever formatter serde_json uses.
fn float(out: &mut Vec<u8>, f: f64) {
    // Writing into a `Vec` cannot fail.
    let _ = serde_json::to_writer(out, &f);
}

/// The OpenRouter `usage` object of SPEC §7.1 for a response.
///
/// BYOK requests are charged nothing by the gateway (it adds no fee), so `cost` is `0` and
/// `cost_details.upstream_inference_cost` carries what the provider bills the key's owner; for
/// other requests `upstream_inference_cost` is `null`, as on OpenRouter.
pub fn usage_json(usage: &Usage, cost: &Cost, is_byok: bool) -> Value {
    // Plain numbers and fixed keys: converting cannot fail.
    serde_json::to_value(UsageReport::new(usage, cost, is_byok)).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    /// Floats the report can carry, and some it cannot yet: zero, negative zero, tiny, huge,
    /// non-integers, non-finite.
    fn float() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            any::<i64>().prop_map(|p| Usd::from_picodollars(p).as_f64()),
            prop::sample::select(vec![
                0.0,
                -0.0,
                1e-12,
                5e-324,
                1e-7,
                0.00014,
                0.1 + 0.2,
                1.5,
                1e15,
                1e16,
                1e21,
                1.7976931348623157e308,
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
            ]),
        ]
    }

    prop_compose! {
        fn report()(
            counts in proptest::array::uniform10(prop_oneof![any::<u64>(), 0_u64..1000]),
            floats in proptest::array::uniform4(float()),
            byok in any::<bool>(),
            inference in any::<bool>(),
            estimated in any::<bool>(),
        ) -> UsageReport {
            UsageReport {
                completion_tokens: counts[0],
                completion_tokens_details: CompletionDetails {
                    audio_tokens: counts[1],
                    image_tokens: counts[2],
                    reasoning_tokens: counts[3],
                },
                cost: floats[0],
                cost_details: CostDetails {
                    upstream_inference_completions_cost: floats[1],
                    upstream_inference_cost: inference.then_some(floats[2]),
                    upstream_inference_prompt_cost: floats[3],
                },
                estimated,
                is_byok: byok,
                prompt_tokens: counts[4],
                prompt_tokens_details: PromptDetails {
                    audio_tokens: counts[5],
                    cache_write_tokens: counts[6],
                    cached_tokens: counts[7],
                    video_tokens: counts[8],
                },
                server_tool_use: ServerToolUse {
                    web_search_requests: counts[9],
                },
                total_tokens: counts[0].wrapping_add(counts[4]),
            }
        }
    }

    proptest! {
        #[test]
        fn the_writer_writes_what_serde_does(report in report()) {
            // `to_string` is `to_vec` checked as UTF-8: the same bytes.
            let want = serde_json::to_string(&report).expect("serialises");
            prop_assert_eq!(&report.to_json(), &want);
            let raw = report.to_raw();
            prop_assert_eq!(raw.get(), &want);
        }

        #[test]
        fn reports_of_priced_usage_match_serde_too(
            counts in proptest::array::uniform6(0_u64..10_000_000),
            picodollars in proptest::array::uniform4(0_i64..1_000_000_000_000),
            byok in any::<bool>(),
            estimated in any::<bool>(),
        ) {
            let usage = Usage {
                prompt_tokens: counts[0],
                completion_tokens: counts[1],
                cached_tokens: counts[2],
                cache_write_tokens: counts[3],
                reasoning_tokens: counts[4],
                web_search_requests: counts[5],
                estimated,
                ..Usage::default()
            };
            let [total, prompt, completion, upstream] = picodollars.map(Usd::from_picodollars);
            let cost = Cost {
                total,
                prompt,
                completion,
                upstream_inference_cost: upstream,
                ..Cost::default()
            };
            let report = UsageReport::new(&usage, &cost, byok);
            let json = report.to_json();
            prop_assert_eq!(&json, &serde_json::to_string(&report).expect("serialises"));
            prop_assert_eq!(&json, &usage_json(&usage, &cost, byok).to_string());
        }
    }
}
