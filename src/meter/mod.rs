//! Cost metering: token usage in, money out.
//!
//! [`MeterLayer`] prices every served attempt (it sits inside the fallback layer, outside
//! translate):
//!
//! 1. Non-streaming: read `usage` from the JSON body (or estimate it from the text lengths, and
//!    mark it `estimated`), price it with the serving endpoint's prices, and write the full
//!    `usage` object (`cost`, `cost_details`, `is_byok`) into the response.
//! 2. Streaming: watch the events as they pass — never buffering — for usage and the finish
//!    reason; hold back the upstream's usage-only chunk and emit exactly one usage chunk with
//!    its cost right before `data: [DONE]`. The upstream was asked for usage
//!    (`stream_options.include_usage`); when it still sent none, the usage is estimated.
//! 3. Settle the request's credit hold to the actual cost and record one
//!    [`GenerationRecord`](crate::ledger::GenerationRecord) in the sink when the response ends
//!    — completed, failed mid-stream (billed under zero-completion insurance) or cancelled by
//!    the client.
//! 4. Optionally ([`MeterLayer::commit_before_answer`]) hold the end of a completed answer until
//!    the sink says the record is committed, so a killed process loses no row of what it
//!    answered (`durable.rs`).
//!
//! # Contract
//!
//! | | |
//! |---|---|
//! | reads (required) | a price: the [`Target`](crate::context::Target)'s endpoint, else [`MeterLayer::prices`]; neither → [`MissingInput`](crate::error::MissingInput), an unpriced model → 400 before any upstream call |
//! | reads (optional) | [`ChatRequest`](crate::context::ChatRequest) (else parsed from the body), [`RequestContext`](crate::context::RequestContext) (id, arrival, attempts, credit hold), [`CallerKey`](crate::context::CallerKey), [`Ingress`](crate::ledger::Ingress) (the API recorded; else `completions`) |
//! | writes | `usage` (with `cost`) into the JSON response or as the stream's one usage chunk; a [`GenerationRecord`](crate::ledger::GenerationRecord) to the sink, to [`MeterLayer::on_record`] and to the request's [`Tap`](crate::telemetry::Tap) if it has one; the credit hold settled |
//! | holds back | with [`MeterLayer::commit_before_answer`]: the JSON response, or the stream's usage chunk and `[DONE]`, until the sink's [`Commit`](crate::ledger::Commit) ticket resolves (at most the bound; a sink that gives none holds nothing) |
//! | inner service | any OpenAI-compatible upstream, streams in any chunking; a 200 that is not a JSON completion is a 502 |
//!
//! The pure building blocks the meter layer is made of:
//! - [`usage`]: [`Usage`](usage::Usage), read from an upstream `usage` object (or estimated
//!   from text lengths when the upstream sends none);
//! - [`cost`]: [`price`](cost::price), the cost formula of SPEC §8.2 with zero-completion
//!   insurance (§8.4) in integer picodollars, and [`usage_json`](report::usage_json), the
//!   OpenRouter `usage` object a response carries.
//!
//! ```
//! use switchyard::catalog::{Pricing, Usd};
//! use switchyard::meter::{cost::price, usage::Usage};
//!
//! let pricing = Pricing {
//!     prompt: Usd::from_per_million(2.5),
//!     completion: Usd::from_per_million(10.0),
//!     ..Pricing::default()
//! };
//! let usage = Usage { prompt_tokens: 1_000, completion_tokens: 100, ..Usage::default() };
//! let cost = price(&usage, &pricing, Some("stop"), 1200);
//! assert_eq!(cost.total.to_string(), "0.0035");
//! ```

mod accounting;
pub mod cost;
mod durable;
mod layer;
mod prices;
pub mod report;
mod stream;
pub mod usage;

pub use layer::{Meter, MeterLayer};
pub use prices::Prices;
