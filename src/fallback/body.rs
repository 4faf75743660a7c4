//! Stream bodies of the fallback layer: the committed-stream guard and the keep-alive body.

use super::metadata::MetadataSource;
use super::outcome::{ChunkStamp, Outcome};
use crate::BoxError;
use crate::body::{self as b, Body, DONE_EVENT, sse_event};
use crate::error::GatewayError;
use crate::translate::chunk_has_content;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{HeaderValue, Response, header};
use http_body::Frame;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// The SSE comment sent while no candidate has produced content yet.
pub(crate) const KEEPALIVE_COMMENT: &[u8] = b": OPENROUTER PROCESSING\n\n";

/// The payload of a `data:` event frame, if the frame is one.
fn event_data(frame: &[u8]) -> Option<&[u8]> {
    let rest = frame.strip_prefix(b"data:")?;
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    Some(rest.trim_ascii_end())
}

/// True for `data: [DONE]`.
pub(crate) fn is_done_event(frame: &[u8]) -> bool {
    event_data(frame) == Some(b"[DONE]".as_slice())
}

/// True for a chunk carrying content (see [`chunk_has_content`]).
pub(crate) fn is_content_event(frame: &[u8]) -> bool {
    match event_data(frame) {
        Some(data) if data != b"[DONE]" => match probe::has_content(data) {
            Some(content) => content,
            // A shape the probe does not read (repeated keys): decide on the `Value`.
            None => serde_json::from_slice::<Value>(data).is_ok_and(|v| chunk_has_content(&v)),
        },
        _ => false,
    }
}

/// [`chunk_has_content`] read with the splicer's JSON cursor instead of from the chunk's
/// `Value`: the attempt loop asks it of every frame until the first content.
mod probe {
    use crate::json_scan::{Cursor, once};

    /// Whether the chunk carries content; `None` when it is not JSON this can read (not an
    /// object, malformed, escaped or repeated keys), which the `Value` path then decides.
    /// The whole chunk is validated, as a parse would.
    pub(super) fn has_content(data: &[u8]) -> Option<bool> {
        if !data.starts_with(b"{") {
            return None;
        }
        let mut c = Cursor::new(std::str::from_utf8(data).ok()?, false);
        c.begin_object()?;
        let (mut first, mut seen, mut content) = (true, false, false);
        while let Some(key) = c.next_key(&mut first)? {
            if key == "choices" && !std::mem::replace(&mut seen, true) {
                content = choices(&mut c)?;
            } else if key == "choices" {
                return None;
            } else {
                c.value()?;
            }
        }
        c.end()?;
        Some(content)
    }

    /// Reads the `choices` value (any JSON); true when it is an array and one of its choice
    /// objects has content. Every element is read to its end, content found or not.
    fn choices(c: &mut Cursor<'_>) -> Option<bool> {
        if c.peek_token()? != b'[' {
            c.value()?;
            return Some(false);
        }
        c.begin_array()?;
        let (mut first, mut content) = (true, false);
        while c.next_element(&mut first)? {
            if c.peek_token()? == b'{' {
                content |= choice(c)?;
            } else {
                c.value()?;
            }
        }
        Some(content)
    }

    fn choice(c: &mut Cursor<'_>) -> Option<bool> {
        c.begin_object()?;
        let (mut first, mut seen, mut content) = (true, 0u8, false);
        while let Some(key) = c.next_key(&mut first)? {
            match key {
                "text" => {
                    once(&mut seen, 1)?;
                    content |= non_empty_str(c.value()?);
                }
                "delta" => {
                    once(&mut seen, 2)?;
                    if c.peek_token()? == b'{' {
                        content |= delta(c)?;
                    } else {
                        c.value()?;
                    }
                }
                _ => {
                    c.value()?;
                }
            }
        }
        Some(content)
    }

    fn delta(c: &mut Cursor<'_>) -> Option<bool> {
        c.begin_object()?;
        let (mut first, mut seen, mut content) = (true, 0u8, false);
        while let Some(key) = c.next_key(&mut first)? {
            let (bit, test): (u8, fn(&str) -> bool) = match key {
                "content" => (1, non_empty_str),
                "reasoning" => (2, non_empty_str),
                "refusal" => (4, non_empty_str),
                "tool_calls" => (8, non_empty_arr),
                "reasoning_details" => (16, non_empty_arr),
                "audio" => (32, |raw| raw != "null"),
                _ => (0, |_| false),
            };
            if bit != 0 {
                once(&mut seen, bit)?;
            }
            content |= test(c.value()?);
        }
        Some(content)
    }

