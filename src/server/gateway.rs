//! [`Gateway`]: the configuration wired into a catalogue, the shared state every stack of one
//! gateway shares (health, sticky sessions, ledger, keys, aliases, metrics) and its accessors.

use crate::alias::{AliasHandle, AliasTable};
use crate::autoroute::AutoRouteLayer;
use crate::catalog::{Catalog, Config, ConfigError, LedgerTarget};
use crate::health::Health;
use crate::keys::KeyStore;
use crate::ledger::{DEFAULT_MEMORY_BYTES, MemorySink, MeterSink};
use crate::metrics::Metrics;
use crate::route::{SessionPins, Sticky};
use crate::telemetry::Observer;
use crate::upstream::Upstream;
use std::path::Path;
use std::sync::Arc;

/// `[ledger] postgres_url` in a build without the `postgres` feature.
#[cfg(not(feature = "postgres"))]
fn postgres_not_built(source: &Path) -> ConfigError {
    ConfigError::new(
        source,
        "[ledger] postgres_url needs switchyard built with the `postgres` feature",
    )
}

/// The PostgreSQL ledger of `[ledger] postgres_url` (alone: not with `path`/`memory_bytes`).
fn open_postgres(
    config: &Config,
    url: &str,
    source: &Path,
) -> Result<Arc<dyn MeterSink>, ConfigError> {
    let l = config.ledger.as_ref();
    if l.is_some_and(|l| l.path.is_some() || l.memory_bytes.is_some()) {
        return Err(ConfigError::new(
            source,
            "[ledger]: `postgres_url` stores generations in PostgreSQL; leave out `path` and \
             `memory_bytes`",
        ));
    }
    #[cfg(feature = "postgres")]
    {
        let pool = l.and_then(|l| l.postgres_pool).unwrap_or(4);
        crate::ledger::PostgresSink::open(url, pool)
            .map(|s| Arc::new(s) as Arc<dyn MeterSink>)
            .map_err(|e| ConfigError::new(source, format!("[ledger] postgres_url: {e}")))
    }
    #[cfg(not(feature = "postgres"))]
    {
        let _ = url;
        Err(postgres_not_built(source))
    }
}

/// Managed keys and every key's spend in the PostgreSQL of `[ledger] postgres_url`.
fn open_postgres_keys(
    url: &str,
    source: &Path,
) -> Result<Arc<dyn crate::keys::KeyPersistence>, ConfigError> {
    #[cfg(feature = "postgres")]
    {
        crate::keys::PostgresKeys::open(url)
            .map(|p| Arc::new(p) as Arc<dyn crate::keys::KeyPersistence>)
            .map_err(|e| ConfigError::new(source, format!("[ledger] postgres_url: {e}")))
    }
    #[cfg(not(feature = "postgres"))]
    {
        let _ = url;
        Err(postgres_not_built(source))
    }
}

/// A configured gateway: catalogue, shared state and settings.
#[derive(Debug, Clone)]
pub struct Gateway {
    pub(super) config: Arc<Config>,
    pub(super) catalog: Arc<Catalog>,
    pub(super) health: Arc<Health>,
    pub(super) upstream: Upstream,
    pub(super) ledger: Arc<dyn MeterSink>,
    /// `[ledger] commit_before_answer`: how long an answer waits for its record's commit.
    pub(super) commit_wait: Option<std::time::Duration>,
    pub(super) keys: Option<KeyStore>,
    pub(super) aliases: AliasHandle,
    pub(super) sticky: Arc<dyn SessionPins>,
    pub(super) auto: AutoRouteLayer,
    pub(super) metrics: Arc<Metrics>,
    pub(super) telemetry: Arc<Observer>,
    pub(super) drain: super::drain::Drain,
    #[cfg(feature = "redis")]
    pub(super) redis: Option<crate::state::redis::RedisState>,
}

impl Gateway {
    /// A gateway for a parsed config; relative paths resolve against `base_dir`.
    pub fn from_config(config: Config, base_dir: &Path) -> Result<Gateway, ConfigError> {
        Self::from_config_with_env(config, base_dir, &|v| std::env::var(v).ok())
    }

