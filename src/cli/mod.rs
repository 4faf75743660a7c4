//! The `switchyard` command (feature `cli`, on by default): the ready-to-run gateway.
//!
//! ```text
//! switchyard                          # serve: the embedded default catalogue on 127.0.0.1:8080
//! switchyard serve --config gw.toml   # your own config (docs/config.md)
//! switchyard serve --listen 0.0.0.0:9000
//! switchyard demo                     # simulated providers, no key needed (also serve --demo)
//! switchyard check --config gw.toml [--probe]
//! switchyard catalog import models.json --output catalog.toml
//! ```
//!
//! Each subcommand is one file: `serve.rs` starts the gateway and stops it on Ctrl-C or
//! SIGTERM (`signal.rs`); `demo.rs` serves it over [`crate::demo`]'s simulated providers;
//! `check.rs` (with `prices.rs`) validates a config file; `import.rs` converts an OpenRouter
//! `/models` dump ([`crate::catalog::import_openrouter_models`]). [`main`] is the whole
//! program, so the `switchyard` binary and `cargo run --example gateway` are one code path.

mod check;
mod demo;
mod import;
#[cfg(feature = "otel")]
mod otel;
mod prices;
mod serve;
mod signal;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

pub use check::CheckArgs;
pub use import::ImportArgs;
pub use serve::ServeArgs;
pub use signal::shutdown_signal;

/// An OpenRouter-compatible LLM gateway.
#[derive(Debug, Parser)]
#[command(
    name = "switchyard",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to do; `serve` when left out.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `serve`'s options, accepted without the word `serve`.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (the default).
    Serve(ServeArgs),
    /// Run the gateway over simulated providers: no key needed.
    Demo(DemoArgs),
    /// Validate a config file: list its providers, models and aliases, warn about unset key
    /// variables and price typos (and, with --probe, unreachable providers).
    Check(CheckArgs),
    /// Work with catalogues.
    #[command(subcommand)]
    Catalog(CatalogCommand),
}

/// `catalog`'s subcommands.
#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Convert an OpenRouter-format `/models` JSON file into config TOML (prices per million
    /// tokens), to edit and load with `--config`.
    Import(ImportArgs),
}

/// `demo`'s options.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DemoArgs {
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

/// Parses the command line, runs the command and returns the process's exit status.
pub fn main() -> ExitCode {
    run(Cli::parse())
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    // `check` reports problems itself; the library's own warnings about them would repeat it.
    let quiet = matches!(cli.command, Some(Command::Check(_) | Command::Catalog(_)));
    init_logging(if quiet { "error" } else { "info" });
    // No subcommand is `serve`; `serve --demo` is `demo`.
    let command = cli.command.unwrap_or(Command::Serve(cli.serve));
    let result = match command {
        Command::Serve(args) if args.demo => block_on(demo::run(args.listen.as_deref())),
        Command::Serve(args) => block_on(serve::run(args)),
        Command::Demo(args) => block_on(demo::run(args.listen.as_deref())),
        Command::Check(args) => block_on(check::run(args)),
        Command::Catalog(CatalogCommand::Import(args)) => import::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a command's future on a multi-threaded runtime.
fn block_on(command: impl Future<Output = Result<(), String>>) -> Result<(), String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?
        .block_on(command)
}

/// Logs to stderr (stdout carries the command's own output), filtered by `RUST_LOG` or else
/// `default`.
fn init_logging(default: &str) {
    // Without an exporter the request and attempt spans would only prefix log lines (and cost
    // their formatting on every request): off unless RUST_LOG asks for them.
    #[cfg(not(feature = "otel"))]
    let default = format!("{default},switchyard::request=off,switchyard::attempt=off");
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    #[cfg(feature = "otel")]
    return otel::init_logging(filter);
    #[cfg(not(feature = "otel"))]
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
