//! A non-streaming JSON response serialised once, when the server writes it.
//!
//! Translate parses the upstream's completion into a [`Value`]; meter then adds `usage` (cost)
//! and fallback may add `openrouter_metadata`. Were the body plain bytes, each of those layers
//! would parse it again and serialise it again. Instead translate answers with a
//! [`DeferredJson`] body and puts the same [`DeferredJson`] handle into the response's
//! extensions: the outer layers edit the one parsed value through [`DeferredJson::edit`], and the
//! bytes are written when hyper first asks for the body's size (for `Content-Length`) or data.
//!
//! An OpenAI-compatible upstream's response is usually not parsed into a [`Value`] at all:
//! translate splices it into the gateway's shape in one pass and hands over the bytes
//! ([`DeferredJson::spliced`]). Meter reads what it needs from those bytes
//! ([`DeferredJson::read_spliced`]) and replaces `usage` by byte range; only an [`edit`]
//! (`openrouter_metadata`, opted into) parses them into a [`Value`] and continues as above.
//!
//! [`edit`]: DeferredJson::edit
//!
//! A layer that replaces the body of such a response must remove the extension too, or later
//! edits would go nowhere; none of the crate's layers does.

use crate::BoxError;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use serde_json::Value;
use serde_json::value::RawValue;
use std::ops::Range;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

/// How the splicer writes the start of the upstream's `usage` entry.
const USAGE_ENTRY: &[u8] = b",\"usage\":";

/// The first choice's finish reasons, as the spliced bytes have them (`finish_reason`
/// normalised, `native_finish_reason` the upstream's), each `None` when not a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FirstChoice {
    pub(crate) finish: Option<String>,
    pub(crate) native: Option<String>,
}

/// A top-level field set as ready JSON text ([`DeferredJson::set_raw`]).
type RawField = (&'static str, String);

/// The response body and, cloned, its handle in the response extensions.
#[derive(Debug, Clone)]
pub(crate) struct DeferredJson(Arc<Mutex<Slot>>);

#[derive(Debug)]
enum Slot {
    /// Still editable; the raw fields are written after (and instead of) the value's own.
    Value(Value, Vec<RawField>),
    /// A JSON object written by translate's splicer; `usage` is the byte range of its own
    /// `,"usage":…` entry (never the first), dropped when a raw `usage` replaces it.
    Spliced {
        json: Vec<u8>,
        usage: Option<Range<usize>>,
        first: Option<FirstChoice>,
        raw: Vec<RawField>,
    },
    /// Serialised (taken once the frame is sent).
    Bytes(Option<Bytes>),
}

impl DeferredJson {
    /// A body (and handle) over `value`.
    pub(crate) fn new(value: Value) -> Self {
        DeferredJson(Arc::new(Mutex::new(Slot::Value(value, Vec::new()))))
    }

    /// A body (and handle) over the JSON object `json`, ready as it is; `usage` is the byte
    /// range of its `,"usage":…` entry, if any, and `first` what the splicer noted of its first
    /// choice.
    pub(crate) fn spliced(
        json: Vec<u8>,
        usage: Option<Range<usize>>,
        first: Option<FirstChoice>,
    ) -> Self {
        DeferredJson(Arc::new(Mutex::new(Slot::Spliced {
            json,
            usage,
            first,
            raw: Vec::new(),
        })))
    }

    fn slot(&self) -> MutexGuard<'_, Slot> {
        // Nothing panics while holding the lock but serde: the slot stays usable.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Edits the value; `None` when it was already serialised (the body is being sent).
    /// Spliced bytes are parsed into a `Value` first (the rare path: metadata requested).
    pub(crate) fn edit<T>(&self, f: impl FnOnce(&mut Value) -> T) -> Option<T> {
        let mut slot = self.slot();
        to_value(&mut slot)?;
        match &mut *slot {
            Slot::Value(v, _) => Some(f(v)),
            Slot::Spliced { .. } | Slot::Bytes(_) => None,
        }
    }

    /// Reads the spliced JSON (before any raw field is applied); `None` when the body holds a
    /// `Value`, is being sent, or `f` answers `None`.
    pub(crate) fn read_spliced<T>(&self, f: impl FnOnce(&[u8]) -> Option<T>) -> Option<T> {
        match &*self.slot() {
            Slot::Spliced { json, .. } => f(json),
            Slot::Value(..) | Slot::Bytes(_) => None,
        }
    }

    /// What the splicer noted of the first choice and the text of the upstream's `usage` value,
    /// handed to `f`, before any raw field is applied; `None` when either is unknown (no
    /// `usage`, no choice, not spliced) or `f` answers `None`. Meter reads these instead of
    /// scanning the bytes again. `f` may take the reasons (nothing reads them after meter).
    pub(crate) fn read_spliced_usage<T>(
        &self,
        f: impl FnOnce(&mut FirstChoice, &[u8]) -> Option<T>,
    ) -> Option<T> {
        match &mut *self.slot() {
            Slot::Spliced {
                json,
                usage: Some(range),
                first: Some(first),
                ..
            } => {
                let entry = json.get(range.clone())?;
                f(first, entry.strip_prefix(USAGE_ENTRY)?)
            }
            _ => None,
        }
    }

    /// Sets a top-level field to ready JSON text (meter's `usage`: typed, never a `Value`
    /// tree); `false` when the body is already being sent. `json` must be one valid JSON value:
    /// it is written as it is, unchecked (a `RawValue` would parse it again), so it should be
    /// the caller's own writing.
    pub(crate) fn set_raw(&self, key: &'static str, json: String) -> bool {
        debug_assert!(
            serde_json::from_str::<&RawValue>(&json).is_ok(),
            "not one JSON value: {json}"
        );
        let mut slot = self.slot();
        if key != "usage" && to_value(&mut slot).is_none() {
            // Only `usage` has a known place in the spliced bytes.
            return false;
        }
        match &mut *slot {
            Slot::Value(_, fields) | Slot::Spliced { raw: fields, .. } => {
                fields.retain(|(k, _)| *k != key);
                fields.push((key, json));
                true
            }
            Slot::Bytes(_) => false,
        }
    }

    /// Serialises the value (once) and returns the slot.
    fn serialised(&self) -> MutexGuard<'_, Slot> {
        let mut slot = self.slot();
        let bytes = match &mut *slot {
            // A `Value` always serialises (string keys, finite numbers).
            Slot::Value(v, raw) => write(v, raw).unwrap_or_default(),
            Slot::Spliced {
                json, usage, raw, ..
            } => splice_raw(std::mem::take(json), usage, raw),
            Slot::Bytes(_) => return slot,
        };
        *slot = Slot::Bytes(Some(Bytes::from(bytes)));
        slot
    }
}

