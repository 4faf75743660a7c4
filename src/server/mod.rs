//! The ready-to-run gateway: the layers stacked in their order, mounted under `/api/v1/` and
//! `/v1/` with the catalogue endpoints, on axum; `/healthz` and `/metrics` at the root.
//!
//! ```no_run
//! use switchyard::server::Gateway;
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let gateway = Gateway::embedded_default();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! gateway.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```
//!
//! The module reads top-down: [`Gateway`] holds the configuration and the shared state
//! (`gateway.rs`), `stack.rs` assembles one completion stack from the layers, `routes.rs` mounts
//! the stacks and the catalogue, key and metrics endpoints on an axum router, and `serve.rs` runs
//! the accept loop and the graceful stop.

mod anthropic_api;
mod catalog_api;
mod dashboard_api;
mod direct;
mod drain;
mod gateway;
mod keys_api;
mod metrics_api;
mod repoll;
mod responses_api;
mod routes;
mod serve;
mod stack;

pub use gateway::Gateway;
pub use repoll::Repoll;
pub use serve::ServerLimits;
pub use stack::{CompletionService, UpstreamService};

use crate::error::GatewayError;
use axum::response::{IntoResponse, Response};

/// An error envelope as an axum response.
fn error(e: GatewayError) -> Response {
    e.into_response().into_response()
}
