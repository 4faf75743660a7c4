//! Fallback alone over two plain OpenAI-compatible base URLs: the first answers 503, the second
//! serves. No catalogue file and no other layer.
//!
//! ```text
//! cargo run --example fallback_only --features test-util
//! ```

use http_body_util::BodyExt;
use tower::ServiceExt;

#[tokio::main]
async fn main() -> Result<(), switchyard::BoxError> {
    // Two upstreams: a fake one that always answers 503, and one that works.
    let (addr, _) = switchyard::test_util::start_fake().await;
    let primary = format!("http://{addr}/status-503/v1");
    let backup = format!("http://{addr}/ok/v1");
    let fallback = switchyard::fallback::over_base_urls(&[&primary, &backup])?;

    let req = http::Request::post("/v1/chat/completions").body(switchyard::body::full(
        r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#,
    ))?;
    let resp = fallback.oneshot(req).await?;
    let body = resp.into_body().collect().await?.to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    println!(
        "served after the primary's 503: {}",
        v["choices"][0]["message"]["content"]
    );
    Ok(())
}
