//! Stamping an OpenAI-compatible stream chunk without building a `Value` tree.
//!
//! An OpenAI chunk only needs the gateway's `id`, `model`, `provider` and `object` written over
//! the upstream's, `created` filled in when missing, and each choice's `finish_reason` normalised
//! (see [`super::normalize::stamp`]); everything else — the content, the bulk of the bytes — is
//! passed on as the upstream wrote it. [`ChunkWriter::splice`] does that in one validating pass:
//! a JSON cursor ([`crate::json_scan`]) walks the chunk, hands over the raw text of the values that
//! stay, and those are copied next to the gateway's fields, escaped once per stream.
//!
//! Whole non-streaming responses go through the same pass ([`splice_object`], see
//! [`super::response`]), without the compactness check, and note the first choice's finish
//! reasons for meter ([`FirstChoice`]).
//!
//! The result parses to the same JSON value as the stamped `Value` (keys may come in another
//! order). Anything unusual — whitespace between tokens (the layers outside scan compact JSON),
//! escapes in keys, a non-object chunk or choice, a repeated key the stamp rewrites (or
//! `usage`), an `error` object, malformed JSON — makes `splice` answer `None`, and the caller
//! takes the `Value` path, which also reports the errors exactly as before.

use super::normalize::{Stamp, normalize_finish_reason};
pub(crate) use crate::deferred_json::FirstChoice;
use crate::json_scan::{Cursor, once};
use bytes::{Bytes, BytesMut};
use std::borrow::Cow;

/// Room for a stream's frames, taken a block at a time (see [`ChunkWriter::splice`]).
const FRAME_BLOCK: usize = 4096;

/// The gateway's fields of every chunk of one stream, serialised once, and the buffers the
/// stream's frames are written in.
#[derive(Debug)]
pub(crate) struct ChunkWriter {
    /// `data: {"id":…,"object":…,"model":…,"provider":…` — the start of every event.
    head: Vec<u8>,
    strip_reasoning: bool,
    /// Where the splicer writes, reused from chunk to chunk.
    scratch: Vec<u8>,
    /// Where frames are cut from. A frame of its own `Vec` would cost two allocations (the
    /// vector, then the shared header `Bytes` needs for a vector with spare room); frames cut
    /// off one block share it, and once they are all sent the block is reclaimed in place.
    frames: BytesMut,
}

impl ChunkWriter {
    pub(crate) fn new(stamp: &Stamp, object: &str) -> Self {
        let mut head = Vec::with_capacity(64 + stamp.id.len() + stamp.model.len());
        write_head(&mut head, b"data: {", stamp, object);
        ChunkWriter {
            head,
            strip_reasoning: stamp.strip_reasoning,
            scratch: Vec::new(),
            frames: BytesMut::new(),
        }
    }

    /// The chunk `data` (already trimmed) stamped as one SSE event, and whether one of its
    /// choices finished; `None` when the chunk needs the `Value` path.
    pub(crate) fn splice(&mut self, data: &str) -> Option<(Bytes, bool)> {
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        out.reserve(self.head.len() + data.len() + 64);
        out.extend_from_slice(&self.head);
        let mut out = splice_object(out, self.strip_reasoning, data, true, false)?;
        out.json.extend_from_slice(b"\n\n");
        let len = out.json.len();
        if self.frames.capacity() < len {
            self.frames.reserve(len.max(FRAME_BLOCK));
        }
        self.frames.extend_from_slice(&out.json);
        self.scratch = out.json;
        Some((self.frames.split_to(len).freeze(), out.finished))
    }
}

