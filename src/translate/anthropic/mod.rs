//! OpenAI Chat Completions ⇄ Anthropic Messages.
//!
//! [`request`] builds the Messages body, [`response`] and [`error`] read what comes back, and
//! [`StreamTranslator`] turns the Messages SSE events into `chat.completion.chunk`s. Reasoning
//! round-trips through `reasoning_details` items in the `anthropic-claude-v1` format: thinking
//! blocks with their signatures, redacted thinking as `reasoning.encrypted`.
//!
//! ```
//! use serde_json::json;
//! use switchyard::translate::anthropic;
//!
//! let openai = json!({"messages": [{"role": "system", "content": "Be brief."},
//!                                  {"role": "user", "content": "Hi"}],
//!                     "reasoning": {"effort": "high"}, "max_tokens": 10000});
//! let body = anthropic::request(openai.as_object().unwrap(), "claude-sonnet-4-5", 4096).unwrap();
//! assert_eq!(body["system"], "Be brief.");
//! assert_eq!(body["thinking"], json!({"type": "enabled", "budget_tokens": 8000}));
//!
//! let mut stream = anthropic::StreamTranslator::new();
//! let mut chunks = Vec::new();
//! stream.on_event(Some("message_start"), r#"{"type":"message_start","message":{"id":"msg_1",
//!     "model":"claude-sonnet-4-5","usage":{"input_tokens":5,"output_tokens":1}}}"#, &mut chunks).unwrap();
//! assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
//! ```

mod request;
mod response;
mod stream;

pub use request::request;
pub use response::{error, response};
pub use stream::StreamTranslator;

/// The `reasoning_details[].format` of Anthropic thinking.
const REASONING_FORMAT: &str = "anthropic-claude-v1";
