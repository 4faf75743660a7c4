//! Balance: the default provider order when the request sets neither `provider.order` nor a
//! sort (SPEC 3.1), applied to the [`Plan`] the route layer left in the request extensions.
//!
//! For each group (a model's endpoints; all models' with partition `none`), after the sticky
//! pin if there is one:
//!
//! 1. Split the endpoints into *stable* and *unstable* ones by
//!    [`Health::is_unstable`] (the outage rule: see [`crate::health`]).
//! 2. Draw the first endpoint among the stable ones at random, weighted by [`Weigh`]; the
//!    default [`InverseSquare`] weight is `1 / price²`, where price is the request's expected
//!    cost on the endpoint ([`expected_cost`]). Free endpoints share the draw among
//!    themselves.
//! 3. The other stable endpoints follow, cheapest first; then the unstable ones, cheapest first.
//! 4. Rebuild the [`Candidates`] (soft preferences and `allow_fallbacks` re-applied).
//!
//! Randomness is per request without a shared lock: each request seeds its own small generator
//! from a base seed and an atomic counter, so [`BalanceLayer::from_seed`] gives a reproducible
//! sequence.
//!
//! # Contract
//!
//! | | |
//! |---|---|
//! | reads | [`Plan`] and `Arc<ChatRequest>` (required together); without a plan, `Candidates` the route layer left final (its order was asked for) pass as they are; neither → [`MissingInput`] |
//! | writes | [`Candidates`], rebuilt from the reordered plan |
//! | inner service | any |
//!
//! ```
//! use switchyard::balance::BalanceLayer;
//! use switchyard::health::Health;
//! use std::sync::Arc;
//! let health = Arc::new(Health::new());
//! // Default weighting, shared health registry.
//! let layer = BalanceLayer::new().health(health.clone());
//! // Deterministic, and weighted by 1/price instead of 1/price².
//! let custom = BalanceLayer::from_seed(7).health(health).weigh(
//!     |t: &switchyard::context::Target, chat: &switchyard::context::ChatRequest| {
//!         1.0 / switchyard::route::expected_cost(t.endpoint(), chat).as_f64().max(1e-12)
//!     },
//! );
//! # let _ = (layer, custom);
//! ```

use crate::BoxError;
use crate::context::{Candidates, ChatRequest, Target};
use crate::error::MissingInput;
use crate::future::ResponseFuture;
use crate::health::Health;
use crate::route::{Plan, expected_cost};
use http::Request;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// How strongly an endpoint is favoured in the first-pick draw.
pub trait Weigh: Send + Sync + 'static {
    /// A non-negative weight; `f64::INFINITY` means "always among the favourites".
    fn weight(&self, target: &Target, chat: &ChatRequest) -> f64;
}

impl<F> Weigh for F
where
    F: Fn(&Target, &ChatRequest) -> f64 + Send + Sync + 'static,
{
    fn weight(&self, target: &Target, chat: &ChatRequest) -> f64 {
        self(target, chat)
    }
}

/// `1 / price²`, price = the request's expected cost in USD (free endpoints: infinite).
#[derive(Debug, Clone, Copy, Default)]
pub struct InverseSquare;

impl Weigh for InverseSquare {
    fn weight(&self, target: &Target, chat: &ChatRequest) -> f64 {
        let price = expected_cost(target.endpoint(), chat).as_f64();
        if price <= 0.0 {
            f64::INFINITY
        } else {
            1.0 / (price * price)
        }
    }
}

/// Configures [`Balance`].
#[derive(Clone)]
pub struct BalanceLayer {
    health: Arc<Health>,
    weigh: Arc<dyn Weigh>,
    seed: u64,
    counter: Arc<AtomicU64>,
}

impl fmt::Debug for BalanceLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BalanceLayer")
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

impl Default for BalanceLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl BalanceLayer {
    /// Inverse-square weighting, a random seed, and a private health registry (set a shared one
    /// with [`health`](Self::health)).
    pub fn new() -> Self {
        Self::from_seed(rand::rng().random())
    }