    fn non_empty_str(raw: &str) -> bool {
        raw.starts_with('"') && raw != "\"\""
    }

    fn non_empty_arr(raw: &str) -> bool {
        raw.strip_prefix('[')
            .is_some_and(|inner| !inner.trim_start().starts_with(']'))
    }
}

/// The final error chunk of a stream (SPEC 7.3) followed by `[DONE]`.
pub(crate) fn error_events(stamp: &ChunkStamp, error: &GatewayError) -> [Bytes; 2] {
    let chunk = json!({
        "id": stamp.id,
        "object": "chat.completion.chunk",
        "created": crate::translate::now_secs(),
        "model": stamp.model,
        "provider": stamp.provider,
        "error": {
            "code": error.status.as_u16(),
            "message": error.message,
            "metadata": {"error_type": error.error_type, "provider_name": stamp.provider},
        },
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error", "native_finish_reason": "error"}],
    });
    [sse_event(&chunk), Bytes::from_static(DONE_EVENT)]
}

pin_project_lite::pin_project! {
    /// A committed stream: passes frames through; turns an upstream failure into an error chunk
    /// plus `[DONE]`; with metadata requested, adds `openrouter_metadata` to the last chunk.
    pub(crate) struct StreamGuard {
        #[pin]
        inner: Body,
        stamp: ChunkStamp,
        meta: Option<MetadataSource>,
        // With metadata on, each frame is held until the next one shows whether it was last.
        held: Option<Bytes>,
        out: VecDeque<Bytes>,
        ended: bool,
        // Whether `[DONE]` went by: a stream that ends without it gets an error chunk, whatever
        // the layers inside did, so no stream ever ends as a silently truncated 200.
        saw_done: bool,
    }
}

impl StreamGuard {
    pub(crate) fn new(inner: Body, stamp: ChunkStamp, meta: Option<MetadataSource>) -> Self {
        StreamGuard {
            inner,
            stamp,
            meta,
            held: None,
            out: VecDeque::new(),
            ended: false,
            saw_done: false,
        }
    }
}

impl http_body::Body for StreamGuard {
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
            if *this.ended {
                return Poll::Ready(None);
            }
            match this.inner.as_mut().poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    if is_done_event(&data) {
                        *this.saw_done = true;
                    }
                    let Some(meta) = this.meta.as_ref() else {
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    };
                    if is_done_event(&data) {
                        if let Some(last) = this.held.take() {
                            this.out
                                .push_back(super::metadata::attach_to_event(&last, meta));
                        }
                        this.out.push_back(data);
                    } else if let Some(prev) = this.held.replace(data) {
                        this.out.push_back(prev);
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    if let Some(prev) = this.held.take() {
                        this.out.push_back(prev);
                    }
                    let error = GatewayError::from_box(&e);
                    this.out.extend(error_events(this.stamp, &error));
                    *this.ended = true;
                }
                Poll::Ready(None) => {
                    if let Some(prev) = this.held.take() {
                        this.out.push_back(prev);
                    }
                    if !*this.saw_done {
                        let error = GatewayError::new(
                            http::StatusCode::BAD_GATEWAY,
                            "provider_unavailable",
                            "the upstream stream ended before it was complete",
                        );
                        this.out.extend(error_events(this.stamp, &error));
                    }
                    *this.ended = true;
                }
            }
        }
    }
}

