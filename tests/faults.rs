//! Fault-injection conformance: every upstream fault of `switchyard::test_util`, non-streaming
//! and streaming, against the whole gateway. See `docs/reliability.md` for the table.
//!
//! The invariants:
//! 1. a fault before the first content event is invisible: the client gets one clean answer from
//!    the next candidate;
//! 2. a fault after it ends the stream with the content so far, one error chunk and `[DONE]`;
//! 3. nothing ever ends as a silently truncated 200;
//! 4. no request outlives the timeouts it is configured with.
//!
//! Once metering exists, each test also checks that the ledger holds exactly one record per
//! served request (see `ledger_rows` in `tests/soak.rs` for the planned hook).
#![allow(clippy::unwrap_used, missing_docs)]

use bytes::Bytes;
use futures_util::future::join_all;
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use switchyard::test_util::{
    FAULTS_AFTER_CONTENT, FAULTS_BEFORE_CONTENT, Fake, FaultTimeouts, OK_TEXT, fault_config,
    gateway_from, start_fake, start_gateway,
};

/// What the client got.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: http::HeaderMap,
    body: String,
    /// The response body broke off (the gateway must never do this).
    body_error: Option<String>,
    elapsed: Duration,
}

impl Reply {
    /// The `data:` payloads of an SSE body, and whether comment lines appeared.
    fn events(&self) -> (Vec<String>, bool) {
        let mut out = Vec::new();
        let mut comments = false;
        for block in self.body.split("\n\n") {
            for line in block.lines() {
                if let Some(d) = line.strip_prefix("data: ") {
                    out.push(d.to_owned());
                } else if line.starts_with(':') {
                    comments = true;
                }
            }
        }
        (out, comments)
    }

    /// The chunks (every event but `[DONE]`).
    fn chunks(&self) -> Vec<Value> {
        self.events()
            .0
            .iter()
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}")))
            .collect()
    }

    fn streamed_text(&self) -> String {
        self.chunks()
            .iter()
            .filter_map(|c| {
                c["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect()
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

// `sort: price` keeps the candidate order fixed (cheapest first), so each test knows which
// provider is tried first; the default balance would draw the first pick at random.
const CHAT: &str =
    r#"{"model":"acme/m","provider":{"sort":"price"},"messages":[{"role":"user","content":"hi"}]}"#;
const CHAT_STREAM: &str = r#"{"model":"acme/m","stream":true,"provider":{"sort":"price"},"messages":[{"role":"user","content":"hi"}]}"#;

async fn post(addr: SocketAddr, body: &str) -> Reply {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let req = http::Request::post(format!("http://{addr}/api/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let start = Instant::now();
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let mut body = resp.into_body();
    let mut bytes = Vec::new();
    let mut body_error = None;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Ok(d) = f.into_data() {
                    bytes.extend_from_slice(&d);
                }
            }
            Err(e) => {
                body_error = Some(e.to_string());
                break;
            }
        }
    }
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
        body_error,
        elapsed: start.elapsed(),
    }
}

/// A fake upstream and a gateway whose model `acme/m` tries the given scenarios in order.
async fn gateway_over(scenarios: &[&str], t: FaultTimeouts) -> (SocketAddr, Fake) {
    let (fake_addr, fake) = start_fake().await;
    let cfg = fault_config(fake_addr, &[("acme/m", scenarios)], t, "");
    let addr = start_gateway(gateway_from(&cfg, &|_| None)).await;
    (addr, fake)
}

/// A clean, complete answer served by `P ok`.
fn assert_served_whole(r: &Reply, stream: bool, what: &str) {
    assert_eq!(r.status, 200, "{what}: {r:?}");
    assert!(r.body_error.is_none(), "{what}: body broke off: {r:?}");
    if !stream {
        let v = r.json();
        assert_eq!(v["provider"], "P ok", "{what}");
        assert_eq!(v["choices"][0]["message"]["content"], OK_TEXT, "{what}");
        assert_eq!(v["choices"][0]["finish_reason"], "stop", "{what}");
        return;
    }
    let (events, _) = r.events();
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{what}: {r:?}"
    );
    assert_eq!(
        events.iter().filter(|e| *e == "[DONE]").count(),
        1,
        "{what}"
    );
    let chunks = r.chunks();
    assert!(
        chunks.iter().all(|c| c.get("error").is_none()),
        "{what}: no error chunk: {r:?}"
    );
    assert!(
        chunks.iter().all(|c| c["provider"] == "P ok"),
        "{what}: one clean stream from the next provider: {r:?}"
    );
    let roles = chunks
        .iter()
        .filter(|c| c["choices"][0]["delta"]["role"] == "assistant")
        .count();
    assert_eq!(roles, 1, "{what}: nothing of the failed attempt shows");
    assert_eq!(r.streamed_text(), OK_TEXT, "{what}");
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "stop"),
        "{what}"
    );
}

