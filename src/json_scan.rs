//! A validating JSON cursor that hands out the raw text of values: the response splicer
//! ([`crate::translate`]) and fallback's first-content probe read upstream JSON with it.
//!
//! The splicer copies most of an upstream object as the upstream wrote it, so all it needs of a
//! value is where it ends — and the promise that it is valid JSON, since the bytes go to the
//! client unchecked. serde_json's `RawValue` gives both, but through its visitor machinery: about
//! 60 instructions per byte of a stream chunk, most of a stream's cost in the gateway. This
//! cursor checks the same grammar (RFC 8259: strings with their escapes and no raw control
//! characters, numbers, literals, nesting) at a few instructions per byte.
//!
//! Every method answers `None` for anything it does not accept; the splicer then gives the
//! input to the `Value` path, which words the error. The input is a `&str`, so it is valid
//! UTF-8 already.
//!
//! In *compact* mode any whitespace between tokens is refused too: the layers outside scan
//! stream chunks for `"key":"` byte patterns, which only compact JSON is sure to match.

/// Deeper nesting is refused (serde_json's own recursion limit: it parses 127 levels, not
/// 128), so a hostile body cannot exhaust the stack of the `Value` path it would fall back to
/// either, and nothing is accepted here that serde_json refuses.
const MAX_DEPTH: u32 = 127;

/// A position in one JSON text.
pub(crate) struct Cursor<'a> {
    text: &'a str,
    at: usize,
    depth: u32,
    compact: bool,
    /// A `\u` escape or a number with an exponent (or of over [`MAX_PLAIN_NUMBER`] bytes) was
    /// read: JSON serde_json may still refuse (a lone surrogate, a number out of `f64` range).
    unusual: bool,
}

/// Numbers this long may overflow an `f64` (see [`Cursor::unusual`]); real ones are shorter.
const MAX_PLAIN_NUMBER: usize = 64;

impl<'a> Cursor<'a> {
    /// At the start of `text`; `compact` refuses whitespace between tokens.
    pub(crate) fn new(text: &'a str, compact: bool) -> Self {
        Cursor {
            text,
            at: 0,
            depth: 0,
            compact,
            unusual: false,
        }
    }

    /// Whether something was read that the grammar allows but serde_json may still refuse: a
    /// `\u` escape (a lone surrogate is an error there) or a number with an exponent or of
    /// over 64 bytes (out of `f64` range is an error there). A reader that promises serde_json
    /// would accept the text hands such input to serde_json instead.
    pub(crate) fn unusual(&self) -> bool {
        self.unusual
    }

    /// The byte offset reached.
    pub(crate) fn position(&self) -> usize {
        self.at
    }

