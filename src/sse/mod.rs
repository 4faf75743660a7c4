//! Server-sent events: an incremental decoder that turns arbitrarily split bytes into events.
//!
//! Only the parts of the SSE grammar LLM APIs use are interpreted (`data:` lines, `event:`
//! names, comments); line endings may be `\n`, `\r\n` or `\r`. Any split of the byte stream
//! yields the same events.
//!
//! ```
//! use switchyard::sse::Decoder;
//! let mut d = Decoder::default();
//! let mut events = Vec::new();
//! d.feed(b"event: ping\nda", &mut events);
//! d.feed(b"ta: {}\n\ndata: [DONE]\n\n", &mut events);
//! assert_eq!(events.len(), 2);
//! assert_eq!(events[0].event.as_deref(), Some("ping"));
//! assert_eq!(events[1].data, "[DONE]");
//! ```
//!
//! A consumer that decodes many events and drops each after reading it can hand the events back
//! with [`Decoder::recycle`]: their strings are then reused for the next events' fields instead
//! of allocating one per event.
//!
//! ```
//! use switchyard::sse::Decoder;
//! let mut d = Decoder::default();
//! let mut events = Vec::new();
//! for chunk in [&b"data: a\n\n"[..], b"data: b\n\n"] {
//!     d.feed(chunk, &mut events);
//!     assert_eq!(events.len(), 1);
//!     d.recycle(&mut events); // the events are read: their buffers go back to the decoder
//!     assert!(events.is_empty());
//! }
//! ```

mod frames;

pub use frames::{OneEventPerFrame, ensure_event_frames};

/// One decoded event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Incremental SSE decoder.
#[derive(Debug, Default)]
pub struct Decoder {
    line: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
    /// The previous byte was `\r`, so a following `\n` belongs to the same line ending.
    after_cr: bool,
    /// Upper bound on one event's size, to refuse upstream garbage that never ends an event.
    max_event_bytes: Option<usize>,
    overflow: bool,
    /// Strings of events handed back by [`Decoder::recycle`], cleared, for the next fields.
    spare: Vec<String>,
}

/// Most strings [`Decoder::recycle`] keeps: an event has a `data` and an `event` string, and a
/// feed usually completes a few events.
const MAX_SPARE: usize = 8;

/// Largest string capacity [`Decoder::recycle`] keeps, so one huge event does not pin its
/// buffer for the rest of the stream.
const MAX_SPARE_BYTES: usize = 64 * 1024;

impl Decoder {
    /// A decoder that flags events larger than `max` bytes (see [`Decoder::overflowed`]).
    pub fn with_limit(max: usize) -> Self {
        Decoder {
            max_event_bytes: Some(max),
            ..Decoder::default()
        }
    }

    /// True once an event grew past the limit; the caller should fail the stream.
    pub fn overflowed(&self) -> bool {
        self.overflow
    }

    /// Feeds bytes, pushing every completed event to `out`.
    pub fn feed(&mut self, mut bytes: &[u8], out: &mut Vec<Event>) {
        if bytes.is_empty() {
            // Nothing to see, and a pending `\r` must still pair with a `\n` that comes next.
            return;
        }
        if self.after_cr {
            if let [b'\n', rest @ ..] = bytes {
                bytes = rest;
            }
            self.after_cr = false;
        }
        while let Some(pos) = memchr::memchr2(b'\n', b'\r', bytes) {
            let (line, rest) = bytes.split_at(pos);
            if self.line.is_empty() {
                // The whole line is in this feed (the usual case): read it where it is.
                self.end_line(line, out);
            } else {
                self.line.extend_from_slice(line);
                let line = std::mem::take(&mut self.line);
                self.end_line(&line, out);
                self.line = line;
                self.line.clear();
            }
            let cr = rest[0] == b'\r';
            bytes = &rest[1..];
            if cr {
                match bytes.first() {
                    Some(b'\n') => bytes = &bytes[1..],
                    None => self.after_cr = true,
                    _ => {}
                }
            }
        }
        self.line.extend_from_slice(bytes);
        if let Some(max) = self.max_event_bytes {
            let pending = self.line.len() + self.data.as_ref().map_or(0, String::len);
            if pending > max {
                self.overflow = true;
            }
        }
    }

