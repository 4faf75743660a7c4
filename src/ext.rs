//! Typed request extensions: the state one layer hands to the next.
//!
//! | extension | set by | read by |
//! |---|---|---|
//! | [`ChatRequest`] (in an `Arc`) | parse | every layer |
//! | [`GenerationId`], [`RequestStart`] | parse | fallback, meter, translate |
//! | [`UpstreamWait`] | parse (upstream adds to it) | parse (the overhead header) |
//! | [`Candidates`] | route (balance reorders) | fallback |
//! | [`Target`] | fallback, per attempt | meter, translate, upstream |
//! | [`AttemptLog`] | fallback | meter (ledger), the response metadata |

use crate::catalog::de_per_million_opt;
use crate::catalog::{Endpoint, Model, Usd};
use crate::parse::Verbatim;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Which client API the request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKind {
    /// `POST /chat/completions`.
    Chat,
    /// `POST /completions` (legacy: `prompt` in, `choices[].text` out).
    Completions,
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
}

impl ChatRequest {
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

/// Hints from aliases and variant suffixes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoutingHints {
    /// `:nitro`/`:floor`/`:exacto` → a sort key.
    pub sort: Option<String>,
    /// `:free`: only zero-priced endpoints.
    pub free_only: bool,
    /// The model as the client wrote it, when an alias or variant rewrote it.
    pub requested: Option<String>,
    /// `latest`, `alias`, `auto`, … for `openrouter_metadata.strategy`.
    pub strategy: Option<&'static str>,
    /// The Auto Router's decision, when it chose the model.
    pub auto: Option<AutoDecision>,
}

/// What the Auto Router decided, for `openrouter_metadata` and the generation record.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoDecision {
    /// The scorer's output: probability the cheap tier is not good enough.
    pub score: f32,
    /// The scorer's name.
    pub scorer: String,
    /// The chosen tier.
    pub tier: u8,
}

/// The `provider` object (SPEC 2.4). Unknown fields are ignored; every field is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ProviderPrefs {
    /// Providers to try first, in order.
    pub order: Option<Vec<String>>,
    /// Fall back beyond `order`/`only` and the first pick (default true).
    pub allow_fallbacks: Option<bool>,
    /// Only endpoints supporting every request parameter.
    pub require_parameters: Option<bool>,
    /// `allow` | `deny`.
    pub data_collection: Option<String>,
    /// Zero-data-retention endpoints only.
    pub zdr: Option<bool>,
    /// Allow-list.
    pub only: Option<Vec<String>>,
    /// Deny-list.
    pub ignore: Option<Vec<String>>,
    /// Quantization filter.
    pub quantizations: Option<Vec<String>>,
    /// `"price"` or `{by, partition}`.
    pub sort: Option<SortPref>,
    /// Hard price ceiling.
    pub max_price: Option<MaxPrice>,
    /// Soft throughput floor.
    pub preferred_min_throughput: Option<Value>,
    /// Soft latency ceiling.
    pub preferred_max_latency: Option<Value>,
}

impl ProviderPrefs {
    /// `allow_fallbacks`, default true.
    pub fn allow_fallbacks(&self) -> bool {
        self.allow_fallbacks.unwrap_or(true)
    }
}

/// `provider.sort`: a string or `{by, partition}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum SortPref {
    /// `"price" | "throughput" | "latency" | "exacto"`.
    By(String),
    /// `{by, partition: "model" | "none"}`.
    Object {
        /// The key.
        by: Option<String>,
        /// `model` (default) or `none`.
        partition: Option<String>,
    },
}

impl SortPref {
    /// The sort key.
    pub fn by(&self) -> Option<&str> {
        match self {
            SortPref::By(s) => Some(s),
            SortPref::Object { by, .. } => by.as_deref(),
        }
    }

    /// The partition, `model` by default.
    pub fn partition(&self) -> &str {
        match self {
            SortPref::Object {
                partition: Some(p), ..
            } => p,
            _ => "model",
        }
    }
}

/// `provider.max_price`: prompt/completion per million tokens, request per request, image per
/// image. Numbers and decimal strings are accepted.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MaxPrice {
    /// Per-token ceiling (converted from per million).
    #[serde(deserialize_with = "de_per_million_opt")]
    pub prompt: Option<Usd>,
    /// Per-token ceiling (converted from per million).
    #[serde(deserialize_with = "de_per_million_opt")]
    pub completion: Option<Usd>,
    /// Per-request ceiling in USD.
    pub request: Option<Value>,
    /// Per-image ceiling in USD.
    pub image: Option<Value>,
}

/// The generation id (`gen-…`) of a request: response `id`, `X-Generation-Id`, ledger key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GenerationId(pub Arc<str>);

