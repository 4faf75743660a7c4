//! The TOML config file: its schema (documented in `docs/config.md`) and loading with errors that
//! name the file, the line and the field.

use super::pricing::{PriceOverride, PriceSet, Pricing, Usd};
use super::provider::{Api, Timeouts};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The whole config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// `[server]`.
    #[serde(default)]
    pub server: ServerConfig,
    /// `[catalog]`: where models come from besides this file.
    #[serde(default)]
    pub catalog: CatalogConfig,
    /// `[[providers]]`.
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
    /// `[[models]]`.
    #[serde(default)]
    pub models: Vec<ModelConfig>,
    /// `[aliases]`: `"openai/gpt-latest" = "openai/gpt-5"`.
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
    /// `[auth]`.
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    /// `[[keys]]`.
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
    /// `[ledger]`.
    #[serde(default)]
    pub ledger: Option<LedgerConfig>,
    /// `[auto]`: the Auto Router's candidate models.
    #[serde(default)]
    pub auto: Option<AutoConfig>,
    /// `[state]`: state shared with other instances (Redis).
    #[serde(default)]
    pub state: Option<StateConfig>,
    /// `[telemetry]`: request log, dashboard, trace export.
    #[serde(default)]
    pub telemetry: crate::telemetry::config::TelemetryConfig,
    /// The file this config was read from (set by [`Config::load`] and [`Config::parse`]).
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Listen address, `127.0.0.1:8080` by default.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Largest accepted request body in bytes (default 32 MiB); larger ones get 413.
    #[serde(default = "default_body_limit")]
    pub max_body_bytes: usize,
    /// How long to wait for the first upstream byte before sending SSE keep-alive comments.
    #[serde(default = "default_keepalive_ms")]
    pub keepalive_ms: u64,
    /// How long a graceful stop (Ctrl-C, SIGTERM) lets in-flight requests finish before it
    /// ends them.
    #[serde(default = "default_shutdown_ms")]
    pub shutdown_grace_ms: u64,
    /// Record metrics and serve them at `GET /metrics` (default true).
    #[serde(default = "yes")]
    pub metrics: bool,
    /// How many Responses API responses are kept for `previous_response_id` (default 1000).
    #[serde(default = "default_responses_store")]
    pub responses_store: usize,
    /// How many bytes of their conversations (as JSON) are kept at most (default 64 MiB).
    #[serde(default = "default_responses_store_bytes")]
    pub responses_store_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            max_body_bytes: default_body_limit(),
            keepalive_ms: default_keepalive_ms(),
            shutdown_grace_ms: default_shutdown_ms(),
            metrics: true,
            responses_store: default_responses_store(),
            responses_store_bytes: default_responses_store_bytes(),
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".to_owned()
}
fn default_body_limit() -> usize {
    32 * 1024 * 1024
}
fn default_keepalive_ms() -> u64 {
    1000
}
fn default_responses_store() -> usize {
    crate::ingress::responses::DEFAULT_CAPACITY
}
fn default_responses_store_bytes() -> usize {
    crate::ingress::responses::DEFAULT_MAX_BYTES
}
fn default_shutdown_ms() -> u64 {
    30_000
}

/// `[catalog]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CatalogConfig {
    /// Also load the embedded default catalogue. Defaults to true when the file declares no
    /// `[[providers]]`, false otherwise.
    pub include_default: Option<bool>,
    /// An OpenRouter-format `/models` JSON dump to import; its models are served through the
    /// `openrouter` provider. Relative to the config file.
    pub models_json: Option<PathBuf>,
}

/// `[[providers]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ProviderConfig {
    /// Routing slug.
    pub slug: String,
    /// Display name (defaults to the slug).
    pub name: Option<String>,
    /// Wire format.
    #[serde(default)]
    pub api: Api,
    /// Base URL with the version path.
    pub base_url: String,
    /// Environment variable holding the key; the provider is disabled while it is unset.
    pub api_key_env: Option<String>,
    /// Timeouts in milliseconds.
    #[serde(default)]
    pub timeouts: TimeoutsConfig,
    /// Whether the provider stores or trains on data (default false).
    #[serde(default)]
    pub collects_data: bool,
    /// Zero data retention (default false).
    #[serde(default)]
    pub zdr: bool,
    /// Extra headers for every upstream request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// For `GET /providers`.
    pub privacy_policy_url: Option<String>,
    /// For `GET /providers`.
    pub terms_of_service_url: Option<String>,
    /// For `GET /providers`.
    pub status_page_url: Option<String>,
    /// For `GET /providers`.
    pub headquarters: Option<String>,
}