/// Writes `prefix` then the gateway's `"id":…,"object":…,"model":…,"provider":…` entries: the
/// start of every spliced object.
pub(super) fn write_head(head: &mut Vec<u8>, prefix: &[u8], stamp: &Stamp, object: &str) {
    head.extend_from_slice(prefix);
    for (i, (k, v)) in [
        ("id", stamp.id.as_str()),
        ("object", object),
        ("model", stamp.model.as_str()),
        ("provider", stamp.provider.as_str()),
    ]
    .into_iter()
    .enumerate()
    {
        if i > 0 {
            head.push(b',');
        }
        head.push(b'"');
        head.extend_from_slice(k.as_bytes());
        head.extend_from_slice(b"\":");
        // Serialising a string cannot fail.
        let _ = serde_json::to_writer(&mut *head, v);
    }
}

/// A spliced object and what was learnt on the way.
#[derive(Debug)]
pub(super) struct SplicedObject {
    /// `head`, the upstream's other entries, `}`.
    pub(super) json: Vec<u8>,
    /// One of the choices finished.
    pub(super) finished: bool,
    /// The object has a `choices` array.
    pub(super) choices: bool,
    /// The byte range of the `,"usage":…` entry in `json`, when the upstream sent one.
    pub(super) usage: Option<std::ops::Range<usize>>,
    /// The first choice's finish reasons as written, when asked for ([`splice_object`]'s
    /// `facts`) and there is a choice (and they unescape).
    pub(super) first: Option<FirstChoice>,
}

/// One validating pass over the JSON object `data`, written after the head in `out` (see
/// [`write_head`]: it ends inside the object, after an entry); `None` for anything the `Value`
/// path must handle. Whitespace inside copied values is copied too; `compact` refuses
/// whitespace between tokens instead. `facts` records the first choice's [`FirstChoice`].
pub(super) fn splice_object(
    mut out: Vec<u8>,
    strip_reasoning: bool,
    data: &str,
    compact: bool,
    facts: bool,
) -> Option<SplicedObject> {
    let mut s = Splicer {
        text: data,
        pending: None,
        out: &mut out,
        strip_reasoning,
        facts,
        finished: false,
        choices: false,
        usage: None,
        first: None,
    };
    let mut c = Cursor::new(data, compact);
    s.top(&mut c)?;
    c.end()?;
    let (finished, choices, usage, first) = (s.finished, s.choices, s.usage.take(), s.first.take());
    Some(SplicedObject {
        json: out,
        finished,
        choices,
        usage,
        first,
    })
}

/// The output being written and what was learnt on the way.
struct Splicer<'o> {
    /// The upstream's object.
    text: &'o str,
    /// Entries of `text` to copy as they are, not yet written: consecutive ones (only a comma
    /// between them) are one range, so a run of untouched entries costs one copy.
    pending: Option<std::ops::Range<usize>>,
    out: &'o mut Vec<u8>,
    strip_reasoning: bool,
    facts: bool,
    finished: bool,
    choices: bool,
    usage: Option<std::ops::Range<usize>>,
    first: Option<FirstChoice>,
}

