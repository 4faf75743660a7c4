//! The client's own bytes of the request fields no layer has changed.
//!
//! An OpenAI-style upstream gets the client's body with a few fields rewritten. Serialising the
//! parsed [`Value`] of `messages` again means escaping every byte of the conversation once more;
//! copying the client's bytes of that field is a `memcpy`. So parsing records where each large
//! top-level value sits in the body, and [`ChatRequest`](crate::context::ChatRequest) forgets a
//! field's bytes as soon as a layer writes that field.
//!
//! ```
//! use switchyard::context::ApiKind;
//! use switchyard::context::parse_request;
//! let body = br#"{"model":"a/b","messages":[{"role":"user","content":"a question long enough to be worth copying"}]}"#;
//! let mut chat = parse_request(ApiKind::Chat, body, &Default::default()).unwrap();
//! assert!(chat.verbatim_field("messages").is_some());
//! chat.set_field("messages", serde_json::json!([]));
//! assert!(chat.verbatim_field("messages").is_none());
//! ```

use super::messages::Checked;
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

/// A parsed body: its fields, the client's bytes of the large ones, and what was learnt of
/// `messages` when it was checked on its bytes instead of parsed ([`super::messages`]).
#[derive(Debug)]
pub(crate) struct ParsedBody {
    pub(crate) fields: Map<String, Value>,
    pub(crate) verbatim: Verbatim,
    /// Set when `messages` was left unparsed: `fields` then holds an empty array in its place
    /// and `verbatim` its bytes, whatever their length.
    pub(crate) messages: Option<Checked>,
}

/// Parses a JSON object body into its fields and the [`Verbatim`] ranges of the large ones.
///
/// Each top-level value is parsed once, straight from the body ([`parse_direct`]); `messages`
/// only checked, when it can be ([`super::messages::check`]). A body that path does not accept
/// — malformed, or a key with escapes — goes through `serde_json`'s own object parse
/// ([`parse_scanned`]), so errors and unusual input are exactly what it makes of them.
pub(crate) fn parse_object(bytes: Bytes) -> Result<ParsedBody, serde_json::Error> {
    let (fields, ranges, messages) = match parse_direct(&bytes) {
        Some(parsed) => parsed,
        None => {
            let (fields, ranges) = parse_scanned(&bytes)?;
            (fields, ranges, None)
        }
    };
    Ok(ParsedBody {
        fields,
        verbatim: verbatim(bytes, ranges),
        messages,
    })
}

fn verbatim(bytes: Bytes, mut fields: Vec<(Key, Range<usize>)>) -> Verbatim {
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    let bytes = if fields.is_empty() {
        Bytes::new()
    } else {
        bytes
    };
    Verbatim { bytes, fields }
}

/// `serde_json`'s parse of the whole object: each value is scanned as raw JSON, then parsed
/// from that slice. The reference for [`parse_direct`], and the path of every error.
fn parse_scanned(bytes: &[u8]) -> Result<Parsed, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = de.deserialize_map(Fields { base: bytes })?;
    de.end()?;
    Ok(parsed)
}

