//! OpenAI Chat Completions ⇄ Anthropic Messages.
//!
//! [`request`] builds the Messages body, [`response`] and [`error`] read what comes back, and
//! [`StreamTranslator`] turns the Messages SSE events into `chat.completion.chunk`s. Reasoning
//! round-trips through `reasoning_details` items in the `anthropic-claude-v1` format: thinking
//! blocks with their signatures, redacted thinking as `reasoning.encrypted`.

mod request;
mod response;
mod stream;

pub use request::request;
pub use response::{error, response};
pub use stream::StreamTranslator;

/// The `reasoning_details[].format` of Anthropic thinking.
const REASONING_FORMAT: &str = "anthropic-claude-v1";
