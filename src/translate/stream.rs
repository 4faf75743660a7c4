//! The translated SSE body: upstream bytes in any chunking → one normalised OpenAI chunk event
//! per frame, ending with `data: [DONE]` — or with an error when the upstream stream breaks off.

use super::normalize::{Stamp, stamp};
use super::splice::ChunkWriter;
use crate::body::{DONE_EVENT, sse_event};
use crate::catalog::Provider;
use crate::sse::{Decoder, Event};
use crate::upstream::{UpstreamError, UpstreamErrorKind};
use crate::{BoxError, body::Body};
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame};
use serde_json::Value;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// Largest single SSE event accepted from an upstream (garbage that never ends an event fails).
const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// The `object` of every chunk (legacy completion streams too, as before).
const CHUNK_OBJECT: &str = "chat.completion.chunk";

/// Maps one upstream API's stream events to OpenAI chunks.
pub(crate) trait StreamMapper: Send {
    /// Pushes the chunks for one event; `Ok(true)` when the upstream signalled the end.
    fn on_event(&mut self, ev: &Event, out: &mut Vec<Value>) -> Result<bool, BoxError>;
    /// Like [`StreamMapper::on_event`], but may push finished SSE events to `frames` instead of
    /// values to stamp: upstreams whose events already are OpenAI chunks splice the gateway's
    /// fields in with `chunks` rather than building a `Value` per chunk. Frames are queued as
    /// they are pushed, values once the call returns.
    fn on_event_framed(
        &mut self,
        ev: &Event,
        _chunks: &mut ChunkWriter,
        out: &mut Vec<Value>,
        _frames: &mut VecDeque<Bytes>,
    ) -> Result<bool, BoxError> {
        self.on_event(ev, out)
    }
    /// The upstream closed; `Ok(true)` if the stream counts as complete anyway.
    fn on_end(&mut self, out: &mut Vec<Value>) -> Result<bool, BoxError>;
}

pub(crate) struct TranslatedStream {
    inner: Body,
    decoder: Decoder,
    mapper: Box<dyn StreamMapper>,
    stamp: Stamp,
    /// The same stamp, serialised once for the chunks spliced without a `Value`.
    chunks: ChunkWriter,
    events: Vec<Event>,
    values: Vec<Value>,
    pending: VecDeque<Bytes>,
    finished: bool,
    /// An error to report once the frames mapped before it are out.
    error: Option<BoxError>,
    /// The provider whose key is masked out of errors.
    secret: Option<Arc<Provider>>,
}

impl TranslatedStream {
    pub(crate) fn new(inner: Body, mapper: Box<dyn StreamMapper>, stamp: Stamp) -> Self {
        TranslatedStream {
            inner,
            decoder: Decoder::with_limit(MAX_EVENT_BYTES),
            mapper,
            chunks: ChunkWriter::new(&stamp, CHUNK_OBJECT),
            stamp,
            events: Vec::new(),
            values: Vec::new(),
            pending: VecDeque::new(),
            finished: false,
            error: None,
            secret: None,
        }
    }

    /// Masks `provider`'s key out of the errors this stream reports.
    pub(crate) fn redacting(mut self, provider: Arc<Provider>) -> Self {
        self.secret = Some(provider);
        self
    }

    fn emit_values(&mut self) {
        for mut v in self.values.drain(..) {
            stamp(&mut v, &self.stamp, CHUNK_OBJECT);
            self.pending.push_back(sse_event(&v));
        }
    }

    fn finish(&mut self) {
        self.pending.push_back(Bytes::from_static(DONE_EVENT));
        self.finished = true;
    }

    fn truncated(&self, detail: &str) -> BoxError {
        Box::new(UpstreamError {
            kind: UpstreamErrorKind::Broken,
            provider: self.stamp.provider.as_str().into(),
            detail: detail.to_owned(),
        })
    }
}

impl HttpBody for TranslatedStream {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if let Some(b) = this.pending.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(b))));
            }
            if this.finished {
                let secret = this
                    .secret
                    .as_ref()
                    .and_then(|p| p.api_key.as_ref())
                    .map(|k| k.expose())
                    .filter(|s| !s.is_empty());
                return Poll::Ready(this.error.take().map(|e| {
                    Err(match secret {
                        Some(s) => super::redact_box(e, s),
                        None => e,
                    })
                }));
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => {
                    this.finished = true;
                    this.error = Some(e);
                }
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    this.decoder.feed(&data, &mut this.events);
                    if this.decoder.overflowed() {
                        this.finished = true;
                        this.error = Some(Box::new(UpstreamError {
                            kind: UpstreamErrorKind::Invalid,
                            provider: this.stamp.provider.as_str().into(),
                            detail: format!("an SSE event exceeded {MAX_EVENT_BYTES} bytes"),
                        }));
                        continue;
                    }
                    let events = std::mem::take(&mut this.events);
                    for ev in &events {
                        let mapped = this.mapper.on_event_framed(
                            ev,
                            &mut this.chunks,
                            &mut this.values,
                            &mut this.pending,
                        );
                        match mapped {
                            Ok(done) => {
                                this.emit_values();
                                if done {
                                    this.finish();
                                    break;
                                }
                            }
                            Err(e) => {
                                // Content mapped before the error still goes out first.
                                this.emit_values();
                                this.finished = true;
                                this.error = Some(e);
                                break;
                            }
                        }
                    }
                    this.events = events;
                    // Read: their strings go back to the decoder for the next events.
                    this.decoder.recycle(&mut this.events);
                }
                Poll::Ready(None) => {
                    let result = this.mapper.on_end(&mut this.values);
                    this.emit_values();
                    match result {
                        Ok(true) => this.finish(),
                        Ok(false) => {
                            this.finished = true;
                            this.error =
                                Some(this.truncated("the stream ended before it was complete"));
                        }
                        Err(e) => {
                            this.finished = true;
                            this.error = Some(e);
                        }
                    }
                }
            }
        }
    }
}
