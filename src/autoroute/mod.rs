//! The Auto Router (`openrouter/auto`): pick a cheap or a strong model per prompt.
//!
//! * [`scorer`]: a [`Scorer`](scorer::Scorer) maps a prompt to P(the cheap tier is not good
//!   enough). The default is a static-embedding + hand-feature logistic head that runs in tens
//!   of microseconds on one CPU core with compiled-in weights.
//! * [`calibrate`]: the cost knob, a target share of strong-tier calls, becomes a score
//!   threshold through quantiles of training scores.
//! * [`select`]: the pure choice function (allowed/excluded globs, `cost_tier`, caller
//!   constraints), conversation stickiness and one-tier escalation.
//! * [`train`] and [`eval`]: the logistic trainer and the RouteLLM metrics used by
//!   `cargo run --release --example autoroute_eval`, which regenerates the shipped weights and
//!   `docs/autoroute.md`.
//!
//! How good is it? On RouteLLM's evaluation labels (GPT-4 vs Mixtral; `docs/autoroute.md`), the
//! scorers here do not beat routing by prompt length on MMLU or GSM8K when the test benchmark is
//! held out, and stay below RouteLLM's best published routers; the embedding's topic signal helps
//! on MT-Bench for some settings. Treat the shipped weights as a cheap, calibrated starting point
//! and retrain on labels from your own traffic (the example reads the same JSON Lines schema).
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
pub mod eval;
mod layer;
pub mod scorer;
pub mod select;
pub mod train;

pub use layer::{AUTO_SLUGS, AutoRoute, AutoRouteLayer, DEFAULT_CANDIDATES};
