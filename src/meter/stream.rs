//! Metering a stream as it passes: never buffered, usage read from the events, exactly one
//! usage chunk (with `cost`) emitted last before `[DONE]`.

use super::cost::usage_json;
use super::layer::Accounting;
use super::usage::Usage;
use crate::BoxError;
use crate::body::{Body, DONE_EVENT, sse_event};
use bytes::Bytes;
use http_body::Frame;
use memchr::memmem::Finder;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

pub(crate) struct MeterStream {
    inner: Body,
    acc: Accounting,
    usage: Option<Usage>,
    completion_chars: u64,
    finish_reason: Option<String>,
    native_finish_reason: Option<String>,
    out: VecDeque<Bytes>,
    finished: bool,
}

impl MeterStream {
    pub(crate) fn new(inner: Body, acc: Accounting) -> Self {
        MeterStream {
            inner,
            acc,
            usage: None,
            completion_chars: 0,
            finish_reason: None,
            native_finish_reason: None,
            out: VecDeque::new(),
            finished: false,
        }
    }

    fn usage_or_estimate(&self) -> Usage {
        self.usage
            .unwrap_or_else(|| Usage::estimate(self.acc.prompt_chars, self.completion_chars))
    }

    /// Handles one data event; returns the frame to pass on, if any.
    fn on_event(&mut self, frame: Bytes) -> Option<Bytes> {
        let data = frame.strip_prefix(b"data: ").unwrap_or(&frame);
        let f = finders();
        let chars = [&f.content, &f.reasoning, &f.arguments]
            .iter()
            .map(|k| string_len_after(data, k))
            .sum::<u64>();
        if chars > 0 && self.acc.first_content.is_none() {
            self.acc.first_content = Some(std::time::Instant::now());
        }
        self.completion_chars += chars;
        if let Some(r) = string_after(data, &f.finish_reason) {
            self.finish_reason = Some(r);
        }
        if let Some(r) = string_after(data, &f.native_finish_reason) {
            self.native_finish_reason = Some(r);
        }
        if f.usage.find(data).is_none() {
            return Some(frame);
        }
        let data = data.trim_ascii_end();
        if !data.starts_with(b"{") {
            return Some(frame); // not a chunk object: no usage in it
        }
        // Only `usage` and whether `choices` is empty matter: read them from borrowed raw
        // values instead of building the chunk's `Value` (some providers put `"usage":null` in
        // every chunk). A chunk the probe cannot read (repeated keys) is looked at as a `Value`.
        let (usage, empty) = match serde_json::from_slice::<UsageProbe<'_>>(data) {
            Ok(p) => (
                // Text that does not parse is no usage, as when it was read into a `Value`.
                p.usage
                    .and_then(|u| Usage::from_openai_json(u.get()).ok().flatten()),
                p.choices.is_none_or(|c| is_empty_array(c.get())),
            ),
            Err(_) => {
                let Ok(v) = serde_json::from_slice::<Value>(data) else {
                    return Some(frame);
                };
                let empty = v
                    .get("choices")
                    .and_then(Value::as_array)
                    .is_none_or(Vec::is_empty);
                (v.get("usage").and_then(Usage::from_openai), empty)
            }
        };
        let Some(u) = usage else {
            return Some(frame);
        };
        self.usage = Some(u);
        if empty {
            return None; // re-emitted with its cost just before [DONE]
        }
        // Usage on a chunk with choices (rare): the choices go on without it.
        let Ok(mut v) = serde_json::from_slice::<Value>(data) else {
            return Some(frame);
        };
        if let Some(o) = v.as_object_mut() {
            o.remove("usage");
        }
        Some(sse_event(&v))
    }

    fn usage_chunk(&mut self) -> Bytes {
        let usage = self.usage_or_estimate();
        let finish = self.finish_reason.clone();
        let native = self.native_finish_reason.clone();
        // Read before `finish` moves the record into the ledger.
        let r = &self.acc.record;
        let head = json!({
            "id": r.id,
            "object": "chat.completion.chunk",
            "created": r.created_at / 1000,
            "model": r.model,
            "provider": r.provider_name,
            "choices": [],
        });
        let cost = self
            .acc
            .finish(&usage, finish.as_deref(), native.as_deref(), false);
        let mut u = usage_json(&usage, &cost, false);
        if usage.estimated {
            u["estimated"] = Value::Bool(true);
        }
        let mut event = head;
        event["usage"] = u;
        sse_event(&event)
    }
}

impl http_body::Body for MeterStream {
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
            if this.finished {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    if data.as_ref() == DONE_EVENT {
                        let chunk = this.usage_chunk();
                        this.out.push_back(chunk);
                        this.out.push_back(data);
                        this.finished = true;
                    } else if let Some(pass) = this.on_event(data) {
                        return Poll::Ready(Some(Ok(Frame::data(pass))));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    this.finished = true;
                    // Before any content the fallback layer tries the next candidate: this
                    // attempt served nothing and is not recorded. After it, the request was
                    // served in part: recorded once, billed under insurance.
                    if this.acc.first_content.is_some() {
                        let usage = this.usage_or_estimate();
                        this.acc.finish(&usage, Some("error"), Some("error"), false);
                    }
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => {
                    let usage = this.usage_or_estimate();
                    let finish = this.finish_reason.clone();
                    this.acc.finish(&usage, finish.as_deref(), None, false);
                    this.finished = true;
                }
            }
        }
    }
}

