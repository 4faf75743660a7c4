//! Gateway API keys.
pub mod period;