/// The stream carried `content` and then ended in one error chunk and `[DONE]`.
fn assert_error_chunk_then_done(r: &Reply, content: &str, what: &str) {
    assert_error_end(r, what);
    assert_eq!(
        r.streamed_text(),
        content,
        "{what}: the content so far, nothing more"
    );
}

/// The stream ended in one error chunk and `[DONE]`.
fn assert_error_end(r: &Reply, what: &str) {
    assert_eq!(r.status, 200, "{what}: {r:?}");
    assert!(r.body_error.is_none(), "{what}: body broke off: {r:?}");
    let (events, _) = r.events();
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{what}: {r:?}"
    );
    let chunks = r.chunks();
    let last = chunks
        .last()
        .unwrap_or_else(|| panic!("{what}: no chunk: {r:?}"));
    assert_eq!(
        last["choices"][0]["finish_reason"], "error",
        "{what}: {r:?}"
    );
    let code = last["error"]["code"].as_u64().unwrap_or(0);
    assert!(code >= 500, "{what}: error code {code}: {r:?}");
    assert!(
        last["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}"
    );
    assert_eq!(
        chunks.iter().filter(|c| c.get("error").is_some()).count(),
        1,
        "{what}: exactly one error chunk"
    );
}

/// The invariant every response must satisfy: a complete answer, an error envelope, or a stream
/// that ends in `[DONE]` after a finish reason or an error chunk. Never a truncated 200.
fn assert_never_truncated(r: &Reply, stream: bool, what: &str) {
    assert!(r.body_error.is_none(), "{what}: body broke off: {r:?}");
    let is_sse = r
        .headers
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if r.status != 200 || !is_sse {
        let v = r.json();
        if r.status == 200 {
            assert!(!stream, "{what}: a stream answered with JSON");
            assert_eq!(v["choices"][0]["finish_reason"], "stop", "{what}: {r:?}");
        } else {
            assert_eq!(v["error"]["code"], r.status, "{what}: {r:?}");
            assert!(
                v["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
            );
        }
        return;
    }
    let (events, _) = r.events();
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{what}: {r:?}"
    );
    let chunks = r.chunks();
    let finished = chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "stop");
    let errored = chunks
        .last()
        .is_some_and(|c| c["choices"][0]["finish_reason"] == "error" && c.get("error").is_some());
    assert!(finished != errored, "{what}: finish xor error chunk: {r:?}");
}

#[tokio::test]
async fn faults_before_content_fail_over_invisibly_non_stream() {
    let faults = FAULTS_BEFORE_CONTENT
        .iter()
        .chain(FAULTS_AFTER_CONTENT)
        .copied();
    join_all(faults.map(|fault| async move {
        let (addr, fake) = gateway_over(&[fault, "ok"], FaultTimeouts::default()).await;
        let r = post(addr, CHAT).await;
        assert_served_whole(&r, false, fault);
        assert_eq!(fake.count("ok"), 1, "{fault}");
        let expected = usize::from(fault != "refused");
        assert_eq!(fake.count(fault), expected, "{fault}: tried once");
        assert!(
            r.elapsed < Duration::from_secs(2),
            "{fault}: {:?}",
            r.elapsed
        );
    }))
    .await;
}