impl Drop for MeterStream {
    fn drop(&mut self) {
        if !self.finished && self.acc.first_content.is_some() {
            // The client went away mid-stream: the upstream is cancelled with this body.
            let usage = self.usage_or_estimate();
            self.acc.finish(&usage, None, None, true);
        }
    }
}

/// The two fields of a usage chunk the meter reads.
#[derive(Deserialize)]
struct UsageProbe<'a> {
    #[serde(borrow)]
    usage: Option<&'a RawValue>,
    #[serde(borrow)]
    choices: Option<&'a RawValue>,
}

/// `choices` counts as empty unless it is an array with an element (like `as_array` + `is_empty`).
fn is_empty_array(raw: &str) -> bool {
    match raw.strip_prefix('[') {
        Some(inner) => inner.trim_start().starts_with(']'),
        None => true,
    }
}

/// Substring searchers built once: every event of every stream is scanned with them.
struct Finders {
    content: Finder<'static>,
    reasoning: Finder<'static>,
    arguments: Finder<'static>,
    finish_reason: Finder<'static>,
    native_finish_reason: Finder<'static>,
    usage: Finder<'static>,
}

fn finders() -> &'static Finders {
    static FINDERS: OnceLock<Finders> = OnceLock::new();
    FINDERS.get_or_init(|| Finders {
        content: Finder::new(b"\"content\":\""),
        reasoning: Finder::new(b"\"reasoning\":\""),
        arguments: Finder::new(b"\"arguments\":\""),
        finish_reason: Finder::new(b"\"finish_reason\":\""),
        native_finish_reason: Finder::new(b"\"native_finish_reason\":\""),
        usage: Finder::new(b"\"usage\""),
    })
}

/// Length of the JSON string value following `key` (escapes counted as one character each).
fn string_len_after(data: &[u8], key: &Finder<'_>) -> u64 {
    let mut total = 0;
    let mut rest = data;
    while let Some(i) = key.find(rest) {
        rest = &rest[i + key.needle().len()..];
        let mut n = 0u64;
        let mut j = 0;
        while j < rest.len() && rest[j] != b'"' {
            j += if rest[j] == b'\\' { 2 } else { 1 };
            n += 1;
        }
        total += n;
        rest = &rest[j.min(rest.len())..];
    }
    total
}

/// The JSON string value following `key`, if short and plain.
fn string_after(data: &[u8], key: &Finder<'_>) -> Option<String> {
    let i = key.find(data)?;
    let rest = &data[i + key.needle().len()..];
    let end = rest.iter().position(|&b| b == b'"')?;
    std::str::from_utf8(&rest[..end]).ok().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounting() -> Accounting {
        Accounting {
            sink: None,
            health: None,
            record: Default::default(),
            pricing: Default::default(),
            prompt_chars: 0,
            hold: None,
            started: std::time::Instant::now(),
            attempt_started: std::time::Instant::now(),
            first_content: None,
            target_key: String::new(),
        }
    }

    #[test]
    fn reads_usage_without_the_chunk_value() {
        let frame = |data: &str| Bytes::from(format!("data: {data}\n\n"));
        let usage = r#""usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}"#;
        for (data, passes, read) in [
            (format!(r#"{{"id":"x","choices":[],{usage}}}"#), false, true),
            (format!(r#"{{"id":"x",{usage}}}"#), false, true),
            (
                format!(r#"{{"choices":[ ],{usage},"id":"x"}}"#),
                false,
                true,
            ),
            (
                format!(r#"{{"choices":[{{"delta":{{}}}}],{usage}}}"#),
                true,
                true,
            ),
            (format!(r#"{{"choices":[],{usage},{usage}}}"#), false, true),
            (
                r#"{"choices":[{"delta":{"content":"x"}}],"usage":null}"#.into(),
                true,
                false,
            ),
            (format!(r#"{{"choices":[],{usage}"#), true, false),
            (
                format!(r#"[{{"prompt_tokens":1}},[],{usage}]"#),
                true,
                false,
            ),
        ] {
            let mut m = MeterStream::new(crate::body::empty(), accounting());
            let out = m.on_event(frame(&data));
            assert_eq!(out.is_some(), passes, "{data}");
            assert_eq!(m.usage.is_some(), read, "{data}");
            if let (Some(out), true) = (out, read) {
                let v: Value = serde_json::from_slice(&out[6..]).expect("json");
                assert!(
                    v.get("usage").is_none() && v["choices"][0].is_object(),
                    "{v}"
                );
            }
        }
    }

    #[test]
    fn scans_strings_and_finish_reasons() {
        let d = br#"{"choices":[{"delta":{"content":"He said \"hi\""},"finish_reason":"stop"}]}"#;
        assert_eq!(string_len_after(d, &finders().content), 12);
        assert_eq!(
            string_after(d, &finders().finish_reason).as_deref(),
            Some("stop")
        );
    }
}
