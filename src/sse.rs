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
}

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
                None => self.data = Some(value.to_owned()),
            },
            "event" => self.event = Some(value.to_owned()),
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
            prop_assert_eq!(decode_all(&pieces), whole);
        }
    }
}
