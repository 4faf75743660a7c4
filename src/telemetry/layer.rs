//! [`TelemetryLayer`]: opens the request span, gives the meter a [`Tap`], and hands the
//! finished request to the [`Observer`] once its response has ended.

use super::body::ObservedBody;
use super::pending::Pending;
use super::summary::Arrival;
use super::{Observer, TRACE_ID_HEADER, Tap, trace};
use crate::BoxError;
use crate::body::Body;
use http::{HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};
use tracing::Instrument as _;
use tracing::instrument::Instrumented;

/// Applies [`Telemetry`].
#[derive(Debug, Clone)]
pub struct TelemetryLayer {
    observer: Arc<Observer>,
}

impl TelemetryLayer {
    /// Reports every request to `observer`.
    pub fn new(observer: Arc<Observer>) -> Self {
        TelemetryLayer { observer }
    }
}

impl<S> Layer<S> for TelemetryLayer {
    type Service = Telemetry<S>;
    fn layer(&self, inner: S) -> Telemetry<S> {
        Telemetry {
            inner,
            observer: self.observer.clone(),
        }
    }
}

/// The telemetry service; see the [module docs](super).
#[derive(Debug, Clone)]
pub struct Telemetry<S> {
    inner: S,
    observer: Arc<Observer>,
}

impl<S, B> Service<Request<B>> for Telemetry<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let (span, trace_id) = trace::request_span(req.headers(), req.extensions());
        let arrival = Arrival::of(req.extensions(), trace_id);
        let tap = Tap::new();
        req.extensions_mut().insert(tap.clone());
        let inner = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        ResponseFuture {
            inner: inner.instrument(span.clone()),
            pending: Some(Pending {
                arrival,
                tap,
                span,
                observer: self.observer.clone(),
            }),
        }
    }
}

pin_project! {
    /// [`Telemetry`]'s future: the inner one in the request span; its response carries the
    /// trace id and a body that reports the request when it ends.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: Instrumented<F>,
        pending: Option<Pending>,
    }
}

impl<F: std::fmt::Debug> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<Body>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<Body>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        let Some(pending) = this.pending.take() else {
            return Poll::Ready(result.map_err(Into::into));
        };
        // An error becomes its envelope here rather than further out, so it too carries the
        // trace id and is reported with its status.
        let mut resp = result.unwrap_or_else(|e| crate::error::error_response(&e.into()));
        if let Ok(v) = HeaderValue::from_str(&pending.arrival.trace_id) {
            resp.headers_mut().insert(TRACE_ID_HEADER, v);
        }
        let status = resp.status().as_u16();
        Poll::Ready(Ok(
            resp.map(|body| ObservedBody::wrap(body, pending, status))
        ))
    }
}