    /// Takes back the events the caller has read, leaving `events` empty: their strings are
    /// reused (cleared) for the fields of the events decoded next, sparing an allocation per
    /// event. Calling it is optional; events are the same either way.
    pub fn recycle(&mut self, events: &mut Vec<Event>) {
        for ev in events.drain(..) {
            self.keep(ev.data);
            if let Some(name) = ev.event {
                self.keep(name);
            }
        }
    }

    /// Keeps `s` for reuse unless enough are kept or it is too large (then it is dropped).
    fn keep(&mut self, s: String) {
        if self.spare.len() < MAX_SPARE && s.capacity() <= MAX_SPARE_BYTES {
            self.spare.push(s);
        }
    }

    /// `value` in a spare string (see [`Decoder::recycle`]), or a fresh one.
    fn owned(&mut self, value: &str) -> String {
        match self.spare.pop() {
            Some(mut s) => {
                s.clear();
                s.push_str(value);
                s
            }
            None => value.to_owned(),
        }
    }

    /// True when bytes of an unfinished event are buffered.
    pub fn has_partial(&self) -> bool {
        !self.line.is_empty() || self.data.is_some()
    }

    fn end_line(&mut self, line: &[u8], out: &mut Vec<Event>) {
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                out.push(Event {
                    event: self.event.take(),
                    data,
                });
            }
            self.event = None;
            return;
        }
        if line[0] == b':' {
            return; // comment: keep-alive
        }
        // `from_utf8` first: its ASCII fast path is quicker than the lossy walk, and upstreams
        // send valid UTF-8.
        let text = match std::str::from_utf8(line) {
            Ok(t) => std::borrow::Cow::Borrowed(t),
            Err(_) => String::from_utf8_lossy(line),
        };
        let (field, value) = match text.find(':') {
            Some(i) => {
                let v = &text[i + 1..];
                (&text[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (&text[..], ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(self.owned(value)),
            },
            "event" => self.event = Some(self.owned(value)),
            _ => {} // id, retry: not used by LLM APIs
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(chunks: &[&[u8]]) -> Vec<Event> {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        for c in chunks {
            d.feed(c, &mut out);
        }
        out
    }

    /// As [`decode_all`], handing every feed's events back to the decoder once copied.
    fn decode_recycling(chunks: &[&[u8]]) -> Vec<Event> {
        let mut d = Decoder::default();
        let (mut events, mut out) = (Vec::new(), Vec::new());
        for c in chunks {
            d.feed(c, &mut events);
            out.extend(events.iter().cloned());
            d.recycle(&mut events);
            assert!(events.is_empty());
        }
        out
    }

    #[test]
    fn recycled_strings_carry_nothing_over() {
        let chunks: [&[u8]; 4] = [
            b"event: long_name\ndata: a long first payload\n\n",
            b"data: b\n\n",
            b"event: e\ndata: c\ndata: d\n\ndata: x",
            b"y\n\n",
        ];
        assert_eq!(decode_recycling(&chunks), decode_all(&chunks));
    }

    #[test]
    fn handles_crlf_comments_and_multiline_data() {
        let ev = decode_all(&[b": keep-alive\r\n\r\nevent: x\r\ndata: a\r\ndata: b\r\n\r\n"]);
        assert_eq!(
            ev,
            vec![Event {
                event: Some("x".into()),
                data: "a\nb".into()
            }]
        );
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_events(splits in proptest::collection::vec(0usize..200, 0..8)) {
            let stream: &[u8] = b"data: {\"a\":1}\n\nevent: message_start\r\ndata: {\"b\":2}\r\n\r\n: ping\n\ndata: x\rdata: y\r\rdata: [DONE]\n\n";
            let whole = decode_all(&[stream]);
            let mut cuts: Vec<usize> = splits.into_iter().map(|s| s % (stream.len() + 1)).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut last = 0;
            for c in cuts { pieces.push(&stream[last..c]); last = c; }
            pieces.push(&stream[last..]);
            prop_assert_eq!(&decode_all(&pieces), &whole);
            prop_assert_eq!(&decode_recycling(&pieces), &whole);
        }
    }
}
