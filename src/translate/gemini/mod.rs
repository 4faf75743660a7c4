//! OpenAI Chat Completions ⇄ Google Gemini `generateContent`.
//!
//! [`request`] builds the body of `generateContent` / `streamGenerateContent?alt=sse` (the
//! layer builds the URL), [`response`] and [`error`] read what comes back, and
//! [`StreamTranslator`] turns the SSE chunks into `chat.completion.chunk`s. Thought signatures
//! round-trip as `reasoning.encrypted` details in the `google-gemini-v1` format whose `id` is
//! the tool call they were attached to; Gemini 3 rejects a tool-use turn without them.

mod request;
mod response;
mod schema;
mod stream;

pub use request::request;
pub use response::{error, response};
pub use stream::StreamTranslator;

/// The `reasoning_details[].format` of Gemini thoughts and thought signatures.
const REASONING_FORMAT: &str = "google-gemini-v1";