#[tokio::test]
async fn faults_before_content_fail_over_invisibly_stream() {
    join_all(FAULTS_BEFORE_CONTENT.iter().map(|&fault| async move {
        let (addr, fake) = gateway_over(&[fault, "ok"], FaultTimeouts::default()).await;
        let r = post(addr, CHAT_STREAM).await;
        assert_served_whole(&r, true, fault);
        assert_eq!(fake.count("ok"), 1, "{fault}");
        assert!(
            r.elapsed < Duration::from_secs(2),
            "{fault}: {:?}",
            r.elapsed
        );
    }))
    .await;
}

#[tokio::test]
async fn faults_after_content_end_with_the_content_an_error_chunk_and_done() {
    join_all(FAULTS_AFTER_CONTENT.iter().map(|&fault| async move {
        let (addr, fake) = gateway_over(&[fault, "ok"], FaultTimeouts::default()).await;
        let r = post(addr, CHAT_STREAM).await;
        assert_error_chunk_then_done(&r, "Hello", fault);
        assert_eq!(
            fake.count("ok"),
            0,
            "{fault}: no failover after the first content"
        );
        assert!(
            r.elapsed < Duration::from_secs(2),
            "{fault}: {:?}",
            r.elapsed
        );
    }))
    .await;
}

#[tokio::test]
async fn every_fault_alone_ends_in_an_error_never_a_truncated_200() {
    let faults = FAULTS_BEFORE_CONTENT
        .iter()
        .chain(FAULTS_AFTER_CONTENT)
        .copied();
    join_all(faults.map(|fault| async move {
        let (addr, _) = gateway_over(&[fault], FaultTimeouts::default()).await;
        let r = post(addr, CHAT).await;
        assert_never_truncated(&r, false, fault);
        assert!(
            r.status >= 400,
            "{fault}: a non-stream fault is an error status: {r:?}"
        );
        if fault == "status-429-ra1" {
            assert_eq!(r.status, 429);
            assert_eq!(r.headers["retry-after"], "1");
        }
        if let Some(code) = fault.strip_prefix("status-") {
            assert_eq!(
                r.status.to_string(),
                &code[..3],
                "{fault}: the upstream status"
            );
        }
        let r = post(addr, CHAT_STREAM).await;
        assert_never_truncated(&r, true, fault);
        if FAULTS_AFTER_CONTENT.contains(&fault) {
            assert_error_chunk_then_done(&r, "Hello", fault);
        } else if r.status == 200 {
            // Keep-alives had started: the error arrives as the only chunk.
            assert_error_chunk_then_done(&r, "", fault);
        }
    }))
    .await;
}

#[tokio::test]
async fn upstream_statuses_reach_the_client_with_their_reason() {
    for (scenario, status, error_type) in [
        ("status-500", 500, "server"),
        ("status-502", 502, "provider_unavailable"),
        ("status-503", 503, "provider_overloaded"),
        ("status-529", 529, "provider_overloaded"),
        ("status-429-ra3", 429, "rate_limit_exceeded"),
    ] {
        let (addr, _) = gateway_over(&[scenario], FaultTimeouts::default()).await;
        let r = post(addr, CHAT).await;
        assert_eq!(r.status, status, "{scenario}");
        let v = r.json();
        assert_eq!(
            v["error"]["metadata"]["error_type"], error_type,
            "{scenario}"
        );
        assert_eq!(
            v["error"]["metadata"]["provider_name"],
            format!("P {scenario}")
        );
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("fake upstream says {status}")),
            "{scenario}: the provider's own reason: {v}"
        );
    }
}

