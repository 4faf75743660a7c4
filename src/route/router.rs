//! The routing decision itself: steps 1–8 of the [module docs](super).

use super::SessionPins;
use super::filter::{self, Exclusion, Filters};
use super::plan::{Group, Keep, Plan};
use super::sort::{self, Soft, SortKey};
use crate::catalog::{Api, Catalog};
use crate::context::{ApiKind, ModelHints};
use crate::context::{ChatRequest, SortPref, Target};
use crate::error::GatewayError;
use crate::health::Health;
use serde_json::{Value, json};
use std::sync::Arc;

/// The borrowed state of one routing decision.
pub(super) struct Router<'a> {
    pub(super) catalog: &'a Catalog,
    pub(super) health: Option<&'a Arc<Health>>,
    pub(super) sticky: Option<&'a dyn SessionPins>,
}

impl Router<'_> {
    pub(super) fn plan(&self, chat: &ChatRequest) -> Result<Plan, GatewayError> {
        let prefs = &chat.provider;
        let (mut groups, mut excluded) = self.admit(chat)?;
        if groups.iter().all(|g| g.rest.is_empty()) {
            return Err(filter::no_endpoints(chat, &excluded));
        }
        let partition_none = match &prefs.sort {
            Some(SortPref::Object {
                partition: Some(p), ..
            }) => p == "none",
            _ => chat.field("route").and_then(Value::as_str) == Some("sort"),
        };
        if partition_none && groups.len() > 1 {
            let key = groups[0].key;
            let rest = groups.drain(..).flat_map(|g| g.rest).collect();
            groups.push(Group::admitted(rest, key));
        }
        let order = prefs.order.as_deref().filter(|o| !o.is_empty());
        for group in &mut groups {
            self.order_group(chat, group, order);
        }
        let keep = match (prefs.allow_fallbacks(), order, &prefs.only) {
            (true, _, _) => Keep::All,
            (false, Some(_), _) => Keep::Head,
            (false, None, Some(_)) => Keep::Listed,
            (false, None, None) => Keep::First,
        };
        if keep == Keep::Head && groups.iter().all(|g| g.head.is_empty()) {
            excluded.extend(groups.iter().flat_map(|g| &g.rest).map(|t| Exclusion {
                key: t.key().to_owned(),
                code: "allowed_providers",
                detail: "not in provider.order (allow_fallbacks: false)".into(),
            }));
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

    /// Steps 1–3: per model of the chain, a group of the endpoints passing the hard filters
    /// (after the default parameter preferences) with its sort key; plus why the others were
    /// excluded.
    fn admit(&self, chat: &ChatRequest) -> Result<(Vec<Group>, Vec<Exclusion>), GatewayError> {
        let filters = Filters::new(chat);
        let request_wide = ModelHints {
            sort: chat.hints.sort.clone(),
            free_only: chat.hints.free_only,
        };
        // An explicit price/throughput/latency sort wins over a variant's.
        let explicit = chat
            .provider
            .sort
            .as_ref()
            .and_then(SortPref::by)
            .and_then(SortKey::parse);
        let mut groups = Vec::new();
        let mut excluded = Vec::new();
        for slug in chat.model_chain_iter() {
            let model = self.catalog.model(slug).ok_or_else(|| {
                let mut e = GatewayError::bad_request(format!("`{slug}` is not a valid model ID"));
                e.availability =
                    Some(json!({"code": "model_not_found", "requested_models": [slug]}));
                e
            })?;
            let fits = if chat.kind == ApiKind::Embeddings {
                model.embeds()
            } else {
                // A model that both embeds and writes text serves both.
                !model.embeds() || model.output_modalities.iter().any(|m| m == "text")
            };
            if !fits {
                return Err(wrong_api(slug, chat.kind));
            }
            let mh = chat
                .hints
                .per_model
                .iter()
                .find(|(s, _)| s == slug)
                .map_or(&request_wide, |(_, h)| h);
            let mut group = Vec::with_capacity(model.endpoints.len());
            for (i, e) in model.endpoints.iter().enumerate() {
                let target = Target {
                    model: model.clone(),
                    endpoint: i,
                };
                let checked = if chat.kind == ApiKind::Embeddings && e.provider.api != Api::OpenAi {
                    Err((
                        "api",
                        format!(
                            "speaks {:?}, which has no embeddings API here",
                            e.provider.api
                        ),
                    ))
                } else {
                    filters.check(model, e, mh)
                };
                match checked {
                    Ok(()) => group.push(target),
                    Err((code, detail)) => excluded.push(Exclusion {
                        key: target.key().to_owned(),
                        code,
                        detail,
                    }),
                }
            }
            filters.prefer_supported(&mut group);
            let key = explicit.or_else(|| mh.sort.as_deref().and_then(SortKey::parse));
            groups.push(Group::admitted(group, key));
        }
        Ok((groups, excluded))
    }

    /// Step 6 for one group: `order` matches first, else the sort, else the sticky pin and the
    /// default order (left for balance to redo).
    fn order_group(&self, chat: &ChatRequest, group: &mut Group, order: Option<&[String]>) {
        let health = self.health.map(|h| &**h);
        let mut rest = std::mem::take(&mut group.rest);
        let mut head = Vec::new();
        let mut balance = false;
        if let Some(order) = order {
            for slug in order {
                let (hit, miss): (Vec<_>, Vec<_>) = rest
                    .into_iter()
                    .partition(|t| t.endpoint().matches_slug(slug));
                head.extend(hit);
                rest = miss;
            }
            sort::default_order(&mut rest, chat, health);
        } else if let Some(key) = group.key {
            sort::sort_by(&mut rest, key, chat, health);
        } else {
            balance = true;
            if let Some(pin) = self.pinned(chat, &rest) {
                head.push(rest.remove(pin));
            }
            sort::default_order(&mut rest, chat, health);
        }
        group.head = head;
        group.rest = rest;
        group.balance = balance;
    }

    /// The index in `rest` of the session's sticky endpoint, when it is there and healthy.
    fn pinned(&self, chat: &ChatRequest, rest: &[Target]) -> Option<usize> {
        let (sticky, session) = (self.sticky?, chat.session_id.as_deref()?);
        let healthy = |k: &str| {
            self.health
                .is_none_or(|h| !h.is_unstable(k) && !h.cooling_down(k))
        };
        for slug in chat.model_chain_iter() {
            if let Some(key) = sticky.get(session, slug).filter(|k| healthy(k)) {
                if let Some(i) = rest.iter().position(|t| sort::with_key(t, |k| k == key)) {
                    return Some(i);
                }
            }
        }
        None
    }
}

/// The 400 for a model the request's API cannot use: an embeddings request naming a model
/// that does not embed, or a completion naming an embedding model.
fn wrong_api(slug: &str, kind: ApiKind) -> GatewayError {
    let (message, code) = if kind == ApiKind::Embeddings {
        (
            format!(
                "`{slug}` is not an embedding model: `/embeddings` is served only by models \
                 whose `output_modalities` include `embeddings`"
            ),
            "not_an_embedding_model",
        )
    } else {
        (
            format!("`{slug}` is an embedding model: send it to `/embeddings`"),
            "embedding_model",
        )
    };
    let mut e = GatewayError::bad_request(message);
    e.availability = Some(json!({"code": code, "requested_models": [slug]}));
    e
}
