//! Route + balance + fallback from a catalogue built in code (no TOML), over your own upstream
//! client: a plain hyper-util client that sends each attempt to its endpoint's base URL. The
//! cheaper provider is down; the attempt falls over to the other.
//!
//! ```text
//! cargo run --example custom_stack --features test-util
//! ```

use http_body_util::BodyExt;
use std::sync::Arc;
use switchyard::balance::BalanceLayer;
use switchyard::catalog::{Catalog, EndpointSpec, ProviderSpec};
use switchyard::context::Target;
use switchyard::fallback::FallbackLayer;
use switchyard::route::RouteLayer;
use switchyard::{Body, BoxError};
use tower::{ServiceBuilder, ServiceExt};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let (addr, _fake) = switchyard::test_util::start_fake().await;
    let catalog = Arc::new(
        Catalog::builder()
            .provider(ProviderSpec::openai(
                "cheap",
                &format!("http://{addr}/status-503/v1"),
            ))
            .provider(ProviderSpec::openai(
                "steady",
                &format!("http://{addr}/ok/v1"),
            ))
            .model(
                "acme/chat",
                [
                    EndpointSpec::new("cheap", "chat-small").price(0.10, 0.40),
                    EndpointSpec::new("steady", "chat-small-v2").price(0.20, 0.80),
                ],
            )
            .build()?,
    );

    // Your own client: each attempt carries its Target, whose provider names the base URL.
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Body>();
    let upstream = tower::service_fn(move |req: http::Request<Body>| {
        let client = client.clone();
        async move {
            let target = req.extensions().get::<Target>().ok_or("no Target")?;
            let base = target.endpoint().provider.base_url.clone();
            let (mut parts, body) = req.into_parts();
            parts.uri = format!("{base}{}", parts.uri.path()).parse()?;
            let resp = client
                .request(http::Request::from_parts(parts, body))
                .await?;
            Ok::<_, BoxError>(resp.map(switchyard::body::boxed))
        }
    });

    let svc = ServiceBuilder::new()
        .layer(RouteLayer::new(catalog))
        .layer(BalanceLayer::new())
        .layer(FallbackLayer::new())
        .service(upstream);
    let req = http::Request::post("/v1/chat/completions").body(switchyard::body::full(
        r#"{"model":"acme/chat","messages":[{"role":"user","content":"hi"}]}"#,
    ))?;
    let resp = svc.oneshot(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    println!("{status}: served by upstream model {}", v["model"]);
    Ok(())
}
