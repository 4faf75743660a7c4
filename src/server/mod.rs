//! The ready-to-run gateway: the layers stacked in their order, mounted under `/api/v1/` and
//! `/v1/` with the catalogue endpoints, on axum; `/healthz` and `/metrics` at the root.
//!
//! ```no_run
//! use switchyard::server::Gateway;
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let gateway = Gateway::embedded_default();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! gateway.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

mod catalog_api;
mod direct;

mod keys_api;
mod metrics_api;
mod repoll;

pub use repoll::Repoll;

use crate::alias::{AliasHandle, AliasLayer, AliasTable};
use crate::autoroute::AutoRouteLayer;
use crate::balance::BalanceLayer;
use crate::body::Body;
use crate::catalog::{Catalog, Config, ConfigError};
use crate::context::ApiKind;
use crate::error::GatewayError;
use crate::fallback::FallbackLayer;
use crate::health::Health;
use crate::keys::{AuthLayer, CreditLayer, KeyStore};
use crate::ledger::{MemorySink, MeterSink};
use crate::meter::MeterLayer;
use crate::metrics::Metrics;
use crate::parse::ParseLayer;
use crate::route::RouteLayer;
use crate::route::Sticky;
use crate::translate::TranslateLayer;
use crate::upstream::Upstream;
use axum::extract::{Path as AxPath, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post_service};
use axum::{Json, Router};
use http::StatusCode;
use serde_json::json;
use std::convert::Infallible;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceBuilder;
use tower::util::BoxCloneSyncService;

/// A completion stack with its type erased, as the router mounts it.
pub type CompletionService =
    BoxCloneSyncService<http::Request<axum::body::Body>, http::Response<Body>, Infallible>;

/// Generations kept in memory when no `[ledger]` is configured.
const MEMORY_LEDGER_CAPACITY: usize = 100_000;

