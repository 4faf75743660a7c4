//! End-to-end benchmark: the full switchyard gateway against a bare proxy hop, side by side.
//!
//! ```text
//! cargo bench --bench gateway                 # full run (about 4 minutes)
//! cargo bench --bench gateway -- --quick      # short run (about a minute), or SWITCHYARD_BENCH_QUICK=1
//! ```
//!
//! Environment: `SWITCHYARD_BENCH_TELEMETRY=off` runs the gateways without the telemetry layer
//! (`[telemetry] dashboard = false`), to measure what it costs;
//! `SWITCHYARD_BENCH_FILTER="json c=64 body=1 KB"` runs only the cells whose label
//! contains the text; `SWITCHYARD_BENCH_ROUND_MS` sets the length of one measuring round (for
//! profiling); `SWITCHYARD_BENCH_NODELAY=1` serves the gateway's whole axum router through
//! `axum::serve` with `TCP_NODELAY` on accepted sockets (run 2's experiment, kept for
//! comparison: `Gateway::serve` now sets `TCP_NODELAY` itself and sends completions past the
//! router).
//!
//! One run starts five processes of this same binary (`--role …`):
//!
//! 1. `upstream`: a minimal hyper HTTP/1.1 server, the fake OpenAI-compatible upstream. It drains
//!    the request body and answers a fixed `chat.completion` JSON, or (with
//!    `Accept: text/event-stream`) an SSE stream of [`SSE_CONTENT_CHUNKS`] content chunks plus
//!    the role, finish and usage chunks and `[DONE]`, each its own frame. Under `/hold/` a stream
//!    stays open (a chunk every 250 ms) until `POST /release`.
//! 2. `proxy`: the bare reverse proxy, the limit of one proxy hop: a hyper server whose handler
//!    forwards request and response bytes unchanged through a pooled hyper-util client.
//! 3. `gateway` twice: `switchyard::server::Gateway` (every layer on) from a generated config
//!    with a catalogue of 10 models, and one with 10,000 models.
//! 4. `minimal`: the least any OpenRouter-compatible gateway must do, written directly on hyper
//!    and serde_json (read and validate the body, route on `model`, rewrite it, forward, meter
//!    the usage; see `gateway/minimal.rs`): what a gateway hop costs done the plain way, beside
//!    the proxy's limit of one hop.
//!
//! The load generator is this process: `concurrency` tokio tasks, each sending its next request
//! as soon as the last one finished, through a pooled hyper-util client, recording latency, time
//! to first body byte and the gateway's `x-switchyard-overhead-us` header in `hdrhistogram`s.
//! For every cell (non-streaming / streaming × concurrency 1 / 64 × body 1 KB / 100 KB / 1 MB)
//! it measures the upstream called directly, the proxy and both gateways in interleaved rounds,
//! so slow drift of a shared machine hits every target alike. Each target's *added* latency is
//! its percentile minus the direct call's; every figure is then divided by the proxy's.
//!
//! Peak RSS is read from `/proc/<pid>/status` (`VmRSS`, `VmHWM`; `clear_refs` resets the peak
//! between phases): idle after start-up, with 1,000 concurrent open streams, under the load
//! matrix, and under a sustained load of 150,000 small requests (37,500 with `--quick`) through
//! a fresh 10-model gateway (its own process, so the load matrix's heap is not counted), against
//! the 100 MB target.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{Request, Response, StatusCode, Uri, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

#[path = "gateway/minimal.rs"]
mod minimal;
#[path = "gateway/shared_state.rs"]
mod shared_state;

/// Content chunks of one fake SSE stream.
const SSE_CONTENT_CHUNKS: usize = 32;
/// Streams held open for the RSS measurement.
const OPEN_STREAMS: usize = 1000;
/// Requests of the sustained-load phase (full run; a quarter with `--quick`): enough to fill
/// the default in-memory ledger (32 MiB, about 28,000 records) several times over.
const SUSTAINED_REQUESTS: usize = 150_000;
/// The peak RSS the gateway must stay under during the sustained load, in KiB.
const SUSTAINED_PEAK_TARGET_KIB: u64 = 100 * 1024;
/// Request body sizes.
const BODY_SIZES: [usize; 3] = [1024, 100 * 1024, 1024 * 1024];
/// Load-generator concurrencies.
const CONCURRENCIES: [usize; 2] = [1, 64];
/// Catalogue sizes of the two gateways.
const CATALOGUES: [usize; 2] = [10, 10_000];
/// `sysconf(_SC_CLK_TCK)` on Linux.
const CLOCK_TICKS: f64 = 100.0;
/// How every stream ends.
const DONE_TAIL: &[u8] = b"data: [DONE]\n\n";
/// The overhead header the gateway sets.
const OVERHEAD_HEADER: &str = "x-switchyard-overhead-us";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--load") {
        return run_load(&args[i + 1..]);
    }
    if let Some(i) = args.iter().position(|a| a == "--role") {
        let role = args.get(i + 1).cloned().unwrap_or_default();
        let arg = args.get(i + 2).cloned().unwrap_or_default();
        return run_role(&role, &arg);
    }
    let quick = args.iter().any(|a| a == "--quick")
        || std::env::var("SWITCHYARD_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(orchestrate(quick));
    ExitCode::SUCCESS
}