    /// As [`Gateway::from_config`], reading provider keys and gateway keys through `env`.
    pub fn from_config_with_env(
        config: Config,
        base_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Gateway, ConfigError> {
        let catalog = Catalog::from_config_with_env(&config, base_dir, env)?;
        let source = config
            .source
            .clone()
            .unwrap_or_else(|| base_dir.join("<config>"));
        let (ledger_path, memory_bytes) = match config.ledger_target()? {
            LedgerTarget::File(path) => (Some(base_dir.join(path)), DEFAULT_MEMORY_BYTES),
            LedgerTarget::Memory { bytes } => (None, bytes),
        };
        let postgres = config.ledger.as_ref().and_then(|l| l.postgres_url.as_ref());
        let commit_wait = match &config.ledger {
            Some(l) => l.commit_wait().map_err(|e| ConfigError::new(&source, e))?,
            None => None,
        };
        let ledger: Arc<dyn MeterSink> = match (postgres, &ledger_path) {
            (Some(url), _) => open_postgres(&config, url, &source)?,
            (None, Some(path)) => crate::ledger::open(path)
                .map_err(|e| ConfigError::new(&source, format!("[ledger] path: {e}")))?,
            (None, None) => Arc::new(MemorySink::with_byte_limit(memory_bytes)),
        };
        // With the ledger in PostgreSQL, keys persist there too, shared by every instance, and
        // nowhere locally (a file would differ per instance).
        let ledger_path = ledger_path.filter(|_| postgres.is_none());
        let keys = if config.auth.is_some() || !config.keys.is_empty() {
            let mut builder = KeyStore::builder();
            if let Some(url) = postgres {
                builder = builder.persistence(open_postgres_keys(url, &source)?);
                let poll_ms = config.auth.as_ref().map_or(1000, |a| a.keys_poll_ms);
                if poll_ms == 0 {
                    return Err(ConfigError::new(
                        &source,
                        "[auth] keys_poll_ms must be at least 1",
                    ));
                }
                builder = builder.sync_every(std::time::Duration::from_millis(poll_ms));
            }
            #[cfg(feature = "sqlite")]
            if let Some(path) = ledger_path
                .as_ref()
                .filter(|p| p.extension().is_none_or(|e| e != "jsonl"))
            {
                let persistence = crate::keys::SqliteKeys::open(path)
                    .map_err(|e| ConfigError::new(&source, format!("[ledger] path: {e}")))?;
                builder = builder.persistence(Arc::new(persistence));
            }
            let store = builder
                .config(config.auth.as_ref(), &config.keys, env)
                .build()
                .map_err(|e| ConfigError::new(&source, e.to_string()))?;
            Some(store)
        } else {
            None
        };
        let redis_url = config.state.as_ref().and_then(|s| s.redis_url.as_ref());
        #[cfg(not(feature = "redis"))]
        if redis_url.is_some() {
            return Err(ConfigError::new(
                &source,
                "[state] redis_url needs switchyard built with the `redis` feature",
            ));
        }
        #[cfg(feature = "redis")]
        let redis = match (redis_url, &config.state) {
            (Some(_), Some(state)) => Some(
                crate::state::redis::RedisState::new(state)
                    .map_err(|e| ConfigError::new(&source, e))?,
            ),
            _ => None,
        };
        let telemetry = Observer::from_config(&config.telemetry, base_dir)
            .map_err(|e| ConfigError::new(&source, format!("[telemetry] request_log_path: {e}")))?;
        let mut gw = Gateway::new(config, catalog);
        gw.telemetry = Arc::new(telemetry);
        #[cfg(feature = "redis")]
        if let Some(redis) = redis {
            gw.sticky = Arc::new(crate::state::redis::RedisSticky::new(redis.clone()));
            gw.redis = Some(redis);
        }
        gw.ledger = ledger;
        gw.commit_wait = commit_wait;
        gw.keys = keys;
        gw.auto = AutoRouteLayer::from_config(gw.config.auto.as_ref(), gw.catalog.clone())
            .map_err(|e| ConfigError::new(&source, e))?;
        Ok(gw)
    }

    /// Reads a config file and builds the gateway.
    pub fn from_file(path: &Path) -> Result<Gateway, ConfigError> {
        let config = Config::load(path)?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        Gateway::from_config(config, base)
    }

    /// The gateway over the embedded default catalogue (providers enabled by their key variables).
    pub fn embedded_default() -> Gateway {
        Gateway::new(Config::default(), Catalog::embedded_default())
    }

    /// A gateway over an already built catalogue.
    pub fn new(mut config: Config, catalog: Catalog) -> Gateway {
        let catalog = Arc::new(catalog);
        // The catalogue now holds the providers and models; their parsed config (megabytes for
        // a large catalogue) is not kept twice.
        config.providers = Vec::new();
        config.models = Vec::new();
        Gateway {
            auto: AutoRouteLayer::from_config(None, catalog.clone())
                .unwrap_or_else(|_| unreachable!("the default [auto] is valid")),
            catalog,
            health: Arc::new(Health::new()),
            upstream: Upstream::new(),
            ledger: Arc::new(MemorySink::with_byte_limit(DEFAULT_MEMORY_BYTES)),
            commit_wait: None,
            keys: None,
            aliases: AliasHandle::new(AliasTable::from_config(&config)),
            sticky: Arc::new(Sticky::new()),
            metrics: Arc::new(Metrics::new()),
            // No file is opened here: a request log to a path comes with `from_config`.
            telemetry: Arc::new(
                Observer::from_config(
                    &crate::telemetry::TelemetryConfig {
                        request_log_path: None,
                        ..config.telemetry.clone()
                    },
                    Path::new("."),
                )
                .unwrap_or_default(),
            ),
            drain: super::drain::Drain::new(),
            #[cfg(feature = "redis")]
            redis: None,
            config: Arc::new(config),
        }
    }

    /// Starts sharing health with the other instances when `[state] redis_url` is set (once;
    /// `serve` calls it). Needs a Tokio runtime.
    pub fn start_shared_state(&self) {
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.redis {
            crate::state::redis::RedisHealth::start(&self.health, redis.clone());
        }
    }

    /// Credits and rate limits: through Redis when `[state] redis_url` is set, else in process.
    pub(super) fn credit_layer(&self, store: KeyStore) -> crate::keys::CreditLayer {
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.redis {
            let admission = crate::state::redis::RedisAdmission::new(store.clone(), redis.clone());
            return crate::keys::CreditLayer::new(store).admission(Arc::new(admission));
        }
        crate::keys::CreditLayer::new(store)
    }

    /// The generation ledger.
    pub fn ledger(&self) -> &Arc<dyn MeterSink> {
        &self.ledger
    }

    /// The gateway keys, when `[auth]` or `[[keys]]` are configured.
    pub fn keys(&self) -> Option<&KeyStore> {
        self.keys.as_ref()
    }

    /// True when completions need a gateway key.
    pub(super) fn auth_required(&self) -> bool {
        self.keys.is_some() && self.config.auth.as_ref().is_none_or(|a| a.required)
    }

    /// The config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The catalogue.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The health registry.
    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    /// The metrics `GET /metrics` renders; the completion stacks record into it unless
    /// `[server] metrics = false`.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Where finished requests are reported: the request log and the dashboard's store
    /// (`[telemetry]`).
    pub fn telemetry(&self) -> &Arc<Observer> {
        &self.telemetry
    }

    /// The alias table's handle: [`AliasHandle::replace`] swaps it without a restart.
    pub fn aliases(&self) -> &AliasHandle {
        &self.aliases
    }

    /// Reloads `[aliases]` when the config file changes (polled every second) or on SIGHUP.
    /// Does nothing for a gateway not built from a file.
    pub fn watch_config(&self) {
        let Some(path) = self.config.source.clone().filter(|p| p.is_file()) else {
            return;
        };
        crate::alias::watch_file(path.clone(), self.aliases.clone());
        #[cfg(unix)]
        {
            let handle = self.aliases.clone();
            tokio::spawn(async move {
                let Ok(mut hup) =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                else {
                    return;
                };
                while hup.recv().await.is_some() {
                    match Config::load(&path) {
                        Ok(c) => {
                            handle.replace(AliasTable::from_config(&c));
                            tracing::info!("SIGHUP: reloaded aliases from {}", path.display());
                        }
                        Err(e) => tracing::warn!("SIGHUP: keeping the old aliases: {e}"),
                    }
                }
            });
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // panicking is how tests fail
mod tests {
    use super::*;
    use crate::ledger::GenerationRecord;

    fn gateway(toml: &str) -> Result<Gateway, ConfigError> {
        let config = Config::parse(Path::new("gw.toml"), toml).unwrap();
        Gateway::from_config_with_env(config, Path::new("."), &|_| None)
    }

    #[test]
    fn memory_bytes_bounds_the_memory_ledger() {
        let gw = gateway("[ledger]\nmemory_bytes = 1\n").unwrap();
        for id in ["gen-a", "gen-b"] {
            gw.ledger().record(GenerationRecord {
                id: id.into(),
                ..GenerationRecord::default()
            });
        }
        // One byte holds only the newest record.
        assert!(gw.ledger().get("gen-a").is_none());
        assert!(gw.ledger().get("gen-b").is_some());
    }

    #[test]
    fn path_and_memory_bytes_together_are_refused() {
        let err = gateway("[ledger]\npath = \"x.db\"\nmemory_bytes = 1000\n").unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.contains("`path`") && shown.contains("`memory_bytes`"),
            "{shown}"
        );
    }

    #[test]
    fn commit_before_answer_is_on_for_postgres_only_unless_set() {
        use crate::catalog::LedgerConfig;
        let second = Some(std::time::Duration::from_secs(1));
        let pg = LedgerConfig {
            postgres_url: Some("postgres://h/db".into()),
            ..LedgerConfig::default()
        };
        assert_eq!(pg.commit_wait(), Ok(second));
        let off = LedgerConfig {
            commit_before_answer: Some(false),
            ..pg
        };
        assert_eq!(off.commit_wait(), Ok(None));
        assert_eq!(LedgerConfig::at("x.db").commit_wait(), Ok(None));
        let sqlite_on = LedgerConfig {
            commit_before_answer: Some(true),
            commit_timeout_ms: Some(250),
            ..LedgerConfig::at("x.db")
        };
        assert_eq!(
            sqlite_on.commit_wait(),
            Ok(Some(std::time::Duration::from_millis(250)))
        );
        // Read from the file, and wired into the gateway.
        let gw = gateway(
            "[ledger]
memory_bytes = 1000
commit_before_answer = true
",
        )
        .unwrap();
        assert_eq!(gw.commit_wait, second);
    }

    #[test]
    fn a_zero_commit_timeout_is_refused() {
        let err = gateway(
            "[ledger]
memory_bytes = 1000
commit_timeout_ms = 0
",
        )
        .unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.contains("commit_timeout_ms") && shown.contains("commit_before_answer = false"),
            "{shown}"
        );
    }
}
