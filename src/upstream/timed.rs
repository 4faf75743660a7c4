//! A response body with first-byte, idle and total deadlines.

use super::error::{Phase, UpstreamError, UpstreamErrorKind};
use crate::BoxError;
use crate::overhead::WaitClock;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep, sleep_until};

pin_project! {
    /// Fails with [`UpstreamError`] when a deadline passes; see [`crate::catalog::Timeouts`].
    pub(crate) struct TimedBody<B> {
        #[pin]
        inner: B,
        #[pin]
        next: Sleep,
        #[pin]
        total: Sleep,
        idle: Duration,
        first: bool,
        first_byte: Duration,
        total_limit: Duration,
        provider: String,
        wait: WaitClock,
    }
}

impl<B> TimedBody<B> {
    pub(crate) fn new(
        inner: B,
        first_byte_deadline: Instant,
        idle: Duration,
        total_deadline: Instant,
        provider: String,
        first_byte: Duration,
        total_limit: Duration,
    ) -> Self {
        TimedBody {
            inner,
            next: sleep_until(first_byte_deadline),
            total: sleep_until(total_deadline),
            idle,
            first: true,
            first_byte,
            total_limit,
            provider,
            wait: WaitClock::default(),
        }
    }

    /// Adds the time this body spends pending to `wait` (see [`crate::overhead`]).
    pub(crate) fn with_wait(mut self, wait: WaitClock) -> Self {
        self.wait = wait;
        self
    }
}

impl<B> HttpBody for TimedBody<B>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        let polled = this.inner.poll_frame(cx);
        if polled.is_pending() {
            this.wait.pending();
        } else {
            this.wait.ready();
        }
        match polled {
            Poll::Ready(Some(Ok(frame))) => {
                *this.first = false;
                let deadline = Instant::now() + *this.idle;
                this.next.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                let e: BoxError = e.into();
                Poll::Ready(Some(Err(Box::new(UpstreamError {
                    kind: UpstreamErrorKind::Broken,
                    provider: this.provider.clone(),
                    detail: source_chain(&*e),
                }))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let (phase, limit) = if this.total.as_mut().poll(cx).is_ready() {
                    (Phase::Total, *this.total_limit)
                } else if this.next.as_mut().poll(cx).is_ready() {
                    if *this.first {
                        (Phase::FirstByte, *this.first_byte)
                    } else {
                        (Phase::Idle, *this.idle)
                    }
                } else {
                    return Poll::Pending;
                };
                Poll::Ready(Some(Err(Box::new(UpstreamError {
                    kind: UpstreamErrorKind::Timeout(phase, limit),
                    provider: this.provider.clone(),
                    detail: String::new(),
                }))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An error and its sources on one line (hyper's errors hide the useful part in `source()`).
pub(crate) fn source_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = inner.source();
    }
    s
}