#[tokio::test]
async fn no_request_outlives_its_timeouts() {
    let t = FaultTimeouts::default(); // first byte 400, idle 300, total 3000
    let slack = Duration::from_millis(700);
    let first_byte = Duration::from_millis(t.first_byte_ms);
    let idle = Duration::from_millis(t.idle_ms);
    let cases: Vec<(&[&str], &str, Duration)> = vec![
        (&["hang"], CHAT, first_byte),
        (&["hangheaders"], CHAT, first_byte),
        (&["stallafter"], CHAT, first_byte),
        (&["hang"], CHAT_STREAM, first_byte),
        (&["hangheaders"], CHAT_STREAM, first_byte),
        (&["stallbefore"], CHAT_STREAM, first_byte),
        (&["stallafter"], CHAT_STREAM, idle),
        (
            &["hang", "hangheaders", "stallbefore"],
            CHAT,
            first_byte * 3,
        ),
        (
            &["hang", "hangheaders", "stallbefore"],
            CHAT_STREAM,
            first_byte * 3,
        ),
    ];
    join_all(
        cases
            .into_iter()
            .map(|(scenarios, body, limit)| async move {
                let (addr, _) = gateway_over(scenarios, t).await;
                let r = post(addr, body).await;
                let what = format!("{scenarios:?} stream={}", body == CHAT_STREAM);
                assert_never_truncated(&r, body == CHAT_STREAM, &what);
                assert!(
                    r.elapsed <= limit + slack,
                    "{what}: took {:?}, limit {limit:?}",
                    r.elapsed
                );
            }),
    )
    .await;
}

#[tokio::test]
async fn the_total_deadline_bounds_a_slow_drip() {
    // 16 bytes every 20 ms never trips the 300 ms idle limit; the 800 ms total does.
    let t = FaultTimeouts {
        total_ms: 800,
        first_byte_ms: 800,
        ..FaultTimeouts::default()
    };
    let (addr, fake) = gateway_over(&["drip-20", "ok"], t).await;
    let r = post(addr, CHAT_STREAM).await;
    assert!(
        r.elapsed < Duration::from_millis(800 + 700),
        "{:?}",
        r.elapsed
    );
    // The first content arrived within the deadline, so the stream was committed; whatever
    // arrived before the deadline reaches the client, then the error.
    assert_error_end(&r, "drip-20 stream");
    let text = r.streamed_text();
    assert!(
        text.starts_with("Hello") && OK_TEXT.starts_with(&text) && text != OK_TEXT,
        "{text}"
    );
    let last = r.chunks().pop().unwrap();
    assert_eq!(last["error"]["code"], 504, "{last}");
    assert_eq!(fake.count("ok"), 0);
    // Non-streaming (a 300-byte answer, 16 bytes every 60 ms): never complete in time, so the
    // next candidate serves it.
    let (addr, _) = gateway_over(&["drip-60", "ok"], t).await;
    let r = post(addr, CHAT).await;
    assert_served_whole(&r, false, "drip-60 non-stream");
    assert!(
        r.elapsed < Duration::from_millis(800 + 700),
        "{:?}",
        r.elapsed
    );
}

#[tokio::test]
async fn a_slow_drip_within_the_limits_is_served_whole() {
    let (addr, fake) = gateway_over(&["drip-3", "status-500"], FaultTimeouts::default()).await;
    for body in [CHAT, CHAT_STREAM] {
        let r = post(addr, body).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.body_error.is_none());
        let text = if body == CHAT {
            r.json()["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_owned()
        } else {
            r.streamed_text()
        };
        assert_eq!(text, OK_TEXT);
    }
    assert_eq!(fake.count("status-500"), 0);
}