/// A 200 event stream sent before any candidate committed: keep-alive comments until the
/// attempt loop ends, then its stream — or its error as a final chunk.
pub(crate) fn keepalive_response(
    run: BoxFuture<'static, Outcome>,
    every: Duration,
) -> Response<Body> {
    let body = KeepaliveBody {
        run: Some(run),
        timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
        every,
        inner: None,
        out: VecDeque::new(),
    };
    let mut resp = Response::new(b::boxed_as_is(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

struct KeepaliveBody {
    run: Option<BoxFuture<'static, Outcome>>,
    timer: Pin<Box<tokio::time::Sleep>>,
    every: Duration,
    inner: Option<Body>,
    out: VecDeque<Bytes>,
}

impl http_body::Body for KeepaliveBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if let Some(b) = this.out.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(b))));
            }
            if let Some(inner) = this.inner.as_mut() {
                return Pin::new(inner).poll_frame(cx);
            }
            let Some(run) = this.run.as_mut() else {
                return Poll::Ready(None);
            };
            match run.as_mut().poll(cx) {
                Poll::Ready(Outcome::Committed(resp)) => {
                    this.run = None;
                    this.inner = Some(resp.into_body());
                }
                Poll::Ready(Outcome::Failed(f)) => {
                    this.run = None;
                    this.out.extend(error_events(&f.stamp, &f.error));
                }
                Poll::Pending => {
                    if this.timer.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    let next = tokio::time::Instant::now() + this.every;
                    this.timer.as_mut().reset(next);
                    this.out.push_back(Bytes::from_static(KEEPALIVE_COMMENT));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn by_value(data: &str) -> bool {
        serde_json::from_str::<Value>(data).is_ok_and(|v| chunk_has_content(&v))
    }

    #[test]
    fn content_probe_agrees_with_the_value() {
        for (data, content) in [
            (
                r#"{"choices":[{"delta":{"role":"assistant","content":""}}]}"#,
                false,
            ),
            (r#"{"choices":[{"delta":{"content":"Hi"}}]}"#, true),
            (r#"{"choices":[{"delta":{"content":"\u0000"}}]}"#, true),
            (r#"{"choices":[{"text":"Hi"}]}"#, true),
            (r#"{"choices":[{"delta":{"tool_calls":[ ]}}]}"#, false),
            (
                r#"{"choices":[{"delta":{"tool_calls":[{"index":0}]}}]}"#,
                true,
            ),
            (
                r#"{"choices":[{"delta":{"reasoning_details":[{}]}}]}"#,
                true,
            ),
            (r#"{"choices":[{"delta":{"audio":null}}]}"#, false),
            (r#"{"choices":[{"delta":{"audio":{"id":"a"}}}]}"#, true),
            (
                r#"{"choices":[{"delta":{"content":7}},{"delta":{"refusal":"no"}}]}"#,
                true,
            ),
            (
                r#"{"choices":[1,[{"text":"x"}],{"delta":[{"content":"x"}]}]}"#,
                false,
            ),
            (r#"{"choices":{"0":{"text":"x"}}}"#, false),
            (r#"{"choices":[],"usage":{}}"#, false),
            (
                r#"{"choices":[{"delta":{"content":"a","content":""}}]}"#,
                false,
            ),
            (r#"[{"choices":[{"text":"x"}]}]"#, false),
            (r#"{"choices":[{"delta":{"content":"x"}}]"#, false),
        ] {
            assert_eq!(by_value(data), content, "{data}");
            assert_eq!(
                is_content_event(format!("data: {data}\n\n").as_bytes()),
                content,
                "{data}"
            );
        }
    }

    proptest! {
        #[test]
        fn content_probe_matches_the_value_on_mangled_chunks(
            content in proptest::option::of(prop_oneof![Just(String::new()), "[a-z\"]{0,3}"]),
            extra in proptest::option::of(("[a-z_]{1,12}", any::<String>())),
            pretty in any::<bool>(),
            at in any::<prop::sample::Index>(),
            edit in crate::json_scan::tests::edit(),
            delete in any::<bool>(),
        ) {
            let mut delta = serde_json::Map::new();
            if let Some(c) = content { delta.insert("content".into(), c.into()); }
            if let Some((k, v)) = extra { delta.insert(k, v.into()); }
            let chunk = json!({"id": "x", "choices": [{"index": 0, "delta": delta}]});
            let text = if pretty {
                serde_json::to_string_pretty(&chunk).expect("json")
            } else {
                chunk.to_string()
            };
            let data = crate::json_scan::tests::mutate(text, at, edit, delete);
            let frame = format!("data: {data}\n\n");
            // What the frame's data is once the event is read (trailing whitespace trimmed).
            let data = std::str::from_utf8(event_data(frame.as_bytes()).expect("data")).expect("utf-8");
            prop_assert_eq!(is_content_event(frame.as_bytes()), data != "[DONE]" && by_value(data), "{:?}", data);
        }
    }

    proptest! {
        #[test]
        fn content_probe_matches_chunk_has_content(
            content in proptest::option::of(prop_oneof![Just(String::new()), "[a-z\"]{0,3}"]),
            tools in proptest::option::of(0usize..2),
            audio in any::<bool>(),
            text in proptest::option::of("[a-z]{0,2}"),
        ) {
            let mut delta = serde_json::Map::new();
            if let Some(c) = content { delta.insert("content".into(), c.into()); }
            if let Some(n) = tools { delta.insert("tool_calls".into(), vec![json!({"index": 0}); n].into()); }
            if audio { delta.insert("audio".into(), Value::Null); }
            let mut choice = json!({"index": 0, "delta": delta});
            if let Some(t) = text { choice["text"] = t.into(); }
            let data = json!({"choices": [choice]}).to_string();
            prop_assert_eq!(is_content_event(format!("data: {data}\n\n").as_bytes()), by_value(&data));
        }
    }
}
