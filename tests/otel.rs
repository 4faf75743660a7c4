//! With the `otel` feature: the request and attempt spans reach an OTLP/HTTP collector (a fake
//! one on 127.0.0.1:0, JSON protocol) with their GenAI attributes, the caller's `traceparent` as
//! their parent, and the trace id the client saw in `x-switchyard-trace-id`.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use axum::Router;
use axum::routing::post;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use switchyard::telemetry::TelemetryConfig;
use switchyard::test_util::{FaultTimeouts, fault_config, gateway_from, start_fake, start_gateway};
use tracing_subscriber::layer::SubscriberExt as _;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

/// A collector that keeps the body of every export request it is sent.
async fn start_collector() -> (String, Arc<Mutex<Vec<axum::body::Bytes>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = got.clone();
    let app = Router::new().route(
        "/v1/traces",
        post(move |body: axum::body::Bytes| {
            let keep = keep.clone();
            async move {
                keep.lock().unwrap().push(body);
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1/traces"), got)
}

/// An attribute's value as JSON: strings as strings, integers as numbers (OTLP/JSON may write
/// 64-bit integers as strings).
fn attr(span: &Value, key: &str) -> Option<Value> {
    let a = span["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)?;
    let v = &a["value"];
    Some(if let Some(s) = v.get("stringValue") {
        s.clone()
    } else if let Some(i) = v.get("intValue") {
        match i {
            Value::String(s) => Value::from(s.parse::<i64>().unwrap()),
            other => other.clone(),
        }
    } else if let Some(d) = v.get("doubleValue") {
        d.clone()
    } else if let Some(b) = v.get("boolValue") {
        b.clone()
    } else {
        v.clone()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_the_collector_with_their_genai_attributes() {
    let (endpoint, got) = start_collector().await;
    let mut cfg = TelemetryConfig::default();
    cfg.otlp_endpoint = Some(endpoint);
    cfg.otlp_protocol = "http/json".into();
    cfg.service_name = "switchyard-test".into();
    let (layer, guard) = switchyard::telemetry::otel::layer(&cfg).unwrap().unwrap();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer)).unwrap();

    let (fake, _fake) = start_fake().await;
    let config = fault_config(
        fake,
        &[("acme/m", &["ok"]), ("acme/fb", &["status-500", "ok"])],
        FaultTimeouts::default(),
        "[telemetry]\notlp_endpoint = \"http://unused\"\n",
    );
    let addr = start_gateway(gateway_from(&config, &|_| None)).await;
    let url = format!("http://{addr}/api/v1/chat/completions");
    let traceparent = format!("00-{TRACE}-{PARENT}-01");
    let (status, headers, text) = support::send(
        &url,
        "POST",
        r#"{"model":"acme/m","messages":[{"role":"user","content":"hi"}]}"#,
        &[("traceparent", &traceparent)],
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(headers["x-switchyard-trace-id"], TRACE);
    let usage: Value = serde_json::from_str(&text).unwrap();
    let (status, fb_headers, text) = support::send(
        &url,
        "POST",
        r#"{"model":"acme/fb","stream":true,"provider":{"order":["p-status-500","p-ok"]},"messages":[{"role":"user","content":"hi"}]}"#,
        &[],
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let fb_trace = fb_headers["x-switchyard-trace-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(fb_trace, TRACE);

    // Spans end with the response's last byte, just after the client has read it.
    let mut spans: Vec<Value> = Vec::new();
    // The flush blocks until the collector (served by this runtime) has answered.
    let guard = Arc::new(guard);
    for _ in 0..50 {
        let flushing = guard.clone();
        tokio::task::spawn_blocking(move || flushing.flush().unwrap())
            .await
            .unwrap();
        spans = got
            .lock()
            .unwrap()
            .iter()
            .map(|body| serde_json::from_slice::<Value>(body).unwrap())
            .flat_map(|req| {
                req["resourceSpans"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|rs| {
                        let service = rs["resource"]["attributes"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .find(|a| a["key"] == "service.name")
                            .map(|a| a["value"]["stringValue"].clone());
                        assert_eq!(service, Some(Value::from("switchyard-test")));
                        rs["scopeSpans"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .flat_map(|ss| ss["spans"].as_array().unwrap().iter().cloned())
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        if spans.len() >= 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let named =
        |name: &str| -> Vec<&Value> { spans.iter().filter(|s| s["name"] == name).collect() };
    let names: Vec<&Value> = spans.iter().map(|s| &s["name"]).collect();

    // The plain request: the caller's trace and parent, every GenAI field.
    let request = named("chat acme/m");
    assert_eq!(request.len(), 1, "{names:?}");
    let r = request[0];
    assert_eq!(r["traceId"], TRACE);
    assert_eq!(r["parentSpanId"], PARENT);
    for (key, want) in [
        ("gen_ai.operation.name", Value::from("chat")),
        ("gen_ai.request.model", Value::from("acme/m")),
        ("gen_ai.response.model", Value::from("acme/m")),
        ("gen_ai.provider.name", Value::from("p-ok")),
        (
            "gen_ai.usage.input_tokens",
            usage["usage"]["prompt_tokens"].clone(),
        ),
        (
            "gen_ai.usage.output_tokens",
            usage["usage"]["completion_tokens"].clone(),
        ),
        ("gen_ai.response.id", usage["id"].clone()),
        ("http.response.status_code", Value::from(200)),
        ("switchyard.attempts", Value::from(1)),
        ("switchyard.outcome", Value::from("ok")),
        ("switchyard.cost_usd", usage["usage"]["cost"].clone()),
    ] {
        assert_eq!(attr(r, key), Some(want), "{key} in {r}");
    }
    assert!(attr(r, "switchyard.ttft_ms").is_some(), "{r}");
    let attempt = named("attempt 1 p-ok");
    let a = attempt.iter().find(|a| a["traceId"] == TRACE).unwrap();
    assert_eq!(a["parentSpanId"], r["spanId"]);
    assert_eq!(attr(a, "gen_ai.provider.name"), Some(Value::from("p-ok")));
    assert_eq!(attr(a, "switchyard.outcome"), Some(Value::from("success")));

    // The stream that fell back: one request span, two attempt spans under it.
    let fb = named("chat acme/fb");
    assert_eq!(fb.len(), 1, "{names:?}");
    let fb = fb[0];
    assert_eq!(fb["traceId"], fb_trace);
    assert_eq!(attr(fb, "switchyard.attempts"), Some(Value::from(2)));
    assert_eq!(attr(fb, "gen_ai.provider.name"), Some(Value::from("p-ok")));
    let children: Vec<&Value> = spans
        .iter()
        .filter(|s| s["parentSpanId"] == fb["spanId"])
        .collect();
    let outcomes: Vec<(Option<Value>, Option<Value>, Option<Value>)> = {
        let mut c: Vec<_> = children
            .iter()
            .map(|s| {
                (
                    attr(s, "switchyard.attempt"),
                    attr(s, "gen_ai.provider.name"),
                    attr(s, "http.response.status_code"),
                )
            })
            .collect();
        c.sort_by_key(|t| t.0.as_ref().and_then(Value::as_i64));
        c
    };
    assert_eq!(
        outcomes,
        [
            (
                Some(1.into()),
                Some("p-status-500".into()),
                Some(500.into())
            ),
            (Some(2.into()), Some("p-ok".into()), Some(200.into())),
        ],
        "{children:?}"
    );
    drop(guard);
}

/// The default protocol, protobuf: the spans arrive, their attribute names and string values
/// readable in the encoded bytes. (On a current-thread runtime with a thread-local subscriber,
/// so it does not meet the JSON test's global one.)
#[tokio::test(flavor = "current_thread")]
async fn spans_also_arrive_as_protobuf() {
    let (endpoint, got) = start_collector().await;
    let mut cfg = TelemetryConfig::default();
    cfg.otlp_endpoint = Some(endpoint);
    let (layer, guard) = switchyard::telemetry::otel::layer(&cfg).unwrap().unwrap();
    let _scope = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    let (fake, _fake) = start_fake().await;
    let config = fault_config(
        fake,
        &[("acme/proto", &["ok"])],
        FaultTimeouts::default(),
        "",
    );
    let addr = start_gateway(gateway_from(&config, &|_| None)).await;
    let (status, headers, text) = support::send(
        &format!("http://{addr}/v1/chat/completions"),
        "POST",
        r#"{"model":"acme/proto","messages":[{"role":"user","content":"hi"}]}"#,
        &[],
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let trace = hex_bytes(headers["x-switchyard-trace-id"].to_str().unwrap());
    let mut bytes = Vec::new();
    // The flush waits for the collector, which this one thread also serves.
    let guard = Arc::new(guard);
    for _ in 0..50 {
        let flushing = guard.clone();
        tokio::task::spawn_blocking(move || flushing.flush().unwrap())
            .await
            .unwrap();
        bytes = got.lock().unwrap().concat();
        if contains(&bytes, b"chat acme/proto") && contains(&bytes, b"attempt 1 p-ok") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for needle in [
        &b"chat acme/proto"[..],
        b"attempt 1 p-ok",
        b"gen_ai.request.model",
        b"gen_ai.response.model",
        b"gen_ai.provider.name",
        b"gen_ai.usage.input_tokens",
        b"gen_ai.usage.output_tokens",
        b"switchyard.ttft_ms",
        b"switchyard.cost_usd",
        b"switchyard.attempt",
        b"acme/proto",
        b"switchyard",
        &trace,
    ] {
        assert!(
            contains(&bytes, needle),
            "{:?} not exported",
            String::from_utf8_lossy(needle)
        );
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A trace id's 16 bytes, as protobuf carries them.
fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}
