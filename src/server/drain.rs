//! The end of the shutdown grace: what is still in flight then is ended with a reason, not cut.
//!
//! Every completion stack of a [`Gateway`](super::Gateway) is wrapped in [`Drained`]. While the
//! gateway serves, it passes requests and responses through untouched (one check of a flag per
//! stream frame). When [`Drain::end_now`] is called — by the accept loop once
//! `[server] shutdown_grace_ms` is over — a request still waiting for its answer gets a 503
//! envelope, and a stream still running gets one final event
//! `data: {"error":{"code":503,"message":"gateway shutting down",…}}` and `data: [DONE]`. The
//! stream's inner body is dropped first, so the meter records the generation as cancelled and
//! settles its credits for what was sent, before the ledger's last flush.

//!
//! Serving pays no allocation for it: the drain is a flag and a [`Notify`], and each request's
//! wait is an [`OwnedNotified`] inside its own named future, not a boxed task.

use crate::body::{self, Body};
use crate::error::GatewayError;
use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body::{Frame, SizeHint};
use pin_project_lite::pin_project;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use tokio::sync::Notify;
use tokio::sync::futures::OwnedNotified;
use tower::Service;

/// What a client is told when the gateway ends its request at shutdown.
const MESSAGE: &str = "gateway shutting down";

/// The signal shared by a gateway's stacks: "end what is still in flight".
#[derive(Debug, Clone)]
pub(super) struct Drain {
    ended: Arc<AtomicBool>,
    notify: Arc<Notify>,
}

impl Drain {
    pub(super) fn new() -> Drain {
        Drain {
            ended: Arc::default(),
            notify: Arc::new(Notify::new()),
        }
    }

    /// Ends every request and stream still in flight, now and from now on.
    pub(super) fn end_now(&self) {
        // The flag first: a wait made after this reads it; one made before is woken (an
        // `OwnedNotified` receives `notify_waiters` from the moment it exists).
        self.ended.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// A wait that resolves once [`Drain::end_now`] has been called; never otherwise.
    fn wait(&self) -> Ended {
        Ended {
            notified: Arc::clone(&self.notify).notified_owned(),
            ended: Arc::clone(&self.ended),
        }
    }

    pub(super) fn wrap<S>(&self, inner: S) -> Drained<S> {
        Drained {
            inner,
            drain: self.clone(),
        }
    }
}

pin_project! {
    /// See [`Drain::wait`].
    struct Ended {
        #[pin]
        notified: OwnedNotified,
        ended: Arc<AtomicBool>,
    }
}

impl Future for Ended {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        if this.ended.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        this.notified.poll(cx)
    }
}

/// A completion stack whose answers end at [`Drain::end_now`].
#[derive(Debug, Clone)]
pub(super) struct Drained<S> {
    inner: S,
    drain: Drain,
}

impl<S, B> Service<Request<B>> for Drained<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = Infallible>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = DrainedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        DrainedFuture {
            answer: self.inner.call(req),
            ended: self.drain.wait(),
            drain: self.drain.clone(),
        }
    }
}

pin_project! {
    /// The answer of a [`Drained`] stack: the inner one, or a 503 once the drain ends.
    pub(super) struct DrainedFuture<F> {
        #[pin]
        answer: F,
        #[pin]
        ended: Ended,
        drain: Drain,
    }
}

impl<F> Future for DrainedFuture<F>
where
    F: Future<Output = Result<Response<Body>, Infallible>>,
{
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // The answer first: one that is ready is served even if the drain just ended.
        if let Poll::Ready(resp) = this.answer.poll(cx) {
            let resp = resp?;
            let is_stream = resp
                .headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
            if !is_stream {
                return Poll::Ready(Ok(resp));
            }
            let ended = this.drain.wait();
            return Poll::Ready(Ok(resp.map(|inner| {
                body::boxed_as_is(DrainedStream {
                    inner: Some(inner),
                    ended,
                })
            })));
        }
        match this.ended.poll(cx) {
            Poll::Ready(()) => Poll::Ready(Ok(GatewayError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "provider_unavailable",
                MESSAGE,
            )
            .into_response())),
            Poll::Pending => Poll::Pending,
        }
    }
}

pin_project! {
    /// A stream body that, once the drain fires, drops its inner body and sends the error event.
    struct DrainedStream {
        inner: Option<Body>,
        #[pin]
        ended: Ended,
    }
}

impl DrainedStream {
    /// The error event and `[DONE]`.
    fn last_events() -> Bytes {
        let error = GatewayError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "provider_unavailable",
            MESSAGE,
        );
        let mut out = body::sse_event(&error.to_json()).to_vec();
        out.extend_from_slice(body::DONE_EVENT);
        Bytes::from(out)
    }
}

impl http_body::Body for DrainedStream {
    type Data = Bytes;
    type Error = crate::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if this.ended.poll(cx).is_ready() {
            // Dropped before the last event goes out: the meter records the generation (as
            // cancelled) and settles its credits now, not when the process exits.
            *this.inner = None;
            return Poll::Ready(Some(Ok(Frame::data(Self::last_events()))));
        }
        let frame = Pin::new(inner).poll_frame(cx);
        if let Poll::Ready(None) = frame {
            *this.inner = None;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}
