//! `POST /api/v1/embeddings` through the whole gateway: routed to models whose
//! `output_modalities` include `embeddings`, the body passed through with the upstream model
//! substituted, metered per input token with `usage.cost`, recorded as `embeddings`, failed
//! over like a completion; a chat model asked to embed is a 400 that says so.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use axum::http::StatusCode;
use serde_json::{Value, json};
use support::*;

async fn gateway() -> (String, Fake) {
    let (addr, fake) = start_fake().await;
    let mut toml = config_toml(
        addr,
        &[
            ("openai/gpt-test", &[("ok", 1.0, 2.0)]),
            ("openai/gpt-busy", &[("status-503", 0.5, 0.5)]),
        ],
        "",
    );
    toml.push_str(
        r#"
[[models]]
slug = "openai/text-embedding-3-small"
output_modalities = ["embeddings"]
[[models.endpoints]]
provider = "p-ok"
model = "text-embedding-3-small"
pricing = { prompt = 0.02 }

[[models]]
slug = "acme/embed-busy"
output_modalities = ["embeddings"]
[[models.endpoints]]
provider = "p-status-503"
model = "embed-503"
pricing = { prompt = 0.01 }
[[models.endpoints]]
provider = "p-ok"
model = "embed-ok"
pricing = { prompt = 0.05 }
"#,
    );
    (start_gateway(&toml).await, fake)
}

async fn embed(url: &str, body: &Value) -> (StatusCode, Value) {
    let (status, _, text) = post_json(&format!("{url}/embeddings"), &body.to_string(), &[]).await;
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| json!({"raw": text})),
    )
}

#[tokio::test]
async fn embeddings_pass_through_and_are_metered_per_input_token() {
    let (url, fake) = gateway().await;
    let body = json!({"model": "openai/text-embedding-3-small",
                      "input": ["first text", "second text"], "dimensions": 3});
    let (status, v) = embed(&url, &body).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["data"][1]["embedding"], json!([0.25, -0.5, 1.0]));
    assert_eq!(v["model"], "openai/text-embedding-3-small");
    assert_eq!(v["usage"]["prompt_tokens"], 16);
    // 16 tokens at $0.02 per million.
    let cost = v["usage"]["cost"].as_f64().unwrap();
    assert!((cost - 16.0 * 0.02 / 1e6).abs() < 1e-12, "{cost}");
    let seen = fake.requests();
    assert_eq!(seen[0].path, "/ok/v1/embeddings");
    assert_eq!(seen[0].body["model"], "text-embedding-3-small");
    assert_eq!(seen[0].body["input"], json!(["first text", "second text"]));
    assert_eq!(seen[0].body["dimensions"], 3);

    let id = v["id"].as_str().unwrap();
    let (status, g) = get(&format!("{url}/generation?id={id}")).await;
    assert_eq!(status, 200, "{g}");
    let g: Value = serde_json::from_str(&g).unwrap();
    assert_eq!(g["data"]["api_type"], "embeddings", "{g}");
    assert_eq!(g["data"]["tokens_prompt"], 16);
    assert_eq!(g["data"]["total_cost"].as_f64().unwrap(), cost);
}

#[tokio::test]
async fn a_failing_endpoint_falls_over_invisibly() {
    let (url, fake) = gateway().await;
    let (status, v) = embed(
        &url,
        &json!({"model": "acme/embed-busy:floor", "input": "x"}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(fake.count("status-503"), 1);
    assert_eq!(fake.count("ok"), 1);
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    // Priced at the endpoint that served it.
    let cost = v["usage"]["cost"].as_f64().unwrap();
    assert!((cost - 8.0 * 0.05 / 1e6).abs() < 1e-12, "{cost}");
}

#[tokio::test]
async fn a_chat_model_or_a_bad_body_is_a_clear_400() {
    let (url, fake) = gateway().await;
    let (status, v) = embed(&url, &json!({"model": "openai/gpt-test", "input": "x"})).await;
    assert_eq!(status, 400, "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("openai/gpt-test") && message.contains("not an embedding model"),
        "{message}"
    );

    let (status, v) = embed(&url, &json!({"model": "openai/text-embedding-3-small"})).await;
    assert_eq!(status, 400, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("input"));

    let streamed = json!({"model": "openai/text-embedding-3-small", "input": "x", "stream": true});
    let (status, v) = embed(&url, &streamed).await;
    assert_eq!(status, 400, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("stream"));
    assert!(fake.requests().is_empty());

    // An embedding model is no chat model either.
    let chat = json!({"model": "openai/text-embedding-3-small",
                      "messages": [{"role": "user", "content": "hi"}]});
    let (status, _, text) =
        post_json(&format!("{url}/chat/completions"), &chat.to_string(), &[]).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("is an embedding model"), "{text}");
    assert!(fake.requests().is_empty());

    // And the chat endpoint still serves chat models as before.
    let chat = json!({"model": "openai/gpt-test", "messages": [{"role": "user", "content": "hi"}]});
    let (status, _, text) =
        post_json(&format!("{url}/chat/completions"), &chat.to_string(), &[]).await;
    assert_eq!(status, 200, "{text}");
}
