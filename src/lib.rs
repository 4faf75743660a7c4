//! # switchyard
//!
//! Composable [`tower::Layer`]s that turn any hyper or axum host into an OpenRouter-compatible LLM
//! gateway, and the ready-to-run gateway built from them.
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod autoroute;
pub mod catalog;

/// The boxed error type every fallible layer returns; concrete errors downcast from it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