/// Turns spliced bytes into a `Value` (keeping the raw fields to write); `None` when the slot
/// is already being sent.
fn to_value(slot: &mut Slot) -> Option<()> {
    match slot {
        Slot::Value(..) => Some(()),
        Slot::Bytes(_) => None,
        Slot::Spliced { json, raw, .. } => {
            // The splicer wrote valid JSON; were it not, the slot stays as it is.
            let v: Value = serde_json::from_slice(json).ok()?;
            *slot = Slot::Value(v, std::mem::take(raw));
            Some(())
        }
    }
}

/// The spliced object with the raw fields appended, the upstream's `usage` entry dropped when
/// one of them replaces it.
fn splice_raw(mut json: Vec<u8>, usage: &Option<Range<usize>>, raw: &[RawField]) -> Vec<u8> {
    if raw.is_empty() {
        return json;
    }
    if let Some(range) = usage
        .clone()
        .filter(|_| raw.iter().any(|(k, _)| *k == "usage"))
    {
        json.drain(range);
    }
    append_raw(&mut json, raw);
    json
}

/// Appends the raw fields as entries of the JSON object that `json` ends, before its `}`.
fn append_raw(json: &mut Vec<u8>, raw: &[RawField]) {
    json.pop();
    for (k, v) in raw {
        // Only `{` is left of an object without entries: the first raw one needs no comma.
        if json.len() > 1 {
            json.push(b',');
        }
        // A key serialises as a string infallibly; escaped as serde_json escapes map keys.
        let _ = serde_json::to_writer(&mut *json, k);
        json.push(b':');
        json.extend_from_slice(v.as_bytes());
    }
    json.push(b'}');
}

/// The value's JSON with the raw fields in place of same-named ones, written last.
fn write(v: &Value, raw: &[RawField]) -> serde_json::Result<Vec<u8>> {
    use serde::ser::{SerializeMap, Serializer};
    let (Value::Object(map), false) = (v, raw.is_empty()) else {
        return serde_json::to_vec(v);
    };
    let mut out = Vec::with_capacity(1024);
    let mut ser = serde_json::Serializer::new(&mut out);
    let mut obj = ser.serialize_map(None)?;
    for (k, v) in map {
        if !raw.iter().any(|(r, _)| r == k) {
            obj.serialize_entry(k, v)?;
        }
    }
    obj.end()?;
    append_raw(&mut out, raw);
    Ok(out)
}

impl http_body::Body for DeferredJson {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let taken = match &mut *self.serialised() {
            Slot::Bytes(b) => b.take(),
            Slot::Value(..) | Slot::Spliced { .. } => None,
        };
        Poll::Ready(taken.map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        matches!(&*self.slot(), Slot::Bytes(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &*self.serialised() {
            Slot::Bytes(Some(b)) => SizeHint::with_exact(b.len() as u64),
            _ => SizeHint::with_exact(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use serde_json::json;

    #[tokio::test]
    async fn edits_before_the_first_size_or_frame_reach_the_bytes() {
        let body = DeferredJson::new(json!({"a": 1}));
        let handle = body.clone();
        assert_eq!(handle.edit(|v| v["b"] = json!(2)), Some(()));
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(13));
        assert_eq!(
            handle.edit(|v| v["c"] = json!(3)),
            None,
            "already serialised"
        );
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], br#"{"a":1,"b":2}"#);
    }

    #[tokio::test]
    async fn raw_fields_replace_or_join_the_values_entries() {
        for (value, want) in [
            (json!({}), r#"{"usage":{"a":1}}"#),
            (json!({"usage": 1, "b": 2}), r#"{"b":2,"usage":{"a":1}}"#),
            (json!({"z": [1]}), r#"{"z":[1],"usage":{"a":1}}"#),
        ] {
            let body = DeferredJson::new(value);
            assert!(body.clone().set_raw("usage", r#"{"a":1}"#.to_owned()));
            let bytes = body.collect().await.unwrap().to_bytes();
            assert_eq!(std::str::from_utf8(&bytes).unwrap(), want);
        }
        let body = DeferredJson::spliced(br#"{"id":"x","usage":null}"#.to_vec(), Some(9..22), None);
        assert!(body.clone().set_raw("usage", "7".to_owned()));
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], br#"{"id":"x","usage":7}"#);
    }
}