// ---------------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------------

type UpBody = BoxBody<Bytes, Infallible>;

/// `--load ADDR MODEL CONCURRENCY REQUESTS json|stream [BODY_BYTES]`: sends the requests to
/// one target and prints `REQUESTS <n> ERRORS <n> SECONDS <s>` — the closed-loop load of a
/// cell, for `scripts/counters`, which counts what the target process does meanwhile.
fn run_load(args: &[String]) -> ExitCode {
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
    let (addr, model) = (arg(0), arg(1));
    let (Ok(concurrency), Ok(total)) = (arg(2).parse::<usize>(), arg(3).parse::<usize>()) else {
        eprintln!("usage: --load ADDR MODEL CONCURRENCY REQUESTS json|stream [BODY_BYTES]");
        return ExitCode::FAILURE;
    };
    let stream = arg(4) == "stream";
    let size = arg(5).parse().unwrap_or(1024);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let stats = rt.block_on(async {
        let load = Load {
            client: load_client(),
            uri: format!("http://{addr}/v1/chat/completions")
                .parse()
                .expect("address"),
            body: body(model, stream, size),
            stream,
            auth: None,
        };
        run_count(&load, concurrency, total).await
    });
    println!(
        "REQUESTS {} ERRORS {} SECONDS {:.3}",
        stats.requests, stats.errors, stats.seconds
    );
    if let Some(why) = &stats.first_error {
        eprintln!("first error: {why}");
    }
    if stats.errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs one child role: prints `LISTEN <addr>` and serves until stdin closes.
fn run_role(role: &str, arg: &str) -> ExitCode {
    // The parent holds our stdin; when it exits (even killed), we exit too.
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        std::process::exit(0);
    });
    // `SWITCHYARD_BENCH_RUNTIME=current`: the serving process on one current-thread runtime
    // (no work stealing, no frees from the other worker), to measure what that costs or saves.
    let rt = if std::env::var("SWITCHYARD_BENCH_RUNTIME").is_ok_and(|v| v == "current") {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    }
    .expect("runtime");
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        println!("LISTEN {addr}");
        let _ = std::io::stdout().flush();
        match role {
            "upstream" => serve_upstream(listener).await,
            "proxy" => serve_proxy(listener, arg.parse().expect("upstream address")).await,
            "minimal" => {
                minimal::serve_minimal(listener, arg.parse().expect("upstream address")).await
            }
            "gateway" => serve_gateway(listener, Path::new(arg)).await,
            other => panic!("unknown role {other}"),
        }
    });
    ExitCode::SUCCESS
}

/// Accepts connections and serves each with hyper's HTTP/1.1 server.
async fn accept_loop<F, Fut, B>(listener: TcpListener, handler: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<Response<B>, Infallible>> + Send + 'static,
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let handler = handler.clone();
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service_fn(handler))
                .await;
        });
    }
}

/// The fake upstream's canned responses.
struct Canned {
    json: Bytes,
    role: Bytes,
    content: Vec<Bytes>,
    tail: Vec<Bytes>,
}

impl Canned {
    fn new() -> Canned {
        let chunk = |delta: &str, finish: &str| {
            Bytes::from(format!(
                "data: {{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"bench-up\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n"
            ))
        };
        let content = (0..SSE_CONTENT_CHUNKS)
            .map(|i| chunk(&format!("{{\"content\":\"token{i} \"}}"), "null"))
            .collect();
        let usage = format!(
            "data: {{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"bench-up\",\"choices\":[],\"usage\":{{\"prompt_tokens\":12,\"completion_tokens\":{SSE_CONTENT_CHUNKS},\"total_tokens\":{}}}}}\n\n",
            12 + SSE_CONTENT_CHUNKS
        );
        Canned {
            json: Bytes::from_static(
                br#"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"bench-up","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the fake upstream."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19}}"#,
            ),
            role: chunk("{\"role\":\"assistant\",\"content\":\"\"}", "null"),
            content,
            tail: vec![
                chunk("{}", "\"stop\""),
                Bytes::from(usage),
                Bytes::from_static(b"data: [DONE]\n\n"),
            ],
        }
    }
}

async fn serve_upstream(listener: TcpListener) {
    let canned = Arc::new(Canned::new());
    let (release, released) = tokio::sync::watch::channel(0u64);
    let release = Arc::new(release);
    accept_loop(listener, move |req: Request<Incoming>| {
        let canned = canned.clone();
        let release = release.clone();
        let released = released.clone();
        async move { Ok::<_, Infallible>(upstream(req, &canned, &release, released).await) }
    })
    .await;
}