#[tokio::test]
async fn any_chunking_of_the_upstream_stream_gives_the_same_events() {
    let (fake_addr, _) = start_fake().await;
    let mut models: Vec<(String, Vec<&str>)> = vec![("acme/ok".into(), vec!["ok"])];
    let seeds: Vec<String> = (1..=24).map(|s| format!("rechunk-{s}")).collect();
    for s in &seeds {
        models.push((format!("acme/{s}"), vec![s.as_str()]));
    }
    let refs: Vec<(&str, &[&str])> = models
        .iter()
        .map(|(m, s)| (m.as_str(), s.as_slice()))
        .collect();
    let cfg = fault_config(fake_addr, &refs, FaultTimeouts::default(), "");
    let addr = start_gateway(gateway_from(&cfg, &|_| None)).await;
    let shape = |r: &Reply| -> Vec<Value> {
        r.chunks()
            .into_iter()
            .map(|mut c| {
                let o = c.as_object_mut().unwrap();
                for k in ["id", "created", "model", "provider"] {
                    o.remove(k);
                }
                c
            })
            .collect()
    };
    let body = |m: &str| CHAT_STREAM.replace("acme/m", m);
    let reference = post(addr, &body("acme/ok")).await;
    assert_served_whole(&reference, true, "ok");
    let reference = shape(&reference);
    join_all(seeds.iter().map(|s| {
        let body = body(&format!("acme/{s}"));
        let reference = &reference;
        async move {
            let r = post(addr, &body).await;
            assert_eq!(r.status, 200, "{s}");
            assert_eq!(r.events().0.last().map(String::as_str), Some("[DONE]"));
            assert_eq!(&shape(&r), reference, "{s}");
        }
    }))
    .await;
}

#[tokio::test]
async fn a_finished_stream_without_done_is_complete() {
    let (addr, fake) = gateway_over(&["finishnodone", "ok"], FaultTimeouts::default()).await;
    let r = post(addr, CHAT_STREAM).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.events().0.last().map(String::as_str),
        Some("[DONE]"),
        "{r:?}"
    );
    assert_eq!(r.streamed_text(), OK_TEXT);
    assert!(r.chunks().iter().all(|c| c.get("error").is_none()));
    assert_eq!(fake.count("ok"), 0);
}

#[tokio::test]
async fn huge_upstream_bodies_are_refused_and_fail_over() {
    // Non-streaming answers are limited to 64 MiB, one stream event to 16 MiB.
    let (addr, fake) = gateway_over(&["huge-65", "ok"], FaultTimeouts::default()).await;
    let r = post(addr, CHAT).await;
    assert_served_whole(&r, false, "huge-65");
    assert_eq!(fake.count("ok"), 1);
    let (addr, _) = gateway_over(&["huge-17", "ok"], FaultTimeouts::default()).await;
    let r = post(addr, CHAT_STREAM).await;
    assert_served_whole(&r, true, "huge-17 stream");
    // Alone, the oversized answer is a 502 naming the limit, not an internal error.
    let (addr, _) = gateway_over(&["huge-65"], FaultTimeouts::default()).await;
    let r = post(addr, CHAT).await;
    assert_eq!(r.status, 502, "{}", &r.body[..r.body.len().min(300)]);
    assert!(r.body.contains("exceeded"), "{}", r.body);
}

#[tokio::test]
async fn large_bodies_within_the_limits_pass_through_intact() {
    let (addr, _) = gateway_over(&["huge-3"], FaultTimeouts::default()).await;
    let r = post(addr, CHAT).await;
    assert_eq!(r.status, 200);
    let content = r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .len();
    assert_eq!(content, 3 * 1024 * 1024);
    let r = post(addr, CHAT_STREAM).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.streamed_text().len(), 3 * 1024 * 1024);
    assert_never_truncated(&r, true, "huge-3 stream");
}

#[tokio::test]
async fn keepalives_then_failover_stay_invisible() {
    // Keep-alive comments start at 200 ms; the hang costs 400 ms; the client still gets one
    // clean stream, comments first.
    let (addr, _) = gateway_over(&["hang", "ok"], FaultTimeouts::default()).await;
    let r = post(addr, CHAT_STREAM).await;
    assert_served_whole(&r, true, "hang then ok");
    assert!(
        r.body.starts_with(": OPENROUTER PROCESSING\n\n"),
        "{}",
        r.body
    );
    assert!(
        r.events()
            .0
            .iter()
            .all(|d| d == "[DONE]" || d.starts_with('{'))
    );
}

