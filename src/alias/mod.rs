//! Alias: rewrites the requested model names into concrete catalogue slugs plus routing hints
//! (SPEC 6), before the route layer sees them.
//!
//! For `model` and each entry of `models[]`, independently:
//!
//! 1. A name that is a catalogue slug is kept as is (static variants such as
//!    `…:thinking` or `…:free` are their own slugs).
//! 2. Else a name in the alias table (`[aliases]`) becomes its target
//!    (`strategy = "alias"`), and `~author/family-latest` becomes the newest model (by
//!    `created`) whose author is `author` and whose `family` is `family`
//!    (`strategy = "latest"`; the index is built once per catalogue).
//! 3. Else a `:variant` suffix is split off, the base resolved as in 2, and the variant applied:
//!    `:nitro` → sort by throughput (priority-tier endpoints eligible), `:floor` → sort by price
//!    (flex-tier endpoints eligible), `:exacto` → exacto sort, `:online` → the `web` plugin,
//!    `:free` → the catalogue's `base:free` model when it exists, else only free endpoints;
//!    any other variant → the catalogue's `base:variant` slug.
//! 4. An unknown variant, a static variant the catalogue lacks, an alias whose target is not in
//!    the catalogue, or a `~…-latest` family with no model → 400 naming it. Other unknown names
//!    are left for the route layer (400 `model_not_found`).
//! 5. When anything changed, the request's `Arc<ChatRequest>` is replaced by a rewritten copy:
//!    `model`/`models` (and the body's) hold the concrete slugs, `hints.requested` what the
//!    client wrote, `hints.strategy` how the primary model was resolved, `hints.sort` /
//!    `hints.free_only` its variant, `hints.per_model` every entry's own hints; the body is
//!    replaced by the rewritten request ([`ChatBody`](crate::context::ChatBody)), so a handler
//!    behind this layer reads the resolved `model`.
//!
//! # Contract
//!
//! | | |
//! |---|---|
//! | reads | [`ChatRequest`] if present, else the body (parsed here: 400/413 naming the cause) |
//! | writes | a rewritten `Arc<ChatRequest>` and body, when a name resolved to another |
//! | inner service | any service; it gets the body with the resolved names |
//!
//! [`AliasLayer::table_only`] needs no catalogue: names in the table become their targets, and
//! every other name passes unchanged (there is no catalogue to check variants against).
//!
//! The table is swappable at run time through an [`AliasHandle`] (see [`watch_file`]).
//!
//! ```
//! use switchyard::alias::{AliasLayer, AliasTable};
//! use switchyard::catalog::{Catalog, Config};
//! use switchyard::context::ApiKind;
//! use switchyard::context::parse_request;
//! use std::{path::Path, sync::Arc};
//!
//! let config = Config::parse(Path::new("c.toml"), r#"
//!     [aliases]
//!     "tiny" = "acme/tiny-2"
//!     [[providers]]
//!     slug = "a"
//!     base_url = "http://127.0.0.1:9"
//!     [[models]]
//!     slug = "acme/tiny-1"
//!     family = "tiny"
//!     created = 1
//!     [[models.endpoints]]
//!     provider = "a"
//!     model = "t1"
//!     [[models]]
//!     slug = "acme/tiny-2"
//!     family = "tiny"
//!     created = 2
//!     [[models.endpoints]]
//!     provider = "a"
//!     model = "t2"
//! "#).unwrap();
//! let catalog = Arc::new(Catalog::from_config_with_env(&config, Path::new("."), &|_| None).unwrap());
//! let alias = AliasLayer::new(catalog, AliasTable::from_config(&config));
//! let body = br#"{"model":"~acme/tiny-latest:nitro","models":["tiny"],"messages":[{"role":"user","content":"hi"}]}"#;
//! let chat = parse_request(ApiKind::Chat, body, &Default::default()).unwrap();
//! let chat = alias.resolve(&chat).unwrap().expect("rewritten");
//! assert_eq!(chat.model.as_deref(), Some("acme/tiny-2"));
//! assert_eq!(chat.hints.sort.as_deref(), Some("throughput"));
//! assert_eq!(chat.hints.strategy, Some("latest"));
//! assert_eq!(chat.hints.requested.as_deref(), Some("~acme/tiny-latest:nitro"));
//!
//! // Reload without restart.
//! alias.handle().replace(AliasTable::new([("tiny".into(), "acme/tiny-1".into())].into()));
//! ```

mod resolve;
mod table;

pub use table::{AliasHandle, AliasTable, watch_file};

use crate::BoxError;
use crate::catalog::Catalog;
use crate::context::{ChatRequest, FromChat, ModelHints, parse_then_call, set_chat};
use crate::error::GatewayError;
use crate::future::ResponseFuture;
use http::Request;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Applies [`Alias`] over a catalogue snapshot and a swappable alias table.
#[derive(Debug, Clone)]
pub struct AliasLayer {
    /// `None` for a table-only layer.
    catalog: Option<Arc<Catalog>>,
    latest: Arc<HashMap<String, String>>,
    handle: AliasHandle,
}

impl AliasLayer {
    /// Resolves over `catalog` with the aliases of `table`.
    pub fn new(catalog: Arc<Catalog>, table: AliasTable) -> Self {
        Self::with_handle(catalog, AliasHandle::new(table))
    }

    /// Resolves with the table behind an existing handle.
    pub fn with_handle(catalog: Arc<Catalog>, handle: AliasHandle) -> Self {
        AliasLayer {
            latest: Arc::new(resolve::latest_index(&catalog)),
            catalog: Some(catalog),
            handle,
        }
    }

    /// Resolves with `table` alone, no catalogue: an aliased name becomes its target, any
    /// other name is kept.
    pub fn table_only(table: AliasTable) -> Self {
        AliasLayer {
            latest: Arc::default(),
            catalog: None,
            handle: AliasHandle::new(table),
        }
    }

