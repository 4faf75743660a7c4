//! The fake's router: which scenario a request names (the first path segment) and the answer
//! it gets.

use super::answers::{
    Pacing, body_response, faulty_json, faulty_stream, huge, json_response, normal, send_all,
    silence, stream_events, tool_call,
};
use super::ask::{Ask, parse_fault};
use super::fake::{Abort, Fake, ResetHandle, Seen, serve_connection};
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use serde_json::{Value, json};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;

/// Fault scenarios that strike before any content event: the fallback layer must hide them from
/// the client (in both modes) by serving the next candidate.
pub const FAULTS_BEFORE_CONTENT: &[&str] = &[
    "status-429-ra1",
    "status-500",
    "status-502",
    "status-503",
    "status-529",
    "refused",
    "resetconn",
    "hang",
    "hangheaders",
    "cutbefore",
    "resetbefore",
    "stallbefore",
    "nodonebefore",
    "malformedbefore",
    "errchunkbefore",
    "garbage",
    "error200",
];

/// Fault scenarios that strike after the first content event: a stream ends with the content so
/// far, an error chunk and `[DONE]`; for non-streaming requests they are broken bodies, still
/// invisible.
pub const FAULTS_AFTER_CONTENT: &[&str] = &[
    "cutafter",
    "resetafter",
    "stallafter",
    "nodone",
    "malformedafter",
    "errchunkafter",
];

pub(super) async fn handle(
    State(fake): State<Fake>,
    Path(scenario): Path<String>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let reset = parts.extensions.get::<ResetHandle>().cloned();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    *fake
        .counts
        .lock()
        .unwrap()
        .entry(scenario.clone())
        .or_default() += 1;
    let path = parts.uri.path().to_owned();
    let ask = Ask {
        stream: body["stream"].as_bool().unwrap_or(false),
        model: body["model"].as_str().unwrap_or("unknown").to_owned(),
        legacy: path.ends_with("/completions") && !path.ends_with("/chat/completions"),
        echo: body["x_echo"].as_str().map(str::to_owned),
        auth: parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
        tool: body["tools"][0]["function"]["name"]
            .as_str()
            .filter(|_| {
                let last = body["messages"].as_array().and_then(|m| m.last());
                last.is_none_or(|m| m["role"] != "tool")
            })
            .map(str::to_owned),
        embeddings: path.ends_with("/embeddings").then(|| match &body["input"] {
            Value::Array(items) => items.len(),
            _ => 1,
        }),
    };
    if fake.record.load(Ordering::Relaxed) {
        fake.seen.lock().unwrap().push(Seen {
            scenario: scenario.clone(),
            path,
            headers: parts.headers,
            body,
        });
    }
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
        ["hangheaders"] => {
            let ct = if ask.stream {
                "text/event-stream"
            } else {
                "application/json"
            };
            let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(1);
            tokio::spawn(async move { silence(&tx).await });
            body_response(ct, rx)
        }
        ["resetconn"] => {
            if let Some(r) = reset {
                r.arm();
            }
            let mut resp = StatusCode::OK.into_response();
            resp.extensions_mut().insert(Abort);
            resp
        }
        ["toolcall"] => match &ask.tool {
            Some(name) => tool_call(&ask, name),
            None => normal(&fake, &ask, Pacing::Whole),
        },
        ["garbage"] => json_response(StatusCode::OK, "{not json".to_owned()),
        ["error200"] => json_response(
            StatusCode::OK,
            json!({"error": {"code": 502, "message": "upstream model crashed"}}).to_string(),
        ),
        ["echokey"] => json_response(
            StatusCode::UNAUTHORIZED,
            json!({"error": {"message": format!("Incorrect API key provided: {}", ask.auth), "type": "invalid_request_error", "code": "invalid_api_key"}}).to_string(),
        ),
        ["huge", mib] => huge(&ask, mib.parse().unwrap()),
        ["slow", ms] => {
            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
            normal(&fake, &ask, Pacing::Whole)
        }
        ["slowfirst", ms] if !ask.stream => {
            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
            normal(&fake, &ask, Pacing::Whole)
        }
        ["slowfirst", ms] => normal(
            &fake,
            &ask,
            Pacing::FirstAfter(Duration::from_millis(ms.parse().unwrap())),
        ),
        ["drip", ms] => normal(
            &fake,
            &ask,
            Pacing::Drip(Duration::from_millis(ms.parse().unwrap())),
        ),
        ["rechunk", seed] => normal(&fake, &ask, Pacing::Rechunk(seed.parse().unwrap())),
        ["finishnodone"] if ask.stream => {
            // Finish reason and usage, then the end: no `[DONE]` (some servers do this).
            let mut events = stream_events(&ask);
            events.pop();
            let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(16);
            tokio::spawn(async move { send_all(&tx, events.into_iter().map(Bytes::from)).await });
            body_response("text/event-stream", rx)
        }
        [name] => match parse_fault(name) {
            Some((fault, at)) if ask.stream => faulty_stream(&fake, &ask, fault, at, reset),
            Some((fault, _)) => faulty_json(&ask, fault, reset),
            None => normal(&fake, &ask, Pacing::Whole),
        },
        _ => normal(&fake, &ask, Pacing::Whole),
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
        .route("/{scenario}/v1/embeddings", post(handle))
        // Without a scenario segment the fake behaves as `ok` (any OpenAI base URL ending in /v1).
        .route("/v1/chat/completions", post(handle_ok))
        .route("/v1/completions", post(handle_ok))
        .route("/v1/embeddings", post(handle_ok))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = fake.clone();
    tokio::spawn(async move {
        let fake = state;
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                // Out of file descriptors or similar: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let idle_close = *fake.idle_close.lock().unwrap();
            tokio::spawn(serve_connection(tcp, app.clone(), idle_close));
        }
    });
    (addr, fake)
}

async fn handle_ok(state: State<Fake>, req: Request) -> Response {
    handle(state, Path("ok".to_owned()), req).await
}
