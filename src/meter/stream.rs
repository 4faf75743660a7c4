//! Metering a stream as it passes: never buffered, usage read from the events, exactly one
//! usage chunk (with `cost`) emitted last before `[DONE]`.

use super::accounting::Accounting;
use super::report::UsageReport;
use super::usage::Usage;
use crate::BoxError;
use crate::body::{Body, DONE_EVENT, sse_event};
use bytes::Bytes;
use http_body::Frame;
use memchr::memmem::Finder;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::VecDeque;
use std::future::Future;
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
        let seen = scan(data);
        if seen.chars > 0 && self.acc.first_content.is_none() {
            self.acc.first_content = Some(std::time::Instant::now());
        }
        self.completion_chars += seen.chars;
        if let Some(r) = seen.finish_reason {
            self.finish_reason = Some(r.to_owned());
        }
        if let Some(r) = seen.native_finish_reason {
            self.native_finish_reason = Some(r.to_owned());
        }
        if !seen.usage {
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
        // The stream ends here: the reasons move into the record.
        let finish = self.finish_reason.take();
        let native = self.native_finish_reason.take();
        // Written before `finish` moves the record into the ledger.
        let mut out = Vec::with_capacity(640);
        usage_chunk_head(&mut out, &self.acc.record);
        let cost = self.acc.finish(&usage, finish, native, false);
        out.extend_from_slice(UsageReport::new(&usage, &cost, false).to_json().as_bytes());
        out.extend_from_slice(b"}\n\n");
        Bytes::from(out)
    }
}

/// `data: {` and the usage chunk's entries before `usage`, in the order (alphabetical) a
/// `Value` of the same chunk serialises them, so the bytes are the same.
fn usage_chunk_head(out: &mut Vec<u8>, r: &crate::ledger::GenerationRecord) {
    use std::io::Write;
    let _ = write!(
        out,
        "data: {{\"choices\":[],\"created\":{}",
        r.created_at / 1000
    );
    // Writing strings into a `Vec` cannot fail.
    for (key, value) in [("id", &r.id), ("model", &r.model)] {
        let _ = write!(out, ",\"{key}\":");
        let _ = serde_json::to_writer(&mut *out, value);
    }
    out.extend_from_slice(b",\"object\":\"chat.completion.chunk\",\"provider\":");
    let _ = serde_json::to_writer(&mut *out, &r.provider_name);
    out.extend_from_slice(b",\"usage\":");
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
            // The stream's last frames (usage chunk, `[DONE]`) wait for the record's commit.
            if let Some(wait) = &mut this.acc.commit {
                std::task::ready!(Pin::new(wait).poll(cx));
                this.acc.commit = None;
            }
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
                        let error = || Some("error".to_owned());
                        this.acc.finish(&usage, error(), error(), false);
                        // The answer is broken off: there is no end to hold back.
                        this.acc.commit = None;
                    }
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => {
                    let usage = this.usage_or_estimate();
                    let finish = this.finish_reason.take();
                    this.acc.finish(&usage, finish, None, false);
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

/// What the meter reads of one chunk (see [`scan`]).
#[derive(Debug, Default, PartialEq)]
struct Seen<'a> {
    /// Characters of every `content`, `reasoning` and `arguments` string (an escape counts as
    /// its backslash plus one character: `\"` is one, `\u00e9` five).
    chars: u64,
    /// The first `finish_reason` string, when short and plain (up to the next quote, UTF-8).
    finish_reason: Option<&'a str>,
    /// The same for `native_finish_reason`.
    native_finish_reason: Option<&'a str>,
    /// `"usage"` occurs.
    usage: bool,
}

/// Substring searchers built once: every event of every stream is scanned with them.
struct Finders {
    /// The end of a key whose value is a string: `"content":"…` is found at its `":"`.
    string_key_end: Finder<'static>,
    usage: Finder<'static>,
}

fn finders() -> &'static Finders {
    static FINDERS: OnceLock<Finders> = OnceLock::new();
    FINDERS.get_or_init(|| Finders {
        string_key_end: Finder::new(b"\":\""),
        usage: Finder::new(b"\"usage\""),
    })
}

/// Reads a chunk in two passes where a substring search per key read it six times: one for
/// the `":"` that ends every key with a string value (the key is then read backwards: a chunk
/// has a handful), one for `"usage"`. A counted string is skipped whole.
///
/// In valid JSON `":"` cannot occur inside a string (its quotes are escaped there), so this
/// finds exactly the keys the six searches found.
fn scan(data: &[u8]) -> Seen<'_> {
    let f = finders();
    let mut seen = Seen {
        usage: f.usage.find(data).is_some(),
        ..Seen::default()
    };
    let (mut finish_looked, mut native_looked) = (false, false);
    let mut at = 0;
    while let Some(i) = f.string_key_end.find(&data[at..]) {
        let (key, value) = (&data[..at + i], &data[at + i + 3..]);
        at += i + 1;
        if [&b"\"content"[..], b"\"reasoning", b"\"arguments"]
            .iter()
            .any(|k| key.ends_with(k))
        {
            let (n, end) = string_chars(value);
            seen.chars += n;
            // Resume at the closing quote, as a fresh search would have.
            at += 2 + end;
        } else if key.ends_with(b"\"native_finish_reason") {
            if !native_looked {
                native_looked = true;
                seen.native_finish_reason = plain_string(value);
            }
        } else if key.ends_with(b"\"finish_reason") && !finish_looked {
            finish_looked = true;
            seen.finish_reason = plain_string(value);
        }
    }
    seen
}

