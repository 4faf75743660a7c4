//! The ready-to-run gateway.
//!
//! ```text
//! cargo run --release --example gateway                      # embedded default catalogue, 127.0.0.1:8080
//! cargo run --release --example gateway -- --config gw.toml  # your own config (docs/config.md)
//! cargo run --release --example gateway -- --listen 0.0.0.0:9000
//! ```
//! Providers of the embedded catalogue are enabled by their key variables (`OPENAI_API_KEY`,
//! `ANTHROPIC_API_KEY`, `OPENROUTER_API_KEY`, …). Ctrl-C stops the gateway after in-flight
//! streams finish (bounded by `[server].shutdown_grace_ms`).

use clap::Parser;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use switchyard::catalog::{Config, LedgerConfig};
use switchyard::server::Gateway;

/// An OpenRouter-compatible LLM gateway.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// TOML config file (see docs/config.md); without it the embedded default catalogue is used.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on, overriding `[server].listen`.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let gateway = match &args.config {
        Some(path) => match Gateway::from_file(path) {
            Ok(g) => g,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => {
            // The embedded default catalogue, with the SQLite ledger in the working directory.
            let config = Config {
                ledger: Some(LedgerConfig {
                    path: Some("switchyard.db".into()),
                    ..LedgerConfig::default()
                }),
                ..Config::default()
            };
            match Gateway::from_config(config, Path::new(".")) {
                Ok(g) => g,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    let listen = args
        .listen
        .clone()
        .unwrap_or_else(|| gateway.config().server.listen.clone());
    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().map_or(listen, |a| a.to_string());
    let enabled: Vec<String> = gateway
        .catalog()
        .enabled_providers()
        .map(|p| p.slug.clone())
        .collect();
    println!("switchyard listening on http://{addr}/api/v1");
    if enabled.is_empty() {
        let vars: Vec<String> = gateway
            .catalog()
            .providers()
            .iter()
            .filter_map(|p| p.api_key_env.clone())
            .collect();
        println!("no provider enabled: set one of {}", vars.join(", "));
    } else {
        println!("enabled providers: {}", enabled.join(", "));
    }
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
        println!("shutting down: waiting for in-flight requests");
    };
    match gateway.serve(listener, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
