//! The parsed request: [`ChatRequest`], and the client API it came through.

use super::prefs::{ProviderPrefs, RoutingHints};
use super::verbatim::Verbatim;
use crate::error::GatewayError;
use bytes::Bytes;
use serde_json::{Map, Value};
use std::sync::OnceLock;

/// Which client API the request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKind {
    /// `POST /chat/completions`.
    Chat,
    /// `POST /completions` (legacy: `prompt` in, `choices[].text` out).
    Completions,
    /// `POST /embeddings` (`input` in, `data[].embedding` out): served only by models that
    /// embed ([`Model::embeds`](crate::catalog::Model::embeds)) on OpenAI-style endpoints.
    Embeddings,
}

/// The parsed request body. [`body`](Self::body) keeps every field, known or not, so unknown
/// ones reach OpenAI-style upstreams; the typed fields are the ones routing reads.
///
/// The body is read through [`body`](Self::body) and changed through
/// [`set_field`](Self::set_field) or [`body_mut`](Self::body_mut): both forget the client's bytes
/// of what they may change, so an upstream body never copies a stale field
/// ([`verbatim_field`](Self::verbatim_field)).
#[derive(Debug, Clone)]
pub struct ChatRequest {
    /// The API the client called.
    pub kind: ApiKind,
    /// The body's fields, with an empty array standing for `messages` while
    /// `messages_deferred`. Written only with `verbatim` kept in step (the accessors below).
    pub(crate) fields: Map<String, Value>,
    /// The client's bytes of the large fields not changed since parsing.
    pub(crate) verbatim: Verbatim,
    /// `model` as requested, after alias resolution when the alias layer ran.
    pub model: Option<String>,
    /// `models` fallback list.
    pub models: Vec<String>,
    /// `stream`.
    pub stream: bool,
    /// `provider` preferences.
    pub provider: ProviderPrefs,
    /// `max_completion_tokens` or else `max_tokens`.
    pub max_tokens: Option<u32>,
    /// Sticky-routing key: body `session_id`, `x-session-id`, or `prompt_cache_key`.
    pub session_id: Option<String>,
    /// `X-OpenRouter-Metadata: enabled`.
    pub wants_metadata: bool,
    /// Characters of prompt text (messages or prompt), for token estimates.
    pub prompt_chars: usize,
    /// Routing hints set by variant suffixes (`:nitro` → sort by throughput, …).
    pub hints: RoutingHints,
    /// `messages` was checked on the client's bytes, not parsed ([`crate::parse`]): `verbatim`
    /// holds them, and [`body`](Self::body) parses them on first use.
    pub(crate) messages_deferred: bool,
    /// The whole body with `messages` parsed, built by the first [`body`](Self::body) call.
    pub(crate) full: OnceLock<Map<String, Value>>,
    /// The client's whole body while no field has changed: [`Self::to_json`] returns it as is.
    pub(crate) source: Option<Bytes>,
}

impl ChatRequest {
    /// Parses and validates a chat (or legacy completions) body, as the parse layer does: every
    /// error names the field or the line and column. The request keeps `bytes` (no copy).
    ///
    /// ```
    /// use switchyard::context::{ApiKind, ChatRequest};
    /// let chat = ChatRequest::from_json(
    ///     ApiKind::Chat,
    ///     r#"{"model":"openai/gpt-4o","messages":[{"role":"user","content":"hi"}]}"#.into(),
    /// )?;
    /// assert_eq!(chat.model.as_deref(), Some("openai/gpt-4o"));
    /// assert!(ChatRequest::from_json(ApiKind::Chat, "{".into()).is_err());
    /// # Ok::<(), switchyard::error::GatewayError>(())
    /// ```
    pub fn from_json(kind: ApiKind, bytes: Bytes) -> Result<ChatRequest, GatewayError> {
        super::parse_body::parse_request_bytes(kind, bytes, &http::HeaderMap::new())
    }

    /// As [`Self::from_json`], also reading the request headers routing uses (`x-session-id`,
    /// `X-OpenRouter-Metadata`).
    pub fn from_json_with_headers(
        kind: ApiKind,
        bytes: Bytes,
        headers: &http::HeaderMap,
    ) -> Result<ChatRequest, GatewayError> {
        super::parse_body::parse_request_bytes(kind, bytes, headers)
    }

