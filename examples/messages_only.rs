//! The Messages layer alone: Anthropic Messages in front of any OpenAI-compatible endpoint
//! (here a local fake; a vLLM, Ollama or llama.cpp server works the same), over a plain
//! hyper-util client. No catalogue, no other layer: Claude Code's requests become chat
//! completions, and the answers come back as Anthropic messages and events.
//!
//! ```text
//! cargo run --example messages_only --features test-util
//! ```

use http_body_util::BodyExt;
use switchyard::ingress::anthropic::MessagesLayer;
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

    // Claude's names, mapped to the model the upstream serves.
    let messages = MessagesLayer::new().model_names(|name| {
        name.starts_with("claude-")
            .then(|| "local-model".to_owned())
    });
    let svc = messages.layer(upstream);

    for stream in [false, true] {
        let body = serde_json::json!({"model": "claude-sonnet-4-5", "max_tokens": 64,
            "stream": stream, "messages": [{"role": "user", "content": "Hi"}]});
        // Claude Code's path: the layer posts `/v1/chat/completions` to the service below.
        let req = http::Request::post("/v1/messages?beta=true")
            .header("anthropic-version", "2023-06-01")
            .body(switchyard::body::full(body.to_string()))?;
        let resp = svc.clone().oneshot(req).await?;
        let bytes = resp.into_body().collect().await?.to_bytes();
        println!("{}", String::from_utf8_lossy(&bytes));
    }
    Ok(())
}