/// `timeouts = { connect_ms, first_byte_ms, idle_ms, total_ms }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TimeoutsConfig {
    /// Connect timeout.
    pub connect_ms: Option<u64>,
    /// Time to the first byte.
    pub first_byte_ms: Option<u64>,
    /// Longest gap between chunks.
    pub idle_ms: Option<u64>,
    /// Whole exchange.
    pub total_ms: Option<u64>,
}

impl TimeoutsConfig {
    pub(crate) fn resolve(&self) -> Timeouts {
        let d = Timeouts::default();
        let ms = |v: Option<u64>, def: Duration| v.map_or(def, Duration::from_millis);
        Timeouts {
            connect: ms(self.connect_ms, d.connect),
            first_byte: ms(self.first_byte_ms, d.first_byte),
            idle: ms(self.idle_ms, d.idle),
            total: ms(self.total_ms, d.total),
        }
    }
}

/// `[[models]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ModelConfig {
    /// `author/name`.
    pub slug: String,
    /// Display name.
    pub name: Option<String>,
    /// Permanent slug.
    pub canonical_slug: Option<String>,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Release time, Unix seconds.
    #[serde(default)]
    pub created: u64,
    /// Context window.
    pub context_length: Option<u32>,
    /// Default largest completion.
    pub max_completion_tokens: Option<u32>,
    /// Input modalities (default `["text"]`).
    pub input_modalities: Option<Vec<String>>,
    /// Output modalities (default `["text"]`).
    pub output_modalities: Option<Vec<String>>,
    /// Tokenizer family name.
    pub tokenizer: Option<String>,
    /// Family for `~author/family-latest`.
    pub family: Option<String>,
    /// `[[models.endpoints]]`.
    #[serde(default)]
    pub endpoints: Vec<EndpointConfig>,
}

/// `[[models.endpoints]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EndpointConfig {
    /// Provider slug.
    pub provider: String,
    /// Upstream model id.
    pub model: String,
    /// Routing tag (default: the provider slug).
    pub tag: Option<String>,
    /// Prices.
    #[serde(default)]
    pub pricing: PricingConfig,
    /// Context window override.
    pub context_length: Option<u32>,
    /// Largest completion.
    pub max_completion_tokens: Option<u32>,
    /// Quantization.
    pub quantization: Option<String>,
    /// Supported request parameters (default: all).
    pub supported_parameters: Option<Vec<String>>,
    /// Service tier of this endpoint.
    pub service_tier: Option<String>,
}

/// `pricing = { … }`: token prices in USD per million tokens, `request` per request, `image` per
/// image, `web_search` per search, `discount` a fraction.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PricingConfig {
    /// Per million prompt tokens.
    #[serde(default)]
    pub prompt: f64,
    /// Per million completion tokens.
    #[serde(default)]
    pub completion: f64,
    /// Per request.
    #[serde(default)]
    pub request: f64,
    /// Per image.
    #[serde(default)]
    pub image: f64,
    /// Per web search.
    #[serde(default)]
    pub web_search: f64,
    /// Per million reasoning tokens, when priced apart.
    pub internal_reasoning: Option<f64>,
    /// Per million cached tokens read.
    pub input_cache_read: Option<f64>,
    /// Per million tokens written to the cache (5 minutes).
    pub input_cache_write: Option<f64>,
    /// Per million tokens written to the cache (1 hour).
    pub input_cache_write_1h: Option<f64>,
    /// Fraction off, `0.25` = 25%.
    #[serde(default)]
    pub discount: f64,
    /// Conditional prices.
    #[serde(default)]
    pub overrides: Vec<OverrideConfig>,
}

