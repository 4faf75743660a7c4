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
//! ```
//! use switchyard::catalog::{Catalog, Config};
//! use switchyard::ext::{ApiKind, Candidates};
//! use switchyard::parse::parse_request;
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
//! let c: Candidates = route.plan(&chat, None).unwrap().candidates();
//! assert_eq!(c.targets[0].endpoint().tag, "a");
//! assert_eq!(c.limit, Some(1));
//! ```

mod filter;
pub mod future;
mod plan;
mod sort;
mod sticky;

pub use plan::Plan;
pub(crate) use sort::unstable;
pub use sort::{DEFAULT_COMPLETION_TOKENS, expected_cost};
pub use sticky::Sticky;

use crate::BoxError;
use crate::catalog::Catalog;
use crate::error::GatewayError;
use crate::ext::{Candidates, ChatRequest, SortPref, Target};
use crate::health::Health;
use filter::{Exclusion, Filters};
use future::ResponseFuture;
use http::Request;
use plan::{Group, Keep};
use serde_json::{Value, json};
use sort::{Soft, SortKey};
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Routing hints of one model of the chain, from its own variant suffix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelHints {
    /// `throughput` (`:nitro`), `price` (`:floor`), `exacto`.
    pub sort: Option<String>,
    /// `:free` on a model without a separate `…:free` entry: only zero-priced endpoints.
    pub free_only: bool,
}

impl ModelHints {
    /// The service tier the variant opts into: `:nitro` → priority, `:floor` → flex.
    pub fn tier(&self) -> Option<&'static str> {
        match self.sort.as_deref() {
            Some("throughput") => Some("priority"),
            Some("price") => Some("flex"),
            _ => None,
        }
    }
}

/// Request extension set by the alias layer: hints per resolved model slug, so each entry of
/// `models[]` keeps its own suffix. Without it, `ChatRequest::hints` applies to every model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainHints(pub Vec<(String, ModelHints)>);

/// Applies [`Route`] over a catalogue snapshot.
#[derive(Debug, Clone)]
pub struct RouteLayer {
    catalog: Arc<Catalog>,
    health: Option<Arc<Health>>,
    sticky: Option<Arc<Sticky>>,
}

impl RouteLayer {
    /// Routes over `catalog`.
    pub fn new(catalog: Arc<Catalog>) -> Self {
        RouteLayer {
            catalog,
            health: None,
            sticky: None,
        }
    }

    /// Reads speed and outages from `health` (sorts, soft preferences, default order).
    pub fn health(mut self, health: Arc<Health>) -> Self {
        self.health = Some(health);
        self
    }

    /// Puts each session's remembered endpoint first.
    pub fn sticky(mut self, sticky: Arc<Sticky>) -> Self {
        self.sticky = Some(sticky);
        self
    }

    /// Steps 1–6 of the [module docs](self) for one request.
    pub fn plan(
        &self,
        chat: &ChatRequest,
        hints: Option<&ChainHints>,
    ) -> Result<Plan, GatewayError> {
        Router {
            catalog: &self.catalog,
            health: self.health.as_ref(),
            sticky: self.sticky.as_deref(),
        }
        .plan(chat, hints)
    }
}

/// The borrowed state of one routing decision.
struct Router<'a> {
    catalog: &'a Catalog,
    health: Option<&'a Arc<Health>>,
    sticky: Option<&'a Sticky>,
}

