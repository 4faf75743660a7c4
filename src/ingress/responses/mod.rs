//! OpenAI Responses in (`POST /responses`), over a chat completion service: what Codex CLI and
//! `client.responses.create` in the `openai` SDKs speak.
//!
//! [`ResponsesLayer`] turns each Responses request into a Chat Completions request
//! ([`to_chat`]), calls the service under it, and turns the answer back: a `chat.completion`
//! into a `response` object ([`to_response`]), a chunk stream into the Responses events, named
//! and numbered, an error into OpenAI's `{"error":{"message","type","param","code"}}`
//! (mid-stream: a `response.failed` event). Function tools map one to one; freeform `custom`
//! tools (Codex's `apply_patch`) go up as function tools taking one string and come back as
//! `custom_tool_call` items; OpenAI's hosted tools are a 400 naming them. Signed provider
//! reasoning rides in reasoning items' `encrypted_content` to the next turn.
//!
//! Responses can continue one another: unless the request says `"store": false`, the layer
//! keeps its conversation (input and output items) in a bounded in-memory [`ResponseStore`],
//! and a later request naming it in `previous_response_id` gets those items before its own
//! `input`. An id the store does not hold (never seen, evicted, another key's) is a 400
//! naming it. No OpenAI provider is sent the Responses body natively: every upstream gets the
//! chat request, so any model in the catalogue can serve a Responses client.
//!
//! # Contract
//!
//! | | |
//! |---|---|
//! | reads | the body (a Responses request; malformed or uncarriable → 400, over the limit → 413, each in OpenAI's error shape), `Authorization` (whose conversations `previous_response_id` may continue), `X-Generation-Id` on the answer (the response id; alone, a fresh one) |
//! | writes | a Chat Completions body, posted to `…/chat/completions` beside the `…/responses` path; extension [`Ingress::Responses`](crate::ledger::Ingress) |
//! | inner service | any OpenAI Chat Completions service: the gateway's stack, or your own |
//!
//! ```
//! use switchyard::ingress::responses::ResponsesLayer;
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
//! let svc = ServiceBuilder::new().layer(ResponsesLayer::new()).service(chat);
//! let req = http::Request::post("/v1/responses")
//!     .body(switchyard::body::full(r#"{"model": "openai/gpt-5", "input": "Hi",
//!         "instructions": "Be brief."}"#))?;
//! let resp = svc.oneshot(req).await?;
//! let bytes = http_body_util::BodyExt::collect(resp.into_body()).await?.to_bytes();
//! let response: serde_json::Value = serde_json::from_slice(&bytes)?;
//! assert_eq!(response["object"], "response");
//! assert!(response["id"].as_str().unwrap().starts_with("resp_"));
//! assert_eq!(response["output"][0]["content"][0]["text"], "Hello!");
//! assert_eq!(response["usage"]["total_tokens"], 11);
//! # Ok(()) }
//! ```

mod custom;
mod item;
mod layer;
mod request;
mod response;
mod sealed;
mod store;
mod stream;

#[cfg(feature = "server")]
pub(crate) use layer::openai_error;
pub use layer::{Responses, ResponsesLayer};
pub use request::{input_items, to_chat};
pub use response::{
    error_body, error_type, output_items, response_id, skeleton, to_response, usage,
};
pub use store::{DEFAULT_CAPACITY, DEFAULT_MAX_BYTES, ResponseStore};