#[tokio::test]
async fn a_client_disconnect_cancels_the_upstream_stream() {
    let (addr, fake) = gateway_over(&["drip-40"], FaultTimeouts::default()).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let req = http::Request::post(format!("http://{addr}/api/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(CHAT_STREAM)))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let mut body = resp.into_body();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("Hello") {
        let f = body.frame().await.unwrap().unwrap();
        seen.extend_from_slice(&f.into_data().unwrap());
    }
    drop(body);
    drop(client);
    let deadline = Instant::now() + Duration::from_secs(2);
    while fake.abandoned() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        fake.abandoned(),
        1,
        "the upstream stream was dropped with the client"
    );
    assert_eq!(fake.completed(), 0);
}

/// Property tests: re-chunking never changes SSE events, and money arithmetic is exact.
mod properties {
    use proptest::prelude::*;
    use switchyard::catalog::Usd;
    use switchyard::sse::{Decoder, Event};

    fn decode(pieces: &[&[u8]]) -> Vec<Event> {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        for p in pieces {
            d.feed(p, &mut out);
        }
        out
    }

    fn events() -> impl Strategy<Value = Vec<(Option<String>, Vec<String>)>> {
        let line = "[ -~]{0,24}"; // printable ASCII, no CR/LF
        let event = (
            proptest::option::of("[a-z_]{1,12}"),
            proptest::collection::vec(line, 1..4),
        );
        proptest::collection::vec(event, 0..8)
    }

    /// Encodes events with the given line endings (index into `\n`, `\r\n`, `\r`) and comments.
    fn encode(events: &[(Option<String>, Vec<String>)], endings: &[usize]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        let mut eol = |out: &mut Vec<u8>| {
            let mut e = ["\n", "\r\n", "\r"][endings.get(i).copied().unwrap_or(0) % 3];
            // `\r` then `\n` is one CRLF ending, not two: keep such pairs apart.
            if e == "\n" && out.last() == Some(&b'\r') {
                e = "\r\n";
            }
            i += 1;
            out.extend_from_slice(e.as_bytes());
        };
        for (name, data) in events {
            out.extend_from_slice(b": keep-alive");
            eol(&mut out);
            if let Some(n) = name {
                out.extend_from_slice(format!("event: {n}").as_bytes());
                eol(&mut out);
            }
            for d in data {
                out.extend_from_slice(format!("data: {d}").as_bytes());
                eol(&mut out);
            }
            eol(&mut out);
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn any_split_of_any_stream_gives_the_same_events(
            evs in events(),
            endings in proptest::collection::vec(0usize..3, 0..64),
            cuts in proptest::collection::vec(any::<usize>(), 0..16),
        ) {
            let bytes = encode(&evs, &endings);
            let expected: Vec<Event> = evs
                .iter()
                .map(|(n, d)| Event { event: n.clone(), data: d.join("\n") })
                .collect();
            prop_assert_eq!(&decode(&[&bytes]), &expected);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut last = 0;
            for c in cuts {
                pieces.push(&bytes[last..c]);
                last = c;
            }
            pieces.push(&bytes[last..]);
            prop_assert_eq!(decode(&pieces), expected);
            // Byte by byte too.
            let singles: Vec<&[u8]> = bytes.chunks(1).collect();
            prop_assert_eq!(decode(&singles).len(), evs.len());
        }

        #[test]
        fn display_then_parse_is_exact(p in (i64::MIN + 1)..=i64::MAX) {
            let usd = Usd::from_picodollars(p);
            prop_assert_eq!(Usd::parse_decimal(&usd.to_string()), Some(usd));
        }

        #[test]
        fn decimal_strings_parse_exactly(whole in 0i64..9_000_000, frac in "[0-9]{0,12}") {
            let s = if frac.is_empty() { whole.to_string() } else { format!("{whole}.{frac}") };
            let padded = format!("{frac:0<12}");
            let expected = whole * Usd::PICO + padded.parse::<i64>().unwrap_or(0);
            prop_assert_eq!(Usd::parse_decimal(&s).map(Usd::picodollars), Some(expected));
        }

        #[test]
        fn addition_and_multiplication_saturate_never_wrap(a in any::<i64>(), b in any::<i64>(), n in any::<u64>()) {
            let clamp = |v: i128| v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
            let (x, y) = (Usd::from_picodollars(a), Usd::from_picodollars(b));
            prop_assert_eq!((x + y).picodollars(), clamp(i128::from(a) + i128::from(b)));
            prop_assert_eq!((x - y).picodollars(), clamp(i128::from(a) - i128::from(b)));
            prop_assert_eq!((x * n).picodollars(), clamp(i128::from(a) * i128::from(n)));
        }

        #[test]
        fn cost_is_price_times_tokens_exactly(per_million in 0u32..1_000_000, tokens in 0u64..10_000_000) {
            // A price with up to six decimals per million tokens is exact per token.
            let micro = i64::from(per_million); // micro-dollars per million tokens
            let price = Usd::from_per_million(f64::from(per_million) / 1_000_000.0);
            prop_assert_eq!(price.picodollars(), micro);
            prop_assert_eq!((price * tokens).picodollars(), micro * tokens as i64);
        }

        #[test]
        fn discounts_round_half_away_from_zero_and_stay_in_bounds(p in -1_000_000_000_000i64..1_000_000_000_000, ppm in 0i64..=1_000_000) {
            let x = Usd::from_picodollars(p);
            prop_assert_eq!(x.scale_ppm(1_000_000), x);
            prop_assert_eq!(x.scale_ppm(0), Usd::ZERO);
            let scaled = x.scale_ppm(ppm).picodollars();
            prop_assert!(scaled.abs() <= p.abs());
            let exact = i128::from(p) * i128::from(ppm);
            prop_assert!((i128::from(scaled) * 1_000_000 - exact).abs() <= 500_000);
        }
    }
}

/// Inputs the fuzzers found (`scripts/fuzz`; the inputs are also kept as fuzz seeds).
mod fuzz_regressions {
    use switchyard::sse::{Decoder, Event};

