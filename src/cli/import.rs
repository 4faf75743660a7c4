//! `switchyard catalog import FILE`: an OpenRouter `/models` dump as config TOML.

use crate::catalog::import_openrouter_models;
use std::path::PathBuf;

/// `catalog import`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// An OpenRouter-format `/models` JSON file
    /// (`curl -s https://openrouter.ai/api/v1/models > models.json`).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Where to write the TOML (default: standard output).
    #[arg(long, short, value_name = "OUT")]
    pub output: Option<PathBuf>,
}

/// Converts the dump; the summary goes to stderr so stdout can be redirected to a file.
pub(super) fn run(args: &ImportArgs) -> Result<(), String> {
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| format!("{}: cannot read the models file: {e}", args.file.display()))?;
    let imported = import_openrouter_models(&args.file, &text).map_err(|e| e.to_string())?;
    match &args.output {
        Some(out) => std::fs::write(out, &imported.toml)
            .map_err(|e| format!("{}: cannot write: {e}", out.display()))?,
        None => print!("{}", imported.toml),
    }
    eprintln!(
        "imported {} models{}",
        imported.models,
        args.output
            .as_ref()
            .map(|o| format!(" into {}", o.display()))
            .unwrap_or_default()
    );
    for (id, why) in &imported.skipped {
        eprintln!("skipped {id}: {why}");
    }
    Ok(())
}
