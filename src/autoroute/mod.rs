//! The Auto Router (`openrouter/auto`): pick a cheap or a strong model per prompt.
//!
//! * [`scorer`]: a [`Scorer`](scorer::Scorer) maps a prompt to P(the cheap tier is not good
//!   enough). The default reads the 100 most similar of 15,416 labelled prompts (static
//!   embeddings, compiled in) and the prompt's length relative to them, in tens of microseconds
//!   on one CPU core; a linear head, a hand-feature heuristic and prompt length are the others.
//! * [`calibrate`]: the cost knob, a target share of strong-tier calls, becomes a score
//!   threshold through quantiles of training scores.
//! * [`select`]: the pure choice function (allowed/excluded globs, `cost_tier`, caller
//!   constraints), conversation stickiness and one-tier escalation.
//! * [`train`] and [`eval`]: the logistic trainer and the RouteLLM metrics used by
//!   `cargo run --release --example autoroute_eval`, which regenerates the shipped bank, weights and
//!   `docs/autoroute.md`.
//!
//! How good is it? On RouteLLM's evaluation labels (GPT-4 vs Mixtral; `docs/autoroute.md`),
//! with the test benchmark held out of the bank, the default reaches APGR 0.73 on MT-Bench,
//! 0.61 on MMLU and 0.58 on GSM8K, against RouteLLM's best published 0.80 / 0.60 / 0.62 and
//! prompt length's 0.55 / 0.59 / 0.60. Labels from your own traffic go straight into the bank
//! (`KnnBank::build` over the same JSON Lines schema the example reads), no retraining needed.
//!
//! ```
//! use switchyard::autoroute::select::{AutoOptions, AutoRouter, Candidate};
//!
//! let router = AutoRouter::with_default_scorer(vec![
//!     Candidate::new("mistralai/mixtral-8x7b-instruct", 0),
//!     Candidate::new("openai/gpt-4o", 1),
//! ]);
//! let opts = AutoOptions { excluded_models: vec!["openai/*".into()], ..Default::default() };
//! let choice = router.choose("hi", &opts, &|_slug: &str| true)?;
//! assert_eq!(choice.slug, "mistralai/mixtral-8x7b-instruct");
//! assert!((0.0..=1.0).contains(&choice.score));
//! # Ok::<(), switchyard::autoroute::select::NoCandidate>(())
//! ```

pub mod calibrate;
#[cfg(feature = "autoroute-train")]
pub mod eval;
mod layer;
pub mod scorer;
pub mod select;
#[cfg(feature = "autoroute-train")]
pub mod train;

pub use layer::{AUTO_SLUGS, AutoRoute, AutoRouteLayer, DEFAULT_CANDIDATES};
