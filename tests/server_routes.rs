//! The served gateway answers every route as its axum router does: completions skip the router
//! on the hot path (`src/server/direct.rs`), so each request here is sent both over TCP and
//! through `Gateway::router()`, and the status, the headers a client reads and the body's shape
//! must agree.
#![allow(clippy::unwrap_used, missing_docs)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use switchyard::test_util::{FaultTimeouts, fault_config, gateway_from, start_fake, start_gateway};
use tower::ServiceExt;

const CHAT: &str = r#"{"model":"acme/m","messages":[{"role":"user","content":"hi"}]}"#;
const STREAM: &str =
    r#"{"model":"acme/m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
const LEGACY: &str = r#"{"model":"acme/m","prompt":"hi"}"#;

/// What a client reads of an answer: status, the headers that describe the body, and the
/// body's JSON keys (or its first bytes when it is not JSON); ids and times differ per call.
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    shape: String,
}

async fn answer(resp: http::Response<impl http_body::Body<Error: std::fmt::Debug>>) -> Answer {
    let status = resp.status().as_u16();
    let mut headers: Vec<(String, String)> = ["content-type", "allow", "cache-control"]
        .iter()
        .filter_map(|k| {
            Some((
                k.to_string(),
                resp.headers().get(*k)?.to_str().ok()?.to_owned(),
            ))
        })
        .collect();
    let length = resp.headers().contains_key("content-length");
    headers.push(("content-length present".into(), length.to_string()));
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let shape = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(o)) => o.keys().cloned().collect::<Vec<_>>().join(","),
        _ => String::from_utf8_lossy(&bytes[..bytes.len().min(12)]).into_owned(),
    };
    Answer {
        status,
        headers,
        shape,
    }
}

#[tokio::test]
async fn completions_served_directly_answer_as_the_router_does() {
    let (fake_addr, _fake) = start_fake().await;
    let cfg = fault_config(
        fake_addr,
        &[("acme/m", &["ok"])],
        FaultTimeouts::default(),
        "",
    );
    let gateway = gateway_from(&cfg, &|_| None);
    let router = gateway.router();
    let addr = start_gateway(gateway).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let cases: &[(&str, &str, &str)] = &[
        ("POST", "/api/v1/chat/completions", CHAT),
        ("POST", "/v1/chat/completions", CHAT),
        ("POST", "/v1/chat/completions", STREAM),
        ("POST", "/api/v1/completions", LEGACY),
        ("POST", "/v1/completions", LEGACY),
        ("POST", "/v1/chat/completions", "{not json"),
        (
            "POST",
            "/v1/chat/completions",
            r#"{"model":"nobody/none","messages":[]}"#,
        ),
        ("GET", "/v1/chat/completions", ""),
        ("HEAD", "/api/v1/completions", ""),
        ("POST", "/v1/chat/completions/", CHAT),
        ("POST", "/v1/models", ""),
        ("GET", "/v1/models", ""),
    ];
    for &(method, path, body) in cases {
        let request = |uri: String| {
            http::Request::builder()
                .method(method)
                .uri(uri)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body.to_owned())))
                .unwrap()
        };
        let served = answer(
            client
                .request(request(format!("http://{addr}{path}")))
                .await
                .unwrap(),
        )
        .await;
        let routed = answer(
            router
                .clone()
                .oneshot(request(path.to_owned()))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(served, routed, "{method} {path} {body}");
    }
}
