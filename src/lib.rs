//! # switchyard
//!
//! Composable [`tower::Layer`]s that turn any hyper or axum host into an OpenRouter-compatible LLM
//! gateway, and the ready-to-run gateway built from them.
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod catalog;

/// The boxed error type every fallible layer returns; concrete errors downcast from it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
pub mod body;
pub mod classify;
pub mod error;
pub mod ext;
pub mod parse;
pub mod sse;
pub mod translate;
pub mod upstream;

pub use body::Body;
pub mod fallback;
pub mod health;
pub mod overhead;
pub mod route;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "test-util")]
pub mod test_util;