impl Splicer<'_> {
    /// Writes the entries waiting to be copied: every other write comes after this.
    #[inline(always)]
    fn flush(&mut self, first: &mut bool) {
        if let Some(span) = self.pending.take() {
            if !std::mem::take(first) {
                self.out.push(b',');
            }
            self.out
                .extend_from_slice(&self.text.as_bytes()[span.start..span.end]);
        }
    }

    /// Keeps the entry `key` (its opening quote at `at`) with the value `raw` that ends at
    /// `end`, as written when it has no whitespace, so that it can be copied with its
    /// neighbours; otherwise rewritten without whitespace, as [`Self::entry`].
    #[inline(always)]
    fn keep(&mut self, first: &mut bool, key: &str, at: usize, raw: &str, end: usize) {
        // `"key":` then the value, nothing between: the entry's text is one range.
        if end - raw.len() != at + key.len() + 3 {
            return self.entry(first, key, raw);
        }
        if let Some(span) = &mut self.pending {
            if span.end + 1 == at && self.text.as_bytes()[span.end] == b',' {
                span.end = end;
                return;
            }
        }
        self.flush(first);
        self.pending = Some(at..end);
    }

    /// Writes `,"key":raw` (or without the comma for an object's first entry).
    fn entry(&mut self, first: &mut bool, key: &str, raw: &str) {
        self.flush(first);
        if !std::mem::take(first) {
            self.out.push(b',');
        }
        self.out.push(b'"');
        // Keys reach here only unescaped, so their text is valid inside quotes as it is.
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out.extend_from_slice(raw.as_bytes());
    }

    /// The object: the gateway's fields replace the upstream's, the rest is copied.
    fn top(&mut self, c: &mut Cursor<'_>) -> Option<()> {
        c.begin_object()?;
        // The head already wrote the first entries.
        let mut first = false;
        let mut first_in = true;
        let mut seen = 0u8;
        let mut created = false;
        while let Some((key, at)) = c.next_key_at(&mut first_in)? {
            match key {
                "id" | "object" | "model" | "provider" => {
                    c.value()?;
                }
                "created" => {
                    once(&mut seen, 1)?;
                    let raw = c.value()?;
                    // Kept only when it is a `u64`, like `stamp`.
                    if is_u64(raw) {
                        self.keep(&mut first, key, at, raw, c.position());
                        created = true;
                    }
                }
                "choices" => {
                    once(&mut seen, 2)?;
                    self.entry(&mut first, key, "");
                    self.choices(c)?;
                    self.choices = true;
                }
                "usage" => {
                    // Recorded so that meter's own `usage` can replace it without a parse.
                    once(&mut seen, 4)?;
                    let raw = c.value()?;
                    self.flush(&mut first);
                    let start = self.out.len();
                    self.entry(&mut first, key, raw);
                    self.usage = Some(start..self.out.len());
                }
                "error" => {
                    let raw = c.value()?;
                    if raw != "null" {
                        // A provider error: `embedded_error` on the `Value` path reports it.
                        return None;
                    }
                    self.keep(&mut first, key, at, raw, c.position());
                }
                _ => {
                    let raw = c.value()?;
                    self.keep(&mut first, key, at, raw, c.position());
                }
            }
        }
        if !created {
            let now = super::common::now().to_string();
            self.entry(&mut first, "created", &now);
        }
        self.flush(&mut first);
        self.out.push(b'}');
        Some(())
    }

    /// The `choices` array, written choice by choice.
    fn choices(&mut self, c: &mut Cursor<'_>) -> Option<()> {
        c.begin_array()?;
        self.out.push(b'[');
        let mut first = true;
        let mut index = 0usize;
        while c.next_element(&mut first)? {
            if index > 0 {
                self.out.push(b',');
            }
            self.choice(c, index == 0)?;
            index += 1;
        }
        self.out.push(b']');
        Some(())
    }

    /// One choice: `finish_reason` normalised, `native_finish_reason` beside it, reasoning
    /// dropped when the client asked to exclude it.
    fn choice(&mut self, c: &mut Cursor<'_>, is_first: bool) -> Option<()> {
        c.begin_object()?;
        self.out.push(b'{');
        let mut first = true;
        let mut first_in = true;
        let mut seen = 0u8;
        let mut finish: Option<&str> = None;
        let mut native: Option<&str> = None;
        while let Some((key, at)) = c.next_key_at(&mut first_in)? {
            match key {
                "finish_reason" => {
                    once(&mut seen, 1)?;
                    finish = Some(c.value()?);
                }
                "native_finish_reason" => {
                    once(&mut seen, 2)?;
                    native = Some(c.value()?);
                }
                "delta" | "message" if self.strip_reasoning && c.peek_token()? == b'{' => {
                    self.flush(&mut first);
                    if !std::mem::take(&mut first) {
                        self.out.push(b',');
                    }
                    self.out.push(b'"');
                    self.out.extend_from_slice(key.as_bytes());
                    self.out.extend_from_slice(b"\":");
                    self.without_reasoning(c)?;
                }
                _ => {
                    let raw = c.value()?;
                    self.keep(&mut first, key, at, raw, c.position());
                }
            }
        }
        // `null` reads as absent, like `Option<&RawValue>` did.
        let finish = finish.filter(|f| *f != "null");
        let native = native.filter(|n| *n != "null");
        self.finished |= finish.is_some();
        let (finish_out, native_out) = match finish {
            Some(raw) if raw.starts_with('"') => {
                // The rare chunk that finishes: unescape to normalise.
                let normal = normalize_finish_reason(&unescape(raw)?);
                self.entry(&mut first, "finish_reason", "\"");
                self.out.extend_from_slice(normal.as_bytes());
                self.out.push(b'"');
                let native = native.filter(|n| n.starts_with('"')).unwrap_or(raw);
                self.entry(&mut first, "native_finish_reason", native);
                (Some(normal), Some(native))
            }
            _ => {
                self.entry(&mut first, "finish_reason", finish.unwrap_or("null"));
                self.entry(&mut first, "native_finish_reason", native.unwrap_or("null"));
                (None, native.filter(|n| n.starts_with('"')))
            }
        };
        if is_first && self.facts {
            // A native reason that does not unescape (a lone surrogate) leaves the facts
            // unknown: meter then reads the written bytes itself.
            let native = match native_out {
                Some(raw) => unescape(raw).map(|n| Some(n.into_owned())),
                None => Some(None),
            };
            self.first = native.map(|native| FirstChoice {
                finish: finish_out.map(str::to_owned),
                native,
            });
        }
        self.out.push(b'}');
        Some(())
    }

    /// A `delta` or `message` object without `reasoning` and `reasoning_details`.
    fn without_reasoning(&mut self, c: &mut Cursor<'_>) -> Option<()> {
        c.begin_object()?;
        self.out.push(b'{');
        let mut first = true;
        let mut first_in = true;
        while let Some((key, at)) = c.next_key_at(&mut first_in)? {
            let raw = c.value()?;
            if key != "reasoning" && key != "reasoning_details" {
                self.keep(&mut first, key, at, raw, c.position());
            }
        }
        self.flush(&mut first);
        self.out.push(b'}');
        Some(())
    }
}