    fn decode(pieces: &[&[u8]]) -> Vec<Event> {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        for p in pieces {
            d.feed(p, &mut out);
        }
        out
    }

    /// `fuzz/seeds/sse_decoder/regression-empty-piece-after-cr`: an empty piece right after a
    /// `\r` made the decoder forget the `\r`, so the `\n` of that CRLF ended the event early.
    #[test]
    fn an_empty_piece_between_cr_and_lf_changes_nothing() {
        let whole = decode(&[b"data: a\r\ndata: b\r\n\r\n"]);
        assert_eq!(whole.len(), 1);
        assert_eq!(whole[0].data, "a\nb");
        assert_eq!(decode(&[b"data: a\r", b"", b"\ndata: b\r\n\r\n"]), whole);
        assert_eq!(
            decode(&[b"data: a\r", b"", b"", b"\ndata: b\r", b"", b"\n\r\n"]),
            whole
        );
        let stream = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fuzz/seeds/sse_decoder/regression-empty-piece-after-cr"
        ))
        .unwrap();
        let (cuts, bytes) = stream.split_at(2);
        let a = usize::from(cuts[0]) % (bytes.len() + 1);
        let b = (a + usize::from(cuts[1])) % (bytes.len() + 1);
        let (a, b) = (a.min(b), a.max(b));
        assert_eq!(
            decode(&[&bytes[..a], &bytes[a..b], &bytes[b..]]),
            decode(&[bytes])
        );
    }
}

#[tokio::test]
async fn shutdown_lets_in_flight_streams_finish_and_refuses_new_connections() {
    let (fake_addr, _) = start_fake().await;
    let cfg = fault_config(
        fake_addr,
        &[("acme/m", &["drip-5"])],
        FaultTimeouts::default(),
        "",
    );
    let gw = gateway_from(&cfg, &|_| None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gw.serve(listener, async {
        let _ = stop_rx.await;
    }));
    // A stream of ~0.4 s is in flight when the shutdown starts.
    let in_flight = tokio::spawn(post(addr, CHAT_STREAM));
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop_tx.send(()).unwrap();
    let r = in_flight.await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        r.streamed_text(),
        OK_TEXT,
        "the in-flight stream completed: {r:?}"
    );
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("serve returns once in-flight requests are done")
        .unwrap()
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}