impl Router<'_> {
    fn plan(&self, chat: &ChatRequest, hints: Option<&ChainHints>) -> Result<Plan, GatewayError> {
        let prefs = &chat.provider;
        let filters = Filters::new(chat);
        let health = self.health.map(|h| &**h);
        let mut groups: Vec<(Vec<Target>, Option<SortKey>)> = Vec::new();
        let mut excluded: Vec<Exclusion> = Vec::new();
        for slug in chat.model_chain() {
            let model = self.catalog.model(slug).ok_or_else(|| {
                let mut e = GatewayError::bad_request(format!("`{slug}` is not a valid model ID"));
                e.availability =
                    Some(json!({"code": "model_not_found", "requested_models": [slug]}));
                e
            })?;
            let own = hints.and_then(|h| h.0.iter().find(|(s, _)| s == slug).map(|(_, h)| h));
            let request_wide;
            let mh = match own {
                Some(h) => h,
                None => {
                    request_wide = ModelHints {
                        sort: chat.hints.sort.clone(),
                        free_only: chat.hints.free_only,
                    };
                    &request_wide
                }
            };
            let mut group = Vec::with_capacity(model.endpoints.len());
            for (i, e) in model.endpoints.iter().enumerate() {
                let target = Target {
                    model: model.clone(),
                    endpoint: i,
                };
                match filters.check(model, e, mh) {
                    Ok(()) => group.push(target),
                    Err((code, detail)) => excluded.push(Exclusion {
                        key: target.key(),
                        code,
                        detail,
                    }),
                }
            }
            filters.prefer_supported(&mut group);
            // An explicit price/throughput/latency sort wins over a variant's.
            let key = prefs
                .sort
                .as_ref()
                .and_then(SortPref::by)
                .and_then(SortKey::parse);
            groups.push((
                group,
                key.or_else(|| mh.sort.as_deref().and_then(SortKey::parse)),
            ));
        }
        if groups.iter().all(|(g, _)| g.is_empty()) {
            return Err(filter::no_endpoints(chat, &excluded));
        }
        let partition_none = match &prefs.sort {
            Some(SortPref::Object {
                partition: Some(p), ..
            }) => p == "none",
            _ => chat.body.get("route").and_then(Value::as_str) == Some("sort"),
        };
        if partition_none && groups.len() > 1 {
            let key = groups[0].1;
            let all = groups.drain(..).flat_map(|(g, _)| g).collect();
            groups.push((all, key));
        }
        let order = prefs.order.as_ref().filter(|o| !o.is_empty());
        let groups: Vec<Group> = groups
            .into_iter()
            .map(|(mut rest, key)| {
                let mut head = Vec::new();
                let mut balance = false;
                if let Some(order) = order {
                    for slug in order {
                        let (hit, miss): (Vec<_>, Vec<_>) = rest
                            .into_iter()
                            .partition(|t: &Target| t.endpoint().matches_slug(slug));
                        head.extend(hit);
                        rest = miss;
                    }
                    sort::default_order(&mut rest, chat, health);
                } else if let Some(key) = key {
                    sort::sort_by(&mut rest, key, chat, health);
                } else {
                    balance = true;
                    if let Some(pin) = self.pinned(chat, &rest) {
                        head.push(rest.remove(pin));
                    }
                    sort::default_order(&mut rest, chat, health);
                }
                Group {
                    head,
                    rest,
                    balance,
                }
            })
            .collect();
        let keep = match (prefs.allow_fallbacks(), order, &prefs.only) {
            (true, _, _) => Keep::All,
            (false, Some(_), _) => Keep::Head,
            (false, None, Some(_)) => Keep::Listed,
            (false, None, None) => Keep::First,
        };
        if keep == Keep::Head && groups.iter().all(|g| g.head.is_empty()) {
            let excluded: Vec<Exclusion> = groups
                .iter()
                .flat_map(|g| &g.rest)
                .map(|t| Exclusion {
                    key: t.key(),
                    code: "allowed_providers",
                    detail: "not in provider.order (allow_fallbacks: false)".into(),
                })
                .collect();
            return Err(filter::no_endpoints(chat, &excluded));
        }
        Ok(Plan {
            groups,
            soft: Soft::from_chat(chat),
            keep,
            strategy: if chat.models.is_empty() {
                "direct"
            } else {
                "fallback"
            },
            health: self.health.cloned(),
        })
    }

    /// The index in `rest` of the session's sticky endpoint, when it is there and healthy.
    fn pinned(&self, chat: &ChatRequest, rest: &[Target]) -> Option<usize> {
        let (sticky, session) = (self.sticky?, chat.session_id.as_deref()?);
        let healthy = |k: &str| {
            self.health
                .is_none_or(|h| !h.is_unstable(k) && !h.cooling_down(k))
        };
        for slug in chat.model_chain() {
            if let Some(key) = sticky.get(session, slug).filter(|k| healthy(k)) {
                if let Some(i) = rest.iter().position(|t| sort::with_key(t, |k| k == key)) {
                    return Some(i);
                }
            }
        }
        None
    }
}

/// Computes the candidates for a request with no health, sticky or per-model hints.
pub fn candidates(catalog: &Catalog, chat: &ChatRequest) -> Result<Candidates, GatewayError> {
    let router = Router {
        catalog,
        health: None,
        sticky: None,
    };
    router.plan(chat, None).map(|p| p.candidates())
}

impl<S> Layer<S> for RouteLayer {
    type Service = Route<S>;
    fn layer(&self, inner: S) -> Route<S> {
        Route {
            inner,
            layer: self.clone(),
        }
    }
}

/// The route service; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Route<S> {
    inner: S,
    layer: RouteLayer,
}

impl<S, B> Service<Request<B>> for Route<S>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let Some(chat) = req.extensions().get::<Arc<ChatRequest>>().cloned() else {
            return ResponseFuture::refused(
                "route: no parsed ChatRequest (is the parse layer missing?)",
            );
        };
        match self.layer.plan(&chat, req.extensions().get::<ChainHints>()) {
            Ok(plan) => {
                req.extensions_mut().insert(plan.candidates());
                req.extensions_mut().insert(plan);
                ResponseFuture::called(self.inner.call(req))
            }
            Err(e) => ResponseFuture::refused(e),
        }
    }
}