/// `overrides = [{ min_prompt_tokens = 200000, prompt = 5.0 }]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OverrideConfig {
    /// Applies above this many prompt tokens.
    pub min_prompt_tokens: Option<u64>,
    /// `HHMM` UTC, inclusive.
    pub utc_start: Option<u16>,
    /// `HHMM` UTC, exclusive.
    pub utc_end: Option<u16>,
    /// Per million prompt tokens.
    pub prompt: Option<f64>,
    /// Per million completion tokens.
    pub completion: Option<f64>,
    /// Per million cached tokens read.
    pub input_cache_read: Option<f64>,
    /// Per million tokens written to the cache.
    pub input_cache_write: Option<f64>,
    /// Per million reasoning tokens.
    pub internal_reasoning: Option<f64>,
    /// Per request.
    pub request: Option<f64>,
    /// Per image.
    pub image: Option<f64>,
}

impl PricingConfig {
    pub(crate) fn resolve(&self) -> Pricing {
        let pm = Usd::from_per_million;
        Pricing {
            prompt: pm(self.prompt),
            completion: pm(self.completion),
            request: Usd::from_dollars(self.request),
            image: Usd::from_dollars(self.image),
            web_search: Usd::from_dollars(self.web_search),
            internal_reasoning: self.internal_reasoning.map(pm),
            input_cache_read: self.input_cache_read.map(pm),
            input_cache_write: self.input_cache_write.map(pm),
            input_cache_write_1h: self.input_cache_write_1h.map(pm),
            discount_ppm: (self.discount.clamp(0.0, 1.0) * 1e6).round() as u32,
            overrides: self
                .overrides
                .iter()
                .map(|o| PriceOverride {
                    min_prompt_tokens: o.min_prompt_tokens,
                    utc_start: o.utc_start,
                    utc_end: o.utc_end,
                    prices: PriceSet {
                        prompt: o.prompt.map(pm),
                        completion: o.completion.map(pm),
                        input_cache_read: o.input_cache_read.map(pm),
                        input_cache_write: o.input_cache_write.map(pm),
                        internal_reasoning: o.internal_reasoning.map(pm),
                        request: o.request.map(Usd::from_dollars),
                        image: o.image.map(Usd::from_dollars),
                    },
                })
                .collect(),
        }
    }
}

/// `[auth]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AuthConfig {
    /// Requests need a gateway key.
    #[serde(default = "yes")]
    pub required: bool,
    /// Environment variable holding the management key that enables `/api/v1/keys`.
    pub management_key_env: Option<String>,
    /// With keys in PostgreSQL (`[ledger] postgres_url`): how often each instance reads the
    /// key changes and spend of the others, in ms (1000).
    #[serde(default = "default_keys_poll_ms")]
    pub keys_poll_ms: u64,
}

fn default_keys_poll_ms() -> u64 {
    1000
}

impl AuthConfig {
    /// `[auth]` with `required` set and no management key.
    pub fn new(required: bool) -> Self {
        AuthConfig {
            required,
            management_key_env: None,
            keys_poll_ms: default_keys_poll_ms(),
        }
    }
}

fn yes() -> bool {
    true
}

/// `[[keys]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct KeyConfig {
    /// Label.
    pub label: String,
    /// Environment variable holding the key.
    pub key_env: Option<String>,
    /// Hex SHA-256 of the key.
    pub key_sha256: Option<String>,
    /// Credit limit in USD; none means unlimited.
    pub limit: Option<f64>,
    /// `none | daily | weekly | monthly`.
    pub limit_reset: Option<String>,
    /// Disabled keys get 403.
    #[serde(default)]
    pub disabled: bool,
    /// Requests per minute; none means unlimited.
    pub rpm: Option<u32>,
    /// Tokens (prompt + completion) per minute; none means unlimited.
    pub tpm: Option<u64>,
    /// Models the key may call, as globs (`"openai/*"`); none or empty allows every model.
    #[serde(default)]
    pub models: Vec<String>,
}