async fn upstream(
    req: Request<Incoming>,
    canned: &Canned,
    release: &tokio::sync::watch::Sender<u64>,
    mut released: tokio::sync::watch::Receiver<u64>,
) -> Response<UpBody> {
    let wants_sse = req
        .headers()
        .get(header::ACCEPT)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let path = req.uri().path().to_owned();
    let mut body = req.into_body();
    while let Some(frame) = body.frame().await {
        if frame.is_err() {
            break;
        }
    }
    if path == "/release" {
        release.send_modify(|g| *g += 1);
        return Response::new(Full::new(Bytes::new()).boxed());
    }
    let mut resp = if !wants_sse {
        let mut r = Response::new(Full::new(canned.json.clone()).boxed());
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        return r;
    } else if path.starts_with("/hold/") {
        released.mark_unchanged();
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        let (role, first, tail) = (
            canned.role.clone(),
            canned.content[0].clone(),
            canned.tail.clone(),
        );
        tokio::spawn(async move {
            for b in [role, first.clone()] {
                if tx.send(b).await.is_err() {
                    return;
                }
            }
            loop {
                tokio::select! {
                    _ = released.changed() => break,
                    () = tokio::time::sleep(Duration::from_millis(250)) => {
                        if tx.send(first.clone()).await.is_err() {
                            return;
                        }
                    }
                }
            }
            for b in tail {
                if tx.send(b).await.is_err() {
                    return;
                }
            }
        });
        let frames = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
        });
        Response::new(StreamBody::new(frames).boxed())
    } else {
        let frames: Vec<Bytes> = std::iter::once(canned.role.clone())
            .chain(canned.content.iter().cloned())
            .chain(canned.tail.iter().cloned())
            .collect();
        let frames = futures_util::stream::iter(
            frames
                .into_iter()
                .map(|b| Ok::<_, Infallible>(Frame::data(b))),
        );
        Response::new(StreamBody::new(frames).boxed())
    };
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/event-stream"),
    );
    resp
}

type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// The bare proxy hop: request and response bytes forwarded unchanged over a pooled client.
async fn serve_proxy(listener: TcpListener, upstream: SocketAddr) {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    let client: Client<HttpConnector, Incoming> = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(http);
    let authority: http::uri::Authority = upstream.to_string().parse().expect("authority");
    accept_loop(listener, move |req: Request<Incoming>| {
        let client = client.clone();
        let authority = authority.clone();
        async move {
            let (mut parts, body) = req.into_parts();
            let pq = parts
                .uri
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
            parts.uri = Uri::builder()
                .scheme("http")
                .authority(authority)
                .path_and_query(pq)
                .build()
                .expect("uri");
            parts.headers.remove(header::HOST);
            let resp = match client.request(Request::from_parts(parts, body)).await {
                Ok(resp) => resp.map(BodyExt::boxed),
                Err(_) => {
                    let mut r = Response::new(
                        Empty::<Bytes>::new()
                            .map_err(|never| match never {})
                            .boxed(),
                    );
                    *r.status_mut() = StatusCode::BAD_GATEWAY;
                    r
                }
            };
            Ok::<Response<ProxyBody>, Infallible>(resp)
        }
    })
    .await;
}

async fn serve_gateway(listener: TcpListener, config: &Path) {
    let config = {
        let text = std::fs::read_to_string(config).expect("config file");
        switchyard::catalog::Config::parse(config, &text).expect("config")
    };
    let gateway =
        switchyard::server::Gateway::from_config(config, Path::new(".")).expect("gateway");
    if std::env::var_os("SWITCHYARD_BENCH_NODELAY").is_some() {
        // Run 2's experiment: every request through the router, served by `axum::serve`
        // with TCP_NODELAY on accepted sockets (`Gateway::serve` sets it too, and sends
        // completions past the router).
        use axum::serve::ListenerExt;
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, gateway.router())
            .await
            .expect("serve");
        return;
    }
    gateway
        .serve(listener, std::future::pending())
        .await
        .expect("serve");
}

/// A child process of this binary in one role.
struct Child {
    name: String,
    proc: std::process::Child,
    addr: SocketAddr,
}

