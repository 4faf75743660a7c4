//! `MeterLayer::commit_before_answer`: the end of an answer (a JSON response; a stream's usage
//! chunk and `[DONE]`) waits for the sink's commit ticket, and goes out anyway once the bound
//! has passed. The sink here hands out tickets the test signals by hand.
#![allow(clippy::unwrap_used, clippy::expect_used)] // panicking is how tests fail

use bytes::Bytes;
use http_body_util::BodyExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchyard::catalog::Pricing;
use switchyard::ledger::{
    Commit, CommitSignal, GenerationRecord, MemorySink, MeterSink, commit_ticket,
};
use switchyard::meter::{MeterLayer, Prices};
use switchyard::{Body, BoxError};
use tower::{Layer, ServiceExt};

/// A memory sink whose commits the test makes happen.
#[derive(Debug)]
struct HandCommitted {
    records: MemorySink,
    signals: Mutex<Vec<CommitSignal>>,
}

impl Default for HandCommitted {
    fn default() -> Self {
        HandCommitted {
            records: MemorySink::new(100),
            signals: Mutex::default(),
        }
    }
}

impl HandCommitted {
    fn commit_all(&self) {
        for s in self.signals.lock().unwrap().drain(..) {
            s.committed();
        }
    }
}

impl MeterSink for HandCommitted {
    fn record(&self, rec: GenerationRecord) {
        self.records.record(rec);
    }
    fn record_committed(&self, rec: GenerationRecord) -> Option<Commit> {
        self.records.record(rec);
        let (signal, commit) = commit_ticket();
        self.signals.lock().unwrap().push(signal);
        Some(commit)
    }
    fn get(&self, id: &str) -> Option<GenerationRecord> {
        self.records.get(id)
    }
    fn flush(&self) {}
}

const COMPLETION: &str = r#"{"id":"up","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;

const CHUNKS: &[&str] = &[
    "data: {\"id\":\"up\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hel\"}}]}\n\n",
    "data: {\"id\":\"up\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}\n\n",
    "data: [DONE]\n\n",
];

/// The meter alone over a canned upstream, waiting at most `bound` for commits.
fn meter(
    sink: Arc<HandCommitted>,
    bound: Duration,
) -> impl tower::Service<
    http::Request<Body>,
    Response = http::Response<Body>,
    Error = BoxError,
    Future = impl Send,
> + Clone {
    let upstream = tower::service_fn(|req: http::Request<Body>| async move {
        let body = req.into_body().collect().await?.to_bytes();
        let stream = String::from_utf8_lossy(&body).contains("\"stream\":true");
        let resp = if stream {
            let frames = CHUNKS
                .iter()
                .map(|c| Ok::<_, BoxError>(http_body::Frame::data(Bytes::from(*c))));
            http::Response::builder()
                .header("content-type", "text/event-stream")
                .body(switchyard::body::boxed(http_body_util::StreamBody::new(
                    futures_util::stream::iter(frames),
                )))?
        } else {
            http::Response::builder()
                .header("content-type", "application/json")
                .body(switchyard::body::full(COMPLETION))?
        };
        Ok::<_, BoxError>(resp)
    });
    MeterLayer::new()
        .prices(Prices::fixed(Pricing::per_million(1.0, 2.0)))
        .sink(sink)
        .commit_before_answer(bound)
        .layer(upstream)
}

fn request(stream: bool) -> http::Request<Body> {
    http::Request::post("/v1/chat/completions")
        .body(switchyard::body::full(format!(
            r#"{{"model":"m","stream":{stream},"messages":[{{"role":"user","content":"hi"}}]}}"#
        )))
        .unwrap()
}

#[tokio::test]
async fn a_json_answer_waits_for_its_commit() {
    let sink = Arc::new(HandCommitted::default());
    let svc = meter(sink.clone(), Duration::from_secs(30));
    let answer = tokio::spawn(svc.oneshot(request(false)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!answer.is_finished(), "answered before the commit");
    assert_eq!(sink.signals.lock().unwrap().len(), 1, "one ticket");
    sink.commit_all();
    let resp = tokio::time::timeout(Duration::from_secs(10), answer)
        .await
        .expect("answered once committed")
        .unwrap()
        .unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["usage"]["cost"], serde_json::json!(0.000007));
}

#[tokio::test]
async fn a_stream_holds_its_usage_chunk_and_done_until_the_commit() {
    let sink = Arc::new(HandCommitted::default());
    let svc = meter(sink.clone(), Duration::from_secs(30));
    let resp = svc.oneshot(request(true)).await.unwrap();
    let mut body = resp.into_body();
    let mut seen = String::new();
    // The content goes out at once; the end does not.
    while !seen.contains("\"lo\"") {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("content is not held back")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&frame.into_data().unwrap()));
    }
    let held = tokio::time::timeout(Duration::from_millis(200), body.frame()).await;
    assert!(held.is_err(), "the usage chunk went out before the commit");
    sink.commit_all();
    let rest = tokio::time::timeout(Duration::from_secs(10), body.collect())
        .await
        .expect("the end goes out once committed")
        .unwrap()
        .to_bytes();
    let rest = String::from_utf8_lossy(&rest);
    assert!(
        rest.contains("\"usage\"") && rest.ends_with("data: [DONE]\n\n"),
        "{rest}"
    );
}

#[tokio::test]
async fn past_the_bound_the_answer_goes_out_anyway() {
    let sink = Arc::new(HandCommitted::default());
    let bound = Duration::from_millis(300);
    let svc = meter(sink.clone(), bound);
    let started = Instant::now();
    let resp = tokio::time::timeout(Duration::from_secs(10), svc.oneshot(request(false)))
        .await
        .expect("released after the bound")
        .unwrap();
    assert!(started.elapsed() >= bound, "waited for the commit first");
    assert_eq!(resp.status(), 200);
    // Never committed, still recorded (a real sink keeps it queued for retry).
    let unsignalled: Vec<_> = sink.signals.lock().unwrap().drain(..).collect();
    assert_eq!(unsignalled.len(), 1);
    let started = Instant::now();
    let body = svc_stream_body(meter(sink.clone(), bound)).await;
    assert!(
        started.elapsed() >= bound && body.ends_with("data: [DONE]\n\n"),
        "{body}"
    );
}

async fn svc_stream_body(
    svc: impl tower::Service<
        http::Request<Body>,
        Response = http::Response<Body>,
        Error = BoxError,
        Future = impl Send,
    >,
) -> String {
    let resp = svc.oneshot(request(true)).await.unwrap();
    let bytes = tokio::time::timeout(Duration::from_secs(10), resp.into_body().collect())
        .await
        .expect("released after the bound")
        .unwrap()
        .to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn without_the_option_nothing_waits_even_for_a_sink_that_can_tell() {
    let sink = Arc::new(HandCommitted::default());
    let svc = MeterLayer::new()
        .prices(Prices::fixed(Pricing::per_million(1.0, 2.0)))
        .sink(sink.clone())
        .layer(tower::service_fn(|_req: http::Request<Body>| async {
            Ok::<_, BoxError>(
                http::Response::builder()
                    .header("content-type", "application/json")
                    .body(switchyard::body::full(COMPLETION))
                    .unwrap(),
            )
        }));
    let resp = tokio::time::timeout(Duration::from_secs(10), svc.oneshot(request(false)))
        .await
        .expect("answered without waiting")
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        sink.signals.lock().unwrap().is_empty(),
        "no ticket asked for"
    );
}
