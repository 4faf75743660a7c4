//! Test utilities (feature `test-util`): a fake OpenAI-compatible upstream that behaves like the
//! real API, including its failures, chosen per provider by the first path segment of the
//! provider's `base_url` (`http://127.0.0.1:PORT/<scenario>/v1`), plus helpers that build a
//! gateway config over it and start the gateway.
//!
//! # Scenarios
//!
//! Both modes (the request's `stream` flag):
//!
//! | scenario | behaviour |
//! |---|---|
//! | `ok` (or no scenario segment) | a normal completion / stream |
//! | `status-<code>[-ra<secs>][-ctx]` | an error status (429, 500, 502, 503, 529 …), optional `Retry-After`, `-ctx` = OpenAI's `context_length_exceeded` code |
//! | `hang` | never answers (hang before the headers) |
//! | `hangheaders` | 200 headers, then silence (hang before the first chunk) |
//! | `resetconn` | reads the request, then resets the TCP connection (RST), no response |
//! | `garbage` | invalid JSON in a 200 (`application/json` even for streams) |
//! | `error200` | an error object inside a 200 (`application/json`) |
//! | `huge-<MiB>` | a valid answer whose content is MiB mebibytes (streams: in one event) |
//! | `slow-<ms>`, `slowfirst-<ms>` | waits before the headers (`slowfirst`: streams send headers first) |
//! | `drip-<ms>` | the normal answer in 16-byte pieces, one every `ms` |
//! | `rechunk-<seed>` | the normal answer cut at pseudo-random byte positions |
//! | `finishnodone` | streams: finish reason and usage, then the end without `[DONE]` |
//! | `echokey` | 401 whose message echoes the `Authorization` header it received (as OpenAI does) |
//!
//! Stream faults, injected after the role chunk (`…before`, before any content) or after the
//! first content chunk (`…after`):
//!
//! | fault | stream | non-stream |
//! |---|---|---|
//! | `cut` | the body breaks off (chunked encoding aborted) | half the JSON, then the same |
//! | `reset` | the TCP connection is reset (RST) | half the JSON, then RST |
//! | `stall` | silence | half the JSON, then silence |
//! | `nodone` (`nodone` = `nodoneafter`) | clean end without finish reason or `[DONE]` | a cleanly ended but truncated JSON |
//! | `malformed` | a `data:` event that is not JSON | invalid JSON |
//! | `errchunk` | a `data: {"error":…}` event, then `[DONE]` | an error object in a 200 |
//! | `errkeychunk` | as `errchunk`, its message echoing the `Authorization` header | as `echokey` but in a 200 |
//!
//! Connection refused has no scenario: point a provider at [`refused_base_url`].
//!
//! ```no_run
//! # async fn demo() {
//! let (addr, fake) = switchyard::test_util::start_fake().await;
//! // point a provider's base_url at format!("http://{addr}/ok/v1")
//! # let _ = (addr, fake);
//! # }
//! ```
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

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

use axum::Router;
use axum::body::Body as AxBody;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// The text of a normal answer (streams send it as `Hello`, ` from`, ` the fake`).
pub const OK_TEXT: &str = "Hello from the fake";

/// A request the fake upstream received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub scenario: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

/// The requests a fake upstream received.
#[derive(Clone, Debug)]
pub struct Fake {
    /// Every request, unless recording is off (see [`Fake::set_recording`]).
    pub seen: Arc<Mutex<Vec<Seen>>>,
    counts: Arc<Mutex<HashMap<String, usize>>>,
    record: Arc<AtomicBool>,
    /// Streams whose reader went away before the stream ended (client disconnects reaching here).
    abandoned: Arc<AtomicUsize>,
    /// Complete answers sent (non-stream bodies and streams that reached `[DONE]`).
    completed: Arc<AtomicUsize>,
    /// Close keep-alive connections idle for this long (none: keep them open).
    idle_close: Arc<Mutex<Option<Duration>>>,
}

