//! `switchyard demo`: the real gateway in front of the simulated providers answers in every
//! wire format, streams, prices, records, and hides the flaky provider's failures.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::Value;
use support::{get, post_json, sse_data};
use switchyard::demo::Demo;

async fn start() -> String {
    let demo = Demo::start().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        demo.into_gateway()
            .serve(listener, std::future::pending::<()>()),
    );
    format!("http://{addr}/api/v1")
}

fn ask(model: &str, provider: &str, stream: bool) -> String {
    format!(
        r#"{{"model":"{model}","stream":{stream},"provider":{{"order":["{provider}"],"allow_fallbacks":false}},"messages":[{{"role":"user","content":"Say something"}}]}}"#
    )
}

#[tokio::test]
async fn every_simulated_format_answers_through_the_gateway() {
    let base = start().await;
    // (model, provider slug, display name): OpenAI, Anthropic and Gemini formats.
    for (model, slug, name) in [
        ("demo/fast", "swift", "Swift Inference"),
        ("demo/fast", "zephyr", "Zephyr AI"),
        ("demo/smart", "atlas", "Atlas Cloud"),
    ] {
        let url = format!("{base}/chat/completions");
        let (status, _, body) = post_json(&url, &ask(model, slug, false), &[]).await;
        assert_eq!(status, 200, "{slug}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["provider"], name);
        assert_eq!(v["model"], model);
        let text = v["choices"][0]["message"]["content"].as_str().unwrap();
        assert!(text.contains("You asked: \"Say something\""), "{text}");
        assert!(v["usage"]["completion_tokens"].as_u64().unwrap() > 10);
        assert!(v["usage"]["cost"].as_f64().unwrap() > 0.0);

        let (status, _, body) = post_json(&url, &ask(model, slug, true), &[]).await;
        assert_eq!(status, 200, "{slug}: {body}");
        let (events, _) = sse_data(&body);
        assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "{slug}");
        let chunks: Vec<Value> = events[..events.len() - 1]
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect();
        let streamed: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(streamed, text);
        let content_chunks = chunks
            .iter()
            .filter(|c| {
                c["choices"][0]["delta"]["content"]
                    .as_str()
                    .is_some_and(|s| !s.is_empty())
            })
            .count();
        assert!(
            content_chunks > 10,
            "{slug}: token by token, {content_chunks} chunks"
        );
        let usage = &chunks.last().unwrap()["usage"];
        assert!(usage["cost"].as_f64().unwrap() > 0.0, "{slug}: {usage}");
    }
}

#[tokio::test]
async fn the_flaky_provider_is_hidden_by_fallback_and_recorded_in_the_ledger() {
    let base = start().await;
    let body = r#"{"model":"demo/fast","provider":{"order":["bargain","swift"]},"messages":[{"role":"user","content":"hi"}]}"#;
    for _ in 0..12 {
        let (status, headers, text) =
            post_json(&format!("{base}/chat/completions"), body, &[]).await;
        assert_eq!(status, 200, "{text}");
        let id = headers["x-generation-id"].to_str().unwrap();
        let (status, record) = get(&format!("{base}/generation?id={id}")).await;
        assert_eq!(status, 200, "{record}");
        let record: Value = serde_json::from_str(&record).unwrap();
        let attempts: Vec<(String, u64)> = record["data"]["provider_responses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["provider"].as_str().unwrap().to_owned(),
                    a["status"].as_u64().unwrap(),
                )
            })
            .collect();
        let served = record["data"]["provider_name"].as_str().unwrap();
        // Either the cheap provider answered, or it failed and the next one did.
        match served {
            "Bargain Compute" => assert_eq!(attempts, [("bargain".to_owned(), 200)]),
            "Swift Inference" => assert_eq!(
                attempts,
                [("bargain".to_owned(), 503), ("swift".to_owned(), 200)]
            ),
            other => panic!("served by {other}: {record}"),
        }
        assert!(record["data"]["total_cost"].as_f64().unwrap() > 0.0);
    }
}

#[tokio::test]
async fn streams_from_the_flaky_provider_fall_over_before_any_content() {
    let base = start().await;
    let body = r#"{"model":"demo/fast","stream":true,"provider":{"order":["bargain","swift"]},"messages":[{"role":"user","content":"hi"}]}"#;
    for _ in 0..8 {
        let (status, _, text) = post_json(&format!("{base}/chat/completions"), body, &[]).await;
        assert_eq!(status, 200, "{text}");
        let (events, _) = sse_data(&text);
        assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "{text}");
        assert!(
            !text.contains("\"error\""),
            "a failure reached the client: {text}"
        );
        let first: Value = serde_json::from_str(&events[0]).unwrap();
        let provider = first["provider"].as_str().unwrap();
        assert!(
            ["Bargain Compute", "Swift Inference"].contains(&provider),
            "{provider}"
        );
        let streamed: String = events[..events.len() - 1]
            .iter()
            .filter_map(|e| {
                let v: Value = serde_json::from_str(e).unwrap();
                v["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect();
        assert!(
            streamed.starts_with(&format!("This is {provider},")),
            "{streamed}"
        );
    }
}

#[tokio::test]
async fn the_catalogue_lists_only_demo_models() {
    let base = start().await;
    let (status, body) = get(&format!("{base}/models")).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["demo/fast", "demo/smart"]);
    let lines = Demo::curl_lines("127.0.0.1:8080");
    assert!(lines[1].contains("\"stream\":true") && lines[2].contains("/generation?id="));
}
