//! OpenAI's Responses API on the gateway: `POST /responses`, the completion stack behind
//! [`ResponsesLayer`], with one [`ResponseStore`] for every mount of the route (`/api/v1` and
//! `/v1` continue each other's responses), and OpenAI's bare model names (`gpt-5`) found
//! under `openai/` when the catalogue has them only there.

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
        let names = {
            let gw = self.clone();
            move |name: &str| gw.responses_slug(name)
        };
        let responses = ResponsesLayer::new()
            .max_body_bytes(server.max_body_bytes)
            .store(store)
            .model_names(names)
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

    /// The slug an OpenAI model name stands for when the catalogue knows it only under
    /// `openai/` (Codex's default `gpt-5-codex`, say, as `openai/gpt-5-codex`). `None` keeps
    /// the name as sent: a slug, an alias, or a name routing then reports unknown.
    fn responses_slug(&self, name: &str) -> Option<String> {
        let known = |n: &str| {
            let base = n.split_once(':').map_or(n, |(b, _)| b);
            self.catalog.model(n).is_some()
                || self.catalog.model(base).is_some()
                || self.aliases.current().get(n).is_some()
        };
        if name.contains('/') || known(name) {
            return None;
        }
        let slug = format!("openai/{name}");
        known(&slug).then_some(slug)
    }
}
