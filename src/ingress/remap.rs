//! A response body that rewrites a chat completion event stream into another API's events.
//!
//! The stack below an ingress layer sends one whole SSE event per frame (see [`crate::body`]),
//! but a user's own service may not, so frames go through an SSE [`Decoder`]. Comment frames
//! (the fallback layer's keep-alives) pass through untouched: they keep idle connections open
//! whatever API the client speaks.

use crate::BoxError;
use crate::body::Body;
use crate::sse::{Decoder, Event};
use bytes::Bytes;
use http_body::Frame;
use pin_project_lite::pin_project;
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Turns chat completion events into another API's event bytes.
pub(crate) trait Remap: Send + 'static {
    /// One chat event (`data: {chunk}` or `data: [DONE]`).
    fn event(&mut self, event: &Event, out: &mut Vec<Bytes>);
    /// The chat stream ended (after `[DONE]` or not).
    fn end(&mut self, out: &mut Vec<Bytes>);
    /// The chat stream failed mid-way.
    fn fail(&mut self, error: &BoxError, out: &mut Vec<Bytes>);
}

pin_project! {
    /// The chat stream `inner`, rewritten by `remap`.
    pub(crate) struct Remapped<M> {
        #[pin]
        inner: Body,
        decoder: Decoder,
        events: Vec<Event>,
        pending: Vec<Bytes>,
        out: VecDeque<Bytes>,
        remap: M,
        finished: bool,
    }
}

impl<M: Remap> Remapped<M> {
    /// Wraps `inner`.
    pub(crate) fn new(inner: Body, remap: M) -> Self {
        Remapped {
            inner,
            decoder: Decoder::default(),
            events: Vec::new(),
            pending: Vec::new(),
            out: VecDeque::new(),
            remap,
            finished: false,
        }
    }
}

impl<M: Remap> http_body::Body for Remapped<M> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        loop {
            if let Some(b) = this.out.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(b))));
            }
            if *this.finished {
                return Poll::Ready(None);
            }
            match this.inner.as_mut().poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    if data.first() == Some(&b':') && !this.decoder.has_partial() {
                        this.out.push_back(data);
                        continue;
                    }
                    this.decoder.feed(&data, this.events);
                    for event in this.events.drain(..) {
                        this.remap.event(&event, this.pending);
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    this.remap.fail(&e, this.pending);
                    *this.finished = true;
                }
                Poll::Ready(None) => {
                    this.remap.end(this.pending);
                    *this.finished = true;
                }
            }
            this.out.extend(this.pending.drain(..));
        }
    }
}

/// One SSE event with an `event:` name, as Anthropic and the Responses API send them.
pub(crate) fn named_event(name: &str, data: &serde_json::Value) -> Bytes {
    let mut out = Vec::with_capacity(64 + name.len());
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    // Serialising a Value cannot fail.
    let _ = serde_json::to_writer(&mut out, data);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// The `(event name, data)` of each named event a remapper wrote (for the remappers' tests).
#[cfg(test)]
pub(crate) fn parse_named(out: &[Bytes]) -> Vec<(String, serde_json::Value)> {
    out.iter()
        .map(|b| {
            let text = std::str::from_utf8(b).expect("utf-8");
            let (head, data) = text.split_once("\ndata: ").expect("named event");
            (
                head.trim_start_matches("event: ").to_owned(),
                serde_json::from_str(data.trim()).expect("json"),
            )
        })
        .collect()
}
