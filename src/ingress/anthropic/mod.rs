//! Anthropic Messages in (`POST /messages`), over a chat completion service: what Claude Code
//! and the `anthropic` SDKs speak.
//!
//! [`MessagesLayer`] turns each Messages request into a Chat Completions request
//! ([`to_chat`]), calls the service under it, and turns the answer back: a `chat.completion`
//! into a `message` ([`to_message`]), a chunk stream into Anthropic's events in their exact
//! order, an error into `{"type":"error","error":{"type","message"}}` (mid-stream: an `error`
//! event). `x-api-key` is accepted as the gateway key, as a Bearer token would be.
//!
//! The client's own body also travels with the request as a
//! [`NativeRequest`](crate::context::NativeRequest): when the attempt's endpoint is an
//! Anthropic provider, the translate layer sends it natively — `cache_control` anywhere,
//! thinking settings, `anthropic-beta` and `anthropic-version` forwarded — instead of the
//! translated chat body.
//!
//! # Contract
//!
//! | | |
//! |---|---|
//! | reads | the body (a Messages request; malformed → 400, over the limit → 413, each in Anthropic's error shape), `x-api-key`, `anthropic-version`, `anthropic-beta` |
//! | writes | a Chat Completions body; the path `…/messages` as `…/chat/completions` (query dropped); `Authorization: Bearer` from `x-api-key` when absent; extensions [`Ingress::Messages`](crate::ledger::Ingress), [`NativeRequest`](crate::context::NativeRequest) |
//! | inner service | any OpenAI Chat Completions service: the gateway's stack, or your own |
//!
//! ```
//! use switchyard::ingress::anthropic::MessagesLayer;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), switchyard::BoxError> {
//! // Any chat completion service: here one that always answers "Hello!".
//! let chat = service_fn(|_req: http::Request<switchyard::body::Body>| async {
//!     let answer = serde_json::json!({"id": "gen-1", "object": "chat.completion",
//!         "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"},
//!                      "finish_reason": "stop"}],
//!         "usage": {"prompt_tokens": 9, "completion_tokens": 2, "cost": 0.00001}});
//!     Ok::<_, switchyard::BoxError>(http::Response::builder()
//!         .header("content-type", "application/json")
//!         .body(switchyard::body::full(answer.to_string()))?)
//! });
//! let svc = ServiceBuilder::new().layer(MessagesLayer::new()).service(chat);
//! let req = http::Request::post("/v1/messages")
//!     .header("x-api-key", "sk-test")
//!     .body(switchyard::body::full(r#"{"model": "claude-sonnet-4-5", "max_tokens": 64,
//!         "messages": [{"role": "user", "content": "Hi"}]}"#))?;
//! let resp = svc.oneshot(req).await?;
//! let bytes = http_body_util::BodyExt::collect(resp.into_body()).await?.to_bytes();
//! let message: serde_json::Value = serde_json::from_slice(&bytes)?;
//! assert_eq!(message["type"], "message");
//! assert_eq!(message["content"][0]["text"], "Hello!");
//! assert_eq!(message["usage"]["input_tokens"], 9);
//! # Ok(()) }
//! ```

mod layer;
mod names;
mod request;
mod response;
mod stream;

#[cfg(feature = "server")]
pub(crate) use layer::anthropic_error;
pub use layer::{Messages, MessagesLayer, ModelNames};

pub use names::candidates as model_name_candidates;
pub use request::to_chat;
pub use response::{error_body, error_type, stop_reason, to_message, usage};