/// A configured gateway: catalogue, shared state and settings.
#[derive(Debug, Clone)]
pub struct Gateway {
    config: Arc<Config>,
    catalog: Arc<Catalog>,
    health: Arc<Health>,
    upstream: Upstream,
    ledger: Arc<dyn MeterSink>,
    keys: Option<KeyStore>,
    aliases: AliasHandle,
    sticky: Arc<Sticky>,
    auto: AutoRouteLayer,
    metrics: Arc<Metrics>,
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
        let ledger_path = config
            .ledger
            .as_ref()
            .map(|l| base_dir.join(l.path.clone().unwrap_or_else(|| "switchyard.db".into())));
        let ledger: Arc<dyn MeterSink> = match &ledger_path {
            Some(path) => crate::ledger::open(path)
                .map_err(|e| ConfigError::new(&source, format!("[ledger] path: {e}")))?,
            None => Arc::new(MemorySink::new(MEMORY_LEDGER_CAPACITY)),
        };
        let keys = if config.auth.is_some() || !config.keys.is_empty() {
            let mut builder = KeyStore::builder();
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
        let mut gw = Gateway::new(config, catalog);
        gw.ledger = ledger;
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
            ledger: Arc::new(MemorySink::new(MEMORY_LEDGER_CAPACITY)),
            keys: None,
            aliases: AliasHandle::new(AliasTable::from_config(&config)),
            sticky: Arc::new(Sticky::new()),
            metrics: Arc::new(Metrics::new()),
            config: Arc::new(config),
        }
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
    fn auth_required(&self) -> bool {
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

    /// The completion stack for one client API, outermost first:
    /// auth → parse → alias → route → balance → credits → fallback → meter → translate →
    /// upstream.
    pub fn completion_service(&self, kind: ApiKind) -> CompletionService {
        self.completion_service_over(kind, self.upstream.clone())
    }

    /// [`Gateway::completion_service`] over another upstream service than the HTTP client: an
    /// in-process model server, a custom client, a test double. It receives each attempt's
    /// request as translate built it (the provider's wire format, the [`crate::context::Target`]
    /// extension naming the endpoint).
    pub fn completion_service_over<U>(&self, kind: ApiKind, upstream: U) -> CompletionService
    where
        U: tower::Service<
                http::Request<Body>,
                Response = http::Response<Body>,
                Error = crate::BoxError,
            > + Clone
            + Send
            + Sync
            + 'static,
        U::Future: Send + 'static,
    {
        let server = &self.config.server;
        let auth = self.keys.clone().map(|store| {
            let layer = AuthLayer::new(store);
            if self.auth_required() {
                layer
            } else {
                layer.optional()
            }
        });
        let credits = self.keys.clone().map(|store| {
            let layer = CreditLayer::new(store);
            if self.auth_required() {
                layer
            } else {
                layer.allow_anonymous()
            }
        });
        let mut parse = ParseLayer::new(kind).max_body_bytes(server.max_body_bytes);
        let mut fallback = FallbackLayer::new()
            .keepalive_after(Duration::from_millis(server.keepalive_ms))
            .health(self.health.clone())
            .sticky(self.sticky.clone());
        if server.metrics {
            parse = parse.metrics(self.metrics.clone());
            fallback = fallback.metrics(self.metrics.clone());
        }
        let stack = ServiceBuilder::new()
            .option_layer(auth)
            .layer(parse)
            .layer(AliasLayer::with_handle(
                self.catalog.clone(),
                self.aliases.clone(),
            ))
            .layer(self.auto.clone())
            .layer(
                RouteLayer::new(self.catalog.clone())
                    .health(self.health.clone())
                    .sticky(self.sticky.clone()),
            )
            .layer(BalanceLayer::new().health(self.health.clone()))
            .option_layer(credits)
            .layer(fallback)
            .layer(
                MeterLayer::new()
                    .sink(self.ledger.clone())
                    .health(self.health.clone()),
            )
            .layer(TranslateLayer::new())
            .service(upstream);
        BoxCloneSyncService::new(stack)
    }

    /// The axum router with every endpoint, under `/api/v1/` and `/v1/`, and `/healthz` and
    /// `/metrics` (unless `[server] metrics = false`) at the root.
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route_service(
                "/chat/completions",
                post_service(self.completion_service(ApiKind::Chat)),
            )
            .route_service(
                "/completions",
                post_service(self.completion_service(ApiKind::Completions)),
            )
            .route("/models", get(list_models))
            .route("/models/{author}/{slug}/endpoints", get(model_endpoints))
            .route("/model/{author}/{slug}", get(one_model))
            .route("/providers", get(list_providers))
            .route("/generation", get(keys_api::generation))
            .route("/key", get(keys_api::key_info))
            .route("/auth/key", get(keys_api::key_info))
            .route("/credits", get(keys_api::credits))
            .route("/keys", any(keys_api::manage))
            .route("/keys/{hash}", any(keys_api::manage))
            .with_state(self.clone());
        let mut root = Router::new()
            .nest("/api/v1", api.clone())
            .nest("/v1", api)
            .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }));
        if self.config.server.metrics {
            root = root.route(
                "/metrics",
                get(metrics_api::metrics).with_state(self.clone()),
            );
        }
        root.fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
    }

    /// Serves on `listener` until `shutdown` resolves, then lets in-flight requests (streams
    /// included) finish for at most `[server].shutdown_grace_ms`. Connections get the default
    /// [`ServerLimits`].
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.serve_with_limits(listener, shutdown, ServerLimits::default())
            .await
    }

    /// As [`Gateway::serve`], with explicit connection limits (header size, slow clients).
    pub async fn serve_with_limits(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
        limits: ServerLimits,
    ) -> std::io::Result<()> {
        use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
        use hyper_util::server::conn::auto::Builder;

        let grace = Duration::from_millis(self.config.server.shutdown_grace_ms);
        self.watch_config();
        let ledger = self.ledger.clone();
        // Completions skip the router (see `direct`); everything else goes through it.
        let direct = direct::Direct {
            router: self.router(),
            chat: self.completion_service(ApiKind::Chat),
            completions: self.completion_service(ApiKind::Completions),
        };
        let service =
            hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                direct.call(req)
            });
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_buf_size(limits.max_header_bytes.max(8192));
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
        let builder = Arc::new(builder);
        // Dropped at shutdown: every connection then finishes gracefully.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
        // Each connection holds a clone; `closed()` resolves when the last one is gone.
        let (done_tx, done_rx) = tokio::sync::mpsc::channel::<()>(1);
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (tcp, _) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            let builder = builder.clone();
            let service = service.clone();
            let mut stop = stop_rx.clone();
            let done = done_tx.clone();
            let first_byte_within = limits.header_read_timeout;
            // `Repoll`: hyper wakes this task while it runs whenever the body is read.
            tokio::spawn(Repoll::new(async move {
                // A client that connects and sends nothing is dropped at the header deadline
                // (hyper's own deadline only starts once the protocol is known).
                let mut probe = [0u8; 1];
                match tokio::time::timeout(first_byte_within, tcp.peek(&mut probe)).await {
                    Ok(Ok(n)) if n > 0 => {}
                    _ => return,
                }
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
                let mut conn = std::pin::pin!(conn);
                tokio::select! {
                    _ = conn.as_mut() => {}
                    _ = stop.changed() => {
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.await;
                    }
                }
                drop(done);
            }));
        }
        drop(listener);
        drop(stop_tx);
        drop(done_tx);
        let mut done_rx = done_rx;
        if tokio::time::timeout(grace, done_rx.recv()).await.is_err() {
            tracing::warn!(
                "in-flight requests still running after {} ms; exiting",
                grace.as_millis()
            );
        }
        // Everything the ledger acknowledged reaches the disk before the process exits.
        ledger.flush();
        Ok(())
    }
}