impl GenerationId {
    /// A fresh random id: `gen-<unix seconds>-<20 alphanumerics>`.
    pub fn new() -> Self {
        use rand::RngCore;
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        // Written into a stack buffer, so the `Arc<str>` is the id's only allocation.
        let mut buf = [0u8; GENERATION_ID_MAX];
        let mut digits = [0u8; 20];
        let mut len = 0;
        for part in [b"gen-".as_slice(), itoa(secs, &mut digits), b"-"] {
            buf[len..len + part.len()].copy_from_slice(part);
            len += part.len();
        }
        // Six random bits per character, 62 and 63 redrawn: uniform over the 62 alphanumerics,
        // from about three 64-bit draws instead of one 32-bit draw per character.
        let mut rng = rand::rng();
        let mut filled = 0;
        while filled < 20 {
            let mut bits = rng.next_u64();
            for _ in 0..10 {
                let i = (bits & 63) as usize;
                bits >>= 6;
                if let (Some(&c), true) = (ALPHANUMERIC.get(i), filled < 20) {
                    buf[len + filled] = c;
                    filled += 1;
                }
            }
        }
        len += 20;
        // Only ASCII was written.
        let id = std::str::from_utf8(&buf[..len]).unwrap_or_default();
        GenerationId(Arc::from(id))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The characters of a generation id's random part.
const ALPHANUMERIC: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Longest generation id: `gen-`, 20 digits of seconds, `-`, 20 alphanumerics.
const GENERATION_ID_MAX: usize = 4 + 20 + 1 + 20;

/// The decimal digits of `n`, written at the end of `buf`.
fn itoa(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

impl Default for GenerationId {
    fn default() -> Self {
        Self::new()
    }
}

/// When the request arrived at the gateway.
#[derive(Debug, Clone, Copy)]
pub struct RequestStart(pub Instant);

/// Microseconds this request spent waiting on upstreams (response headers and body frames),
/// shared by parse (which inserts and reads it) and upstream (which adds to it); see
/// [`crate::overhead`].
#[derive(Debug, Clone, Default)]
pub struct UpstreamWait(pub Arc<AtomicU64>);

/// The flag [`UpstreamWait::close`] sets in the counter (a sum of microseconds never reaches it).
const WAIT_CLOSED: u64 = 1 << 63;

impl UpstreamWait {
    /// Adds a wait.
    pub fn add(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX) & !WAIT_CLOSED;
        self.0.fetch_add(us, Ordering::Relaxed);
    }

    /// The total wait so far.
    pub fn get(&self) -> Duration {
        Duration::from_micros(self.0.load(Ordering::Relaxed) & !WAIT_CLOSED)
    }

    /// Marks the total as read: parse has sent the overhead header, so later waits (a
    /// stream's frames) change nothing, and [`WaitClock`](crate::overhead::WaitClock)s stop
    /// reading the clock for them. Sets the counter's top bit, which [`Self::get`] ignores.
    pub fn close(&self) {
        self.0.fetch_or(WAIT_CLOSED, Ordering::Relaxed);
    }

    /// Whether [`Self::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.0.load(Ordering::Relaxed) & WAIT_CLOSED != 0
    }
}

/// One endpoint of one model: what an attempt is sent to.
#[derive(Debug, Clone)]
pub struct Target {
    /// The model (concrete slug, reported as `model`).
    pub model: Arc<Model>,
    /// Index into `model.endpoints`.
    pub endpoint: usize,
}

impl Target {
    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.model.endpoints[self.endpoint]
    }

    /// A stable key for health tracking: `model slug @ endpoint tag`.
    pub fn key(&self) -> &str {
        &self.endpoint().key
    }
}

/// The ordered candidates Fallback will try.
#[derive(Debug, Clone, Default)]
pub struct Candidates {
    /// In trial order.
    pub targets: Vec<Target>,
    /// With `allow_fallbacks: false`, how many of `targets` may be tried.
    pub limit: Option<usize>,
    /// Strategy for `openrouter_metadata` (`direct`, `fallback`, …).
    pub strategy: Option<&'static str>,
}

/// One attempt, for `openrouter_metadata.attempts` and the ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// Provider display name.
    pub provider: String,
    /// Provider slug.
    pub provider_slug: String,
    /// Model slug.
    pub model: String,
    /// HTTP status (or the gateway's status for transport failures: 502/504).
    pub status: u16,
    /// Milliseconds the attempt took until classified.
    pub latency_ms: u64,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// The attempts of one request, shared between fallback (writer) and meter (reader).
#[derive(Debug, Clone, Default)]
pub struct AttemptLog(pub Arc<Mutex<Vec<Attempt>>>);

