//! # switchyard
//!
//! Composable [`tower::Layer`]s that turn any hyper or axum host into an OpenRouter-compatible LLM
//! gateway, and the ready-to-run gateway built from them ([`server::Gateway`]).
//!
//! The layers, outermost first (see `docs/ordering.md` for why in this order):
//!
//! | layer | does |
//! |---|---|
//! | [`keys::AuthLayer`] | gateway keys (401/403) |
//! | [`parse::ParseLayer`] | body limit, JSON → [`context::ChatRequest`], error envelope |
//! | [`telemetry::TelemetryLayer`] | request span, trace id header, request log line, dashboard row |
//! | [`alias::AliasLayer`] | aliases, `~author/family-latest`, `:nitro`/`:floor`/`:free` |
//! | [`route::RouteLayer`] | model + `models` + `provider` preferences → candidates |
//! | [`balance::BalanceLayer`] | default order: 1/price² first pick among stable endpoints |
//! | [`keys::CreditLayer`] | reserve the worst-case cost on the key (402) |
//! | [`fallback::FallbackLayer`] | try candidates; streams commit on the first content event |
//! | [`meter::MeterLayer`] | usage → cost inline, one usage chunk, ledger, credits settled |
//! | [`translate::TranslateLayer`] | OpenAI / Anthropic / Gemini wire formats |
//! | [`upstream::Upstream`] | pooled HTTPS client (rustls), provider keys, timeouts |
//!
//! What layers hand each other is [`context`] (each piece with public constructors); a layer
//! missing an input returns [`error::MissingInput`]. Every layer also works alone: see
//! [`fallback::over_base_urls`], [`meter::Prices`], [`alias::AliasLayer::table_only`] and
//! [`catalog::Catalog::builder`].
//!
//! Money is integer fixed-point ([`catalog::Usd`], picodollars) until it is written into JSON.
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

/// The boxed error type every fallible layer returns; concrete errors downcast from it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

pub mod alias;
pub mod autoroute;
pub mod balance;
pub mod body;
pub mod catalog;
pub mod classify;
#[cfg(feature = "cli")]
pub mod cli;
pub mod context;
mod decimal;
mod deferred_json;
#[cfg(feature = "cli")]
pub mod demo;
pub mod error;
pub mod fallback;
pub mod future;
pub mod health;
pub mod ingress;
pub(crate) mod json_scan;
pub mod keys;
pub mod ledger;
pub mod meter;
pub mod metrics;
#[doc = include_str!("../docs/ordering.md")]
pub mod ordering {}
pub mod overhead;
pub mod parse;
pub mod route;
#[cfg(feature = "server")]
pub mod server;
pub mod sse;
pub mod state;
pub mod telemetry;
#[cfg(feature = "test-util")]
pub mod test_util;
pub mod translate;
pub mod upstream;

pub use body::Body;
