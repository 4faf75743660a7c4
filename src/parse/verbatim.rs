//! The client's own bytes of the request fields no layer has changed.
//!
//! An OpenAI-style upstream gets the client's body with a few fields rewritten. Serialising the
//! parsed [`Value`] of `messages` again means escaping every byte of the conversation once more;
//! copying the client's bytes of that field is a `memcpy`. So parsing records where each large
//! top-level value sits in the body, and [`ChatRequest`](crate::ext::ChatRequest) forgets a
//! field's bytes as soon as a layer writes that field.
//!
//! ```
//! use switchyard::ext::ApiKind;
//! use switchyard::parse::parse_request;
//! let body = br#"{"model":"a/b","messages":[{"role":"user","content":"a question long enough to be worth copying"}]}"#;
//! let mut chat = parse_request(ApiKind::Chat, body, &Default::default()).unwrap();
//! assert!(chat.verbatim_field("messages").is_some());
//! chat.set_field("messages", serde_json::json!([]));
//! assert!(chat.verbatim_field("messages").is_none());
//! ```

use bytes::Bytes;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

/// Values shorter than this are re-serialised: copying them saves nothing worth a key string.
const MIN_VERBATIM_BYTES: usize = 64;

/// Keys whose values are often large, recorded without a copy of the key (`messages` is in
/// nearly every request).
const LARGE_KEYS: &[&str] = &["messages", "tools", "prompt", "response_format"];

/// A recorded field's key, sorted by.
type Key = Cow<'static, str>;

/// Byte ranges of the client's large top-level values, sorted by key, over the body's bytes.
#[derive(Debug, Clone, Default)]
pub struct Verbatim {
    bytes: Bytes,
    fields: Vec<(Key, Range<usize>)>,
}

impl Verbatim {
    /// The client's bytes of `key`'s value, if recorded and not since changed.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        let i = self.index(key).ok()?;
        self.bytes.get(self.fields[i].1.clone())
    }

    /// [`Self::get`] as a slice of the shared buffer (no copy).
    pub(crate) fn get_shared(&self, key: &str) -> Option<Bytes> {
        let i = self.index(key).ok()?;
        Some(self.bytes.slice(self.fields[i].1.clone()))
    }

    /// Forgets `key` (a layer is about to change it).
    pub(crate) fn forget(&mut self, key: &str) {
        if let Ok(i) = self.index(key) {
            self.fields.remove(i);
        }
    }

    /// Forgets every field (a layer has the whole body mutably).
    pub(crate) fn clear(&mut self) {
        self.fields.clear();
        self.bytes = Bytes::new();
    }

    fn index(&self, key: &str) -> Result<usize, usize> {
        self.fields.binary_search_by(|(k, _)| (**k).cmp(key))
    }
}

/// Parses a JSON object body into its fields and the [`Verbatim`] ranges of the large ones, in
/// one pass over the bytes (each value is scanned as raw JSON, then parsed from that slice).
pub(crate) fn parse_object(
    bytes: Bytes,
) -> Result<(Map<String, Value>, Verbatim), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let (body, mut fields) = de.deserialize_map(Fields { base: &bytes })?;
    de.end()?;
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    let bytes = if fields.is_empty() {
        Bytes::new()
    } else {
        bytes
    };
    Ok((body, Verbatim { bytes, fields }))
}

/// Visits the top-level object, recording value offsets relative to `base`.
struct Fields<'a> {
    base: &'a [u8],
}

type Parsed = (Map<String, Value>, Vec<(Key, Range<usize>)>);

impl<'de> Visitor<'de> for Fields<'_> {
    type Value = Parsed;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parsed, A::Error> {
        let mut body = Map::new();
        let mut fields = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let raw = map.next_value_seed(RawSeed)?;
            let text = raw.get();
            let value = value_of(text).map_err(de::Error::custom)?;
            // The last occurrence of a key wins, as in the parsed body: forget an earlier one's
            // bytes (only keys seen before are in `fields`, so a new key removes nothing).
            fields.retain(|(k, _): &(Key, Range<usize>)| **k != *key);
            if text.len() >= MIN_VERBATIM_BYTES {
                // Pointer arithmetic only: `text` borrows from `base`.
                let start = text.as_ptr() as usize - self.base.as_ptr() as usize;
                fields.push((key_of(&key), start..start + text.len()));
            }
            body.insert(key, value);
        }
        Ok((body, fields))
    }
}

