//! `switchyard check --config FILE`: validates a config file as the gateway would load it
//! (without opening its ledger), lists what it would serve, and warns about what is likely
//! wrong: unset key variables, price typos, aliases to nothing and, with `--probe`, base URLs
//! that do not answer.

use crate::autoroute::AutoRouteLayer;
use crate::catalog::{Catalog, Config, LedgerTarget};
use crate::keys::KeyStore;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long `--probe` waits for each provider's host to accept a connection.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// `check`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// The config file to check.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Also connect to every enabled provider's base URL (3 s timeout each).
    #[arg(long)]
    pub probe: bool,
}

/// What a valid file describes, and what looks wrong in it.
#[derive(Debug)]
pub(super) struct Report {
    pub(super) summary: String,
    pub(super) warnings: Vec<String>,
    catalog: Catalog,
}

pub(super) async fn run(args: CheckArgs) -> Result<(), String> {
    let mut report = inspect(&args.config, &|v| std::env::var(v).ok())?;
    if args.probe {
        report.warnings.extend(probe(&report.catalog).await);
    }
    print!("{}", report.summary);
    for w in &report.warnings {
        println!("warning: {w}");
    }
    println!(
        "{}: valid, {} warning{}",
        args.config.display(),
        report.warnings.len(),
        if report.warnings.len() == 1 { "" } else { "s" }
    );
    Ok(())
}

