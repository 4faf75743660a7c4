//! OpenAI Chat Completions ⇄ Google Gemini `generateContent`.
//!
//! [`request`] builds the body of `generateContent` / `streamGenerateContent?alt=sse` (the
//! layer builds the URL), [`response`] and [`error`] read what comes back, and
//! [`StreamTranslator`] turns the SSE chunks into `chat.completion.chunk`s. Thought signatures
//! round-trip as `reasoning.encrypted` details in the `google-gemini-v1` format whose `id` is
//! the tool call they were attached to; Gemini 3 rejects a tool-use turn without them.
//!
//! ```
//! use serde_json::json;
//! use switchyard::translate::gemini;
//!
//! let body = br#"{"candidates":[{"content":{"role":"model","parts":[{"functionCall":
//!     {"name":"lookup","args":{"q":"x"}},"thoughtSignature":"c2ln"}]},"finishReason":"STOP"}],
//!     "responseId":"r1","modelVersion":"gemini-3-pro-preview"}"#;
//! let reply = gemini::response(body).unwrap();
//! let message = &reply["choices"][0]["message"];
//! assert_eq!(reply["choices"][0]["finish_reason"], "tool_calls");
//!
//! // Sent back on the next turn, the signature returns to the call it came with.
//! let next = json!({"messages": [{"role": "user", "content": "go"}, message,
//!                                {"role": "tool", "tool_call_id": "call_r1_0", "content": "{}"}]});
//! let req = gemini::request(next.as_object().unwrap(), "gemini-3-pro-preview").unwrap();
//! assert_eq!(req["contents"][1]["parts"][0]["thoughtSignature"], "c2ln");
//! ```

mod request;
mod response;
mod schema;
mod stream;

pub use request::request;
pub use response::{error, response};
pub use stream::StreamTranslator;

/// The `reasoning_details[].format` of Gemini thoughts and thought signatures.
const REASONING_FORMAT: &str = "google-gemini-v1";
