//! The translate layer alone: an OpenAI-compatible endpoint in front of one Anthropic upstream.
//! Any OpenAI client pointed at `http://127.0.0.1:8081/v1` talks to Claude, streams included.
//!
//! ```text
//! ANTHROPIC_API_KEY=sk-ant-… cargo run --example claude_as_openai
//! curl http://127.0.0.1:8081/v1/chat/completions -H 'content-type: application/json' \
//!   -d '{"model":"claude","messages":[{"role":"user","content":"hi"}],"stream":true}'
//! ```
//! The stack is parse → (pin the one target) → translate → upstream: no routing, no fallback,
//! no metering. Whatever `model` the client names, Claude answers.

use std::path::Path;
use switchyard::catalog::{Catalog, Config};
use switchyard::context::{ApiKind, Target};
use switchyard::parse::ParseLayer;
use switchyard::translate::TranslateLayer;
use switchyard::upstream::Upstream;
use tower::ServiceBuilder;

const CONFIG: &str = r#"
[[providers]]
slug = "anthropic"
name = "Anthropic"
api = "anthropic"
base_url = "https://api.anthropic.com/v1"
api_key_env = "ANTHROPIC_API_KEY"
headers = { "anthropic-version" = "2023-06-01" }

[[models]]
slug = "anthropic/claude-sonnet-4.5"
max_completion_tokens = 8192
[[models.endpoints]]
provider = "anthropic"
model = "claude-sonnet-4-5"
pricing = { prompt = 3.0, completion = 15.0 }
"#;

#[tokio::main]
async fn main() -> Result<(), switchyard::BoxError> {
    let config = Config::parse(Path::new("claude_as_openai.toml"), CONFIG)?;
    let catalog = Catalog::from_config(&config, Path::new("."))?;
    let model = catalog
        .model("anthropic/claude-sonnet-4.5")
        .ok_or("model missing")?
        .clone();
    if !model.endpoints[0].provider.enabled {
        eprintln!("set ANTHROPIC_API_KEY first");
    }
    let target = Target { model, endpoint: 0 };
    let chat = ServiceBuilder::new()
        .layer(ParseLayer::new(ApiKind::Chat))
        .map_request(move |mut req: http::Request<switchyard::Body>| {
            req.extensions_mut().insert(target.clone());
            req
        })
        .layer(TranslateLayer::new())
        .service(Upstream::new());
    let app = axum::Router::new()
        .route_service("/v1/chat/completions", axum::routing::post_service(chat));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8081").await?;
    println!("OpenAI-compatible Claude on http://127.0.0.1:8081/v1");
    axum::serve(listener, app).await?;
    Ok(())
}