/// `key` as a recorded key: one of [`LARGE_KEYS`] borrowed, any other copied.
fn key_of(key: &str) -> Key {
    match LARGE_KEYS.iter().find(|k| **k == key) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(key.to_owned()),
    }
}

/// The value of one top-level field, from its raw JSON (already validated by the scan).
///
/// The commonest small values (a literal, a string without escapes such as `model`) are built
/// directly: they are exactly what `serde_json` would give, without a second deserialiser.
fn value_of(text: &str) -> Result<Value, serde_json::Error> {
    match text {
        "true" => return Ok(Value::Bool(true)),
        "false" => return Ok(Value::Bool(false)),
        "null" => return Ok(Value::Null),
        _ => {}
    }
    let plain = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .filter(|t| !t.contains('\\'));
    match plain {
        Some(s) => Ok(Value::String(s.to_owned())),
        None => serde_json::from_str(text),
    }
}

/// Deserialises a value as a borrowed `&RawValue` (the scan validates it; nothing is copied).
struct RawSeed;

impl<'de> DeserializeSeed<'de> for RawSeed {
    type Value = &'de RawValue;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<&'de RawValue, D::Error> {
        serde::Deserialize::deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> (Map<String, Value>, Verbatim) {
        parse_object(Bytes::copy_from_slice(s.as_bytes())).expect("parse")
    }

    #[test]
    fn records_large_values_only() {
        let long = "x".repeat(80);
        let text =
            format!(r#"{{"model":"a/b","messages":[{{"role":"user","content":"{long}"}}]}}"#);
        let (body, v) = parse(&text);
        assert_eq!(body["model"], "a/b");
        assert!(v.get("model").is_none(), "short values are re-serialised");
        let raw = v.get("messages").expect("messages");
        let back: Value = serde_json::from_slice(raw).expect("json");
        assert_eq!(back, body["messages"]);
    }

    #[test]
    fn duplicate_keys_keep_the_last_value() {
        let a = format!(r#"["{}"]"#, "a".repeat(80));
        let b = format!(r#"["{}"]"#, "b".repeat(80));
        let (body, v) = parse(&format!(r#"{{"k":{a},"k":{b},"z":{a}}}"#));
        assert_eq!(v.get("k"), Some(b.as_bytes()));
        assert_eq!(body["k"], serde_json::from_str::<Value>(&b).expect("b"));
        let (_, v) = parse(&format!(r#"{{"k":{a},"k":1}}"#));
        assert!(
            v.get("k").is_none(),
            "a short last value replaces a long first one"
        );
    }

    #[test]
    fn escapes_and_unicode_survive_byte_for_byte() {
        let text = r#"{"messages":[{"role":"user","content":"quote \" backslash \\ tab \t snow ☃ \u2603 and more padding"}]}"#;
        let (body, v) = parse(text);
        let raw = v.get("messages").expect("messages");
        assert_eq!(
            serde_json::from_slice::<Value>(raw).expect("json"),
            body["messages"]
        );
    }

    #[test]
    fn direct_values_match_serde_json() {
        for text in [
            "true",
            "false",
            "null",
            r#""a/b""#,
            r#""""#,
            r#""snow ☃""#,
            r#""quote \" and \u2603""#,
            r#""\\""#,
            "0.5",
            "-1e3",
            "[1,\"x\"]",
            r#"{"a":null}"#,
        ] {
            assert_eq!(
                value_of(text).expect(text),
                serde_json::from_str::<Value>(text).expect(text),
                "{text}"
            );
        }
    }

    #[test]
    fn raw_control_characters_in_strings_are_rejected() {
        let e = parse_object(Bytes::from_static(b"{\"model\":\"a\tb\"}")).unwrap_err();
        assert!(e.to_string().contains("control character"), "{e}");
    }

    #[test]
    fn forget_and_clear() {
        let long = format!(r#"["{}"]"#, "x".repeat(80));
        let (_, mut v) = parse(&format!(r#"{{"a":{long},"b":{long}}}"#));
        v.forget("a");
        assert!(v.get("a").is_none() && v.get("b").is_some());
        v.clear();
        assert!(v.get("b").is_none());
    }

    #[test]
    fn malformed_and_trailing_input_fail() {
        assert!(parse_object(Bytes::from_static(b"{\"a\":[1,}")).is_err());
        assert!(parse_object(Bytes::from_static(b"{\"a\":1} x")).is_err());
        assert!(parse_object(Bytes::from_static(b"[1]")).is_err());
    }
}
