//! The ready-to-run gateway, kept as an example for scripts that run it this way; it is the
//! `switchyard` binary's code path (`switchyard::cli::main`), so every subcommand works here
//! too.
//!
//! ```text
//! cargo run --release --example gateway                      # embedded default catalogue, 127.0.0.1:8080
//! cargo run --release --example gateway -- --config gw.toml  # your own config (docs/config.md)
//! cargo run --release --example gateway -- --listen 0.0.0.0:9000
//! ```
//! Prefer `cargo run --release -- …` (the binary), which builds without the dev-dependencies.

fn main() -> std::process::ExitCode {
    switchyard::cli::main()
}
