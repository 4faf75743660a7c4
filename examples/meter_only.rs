//! The meter layer alone, over your own upstream client (here a plain hyper-util client), with
//! prices given in code: `usage.cost` is written into the response and every generation record
//! reaches a callback. No catalogue, no other layer.
//!
//! ```text
//! cargo run --example meter_only --features test-util
//! ```

use http_body_util::BodyExt;
use switchyard::catalog::Pricing;
use switchyard::meter::{MeterLayer, Prices};
use switchyard::{Body, BoxError};
use tower::{Layer, ServiceExt};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // A fake OpenAI-compatible upstream stands in for a real one.
    let (addr, _fake) = switchyard::test_util::start_fake().await;
    let base = format!("http://{addr}/ok");

    // Your own upstream client: forwards each request to `base`.
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Body>();
    let upstream = tower::service_fn(move |req: http::Request<Body>| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let (mut parts, body) = req.into_parts();
            parts.uri = format!("{base}{}", parts.uri.path()).parse()?;
            let resp = client
                .request(http::Request::from_parts(parts, body))
                .await?;
            Ok::<_, BoxError>(resp.map(switchyard::body::boxed))
        }
    });

    let meter = MeterLayer::new()
        .prices(Prices::per_model([(
            "gpt-4o-mini",
            Pricing::per_million(0.15, 0.60),
        )]))
        .on_record(|r| println!("record: {} cost {} picodollars", r.model, r.total_cost));
    let svc = meter.layer(upstream);

    let req = http::Request::post("/v1/chat/completions").body(switchyard::body::full(
        r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#,
    ))?;
    let resp = svc.oneshot(req).await?;
    let body = resp.into_body().collect().await?.to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    println!("usage.cost = {}", v["usage"]["cost"]);
    Ok(())
}
