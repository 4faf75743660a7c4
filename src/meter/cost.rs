//! The cost of a generation (SPEC §8.2, §8.4) and the `usage` object that reports it (§7.1).
//!
//! All arithmetic is integer picodollars ([`Usd`]); floats appear only in the JSON output.
//!
//! # The formula, step by step
//! 1. Take the prices in force: [`Pricing::effective`] for the prompt size and the UTC time
//!    (long-context tiers, peak windows).
//! 2. Split the prompt: `uncached = prompt − cached − cache_write` (never below zero).
//!    Uncached tokens cost `prompt`; cached ones `input_cache_read` (else `prompt`); cache
//!    writes `input_cache_write` (else `prompt`), the one-hour-TTL part
//!    `input_cache_write_1h` (else the five-minute price).
//! 3. Split the completion: reasoning tokens are inside `completion_tokens`. They cost
//!    `internal_reasoning` when the endpoint prices it apart, else the completion price; the
//!    other completion tokens cost `completion`.
//! 4. Add `request` once, `image` per prompt image and `web_search` per search.
//! 5. Apply the discount to every part: `× (1 − discount_ppm / 10⁶)`, rounded half away from
//!    zero to the picodollar. The total is the sum of the discounted parts, so parts always add up.
//! 6. Zero-completion insurance: when the completion is empty with no finish reason, or the
//!    finish reason is `error`, every part except web search is zero and `insured` is set.
//!    Prompt images count as prompt processing and are waived too.

use super::usage::Usage;
use crate::catalog::{Pricing, Usd};
use std::borrow::Cow;

/// What a generation costs, by part. Every part is after the discount; `total` is their sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    /// What the user is charged: the sum of the parts below.
    pub total: Usd,
    /// Uncached prompt tokens.
    pub prompt: Usd,
    /// Completion tokens other than reasoning ones.
    pub completion: Usd,
    /// Prompt tokens read from the cache.
    pub cache_read: Usd,
    /// Prompt tokens written to the cache.
    pub cache_write: Usd,
    /// Reasoning tokens.
    pub reasoning: Usd,
    /// The per-request price.
    pub request: Usd,
    /// Prompt images.
    pub images: Usd,
    /// Web searches.
    pub web_search: Usd,
    /// What the upstream charges for the work, insurance aside: equal to `total` unless the
    /// generation is insured, in which case the gateway absorbs the difference.
    pub upstream_inference_cost: Usd,
    /// Zero-completion insurance applied: tokens, request and images were not charged.
    pub insured: bool,
}

impl Cost {
    /// The prompt side: uncached and cached prompt tokens, cache writes and images.
    pub fn prompt_side(&self) -> Usd {
        self.prompt + self.cache_read + self.cache_write + self.images
    }

    /// The completion side: completion and reasoning tokens.
    pub fn completion_side(&self) -> Usd {
        self.completion + self.reasoning
    }
}

/// True when zero-completion insurance (SPEC §8.4) waives the token charges.
pub fn is_insured(usage: &Usage, finish_reason: Option<&str>) -> bool {
    let reason = finish_reason.map(str::trim).unwrap_or("");
    reason == "error" || (usage.completion_tokens == 0 && reason.is_empty())
}

/// Prices `usage` under `pricing` at UTC time `utc_hhmm` (`HHMM`, e.g. `1430`).
///
/// See the [module docs](self) for the formula.
pub fn price(usage: &Usage, pricing: &Pricing, finish_reason: Option<&str>, utc_hhmm: u16) -> Cost {
    // Most endpoints have no overrides: skip the copy `effective` makes.
    let p = if pricing.overrides.is_empty() {
        Cow::Borrowed(pricing)
    } else {
        Cow::Owned(pricing.effective(usage.prompt_tokens, utc_hhmm))
    };
    let keep_ppm = 1_000_000 - i64::from(p.discount_ppm.min(1_000_000));
    let discounted = |v: Usd| {
        if keep_ppm == 1_000_000 {
            v
        } else {
            scale_ppm(v, keep_ppm)
        }
    };

    let uncached = usage
        .prompt_tokens
        .saturating_sub(usage.cached_tokens)
        .saturating_sub(usage.cache_write_tokens);
    let write_1h = usage.cache_write_1h_tokens.min(usage.cache_write_tokens);
    let write_5m = usage.cache_write_tokens - write_1h;
    let read_price = p.input_cache_read.unwrap_or(p.prompt);
    let write_price = p.input_cache_write.unwrap_or(p.prompt);
    let write_1h_price = p.input_cache_write_1h.unwrap_or(write_price);

    let reasoning = usage.reasoning_tokens.min(usage.completion_tokens);
    let visible = usage.completion_tokens - reasoning;
    let reasoning_price = p.internal_reasoning.unwrap_or(p.completion);

    let mut cost = Cost {
        prompt: discounted(p.prompt * uncached),
        cache_read: discounted(read_price * usage.cached_tokens),
        cache_write: discounted(write_price * write_5m + write_1h_price * write_1h),
        completion: discounted(p.completion * visible),
        reasoning: discounted(reasoning_price * reasoning),
        request: discounted(p.request),
        images: discounted(p.image * usage.images),
        web_search: discounted(p.web_search * usage.web_search_requests),
        ..Cost::default()
    };
    cost.upstream_inference_cost = sum(&cost);
    if is_insured(usage, finish_reason) {
        cost = Cost {
            web_search: cost.web_search,
            upstream_inference_cost: cost.upstream_inference_cost,
            insured: true,
            ..Cost::default()
        };
    }
    cost.total = sum(&cost);
    cost
}