/// The top-level object walked here, each value parsed once by `serde_json` from where it
/// starts (its end is where that parse stopped), so no value is scanned twice. `None` for
/// anything but a well-formed object whose keys have no escapes or control characters: the
/// caller then runs [`parse_scanned`], which gives the same result for every body this
/// accepts (values are parsed from their own start in both, so even the nesting limit
/// matches) and the error for the rest.
fn parse_direct(b: &[u8]) -> Option<(Map<String, Value>, Ranges, Option<Checked>)> {
    let mut body = Map::new();
    let mut fields: Ranges = Vec::new();
    let mut messages = None;
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            let (key, after) = plain_string(b, i)?;
            i = skip_ws(b, after);
            if b.get(i) != Some(&b':') {
                return None;
            }
            let start = skip_ws(b, i + 1);
            let checked = if key == "messages" {
                let rest = std::str::from_utf8(b.get(start..)?).ok();
                messages = rest.and_then(super::messages::check);
                messages
            } else {
                None
            };
            let (value, end) = match checked {
                // Parsed when a layer asks (`ChatRequest::body`), from the bytes kept below.
                Some(c) => (Value::Array(Vec::new()), start + c.len),
                None => value_at(b, start)?,
            };
            fields.retain(|(k, _)| **k != *key);
            if checked.is_some() || end - start >= MIN_VERBATIM_BYTES {
                fields.push((key_of(key), start..end));
            }
            body.insert(key.to_owned(), value);
            i = skip_ws(b, end);
            match b.get(i) {
                Some(b',') => i = skip_ws(b, i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (skip_ws(b, i) == b.len()).then_some((body, fields, messages))
}

/// The first index at or after `i` that is not JSON whitespace.
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// The string starting with the quote at `i`, when it has no escape and no control character
/// (so its text is its bytes), and the index after its closing quote.
fn plain_string(b: &[u8], i: usize) -> Option<(&str, usize)> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let rest = b.get(i + 1..)?;
    let len = memchr::memchr(b'"', rest)?;
    let raw = &rest[..len];
    if raw.iter().any(|&c| c < 0x20 || c == b'\\') {
        return None;
    }
    Some((std::str::from_utf8(raw).ok()?, i + 1 + len + 1))
}

/// The value starting at `start` and the index after it. Literals and plain strings (such as
/// `model`) are built directly: exactly what `serde_json` gives, without a deserialiser.
fn value_at(b: &[u8], start: usize) -> Option<(Value, usize)> {
    for (lit, value) in [
        (&b"true"[..], Value::Bool(true)),
        (b"false", Value::Bool(false)),
        (b"null", Value::Null),
    ] {
        if b.get(start..start + lit.len()) == Some(lit) {
            // A letter after it (`nullx`) is not a delimiter: the caller rejects it.
            return Some((value, start + lit.len()));
        }
    }
    if let Some((s, end)) = plain_string(b, start) {
        return Some((Value::String(s.to_owned()), end));
    }
    let mut values = serde_json::Deserializer::from_slice(b.get(start..)?).into_iter::<Value>();
    let value = values.next()?.ok()?;
    Some((value, start + values.byte_offset()))
}

/// Visits the top-level object, recording value offsets relative to `base`.
struct Fields<'a> {
    base: &'a [u8],
}

/// Recorded byte ranges of top-level values.
type Ranges = Vec<(Key, Range<usize>)>;