    #[inline(always)]
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.at).copied()
    }

    /// Skips whitespace (refused in compact mode).
    #[inline(always)]
    fn ws(&mut self) -> Option<()> {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            if self.compact {
                return None;
            }
            self.at += 1;
        }
        Some(())
    }

    #[inline(always)]
    fn eat(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.at += 1)
    }

    /// The next byte, after whitespace.
    #[inline(always)]
    pub(crate) fn peek_token(&mut self) -> Option<u8> {
        self.ws()?;
        self.peek()
    }

    /// Only whitespace is left.
    pub(crate) fn end(mut self) -> Option<()> {
        self.ws()?;
        (self.at == self.text.len()).then_some(())
    }

    /// Enters an object: `{`.
    #[inline(always)]
    pub(crate) fn begin_object(&mut self) -> Option<()> {
        self.ws()?;
        self.eat(b'{')?;
        self.enter()
    }

    /// Enters an array: `[`.
    #[inline(always)]
    pub(crate) fn begin_array(&mut self) -> Option<()> {
        self.ws()?;
        self.eat(b'[')?;
        self.enter()
    }

    #[inline(always)]
    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    /// The next key of the object being read, its value next; `Some(None)` after the closing
    /// `}`. `first` is true until the first call. Keys with escapes are refused (their text
    /// would need escaping again where the splicer writes it).
    #[inline(always)]
    pub(crate) fn next_key(&mut self, first: &mut bool) -> Option<Option<&'a str>> {
        Some(self.next_key_at(first)?.map(|(key, _)| key))
    }

    /// [`Self::next_key`] and where its opening quote is: a reader that copies whole entries
    /// (`"key":value`) takes them from there.
    #[inline(always)]
    pub(crate) fn next_key_at(&mut self, first: &mut bool) -> Option<Option<(&'a str, usize)>> {
        match self.next_raw_key(first)? {
            Some((_, true, _)) => None,
            Some((raw, false, at)) => Some(Some((&raw[1..raw.len() - 1], at))),
            None => Some(None),
        }
    }

    /// [`Self::next_key`] as written (quotes included), whether it has escapes, and where it
    /// starts.
    #[inline(always)]
    fn next_raw_key(&mut self, first: &mut bool) -> Option<Option<(&'a str, bool, usize)>> {
        self.ws()?;
        if !self.more(first, b'}')? {
            return Some(None);
        }
        self.ws()?;
        let at = self.at;
        let (key, escaped) = self.string()?;
        self.ws()?;
        self.eat(b':')?;
        self.ws()?;
        Some(Some((key, escaped, at)))
    }

    /// Whether the array being read has another element (read next); false after the closing
    /// `]`.
    #[inline(always)]
    pub(crate) fn next_element(&mut self, first: &mut bool) -> Option<bool> {
        self.ws()?;
        let more = self.more(first, b']')?;
        if more {
            self.ws()?;
        }
        Some(more)
    }

    /// After an opening bracket (`first`) or an element: the closing `close`, or (not first) a
    /// comma. A comma before the closing bracket is refused by the element that must follow.
    #[inline(always)]
    fn more(&mut self, first: &mut bool, close: u8) -> Option<bool> {
        if self.peek()? == close {
            self.at += 1;
            self.depth -= 1;
            return Some(false);
        }
        if !std::mem::take(first) {
            self.eat(b',')?;
        }
        Some(true)
    }

    /// One whole value, validated; its text, without surrounding whitespace.
    #[inline(always)]
    pub(crate) fn value(&mut self) -> Option<&'a str> {
        self.ws()?;
        let start = self.at;
        self.skip_value()?;
        self.text.get(start..self.at)
    }

    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => {
                self.begin_object()?;
                let mut first = true;
                while self.next_raw_key(&mut first)?.is_some() {
                    self.skip_value()?;
                }
                Some(())
            }
            b'[' => {
                self.begin_array()?;
                let mut first = true;
                while self.next_element(&mut first)? {
                    self.skip_value()?;
                }
                Some(())
            }
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            _ => self.number(),
        }
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        let end = self.at + word.len();
        (self.bytes().get(self.at..end)? == word.as_bytes()).then(|| self.at = end)
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Option<()> {
        let start = self.at;
        let _ = self.eat(b'-');
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits()?,
            _ => return None,
        }
        if self.eat(b'.').is_some() {
            self.digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            self.digits()?;
            self.unusual = true;
        }
        self.unusual |= self.at - start > MAX_PLAIN_NUMBER;
        Some(())
    }

    /// One or more ASCII digits.
    fn digits(&mut self) -> Option<()> {
        let start = self.at;
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
        (self.at > start).then_some(())
    }

    /// A string, quotes included, and whether it has escapes.
    #[inline(always)]
    fn string(&mut self) -> Option<(&'a str, bool)> {
        let start = self.at;
        self.eat(b'"')?;
        let bytes = self.bytes();
        let mut i = self.at;
        let mut escaped = false;
        loop {
            i += plain_run(bytes.get(i..)?);
            match *bytes.get(i)? {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    match *bytes.get(i + 1)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                        b'u' => {
                            self.unusual = true;
                            let hex = bytes.get(i + 2..i + 6)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            i += 6;
                        }
                        _ => return None,
                    }
                }
                // A control character: it must be escaped.
                _ => return None,
            }
        }
        self.at = i + 1;
        Some((self.text.get(start..self.at)?, escaped))
    }
}