/// Limits on client connections (slowloris and oversized headers).
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Largest request head (request line and headers) in bytes; larger ones get 431. Default
    /// 64 KiB (at least 8 KiB is always accepted).
    pub max_header_bytes: usize,
    /// A client must send its complete request head within this time (default 15 s); slower
    /// ones, and keep-alive connections idle for longer, are closed.
    pub header_read_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_header_bytes: 64 * 1024,
            header_read_timeout: Duration::from_secs(15),
        }
    }
}

async fn list_models(
    State(gw): State<Gateway>,
    Query(q): Query<catalog_api::ModelsQuery>,
) -> Response {
    Json(catalog_api::models_json(&gw.catalog, &q)).into_response()
}

async fn model_endpoints(
    State(gw): State<Gateway>,
    AxPath((author, slug)): AxPath<(String, String)>,
) -> Response {
    let id = format!("{author}/{slug}");
    match gw.catalog.model(&id) {
        Some(m) => Json(catalog_api::endpoints_json(m, &gw.health)).into_response(),
        None => error(GatewayError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("Model `{id}` is not in the catalogue"),
        )),
    }
}

/// `GET /model/{author}/{slug}`: one model; plain aliases and variant suffixes resolve to the
/// model they name (with `alias_target` when it was an alias).
async fn one_model(
    State(gw): State<Gateway>,
    AxPath((author, slug)): AxPath<(String, String)>,
) -> Response {
    let id = format!("{author}/{slug}");
    let base = id.split_once(':').map_or(id.as_str(), |(b, _)| b);
    let aliases = gw.aliases.current();
    let (model, alias) = match gw.catalog.model(&id).or_else(|| gw.catalog.model(base)) {
        Some(m) => (Some(m), false),
        None => (aliases.get(base).and_then(|t| gw.catalog.model(t)), true),
    };
    match model {
        Some(m) => {
            let mut v = catalog_api::model_json(m);
            if alias {
                v["alias_target"] = json!({"name": m.name, "slug": m.slug});
                v["id"] = json!(id);
            }
            Json(json!({ "data": v })).into_response()
        }
        None => error(GatewayError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("Model `{id}` is not in the catalogue"),
        )),
    }
}

async fn list_providers(State(gw): State<Gateway>) -> Response {
    Json(catalog_api::providers_json(&gw.catalog)).into_response()
}

async fn not_found(uri: http::Uri) -> Response {
    error(GatewayError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("No route for {}", uri.path()),
    ))
}

async fn method_not_allowed(method: http::Method, uri: http::Uri) -> Response {
    error(GatewayError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request",
        format!("{method} is not allowed on {}", uri.path()),
    ))
}

/// An error envelope as an axum response.
fn error(e: GatewayError) -> Response {
    e.into_response().into_response()
}
