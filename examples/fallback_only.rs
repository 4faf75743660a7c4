//! Fallback alone over two plain OpenAI-compatible upstream URLs: the first answers 503, the
//! second serves. No catalogue file, no metering — just parse → route → fallback → translate →
//! upstream.
//!
//! ```text
//! cargo run --example fallback_only --features test-util
//! ```

use std::path::Path;
use std::sync::Arc;
use switchyard::catalog::{Catalog, Config};
use switchyard::context::ApiKind;
use switchyard::fallback::FallbackLayer;
use switchyard::parse::ParseLayer;
use switchyard::route::RouteLayer;
use switchyard::translate::TranslateLayer;
use switchyard::upstream::Upstream;
use tower::{Service, ServiceBuilder, ServiceExt};

#[tokio::main]
async fn main() -> Result<(), switchyard::BoxError> {
    // Two upstreams: a fake one that always answers 503, and one that works.
    let (addr, _) = switchyard::test_util::start_fake().await;
    let primary = format!("http://{addr}/status-503/v1");
    let backup = format!("http://{addr}/ok/v1");

    let config = Config::parse(
        Path::new("inline.toml"),
        &format!(
            r#"
            [[providers]]
            slug = "primary"
            base_url = "{primary}"
            [[providers]]
            slug = "backup"
            base_url = "{backup}"
            [[models]]
            slug = "any/model"
            [[models.endpoints]]
            provider = "primary"
            model = "m"
            pricing = {{ prompt = 1, completion = 1 }}
            [[models.endpoints]]
            provider = "backup"
            model = "m"
            pricing = {{ prompt = 2, completion = 2 }}
            "#
        ),
    )?;
    let catalog = Arc::new(Catalog::from_config(&config, Path::new("."))?);
    let mut svc = ServiceBuilder::new()
        .layer(ParseLayer::new(ApiKind::Chat))
        .layer(RouteLayer::new(catalog))
        .layer(FallbackLayer::new())
        .layer(TranslateLayer::new())
        .service(Upstream::new());

    let req = http::Request::post("/v1/chat/completions").body(http_body_util::Full::new(
        bytes::Bytes::from_static(
            br#"{"model":"any/model","messages":[{"role":"user","content":"hi"}]}"#,
        ),
    ))?;
    let resp = ServiceExt::<http::Request<http_body_util::Full<bytes::Bytes>>>::ready(&mut svc)
        .await
        .map_err(|e| match e {})?
        .call(req)
        .await
        .map_err(|e| match e {})?;
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await?
        .to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    println!(
        "served by {} after the primary's 503: {}",
        v["provider"], v["choices"][0]["message"]["content"]
    );
    Ok(())
}