/// Marks the key with flag `bit` seen in `seen`; `None` the second time. A reader that keeps
/// the first of a repeated key would disagree with a `Value`, which keeps the last: so it
/// declines, and the `Value` path decides.
pub(crate) fn once(seen: &mut u8, bit: u8) -> Option<()> {
    (*seen & bit == 0).then(|| *seen |= bit)
}

/// The length of the run at the start of `bytes` that a string copies as it is: no `"`, `\`
/// or control character. Strings are most of what a chunk is, and a conversation's content is
/// most of a request.
#[inline(always)]
fn plain_run(bytes: &[u8]) -> usize {
    // Most strings (keys, ids, a chunk's token) end within a few words.
    let short = plain_words(bytes, SHORT);
    if short < SHORT {
        return short;
    }
    // Then whole blocks, each checked without an early exit so that the compiler vectorises it
    // (about a third of the word loop's instructions); the block with the stop is walked again
    // word by word to find it.
    let mut i = SHORT;
    for block in bytes[SHORT..].chunks_exact(BLOCK) {
        let stop = block.iter().fold(0u8, |stop, &b| {
            stop | u8::from(b == b'"' || b == b'\\' || b < 0x20)
        });
        if stop != 0 {
            break;
        }
        i += BLOCK;
    }
    i + plain_words(&bytes[i..], usize::MAX)
}

/// The block [`plain_run`] checks at once.
const BLOCK: usize = 64;

/// How far [`plain_run`] reads word by word before it switches to blocks.
const SHORT: usize = 32;

