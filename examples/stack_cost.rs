//! CPU cost of the completion layer stack alone, without sockets: the gateway's layers
//! (parse → alias → auto → route → balance → fallback → meter → translate) over an in-process
//! upstream answering a canned completion. Prints nanoseconds per request.
//!
//! The parse and fallback layers record into a metrics registry, as the gateway's do by
//! default; `STACK_COST_METRICS=off` leaves it out (to measure what recording costs).
//!
//! ```text
//! cargo run --release --example stack_cost -- [requests] [body bytes] [stream]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchyard::BoxError;
use switchyard::alias::AliasLayer;
use switchyard::autoroute::AutoRouteLayer;
use switchyard::balance::BalanceLayer;
use switchyard::body::{self, Body};
use switchyard::context::ApiKind;
use switchyard::fallback::FallbackLayer;
use switchyard::ledger::MemorySink;
use switchyard::meter::MeterLayer;
use switchyard::metrics::Metrics;
use switchyard::parse::ParseLayer;
use switchyard::route::{RouteLayer, Sticky};
use switchyard::translate::TranslateLayer;
use tower::{Service, ServiceBuilder, ServiceExt};

const CONFIG: &str = r#"
[catalog]
include_default = false
[[providers]]
slug = "up"
name = "Upstream"
api = "openai"
base_url = "http://127.0.0.1:9/v1"
[[models]]
slug = "bench/target"
[[models.endpoints]]
provider = "up"
model = "bench-up"
pricing = { prompt = 0.1, completion = 0.2 }
"#;

const JSON: &[u8] = br#"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"bench-up","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the fake upstream."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19}}"#;

fn sse() -> Vec<Bytes> {
    let chunk = |delta: &str, finish: &str| {
        Bytes::from(format!(
            "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"bench-up\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n"
        ))
    };
    let mut v = vec![chunk(r#"{"role":"assistant","content":""}"#, "null")];
    for i in 0..32 {
        v.push(chunk(&format!("{{\"content\":\"token{i} \"}}"), "null"));
    }
    v.push(chunk("{}", "\"stop\""));
    v.push(Bytes::from_static(b"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"bench-up\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":32,\"total_tokens\":44}}\n\n"));
    v.push(Bytes::from_static(b"data: [DONE]\n\n"));
    v
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let size: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1024);
    let stream = args.get(2).is_some_and(|a| a == "stream");
    let gw = switchyard::test_util::gateway_from(CONFIG, &|_| None);
    let catalog = gw.catalog().clone();
    let health = gw.health().clone();
    let sticky = Arc::new(Sticky::new());
    let chunks: Arc<[Bytes]> = sse().into();
    let metrics = (std::env::var("STACK_COST_METRICS").as_deref() != Ok("off"))
        .then(|| Arc::new(Metrics::new()));
    let mut parse = ParseLayer::new(ApiKind::Chat);
    let mut fallback = FallbackLayer::new()
        .keepalive_after(Duration::from_secs(10))
        .health(health.clone())
        .sticky(sticky.clone());
    if let Some(m) = &metrics {
        parse = parse.metrics(m.clone());
        fallback = fallback.metrics(m.clone());
    }
    let upstream = tower::service_fn(move |_req: Request<Body>| {
        let chunks = chunks.clone();
        async move {
            let mut resp = if stream {
                let frames =
                    futures_util::stream::iter((0..chunks.len()).map(move |i| {
                        Ok::<_, Infallible>(http_body::Frame::data(chunks[i].clone()))
                    }));
                Response::new(body::boxed(http_body_util::StreamBody::new(frames)))
            } else {
                Response::new(body::full(Bytes::from_static(JSON)))
            };
            let ct = if stream {
                "text/event-stream"
            } else {
                "application/json"
            };
            resp.headers_mut()
                .insert(http::header::CONTENT_TYPE, ct.parse().unwrap());
            Ok::<_, BoxError>(resp)
        }
    });
    let mut stack = ServiceBuilder::new()
        .layer(parse)
        .layer(AliasLayer::with_handle(
            catalog.clone(),
            gw.aliases().clone(),
        ))
        .layer(AutoRouteLayer::from_config(None, catalog.clone()).unwrap())
        .layer(
            RouteLayer::new(catalog.clone())
                .health(health.clone())
                .sticky(sticky),
        )
        .layer(BalanceLayer::new().health(health.clone()))
        .layer(fallback)
        .layer(
            MeterLayer::new()
                .sink(Arc::new(MemorySink::new(100_000)))
                .health(health),
        )
        .layer(TranslateLayer::new())
        .service(upstream);
    let pad = "x".repeat(size.saturating_sub(120));
    let req_body = Bytes::from(format!(
        r#"{{"model":"bench/target","stream":{stream},"messages":[{{"role":"user","content":"{pad}"}}],"temperature":0.5}}"#
    ));
    let mut bytes_out = 0usize;
    let t = Instant::now();
    let cpu0 = cpu_time();
    for _ in 0..n {
        let req = Request::post("/api/v1/chat/completions")
            .header("content-type", "application/json")
            .body(Full::new(req_body.clone()))
            .unwrap();
        let resp = ServiceExt::<Request<Full<Bytes>>>::ready(&mut stack)
            .await
            .unwrap()
            .call(req)
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{:?}", resp.status());
        bytes_out += resp.into_body().collect().await.unwrap().to_bytes().len();
    }
    let el = t.elapsed();
    let cpu = cpu_time() - cpu0;
    println!(
        "{} requests, body {size} B, stream {stream}: {:.2} µs/request wall, {:.2} µs CPU ({} B out each)",
        n,
        el.as_secs_f64() * 1e6 / n as f64,
        cpu.as_secs_f64() * 1e6 / n as f64,
        bytes_out / n
    );
    if let Some(m) = metrics {
        // Proof the layers recorded: one histogram sample and one attempt per request.
        let text = m.render();
        assert!(text.contains(&format!("switchyard_overhead_seconds_count {n}\n")));
        assert!(text.contains(&format!("provider=\"up\",outcome=\"success\"}} {n}\n")));
    }
}

/// User + system CPU time of this process (Linux `/proc/self/stat`, 10 ms ticks).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(") ").next().unwrap_or("").split(' ').collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    Duration::from_millis(ticks * 10)
}
