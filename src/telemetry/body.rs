//! The response body that reports its request when it ends: at its last frame, or when it is
//! dropped before that (the client went away).

use super::pending::Pending;
use crate::BoxError;
use crate::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};

/// Wraps a response body; reports once.
pub(super) struct ObservedBody {
    inner: Option<Body>,
    pending: Option<Pending>,
    status: u16,
}

impl ObservedBody {
    pub(super) fn wrap(inner: Body, pending: Pending, status: u16) -> Body {
        let ended = http_body::Body::is_end_stream(&inner);
        let mut body = ObservedBody {
            inner: Some(inner),
            pending: Some(pending),
            status,
        };
        if ended {
            body.finish(true);
        }
        crate::body::boxed_as_is(body)
    }

    fn finish(&mut self, ended: bool) {
        if let Some(p) = self.pending.take() {
            p.finish(self.status, ended);
        }
    }
}

impl http_body::Body for ObservedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        // The stream's own work (metering, the upstream's frames) happens inside the span.
        let _entered = this.pending.as_ref().map(|p| p.span().enter());
        let frame = std::task::ready!(Pin::new(&mut *inner).poll_frame(cx));
        let end = match &frame {
            None | Some(Err(_)) => true,
            Some(Ok(_)) => http_body::Body::is_end_stream(inner),
        };
        drop(_entered);
        if end {
            this.finish(true);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner
            .as_ref()
            .is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), http_body::Body::size_hint)
    }
}

impl Drop for ObservedBody {
    fn drop(&mut self) {
        // The inner body goes first: a stream cut short finishes its metering as cancelled
        // when dropped, and the report should include that record.
        drop(self.inner.take());
        self.finish(false);
    }
}
