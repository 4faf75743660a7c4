//! The Auto Router as a layer: `openrouter/auto` (or `switchyard/auto`, or an `auto-router`
//! plugin entry) → a concrete model chosen per prompt.
//!
//! 1. Act only on the auto slugs or an `auto-router` plugin entry; anything else passes through.
//! 2. Narrow the configured candidates (`[auto].models`, each with a tier) by the plugin's
//!    `allowed_models` / `excluded_models` globs and by hard constraints: the model must route
//!    under the request's own `provider` preferences (context window, `max_tokens`, prices,
//!    providers), and accept images when the prompt has some. None left: 404 "No models match
//!    your request and model restrictions".
//! 3. An ongoing conversation (a `session_id`, or more than one turn) already routed — same
//!    session, else same first message — keeps its model while that model is still allowed and
//!    eligible.
//! 4. Otherwise score the last user message and pick the tier for the cost knob (`[auto]
//!    strong_share`, or the plugin's `cost_tier`).
//! 5. Rewrite `model` to the choice; when the request has no `models` list, add the first model
//!    of the next tier up, so an exhausted choice escalates one tier — never down.
//! 6. Record the decision (`strategy: "auto"`, score, scorer) for `openrouter_metadata` and the
//!    generation record.

use super::select::{AutoOptions, AutoRouter, NoCandidate, Sticky, glob_match};
use crate::BoxError;
use crate::catalog::Catalog;
use crate::context::{AutoDecision, ChatRequest, FromChat, parse_then_call, set_chat};
use crate::error::GatewayError;
use crate::future::ResponseFuture;
use http::{Request, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tower::{Layer, Service};

/// Model slugs that ask for the Auto Router.
pub const AUTO_SLUGS: &[&str] = &["openrouter/auto", "switchyard/auto", "auto"];

/// Applies [`AutoRoute`].
#[derive(Debug, Clone)]
pub struct AutoRouteLayer {
    router: Arc<AutoRouter>,
    catalog: Arc<Catalog>,
    sticky: Arc<Sticky>,
}

/// Models used when the config has no `[auto]` section: (slug, tier). Only those in the
/// catalogue with an enabled provider are ever picked.
pub const DEFAULT_CANDIDATES: &[(&str, u8)] = &[
    ("openai/gpt-4o-mini", 0),
    ("google/gemini-2.5-flash", 0),
    ("deepseek/deepseek-chat", 0),
    ("anthropic/claude-3.5-haiku", 0),
    ("openai/gpt-4o", 1),
    ("anthropic/claude-sonnet-4", 1),
    ("google/gemini-2.5-pro", 1),
];

/// The default (kNN) scorer over a bank file, calibrated on the bank's own leave-one-out scores.
fn custom_bank_scorer(
    path: &std::path::Path,
) -> Result<
    (
        Arc<dyn super::scorer::Scorer>,
        super::calibrate::Calibration,
    ),
    String,
> {
    use super::scorer::{KnnBank, KnnScorer, StaticEmbedder};
    let fail = |e: &dyn std::fmt::Display| format!("[auto] bank: {}: {e}", path.display());
    let bytes = std::fs::read(path).map_err(|e| fail(&e))?;
    let bank = KnnBank::from_bytes(&bytes).map_err(|e| fail(&e))?;
    let emb = StaticEmbedder::shipped();
    if bank.is_empty() {
        return Err(fail(&"the bank holds no prompts"));
    }
    if bank.dim() != emb.dim() {
        return Err(fail(&format!(
            "{}-dimensional vectors, the embedder's are {}",
            bank.dim(),
            emb.dim()
        )));
    }
    let calibration = super::calibrate::Calibration::from_scores(&bank.leave_one_out_scores());
    let name = path.file_name().map_or_else(
        || "knn/custom".to_owned(),
        |f| format!("knn/custom:{}", f.to_string_lossy()),
    );
    Ok((Arc::new(KnnScorer::new(emb, bank, name)), calibration))
}

impl AutoRouteLayer {
    /// The router a config describes: `[auto].models` (else [`DEFAULT_CANDIDATES`]),
    /// `[auto].strong_share` (default 0.3), `[auto].scorer` (`default`, `linear`, `heuristic`,
    /// `length`) and `[auto].bank` (a kNN bank file for the default scorer).
    pub fn from_config(
        config: Option<&crate::catalog::AutoConfig>,
        catalog: Arc<Catalog>,
    ) -> Result<Self, String> {
        use super::scorer::{default_scorer, heuristic_scorer, length_scorer, linear_scorer};
        use super::select::Candidate;
        let candidates: Vec<Candidate> = match config.filter(|c| !c.models.is_empty()) {
            Some(c) => c
                .models
                .iter()
                .map(|m| Candidate::new(m.slug.clone(), m.tier))
                .collect(),
            None => DEFAULT_CANDIDATES
                .iter()
                .map(|(s, t)| Candidate::new(*s, *t))
                .collect(),
        };
        if let Some(c) = config {
            if let Some(unknown) = c.models.iter().find(|m| catalog.model(&m.slug).is_none()) {
                return Err(format!(
                    "[auto] models: `{}` is not in the catalogue",
                    unknown.slug
                ));
            }
        }
        let bank = config.and_then(|c| c.bank.as_deref());
        let (scorer, calibration) = match config
            .and_then(|c| c.scorer.as_deref())
            .unwrap_or("default")
        {
            "default" => match bank {
                Some(path) => custom_bank_scorer(path)?,
                None => default_scorer(),
            },
            _ if bank.is_some() => {
                return Err("[auto] bank: only the `default` scorer reads a bank".to_owned());
            }
            "linear" => linear_scorer(),
            "heuristic" => heuristic_scorer(),
            "length" => length_scorer(),
            other => {
                return Err(format!(
                    "[auto] scorer: unknown scorer `{other}` (default, linear, heuristic, length)"
                ));
            }
        };
        let strong_share = config.and_then(|c| c.strong_share).unwrap_or(0.3) as f32;
        if !(0.0..=1.0).contains(&strong_share) {
            return Err(format!(
                "[auto] strong_share must be within 0 and 1, not {strong_share}"
            ));
        }
        Ok(Self::new(
            AutoRouter {
                candidates,
                scorer,
                calibration,
                strong_share,
            },
            catalog,
        ))
    }

    /// Chooses among `router`'s candidates, checked against `catalog`.
    pub fn new(router: AutoRouter, catalog: Arc<Catalog>) -> Self {
        AutoRouteLayer {
            router: Arc::new(router),
            catalog,
            sticky: Arc::new(Sticky::new(Duration::from_secs(600), 100_000)),
        }
    }

    /// Steps 1–6 for one request: the rewritten request, or `None` when it is not for auto.
    pub fn decide(&self, chat: &ChatRequest) -> Result<Option<ChatRequest>, GatewayError> {
        let plugin = auto_plugin(chat);
        let asked = chat
            .model
            .as_deref()
            .is_some_and(|m| AUTO_SLUGS.contains(&m));
        if !asked && (plugin.is_none() || chat.model.is_some()) {
            return Ok(None);
        }
        let opts = plugin.map(options).unwrap_or_default();
        let has_images = has_images(chat.body());
        let eligible = |slug: &str| {
            let Some(model) = self.catalog.model(slug) else {
                return false;
            };
            if has_images && !model.input_modalities.iter().any(|m| m == "image") {
                return false;
            }
            let mut probe = chat.clone();
            probe.model = Some(slug.to_owned());
            probe.models.clear();
            crate::route::candidates(&self.catalog, &probe).is_ok()
        };
        let first = first_message(chat.body());
        let key = Sticky::key(chat.session_id.as_deref(), &first);
        let prompt = last_user_text(chat.body());
        // Only an ongoing conversation sticks: a session id, or turns after the first.
        let ongoing = chat.session_id.is_some()
            || messages(chat.body())
                .iter()
                .filter(|m| m["role"] != "system" && m["role"] != "developer")
                .count()
                > 1;
        let allowed = |slug: &str| {
            (opts.allowed_models.is_empty()
                || opts.allowed_models.iter().any(|g| glob_match(g, slug)))
                && !opts.excluded_models.iter().any(|g| glob_match(g, slug))
        };
        let pinned = ongoing
            .then(|| self.sticky.get(key))
            .flatten()
            .filter(|s| allowed(s) && eligible(s));
        let choice = match pinned {
            Some(slug) => {
                let tier = self
                    .router
                    .candidates
                    .iter()
                    .find(|c| c.slug == slug)
                    .map_or(0, |c| c.tier);
                super::select::Choice {
                    score: self.router.scorer.score(&prompt),
                    scorer: self.router.scorer.name().to_owned(),
                    slug,
                    tier,
                }
            }
            None => self
                .router
                .choose(&prompt, &opts, &eligible)
                .map_err(no_candidate)?,
        };
        self.sticky.insert(key, &choice.slug);
        let mut out = chat.clone();
        out.hints.requested = chat
            .model
            .clone()
            .or_else(|| Some("openrouter/auto".into()));
        out.hints.strategy = Some("auto");
        out.hints.auto = Some(AutoDecision {
            score: choice.score,
            scorer: choice.scorer.clone(),
            tier: choice.tier,
        });
        out.model = Some(choice.slug.clone());
        if out.models.is_empty() {
            if let Some(up) = self.router.escalate(choice.tier).filter(|s| eligible(s)) {
                out.models = vec![up.to_owned()];
            }
        }
        out.set_field("model", Value::from(choice.slug));
        Ok(Some(out))
    }
}

fn no_candidate(_: NoCandidate) -> GatewayError {
    let mut e = GatewayError::new(StatusCode::NOT_FOUND, "not_found", NoCandidate.to_string());
    e.availability =
        Some(json!({"code": "constraint_filtered", "requested_models": ["openrouter/auto"]}));
    e
}

fn auto_plugin(chat: &ChatRequest) -> Option<&Value> {
    chat.field("plugins")?.as_array()?.iter().find(|p| {
        p.get("id").and_then(Value::as_str) == Some("auto-router")
            && p.get("enabled").and_then(Value::as_bool) != Some(false)
    })
}

fn options(plugin: &Value) -> AutoOptions {
    let globs = |k: &str| -> Vec<String> {
        plugin
            .get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    AutoOptions {
        allowed_models: globs("allowed_models"),
        excluded_models: globs("excluded_models"),
        cost_tier: plugin
            .get("cost_tier")
            .and_then(Value::as_str)
            .map(str::to_owned),
    }
}

fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn messages(body: &serde_json::Map<String, Value>) -> &[Value] {
    body.get("messages")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn last_user_text(body: &serde_json::Map<String, Value>) -> String {
    messages(body)
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .map(|m| content_text(&m["content"]))
        .unwrap_or_default()
}

fn first_message(body: &serde_json::Map<String, Value>) -> String {
    messages(body)
        .iter()
        .find(|m| m["role"] != "system" && m["role"] != "developer")
        .map(|m| content_text(&m["content"]))
        .unwrap_or_default()
}

fn has_images(body: &serde_json::Map<String, Value>) -> bool {
    messages(body).iter().any(|m| {
        m["content"]
            .as_array()
            .is_some_and(|parts| parts.iter().any(|p| p["type"] == "image_url"))
    })
}

impl<S> Layer<S> for AutoRouteLayer {
    type Service = AutoRoute<S>;
    fn layer(&self, inner: S) -> AutoRoute<S> {
        AutoRoute {
            inner,
            layer: Arc::new(self.clone()),
        }
    }
}

/// The auto-route service; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct AutoRoute<S> {
    inner: S,
    /// One refcount per clone of the stack (see [`crate::alias::Alias`]).
    layer: Arc<AutoRouteLayer>,
}

impl<S, B> Service<Request<B>> for AutoRoute<S>
where
    S: Service<Request<B>> + Clone + Send + 'static,
    S::Response: Send + 'static,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + FromChat + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let Some(chat) = req.extensions().get::<Arc<ChatRequest>>() else {
            // No parse layer in front: the body is read here, then decided the same way.
            let clone = self.inner.clone();
            let inner = std::mem::replace(&mut self.inner, clone);
            let layer = Arc::clone(&self.layer);
            return ResponseFuture::read(parse_then_call(req, inner, move |req, chat| {
                if let Some(rewritten) = layer.decide(chat)? {
                    set_chat(req, Arc::new(rewritten));
                }
                Ok(())
            }));
        };
        match self.layer.decide(chat) {
            Ok(Some(rewritten)) => {
                set_chat(&mut req, Arc::new(rewritten));
                ResponseFuture::called(self.inner.call(req))
            }
            Ok(None) => ResponseFuture::called(self.inner.call(req)),
            Err(e) => ResponseFuture::refused(e),
        }
    }
}