type Parsed = (Map<String, Value>, Ranges);

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

    /// The body with a deferred `messages` parsed from its recorded bytes (as
    /// `ChatRequest::body` does), and the recorded bytes.
    fn parse(s: &str) -> (Map<String, Value>, Verbatim) {
        let parsed = parse_object(Bytes::copy_from_slice(s.as_bytes())).expect("parse");
        let mut body = parsed.fields;
        if parsed.messages.is_some() {
            let raw = parsed.verbatim.get("messages").expect("deferred bytes");
            body.insert(
                "messages".into(),
                serde_json::from_slice(raw).expect("json"),
            );
        }
        (body, parsed.verbatim)
    }

    #[test]
    fn messages_are_checked_not_parsed_and_kept_whatever_their_length() {
        let parsed = parse_object(Bytes::from_static(
            br#"{"model":"a/b","messages":[{"role":"user","content":"hi"}]}"#,
        ))
        .expect("parse");
        assert_eq!(parsed.fields["messages"], Value::Array(Vec::new()));
        assert_eq!(parsed.messages.map(|c| c.prompt_chars), Some(2));
        assert_eq!(
            parsed.verbatim.get("messages"),
            Some(&br#"[{"role":"user","content":"hi"}]"#[..])
        );
        // A repeat that cannot be deferred replaces the deferred one.
        let parsed = parse_object(Bytes::from_static(
            br#"{"messages":[{"role":"user"}],"messages":[]}"#,
        ))
        .expect("parse");
        assert_eq!(parsed.messages, None);
        assert_eq!(parsed.fields["messages"], Value::Array(Vec::new()));
        assert_eq!(parsed.verbatim.get("messages"), None);
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

    /// Both paths on `text`: `parse_direct` must decline or agree with `parse_scanned`.
    fn agree(text: &str) {
        let scanned = parse_scanned(text.as_bytes()).ok();
        let Some((mut body, mut fields, deferred)) = parse_direct(text.as_bytes()) else {
            return;
        };
        if deferred.is_some() {
            // Parsed from its bytes (recorded whatever their length) as the request would.
            let i = fields.iter().position(|(k, _)| k == "messages");
            let range = fields[i.expect("deferred bytes")].1.clone();
            let value = serde_json::from_str(&text[range.clone()]).expect("deferred parses");
            body.insert("messages".into(), value);
            if range.len() < MIN_VERBATIM_BYTES {
                fields.retain(|(k, _)| k != "messages");
            }
        }
        let Some((want_body, want_fields)) = scanned else {
            panic!("{text:?}: parsed directly, rejected by serde_json");
        };
        assert_eq!(body, want_body, "{text:?}");
        assert_eq!(fields, want_fields, "{text:?}");
    }

    #[test]
    fn direct_parse_matches_serde_json() {
        let long = "x".repeat(80);
        for text in [
            "{}",
            " { } ",
            "{\"a\":1}",
            "{\"a\" : true , \"b\":false,\"c\":null}\n",
            "{\"a\":nullx}",
            "{\"a\":tru}",
            "{\"a\":1,}",
            "{,}",
            "{\"a\":1\"b\":2}",
            "{\"a\":-0.5e3,\"b\":[1,2,{\"c\":\"d\"}],\"e\":{}}",
            "{\"a\":1e400}",
            "{\"a\":01}",
            "{\"a\":1x}",
            "{\"a\":\"\\u2603 \\\" q\"}",
            "{\"a\\\"b\":1}",
            "{\"a\tb\":1}",
            "{\"a\":\"b\tc\"}",
            "{\"k\":1,\"k\":2}",
            "{\"a\":1} x",
            "{\"a\":1}}",
            "{\"a\":",
            "{\"a\"",
            "{\"a",
            "{",
            "[1]",
            "",
            "{\"a\":[1,}",
        ] {
            agree(text);
        }
        for text in [
            format!(r#"{{"messages":["{long}"],"model":"a/b","messages":["{long}y"]}}"#),
            format!(r#"{{ "tools" : [ "{long}" ] , "z" : "{long}" }}"#),
            format!(r#"{{"p":"{long}","p":1}}"#),
            format!("{{\"deep\":{}1{}}}", "[".repeat(127), "]".repeat(127)),
            format!("{{\"deep\":{}1{}}}", "[".repeat(128), "]".repeat(128)),
            r#"{"messages":[{"role":"user","content":"hi"}],"model":"a/b"}"#.to_owned(),
            r#"{"messages":[{"role":"user","content":"\ud800"}]}"#.to_owned(),
            r#"{"messages":[{"role":"user","n":1e999}]}"#.to_owned(),
            r#"{"messages":[{"role":"user"}] , "messages" : [{"role":"x"}]}"#.to_owned(),
        ] {
            agree(&text);
        }
        for depth in 124..=128 {
            let (open, close) = ("[".repeat(depth), "]".repeat(depth));
            agree(&format!(
                r#"{{"messages":[{{"role":"u","x":{open}1{close}}}],"model":"m"}}"#
            ));
        }
    }

    proptest::proptest! {
        #[test]
        fn direct_parse_matches_serde_json_on_any_text(
            text in r#"\{( ?"[a-c\\]{0,2}" ?: ?(true|nul|1|-2\.5|"[x\\"\t]{0,70}"|\[[1,\]\[]{0,6}\]|\{\}) ?,?){0,4}\}?[ x]?"#
        ) {
            agree(&text);
        }

        #[test]
        fn direct_parse_matches_serde_json_on_messages(
            text in r#"\{"model":"m", ?"messages" ?: ?\[ ?(\{("role"|"content"|"x") ?: ?(1e9|1|"[a\\u\t]{0,6}"|\["[b\\"]{0,3}"\]|\{"text":"[c"]{0,4}"\}|null) ?,? ?\},?){0,3}\] ?\}"#
        ) {
            agree(&text);
        }
    }

    #[test]
    fn malformed_and_trailing_input_fail() {
        assert!(parse_object(Bytes::from_static(b"{\"a\":[1,}")).is_err());
        assert!(parse_object(Bytes::from_static(b"{\"a\":1} x")).is_err());
        assert!(parse_object(Bytes::from_static(b"[1]")).is_err());
    }
}
