//! Cost metering: token usage in, money out.
//!
//! The pure building blocks the meter layer is made of:
//! - [`usage`]: [`Usage`](usage::Usage), read from an upstream `usage` object (or estimated
//!   from text lengths when the upstream sends none);
//! - [`cost`]: [`price`](cost::price), the cost formula of SPEC §8.2 with zero-completion
//!   insurance (§8.4) in integer picodollars, and [`usage_json`](cost::usage_json), the
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

pub mod cost;
pub mod usage;