/// [`plain_run`] eight bytes at a time, reading at most `limit` bytes (rounded up to a word)
/// before giving up with the count so far.
fn plain_words(bytes: &[u8], limit: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    /// High bit set in each byte of `w` below `n` (exact up to the first such byte, which is
    /// all that is read: a borrow only reaches the bytes above it).
    fn below(w: u64, n: u8) -> u64 {
        w.wrapping_sub(ONES * u64::from(n)) & !w & HIGHS
    }
    let mut i = 0;
    while let Some(word) = bytes.get(i..i + 8) {
        if i >= limit {
            return i;
        }
        let w = u64::from_le_bytes(word.try_into().unwrap_or_default());
        let stops = below(w ^ (ONES * u64::from(b'"')), 1)
            | below(w ^ (ONES * u64::from(b'\\')), 1)
            | below(w, 0x20);
        if stops != 0 {
            return i + (stops.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = bytes.get(i) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            break;
        }
        i += 1;
    }
    i
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::value::RawValue;

    /// The raw text of the single value in `text`, as the cursor reads it.
    fn raw(text: &str, compact: bool) -> Option<&str> {
        let mut c = Cursor::new(text, compact);
        let v = c.value()?;
        c.end()?;
        Some(v)
    }

    /// What serde_json's `RawValue` answers for the same text.
    fn serde_raw(text: &str) -> Option<&str> {
        serde_json::from_str::<&RawValue>(text)
            .ok()
            .map(|r| r.get())
    }

    #[test]
    fn accepts_and_refuses_what_serde_json_does() {
        for text in [
            r#"{"a":[1,-0.5e+3,true,false,null,{"b":"c\"\\\/\b\f\n\r\t\u00e9"}]}"#,
            " { \"a\" : [ 1 , 2 ] } ",
            "0",
            "-0",
            "1E9",
            "\"\"",
            "[]",
            "{}",
            "[1,]",
            "{\"a\":1,}",
            "[01]",
            "1.",
            ".5",
            "-",
            "+1",
            "1e",
            "tru",
            "nul",
            "\"\\x\"",
            "\"\\u12g4\"",
            "\"a\u{1}b\"",
            "\"unterminated",
            "{\"a\" 1}",
            "{1:2}",
            "[1 2]",
            "[1]]",
            "",
            "   ",
            "\"é 🎉\"",
        ] {
            assert_eq!(raw(text, false), serde_raw(text), "{text:?}");
        }
    }

    #[test]
    fn compact_mode_refuses_whitespace_between_tokens_only() {
        assert_eq!(raw(r#"{"a":"b c"}"#, true), Some(r#"{"a":"b c"}"#));
        for text in [r#"{"a": 1}"#, r#"{ "a":1}"#, r#"[1 ]"#, " 1", "1\n"] {
            assert_eq!(raw(text, true), None, "{text:?}");
            assert!(raw(text, false).is_some(), "{text:?}");
        }
    }

    #[test]
    fn refuses_nesting_deeper_than_serde_json_parses() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(raw(&deep(127), false).is_some());
        assert!(serde_json::from_str::<serde_json::Value>(&deep(127)).is_ok());
        assert!(raw(&deep(128), false).is_none());
        assert!(serde_json::from_str::<serde_json::Value>(&deep(128)).is_err());
    }

    #[test]
    fn keys_with_escapes_are_refused() {
        let mut c = Cursor::new(r#"{"a\u0062":1}"#, false);
        c.begin_object().expect("object");
        assert_eq!(c.next_key(&mut true), None);
    }

    /// JSON-ish text: valid documents, then mutated by a byte edit.
    fn jsonish() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<String>().prop_map(serde_json::Value::from),
        ];
        let value = leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::btree_map("[a-z\"\\\\]{0,4}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        });
        (
            value,
            any::<bool>(),
            any::<prop::sample::Index>(),
            edit(),
            any::<bool>(),
        )
            .prop_map(|(v, pretty, at, edit, delete)| {
                let text = if pretty {
                    serde_json::to_string_pretty(&v).expect("json")
                } else {
                    serde_json::to_string(&v).expect("json")
                };
                mutate(text, at, edit, delete)
            })
    }

    /// Edits that break JSON in the ways upstreams do (or not at all).
    pub(crate) fn edit() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            Just(""),
            Just(" "),
            Just(","),
            Just("\""),
            Just("\\"),
            Just("]"),
            Just("}"),
            Just("0"),
            Just("-"),
            Just("e"),
            Just("\u{1}"),
        ]
    }

    /// `text` with `edit` inserted at `at`, or replacing the character there when `delete`.
    pub(crate) fn mutate(
        mut text: String,
        at: prop::sample::Index,
        edit: &str,
        delete: bool,
    ) -> String {
        let mut i = at.index(text.len() + 1);
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        if delete && i < text.len() {
            let next = text[i..].chars().next().map_or(0, char::len_utf8);
            text.replace_range(i..i + next, edit);
        } else {
            text.insert_str(i, edit);
        }
        text
    }

    proptest! {
        #[test]
        fn plain_run_stops_where_a_byte_loop_does(
            bytes in proptest::collection::vec(
                prop_oneof![any::<u8>(), Just(b'"'), Just(b'\\'), 0x1fu8..=0x21],
                0..40,
            ),
        ) {
            let naive = bytes
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .unwrap_or(bytes.len());
            prop_assert_eq!(plain_run(&bytes), naive);
        }

        /// Long runs too: past the first words, in whole blocks and in the tail after them.
        #[test]
        fn plain_run_finds_the_stop_after_a_long_run(
            run in 0usize..300,
            stop in prop_oneof![Just(b'"'), Just(b'\\'), 0u8..0x20],
            tail in proptest::collection::vec(any::<u8>(), 0..20),
            fill in prop_oneof![Just(b'x'), Just(b' '), Just(0x7f), Just(0xe2), Just(0xff)],
            stopped in any::<bool>(),
        ) {
            let mut bytes = vec![fill; run];
            if stopped {
                bytes.push(stop);
            }
            bytes.extend(tail);
            let naive = bytes
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .unwrap_or(bytes.len());
            prop_assert_eq!(plain_run(&bytes), naive);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn agrees_with_serde_json_raw_value(text in jsonish()) {
            prop_assert_eq!(raw(&text, false), serde_raw(&text), "{:?}", text);
        }
    }
}