    /// The handle that swaps this layer's table.
    pub fn handle(&self) -> AliasHandle {
        self.handle.clone()
    }

    /// Steps 1–5 of the [module docs](self): the rewritten request and per-model hints, or
    /// `None` when nothing needed rewriting.
    pub fn resolve(&self, chat: &ChatRequest) -> Result<Option<ChatRequest>, GatewayError> {
        let Some(catalog) = &self.catalog else {
            return Ok(self.resolve_by_table(chat));
        };
        // Most requests name catalogue slugs only, which resolve to themselves (step 1): answer
        // that without taking the table or building a resolution per name.
        let exact = |name: &str| catalog.model(name).is_some();
        if chat.model.as_deref().is_none_or(exact) && chat.models.iter().all(|m| exact(m)) {
            return Ok(None);
        }
        let table = self.handle.current();
        let one = |name: &str| resolve::resolve(name, catalog, &self.latest, &table);
        let model = chat.model.as_deref().map(one).transpose()?;
        let models = chat
            .models
            .iter()
            .map(|m| one(m))
            .collect::<Result<Vec<_>, _>>()?;
        let unchanged = |r: &resolve::Resolved, name: &str| {
            r.slug == name && r.hints == ModelHints::default() && r.strategy.is_none() && !r.web
        };
        let same = model
            .iter()
            .zip(chat.model.iter())
            .chain(models.iter().zip(chat.models.iter()))
            .all(|(r, n)| unchanged(r, n));
        if same {
            return Ok(None);
        }
        let mut out = chat.clone();
        let primary = model.as_ref().or(models.first());
        out.hints.requested = chat.model.clone().or_else(|| chat.models.first().cloned());
        if let Some(p) = primary {
            out.hints.strategy = p.strategy.or(out.hints.strategy);
            out.hints.sort = p.hints.sort.clone().or(out.hints.sort);
            out.hints.free_only |= p.hints.free_only;
        }
        let web = model.iter().chain(&models).any(|r| r.web);
        out.hints.per_model = model
            .iter()
            .chain(&models)
            .map(|r| (r.slug.clone(), r.hints.clone()))
            .collect();
        out.model = model.map(|r| r.slug);
        out.models = models.into_iter().map(|r| r.slug).collect();
        if let Some(m) = &out.model {
            let m = Value::from(m.as_str());
            out.set_field("model", m);
        }
        if !out.models.is_empty() {
            let models = json!(out.models);
            out.set_field("models", models);
        }
        if web {
            add_web_plugin(&mut out);
        }
        Ok(Some(out))
    }

    /// [`Self::resolve`] without a catalogue: table lookups only.
    fn resolve_by_table(&self, chat: &ChatRequest) -> Option<ChatRequest> {
        let table = self.handle.current();
        let aliased = |n: &String| table.get(n).map(str::to_owned);
        let model = chat.model.as_ref().and_then(aliased);
        let models: Vec<Option<String>> = chat.models.iter().map(aliased).collect();
        if model.is_none() && models.iter().all(Option::is_none) {
            return None;
        }
        let mut out = chat.clone();
        out.hints.requested = chat.model.clone().or_else(|| chat.models.first().cloned());
        out.hints.strategy = Some("alias");
        if let Some(m) = model {
            out.set_field("model", Value::from(m.as_str()));
            out.model = Some(m);
        }
        if models.iter().any(Option::is_some) {
            out.models = models
                .into_iter()
                .zip(&chat.models)
                .map(|(a, m)| a.unwrap_or_else(|| m.clone()))
                .collect();
            let list = json!(out.models);
            out.set_field("models", list);
        }
        Some(out)
    }
}

/// `:online` is the deprecated spelling of `plugins: [{"id": "web"}]`.
fn add_web_plugin(chat: &mut ChatRequest) {
    let mut plugins = chat
        .field("plugins")
        .cloned()
        .unwrap_or_else(|| Value::Array(Vec::new()));
    if let Value::Array(list) = &mut plugins {
        if !list
            .iter()
            .any(|p| p.get("id").and_then(Value::as_str) == Some("web"))
        {
            list.push(json!({"id": "web"}));
        }
    }
    chat.set_field("plugins", plugins);
}

impl<S> Layer<S> for AliasLayer {
    type Service = Alias<S>;
    fn layer(&self, inner: S) -> Alias<S> {
        Alias {
            inner,
            layer: Arc::new(self.clone()),
        }
    }
}

/// The alias service; see the [module docs](self). Requests without a parsed
/// [`ChatRequest`] pass through.
#[derive(Debug, Clone)]
pub struct Alias<S> {
    inner: S,
    /// Behind one `Arc`: the stack is cloned per request (by the layers that await before
    /// calling inside), and one refcount is cheaper than the layer's three.
    layer: Arc<AliasLayer>,
}

impl<S, B> Service<Request<B>> for Alias<S>
where
    S: Service<Request<B>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
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
            // No parse layer in front: the body is read here, then resolved the same way.
            let clone = self.inner.clone();
            let inner = std::mem::replace(&mut self.inner, clone);
            let layer = Arc::clone(&self.layer);
            return ResponseFuture::read(parse_then_call(req, inner, move |req, chat| {
                if let Some(chat) = layer.resolve(chat)? {
                    set_chat(req, Arc::new(chat));
                }
                Ok(())
            }));
        };
        match self.layer.resolve(chat) {
            Ok(None) => {}
            Ok(Some(chat)) => set_chat(&mut req, Arc::new(chat)),
            Err(e) => return ResponseFuture::refused(e),
        }
        ResponseFuture::called(self.inner.call(req))
    }
}
