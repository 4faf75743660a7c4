//! Gateway configs over the fake upstream and the one way tests start a gateway.

use super::fake::refused_base_url;
use std::net::SocketAddr;

/// One provider per scenario (`p-<scenario>`, display name `P <scenario>`), the given models
/// (each a list of scenarios, tried in that order: prices rise along the list) and tight
/// timeouts. The scenario `refused` points at a closed port. `extra` is appended.
pub fn fault_config(
    addr: SocketAddr,
    models: &[(&str, &[&str])],
    timeouts: FaultTimeouts,
    extra: &str,
) -> String {
    let mut scenarios: Vec<&str> = models
        .iter()
        .flat_map(|(_, eps)| eps.iter().copied())
        .collect();
    scenarios.sort_unstable();
    scenarios.dedup();
    let t = timeouts;
    let mut out = format!("[server]\nkeepalive_ms = {}\n\n", t.keepalive_ms);
    for s in &scenarios {
        let base = if *s == "refused" {
            refused_base_url()
        } else {
            format!("http://{addr}/{s}/v1")
        };
        out.push_str(&format!(
            "[[providers]]\nslug = \"p-{s}\"\nname = \"P {s}\"\nbase_url = \"{base}\"\n{}timeouts = {{ connect_ms = {}, first_byte_ms = {}, idle_ms = {}, total_ms = {} }}\n\n",
            t.key_env.map(|k| format!("api_key_env = \"{k}\"\n")).unwrap_or_default(),
            t.connect_ms, t.first_byte_ms, t.idle_ms, t.total_ms
        ));
    }
    for (slug, eps) in models {
        out.push_str(&format!(
            "[[models]]\nslug = \"{slug}\"\ncontext_length = 100000\n"
        ));
        for (i, s) in eps.iter().enumerate() {
            let p = i + 1;
            out.push_str(&format!("[[models.endpoints]]\nprovider = \"p-{s}\"\nmodel = \"up-{s}\"\npricing = {{ prompt = {p}, completion = {p} }}\n"));
        }
        out.push('\n');
    }
    out.push_str(extra);
    out
}

/// Provider timeouts and the keep-alive delay for [`fault_config`], in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct FaultTimeouts {
    pub connect_ms: u64,
    pub first_byte_ms: u64,
    pub idle_ms: u64,
    pub total_ms: u64,
    pub keepalive_ms: u64,
    /// Every provider reads its key from this variable.
    pub key_env: Option<&'static str>,
}

impl Default for FaultTimeouts {
    /// Limits for quick tests, tight enough to keep the suite fast and loose enough that a
    /// loaded 2-core CI machine does not trip them: connect 1000, first byte 1000, idle 800,
    /// total 5000, keep-alives after 300.
    fn default() -> Self {
        FaultTimeouts {
            connect_ms: 1000,
            first_byte_ms: 1000,
            idle_ms: 800,
            total_ms: 5000,
            keepalive_ms: 300,
            key_env: None,
        }
    }
}

/// Builds a gateway from a config text; `env` supplies the key variables.
pub fn gateway_from(config: &str, env: &dyn Fn(&str) -> Option<String>) -> crate::server::Gateway {
    let cfg = crate::catalog::Config::parse(std::path::Path::new("test.toml"), config).unwrap();
    crate::server::Gateway::from_config_with_env(cfg, std::path::Path::new("."), env).unwrap()
}

/// Starts a gateway on 127.0.0.1:0; returns its address (the API is under `/api/v1`).
pub async fn start_gateway(gateway: crate::server::Gateway) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(gateway.serve(listener, std::future::pending::<()>()));
    addr
}

/// As [`gateway_from`], with the key variables given as pairs instead of read from the process.
pub fn gateway_with_vars(config: &str, vars: &[(&str, &str)]) -> crate::server::Gateway {
    let env = |name: &str| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    };
    gateway_from(config, &env)
}

/// Models for [`config_toml`]: each a slug and its (scenario, prompt price, completion price)
/// endpoints.
pub type Models<'a> = &'a [(&'a str, &'a [(&'a str, f64, f64)])];

/// A config with one provider per scenario (`p-<scenario>`, display name `P <scenario>`) and
/// the given models, each a list of (scenario, prompt price, completion price) endpoints.
pub fn config_toml(addr: SocketAddr, models: Models<'_>, extra: &str) -> String {
    let mut scenarios: Vec<&str> = models
        .iter()
        .flat_map(|(_, eps)| eps.iter().map(|e| e.0))
        .collect();
    scenarios.sort_unstable();
    scenarios.dedup();
    let mut out = String::from("[server]\nkeepalive_ms = 300\n");
    for s in &scenarios {
        out.push_str(&format!(
            "[[providers]]\nslug = \"p-{s}\"\nname = \"P {s}\"\nbase_url = \"http://{addr}/{s}/v1\"\ntimeouts = {{ connect_ms = 1000, first_byte_ms = 2000, idle_ms = 1000, total_ms = 10000 }}\n\n"
        ));
    }
    for (slug, eps) in models {
        out.push_str(&format!(
            "[[models]]\nslug = \"{slug}\"\ncontext_length = 100000\n"
        ));
        for (s, p, c) in eps.iter() {
            out.push_str(&format!("[[models.endpoints]]\nprovider = \"p-{s}\"\nmodel = \"up-{s}\"\npricing = {{ prompt = {p}, completion = {c} }}\n"));
        }
        out.push('\n');
    }
    out.push_str(extra);
    out
}
