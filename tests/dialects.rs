//! Anthropic- and Gemini-speaking fake upstreams (serving the documented wire shapes from
//! tests/fixtures) behind the whole gateway, driven by the `async-openai` client.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{
    ChatCompletionRequestUserMessageArgs, CreateChatCompletionRequestArgs,
};
use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures_util::StreamExt;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use support::*;

type Seen = Arc<Mutex<Vec<(String, HeaderMap, Value)>>>;

fn fixture(path: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn sse(body: String) -> Response {
    ([("content-type", "text/event-stream")], body).into_response()
}

fn json(status: u16, body: String) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body,
    )
        .into_response()
}

async fn start_dialects() -> (std::net::SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let s1 = seen.clone();
    let s2 = seen.clone();
    let app = Router::new()
        .route(
            "/{scenario}/v1/messages",
            post(
                move |Path(scenario): Path<String>, headers: HeaderMap, body: String| {
                    let seen = s1.clone();
                    async move {
                        let v: Value = serde_json::from_str(&body).unwrap();
                        seen.lock()
                            .unwrap()
                            .push((scenario.clone(), headers, v.clone()));
                        if scenario == "overloaded" {
                            return json(529, fixture("anthropic/error_overloaded.json"));
                        }
                        if v["stream"] == true {
                            sse(fixture("anthropic/stream_text.sse"))
                        } else {
                            json(200, fixture("anthropic/text.json"))
                        }
                    }
                },
            ),
        )
        .route(
            "/gemini/v1beta/models/{action}",
            post(
                move |Path(action): Path<String>, headers: HeaderMap, body: String| {
                    let seen = s2.clone();
                    async move {
                        let v: Value = serde_json::from_str(&body).unwrap();
                        seen.lock().unwrap().push((action.clone(), headers, v));
                        if action.ends_with(":streamGenerateContent") {
                            sse(fixture("gemini/stream_text.sse"))
                        } else {
                            json(200, fixture("gemini/text.json"))
                        }
                    }
                },
            ),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

fn config(addr: std::net::SocketAddr) -> String {
    format!(
        r#"
[[providers]]
slug = "anthropic"
name = "Anthropic"
api = "anthropic"
base_url = "http://{addr}/ok/v1"
api_key_env = "TEST_ANTHROPIC_KEY"
headers = {{ "anthropic-version" = "2023-06-01" }}

[[providers]]
slug = "anthropic-busy"
name = "Anthropic Busy"
api = "anthropic"
base_url = "http://{addr}/overloaded/v1"

[[providers]]
slug = "google"
name = "Google AI Studio"
api = "gemini"
base_url = "http://{addr}/gemini/v1beta"
api_key_env = "TEST_GEMINI_KEY"

[[models]]
slug = "anthropic/claude-test"
max_completion_tokens = 1000
[[models.endpoints]]
provider = "anthropic"
model = "claude-test-1"
pricing = {{ prompt = 3.0, completion = 15.0, input_cache_read = 0.3, input_cache_write = 3.75 }}

[[models]]
slug = "google/gemini-test"
[[models.endpoints]]
provider = "google"
model = "gemini-test-flash"
pricing = {{ prompt = 1.0, completion = 2.0 }}

[[models]]
slug = "anthropic/claude-busy"
[[models.endpoints]]
provider = "anthropic-busy"
model = "claude-busy"
pricing = {{ prompt = 1.0, completion = 1.0 }}
[[models.endpoints]]
provider = "google"
model = "gemini-test-flash"
pricing = {{ prompt = 2.0, completion = 2.0 }}
"#
    )
}

const ENV: &[(&str, &str)] = &[
    ("TEST_ANTHROPIC_KEY", "ak-test-secret"),
    ("TEST_GEMINI_KEY", "gk-test-secret"),
];

fn client(url: String) -> Client<OpenAIConfig> {
    Client::with_config(
        OpenAIConfig::new()
            .with_api_base(url)
            .with_api_key("sk-client"),
    )
}

fn request(model: &str, stream: bool) -> async_openai::types::chat::CreateChatCompletionRequest {
    CreateChatCompletionRequestArgs::default()
        .model(model)
        .stream(stream)
        .messages([ChatCompletionRequestUserMessageArgs::default()
            .content("hi")
            .build()
            .unwrap()
            .into()])
        .build()
        .unwrap()
}

/// Streams through async-openai; returns (text, usage chunks, provider of every chunk).
async fn stream(url: &str, model: &str) -> (String, Vec<Value>) {
    let client = client(url.to_owned());
    let mut s = client
        .chat()
        .create_stream(request(model, true))
        .await
        .unwrap();
    let mut text = String::new();
    let mut usages = Vec::new();
    while let Some(chunk) = s.next().await {
        let chunk = chunk.unwrap();
        assert_eq!(chunk.model, model);
        assert!(chunk.id.starts_with("gen-"));
        for c in &chunk.choices {
            text.push_str(c.delta.content.as_deref().unwrap_or(""));
        }
        if let Some(u) = &chunk.usage {
            assert!(chunk.choices.is_empty());
            usages.push(serde_json::to_value(u).unwrap());
        }
    }
    (text, usages)
}

#[tokio::test]
async fn claude_format_upstream_streams_as_openai_chunks_with_cost() {
    let (addr, seen) = start_dialects().await;
    let url = start_gateway_with_env(&config(addr), ENV).await;
    let (text, usages) = stream(&url, "anthropic/claude-test").await;
    assert_eq!(text, "Hello!");
    assert_eq!(usages.len(), 1);
    // 25 uncached × $3/M + 100 cached × $0.30/M + 15 completion × $15/M.
    assert_eq!(usages[0]["prompt_tokens"], 125);
    assert_eq!(usages[0]["completion_tokens"], 15);
    let (status, _, raw) = post_json(&format!("{url}/chat/completions"), r#"{"model":"anthropic/claude-test","stream":true,"messages":[{"role":"user","content":"hi"}]}"#, &[]).await;
    assert_eq!(status, 200);
    assert!(raw.contains("\"cost\":0.00033"), "{raw}");
    let seen = seen.lock().unwrap();
    let (_, headers, body) = &seen[0];
    assert_eq!(headers["x-api-key"], "ak-test-secret");
    assert!(
        headers.get("authorization").is_none(),
        "the client's key never goes upstream"
    );
    assert_eq!(headers["anthropic-version"], "2023-06-01");
    assert_eq!(body["model"], "claude-test-1");
    assert_eq!(
        body["max_tokens"], 1000,
        "max_tokens defaults from the catalogue"
    );
}

#[tokio::test]
async fn gemini_format_upstream_streams_as_openai_chunks_with_cost() {
    let (addr, seen) = start_dialects().await;
    let url = start_gateway_with_env(&config(addr), ENV).await;
    let (text, usages) = stream(&url, "google/gemini-test").await;
    assert_eq!(text, "The quick brown fox jumps.");
    assert_eq!(usages.len(), 1);
    assert_eq!(usages[0]["prompt_tokens"], 9);
    assert_eq!(usages[0]["completion_tokens"], 6);
    let (_, _, raw) = post_json(&format!("{url}/chat/completions"), r#"{"model":"google/gemini-test","stream":true,"messages":[{"role":"user","content":"hi"}]}"#, &[]).await;
    assert!(raw.contains("\"cost\":0.000021"), "{raw}");
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].0, "gemini-test-flash:streamGenerateContent");
    assert_eq!(seen[0].1["x-goog-api-key"], "gk-test-secret");
    assert!(seen[0].2.get("contents").is_some());
}

#[tokio::test]
async fn non_streaming_dialects_are_openai_shaped() {
    let (addr, _) = start_dialects().await;
    let url = start_gateway_with_env(&config(addr), ENV).await;
    let c = client(url);
    let r = c
        .chat()
        .create(request("anthropic/claude-test", false))
        .await
        .unwrap();
    assert_eq!(
        r.choices[0].message.content.as_deref(),
        Some("Hi! My name is Claude.")
    );
    assert_eq!(r.model, "anthropic/claude-test");
    let u = r.usage.unwrap();
    assert_eq!(u.prompt_tokens, 12 + 2051 + 4096);
    let r = c
        .chat()
        .create(request("google/gemini-test", false))
        .await
        .unwrap();
    assert_eq!(
        r.choices[0].message.content.as_deref(),
        Some("AI learns patterns from data to make predictions.")
    );
}

#[tokio::test]
async fn anthropic_overloaded_falls_over_to_the_next_provider() {
    let (addr, seen) = start_dialects().await;
    let url = start_gateway_with_env(&config(addr), ENV).await;
    let body = r#"{"model":"anthropic/claude-busy","provider":{"sort":"price"},"messages":[{"role":"user","content":"hi"}]}"#;
    let (status, _, raw) = post_json(
        &format!("{url}/chat/completions"),
        body,
        &[("x-openrouter-metadata", "enabled")],
    )
    .await;
    assert_eq!(status, 200, "{raw}");
    let v: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(v["provider"], "Google AI Studio");
    assert_eq!(v["openrouter_metadata"]["attempts"][0]["status"], 529);
    assert_eq!(seen.lock().unwrap()[0].0, "overloaded");
}