/// Characters of the JSON string that starts `value` (after its opening quote) and the offset
/// of its closing quote (or the end).
fn string_chars(value: &[u8]) -> (u64, usize) {
    let (mut n, mut j) = (0u64, 0);
    while j < value.len() && value[j] != b'"' {
        j += if value[j] == b'\\' { 2 } else { 1 };
        n += 1;
    }
    (n, j.min(value.len()))
}

/// The string that starts `value`, up to the next quote, when it is UTF-8.
fn plain_string(value: &[u8]) -> Option<&str> {
    let end = memchr::memchr(b'"', value)?;
    std::str::from_utf8(&value[..end]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn accounting() -> Accounting {
        Accounting {
            shared: Default::default(),
            record: Default::default(),
            target: None,
            given: None,
            prompt_chars: 0,
            ctx: None,
            started: std::time::Instant::now(),
            attempt_started: std::time::Instant::now(),
            first_content: None,
            tap: None,
            commit: None,
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
        let seen = scan(d);
        assert_eq!(seen.chars, 12);
        assert_eq!(seen.finish_reason, Some("stop"));
        assert_eq!(seen.native_finish_reason, None);
        assert!(!seen.usage);
    }

    /// The usage chunk as it was built before its bytes were written directly: a `Value`.
    fn usage_chunk_as_value(r: &crate::ledger::GenerationRecord, report: &UsageReport) -> Bytes {
        let mut event = serde_json::json!({
            "id": r.id,
            "object": "chat.completion.chunk",
            "created": r.created_at / 1000,
            "model": r.model,
            "provider": r.provider_name,
            "choices": [],
        });
        event["usage"] = serde_json::to_value(report).expect("a report serialises");
        sse_event(&event)
    }

    proptest::proptest! {
        #[test]
        fn the_usage_chunk_is_written_as_its_value_serialises(
            id in any::<String>(),
            model in "[a-z/:\\-\"\\\\ ✓]{0,24}",
            provider in any::<String>(),
            created_at in 0i64..4_000_000_000_000,
            tokens in proptest::array::uniform3(0u64..1_000_000),
            estimated in proptest::bool::ANY,
            cost in 0i64..10_000_000,
        ) {
            let record = crate::ledger::GenerationRecord {
                id: id.into(),
                model: model.into(),
                provider_name: provider.into(),
                created_at,
                ..Default::default()
            };
            let usage = Usage {
                prompt_tokens: tokens[0],
                completion_tokens: tokens[1],
                cached_tokens: tokens[2].min(tokens[0]),
                estimated,
                ..Usage::default()
            };
            let priced = crate::meter::cost::Cost {
                total: crate::catalog::Usd::from_picodollars(cost * 1_000_003),
                prompt: crate::catalog::Usd::from_picodollars(cost * 7),
                ..Default::default()
            };
            let report = UsageReport::new(&usage, &priced, false);
            let mut out = Vec::new();
            usage_chunk_head(&mut out, &record);
            out.extend_from_slice(report.to_json().as_bytes());
            out.extend_from_slice(b"}\n\n");
            proptest::prop_assert_eq!(
                String::from_utf8(out).expect("UTF-8"),
                String::from_utf8(usage_chunk_as_value(&record, &report).to_vec()).expect("UTF-8")
            );
        }
    }

    /// The six substring searches [`scan`] replaced, kept as its reference.
    fn searched(data: &[u8]) -> Seen<'_> {
        use memchr::memmem::Finder;
        let len_after = |key: &str| {
            let f = Finder::new(key.as_bytes());
            let (mut total, mut rest) = (0, data);
            while let Some(i) = f.find(rest) {
                rest = &rest[i + key.len()..];
                let (n, end) = string_chars(rest);
                total += n;
                rest = &rest[end..];
            }
            total
        };
        let first = |key: &str| {
            let i = Finder::new(key.as_bytes()).find(data)?;
            plain_string(&data[i + key.len()..])
        };
        Seen {
            chars: len_after("\"content\":\"")
                + len_after("\"reasoning\":\"")
                + len_after("\"arguments\":\""),
            finish_reason: first("\"finish_reason\":\""),
            native_finish_reason: first("\"native_finish_reason\":\""),
            usage: Finder::new(b"\"usage\"").find(data).is_some(),
        }
    }

    /// A JSON string literal of arbitrary text, escapes and all.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            "[a-z \"\\\\/]{0,12}",
            // Colons beside quotes inside strings: the shape of a key's end, escaped.
            "[a:\"\\\\ ]{0,12}",
            any::<String>(),
            Just("content\":\"usage\" \"finish_reason\":\"x".to_owned()),
        ]
        .prop_map(|t| serde_json::to_string(&t).expect("a string serialises"))
    }

    /// One entry of a chunk-like object, keys the meter reads among others.
    fn entry() -> impl Strategy<Value = String> {
        let keys = prop::sample::select(vec![
            "content",
            "reasoning",
            "arguments",
            "finish_reason",
            "native_finish_reason",
            "usage",
            "id",
            "delta",
            "refusal",
        ]);
        (keys, text(), 0..4u8).prop_map(|(k, t, shape)| match shape {
            0 => format!("\"{k}\":{t}"),
            1 => format!("\"{k}\":null"),
            2 => format!("\"{k}\":{{\"content\":{t},\"n\":1}}"),
            _ => format!("\"{k}\":[{t},{{\"arguments\":{t}}}]"),
        })
    }

    proptest::proptest! {
        #[test]
        fn two_passes_read_what_six_searches_read(
            entries in proptest::collection::vec(entry(), 0..8),
            pretty in proptest::bool::ANY,
        ) {
            let sep = if pretty { ", " } else { "," };
            let data = format!("{{{}}}", entries.join(sep));
            proptest::prop_assert_eq!(scan(data.as_bytes()), searched(data.as_bytes()), "{}", data);
        }
    }
}
