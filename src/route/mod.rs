//! Route: from the requested model (and the `models` fallback list) plus the `provider`
//! preferences to the ordered [`Candidates`] the fallback layer will try (SPEC 3.3, 3.4, 3.7).
//!
//! 1. Look up each model of the chain (`model`, then `models`, without repeats) in the
//!    catalogue. An unknown model is a 400 naming it (`availability.code = model_not_found`).
//! 2. Hard filters, per endpoint, the first failing one recorded: provider enabled (key set);
//!    service-tier endpoints only when opted in (`:nitro` → priority, `:floor` → flex, body
//!    `service_tier`, or the tier's full tag in `order`/`only`); `only`; `ignore` (a base slug
//!    matches all of a provider's non-tier endpoints, a full tag one endpoint);
//!    `data_collection: deny` (providers that collect data); `zdr`; `quantizations` (none means
//!    `unknown`); `:free`; `max_price` (prompt/completion per million tokens, request, image);
//!    context length ≥ estimated prompt tokens + `max_tokens`; endpoint max completion tokens ≥
//!    `max_tokens`; `require_parameters` (every parameter the request uses is supported).
//! 3. Default preferences: for `tools`, `response_format` and `verbosity`, when some of a
//!    model's remaining endpoints support the parameter, keep only those.
//! 4. Nothing left in any model: 404 naming, per excluded endpoint, the constraint that
//!    excluded it; `availability = {code: no_endpoints | constraint_filtered |
//!    privacy_restricted, excluded_by, requested_models}`.
//! 5. Group per model (partition `model`, the default), or all models together with
//!    `sort.partition: "none"` or the legacy `route: "sort"`.
//! 6. Order each group: with `order`, the endpoints matching each listed slug in turn, then the
//!    rest in default order; else with a sort (`provider.sort`, else the variant's), strictly
//!    by it; else the sticky endpoint of the session first (when healthy), then the rest in
//!    default order (stable cheapest first, unstable last), which the balance layer replaces by
//!    its price-weighted draw.
//! 7. `preferred_min_throughput` / `preferred_max_latency`: endpoints whose measured
//!    percentiles miss move to the end of their group, order otherwise kept.
//! 8. `allow_fallbacks: false`: keep only the `order` matches, else only the first endpoint of
//!    each model (with `only`, the whole allow-list); [`Candidates::limit`] says so.
//!
//! # Contract
//!
//! | | |
//! |---|---|
//! | reads | `Arc<ChatRequest>` if present, else the body (parsed here: 400/413 naming the cause) |
//! | writes | [`Candidates`](crate::context::Candidates) always; [`Plan`] too when the balance layer may reorder it |
//! | inner service | any; a request no endpoint can serve is a 400/404 naming each endpoint's constraint |
//!
//! ```
//! use switchyard::catalog::{Catalog, Config};
//! use switchyard::context::{ApiKind, Candidates};
//! use switchyard::context::parse_request;
//! use switchyard::route::RouteLayer;
//! use std::{path::Path, sync::Arc};
//!
//! let config = Config::parse(Path::new("c.toml"), r#"
//!     [[providers]]
//!     slug = "a"
//!     base_url = "http://127.0.0.1:9"
//!     [[providers]]
//!     slug = "b"
//!     base_url = "http://127.0.0.1:9"
//!     [[models]]
//!     slug = "acme/tiny"
//!     [[models.endpoints]]
//!     provider = "a"
//!     model = "tiny"
//!     pricing = { prompt = 2, completion = 2 }
//!     [[models.endpoints]]
//!     provider = "b"
//!     model = "tiny"
//!     pricing = { prompt = 1, completion = 1 }
//! "#).unwrap();
//! let catalog = Arc::new(Catalog::from_config_with_env(&config, Path::new("."), &|_| None).unwrap());
//! let route = RouteLayer::new(catalog);
//! let body = br#"{"model":"acme/tiny","messages":[{"role":"user","content":"hi"}],
//!                 "provider":{"order":["a"],"allow_fallbacks":false}}"#;
//! let chat = parse_request(ApiKind::Chat, body, &Default::default()).unwrap();
//! let c: Candidates = route.plan(&chat).unwrap().candidates();
//! assert_eq!(c.targets[0].endpoint().tag, "a");
//! assert_eq!(c.limit, Some(1));
//! ```

mod filter;
mod layer;
mod plan;
mod router;
mod sort;
mod sticky;

pub use layer::{Route, RouteLayer};
pub use plan::Plan;
pub(crate) use sort::unstable;
pub use sort::{DEFAULT_COMPLETION_TOKENS, expected_cost};
pub use sticky::{SessionPins, Sticky};

use crate::catalog::Catalog;
use crate::context::{Candidates, ChatRequest};
use crate::error::GatewayError;
use router::Router;

/// Computes the candidates for a request with no health, sticky or per-model hints.
pub fn candidates(catalog: &Catalog, chat: &ChatRequest) -> Result<Candidates, GatewayError> {
    let router = Router {
        catalog,
        health: None,
        sticky: None,
    };
    router.plan(chat).map(|p| p.candidates())
}
