//! Stamping an OpenAI-compatible stream chunk without building a `Value` tree.
//!
//! An OpenAI chunk only needs the gateway's `id`, `model`, `provider` and `object` written over
//! the upstream's, `created` filled in when missing, and each choice's `finish_reason` normalised
//! (see [`super::normalize::stamp`]); everything else — the content, the bulk of the bytes — is
//! passed on as the upstream wrote it. [`ChunkWriter::splice`] does that in one validating pass:
//! serde_json walks the chunk, hands over borrowed raw slices (`&RawValue`) of the values that
//! stay, and those are copied next to the gateway's fields, escaped once per stream.
//!
//! Whole non-streaming responses go through the same pass ([`splice_object`], see
//! [`super::response`]), without the compactness check.
//!
//! The result parses to the same JSON value as the stamped `Value` (keys may come in another
//! order). Anything unusual — whitespace between tokens (the layers outside scan compact JSON),
//! escapes in keys, a non-object chunk or choice, a repeated key the stamp rewrites (or
//! `usage`), an `error` object, malformed JSON — makes `splice` answer `None`, and the caller
//! takes the `Value` path, which also reports the errors exactly as before.

use super::normalize::{Stamp, normalize_finish_reason};
use bytes::Bytes;
use memchr::memchr2;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;

/// The gateway's fields of every chunk of one stream, serialised once.
#[derive(Debug)]
pub(crate) struct ChunkWriter {
    /// `data: {"id":…,"object":…,"model":…,"provider":…` — the start of every event.
    head: Vec<u8>,
    strip_reasoning: bool,
}

impl ChunkWriter {
    pub(crate) fn new(stamp: &Stamp, object: &str) -> Self {
        let mut head = Vec::with_capacity(64 + stamp.id.len() + stamp.model.len());
        write_head(&mut head, b"data: {", stamp, object);
        ChunkWriter {
            head,
            strip_reasoning: stamp.strip_reasoning,
        }
    }

    /// The chunk `data` (already trimmed) stamped as one SSE event, and whether one of its
    /// choices finished; `None` when the chunk needs the `Value` path.
    pub(crate) fn splice(&self, data: &str) -> Option<(Bytes, bool)> {
        if !is_compact(data.as_bytes()) {
            return None;
        }
        let mut out = Vec::with_capacity(self.head.len() + data.len() + 64);
        out.extend_from_slice(&self.head);
        let mut out = splice_object(out, self.strip_reasoning, data)?;
        out.json.extend_from_slice(b"\n\n");
        Some((Bytes::from(out.json), out.finished))
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
}

/// One validating pass over the JSON object `data`, written after the head in `out` (see
/// [`write_head`]: it ends inside the object, after an entry); `None` for anything the `Value`
/// path must handle. Whitespace inside copied values is copied too.
pub(super) fn splice_object(
    mut out: Vec<u8>,
    strip_reasoning: bool,
    data: &str,
) -> Option<SplicedObject> {
    let mut s = Splicer {
        out: &mut out,
        strip_reasoning,
        finished: false,
        choices: false,
        usage: None,
    };
    let mut de = serde_json::Deserializer::from_str(data);
    Top(&mut s).deserialize(&mut de).ok()?;
    de.end().ok()?;
    let (finished, choices, usage) = (s.finished, s.choices, s.usage.take());
    Some(SplicedObject {
        json: out,
        finished,
        choices,
        usage,
    })
}

/// True when no whitespace stands between the tokens of `json`: the meter and fallback layers
/// look for `"key":"` byte patterns, which the `Value` path's compact output always matches.
/// An unterminated string is not compact either (the `Value` path reports it).
fn is_compact(json: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&b) = json.get(i) {
        match b {
            b'"' => {
                i += 1;
                // Skip the string: only `"` and `\` matter inside it.
                loop {
                    let Some(rest) = json.get(i..) else {
                        return false;
                    };
                    match memchr2(b'"', b'\\', rest) {
                        Some(j) if rest[j] == b'\\' => i += j + 2,
                        Some(j) => {
                            i += j + 1;
                            break;
                        }
                        None => return false,
                    }
                }
            }
            b' ' | b'\t' | b'\n' | b'\r' => return false,
            _ => i += 1,
        }
    }
    true
}

/// The output being written and what was learnt on the way.
struct Splicer<'o> {
    out: &'o mut Vec<u8>,
    strip_reasoning: bool,
    finished: bool,
    choices: bool,
    usage: Option<std::ops::Range<usize>>,
}

impl Splicer<'_> {
    /// Writes `,"key":raw` (or without the comma for an object's first entry).
    fn entry(&mut self, first: &mut bool, key: &str, raw: &str) {
        if !std::mem::take(first) {
            self.out.push(b',');
        }
        self.out.push(b'"');
        // Keys reach here only unescaped, so their text is valid inside quotes as it is.
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out.extend_from_slice(raw.as_bytes());
    }
}

/// A map key without escapes, borrowed from the input; a key with escapes bails (rare, and its
/// text would need escaping again).
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = &'de str;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<&'de str, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = &'de str;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key without escapes")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<&'de str, E> {
        Ok(v)
    }
}

/// Marks a key seen; bails when it is seen twice (the `Value` path keeps the last one).
fn once<E: de::Error>(seen: &mut u8, bit: u8) -> Result<(), E> {
    if *seen & bit != 0 {
        return Err(E::custom("repeated key"));
    }
    *seen |= bit;
    Ok(())
}

/// The chunk object: the gateway's fields replace the upstream's, the rest is copied.
struct Top<'s, 'o>(&'s mut Splicer<'o>);

