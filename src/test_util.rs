//! Test utilities (feature `test-util`): a fake OpenAI-compatible upstream that behaves like the
//! real API, including its failures, chosen per provider by the first path segment of the
//! provider's `base_url` (`http://127.0.0.1:PORT/<scenario>/v1`).
//!
//! Scenarios: `ok`; `status-<code>[-ra<secs>][-ctx]` (an error status, optional `Retry-After`,
//! `-ctx` = OpenAI's `context_length_exceeded` code); `hang` (never answers); `garbage` (invalid
//! JSON in a 200); `error200` (an error object inside a 200); `slow-<ms>`; and for streams
//! `cutbefore`, `cutafter`, `stallafter`, `slowfirst-<ms>`, `nodone`.
//!
//! ```no_run
//! # async fn demo() {
//! let (addr, fake) = switchyard::test_util::start_fake().await;
//! // point a provider's base_url at format!("http://{addr}/ok/v1")
//! # let _ = (addr, fake);
//! # }
//! ```
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Body as AxBody;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request the fake upstream received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub scenario: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

/// The requests a fake upstream received.
#[derive(Clone, Default, Debug)]
pub struct Fake {
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
    pub fn count(&self, scenario: &str) -> usize {
        self.requests()
            .iter()
            .filter(|s| s.scenario == scenario)
            .count()
    }
}

/// Starts the fake upstream on 127.0.0.1:0; returns its address.
pub async fn start_fake() -> (SocketAddr, Fake) {
    start_fake_on("127.0.0.1:0").await
}

/// Starts the fake upstream on a given address.
pub async fn start_fake_on(bind: &str) -> (SocketAddr, Fake) {
    let fake = Fake::default();
    let app = Router::new()
        .route("/{scenario}/v1/chat/completions", post(handle))
        .route("/{scenario}/v1/completions", post(handle))
        // Without a scenario segment the fake behaves as `ok` (any OpenAI base URL ending in /v1).
        .route("/v1/chat/completions", post(handle_ok))
        .route("/v1/completions", post(handle_ok))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, fake)
}

async fn handle_ok(
    state: State<Fake>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(state, Path("ok".to_owned()), uri, headers, body).await
}

async fn handle(
    State(fake): State<Fake>,
    Path(scenario): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    fake.seen.lock().unwrap().push(Seen {
        scenario: scenario.clone(),
        path: uri.path().to_owned(),
        headers,
        body: body.clone(),
    });
    let stream = body["stream"].as_bool().unwrap_or(false);
    let model = body["model"].as_str().unwrap_or("unknown").to_owned();
    let legacy = uri.path().ends_with("/completions") && !uri.path().ends_with("/chat/completions");
    let parts: Vec<&str> = scenario.split('-').collect();
    match parts.as_slice() {
        ["status", code, rest @ ..] => {
            let code: u16 = code.parse().unwrap();
            let mut resp = (
                StatusCode::from_u16(code).unwrap(),
                [("content-type", "application/json")],
                json!({"error": {"message": format!("fake upstream says {code}"), "type": "fake_error", "code": if code == 400 && rest.contains(&"ctx") { json!("context_length_exceeded") } else { json!(null) }}}).to_string(),
            )
                .into_response();
            if let Some(secs) = rest.iter().find_map(|r| r.strip_prefix("ra")) {
                resp.headers_mut()
                    .insert("retry-after", secs.parse().unwrap());
            }
            resp
        }
        ["hang"] => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
        ["garbage"] => (
            StatusCode::OK,
            [("content-type", "application/json")],
            "{not json",
        )
            .into_response(),
        ["error200"] => (
            StatusCode::OK,
            [("content-type", "application/json")],
            json!({"error": {"code": 502, "message": "upstream model crashed"}}).to_string(),
        )
            .into_response(),
        _ if stream => stream_response(&scenario, &model),
        ["slow", ms] => {
            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
            completion(&model, legacy)
        }
        _ => completion(&model, legacy),
    }
}

fn completion(model: &str, legacy: bool) -> Response {
    let choice = if legacy {
        json!({"index": 0, "text": "Hello from the fake", "finish_reason": "stop", "logprobs": null})
    } else {
        json!({"index": 0, "message": {"role": "assistant", "content": "Hello from the fake"}, "finish_reason": "stop", "logprobs": null})
    };
    let v = json!({
        "id": "chatcmpl-fake", "object": if legacy { "text_completion" } else { "chat.completion" }, "created": 1_700_000_000, "model": model,
        "choices": [choice],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
    });
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn chunk(model: &str, delta: Value, finish: Option<&str>) -> String {
    let v = json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {v}\n\n")
}

/// SSE scenarios: `ok` (role, 3 words, finish, usage, [DONE]); `cutbefore` (role chunk then the
/// connection drops); `cutafter` (role, one word, then drop); `stallafter` (one word then
/// silence); `slowfirst-MS` (waits MS before the first byte); `nodone` (no [DONE] and no finish).
fn stream_response(scenario: &str, model: &str) -> Response {
    let model = model.to_owned();
    let scenario = scenario.to_owned();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    tokio::spawn(async move {
        let send = |s: String| {
            let tx = tx.clone();
            async move { tx.send(Ok(Bytes::from(s))).await.is_ok() }
        };
        if let Some(ms) = scenario.strip_prefix("slowfirst-") {
            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
        }
        send(chunk(
            &model,
            json!({"role": "assistant", "content": ""}),
            None,
        ))
        .await;
        if scenario == "cutbefore" {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = tx.send(Err(std::io::Error::other("reset"))).await;
            return;
        }
        for w in ["Hello", " from", " the fake"] {
            send(chunk(&model, json!({"content": w}), None)).await;
            if scenario == "cutafter" {
                // Let the content reach the wire before the connection breaks.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let _ = tx.send(Err(std::io::Error::other("reset"))).await;
                return;
            }
            if scenario == "stallafter" {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
        }
        if scenario == "nodone" {
            return;
        }
        send(chunk(&model, json!({}), Some("stop"))).await;
        let usage = json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model, "choices": [],
            "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}});
        send(format!("data: {usage}\n\n")).await;
        send("data: [DONE]\n\n".into()).await;
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(AxBody::from_stream(stream))
        .unwrap()
}