impl AttemptLog {
    /// Appends an attempt.
    pub fn push(&self, a: Attempt) {
        if let Ok(mut v) = self.0.lock() {
            v.push(a);
        }
    }

    /// A copy of the attempts so far.
    pub fn snapshot(&self) -> Vec<Attempt> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

/// The credit hold of a request (set by the credits layer, settled by the meter): the worst case
/// is reserved at admission and replaced by the actual cost when the response ends. Dropping an
/// unsettled hold releases it.
#[derive(Debug, Clone, Default)]
pub struct CreditHold(pub Arc<Mutex<Option<crate::keys::Reservation>>>);

impl CreditHold {
    /// Settles the hold to the actual cost (once; later calls do nothing).
    pub fn settle(&self, actual: Usd) {
        if let Some(r) = self.0.lock().ok().and_then(|mut g| g.take()) {
            r.settle(actual);
        }
    }
}

/// The gateway key a request authenticated with.
#[derive(Debug, Clone)]
pub struct CallerKey {
    /// SHA-256 hex of the key.
    pub hash: String,
    /// Its name.
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deferred() -> ChatRequest {
        let body =
            br#"{"model":"a/b","messages":[{"role":"user","content":"hi"}],"temperature":1}"#;
        let chat =
            crate::parse::parse_request(ApiKind::Chat, body, &Default::default()).expect("parses");
        assert!(
            chat.messages_deferred,
            "a plain conversation is only checked"
        );
        chat
    }

    #[test]
    fn deferred_messages_read_as_parsed_everywhere() {
        let chat = deferred();
        assert_eq!(chat.body()["messages"][0]["content"], "hi");
        assert_eq!(chat.field("messages"), chat.body().get("messages"));
        assert_eq!(chat.body()["temperature"], 1);
        assert!(chat.uses_parameter("messages"));
        assert_eq!(chat.prompt_chars, 2);
    }

    #[test]
    fn writing_a_deferred_body_keeps_messages() {
        // Another field: messages stay deferred, and the whole body sees the change.
        let mut chat = deferred();
        let _ = chat.body();
        chat.set_field("temperature", Value::from(0));
        assert!(chat.messages_deferred);
        assert_eq!(chat.body()["temperature"], 0);
        assert_eq!(chat.body()["messages"][0]["role"], "user");
        // `messages` itself: the new value, and the client's bytes are gone.
        chat.set_field(
            "messages",
            serde_json::json!([{"role": "user", "content": "new"}]),
        );
        assert!(!chat.messages_deferred);
        assert!(chat.verbatim_field("messages").is_none());
        assert_eq!(chat.body()["messages"][0]["content"], "new");
        // The whole body mutably: parsed in place first.
        let mut chat = deferred();
        chat.body_mut().insert("top_p".into(), Value::from(1));
        assert!(!chat.messages_deferred);
        assert_eq!(chat.fields["messages"][0]["content"], "hi");
        assert_eq!(chat.body()["top_p"], 1);
    }

    #[test]
    fn generation_ids_are_gen_seconds_and_20_alphanumerics() {
        let id = GenerationId::new();
        let mut parts = id.as_str().splitn(3, '-');
        assert_eq!(parts.next(), Some("gen"));
        let secs = parts.next().expect("seconds");
        assert!(
            secs.parse::<u64>().is_ok_and(|s| s > 1_600_000_000),
            "{id:?}"
        );
        let tail = parts.next().expect("random part");
        assert_eq!(tail.len(), 20);
        assert!(tail.bytes().all(|b| b.is_ascii_alphanumeric()), "{id:?}");
        assert_ne!(GenerationId::new(), id);
    }

    #[test]
    fn model_chain_drops_repeats_in_order() {
        let body = br#"{"model":"a/a","models":["b/b","a/a","c/c","b/b"],"messages":[{"role":"user","content":"x"}]}"#;
        let chat =
            crate::parse::parse_request(ApiKind::Chat, body, &Default::default()).expect("parse");
        assert_eq!(chat.model_chain(), ["a/a", "b/b", "c/c"]);
        assert!(chat.model_chain_iter().eq(["a/a", "b/b", "c/c"]));
        let body = br#"{"models":["b/b","b/b"],"messages":[{"role":"user","content":"x"}]}"#;
        let chat =
            crate::parse::parse_request(ApiKind::Chat, body, &Default::default()).expect("parse");
        assert_eq!(chat.model_chain(), ["b/b"]);
    }

    #[test]
    fn itoa_writes_decimal_digits() {
        for n in [0, 7, 10, 1_700_000_000, u64::MAX] {
            assert_eq!(itoa(n, &mut [0; 20]), n.to_string().as_bytes());
        }
    }
}