impl Child {
    fn spawn(name: &str, role: &str, arg: &str) -> Child {
        let exe = std::env::current_exe().expect("current exe");
        let mut proc = Command::new(exe)
            .args(["--role", role, arg])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let mut line = String::new();
        BufReader::new(proc.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("child address");
        let addr = line
            .trim()
            .strip_prefix("LISTEN ")
            .unwrap_or_else(|| panic!("{name} did not start: {line:?}"))
            .parse()
            .expect("address");
        Child {
            name: name.to_owned(),
            proc,
            addr,
        }
    }

    fn pid(&self) -> u32 {
        self.proc.id()
    }

    /// `VmRSS` and `VmHWM` in KiB.
    fn rss(&self) -> (u64, u64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// CPU time (user + system, all threads) so far, in seconds.
    fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // Fields after the `(comm)`: state is field 3, utime 14 and stime 15 (clock ticks).
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<u64> = rest
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|v| v.parse().ok())
            .collect();
        fields.iter().sum::<u64>() as f64 / CLOCK_TICKS
    }

    /// Resets `VmHWM` to the current RSS.
    fn reset_peak(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5");
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.proc.kill();
        let _ = self.proc.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Load generator
// ---------------------------------------------------------------------------------------------

type LoadClient = Client<HttpConnector, Full<Bytes>>;

fn load_client() -> LoadClient {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(http)
}

/// What one target is sent.
#[derive(Clone)]
struct Load {
    client: LoadClient,
    uri: Uri,
    body: Bytes,
    stream: bool,
    /// The `Authorization` header, for gateways with keys.
    auth: Option<http::HeaderValue>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("histogram bounds")
}

/// Latencies in microseconds.
struct Stats {
    latency: Histogram<u64>,
    ttfb: Histogram<u64>,
    overhead: Histogram<u64>,
    requests: u64,
    errors: u64,
    /// Why the first failed request failed.
    first_error: Option<String>,
    seconds: f64,
    /// CPU seconds the serving process (upstream, proxy or gateway) used meanwhile.
    cpu: f64,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            latency: histogram(),
            ttfb: histogram(),
            overhead: histogram(),
            requests: 0,
            errors: 0,
            first_error: None,
            seconds: 0.0,
            cpu: 0.0,
        }
    }

    fn merge(&mut self, o: &Stats) {
        self.latency.add(&o.latency).expect("same bounds");
        self.ttfb.add(&o.ttfb).expect("same bounds");
        self.overhead.add(&o.overhead).expect("same bounds");
        self.requests += o.requests;
        self.errors += o.errors;
        if self.first_error.is_none() {
            self.first_error.clone_from(&o.first_error);
        }
        self.seconds += o.seconds;
        self.cpu += o.cpu;
    }

    /// Serving-process CPU microseconds per request.
    fn cpu_per_request(&self) -> f64 {
        self.cpu * 1e6 / (self.requests.max(1) as f64)
    }

    fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds.max(1e-9)
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn request(load: &Load) -> Request<Full<Bytes>> {
    let mut req = Request::post(load.uri.clone())
        .header(header::CONTENT_TYPE, "application/json")
        .header(
            header::ACCEPT,
            if load.stream {
                "text/event-stream"
            } else {
                "application/json"
            },
        )
        .body(Full::new(load.body.clone()))
        .expect("request");
    if let Some(auth) = &load.auth {
        req.headers_mut()
            .insert(header::AUTHORIZATION, auth.clone());
    }
    req
}

/// One request, read to its end.
async fn one(load: &Load, stats: &mut Stats) {
    let start = Instant::now();
    let ok = async {
        let resp = load
            .client
            .request(request(load))
            .await
            .map_err(|e| format!("request failed: {e:?}"))?;
        if resp.status() != StatusCode::OK {
            return Err(format!("HTTP {}", resp.status()));
        }
        let overhead = resp
            .headers()
            .get(OVERHEAD_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let mut body = resp.into_body();
        let mut ttfb = None;
        let mut last = Bytes::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("body failed: {e:?}"))?;
            if let Ok(data) = frame.into_data() {
                if ttfb.is_none() && !data.is_empty() {
                    ttfb = Some(start.elapsed());
                }
                // The end of the stream so far: TCP may split `data: [DONE]` across reads.
                if data.len() >= DONE_TAIL.len() {
                    last = data;
                } else if !data.is_empty() {
                    let mut joined = Vec::with_capacity(last.len() + data.len());
                    joined.extend_from_slice(&last);
                    joined.extend_from_slice(&data);
                    last = Bytes::from(joined);
                }
            }
        }
        if load.stream && !last.ends_with(DONE_TAIL) {
            return Err(format!(
                "the stream did not end with [DONE]; last frame: {}",
                String::from_utf8_lossy(&last[..last.len().min(300)])
            ));
        }
        Ok((ttfb.ok_or("an empty body")?, overhead))
    }
    .await;
    match ok {
        Ok((ttfb, overhead)) => {
            stats.latency.saturating_record(micros(start.elapsed()));
            stats.ttfb.saturating_record(micros(ttfb));
            if let Some(us) = overhead {
                stats.overhead.saturating_record(us.max(1));
            }
            stats.requests += 1;
        }
        Err(why) => {
            stats.errors += 1;
            stats.first_error.get_or_insert(why);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// `concurrency` closed-loop workers for `duration`.
async fn run_for(load: &Load, concurrency: usize, duration: Duration) -> Stats {
    let start = Instant::now();
    let deadline = start + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let load = load.clone();
            tokio::spawn(async move {
                let mut stats = Stats::new();
                while Instant::now() < deadline {
                    one(&load, &mut stats).await;
                }
                stats
            })
        })
        .collect();
    let mut total = Stats::new();
    for w in workers {
        total.merge(&w.await.expect("worker"));
    }
    total.seconds = start.elapsed().as_secs_f64();
    total
}

/// Sends `total` requests from `concurrency` workers, each taking the next until none is left.
async fn run_count(load: &Load, concurrency: usize, total: usize) -> Stats {
    let start = Instant::now();
    let left = Arc::new(AtomicUsize::new(total));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let load = load.clone();
            let left = left.clone();
            tokio::spawn(async move {
                let mut stats = Stats::new();
                while left
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
                {
                    one(&load, &mut stats).await;
                }
                stats
            })
        })
        .collect();
    let mut total = Stats::new();
    for w in workers {
        total.merge(&w.await.expect("worker"));
    }
    total.seconds = start.elapsed().as_secs_f64();
    total
}