    /// The body as JSON bytes: the client's own bytes while no layer changed a field, else the
    /// fields serialised.
    pub fn to_json(&self) -> Bytes {
        match &self.source {
            Some(b) => b.clone(),
            // Serialising a map of `Value`s cannot fail.
            None => Bytes::from(serde_json::to_vec(self.body()).unwrap_or_default()),
        }
    }

    /// The body as JSON with `model` replaced (an endpoint's upstream model id).
    pub fn to_json_with_model(&self, model: &str) -> Bytes {
        let mut body = self.body().clone();
        body.insert("model".to_owned(), Value::from(model));
        Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
    }

    /// The whole body: every field as the client sent it, with the changes layers made.
    ///
    /// Parsing leaves `messages` as the client's bytes when nothing needs its tree (an
    /// OpenAI-style upstream gets those bytes); the first call here parses it.
    pub fn body(&self) -> &Map<String, Value> {
        if !self.messages_deferred {
            return &self.fields;
        }
        self.full.get_or_init(|| self.with_messages())
    }

    /// `fields` with the deferred `messages` parsed from the client's bytes.
    fn with_messages(&self) -> Map<String, Value> {
        let parsed = self
            .verbatim
            .get("messages")
            .map(serde_json::from_slice::<Value>);
        // Parse accepted these bytes only where serde_json parses them (a property test in
        // `parse::messages` holds it to that).
        debug_assert!(matches!(parsed, Some(Ok(_))), "deferred messages parse");
        let mut full = self.fields.clone();
        full.insert(
            "messages".to_owned(),
            parsed.and_then(Result::ok).unwrap_or_default(),
        );
        full
    }

    /// One top-level field, without parsing the deferred `messages` unless it is the one asked
    /// for (see [`body`](Self::body)).
    pub(crate) fn field(&self, key: &str) -> Option<&Value> {
        if self.messages_deferred && key == "messages" {
            return self.body().get(key);
        }
        self.fields.get(key)
    }

    /// Sets one top-level field (alias and auto-route rewrite `model` this way).
    pub fn set_field(&mut self, key: &str, value: Value) {
        self.source = None;
        if key == "messages" {
            self.messages_deferred = false;
        }
        self.full.take();
        self.verbatim.forget(key);
        self.fields.insert(key.to_owned(), value);
    }

    /// The whole body, mutably. Forgets every field's client bytes: upstream bodies are then
    /// serialised from the parsed values (prefer [`set_field`](Self::set_field)).
    pub fn body_mut(&mut self) -> &mut Map<String, Value> {
        self.source = None;
        let full = self.full.take();
        if self.messages_deferred {
            self.fields = full.unwrap_or_else(|| self.with_messages());
            self.messages_deferred = false;
        }
        self.verbatim.clear();
        &mut self.fields
    }

    /// The client's own bytes of a (large) top-level value, when no layer has changed it since
    /// parsing: a body for an OpenAI-style upstream copies these instead of re-serialising.
    pub fn verbatim_field(&self, key: &str) -> Option<&[u8]> {
        self.verbatim.get(key)
    }

    /// [`Self::verbatim_field`] as a slice of the request's buffer, without copying.
    pub(crate) fn verbatim_shared(&self, key: &str) -> Option<bytes::Bytes> {
        self.verbatim.get_shared(key)
    }

    /// Estimated prompt tokens (≈ 4 characters per token), for routing and credit holds.
    pub fn estimated_prompt_tokens(&self) -> u64 {
        (self.prompt_chars as u64).div_ceil(4)
    }

    /// The candidate model slugs in order: `model`, then `models`, without repeats.
    pub fn model_chain(&self) -> Vec<&str> {
        let mut chain: Vec<&str> = Vec::with_capacity(1 + self.models.len());
        chain.extend(self.model_chain_iter());
        chain
    }

    /// [`Self::model_chain`] without collecting it (routing walks it on every request). The
    /// chain is a handful of names, so looking back for repeats costs less than a `Vec`.
    pub(crate) fn model_chain_iter(&self) -> impl Iterator<Item = &str> {
        let names = || self.model.iter().chain(&self.models).map(String::as_str);
        names()
            .enumerate()
            .filter(move |&(i, m)| !names().take(i).any(|seen| seen == m))
            .map(|(_, m)| m)
    }

    /// True when the request uses the named top-level parameter (non-null).
    pub fn uses_parameter(&self, name: &str) -> bool {
        // The stand-in for a deferred `messages` (an empty array) is not null either.
        self.fields.get(name).is_some_and(|v| !v.is_null())
    }
}
