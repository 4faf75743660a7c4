//! `switchyard demo` (feature `cli`): simulated providers inside the process, and the real
//! gateway in front of them, so a newcomer with no provider key sees routing, fallback,
//! streaming, cost and the ledger on the first run.
//!
//! [`Demo::start`] binds one small HTTP server per simulated provider on `127.0.0.1:0`, in the
//! current tokio runtime, each speaking a real wire format — OpenAI Chat Completions, Anthropic
//! Messages (its SSE event sequence, `x-api-key` and `anthropic-version`), Gemini
//! `generateContent` / `streamGenerateContent?alt=sse` (`x-goog-api-key`) — so the gateway's
//! translate layer does the work it does for the real providers. Answers are streamed token by
//! token with each provider's latencies; one cheap provider fails 30% of its requests — a 503,
//! or for a stream, half the time, a body broken off before any content — which the fallback
//! layer hides.
//!
//! The catalogue ([`providers::MODELS`]) has two models, `demo/fast` and `demo/smart`, each
//! served by three providers at different prices: the balance layer's first pick follows
//! 1/price². Nothing here is reachable without asking for the demo: the simulated providers
//! exist only in a gateway built by [`Demo::start`].
//!
//! ```no_run
//! # async fn run() -> Result<(), switchyard::BoxError> {
//! let demo = switchyard::demo::Demo::start().await?;
//! println!("{}", demo.summary());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! demo.into_gateway().serve(listener, std::future::pending()).await?;
//! # Ok(()) }
//! ```

mod anthropic;
mod event;
mod gemini;
mod openai;
pub mod providers;
mod reply;
mod sim;

use crate::BoxError;
use crate::catalog::{Api, Catalog, Config, EndpointSpec, ProviderSpec};
use crate::server::Gateway;
use providers::{MODELS, PROVIDERS, SimSpec};
use std::fmt::Write as _;
use std::net::SocketAddr;

/// The simulated providers, running, and a gateway over them.
#[derive(Debug)]
pub struct Demo {
    gateway: Gateway,
    providers: Vec<(SimSpec, SocketAddr)>,
}

impl Demo {
    /// Starts every simulated provider and builds the gateway over them (not yet serving).
    pub async fn start() -> Result<Demo, BoxError> {
        let mut builder = Catalog::builder();
        let mut providers = Vec::with_capacity(PROVIDERS.len());
        for spec in PROVIDERS {
            let key = format!("demo-key-{}", spec.slug);
            let addr = sim::start(*spec, &key).await?;
            let version = if spec.api == Api::Gemini {
                "v1beta"
            } else {
                "v1"
            };
            let mut p = ProviderSpec::new(spec.slug, spec.api, &format!("http://{addr}/{version}"))
                .name(spec.name)
                .api_key(&key);
            if spec.api == Api::Anthropic {
                p = p.header("anthropic-version", "2023-06-01");
            }
            builder = builder.provider(p);
            providers.push((*spec, addr));
        }
        for model in MODELS {
            let endpoints = model.endpoints.iter().map(|e| {
                EndpointSpec::new(e.provider, e.upstream_model)
                    .price(e.prompt, e.completion)
                    .context_length(32_768)
            });
            builder = builder.model(model.slug, endpoints);
        }
        let catalog = builder.build()?;
        Ok(Demo {
            gateway: Gateway::new(Config::default(), catalog),
            providers,
        })
    }

    /// The gateway over the simulated providers.
    pub fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    /// The gateway, to serve.
    pub fn into_gateway(self) -> Gateway {
        self.gateway
    }

    /// Where each simulated provider listens.
    pub fn providers(&self) -> &[(SimSpec, SocketAddr)] {
        &self.providers
    }

    /// A table of the models, their providers, formats, prices, latencies and first-pick
    /// shares.
    pub fn summary(&self) -> String {
        let mut out = String::from(
            "model       provider         format     $/M in   $/M out  first token  first picks\n",
        );
        for model in MODELS {
            for (e, share) in model.endpoints.iter().zip(model.shares()) {
                let Some(spec) = PROVIDERS.iter().find(|p| p.slug == e.provider) else {
                    continue;
                };
                let note = if spec.failure_rate > 0.0 {
                    format!(
                        "   fails {:.0}%: the next provider answers instead",
                        spec.failure_rate * 100.0
                    )
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    "{:<11} {:<16} {:<10} {:>6.2}   {:>6.2}   {:>6} ms   {:>5.1}%{note}",
                    model.slug,
                    spec.name,
                    spec.api.as_str(),
                    e.prompt,
                    e.completion,
                    spec.first_token.as_millis(),
                    share * 100.0,
                );
            }
        }
        out
    }

    /// Three commands to try against the gateway at `addr`: a completion, a stream, and the
    /// ledger's record of a completion.
    pub fn curl_lines(addr: &str) -> [String; 3] {
        let url = format!("http://{addr}/api/v1");
        let json = "-H 'content-type: application/json'";
        [
            format!(
                r#"curl -s {url}/chat/completions {json} -d '{{"model":"demo/fast","messages":[{{"role":"user","content":"Hello!"}}]}}'"#
            ),
            format!(
                r#"curl -sN {url}/chat/completions {json} -d '{{"model":"demo/smart","stream":true,"messages":[{{"role":"user","content":"Stream me something"}}]}}'"#
            ),
            format!(
                r#"curl -s "{url}/generation?id=$(curl -s {url}/chat/completions {json} -d '{{"model":"demo/fast","messages":[{{"role":"user","content":"Hi"}}]}}' | grep -o 'gen-[A-Za-z0-9-]*' | head -1)""#
            ),
        ]
    }
}