/// A JSON string's value: the text between the quotes, borrowed, when it has no escapes.
fn unescape(raw: &str) -> Option<Cow<'_, str>> {
    let inner = raw.get(1..raw.len().checked_sub(1)?)?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(raw).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// `serde_json::Value::is_u64` on the raw text: digits only (JSON has no `+` or leading zeros),
/// within range.
fn is_u64(raw: &str) -> bool {
    !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) && raw.parse::<u64>().is_ok()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::translate::normalize::stamp;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn gateway(model: &str, strip_reasoning: bool) -> Stamp {
        Stamp {
            id: "gen-1".into(),
            model: model.into(),
            provider: "Up \"Provider\" ✓".into(),
            strip_reasoning,
        }
    }

    /// What the `Value` path sends for `data`, before it is serialised: its serialiser and
    /// serde_json's default float parser do not round-trip every float to the last bit, so
    /// comparing after a second parse would blame the splice for the `Value` path's rounding
    /// (the splice copies the upstream's digits).
    fn stamped(data: &str, s: &Stamp) -> Value {
        let mut v: Value = serde_json::from_str(data).expect("json");
        stamp(&mut v, s, "chat.completion.chunk");
        v
    }

    fn event_json(frame: &[u8]) -> Value {
        let text = std::str::from_utf8(frame).expect("utf-8");
        let json = text
            .strip_prefix("data: ")
            .and_then(|t| t.strip_suffix("\n\n"))
            .expect("one SSE data event");
        assert!(!json.contains('\n'), "one line: {json}");
        serde_json::from_str(json).expect("spliced JSON parses")
    }

    fn spliced(data: &str, s: &Stamp) -> Option<(Value, bool)> {
        let (frame, finished) = ChunkWriter::new(s, "chat.completion.chunk").splice(data)?;
        Some((event_json(&frame), finished))
    }

    /// `created` is the clock's when the upstream has none: equal up to the second it was read.
    fn same(mut a: Value, mut b: Value) {
        for v in [&mut a, &mut b] {
            let created = v.as_object_mut().and_then(|o| o.remove("created"));
            assert!(created.is_some_and(|c| c.is_u64()), "created: {v}");
        }
        assert_eq!(a, b);
    }

    #[test]
    fn splices_an_ordinary_chunk() {
        let s = gateway("openai/gpt-4o", false);
        let data = r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-2024","choices":[{"index":0,"delta":{"content":"He said \"hi\" \u00e9 — ünï 🎉\n"},"finish_reason":null}],"system_fingerprint":"fp"}"#;
        let (frame, finished) = ChunkWriter::new(&s, "chat.completion.chunk")
            .splice(data)
            .expect("spliced");
        assert!(!finished);
        let text = std::str::from_utf8(&frame).expect("utf-8");
        // The content is copied as the upstream wrote it, escapes and all.
        assert!(
            text.contains(r#""content":"He said \"hi\" \u00e9 — ünï 🎉\n""#),
            "{text}"
        );
        let v = event_json(&frame);
        assert_eq!(v["id"], "gen-1");
        assert_eq!(v["model"], "openai/gpt-4o");
        assert_eq!(v["provider"], "Up \"Provider\" ✓");
        assert_eq!(v["created"], 1_700_000_000);
        assert_eq!(v["choices"][0]["native_finish_reason"], Value::Null);
        assert_eq!(v, stamped(data, &s));
    }

    #[test]
    fn frames_cut_from_shared_blocks_stay_whole() {
        let s = gateway("m", false);
        let chunk = |i: usize| {
            let content = "x".repeat(i * 37 % 5000);
            format!(r#"{{"created":1,"choices":[{{"delta":{{"content":"{i} {content}"}}}}]}}"#)
        };
        let mut writer = ChunkWriter::new(&s, "chat.completion.chunk");
        let mut kept = Vec::new();
        for i in 0..300 {
            let (frame, _) = writer.splice(&chunk(i)).expect("spliced");
            // Keep every third frame, drop the rest at once: blocks are both shared with
            // live frames and reclaimed once theirs are gone.
            if i % 3 == 0 {
                kept.push((i, frame));
            }
        }
        for (i, frame) in kept {
            let alone = ChunkWriter::new(&s, "chat.completion.chunk")
                .splice(&chunk(i))
                .expect("spliced")
                .0;
            assert_eq!(frame, alone, "chunk {i}");
        }
    }

    #[test]
    fn fills_in_what_is_missing() {
        let s = gateway("a \"quoted\" model", false);
        for data in [
            r#"{"choices":[{"delta":{"content":"x"}}]}"#,
            r#"{"created":"yesterday","choices":[]}"#,
            r#"{"created":-1,"choices":[{}],"usage":null}"#,
            r#"{"created":1.5,"error":null}"#,
            r#"{}"#,
        ] {
            let (v, finished) = spliced(data, &s).expect(data);
            assert!(!finished);
            assert_eq!(v["model"], "a \"quoted\" model");
            same(v, stamped(data, &s));
        }
    }

    #[test]
    fn normalises_finish_reasons() {
        let s = gateway("m", false);
        for data in [
            r#"{"created":1,"choices":[{"index":0,"delta":{},"finish_reason":"end_turn"}]}"#,
            r#"{"created":1,"choices":[{"finish_reason":"stop","native_finish_reason":"eos"}]}"#,
            r#"{"created":1,"choices":[{"finish_reason":"le\u006egth","native_finish_reason":null}]}"#,
            r#"{"created":1,"choices":[{"finish_reason":7}]}"#,
        ] {
            let (v, finished) = spliced(data, &s).expect(data);
            assert!(finished, "{data}");
            assert_eq!(v, stamped(data, &s), "{data}");
        }
        let (v, _) = spliced(
            r#"{"created":1,"choices":[{"finish_reason":"le\u006egth"}]}"#,
            &s,
        )
        .expect("spliced");
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        assert_eq!(v["choices"][0]["native_finish_reason"], "length");
    }

    #[test]
    fn strips_reasoning_when_asked() {
        let data = r#"{"created":1,"choices":[{"delta":{"reasoning":"hmm","reasoning_details":[],"content":"x"}},{"message":"odd"}]}"#;
        let (v, _) = spliced(data, &gateway("m", true)).expect("spliced");
        assert_eq!(v["choices"][0]["delta"], json!({"content": "x"}));
        assert_eq!(v, stamped(data, &gateway("m", true)));
        let (v, _) = spliced(data, &gateway("m", false)).expect("spliced");
        assert_eq!(v["choices"][0]["delta"]["reasoning"], "hmm");
    }

    #[test]
    fn leaves_the_unusual_to_the_value_path() {
        let s = gateway("m", false);
        for data in [
            r#"{"choices":[{"delta":{"content":"x"}}]"#, // malformed
            r#"{"choices":[{"delta":{"content":"x"}}]}}"#, // trailing garbage
            r#"{"choices":[{"delta":{"content":"x}}]}"#, // unterminated string
            r#"{"error":{"message":"overloaded","code":529}}"#, // a provider error
            r#"{"choices": [{"delta":{"content":"x"}}]}"#, // whitespace between tokens
            r#"{"ch\u006fices":[]}"#,                    // an escaped key
            r#"{"choices":[],"choices":[]}"#,            // a repeated key the stamp edits
            r#"{"choices":{"0":{}}}"#,                   // choices not an array
            r#"{"choices":[1]}"#,                        // a choice not an object
            r#"[1,2]"#,
            r#""text""#,
        ] {
            assert!(spliced(data, &s).is_none(), "{data}");
        }
    }

    /// Strings for proptests: plain, arbitrary, and every character JSON escapes.
    pub(in crate::translate) fn string() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z ]{0,12}",
            any::<String>(),
            Just("quote \" backslash \\ tab \t nul \u{0} é 🎉".to_owned()),
        ]
    }

    /// Finish reasons for proptests: absent, null, native spellings, arbitrary text.
    pub(in crate::translate) fn finish() -> impl Strategy<Value = Option<Value>> {
        prop_oneof![
            Just(None),
            Just(Some(Value::Null)),
            prop_oneof![
                Just("stop"),
                Just("end_turn"),
                Just("MAX_TOKENS"),
                Just("tool_use")
            ]
            .prop_map(|f| Some(Value::from(f))),
            string().prop_map(|f| Some(Value::from(f))),
        ]
    }

    prop_compose! {
        fn choice()(
            content in proptest::option::of(string()),
            reasoning in proptest::option::of(string()),
            finish in finish(),
            native in finish(),
            extra in proptest::option::of(("[a-z_]{1,8}", string())),
            message in any::<bool>(),
        ) -> Value {
            let mut delta = serde_json::Map::new();
            if let Some(c) = content { delta.insert("content".into(), c.into()); }
            if let Some(r) = reasoning { delta.insert("reasoning".into(), r.into()); }
            let mut c = serde_json::Map::new();
            c.insert("index".into(), 0.into());
            c.insert(if message { "message" } else { "delta" }.into(), delta.into());
            if let Some(f) = finish { c.insert("finish_reason".into(), f); }
            if let Some(n) = native { c.insert("native_finish_reason".into(), n); }
            if let Some((k, v)) = extra { c.insert(k, v.into()); }
            Value::Object(c)
        }
    }

    prop_compose! {
        fn chunk()(
            id in proptest::option::of(string()),
            model in proptest::option::of(string()),
            created in prop_oneof![
                Just(None),
                any::<u64>().prop_map(|c| Some(c.into())),
                any::<i64>().prop_map(|c| Some(c.into())),
                string().prop_map(|c| Some(c.into())),
            ],
            choices in proptest::option::of(proptest::collection::vec(choice(), 0..3)),
            extra in proptest::collection::vec(("[a-z_]{1,10}", prop_oneof![
                string().prop_map(Value::from),
                any::<f64>().prop_map(Value::from),
                Just(json!({"prompt_tokens": 3, "nested": [1, {"a": null}]})),
            ]), 0..3),
        ) -> Value {
            let mut o = serde_json::Map::new();
            if let Some(id) = id { o.insert("id".into(), id.into()); }
            if let Some(m) = model { o.insert("model".into(), m.into()); }
            if let Some(c) = created { o.insert("created".into(), c); }
            if let Some(c) = choices { o.insert("choices".into(), c.into()); }
            for (k, v) in extra {
                if k != "error" { o.insert(k, v); }
            }
            Value::Object(o)
        }
    }

    /// Both splicers over `data`: the cursor's and serde_json's (the reference it replaced),
    /// each as the chunk path (compact) or the response path calls it.
    fn both(data: &str, s: &Stamp, chunk: bool) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        let head = || {
            let mut out = Vec::new();
            write_head(&mut out, b"{", s, "chat.completion");
            out
        };
        let ours = splice_object(head(), s.strip_reasoning, data, chunk, !chunk).map(|o| {
            let mut json = o.json;
            json.push(u8::from(o.finished) + 2 * u8::from(o.choices));
            json.extend(format!("{:?}", o.usage).bytes());
            json
        });
        let reference = (!chunk || super::super::splice_serde::chunk_is_compact(data.as_bytes()))
            .then(|| super::super::splice_serde::splice_object(head(), s.strip_reasoning, data))
            .flatten()
            .map(|o| {
                let mut json = o.json;
                json.push(u8::from(o.finished) + 2 * u8::from(o.choices));
                json.extend(format!("{:?}", o.usage).bytes());
                json
            });
        (ours, reference)
    }

    /// [`both`] agree on `data`, byte for byte (a second try when the clock's second turned
    /// between the two: `created` is filled in from it).
    fn agree(data: &str, s: &Stamp, chunk: bool) -> Result<(), TestCaseError> {
        let (mut ours, mut reference) = both(data, s, chunk);
        if ours != reference {
            (ours, reference) = both(data, s, chunk);
        }
        let show =
            |o: &Option<Vec<u8>>| o.as_ref().map(|j| String::from_utf8_lossy(j).into_owned());
        prop_assert_eq!(show(&ours), show(&reference), "{:?}", data);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn splice_matches_the_serde_json_splicer(
            chunk in chunk(),
            pretty in any::<bool>(),
            at in any::<prop::sample::Index>(),
            edit in crate::json_scan::tests::edit(),
            delete in any::<bool>(),
            strip in any::<bool>(),
        ) {
            let s = gateway("m", strip);
            let text = if pretty {
                serde_json::to_string_pretty(&chunk).expect("json")
            } else {
                serde_json::to_string(&chunk).expect("json")
            };
            let data = crate::json_scan::tests::mutate(text, at, edit, delete);
            agree(&data, &s, true)?;
            agree(&data, &s, false)?;
        }
    }

    proptest! {
        #[test]
        fn splice_matches_the_value_path(
            chunk in chunk(),
            model in string(),
            strip in any::<bool>(),
        ) {
            let s = gateway(&model, strip);
            let data = serde_json::to_string(&chunk).expect("json");
            let (v, finished) = spliced(&data, &s).expect("an ordinary chunk is spliced");
            let finish = chunk["choices"].as_array().is_some_and(|c| {
                c.iter().any(|c| c.get("finish_reason").is_some_and(|f| !f.is_null()))
            });
            prop_assert_eq!(finished, finish);
            same(v, stamped(&data, &s));
        }
    }
}
