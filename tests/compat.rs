//! The `async-openai` crate, a real third-party client, against the gateway.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{
    ChatCompletionRequestUserMessageArgs, CreateChatCompletionRequestArgs,
};
use futures_util::StreamExt;
use support::*;

async fn client() -> Client<OpenAIConfig> {
    let (addr, _) = start_fake().await;
    let url = start_gateway(&config_toml(
        addr,
        &[("acme/m", &[("status-503", 0.5, 0.5), ("ok", 1.0, 2.0)])],
        "",
    ))
    .await;
    Client::with_config(
        OpenAIConfig::new()
            .with_api_base(url)
            .with_api_key("sk-whatever"),
    )
}

fn request(stream: bool) -> async_openai::types::chat::CreateChatCompletionRequest {
    CreateChatCompletionRequestArgs::default()
        .model("acme/m")
        .stream(stream)
        .messages([ChatCompletionRequestUserMessageArgs::default()
            .content("hi")
            .build()
            .unwrap()
            .into()])
        .build()
        .unwrap()
}

#[tokio::test]
async fn async_openai_chat() {
    let client = client().await;
    let resp = client.chat().create(request(false)).await.unwrap();
    assert!(resp.id.starts_with("gen-"));
    assert_eq!(resp.model, "acme/m");
    assert_eq!(
        resp.choices[0].message.content.as_deref(),
        Some("Hello from the fake")
    );
    assert!(resp.usage.is_some());
}

#[tokio::test]
async fn async_openai_stream() {
    let client = client().await;
    let mut stream = client.chat().create_stream(request(true)).await.unwrap();
    let mut text = String::new();
    let mut usage = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        usage += usize::from(chunk.usage.is_some());
        for c in &chunk.choices {
            text.push_str(c.delta.content.as_deref().unwrap_or(""));
        }
    }
    assert_eq!(text, "Hello from the fake");
    assert_eq!(usage, 1);
}

#[tokio::test]
async fn async_openai_models() {
    let client = client().await;
    let models = client.models().list().await.unwrap();
    assert!(models.data.iter().any(|m| m.id == "acme/m"));
}