impl KeyConfig {
    /// A `[[keys]]` entry with only its label: no key source yet, no limit, enabled.
    pub fn new(label: impl Into<String>) -> Self {
        KeyConfig {
            label: label.into(),
            key_env: None,
            key_sha256: None,
            limit: None,
            limit_reset: None,
            disabled: false,
            rpm: None,
            tpm: None,
            models: Vec::new(),
        }
    }
}

/// `[state]`: where instances behind one load balancer share credits, rate limits and health.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StateConfig {
    /// `redis://host:port[/db]`; needs the `redis` feature. Unset: everything in process.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key the gateway writes (`switchyard:`), so deployments can share a
    /// server.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// Multiplexed connections to Redis, used round-robin (4).
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// How long a Redis command (or connecting) may take, in ms, before the request is refused
    /// (money) or the signal dropped (health) (500).
    #[serde(default = "default_state_timeout_ms")]
    pub timeout_ms: u64,
    /// How long an unsettled reservation holds credit before Redis forgets it (an instance died
    /// mid-request), in seconds (600).
    #[serde(default = "default_reservation_ttl_s")]
    pub reservation_ttl_s: u64,
    /// How often each instance reads the others' health verdicts, in ms (250).
    #[serde(default = "default_health_poll_ms")]
    pub health_poll_ms: u64,
}

impl StateConfig {
    /// Redis at `url` with the default prefix, pool, timeouts and poll interval.
    pub fn redis(url: impl Into<String>) -> Self {
        StateConfig {
            redis_url: Some(url.into()),
            key_prefix: default_key_prefix(),
            pool_size: default_pool_size(),
            timeout_ms: default_state_timeout_ms(),
            reservation_ttl_s: default_reservation_ttl_s(),
            health_poll_ms: default_health_poll_ms(),
        }
    }
}

fn default_key_prefix() -> String {
    "switchyard:".to_owned()
}
fn default_pool_size() -> usize {
    4
}
fn default_state_timeout_ms() -> u64 {
    500
}
fn default_reservation_ttl_s() -> u64 {
    600
}
fn default_health_poll_ms() -> u64 {
    250
}

/// `[ledger]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LedgerConfig {
    /// SQLite file (or `.jsonl` for a JSON Lines ledger); `switchyard.db` when neither it nor
    /// `memory_bytes` is set.
    pub path: Option<PathBuf>,
    /// Keep generations in memory instead, the newest within this many bytes (estimated from
    /// each record's fields). Exclusive with `path`.
    pub memory_bytes: Option<usize>,
    /// `postgres://user@host/db`: the ledger in PostgreSQL, shared by every instance (feature
    /// `postgres`). Exclusive with `path` and `memory_bytes`.
    pub postgres_url: Option<String>,
    /// Reading connections to PostgreSQL (4); one more writes.
    pub postgres_pool: Option<usize>,
    /// Hold the end of every answer until its record is committed, so a killed instance loses
    /// no row of what it answered. On by default with `postgres_url`, off for the file ledgers.
    pub commit_before_answer: Option<bool>,
    /// How long an answer waits for its record's commit before it goes out anyway (1000 ms).
    pub commit_timeout_ms: Option<u64>,
}

impl LedgerConfig {
    /// A ledger in `path`: SQLite, or JSON Lines when the name ends in `.jsonl`.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        LedgerConfig {
            path: Some(path.into()),
            memory_bytes: None,
            postgres_url: None,
            postgres_pool: None,
            commit_before_answer: None,
            commit_timeout_ms: None,
        }
    }

    /// How long an answer waits for its record's commit, when it waits: `commit_before_answer`
    /// (default: on with `postgres_url`) bounded by `commit_timeout_ms`. A zero bound is an
    /// error: it would wait for nothing while saying it waits.
    pub fn commit_wait(&self) -> Result<Option<Duration>, String> {
        let on = self
            .commit_before_answer
            .unwrap_or(self.postgres_url.is_some());
        match self.commit_timeout_ms {
            Some(0) => Err(
                "[ledger] commit_timeout_ms must be at least 1; to answer without \
                            waiting for the ledger, set commit_before_answer = false"
                    .into(),
            ),
            ms => Ok(on.then(|| Duration::from_millis(ms.unwrap_or(DEFAULT_COMMIT_TIMEOUT_MS)))),
        }
    }
}

