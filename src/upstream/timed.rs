//! A response body with first-byte, idle and total deadlines.

use crate::BoxError;
use crate::catalog::Provider;
use crate::error::{Phase, UpstreamError, UpstreamErrorKind};
use crate::overhead::WaitClock;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep, sleep_until};

pin_project! {
    /// Fails with [`UpstreamError`] when a deadline passes; see [`crate::catalog::Timeouts`].
    ///
    /// One timer serves all three deadlines, and it is re-armed lazily: a chunk only moves
    /// `idle_deadline` forward (no timer-wheel work per chunk); when the timer fires early
    /// because chunks arrived meanwhile, it is set again to the nearer of the two deadlines.
    pub(crate) struct TimedBody<B> {
        #[pin]
        inner: B,
        #[pin]
        timer: Sleep,
        // First byte, then idle: the deadline for the next chunk.
        idle_deadline: Instant,
        total_deadline: Instant,
        idle: Duration,
        first: bool,
        first_byte: Duration,
        total_limit: Duration,
        // Named in errors only: shared, not copied per request.
        provider: Arc<Provider>,
        wait: WaitClock,
    }
}

impl<B> TimedBody<B> {
    pub(crate) fn new(
        inner: B,
        first_byte_deadline: Instant,
        idle: Duration,
        total_deadline: Instant,
        provider: Arc<Provider>,
        first_byte: Duration,
        total_limit: Duration,
    ) -> Self {
        TimedBody {
            inner,
            timer: sleep_until(first_byte_deadline.min(total_deadline)),
            idle_deadline: first_byte_deadline,
            total_deadline,
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
                *this.idle_deadline = Instant::now() + *this.idle;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                let e: BoxError = e.into();
                Poll::Ready(Some(Err(Box::new(UpstreamError {
                    kind: UpstreamErrorKind::Broken,
                    provider: this.provider.name.clone(),
                    detail: source_chain(&*e),
                }))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let (phase, limit) = loop {
                    if this.timer.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    let now = Instant::now();
                    if now >= *this.total_deadline {
                        break (Phase::Total, *this.total_limit);
                    }
                    if now >= *this.idle_deadline {
                        if *this.first {
                            break (Phase::FirstByte, *this.first_byte);
                        }
                        break (Phase::Idle, *this.idle);
                    }
                    // Fired early: chunks moved the idle deadline. Re-arm and poll again so the
                    // timer registers this task's waker.
                    let next = (*this.idle_deadline).min(*this.total_deadline);
                    this.timer.as_mut().reset(next);
                };
                Poll::Ready(Some(Err(Box::new(UpstreamError {
                    kind: UpstreamErrorKind::Timeout(phase, limit),
                    provider: this.provider.name.clone(),
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
