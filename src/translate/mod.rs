//! Translation between the OpenAI Chat Completions schema clients speak and the native APIs
//! of upstreams that do not speak it.
//!
//! Pure, synchronous functions over `serde_json::Value`: no I/O, no tower. Each dialect module
//! has the same four entry points — `request`, `response`, `error` and a `StreamTranslator`
//! for SSE — so the translate layer can treat them alike.

pub mod anthropic;
mod common;
pub mod gemini;

pub use common::{FinishReason, TranslateError, UpstreamError};
