//! CPU cost of the client-API layers alone: the Messages and Responses layers over an
//! in-process chat service answering a canned completion or chunk stream, beside that service
//! called directly with a chat request. Prints nanoseconds per request for each.
//!
//! ```text
//! cargo run --release --example ingress_cost -- [requests]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use std::convert::Infallible;
use std::time::Instant;
use switchyard::BoxError;
use switchyard::body::{self, Body};
use switchyard::ingress::anthropic::MessagesLayer;
use switchyard::ingress::responses::ResponsesLayer;
use tower::util::BoxCloneService;
use tower::{Layer, ServiceExt};

const JSON: &[u8] = br#"{"id":"gen-bench","object":"chat.completion","created":1700000000,"model":"bench","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the chat service."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19,"cost":0.00001}}"#;

fn chunks() -> Vec<Bytes> {
    let chunk = |delta: &str, finish: &str| {
        Bytes::from(format!(
            "data: {{\"id\":\"gen-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"bench\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n"
        ))
    };
    let mut v = vec![chunk(r#"{"role":"assistant","content":""}"#, "null")];
    for i in 0..32 {
        v.push(chunk(&format!("{{\"content\":\"token{i} \"}}"), "null"));
    }
    v.push(chunk("{}", "\"stop\""));
    v.push(Bytes::from_static(b"data: {\"id\":\"gen-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"bench\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":32,\"total_tokens\":44}}\n\n"));
    v.push(Bytes::from_static(b"data: [DONE]\n\n"));
    v
}

type Svc = BoxCloneService<Request<Body>, Response<Body>, BoxError>;

/// The chat service: reads the request body (as any real one must), then answers.
fn chat(stream: bool) -> Svc {
    let chunks: std::sync::Arc<[Bytes]> = chunks().into();
    BoxCloneService::new(tower::service_fn(move |req: Request<Body>| {
        let chunks = chunks.clone();
        async move {
            let _ = req.into_body().collect().await?;
            let (ct, body) = if stream {
                let frames =
                    futures_util::stream::iter((0..chunks.len()).map(move |i| {
                        Ok::<_, Infallible>(http_body::Frame::data(chunks[i].clone()))
                    }));
                (
                    "text/event-stream",
                    body::boxed(http_body_util::StreamBody::new(frames)),
                )
            } else {
                ("application/json", body::full(Bytes::from_static(JSON)))
            };
            let mut resp = Response::new(body);
            resp.headers_mut()
                .insert(http::header::CONTENT_TYPE, ct.parse().unwrap());
            Ok::<_, BoxError>(resp)
        }
    }))
}

async fn run(svc: Svc, path: &str, body: &str, n: usize) -> f64 {
    let body = Bytes::from(body.to_owned());
    let t = Instant::now();
    for _ in 0..n {
        let req = Request::post(path).body(body::full(body.clone())).unwrap();
        let resp = svc.clone().oneshot(req).await.unwrap();
        let out = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(!out.is_empty());
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let prompt = "Summarise the following paragraph in one sentence. ".repeat(16);
    println!("| mode | chat service alone | Messages layer | Responses layer |");
    println!("|---|---|---|---|");
    for stream in [false, true] {
        let chat_body = serde_json::json!({"model": "m", "stream": stream,
            "messages": [{"role": "user", "content": prompt}]})
        .to_string();
        let messages_body = serde_json::json!({"model": "m", "max_tokens": 256, "stream": stream,
            "messages": [{"role": "user", "content": prompt}]})
        .to_string();
        let responses_body = serde_json::json!({"model": "m", "stream": stream, "store": false,
            "input": prompt})
        .to_string();
        let alone = run(chat(stream), "/v1/chat/completions", &chat_body, n).await;
        let messages = run(
            BoxCloneService::new(MessagesLayer::new().layer(chat(stream))),
            "/v1/messages",
            &messages_body,
            n,
        )
        .await;
        let responses = run(
            BoxCloneService::new(ResponsesLayer::new().layer(chat(stream))),
            "/v1/responses",
            &responses_body,
            n,
        )
        .await;
        println!(
            "| {} | {alone:.0} ns | {messages:.0} ns (+{:.0}) | {responses:.0} ns (+{:.0}) |",
            if stream { "stream (35 chunks)" } else { "JSON" },
            messages - alone,
            responses - alone
        );
    }
}