/// `[ledger] commit_timeout_ms` unless set: above a PostgreSQL round trip under load by far,
/// short enough that clients barely notice a ledger that is down.
const DEFAULT_COMMIT_TIMEOUT_MS: u64 = 1000;

/// Where generations go, as `[ledger]` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerTarget {
    /// A SQLite file, or JSON Lines for a `.jsonl` name; relative to the config file.
    File(PathBuf),
    /// In memory, the newest records within this many bytes.
    Memory {
        /// The bound.
        bytes: usize,
    },
}

impl Config {
    /// Where generations go: memory without a `[ledger]` section or with only `memory_bytes`,
    /// else `path` (default `switchyard.db`). Both keys at once is an error naming them.
    pub fn ledger_target(&self) -> Result<LedgerTarget, ConfigError> {
        let memory = |bytes| LedgerTarget::Memory { bytes };
        match &self.ledger {
            None => Ok(memory(crate::ledger::DEFAULT_MEMORY_BYTES)),
            Some(l) => match (&l.path, l.memory_bytes) {
                (Some(_), Some(_)) => Err(ConfigError::new(
                    self.source.as_deref().unwrap_or(Path::new("<config>")),
                    "[ledger]: `path` stores generations in a file and `memory_bytes` keeps them \
                     in memory; set one of the two",
                )),
                (None, Some(bytes)) => Ok(memory(bytes)),
                (path, None) => Ok(LedgerTarget::File(
                    path.clone().unwrap_or_else(|| "switchyard.db".into()),
                )),
            },
        }
    }
}

/// `[auto]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AutoConfig {
    /// Candidate models with their tier (0 = cheapest).
    #[serde(default)]
    pub models: Vec<AutoModelConfig>,
    /// Target share of calls sent above tier 0, in `[0, 1]`.
    pub strong_share: Option<f64>,
    /// The scorer to use (`default`, `linear`, `heuristic`, `length`).
    pub scorer: Option<String>,
    /// A kNN bank file (`SYKN`, built from your own labels by
    /// `cargo run --release --example autoroute_eval -- --bank-out FILE --weak MODEL DATA.jsonl`)
    /// used by the default scorer instead of the shipped one. Relative to the config file.
    pub bank: Option<PathBuf>,
}

/// One `[auto].models` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AutoModelConfig {
    /// Model slug.
    pub slug: String,
    /// Tier, 0 = cheapest.
    #[serde(default)]
    pub tier: u8,
}

/// A config file that could not be read or understood: names the file, line, column and field.
#[derive(Debug)]
#[non_exhaustive]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// What is wrong, naming the field.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    pub(crate) fn new(path: &Path, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.to_owned(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    pub(crate) fn at(path: &Path, text: &str, offset: usize, message: impl Into<String>) -> Self {
        let before = &text[..offset.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        ConfigError {
            path: path.to_owned(),
            line: Some(line),
            column: Some(column),
            message: message.into(),
        }
    }
}

