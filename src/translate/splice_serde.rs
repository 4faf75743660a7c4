//! The serde_json splicer that [`super::splice`]'s cursor replaced, kept as the tests'
//! reference: for any input both answer the same bytes, or both refuse it.

use super::normalize::normalize_finish_reason;
use super::splice::SplicedObject;
use memchr::memchr2;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;

/// What [`super::splice::ChunkWriter::splice`] used to check before splicing a chunk.
pub(super) fn chunk_is_compact(json: &[u8]) -> bool {
    is_compact(json)
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
        first: None,
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