impl Default for Fake {
    fn default() -> Self {
        Fake {
            seen: Arc::default(),
            counts: Arc::default(),
            record: Arc::new(AtomicBool::new(true)),
            abandoned: Arc::default(),
            completed: Arc::default(),
            idle_close: Arc::default(),
        }
    }
}

impl Fake {
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests received for a scenario (counted even with recording off).
    pub fn count(&self, scenario: &str) -> usize {
        self.counts
            .lock()
            .unwrap()
            .get(scenario)
            .copied()
            .unwrap_or(0)
    }

    /// All requests received.
    pub fn total(&self) -> usize {
        self.counts.lock().unwrap().values().sum()
    }

    /// Turns keeping every request in [`Fake::seen`] on or off (off for soak tests).
    pub fn set_recording(&self, on: bool) {
        self.record.store(on, Ordering::Relaxed);
    }

    /// Streams abandoned by their reader before their end.
    pub fn abandoned(&self) -> usize {
        self.abandoned.load(Ordering::Relaxed)
    }

    /// Complete answers sent (see the field).
    pub fn completed(&self) -> usize {
        self.completed.load(Ordering::Relaxed)
    }

    /// Closes connections accepted from now on once idle for `d`, as real servers do (soak
    /// tests use it to see every connection end).
    pub fn close_idle_after(&self, d: Duration) {
        *self.idle_close.lock().unwrap() = Some(d);
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

/// A base URL on which nothing listens: connecting is refused.
///
/// The port stays bound for the life of the process by a socket that never listens. A port
/// merely released after binding could be handed to the next listener another test opens, and
/// the "refused" provider would then answer.
pub fn refused_base_url() -> String {
    static HELD: std::sync::OnceLock<(tokio::net::TcpSocket, SocketAddr)> =
        std::sync::OnceLock::new();
    let (_, addr) = HELD.get_or_init(|| {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        let addr = socket.local_addr().unwrap();
        (socket, addr)
    });
    format!("http://{addr}/v1")
}

/// Asks the connection serving a request to end with a TCP reset once it is dropped.
#[derive(Clone, Debug)]
struct ResetHandle(Arc<AtomicBool>);

impl ResetHandle {
    fn arm(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Marks a response whose connection is to be dropped instead of answering.
#[derive(Clone, Debug)]
struct Abort;

/// One accepted connection, served by hyper; the handlers can ask for it to end in a reset.
async fn serve_connection(tcp: TcpStream, app: Router, idle_close: Option<Duration>) {
    use tower::ServiceExt;
    let reset = ResetHandle(Arc::new(AtomicBool::new(false)));
    let io = hyper_util::rt::TokioIo::new(ResetOnDrop {
        inner: Some(tcp),
        reset: reset.clone(),
    });
    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let mut req = req.map(AxBody::new);
        req.extensions_mut().insert(reset.clone());
        let app = app.clone();
        async move {
            let resp = app.oneshot(req).await.unwrap_or_else(|e| match e {});
            if resp.extensions().get::<Abort>().is_some() {
                return Err(io::Error::other(
                    "fake upstream: connection reset on purpose",
                ));
            }
            Ok::<_, io::Error>(resp)
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    if let Some(d) = idle_close {
        builder
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(d);
    }
    let _ = builder.serve_connection(io, svc).await;
}

/// A TCP stream that sets `SO_LINGER` to zero before closing when its reset handle is armed, so
/// the peer sees a reset (RST) instead of an orderly close.
struct ResetOnDrop {
    inner: Option<TcpStream>,
    reset: ResetHandle,
}

impl ResetOnDrop {
    fn stream(&mut self) -> io::Result<&mut TcpStream> {
        if self.reset.0.load(Ordering::Relaxed) {
            // Reset on purpose: fail every further read and write, and close with RST now.
            if let Some(tcp) = self.inner.take() {
                let _ = tcp.set_zero_linger();
            }
        }
        self.inner
            .as_mut()
            .ok_or_else(|| io::Error::from(io::ErrorKind::ConnectionReset))
    }
}

impl Drop for ResetOnDrop {
    fn drop(&mut self) {
        let _ = self.stream();
    }
}

impl AsyncRead for ResetOnDrop {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.stream() {
            Ok(s) => Pin::new(s).poll_read(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for ResetOnDrop {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.stream() {
            Ok(s) => Pin::new(s).poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.stream() {
            Ok(s) => Pin::new(s).poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.stream() {
            Ok(s) => Pin::new(s).poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

async fn handle_ok(state: State<Fake>, req: Request) -> Response {
    handle(state, Path("ok".to_owned()), req).await
}

/// Where a stream fault strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// After the role chunk, before any content.
    Before,
    /// After the first content chunk.
    After,
}

/// A fault of the table in the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Cut,
    Reset,
    Stall,
    NoDone,
    Malformed,
    ErrChunk,
    ErrKeyChunk,
}

fn parse_fault(scenario: &str) -> Option<(Fault, At)> {
    if scenario == "nodone" {
        return Some((Fault::NoDone, At::After));
    }
    let (name, at) = if let Some(n) = scenario.strip_suffix("before") {
        (n, At::Before)
    } else {
        (scenario.strip_suffix("after")?, At::After)
    };
    let fault = match name {
        "cut" => Fault::Cut,
        "reset" => Fault::Reset,
        "stall" => Fault::Stall,
        "nodone" => Fault::NoDone,
        "malformed" => Fault::Malformed,
        "errchunk" => Fault::ErrChunk,
        "errkeychunk" => Fault::ErrKeyChunk,
        _ => return None,
    };
    Some((fault, at))
}

/// What a request asked for, as far as the fake cares.
struct Ask {
    stream: bool,
    model: String,
    legacy: bool,
    /// `x_echo` from the body, appended to the answer text (soak tests match answers to requests).
    echo: Option<String>,
    /// The `Authorization` header received (for the key-echo scenarios).
    auth: String,
}

impl Ask {
    fn text(&self) -> String {
        match &self.echo {
            Some(e) => format!("{OK_TEXT} [{e}]"),
            None => OK_TEXT.to_owned(),
        }
    }
}

async fn handle(State(fake): State<Fake>, Path(scenario): Path<String>, req: Request) -> Response {
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

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [("content-type", "application/json")], body).into_response()
}

/// A response whose body comes from a channel (an `Err` item breaks the body off).
fn body_response(content_type: &str, rx: mpsc::Receiver<Result<Bytes, io::Error>>) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Response::builder()
        .header("content-type", content_type)
        .body(AxBody::from_stream(stream))
        .unwrap()
}

fn completion_json(ask: &Ask) -> String {
    let text = ask.text();
    let choice = if ask.legacy {
        json!({"index": 0, "text": text, "finish_reason": "stop", "logprobs": null})
    } else {
        json!({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop", "logprobs": null})
    };
    json!({
        "id": "chatcmpl-fake", "object": if ask.legacy { "text_completion" } else { "chat.completion" }, "created": 1_700_000_000, "model": ask.model,
        "choices": [choice],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
    })
    .to_string()
}

fn chunk(model: &str, delta: &Value, finish: Option<&str>) -> String {
    let v = json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {v}\n\n")
}

/// The events of a normal stream: role, three words (the echo tag in the last one), finish,
/// usage, `[DONE]`.
fn stream_events(ask: &Ask) -> Vec<String> {
    let m = &ask.model;
    let last = match &ask.echo {
        Some(e) => format!(" the fake [{e}]"),
        None => " the fake".to_owned(),
    };
    let usage = json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": m, "choices": [],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}});
    vec![
        chunk(m, &json!({"role": "assistant", "content": ""}), None),
        chunk(m, &json!({"content": "Hello"}), None),
        chunk(m, &json!({"content": " from"}), None),
        chunk(m, &json!({"content": last}), None),
        chunk(m, &json!({}), Some("stop")),
        format!("data: {usage}\n\n"),
        "data: [DONE]\n\n".to_owned(),
    ]
}

/// How a normal answer is sent.
enum Pacing {
    /// As written.
    Whole,
    /// Streams: headers at once, the first byte after a delay.
    FirstAfter(Duration),
    /// 16-byte pieces, one per interval.
    Drip(Duration),
    /// Cut at pseudo-random positions from a seed.
    Rechunk(u64),
}

fn normal(fake: &Fake, ask: &Ask, pacing: Pacing) -> Response {
    let (ct, pieces) = if ask.stream {
        ("text/event-stream", stream_events(ask))
    } else {
        ("application/json", vec![completion_json(ask)])
    };
    if matches!(pacing, Pacing::Whole) && !ask.stream {
        fake.completed.fetch_add(1, Ordering::Relaxed);
        return json_response(StatusCode::OK, pieces.concat());
    }
    let whole: Vec<u8> = pieces.concat().into_bytes();
    let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(16);
    let fake = fake.clone();
    tokio::spawn(async move {
        let ok = match pacing {
            Pacing::Whole => send_all(&tx, pieces.into_iter().map(Bytes::from)).await,
            Pacing::FirstAfter(d) => {
                tokio::time::sleep(d).await;
                send_all(&tx, pieces.into_iter().map(Bytes::from)).await
            }
            Pacing::Drip(d) => {
                let mut ok = true;
                for piece in whole.chunks(16) {
                    tokio::time::sleep(d).await;
                    if tx.send(Ok(Bytes::copy_from_slice(piece))).await.is_err() {
                        ok = false;
                        break;
                    }
                }
                ok
            }
            Pacing::Rechunk(seed) => {
                let mut rng = seed.wrapping_mul(6_364_136_223_846_793_005) | 1;
                let mut rest: &[u8] = &whole;
                let mut ok = true;
                while !rest.is_empty() {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let n = ((rng % 40) as usize + 1).min(rest.len());
                    let (piece, tail) = rest.split_at(n);
                    rest = tail;
                    if tx.send(Ok(Bytes::copy_from_slice(piece))).await.is_err() {
                        ok = false;
                        break;
                    }
                    // Let each piece go out on its own.
                    tokio::task::yield_now().await;
                }
                ok
            }
        };
        if ok {
            fake.completed.fetch_add(1, Ordering::Relaxed);
        } else {
            fake.abandoned.fetch_add(1, Ordering::Relaxed);
        }
    });
    body_response(ct, rx)
}

async fn send_all(
    tx: &mpsc::Sender<Result<Bytes, io::Error>>,
    pieces: impl Iterator<Item = Bytes>,
) -> bool {
    for p in pieces {
        if tx.send(Ok(p)).await.is_err() {
            return false;
        }
    }
    true
}

/// Sends nothing for an hour, or until the reader is gone (so stalled bodies do not pile up as
/// sleeping tasks in long tests).
async fn silence(tx: &mpsc::Sender<Result<Bytes, io::Error>>) {
    tokio::select! {
        () = tokio::time::sleep(Duration::from_secs(3600)) => {}
        () = tx.closed() => {}
    }
}

/// Breaks a body off: the chunked encoding is aborted, or (`reset`) the connection gets a RST.
async fn break_off(tx: &mpsc::Sender<Result<Bytes, io::Error>>, reset: Option<&ResetHandle>) {
    // Let what was sent reach the wire before the connection breaks.
    tokio::time::sleep(Duration::from_millis(30)).await;
    if let Some(r) = reset {
        r.arm();
    }
    let _ = tx
        .send(Err(io::Error::other("fake upstream: cut on purpose")))
        .await;
}

fn faulty_stream(
    fake: &Fake,
    ask: &Ask,
    fault: Fault,
    at: At,
    reset: Option<ResetHandle>,
) -> Response {
    let events = stream_events(ask);
    let sent_before = match at {
        At::Before => 1,
        At::After => 2,
    };
    let model = ask.model.clone();
    let auth = ask.auth.clone();
    let fake = fake.clone();
    let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(16);
    tokio::spawn(async move {
        if !send_all(&tx, events.into_iter().take(sent_before).map(Bytes::from)).await {
            fake.abandoned.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match fault {
            Fault::Cut => break_off(&tx, None).await,
            Fault::Reset => break_off(&tx, reset.as_ref()).await,
            Fault::Stall => silence(&tx).await,
            Fault::NoDone => {}
            Fault::Malformed => {
                let _ = tx
                    .send(Ok(Bytes::from_static(
                        b"data: {\"choices\": [{\"delta\": {\"content\": oops\n\n",
                    )))
                    .await;
                // A well-formed rest must not make the stream look whole again.
                let _ = tx
                    .send(Ok(Bytes::from(chunk(
                        &model,
                        &json!({"content": " more"}),
                        None,
                    ))))
                    .await;
                let _ = tx.send(Ok(Bytes::from_static(b"data: [DONE]\n\n"))).await;
            }
            Fault::ErrChunk | Fault::ErrKeyChunk => {
                let message = if fault == Fault::ErrKeyChunk {
                    format!("Incorrect API key provided: {auth}")
                } else {
                    "upstream model crashed".to_owned()
                };
                let v = json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
                    "error": {"code": 502, "message": message}, "choices": []});
                let _ = tx.send(Ok(Bytes::from(format!("data: {v}\n\n")))).await;
                let _ = tx.send(Ok(Bytes::from_static(b"data: [DONE]\n\n"))).await;
            }
        }
    });
    body_response("text/event-stream", rx)
}

fn faulty_json(ask: &Ask, fault: Fault, reset: Option<ResetHandle>) -> Response {
    let whole = completion_json(ask);
    let half = Bytes::from(whole[..whole.len() / 2].to_owned());
    match fault {
        Fault::Malformed => return json_response(StatusCode::OK, "{\"choices\": [oops".to_owned()),
        Fault::ErrChunk => {
            return json_response(
                StatusCode::OK,
                json!({"error": {"code": 502, "message": "upstream model crashed"}}).to_string(),
            );
        }
        Fault::ErrKeyChunk => {
            return json_response(
                StatusCode::OK,
                json!({"error": {"code": 401, "message": format!("Incorrect API key provided: {}", ask.auth)}}).to_string(),
            );
        }
        Fault::Cut | Fault::Reset | Fault::Stall | Fault::NoDone => {}
    }
    let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(4);
    tokio::spawn(async move {
        let _ = tx.send(Ok(half)).await;
        match fault {
            Fault::Cut => break_off(&tx, None).await,
            Fault::Reset => break_off(&tx, reset.as_ref()).await,
            Fault::Stall => silence(&tx).await,
            _ => {}
        }
    });
    body_response("application/json", rx)
}

/// A valid answer whose content is `mib` MiB of `x`, sent in 64 KiB pieces.
fn huge(ask: &Ask, mib: usize) -> Response {
    let total = mib * 1024 * 1024;
    let (head, tail, ct) = if ask.stream {
        let role = chunk(
            &ask.model,
            &json!({"role": "assistant", "content": ""}),
            None,
        );
        let done = format!(
            "{}data: [DONE]\n\n",
            chunk(&ask.model, &json!({}), Some("stop"))
        );
        (
            format!(
                "{role}data: {{\"id\":\"chatcmpl-fake\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"{}\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"",
                ask.model
            ),
            format!("\"}},\"finish_reason\":null}}]}}\n\n{done}"),
            "text/event-stream",
        )
    } else {
        (
            format!(
                "{{\"id\":\"chatcmpl-fake\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":\"{}\",\"choices\":[{{\"index\":0,\"finish_reason\":\"stop\",\"message\":{{\"role\":\"assistant\",\"content\":\"",
                ask.model
            ),
            "\"}}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1,\"total_tokens\":2}}"
                .to_owned(),
            "application/json",
        )
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(4);
    tokio::spawn(async move {
        let piece = Bytes::from(vec![b'x'; 64 * 1024]);
        if tx.send(Ok(Bytes::from(head))).await.is_err() {
            return;
        }
        let mut left = total;
        while left > 0 {
            let n = left.min(piece.len());
            if tx.send(Ok(piece.slice(..n))).await.is_err() {
                return;
            }
            left -= n;
        }
        let _ = tx.send(Ok(Bytes::from(tail))).await;
    });
    body_response(ct, rx)
}

/// One provider per scenario (`p-<scenario>`, display name `P <scenario>`), the given models
/// (each a list of scenarios, tried in that order: prices rise along the list) and tight
/// timeouts. The scenario `refused` points at a closed port. `extra` is appended.
pub fn fault_config(
    addr: SocketAddr,
    models: &[(&str, &[&str])],
    timeouts: FaultTimeouts,
    extra: &str,
) -> String {
    let mut scenarios: Vec<&str> = models
        .iter()
        .flat_map(|(_, eps)| eps.iter().copied())
        .collect();
    scenarios.sort_unstable();
    scenarios.dedup();
    let t = timeouts;
    let mut out = format!("[server]\nkeepalive_ms = {}\n\n", t.keepalive_ms);
    for s in &scenarios {
        let base = if *s == "refused" {
            refused_base_url()
        } else {
            format!("http://{addr}/{s}/v1")
        };
        out.push_str(&format!(
            "[[providers]]\nslug = \"p-{s}\"\nname = \"P {s}\"\nbase_url = \"{base}\"\n{}timeouts = {{ connect_ms = {}, first_byte_ms = {}, idle_ms = {}, total_ms = {} }}\n\n",
            t.key_env.map(|k| format!("api_key_env = \"{k}\"\n")).unwrap_or_default(),
            t.connect_ms, t.first_byte_ms, t.idle_ms, t.total_ms
        ));
    }
    for (slug, eps) in models {
        out.push_str(&format!(
            "[[models]]\nslug = \"{slug}\"\ncontext_length = 100000\n"
        ));
        for (i, s) in eps.iter().enumerate() {
            let p = i + 1;
            out.push_str(&format!("[[models.endpoints]]\nprovider = \"p-{s}\"\nmodel = \"up-{s}\"\npricing = {{ prompt = {p}, completion = {p} }}\n"));
        }
        out.push('\n');
    }
    out.push_str(extra);
    out
}

/// Provider timeouts and the keep-alive delay for [`fault_config`], in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct FaultTimeouts {
    pub connect_ms: u64,
    pub first_byte_ms: u64,
    pub idle_ms: u64,
    pub total_ms: u64,
    pub keepalive_ms: u64,
    /// Every provider reads its key from this variable.
    pub key_env: Option<&'static str>,
}

impl Default for FaultTimeouts {
    /// Limits for quick tests, tight enough to keep the suite fast and loose enough that a
    /// loaded 2-core CI machine does not trip them: connect 1000, first byte 1000, idle 800,
    /// total 5000, keep-alives after 300.
    fn default() -> Self {
        FaultTimeouts {
            connect_ms: 1000,
            first_byte_ms: 1000,
            idle_ms: 800,
            total_ms: 5000,
            keepalive_ms: 300,
            key_env: None,
        }
    }
}

/// Builds a gateway from a config text; `env` supplies the key variables.
pub fn gateway_from(config: &str, env: &dyn Fn(&str) -> Option<String>) -> crate::server::Gateway {
    let cfg = crate::catalog::Config::parse(std::path::Path::new("test.toml"), config).unwrap();
    crate::server::Gateway::from_config_with_env(cfg, std::path::Path::new("."), env).unwrap()
}

/// Starts a gateway on 127.0.0.1:0; returns its address (the API is under `/api/v1`).
pub async fn start_gateway(gateway: crate::server::Gateway) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(gateway.serve(listener, std::future::pending::<()>()));
    addr
}