/// Opens `n` streams at once, samples the target's RSS while all are open, then releases them.
/// Returns (streams open at the sample, peak RSS KiB while open).
async fn open_streams(load: &Load, n: usize, target: &Child, upstream: SocketAddr) -> (usize, u64) {
    let first = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    target.reset_peak();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let load = load.clone();
            let (first, done) = (first.clone(), done.clone());
            tokio::spawn(async move {
                if let Ok(resp) = load.client.request(request(&load)).await {
                    let mut body = resp.into_body();
                    let mut seen = false;
                    while let Some(Ok(_)) = body.frame().await {
                        if !seen {
                            seen = true;
                            first.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
                done.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while first.load(Ordering::SeqCst) + done.load(Ordering::SeqCst) < n
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let the streams run a few ticks, then read the peak.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let open = first.load(Ordering::SeqCst) - done.load(Ordering::SeqCst).min(n);
    let (_, peak) = target.rss();
    let release = Request::post(format!("http://{upstream}/release"))
        .body(Full::new(Bytes::new()))
        .expect("request");
    let _ = load.client.request(release).await;
    for t in tasks {
        let _ = t.await;
    }
    (open, peak)
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

/// A config with `models` models; `bench/target` and `bench/hold` point at the fake upstream.
fn catalogue_toml(upstream: SocketAddr, models: usize) -> String {
    let mut s = format!(
        r#"[catalog]
include_default = false

[[providers]]
slug = "up"
name = "Upstream"
api = "openai"
base_url = "http://{upstream}/v1"

[[providers]]
slug = "hold"
name = "Hold"
api = "openai"
base_url = "http://{upstream}/hold/v1"

[[models]]
slug = "bench/target"
[[models.endpoints]]
provider = "up"
model = "bench-up"
pricing = {{ prompt = 0.1, completion = 0.2 }}

[[models]]
slug = "bench/hold"
[[models.endpoints]]
provider = "hold"
model = "bench-up"
pricing = {{ prompt = 0.1, completion = 0.2 }}
"#
    );
    for i in 0..models.saturating_sub(2) {
        s.push_str(&format!(
            "\n[[models]]\nslug = \"filler/model-{i}\"\nname = \"Filler {i}\"\ncontext_length = 32768\n[[models.endpoints]]\nprovider = \"up\"\nmodel = \"filler-{i}\"\npricing = {{ prompt = 0.{}, completion = 0.5 }}\n",
            i % 9 + 1
        ));
    }
    if std::env::var("SWITCHYARD_BENCH_TELEMETRY").is_ok_and(|v| v == "off") {
        s.push_str("\n[telemetry]\ndashboard = false\n");
    }
    s
}

/// A chat body of exactly `size` bytes (padding in the user message).
fn body(model: &str, stream: bool, size: usize) -> Bytes {
    let head = format!(
        "{{\"model\":\"{model}\",\"stream\":{stream},\"max_tokens\":64,\"messages\":[{{\"role\":\"user\",\"content\":\""
    );
    let tail = "\"}]}";
    let pad = size.saturating_sub(head.len() + tail.len());
    let words = b"the quick brown fox jumps over the lazy dog ";
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(head.as_bytes());
    out.extend(words.iter().cycle().take(pad));
    out.extend_from_slice(tail.as_bytes());
    Bytes::from(out)
}

struct Target {
    name: &'static str,
    load: Load,
}

struct Cell {
    stream: bool,
    concurrency: usize,
    size: usize,
    /// Per target, in `TARGET_NAMES` order.
    stats: Vec<Stats>,
}

const TARGET_NAMES: [&str; 5] = ["direct", "proxy", "gateway-10", "gateway-10k", "minimal"];

async fn orchestrate(quick: bool) {
    let (rounds, mut round, warmup) = if quick {
        (1, Duration::from_millis(400), Duration::from_millis(100))
    } else {
        (3, Duration::from_millis(1200), Duration::from_millis(250))
    };
    if let Some(ms) = std::env::var("SWITCHYARD_BENCH_ROUND_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        round = Duration::from_millis(ms);
    }
    let filter = std::env::var("SWITCHYARD_BENCH_FILTER").unwrap_or_default();
    let dir = std::env::temp_dir().join(format!("switchyard-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    eprintln!("starting the fake upstream, the bare proxy, the minimal gateway and two gateways …");
    let upstream = Child::spawn("upstream", "upstream", "");
    let proxy = Child::spawn("proxy", "proxy", &upstream.addr.to_string());
    let minimal = Child::spawn("minimal", "minimal", &upstream.addr.to_string());
    let mut gateways = Vec::new();
    for n in CATALOGUES {
        let path: PathBuf = dir.join(format!("catalogue-{n}.toml"));
        std::fs::write(&path, catalogue_toml(upstream.addr, n)).expect("write config");
        let t = Instant::now();
        let g = Child::spawn(
            &format!("gateway-{n}"),
            "gateway",
            path.to_str().expect("utf-8"),
        );
        eprintln!("  gateway with {n} models ready in {:?}", t.elapsed());
        gateways.push(g);
    }
    // Idle RSS: after start-up and one request each (lazily built clients exist).
    let procs: Vec<&Child> = std::iter::once(&proxy).chain(gateways.iter()).collect();
    let uri_of =
        |c: &Child, path: &str| -> Uri { format!("http://{}{path}", c.addr).parse().expect("uri") };
    let target_uris = [
        uri_of(&upstream, "/v1/chat/completions"),
        uri_of(&proxy, "/v1/chat/completions"),
        uri_of(&gateways[0], "/api/v1/chat/completions"),
        uri_of(&gateways[1], "/api/v1/chat/completions"),
        uri_of(&minimal, "/v1/chat/completions"),
    ];
    for uri in &target_uris[1..] {
        let load = Load {
            client: load_client(),
            uri: uri.clone(),
            body: body("bench/target", false, 1024),
            stream: false,
            auth: None,
        };
        let mut s = Stats::new();
        one(&load, &mut s).await;
        assert_eq!(
            s.errors, 0,
            "a warm-up request to {uri} failed: {:?}",
            s.first_error
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle: Vec<u64> = procs.iter().map(|c| c.rss().0).collect();

    // 1,000 concurrent open streams.
    eprintln!("holding {OPEN_STREAMS} streams open through each proxy/gateway …");
    let mut streams = Vec::new();
    for (i, c) in procs.iter().enumerate() {
        let path = if i == 0 {
            "/hold/v1/chat/completions"
        } else {
            "/api/v1/chat/completions"
        };
        let load = Load {
            client: load_client(),
            uri: uri_of(c, path),
            body: body("bench/hold", true, 1024),
            stream: true,
            auth: None,
        };
        streams.push(open_streams(&load, OPEN_STREAMS, c, upstream.addr).await);
    }

    // The load matrix.
    let servers = [&upstream, &proxy, &gateways[0], &gateways[1], &minimal];
    for c in &procs {
        c.reset_peak();
    }
    let mut cells = Vec::new();
    let total_cells = 2 * CONCURRENCIES.len() * BODY_SIZES.len();
    for stream in [false, true] {
        for concurrency in CONCURRENCIES {
            for size in BODY_SIZES {
                let label = format!(
                    "{} c={concurrency} body={}",
                    if stream { "stream" } else { "json" },
                    size_label(size)
                );
                if !label.contains(&filter) {
                    continue;
                }
                eprintln!("cell {}/{total_cells}: {label}", cells.len() + 1);
                let targets: Vec<Target> = TARGET_NAMES
                    .iter()
                    .zip(&target_uris)
                    .map(|(name, uri)| Target {
                        name,
                        load: Load {
                            client: load_client(),
                            uri: uri.clone(),
                            body: body("bench/target", stream, size),
                            stream,
                            auth: None,
                        },
                    })
                    .collect();
                for t in &targets {
                    let _ = run_for(&t.load, concurrency, warmup).await;
                }
                let mut stats: Vec<Stats> = targets.iter().map(|_| Stats::new()).collect();
                for r in 0..rounds {
                    for k in 0..targets.len() {
                        let i = (k + r) % targets.len();
                        let cpu = servers[i].cpu_seconds();
                        let mut s = run_for(&targets[i].load, concurrency, round).await;
                        s.cpu = servers[i].cpu_seconds() - cpu;
                        if s.errors > 0 {
                            eprintln!(
                                "  {}: {} errors (first: {})",
                                targets[i].name,
                                s.errors,
                                s.first_error.as_deref().unwrap_or("?")
                            );
                        }
                        stats[i].merge(&s);
                    }
                }
                cells.push(Cell {
                    stream,
                    concurrency,
                    size,
                    stats,
                });
            }
        }
    }
    let peak: Vec<u64> = procs.iter().map(|c| c.rss().1).collect();

    // Sustained load on a fresh 10-model gateway: small requests, many of them, so what grows
    // with the request count (the in-memory ledger above all) shows in its peak RSS. Fresh, so
    // the heap the load matrix's 1 MB bodies left behind (glibc keeps it) is not counted too.
    let sustained_n = if quick {
        SUSTAINED_REQUESTS / 4
    } else {
        SUSTAINED_REQUESTS
    };
    eprintln!("sustained load: {sustained_n} requests through a fresh gateway-10 …");
    let fresh = Child::spawn(
        "gateway-10-sustained",
        "gateway",
        dir.join("catalogue-10.toml").to_str().expect("utf-8"),
    );
    fresh.reset_peak();
    let load = Load {
        client: load_client(),
        uri: uri_of(&fresh, "/api/v1/chat/completions"),
        body: body("bench/target", false, 1024),
        stream: false,
        auth: None,
    };
    let sustained_stats = run_count(&load, 64, sustained_n).await;
    let sustained = Sustained {
        requests: sustained_stats.requests,
        errors: sustained_stats.errors,
        seconds: sustained_stats.seconds,
        peak_kib: fresh.rss().1,
    };
    drop(fresh);
    // What sharing credits and rate limits through Redis costs, when a Redis is given.
    let shared = shared_state::run(&upstream, &dir, &filter, quick).await;
    report(quick, &cells, &procs, &idle, &streams, &peak);
    report_sustained(&sustained);
    shared_state::report(shared.as_ref());
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

fn size_label(size: usize) -> String {
    if size >= 1024 * 1024 {
        format!("{} MB", size / (1024 * 1024))
    } else {
        format!("{} KB", size / 1024)
    }
}

fn ms(us: f64) -> String {
    if us.abs() >= 10_000.0 {
        format!("{:.1}", us / 1000.0)
    } else {
        format!("{:.3}", us / 1000.0)
    }
}

fn ratio(x: f64, base: f64) -> String {
    if base <= 0.0 {
        "n/a".into()
    } else {
        format!("{:.2}×", x / base)
    }
}

fn q(h: &Histogram<u64>, p: f64) -> f64 {
    h.value_at_quantile(p) as f64
}

/// What the sustained-load phase measured.
struct Sustained {
    requests: u64,
    errors: u64,
    seconds: f64,
    peak_kib: u64,
}

fn report_sustained(s: &Sustained) {
    println!("\n## Sustained load (a fresh gateway with 10 models, default in-memory ledger)\n");
    println!("| requests | errors | concurrency | seconds | peak RSS | target |");
    println!("|---|---|---|---|---|---|");
    let verdict = if s.peak_kib <= SUSTAINED_PEAK_TARGET_KIB {
        "met"
    } else {
        "**missed**"
    };
    println!(
        "| {} | {} | 64 | {:.1} | {} | ≤ {}: {verdict} |",
        s.requests,
        s.errors,
        s.seconds,
        mb(s.peak_kib),
        mb(SUSTAINED_PEAK_TARGET_KIB),
    );
}

fn mb(kib: u64) -> String {
    format!("{:.1} MB", kib as f64 / 1024.0)
}

fn report(
    quick: bool,
    cells: &[Cell],
    procs: &[&Child],
    idle: &[u64],
    streams: &[(usize, u64)],
    peak: &[u64],
) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "# switchyard gateway benchmark{}\n",
        if quick { " (quick)" } else { "" }
    );
    println!(
        "Machine: {cpu}, {cores} cores available (load generator, upstream, proxy and gateways share them). \
         SSE streams: {SSE_CONTENT_CHUNKS} content chunks. Latencies in ms; `+` = added over calling the upstream directly; \
         `÷ proxy` = the figure divided by the bare proxy's.\n"
    );
    println!("## Latency and throughput\n");
    println!(
        "| mode | conc | body | target | RPS | p50 | p99 | TTFB p50 | TTFB p99 | +p50 | +p99 | +TTFB p50 | +TTFB p99 | RPS ÷ proxy | +p50 ÷ proxy | +p99 ÷ proxy | +TTFB p50 ÷ proxy | +TTFB p99 ÷ proxy | CPU µs/req | CPU ÷ proxy | overhead hdr p50/p99 (µs) | errors |"
    );
    println!("|{}", "---|".repeat(22));
    for c in cells {
        let d = &c.stats[0];
        let p = &c.stats[1];
        let add =
            |s: &Stats, h: fn(&Stats) -> &Histogram<u64>, pct: f64| q(h(s), pct) - q(h(d), pct);
        fn lat(s: &Stats) -> &Histogram<u64> {
            &s.latency
        }
        fn ttfb(s: &Stats) -> &Histogram<u64> {
            &s.ttfb
        }
        for (i, s) in c.stats.iter().enumerate() {
            let mut row = vec![
                if c.stream { "stream" } else { "json" }.to_owned(),
                c.concurrency.to_string(),
                size_label(c.size),
                TARGET_NAMES[i].to_owned(),
                format!("{:.0}", s.rps()),
                ms(q(&s.latency, 0.5)),
                ms(q(&s.latency, 0.99)),
                ms(q(&s.ttfb, 0.5)),
                ms(q(&s.ttfb, 0.99)),
            ];
            if i == 0 {
                row.extend(std::iter::repeat_n("".to_owned(), 9));
            } else {
                let a = [
                    add(s, lat, 0.5),
                    add(s, lat, 0.99),
                    add(s, ttfb, 0.5),
                    add(s, ttfb, 0.99),
                ];
                let b = [
                    add(p, lat, 0.5),
                    add(p, lat, 0.99),
                    add(p, ttfb, 0.5),
                    add(p, ttfb, 0.99),
                ];
                row.extend(a.iter().map(|v| ms(*v)));
                row.push(ratio(s.rps(), p.rps()));
                row.extend(a.iter().zip(&b).map(|(x, y)| ratio(*x, *y)));
            }
            row.push(format!("{:.0}", s.cpu_per_request()));
            row.push(if i == 0 {
                String::new()
            } else {
                ratio(s.cpu_per_request(), p.cpu_per_request())
            });
            row.push(if s.overhead.is_empty() {
                String::new()
            } else {
                format!("{}/{}", q(&s.overhead, 0.5), q(&s.overhead, 0.99))
            });
            row.push(s.errors.to_string());
            println!("| {} |", row.join(" | "));
        }
    }
    println!(
        "\n## Per-request cost against catalogue size and body size (gateway p50 minus proxy p50 in ms; serving-process CPU per request)\n"
    );
    println!(
        "| mode | conc | body | gateway-10 − proxy | gateway-10k − proxy | 10k ÷ 10 | CPU µs/req gateway-10 | gateway-10k | 10k ÷ 10 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for c in cells {
        let d = q(&c.stats[1].latency, 0.5);
        let g10 = q(&c.stats[2].latency, 0.5) - d;
        let g10k = q(&c.stats[3].latency, 0.5) - d;
        let (c10, c10k) = (c.stats[2].cpu_per_request(), c.stats[3].cpu_per_request());
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.0} | {:.0} | {} |",
            if c.stream { "stream" } else { "json" },
            c.concurrency,
            size_label(c.size),
            ms(g10),
            ms(g10k),
            ratio(g10k, g10),
            c10,
            c10k,
            ratio(c10k, c10)
        );
    }
    println!(
        "\n## The minimal gateway (`gateway/minimal.rs`: the least a gateway must do, on hyper and serde_json) against the proxy, and switchyard against it\n"
    );
    println!(
        "| mode | conc | body | minimal RPS ÷ proxy | minimal +p50 ÷ proxy | minimal CPU ÷ proxy | gateway-10 RPS ÷ minimal | gateway-10 +p50 ÷ minimal | gateway-10 +p99 ÷ minimal | gateway-10 CPU ÷ minimal |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for c in cells {
        let (d, p, g, f) = (&c.stats[0], &c.stats[1], &c.stats[2], &c.stats[4]);
        let add = |s: &Stats, pct: f64| q(&s.latency, pct) - q(&d.latency, pct);
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            if c.stream { "stream" } else { "json" },
            c.concurrency,
            size_label(c.size),
            ratio(f.rps(), p.rps()),
            ratio(add(f, 0.5), add(p, 0.5)),
            ratio(f.cpu_per_request(), p.cpu_per_request()),
            ratio(g.rps(), f.rps()),
            ratio(add(g, 0.5), add(f, 0.5)),
            ratio(add(g, 0.99), add(f, 0.99)),
            ratio(g.cpu_per_request(), f.cpu_per_request()),
        );
    }
    println!("\n## Memory (RSS of each process)\n");
    println!(
        "| process | idle | idle ÷ proxy | {OPEN_STREAMS} open streams (peak) | ÷ proxy | streams open at the sample | peak under the load matrix | ÷ proxy |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (i, c) in procs.iter().enumerate() {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            c.name,
            mb(idle[i]),
            ratio(idle[i] as f64, idle[0] as f64),
            mb(streams[i].1),
            ratio(streams[i].1 as f64, streams[0].1 as f64),
            streams[i].0,
            mb(peak[i]),
            ratio(peak[i] as f64, peak[0] as f64),
        );
    }
}