/// Loads the file as the gateway does (catalogue, `[auto]`, keys, ledger choice) with keys
/// read through `env`; an invalid file is the error naming its cause.
pub(super) fn inspect(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Report, String> {
    let config = Config::load(path).map_err(|e| e.to_string())?;
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    let catalog = Catalog::from_config_with_env(&config, base, env).map_err(|e| e.to_string())?;
    let shared = Arc::new(catalog.clone());
    AutoRouteLayer::from_config(config.auto.as_ref(), shared)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    KeyStore::builder()
        .config(config.auth.as_ref(), &config.keys, env)
        .build()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let ledger = config.ledger_target().map_err(|e| e.to_string())?;

    let mut warnings = Vec::new();
    let mut s = String::new();
    let enabled = catalog.enabled_providers().count();
    let _ = writeln!(
        s,
        "providers ({enabled} of {} enabled):",
        catalog.providers().len()
    );
    for p in catalog.providers() {
        let state = match (&p.api_key_env, p.enabled) {
            (_, true) => "enabled".to_owned(),
            (Some(var), false) => {
                warnings.push(format!(
                    "provider `{}` is disabled: {var} is not set",
                    p.slug
                ));
                format!("disabled ({var} not set)")
            }
            (None, false) => "disabled".to_owned(),
        };
        let _ = writeln!(
            s,
            "  {:<14} {:<9} {:<48} {state}",
            p.slug,
            p.api.as_str(),
            p.base_url
        );
    }
    let _ = writeln!(s, "models ({}):", catalog.models().len());
    for m in catalog.models() {
        let serving: Vec<String> = m
            .endpoints
            .iter()
            .filter(|e| e.provider.enabled)
            .map(|e| {
                format!(
                    "{} ${}/${}",
                    e.tag,
                    e.pricing.prompt * 1_000_000,
                    e.pricing.completion * 1_000_000
                )
            })
            .collect();
        if serving.is_empty() {
            let _ = writeln!(s, "  {:<40} no enabled endpoint", m.slug);
            if enabled > 0 {
                warnings.push(format!("model `{}` has no enabled endpoint", m.slug));
            }
        } else {
            let _ = writeln!(s, "  {:<40} {}", m.slug, serving.join(", "));
        }
    }
    if !config.aliases.is_empty() {
        let _ = writeln!(s, "aliases ({}):", config.aliases.len());
        for (alias, target) in &config.aliases {
            let _ = writeln!(s, "  {alias} → {target}");
            if catalog.model(target).is_none() {
                warnings.push(format!(
                    "alias `{alias}` names `{target}`, which is not in the catalogue"
                ));
            }
        }
    }
    let postgres = config
        .ledger
        .as_ref()
        .and_then(|l| l.postgres_url.as_deref());
    if let Some(url) = config.state.as_ref().and_then(|st| st.redis_url.as_deref()) {
        let _ = writeln!(s, "shared state: Redis at {}", without_password(url));
    }
    match ledger {
        _ if postgres.is_some() => {
            let url = without_password(postgres.unwrap_or_default());
            let _ = writeln!(s, "ledger: PostgreSQL at {url}");
        }
        LedgerTarget::File(p) => {
            let file = base.join(&p);
            let _ = writeln!(s, "ledger: {}", file.display());
            let dir = file.parent().filter(|d| !d.as_os_str().is_empty());
            if dir.is_some_and(|d| !d.is_dir()) {
                warnings.push(format!(
                    "[ledger] path: the directory of {} does not exist",
                    file.display()
                ));
            }
        }
        LedgerTarget::Memory { bytes } => {
            let _ = writeln!(s, "ledger: in memory, up to {bytes} bytes");
        }
    }
    if let Some(var) = config
        .auth
        .as_ref()
        .and_then(|a| a.management_key_env.as_deref())
    {
        if env(var).is_none_or(|v| v.trim().is_empty()) {
            warnings.push(format!(
                "[auth] management_key_env: {var} is not set, so /api/v1/keys is off"
            ));
        }
    }
    for k in &config.keys {
        if let Some(var) = k
            .key_env
            .as_deref()
            .filter(|v| env(v).is_none_or(|x| x.is_empty()))
        {
            warnings.push(format!("key `{}` is left out: {var} is not set", k.label));
        }
    }
    warnings.extend(super::prices::warnings(&config));
    Ok(Report {
        summary: s,
        warnings,
        catalog,
    })
}

/// A warning for each enabled provider whose base URL's host does not accept a TCP
/// connection within [`PROBE_TIMEOUT`].
async fn probe(catalog: &Catalog) -> Vec<String> {
    let checks = catalog.enabled_providers().map(|p| {
        let slug = p.slug.clone();
        let url = p.base_url.clone();
        async move {
            let uri: http::Uri = match url.parse() {
                Ok(u) => u,
                Err(e) => {
                    return Some(format!(
                        "provider `{slug}`: base_url {url} is not a URL: {e}"
                    ));
                }
            };
            let host = uri.host().unwrap_or_default().to_owned();
            let port = uri
                .port_u16()
                .unwrap_or(if uri.scheme_str() == Some("https") {
                    443
                } else {
                    80
                });
            match tokio::time::timeout(
                PROBE_TIMEOUT,
                tokio::net::TcpStream::connect((host.as_str(), port)),
            )
            .await
            {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => Some(format!(
                    "provider `{slug}`: {host}:{port} is unreachable: {e}"
                )),
                Err(_) => Some(format!(
                    "provider `{slug}`: {host}:{port} did not accept a connection within {} s",
                    PROBE_TIMEOUT.as_secs()
                )),
            }
        }
    });
    futures_util::future::join_all(checks)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// A server URL as shown: any password replaced (`postgres://user:…@host/db`).
fn without_password(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:…@{host}"),
                None => url.to_owned(),
            },
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // panicking is how tests fail
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("switchyard-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn lists_what_it_serves_and_warns_about_unset_keys() {
        let path = file(
            "ok.toml",
            "[[providers]]\nslug = \"local\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\
             [[providers]]\nslug = \"paid\"\nbase_url = \"https://api.example.com/v1\"\napi_key_env = \"PAID_KEY\"\n\
             [[models]]\nslug = \"acme/m\"\n[[models.endpoints]]\nprovider = \"local\"\nmodel = \"m\"\n\
             pricing = { prompt = 0.5, completion = 1.5 }\n\
             [[models]]\nslug = \"acme/p\"\n[[models.endpoints]]\nprovider = \"paid\"\nmodel = \"p\"\n\
             pricing = { prompt = 0.000001, completion = 2.0 }\n\
             [aliases]\n\"acme/default\" = \"acme/m\"\n\"acme/gone\" = \"acme/nothing\"\n",
        );
        let r = inspect(&path, &|_| None).unwrap();
        assert!(
            r.summary.contains("providers (1 of 2 enabled)"),
            "{}",
            r.summary
        );
        assert!(
            r.summary.contains("acme/m") && r.summary.contains("local $0.5/$1.5"),
            "{}",
            r.summary
        );
        assert!(r.summary.contains("acme/default → acme/m"), "{}", r.summary);
        let w = r.warnings.join("\n");
        assert!(
            w.contains("provider `paid` is disabled: PAID_KEY is not set"),
            "{w}"
        );
        assert!(w.contains("model `acme/p` has no enabled endpoint"), "{w}");
        assert!(w.contains("alias `acme/gone` names `acme/nothing`"), "{w}");
        assert!(
            w.contains("pricing.prompt = 0.000001 looks like a price per token"),
            "{w}"
        );

        let with_key = inspect(&path, &|v| (v == "PAID_KEY").then(|| "k".into())).unwrap();
        assert!(
            !with_key.warnings.iter().any(|w| w.contains("PAID_KEY")),
            "{:?}",
            with_key.warnings
        );
    }

    #[test]
    fn an_invalid_file_is_an_error_naming_the_cause() {
        let path = file("bad.toml", "[server]\nlisen = \"x\"\n");
        let e = inspect(&path, &|_| None).unwrap_err();
        assert!(e.contains("bad.toml:2:") && e.contains("lisen"), "{e}");

        let path = file(
            "bad2.toml",
            "[[providers]]\nslug = \"a\"\nbase_url = \"http://x/v1\"\n[[models]]\nslug = \"x/y\"\n\
             [[models.endpoints]]\nprovider = \"b\"\nmodel = \"m\"\n",
        );
        let e = inspect(&path, &|_| None).unwrap_err();
        assert!(e.contains("provider `b`"), "{e}");

        let path = file("bad3.toml", "[ledger]\npath = \"a.db\"\nmemory_bytes = 5\n");
        let e = inspect(&path, &|_| None).unwrap_err();
        assert!(e.contains("`memory_bytes`"), "{e}");

        let path = file("bad4.toml", "[auto]\nmodels = [{ slug = \"no/such\" }]\n");
        let e = inspect(&path, &|_| None).unwrap_err();
        assert!(e.contains("no/such"), "{e}");
    }

    #[tokio::test]
    async fn probe_names_an_unreachable_provider() {
        // A port nothing listens on: bound, then released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let live = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let live_port = live.local_addr().unwrap().port();
        let catalog = Catalog::builder()
            .provider(crate::catalog::ProviderSpec::openai(
                "gone",
                &format!("http://127.0.0.1:{port}/v1"),
            ))
            .provider(crate::catalog::ProviderSpec::openai(
                "up",
                &format!("http://127.0.0.1:{live_port}/v1"),
            ))
            .build()
            .unwrap();
        let w = probe(&catalog).await;
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("provider `gone`: 127.0.0.1:") && w[0].contains("unreachable"),
            "{w:?}"
        );
    }
}
