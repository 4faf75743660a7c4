//! `switchyard serve`: the gateway over a config file or the embedded default catalogue.

use crate::catalog::{Config, LedgerConfig};
use crate::server::Gateway;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `serve`'s options.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// TOML config file (see docs/config.md); without it the embedded default catalogue is
    /// used, with its ledger in ./switchyard.db.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on, overriding `[server] listen`.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Serve simulated `demo/…` models instead of real providers (as `switchyard demo`).
    #[arg(long, conflicts_with = "config")]
    pub demo: bool,
}

/// Builds the gateway, serves until Ctrl-C or SIGTERM, then stops gracefully.
pub(super) async fn run(args: ServeArgs) -> Result<(), String> {
    let gateway = match &args.config {
        Some(path) => Gateway::from_file(path).map_err(|e| e.to_string())?,
        None => {
            let config = Config {
                ledger: Some(LedgerConfig {
                    path: Some("switchyard.db".into()),
                    ..LedgerConfig::default()
                }),
                ..Config::default()
            };
            Gateway::from_config(config, Path::new(".")).map_err(|e| e.to_string())?
        }
    };
    #[cfg(feature = "otel")]
    let _spans = super::otel::install(&gateway.config().telemetry)?;
    #[cfg(not(feature = "otel"))]
    if gateway.config().telemetry.otlp_endpoint.is_some() {
        tracing::warn!(
            "[telemetry] otlp_endpoint is set, but this build has no `otel` feature: no spans \
             are exported (cargo build --features otel)"
        );
    }
    let listener = bind(args.listen.as_deref(), &gateway).await?;
    print_enabled(&gateway);
    serve(gateway, listener).await
}

/// Binds `listen`, or the config's `[server] listen`, and prints where it listens.
pub(super) async fn bind(
    listen: Option<&str>,
    gateway: &Gateway,
) -> Result<tokio::net::TcpListener, String> {
    let listen = listen.unwrap_or(&gateway.config().server.listen);
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        format!("cannot listen on {listen}: {e} (choose another address with --listen)")
    })?;
    let addr = listener
        .local_addr()
        .map_or_else(|_| listen.to_owned(), |a| a.to_string());
    println!("switchyard listening on http://{addr}/api/v1");
    if gateway.config().telemetry.dashboard {
        println!("dashboard: http://{addr}/dashboard");
    }
    Ok(listener)
}

/// Serves until a stop signal, then drains (see [`Gateway::serve`]).
pub(super) async fn serve(
    gateway: Gateway,
    listener: tokio::net::TcpListener,
) -> Result<(), String> {
    let grace = Duration::from_millis(gateway.config().server.shutdown_grace_ms);
    let shutdown = async move {
        let signal = super::shutdown_signal().await;
        println!(
            "{signal}: shutting down; in-flight requests get up to {} ms",
            grace.as_millis()
        );
    };
    gateway
        .serve(listener, shutdown)
        .await
        .map_err(|e| format!("serving: {e}"))?;
    println!("stopped; ledger flushed");
    Ok(())
}

fn print_enabled(gateway: &Gateway) {
    let enabled: Vec<&str> = gateway
        .catalog()
        .enabled_providers()
        .map(|p| &*p.slug)
        .collect();
    if enabled.is_empty() {
        let vars: Vec<&str> = gateway
            .catalog()
            .providers()
            .iter()
            .filter_map(|p| p.api_key_env.as_deref())
            .collect();
        println!("no provider enabled: set one of {}", vars.join(", "));
        println!("(no keys? `switchyard demo` runs simulated providers)");
    } else {
        println!("enabled providers: {}", enabled.join(", "));
    }
}
