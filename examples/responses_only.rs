//! The Responses layer alone: OpenAI Responses in front of any OpenAI-compatible chat endpoint
//! (here a local fake; a vLLM, Ollama or llama.cpp server works the same), over a plain
//! hyper-util client. No catalogue, no other layer: Codex's (or `client.responses.create`'s)
//! requests become chat completions, the answers come back as `response` objects and events,
//! and a follow-up continues the first with `previous_response_id`.
//!
//! ```text
//! cargo run --example responses_only --features test-util
//! ```

use http_body_util::BodyExt;
use switchyard::ingress::responses::ResponsesLayer;
use switchyard::{Body, BoxError};
use tower::{Layer, ServiceExt};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // A fake OpenAI-compatible upstream stands in for a real one.
    let (addr, _fake) = switchyard::test_util::start_fake().await;
    let base = format!("http://{addr}/ok");

    // Your own upstream client: forwards each request to `base`, path included.
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

    // OpenAI's names, mapped to the model the upstream serves.
    let responses = ResponsesLayer::new()
        .model_names(|name| name.starts_with("gpt-").then(|| "local-model".to_owned()));
    let svc = responses.layer(upstream);

    let mut previous = serde_json::Value::Null;
    for stream in [false, true] {
        let body = serde_json::json!({"model": "gpt-5", "input": "Hi", "stream": stream,
            "previous_response_id": previous});
        // The layer posts `/v1/chat/completions` to the service below.
        let req =
            http::Request::post("/v1/responses").body(switchyard::body::full(body.to_string()))?;
        let resp = svc.clone().oneshot(req).await?;
        let bytes = resp.into_body().collect().await?.to_bytes();
        println!("{}", String::from_utf8_lossy(&bytes));
        if !stream {
            previous = serde_json::from_slice::<serde_json::Value>(&bytes)?["id"].clone();
        }
    }
    Ok(())
}
