//! Telemetry: what each finished request tells an operator — one JSON line in the request log,
//! a row in the dashboard, and a `tracing` span (exported over OTLP with the `otel` feature).
//!
//! Why a layer of its own: the meter sees one attempt and only the served one; the fallback
//! layer sees every attempt but not the cost; neither sees the end of a failed request or the
//! last byte of a stream. [`TelemetryLayer`] sits just inside parse, where the request is
//! parsed and its [`RequestContext`](crate::context::RequestContext) exists, and reports when
//! the response's body ends: the context's attempt chain, the status, and the served
//! generation's figures, which the meter copies into the request's [`Tap`].
//!
//! # Contract
//!
//! | | |
//! |---|---|
//! | reads (optional) | `Arc<ChatRequest>` (requested model, stream), [`RequestContext`](crate::context::RequestContext) (id, attempts), [`CallerKey`](crate::context::CallerKey) (its label only), [`Ingress`](crate::ledger::Ingress), the `traceparent` header |
//! | writes | a [`Tap`] extension; the [`TRACE_ID_HEADER`] response header; an error from the inner service becomes its error envelope here |
//! | inner service | gets the request unchanged; its response body is passed through frame by frame |
//!
//! Nothing is required: over a bare service the summary has only the status and the timings.
//!
//! ```
//! use std::sync::Arc;
//! use switchyard::telemetry::{Observer, RequestLog, TelemetryLayer, TRACE_ID_HEADER};
//! use tower::{Layer, ServiceExt};
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), switchyard::BoxError> {
//! let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
//! # struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
//! # impl std::io::Write for Buf {
//! #     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> { self.0.lock().unwrap().extend_from_slice(b); Ok(b.len()) }
//! #     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
//! # }
//! let observer = Arc::new(Observer::new().log(RequestLog::to_writer(Buf(lines.clone()))));
//! let svc = TelemetryLayer::new(observer).layer(tower::service_fn(|_req: http::Request<()>| async {
//!     Ok::<_, switchyard::BoxError>(http::Response::new(switchyard::body::full("{}")))
//! }));
//! let resp = svc.oneshot(http::Request::new(())).await?;
//! assert_eq!(resp.headers()[TRACE_ID_HEADER].len(), 32);
//! drop(resp);
//! let line: serde_json::Value = serde_json::from_slice(&lines.lock().unwrap())?;
//! assert_eq!(line["status"], 200);
//! # Ok(()) }
//! ```

mod body;
pub(crate) mod config;
mod layer;
mod log;
#[cfg(feature = "otel")]
pub mod otel;
mod pending;
mod recent;
mod summary;
mod tap;
mod trace;

pub use config::TelemetryConfig;
pub use layer::{ResponseFuture, Telemetry, TelemetryLayer};
pub use log::RequestLog;
pub use recent::Recent;
pub use summary::{AttemptSummary, Outcome, RequestSummary};
pub use tap::{Served, Tap};
pub use trace::{TRACE_ID_HEADER, TraceParent};

use std::path::Path;

/// Where finished requests go: the request log and the dashboard's store, each optional.
#[derive(Debug, Default)]
pub struct Observer {
    log: Option<RequestLog>,
    recent: Option<Recent>,
}

impl Observer {
    /// An observer that keeps nothing (the span is still recorded).
    pub fn new() -> Observer {
        Observer::default()
    }

    /// What `[telemetry]` asks for; `request_log_path` resolves against `base_dir`.
    pub fn from_config(cfg: &TelemetryConfig, base_dir: &Path) -> std::io::Result<Observer> {
        let mut o = Observer::new();
        if cfg.request_log {
            o = o.log(match &cfg.request_log_path {
                Some(path) => RequestLog::append_to(&base_dir.join(path))?,
                None => RequestLog::stdout(),
            });
        }
        if cfg.dashboard {
            o = o.recent(Recent::new(cfg.dashboard_window));
        }
        Ok(o)
    }

    /// Also writes every request to `log`.
    pub fn log(mut self, log: RequestLog) -> Observer {
        self.log = Some(log);
        self
    }

    /// Also keeps every request in `recent`.
    pub fn recent(mut self, recent: Recent) -> Observer {
        self.recent = Some(recent);
        self
    }

    /// The dashboard's store, if kept.
    pub fn recent_store(&self) -> Option<&Recent> {
        self.recent.as_ref()
    }

    /// Reports one finished request.
    pub fn observe(&self, summary: RequestSummary) {
        if let Some(log) = &self.log {
            log.write(&summary);
        }
        if let Some(recent) = &self.recent {
            recent.record(summary);
        }
    }
}