impl<'de> DeserializeSeed<'de> for Top<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Top<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a chunk object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let s = self.0;
        // The head already wrote the first entries.
        let mut first = false;
        let mut seen = 0u8;
        let mut created = false;
        while let Some(key) = map.next_key_seed(Key)? {
            match key {
                "id" | "object" | "model" | "provider" => {
                    map.next_value::<IgnoredAny>()?;
                }
                "created" => {
                    once::<A::Error>(&mut seen, 1)?;
                    let raw: &RawValue = map.next_value()?;
                    // Kept only when it is a `u64`, like `stamp`.
                    if is_u64(raw.get()) {
                        s.entry(&mut first, key, raw.get());
                        created = true;
                    }
                }
                "choices" => {
                    once::<A::Error>(&mut seen, 2)?;
                    s.entry(&mut first, key, "");
                    map.next_value_seed(Choices(s))?;
                    s.choices = true;
                }
                "usage" => {
                    // Recorded so that meter's own `usage` can replace it without a parse.
                    once::<A::Error>(&mut seen, 4)?;
                    let raw: &RawValue = map.next_value()?;
                    let start = s.out.len();
                    s.entry(&mut first, key, raw.get());
                    s.usage = Some(start..s.out.len());
                }
                "error" => {
                    let raw: &RawValue = map.next_value()?;
                    if raw.get() != "null" {
                        // A provider error: `embedded_error` on the `Value` path reports it.
                        return Err(de::Error::custom("embedded error"));
                    }
                    s.entry(&mut first, key, raw.get());
                }
                _ => {
                    let raw: &RawValue = map.next_value()?;
                    s.entry(&mut first, key, raw.get());
                }
            }
        }
        if !created {
            let now = super::common::now().to_string();
            s.entry(&mut first, "created", &now);
        }
        s.out.push(b'}');
        Ok(())
    }
}

/// `serde_json::Value::is_u64` on the raw text: digits only (JSON has no `+` or leading zeros),
/// within range.
fn is_u64(raw: &str) -> bool {
    !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) && raw.parse::<u64>().is_ok()
}

/// The `choices` array, written choice by choice.
struct Choices<'s, 'o>(&'s mut Splicer<'o>);

impl<'de> DeserializeSeed<'de> for Choices<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Choices<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of choices")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let s = self.0;
        s.out.push(b'[');
        let mut first = true;
        loop {
            let mark = s.out.len();
            if !std::mem::take(&mut first) {
                s.out.push(b',');
            }
            if seq.next_element_seed(Choice(s))?.is_none() {
                s.out.truncate(mark);
                break;
            }
        }
        s.out.push(b']');
        Ok(())
    }
}

/// One choice: `finish_reason` normalised, `native_finish_reason` beside it, reasoning dropped
/// when the client asked to exclude it.
struct Choice<'s, 'o>(&'s mut Splicer<'o>);

impl<'de> DeserializeSeed<'de> for Choice<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Choice<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a choice object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let s = self.0;
        s.out.push(b'{');
        let mut first = true;
        let mut seen = 0u8;
        let mut finish: Option<&'de RawValue> = None;
        let mut native: Option<&'de RawValue> = None;
        while let Some(key) = map.next_key_seed(Key)? {
            match key {
                "finish_reason" => {
                    once::<A::Error>(&mut seen, 1)?;
                    finish = Some(map.next_value()?);
                }
                "native_finish_reason" => {
                    once::<A::Error>(&mut seen, 2)?;
                    native = Some(map.next_value()?);
                }
                "delta" | "message" if s.strip_reasoning => {
                    let raw: &RawValue = map.next_value()?;
                    if raw.get().starts_with('{') {
                        if !std::mem::take(&mut first) {
                            s.out.push(b',');
                        }
                        s.out.push(b'"');
                        s.out.extend_from_slice(key.as_bytes());
                        s.out.extend_from_slice(b"\":");
                        let mut de = serde_json::Deserializer::from_str(raw.get());
                        WithoutReasoning(s)
                            .deserialize(&mut de)
                            .map_err(de::Error::custom)?;
                    } else {
                        s.entry(&mut first, key, raw.get());
                    }
                }
                _ => {
                    let raw: &RawValue = map.next_value()?;
                    s.entry(&mut first, key, raw.get());
                }
            }
        }
        let finish = finish.map(RawValue::get);
        let native = native.map(RawValue::get);
        s.finished |= finish.is_some_and(|f| f != "null");
        match finish {
            Some(raw) if raw.starts_with('"') => {
                // The rare chunk that finishes: unescape to normalise.
                let text: String = serde_json::from_str(raw).map_err(de::Error::custom)?;
                let normal = format!("\"{}\"", normalize_finish_reason(&text));
                s.entry(&mut first, "finish_reason", &normal);
                let native = native.filter(|n| n.starts_with('"')).unwrap_or(raw);
                s.entry(&mut first, "native_finish_reason", native);
            }
            _ => {
                s.entry(&mut first, "finish_reason", finish.unwrap_or("null"));
                s.entry(&mut first, "native_finish_reason", native.unwrap_or("null"));
            }
        }
        s.out.push(b'}');
        Ok(())
    }
}

/// A `delta` or `message` object without `reasoning` and `reasoning_details`.
struct WithoutReasoning<'s, 'o>(&'s mut Splicer<'o>);

impl<'de> DeserializeSeed<'de> for WithoutReasoning<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for WithoutReasoning<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a delta object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let s = self.0;
        s.out.push(b'{');
        let mut first = true;
        while let Some(key) = map.next_key_seed(Key)? {
            let raw: &RawValue = map.next_value()?;
            if key != "reasoning" && key != "reasoning_details" {
                s.entry(&mut first, key, raw.get());
            }
        }
        s.out.push(b'}');
        Ok(())
    }
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
