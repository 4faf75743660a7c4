//! Ingress: the client APIs other than OpenAI Chat Completions, each a layer in front of a chat
//! completion service (the gateway's own stack, or any OpenAI-compatible one).
//!
//! Each layer turns its API's request into a Chat Completions request, calls the service under
//! it, and turns the answer (JSON, SSE stream or error) back into its API's shape. Routing,
//! balancing, fallback, metering and translation below it stay the same for every API. Each
//! marks the request with its [`Ingress`](crate::ledger::Ingress), so the ledger records which
//! API a generation came through.

pub mod anthropic;
mod chat_side;
mod remap;
pub mod responses;