    /// As [`new`](Self::new) with a fixed seed: the same requests give the same draws.
    pub fn from_seed(seed: u64) -> Self {
        BalanceLayer {
            health: Arc::new(Health::new()),
            weigh: Arc::new(InverseSquare),
            seed,
            counter: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Reads outages from `health` (share it with the fallback layer, which records outcomes).
    pub fn health(mut self, health: Arc<Health>) -> Self {
        self.health = health;
        self
    }

    /// Replaces the first-pick weight.
    pub fn weigh(mut self, weigh: impl Weigh) -> Self {
        self.weigh = Arc::new(weigh);
        self
    }

    /// A fresh generator for one request.
    fn rng(&self) -> SmallRng {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        SmallRng::seed_from_u64(self.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// Steps 1–3 of the [module docs](self) on every group of a balanced plan; returns false
    /// (and leaves the plan alone) when the default policy does not apply.
    pub fn reorder(&self, plan: &mut Plan, chat: &ChatRequest) -> bool {
        if !plan.balanced() {
            return false;
        }
        let mut rng = self.rng();
        for rest in plan.rests_mut() {
            order(rest, chat, &self.health, self.weigh.as_ref(), &mut rng);
        }
        true
    }
}

/// Orders one group's endpoints: a weighted first pick among the stable ones, the other stable
/// ones cheapest first, then the unstable ones cheapest first.
pub fn order<R: Rng + ?Sized>(
    targets: &mut Vec<Target>,
    chat: &ChatRequest,
    health: &Health,
    weigh: &dyn Weigh,
    rng: &mut R,
) {
    if targets.len() < 2 {
        return;
    }
    let mut stable: Vec<(crate::catalog::Usd, Target)> = Vec::with_capacity(targets.len());
    let mut unstable = Vec::new();
    for t in targets.drain(..) {
        let cost = expected_cost(t.endpoint(), chat);
        if crate::route::unstable(Some(health), &t) {
            unstable.push((cost, t));
        } else {
            stable.push((cost, t));
        }
    }
    let first = pick(&stable, chat, weigh, rng).map(|i| stable.remove(i).1);
    stable.sort_by_key(|(c, _)| *c);
    unstable.sort_by_key(|(c, _)| *c);
    targets.extend(first);
    targets.extend(stable.into_iter().chain(unstable).map(|(_, t)| t));
}

/// The index of the weighted random pick, `None` when `stable` is empty.
fn pick<R: Rng + ?Sized, C>(
    stable: &[(C, Target)],
    chat: &ChatRequest,
    weigh: &dyn Weigh,
    rng: &mut R,
) -> Option<usize> {
    if stable.len() < 2 {
        return (!stable.is_empty()).then_some(0);
    }
    let weights: Vec<f64> = stable
        .iter()
        .map(|(_, t)| {
            let w = weigh.weight(t, chat);
            if w.is_nan() || w < 0.0 { 0.0 } else { w }
        })
        .collect();
    let infinite = weights.iter().filter(|w| w.is_infinite()).count();
    if infinite > 0 {
        let k = rng.random_range(0..infinite);
        return weights
            .iter()
            .enumerate()
            .filter(|(_, w)| w.is_infinite())
            .nth(k)
            .map(|(i, _)| i);
    }
    let total: f64 = weights.iter().sum();
    if total <= 0.0 {
        return Some(rng.random_range(0..stable.len()));
    }
    let mut x = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return Some(i);
        }
        x -= w;
    }
    Some(weights.len() - 1)
}

impl<S> Layer<S> for BalanceLayer {
    type Service = Balance<S>;
    fn layer(&self, inner: S) -> Balance<S> {
        Balance {
            inner,
            layer: Arc::new(self.clone()),
        }
    }
}

/// The balance service; see the [module docs](self). It consumes the route layer's [`Plan`] and
/// adds no failure mode: without one the request passes through unchanged.
#[derive(Debug, Clone)]
pub struct Balance<S> {
    inner: S,
    /// One refcount per clone of the stack (see [`crate::alias::Alias`]).
    layer: Arc<BalanceLayer>,
}

impl<S, B> Service<Request<B>> for Balance<S>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let plan = req.extensions_mut().remove::<Plan>();
        let ext = req.extensions();
        match (plan, ext.get::<Arc<ChatRequest>>()) {
            (Some(mut plan), Some(chat)) => {
                self.layer.reorder(&mut plan, chat);
                // The route layer's list is rewritten in place: no new list, no new extension.
                match req.extensions_mut().get_mut::<Candidates>() {
                    Some(c) => plan.candidates_into(c),
                    None => {
                        req.extensions_mut().insert(plan.candidates());
                    }
                }
            }
            // The route layer's order is final (`provider.order` or a sort was given).
            (None, _) if ext.get::<Candidates>().is_some() => {}
            (None, _) => {
                return ResponseFuture::refused(MissingInput::new(
                    "balance",
                    "Plan",
                    "set by the route layer",
                ));
            }
            (Some(_), None) => {
                return ResponseFuture::refused(MissingInput::new(
                    "balance",
                    "ChatRequest",
                    "set by the parse layer",
                ));
            }
        }
        ResponseFuture::called(self.inner.call(req))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::catalog::{Catalog, Config};
    use crate::context::ApiKind;
    use std::path::Path;

    /// `x/m` on providers priced 0 (two free ones), 1 and 2 per million tokens.
    fn setup() -> (Vec<Target>, ChatRequest) {
        let mut toml = String::new();
        for (p, price) in [("f1", 0), ("f2", 0), ("one", 1), ("two", 2)] {
            toml += &format!("[[providers]]\nslug=\"{p}\"\nbase_url=\"http://x\"\n");
            toml += &format!("[[models]]\nslug=\"x/{p}\"\n");
            toml += &format!(
                "[[models.endpoints]]\nprovider=\"{p}\"\nmodel=\"m\"\npricing={{prompt={price},completion={price}}}\n"
            );
        }
        let config = Config::parse(Path::new("t.toml"), &toml).unwrap();
        let catalog = Catalog::from_config_with_env(&config, Path::new("."), &|_| None).unwrap();
        let targets = catalog
            .models()
            .iter()
            .map(|m| Target {
                model: m.clone(),
                endpoint: 0,
            })
            .collect();
        let body = br#"{"model":"x/one","messages":[{"role":"user","content":"hi"}]}"#;
        let chat = crate::context::parse_request(ApiKind::Chat, body, &Default::default()).unwrap();
        (targets, chat)
    }

    #[test]
    fn free_endpoints_share_the_first_pick() {
        let (targets, chat) = setup();
        let stable: Vec<((), Target)> = targets.into_iter().map(|t| ((), t)).collect();
        let mut rng = SmallRng::seed_from_u64(9);
        let mut seen = [0; 4];
        for _ in 0..1000 {
            seen[pick(&stable, &chat, &InverseSquare, &mut rng).unwrap()] += 1;
        }
        assert_eq!(seen[2..], [0, 0]);
        assert!(seen[0] > 400 && seen[1] > 400, "{seen:?}");
    }

    #[test]
    fn custom_weights_and_degenerate_ones() {
        let (targets, chat) = setup();
        let stable: Vec<((), Target)> = targets.into_iter().map(|t| ((), t)).collect();
        let mut rng = SmallRng::seed_from_u64(9);
        let only_two = |t: &Target, _: &ChatRequest| f64::from(u8::from(&*t.model.slug == "x/two"));
        assert_eq!(pick(&stable, &chat, &only_two, &mut rng), Some(3));
        let nan = |_: &Target, _: &ChatRequest| f64::NAN;
        assert!(
            pick(&stable, &chat, &nan, &mut rng).is_some(),
            "uniform fallback"
        );
        assert_eq!(pick::<_, ()>(&[], &chat, &nan, &mut rng), None);
    }

    #[test]
    fn order_puts_the_pick_first_then_cheapest() {
        let (mut targets, chat) = setup();
        targets.drain(..2);
        let health = Health::new();
        let never_cheapest =
            |t: &Target, _: &ChatRequest| f64::from(u8::from(&*t.model.slug == "x/two"));
        order(
            &mut targets,
            &chat,
            &health,
            &never_cheapest,
            &mut SmallRng::seed_from_u64(1),
        );
        let slugs: Vec<&str> = targets.iter().map(|t| &*t.model.slug).collect();
        assert_eq!(slugs, ["x/two", "x/one"]);
    }
}