/// [`Usd::scale_ppm`] (`ppm` ≤ 10⁶), in `i64` when that cannot overflow: `i128` division is a
/// slow library call and pricing does up to eight of these.
fn scale_ppm(v: Usd, ppm: i64) -> Usd {
    const SAFE: u64 = (i64::MAX / 1_000_000 - 1) as u64;
    let p = v.picodollars();
    if p.unsigned_abs() < SAFE {
        let x = p * ppm;
        Usd::from_picodollars((x + x.signum() * 500_000) / 1_000_000)
    } else {
        v.scale_ppm(ppm)
    }
}

fn sum(c: &Cost) -> Usd {
    c.prompt_side() + c.completion_side() + c.request + c.web_search
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{PriceOverride, PriceSet};
    use crate::meter::report::usage_json;
    use proptest::prelude::*;
    use serde_json::Value;

    /// $/M → per-token price.
    fn m(per_million: f64) -> Usd {
        Usd::from_per_million(per_million)
    }

    /// Anthropic-like prices: $3/M in, $15/M out, reads $0.30/M, writes $3.75/M (5 min), $6/M (1 h).
    fn base() -> Pricing {
        Pricing {
            prompt: m(3.0),
            completion: m(15.0),
            input_cache_read: Some(m(0.3)),
            input_cache_write: Some(m(3.75)),
            input_cache_write_1h: Some(m(6.0)),
            ..Pricing::default()
        }
    }

    fn u(prompt: u64, completion: u64) -> Usage {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            ..Usage::default()
        }
    }

    struct Case {
        name: &'static str,
        pricing: Pricing,
        usage: Usage,
        finish: Option<&'static str>,
        hhmm: u16,
        /// Hand-computed total in picodollars.
        total: i64,
        insured: bool,
    }

    fn case(name: &'static str, pricing: Pricing, usage: Usage, total: i64) -> Case {
        Case {
            name,
            pricing,
            usage,
            finish: Some("stop"),
            hhmm: 1200,
            total,
            insured: false,
        }
    }

    #[test]
    fn cost_table() {
        let long_context = Pricing {
            overrides: vec![PriceOverride {
                min_prompt_tokens: Some(200_000),
                prices: PriceSet {
                    prompt: Some(m(6.0)),
                    completion: Some(m(22.5)),
                    ..PriceSet::default()
                },
                ..PriceOverride::default()
            }],
            ..base()
        };
        let night = Pricing {
            overrides: vec![PriceOverride {
                utc_start: Some(2200),
                utc_end: Some(600),
                prices: PriceSet {
                    prompt: Some(m(1.5)),
                    ..PriceSet::default()
                },
                ..PriceOverride::default()
            }],
            ..base()
        };
        let no_cache_prices = Pricing {
            input_cache_read: None,
            input_cache_write: None,
            input_cache_write_1h: None,
            ..base()
        };
        let cases = [
            // 1000 × 3e6 + 500 × 15e6
            case("plain", base(), u(1000, 500), 3_000_000_000 + 7_500_000_000),
            // 200 uncached × 3e6 + 800 read × 3e5 + 100 × 15e6
            case(
                "cached reads",
                base(),
                Usage {
                    cached_tokens: 800,
                    ..u(1000, 100)
                },
                600_000_000 + 240_000_000 + 1_500_000_000,
            ),
            // no read price: reads at the prompt price, 800 × 3e6
            case(
                "cached reads, no read price",
                no_cache_prices.clone(),
                Usage {
                    cached_tokens: 800,
                    ..u(1000, 100)
                },
                600_000_000 + 2_400_000_000 + 1_500_000_000,
            ),
            // 1000 written × 3.75e6; an empty "stop" completion is not insured
            case(
                "cache write 5m",
                base(),
                Usage {
                    cache_write_tokens: 1000,
                    ..u(1000, 0)
                },
                3_750_000_000,
            ),
            // 600 × 3.75e6 + 400 × 6e6 + 10 × 15e6
            case(
                "cache write 1h",
                base(),
                Usage {
                    cache_write_tokens: 1000,
                    cache_write_1h_tokens: 400,
                    ..u(1000, 10)
                },
                2_250_000_000 + 2_400_000_000 + 150_000_000,
            ),
            // no 1h price: the 5-minute price, 1000 × 3.75e6 + 10 × 15e6
            case(
                "cache write 1h, fallback to 5m",
                Pricing {
                    input_cache_write_1h: None,
                    ..base()
                },
                Usage {
                    cache_write_tokens: 1000,
                    cache_write_1h_tokens: 400,
                    ..u(1000, 10)
                },
                3_750_000_000 + 150_000_000,
            ),
            // no write price at all: the prompt price, 1000 × 3e6
            case(
                "cache write, fallback to prompt",
                no_cache_prices,
                Usage {
                    cache_write_tokens: 1000,
                    cache_write_1h_tokens: 400,
                    ..u(1000, 0)
                },
                3_000_000_000,
            ),
            // reasoning inside completion: 100 × 3e6 + 1000 × 15e6
            case(
                "reasoning at completion price",
                base(),
                Usage {
                    reasoning_tokens: 800,
                    ..u(100, 1000)
                },
                300_000_000 + 15_000_000_000,
            ),
            // 100 × 3e6 + 200 × 15e6 + 800 × 5e6
            case(
                "reasoning priced apart",
                Pricing {
                    internal_reasoning: Some(m(5.0)),
                    ..base()
                },
                Usage {
                    reasoning_tokens: 800,
                    ..u(100, 1000)
                },
                300_000_000 + 3_000_000_000 + 4_000_000_000,
            ),
            // 250k × 6e6 + 1000 × 22.5e6
            case(
                "long context tier",
                long_context.clone(),
                u(250_000, 1000),
                1_500_000_000_000 + 22_500_000_000,
            ),
            // exactly at the threshold: base prices, 200k × 3e6 + 1000 × 15e6
            case(
                "long context threshold is exclusive",
                long_context,
                u(200_000, 1000),
                600_000_000_000 + 15_000_000_000,
            ),
            // 1000 × 1.5e6 + 100 × 15e6 at 23:00
            Case {
                hhmm: 2300,
                ..case(
                    "utc window",
                    night.clone(),
                    u(1000, 100),
                    1_500_000_000 + 1_500_000_000,
                )
            },
            // same at noon: base price
            case(
                "outside utc window",
                night,
                u(1000, 100),
                3_000_000_000 + 1_500_000_000,
            ),
            // 25% off each part: 3e9 × 0.75 + 7.5e9 × 0.75
            case(
                "discount",
                Pricing {
                    discount_ppm: 250_000,
                    ..base()
                },
                u(1000, 500),
                2_250_000_000 + 5_625_000_000,
            ),
            // plain + $0.001
            case(
                "per request",
                Pricing {
                    request: Usd::from_dollars(0.001),
                    ..base()
                },
                u(1000, 500),
                10_500_000_000 + 1_000_000_000,
            ),
            // 100 × 3e6 + 10 × 15e6 + 2 × $0.0024
            case(
                "images",
                Pricing {
                    image: Usd::from_dollars(0.0024),
                    ..base()
                },
                Usage {
                    images: 2,
                    ..u(100, 10)
                },
                300_000_000 + 150_000_000 + 4_800_000_000,
            ),
            // plain + 3 × $0.004
            case(
                "web search",
                Pricing {
                    web_search: Usd::from_dollars(0.004),
                    ..base()
                },
                Usage {
                    web_search_requests: 3,
                    ..u(1000, 500)
                },
                10_500_000_000 + 12_000_000_000,
            ),
            // free endpoint: only the search is charged
            case(
                "free model with web search",
                Pricing {
                    web_search: Usd::from_dollars(0.004),
                    ..Pricing::default()
                },
                Usage {
                    web_search_requests: 1,
                    ..u(1000, 500)
                },
                4_000_000_000,
            ),
            // insured: empty completion, no finish reason; the search still costs $0.004
            Case {
                finish: None,
                insured: true,
                ..case(
                    "insurance: empty completion, null finish",
                    Pricing {
                        request: Usd::from_dollars(0.001),
                        web_search: Usd::from_dollars(0.004),
                        image: Usd::from_dollars(0.0024),
                        ..base()
                    },
                    Usage {
                        web_search_requests: 1,
                        images: 1,
                        cached_tokens: 10,
                        ..u(1000, 0)
                    },
                    4_000_000_000,
                )
            },
            Case {
                finish: Some(" "),
                insured: true,
                ..case(
                    "insurance: empty completion, blank finish",
                    base(),
                    u(1000, 0),
                    0,
                )
            },
            // finish "error" waives even a non-empty completion
            Case {
                finish: Some("error"),
                insured: true,
                ..case(
                    "insurance: error finish",
                    Pricing {
                        request: Usd::from_dollars(0.001),
                        ..base()
                    },
                    Usage {
                        reasoning_tokens: 100,
                        ..u(1000, 500)
                    },
                    0,
                )
            },
            Case {
                finish: Some("error"),
                insured: true,
                ..case(
                    "error finish keeps web search",
                    Pricing {
                        web_search: Usd::from_dollars(0.004),
                        ..base()
                    },
                    Usage {
                        web_search_requests: 2,
                        ..u(1000, 500)
                    },
                    8_000_000_000,
                )
            },
            // an empty completion with a real finish reason is charged: 1000 × 3e6
            Case {
                finish: Some("length"),
                ..case(
                    "empty completion with length finish",
                    base(),
                    u(1000, 0),
                    3_000_000_000,
                )
            },
        ];
        for c in &cases {
            let cost = price(&c.usage, &c.pricing, c.finish, c.hhmm);
            assert_eq!(cost.total.picodollars(), c.total, "{}: {cost:?}", c.name);
            assert_eq!(cost.insured, c.insured, "{}", c.name);
            assert_eq!(cost.total, sum(&cost), "{}: parts add up", c.name);
            if !c.insured {
                assert_eq!(cost.upstream_inference_cost, cost.total, "{}", c.name);
            }
        }
    }

    #[test]
    fn parts_are_split_as_documented() {
        let pricing = Pricing {
            internal_reasoning: Some(m(5.0)),
            ..base()
        };
        let usage = Usage {
            cached_tokens: 800,
            cache_write_tokens: 100,
            reasoning_tokens: 800,
            ..u(1000, 1000)
        };
        let c = price(&usage, &pricing, Some("stop"), 0);
        assert_eq!(c.prompt.picodollars(), 100 * 3_000_000);
        assert_eq!(c.cache_read.picodollars(), 800 * 300_000);
        assert_eq!(c.cache_write.picodollars(), 100 * 3_750_000);
        assert_eq!(c.completion.picodollars(), 200 * 15_000_000);
        assert_eq!(c.reasoning.picodollars(), 800 * 5_000_000);
    }

    #[test]
    fn insured_cost_keeps_what_upstream_charged() {
        let c = price(&u(1000, 0), &base(), None, 0);
        assert!(c.insured);
        assert_eq!(c.total, Usd::ZERO);
        assert_eq!(c.upstream_inference_cost.picodollars(), 3_000_000_000);
    }

    #[test]
    fn usage_json_has_the_openrouter_shape() {
        let usage = Usage {
            cached_tokens: 2,
            reasoning_tokens: 1,
            web_search_requests: 1,
            ..u(10, 4)
        };
        let pricing = Pricing {
            prompt: m(4.0),
            completion: m(25.0),
            ..Pricing::default()
        };
        let cost = price(&usage, &pricing, Some("stop"), 0);
        let v = usage_json(&usage, &cost, false);
        assert_eq!(v["total_tokens"], 14);
        assert_eq!(v["prompt_tokens_details"]["cached_tokens"], 2);
        assert_eq!(v["prompt_tokens_details"]["video_tokens"], 0);
        assert_eq!(v["completion_tokens_details"]["reasoning_tokens"], 1);
        assert_eq!(v["cost"], 0.00014);
        assert_eq!(v["is_byok"], false);
        assert_eq!(v["cost_details"]["upstream_inference_cost"], Value::Null);
        assert_eq!(v["cost_details"]["upstream_inference_prompt_cost"], 0.00004);
        assert_eq!(
            v["cost_details"]["upstream_inference_completions_cost"],
            0.0001
        );
        assert_eq!(v["server_tool_use"]["web_search_requests"], 1);
        let byok = usage_json(&usage, &cost, true);
        assert_eq!(byok["cost"], 0.0);
        assert_eq!(byok["cost_details"]["upstream_inference_cost"], 0.00014);
    }

    /// Usage built from disjoint parts, so that growing one part never shrinks another.
    #[derive(Debug, Clone, Copy)]
    struct Parts([u64; 8]);

    impl Parts {
        fn usage(self) -> Usage {
            let [
                uncached,
                cached,
                w5,
                w1h,
                visible,
                reasoning,
                images,
                searches,
            ] = self.0;
            Usage {
                prompt_tokens: uncached + cached + w5 + w1h,
                completion_tokens: visible + reasoning,
                cached_tokens: cached,
                cache_write_tokens: w5 + w1h,
                cache_write_1h_tokens: w1h,
                reasoning_tokens: reasoning,
                images,
                web_search_requests: searches,
                estimated: false,
            }
        }
    }

    fn price_strategy() -> impl Strategy<Value = Usd> {
        (0_i64..100_000_000).prop_map(Usd::from_picodollars)
    }

    prop_compose! {
        fn pricing_strategy()(
            prices in proptest::collection::vec(price_strategy(), 9),
            optional in proptest::collection::vec(any::<bool>(), 4),
            discount_ppm in 0_u32..=1_000_000,
            long_context in proptest::option::of((0_u64..1_000_000, 0_i64..50_000_000)),
        ) -> Pricing {
            let opt = |i: usize| optional[i].then_some(prices[5 + i]);
            let mut p = Pricing {
                prompt: prices[0],
                completion: prices[1],
                request: prices[2],
                image: prices[3],
                web_search: prices[4],
                internal_reasoning: opt(0),
                input_cache_read: opt(1),
                input_cache_write: opt(2),
                input_cache_write_1h: opt(3),
                discount_ppm,
                overrides: Vec::new(),
            };
            // A long-context tier that raises the token prices, as real tiers do.
            if let Some((min, extra)) = long_context {
                let up = |v: Usd| v + Usd::from_picodollars(extra);
                p.overrides.push(PriceOverride {
                    min_prompt_tokens: Some(min),
                    prices: PriceSet {
                        prompt: Some(up(p.prompt)),
                        completion: Some(up(p.completion)),
                        input_cache_read: p.input_cache_read.map(up),
                        input_cache_write: p.input_cache_write.map(up),
                        internal_reasoning: p.internal_reasoning.map(up),
                        ..PriceSet::default()
                    },
                    ..PriceOverride::default()
                });
            }
            p
        }
    }

    proptest! {
        #[test]
        fn fast_scaling_matches_usd_scale_ppm(
            v in any::<i64>(),
            small in -10_000_000_000_000_i64..10_000_000_000_000,
            ppm in 0_i64..=1_000_000,
        ) {
            for v in [Usd::from_picodollars(v), Usd::from_picodollars(small)] {
                prop_assert_eq!(scale_ppm(v, ppm), v.scale_ppm(ppm));
            }
        }

        #[test]
        fn cost_is_monotone_and_never_negative(
            parts in proptest::array::uniform8(0_u64..2_000_000),
            which in 0_usize..8,
            extra in 1_u64..1_000_000,
            pricing in pricing_strategy(),
            finish in proptest::sample::select(vec![None, Some("stop"), Some("length"), Some("error"), Some("")]),
            hhmm in 0_u16..2400,
        ) {
            let before = price(&Parts(parts).usage(), &pricing, finish, hhmm);
            let mut grown = parts;
            grown[which] += extra;
            let after = price(&Parts(grown).usage(), &pricing, finish, hhmm);
            prop_assert!(after.total >= before.total, "{before:?} -> {after:?}");
            for c in [before, after] {
                prop_assert!(c.total >= Usd::ZERO && c.upstream_inference_cost >= Usd::ZERO);
                prop_assert_eq!(c.total, sum(&c));
            }
        }
    }
}
