//! One complete event per body frame, whatever the upstream's chunking.
//!
//! The layers that read a stream as it passes (fallback's commit on the first content event,
//! meter's usage) look at one event per frame. Behind the translate layer that already holds
//! (it marks its responses [`OneEventPerFrame`]); a response from any other service is
//! re-framed by [`ensure_event_frames`].

use super::{Decoder, Event};
use crate::BoxError;
use crate::body::Body;
use bytes::{BufMut, Bytes, BytesMut};
use http::Response;
use http_body::Frame;
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Response extension: the body yields exactly one complete SSE event per data frame.
#[derive(Debug, Clone, Copy, Default)]
pub struct OneEventPerFrame;

/// Largest event accepted from an unframed stream (a longer one is upstream garbage).
const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// The response with a body of one event per frame: as it is when marked
/// [`OneEventPerFrame`], else re-framed (and then marked).
pub fn ensure_event_frames(resp: Response<Body>) -> Response<Body> {
    if resp.extensions().get::<OneEventPerFrame>().is_some() {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    parts.headers.remove(http::header::CONTENT_LENGTH);
    parts.extensions.insert(OneEventPerFrame);
    let framed = crate::body::boxed_as_is(Reframed {
        inner: body,
        decoder: Decoder::with_limit(MAX_EVENT_BYTES),
        events: Vec::new(),
        ready: VecDeque::new(),
        ended: false,
    });
    Response::from_parts(parts, framed)
}

struct Reframed {
    inner: Body,
    decoder: Decoder,
    events: Vec<Event>,
    ready: VecDeque<Bytes>,
    ended: bool,
}

fn encode(e: &Event) -> Bytes {
    let mut out = BytesMut::with_capacity(e.data.len() + 16);
    if let Some(name) = &e.event {
        out.put_slice(b"event: ");
        out.put_slice(name.as_bytes());
        out.put_u8(b'\n');
    }
    for line in e.data.split('\n') {
        out.put_slice(b"data: ");
        out.put_slice(line.as_bytes());
        out.put_u8(b'\n');
    }
    out.put_u8(b'\n');
    out.freeze()
}

impl http_body::Body for Reframed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if let Some(b) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(b))));
            }
            if this.ended {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    this.decoder.feed(&data, &mut this.events);
                    if this.decoder.overflowed() {
                        return Poll::Ready(Some(Err(format!(
                            "an event of the stream exceeds {MAX_EVENT_BYTES} bytes"
                        )
                        .into())));
                    }
                    let ready = &mut this.ready;
                    ready.extend(this.events.iter().map(encode));
                    this.decoder.recycle(&mut this.events);
                }
                Poll::Ready(None) => {
                    // A last event without its blank line still counts.
                    this.decoder.feed(b"\n\n", &mut this.events);
                    this.ready.extend(this.events.iter().map(encode));
                    this.events.clear();
                    this.ended = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn arbitrary_chunks_become_one_event_per_frame() {
        let chunks: Vec<Result<Frame<Bytes>, BoxError>> = [
            &b"data: {\"a\""[..],
            b":1}\n\ndata: {\"b\":2}\n\nevent: x\nda",
            b"ta: [DONE]",
        ]
        .into_iter()
        .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
        .collect();
        let body = crate::body::boxed(http_body_util::StreamBody::new(futures_util::stream::iter(
            chunks,
        )));
        let resp = ensure_event_frames(Response::new(body));
        assert!(resp.extensions().get::<OneEventPerFrame>().is_some());
        let mut body = resp.into_body();
        let mut frames = Vec::new();
        while let Some(f) = body.frame().await {
            frames.push(f.expect("frame").into_data().expect("data"));
        }
        assert_eq!(
            frames,
            [
                &b"data: {\"a\":1}\n\n"[..],
                b"data: {\"b\":2}\n\n",
                b"event: x\ndata: [DONE]\n\n"
            ]
        );
    }
}
