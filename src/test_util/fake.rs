//! The fake upstream's server: accepts connections, records each request, and can end a
//! connection with a TCP reset.

use axum::Router;
use axum::body::Body as AxBody;
use axum::http::HeaderMap;
use serde_json::Value;
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
    pub(super) counts: Arc<Mutex<HashMap<String, usize>>>,
    pub(super) record: Arc<AtomicBool>,
    /// Streams whose reader went away before the stream ended (client disconnects reaching here).
    pub(super) abandoned: Arc<AtomicUsize>,
    /// Complete answers sent (non-stream bodies and streams that reached `[DONE]`).
    pub(super) completed: Arc<AtomicUsize>,
    /// Close keep-alive connections idle for this long (none: keep them open).
    pub(super) idle_close: Arc<Mutex<Option<Duration>>>,
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
pub(super) struct ResetHandle(Arc<AtomicBool>);

impl ResetHandle {
    pub(super) fn arm(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Marks a response whose connection is to be dropped instead of answering.
#[derive(Clone, Debug)]
pub(super) struct Abort;

/// One accepted connection, served by hyper; the handlers can ask for it to end in a reset.
pub(super) async fn serve_connection(tcp: TcpStream, app: Router, idle_close: Option<Duration>) {
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
pub(super) struct ResetOnDrop {
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
