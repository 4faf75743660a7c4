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

use crate::body::{self, Body};
use crate::error::GatewayError;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{Request, Response, StatusCode, header};
use http_body::{Frame, SizeHint};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::watch;
use tower::Service;

/// What a client is told when the gateway ends its request at shutdown.
const MESSAGE: &str = "gateway shutting down";

/// The signal shared by a gateway's stacks: "end what is still in flight".
#[derive(Debug, Clone)]
pub(super) struct Drain {
    tx: Arc<watch::Sender<bool>>,
}

impl Drain {
    pub(super) fn new() -> Drain {
        Drain {
            tx: Arc::new(watch::Sender::new(false)),
        }
    }

    /// Ends every request and stream still in flight, now and from now on.
    pub(super) fn end_now(&self) {
        self.tx.send_replace(true);
    }

    /// Resolves once [`Drain::end_now`] has been called; never otherwise.
    fn ended(&self) -> BoxFuture<'static, ()> {
        let mut rx = self.tx.subscribe();
        Box::pin(async move {
            if rx.wait_for(|ended| *ended).await.is_err() {
                // The gateway is gone without ending anything: nothing will.
                std::future::pending::<()>().await;
            }
        })
    }

    pub(super) fn wrap<S>(&self, inner: S) -> Drained<S> {
        Drained {
            inner,
            drain: self.clone(),
        }
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
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let answer = self.inner.call(req);
        let drain = self.drain.clone();
        Box::pin(async move {
            let resp = tokio::select! {
                biased;
                resp = answer => resp?,
                () = drain.ended() => {
                    return Ok(GatewayError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "provider_unavailable",
                        MESSAGE,
                    )
                    .into_response());
                }
            };
            let is_stream = resp
                .headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
            if !is_stream {
                return Ok(resp);
            }
            Ok(resp.map(|inner| {
                body::boxed_as_is(DrainedStream {
                    inner: Some(inner),
                    ended: drain.ended(),
                })
            }))
        })
    }
}

/// A stream body that, once the drain fires, drops its inner body and sends the error event.
struct DrainedStream {
    inner: Option<Body>,
    ended: BoxFuture<'static, ()>,
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
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if this.ended.as_mut().poll(cx).is_ready() {
            // Dropped before the last event goes out: the meter records the generation (as
            // cancelled) and settles its credits now, not when the process exits.
            this.inner = None;
            return Poll::Ready(Some(Ok(Frame::data(Self::last_events()))));
        }
        let frame = Pin::new(inner).poll_frame(cx);
        if let Poll::Ready(None) = frame {
            this.inner = None;
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
