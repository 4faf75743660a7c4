//! OpenAI's Responses API on the gateway: `POST /responses`, the completion stack behind
//! [`ResponsesLayer`], with one [`ResponseStore`] for every mount of the route (`/api/v1` and
//! `/v1` continue each other's responses).

use super::Gateway;
use super::stack::CompletionService;
use crate::BoxError;
use crate::body::Body;
use crate::context::ApiKind;
use crate::error::GatewayError;
use crate::ingress::responses::{ResponseStore, ResponsesLayer, openai_error};
use futures_util::future::BoxFuture;
use std::convert::Infallible;
use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceExt};

impl Gateway {
    /// The Responses endpoint: [`ResponsesLayer`] over the chat completion stack, keeping
    /// `[server] responses_store` responses (at most `responses_store_bytes`).
    pub fn responses_service(&self) -> CompletionService {
        let server = &self.config.server;
        let store = ResponseStore::new(server.responses_store, server.responses_store_bytes);
        let stack = self
            .completion_service(ApiKind::Chat)
            .map_request(|req: http::Request<Body>| req.map(axum::body::Body::new));
        let responses = ResponsesLayer::new()
            .max_body_bytes(server.max_body_bytes)
            .store(store)
            .layer(stack);
        // The router mounts services that cannot fail: a failure is an OpenAI error answer.
        BoxCloneSyncService::new(tower::service_fn(
            move |req: http::Request<axum::body::Body>| {
                // Boxed in a plain call, not awaited generically: see `body::call_boxed`.
                let answer: BoxFuture<'static, Result<http::Response<Body>, BoxError>> =
                    Box::pin(responses.clone().oneshot(req));
                async move {
                    Ok::<_, Infallible>(match answer.await {
                        Ok(resp) => resp,
                        Err(e) => openai_error(&GatewayError::from_box(&e)),
                    })
                }
            },
        ))
    }
}