impl Config {
    /// Parses config text; `path` is only used in error messages.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        // One `[[models]]` entry at a time when that works (far less garbage for a large
        // catalogue, see `sections`); otherwise, and for every error, the whole text at once.
        let parsed = super::sections::split(text).and_then(|s| Self::parse_sections(&s));
        let mut config = match parsed {
            Some(config) => config,
            None => Self::parse_whole(path, text)?,
        };
        if let (Some(auto), Some(dir)) = (config.auto.as_mut(), path.parent()) {
            if let Some(bank) = auto.bank.as_mut().filter(|b| b.is_relative()) {
                *bank = dir.join(&*bank);
            }
        }
        config.source = Some(path.to_owned());
        Ok(config)
    }

    /// The config of a split file, or `None` when a piece does not parse on its own or the
    /// rest of the file also defines `models` (the whole-document parse decides then).
    fn parse_sections(sections: &super::sections::Sections<'_>) -> Option<Config> {
        /// One `[[models]]` entry.
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Entry {
            models: Vec<ModelConfig>,
        }
        let rest: toml::Table = toml::from_str(&sections.rest).ok()?;
        if rest.contains_key("models") {
            return None;
        }
        let mut config: Config = rest.try_into().ok()?;
        config.models.reserve_exact(sections.entries.len());
        for text in &sections.entries {
            let mut entry: Entry = toml::from_str(text).ok()?;
            let mut model = entry.models.pop().filter(|_| entry.models.is_empty())?;
            // serde grows the list to 4; most models have one or two endpoints.
            model.endpoints.shrink_to_fit();
            config.models.push(model);
        }
        Some(config)
    }

    fn parse_whole(path: &Path, text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| {
            // toml's own message repeats the source excerpt; keep only the explanation.
            let message = e.message().trim().to_owned();
            match e.span() {
                Some(span) => ConfigError::at(path, text, span.start, message),
                None => ConfigError::new(path, message),
            }
        })
    }

    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(path, format!("cannot read the config file: {e}")))?;
        Config::parse(path, &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_file_line_and_field() {
        let text = "[server]\nlisten = \"x\"\n\n[[providers]]\nslug = \"a\"\nbase_url = \"http://x\"\napi = \"soap\"\n";
        let err = Config::parse(Path::new("gw.toml"), text).unwrap_err();
        let shown = err.to_string();
        assert!(shown.starts_with("gw.toml:7:"), "{shown}");
        assert!(shown.contains("soap"), "{shown}");

        let err = Config::parse(Path::new("gw.toml"), "[server]\nlisen = 1\n").unwrap_err();
        assert_eq!(err.line, Some(2));
        assert!(err.message.contains("lisen"), "{}", err.message);
    }

    /// The entry-by-entry parse gives what the whole-document parse gives.
    #[test]
    fn sections_parse_like_the_whole_document() {
        let docs = [
            super::super::DEFAULT_CATALOG,
            include_str!("../../examples/config/gateway.toml"),
            "[[models]]\nslug = \"a/b\"\n[auth]\n[[models]]\nslug = \"c/d\"\n[models.endpoints]\n",
        ];
        for text in docs {
            let path = Path::new("x.toml");
            let sections = super::super::sections::split(text).unwrap();
            let split = Config::parse_sections(&sections);
            let whole = Config::parse_whole(path, text);
            match (split, whole) {
                (Some(split), Ok(whole)) => {
                    assert_eq!(format!("{split:?}"), format!("{whole:?}"));
                    assert!(split.models.len() >= 2);
                }
                (None, Err(_)) => {}
                (split, whole) => panic!("{split:?}\n{whole:?}\n{text}"),
            }
        }
        // `models` defined in the rest as well: left to the whole-document parse.
        let text = "models = []\n[[models]]\nslug = \"a/b\"\n";
        assert!(Config::parse_sections(&super::super::sections::split(text).unwrap()).is_none());
        assert!(Config::parse(Path::new("x.toml"), text).is_err());
    }

    #[test]
    fn issue_example_parses() {
        let text = r#"
[server]
listen = "127.0.0.1:8080"

[[providers]]
slug = "openai"
name = "OpenAI"
api = "openai"
base_url = "https://api.openai.com/v1"
api_key_env = "OPENAI_API_KEY"
timeouts = { connect_ms = 5000, first_byte_ms = 60000, idle_ms = 30000, total_ms = 600000 }

[[models]]
slug = "openai/gpt-4o-mini"
name = "OpenAI: GPT-4o mini"
context_length = 128000

[[models.endpoints]]
provider = "openai"
model = "gpt-4o-mini"
pricing = { prompt = 0.15, completion = 0.60 }
"#;
        let cfg = Config::parse(Path::new("x.toml"), text).unwrap();
        assert_eq!(
            cfg.models[0].endpoints[0].pricing.resolve().completion,
            Usd::from_per_million(0.6)
        );
        assert_eq!(
            cfg.providers[0].timeouts.resolve().idle,
            Duration::from_secs(30)
        );
    }
}
