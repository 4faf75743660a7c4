//! `messages` checked on the client's bytes, and parsed into a `Value` only when a layer asks.
//!
//! An OpenAI-style upstream gets the client's own bytes of `messages`
//! ([`ChatRequest::verbatim_field`](crate::context::ChatRequest::verbatim_field)), so on the common
//! path nothing reads the conversation as a tree: parsing only has to promise that it is valid,
//! that every message has a `role`, and how many characters of text it holds. Building the
//! `Value` anyway cost about 10,000 instructions for a 1 KB request and a copy of every byte of a
//! large one. [`check`] does the same work in one validating pass ([`crate::json_scan`]) that
//! copies nothing; [`ChatRequest::body`](crate::context::ChatRequest::body) parses the field the
//! first time a layer (the Auto Router, the Anthropic and Gemini translators) or a user asks.
//!
//! The check accepts a value only when serde_json is sure to parse it the same way without an
//! error, so a request gets the same answer either way. Anything else — not an array, empty, a
//! message without a string `role`, escapes in keys, `\u` escapes (lone surrogates are an error
//! there), numbers serde_json may find out of range, bad UTF-8 or bad JSON — is left to the
//! eager `Value` path, which words the error exactly as before.
//!
//! ```
//! use switchyard::context::ApiKind;
//! use switchyard::context::parse_request;
//! let body = br#"{"model":"a/b","messages":[{"role":"user","content":"hello"}]}"#;
//! let chat = parse_request(ApiKind::Chat, body, &Default::default()).unwrap();
//! assert_eq!(chat.prompt_chars, 5);
//! // Parsed when asked for.
//! assert_eq!(chat.body()["messages"][0]["content"], "hello");
//! ```

use crate::json_scan::Cursor;

/// What [`check`] learnt of an accepted `messages` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Checked {
    /// The byte length of the value's text.
    pub(crate) len: usize,
    /// Characters of text in the messages' `content` (as the `Value` path counts them: bytes of
    /// the unescaped strings).
    pub(crate) prompt_chars: usize,
}

/// Checks the `messages` value at the start of `text` (the rest of the body follows it); `None`
/// when it must take the `Value` path (see the module docs).
pub(crate) fn check(text: &str) -> Option<Checked> {
    let mut c = Cursor::new(text, false);
    c.begin_array()?;
    let mut first = true;
    let mut count = 0usize;
    let mut prompt_chars = 0usize;
    while c.next_element(&mut first)? {
        prompt_chars += message(&mut c)?;
        count += 1;
    }
    (count > 0 && !c.unusual()).then(|| Checked {
        len: c.position(),
        prompt_chars,
    })
}

/// One message: an object whose `role` (the last, if repeated, as in a `Value`) is a string;
/// the characters of its `content`.
fn message(c: &mut Cursor<'_>) -> Option<usize> {
    c.begin_object()?;
    let mut first = true;
    let mut role = false;
    let mut chars = 0;
    while let Some(key) = c.next_key(&mut first)? {
        match key {
            "role" => role = c.value()?.starts_with('"'),
            "content" => chars = content(c)?,
            _ => {
                c.value()?;
            }
        }
    }
    role.then_some(chars)
}

/// A `content` value's characters: a string's, or the sum over an array of parts (strings, or
/// objects with a string `text`); anything else has none.
fn content(c: &mut Cursor<'_>) -> Option<usize> {
    if c.peek_token()? != b'[' {
        return c.value().map(string_chars);
    }
    c.begin_array()?;
    let mut first = true;
    let mut chars = 0;
    while c.next_element(&mut first)? {
        chars += if c.peek_token()? == b'{' {
            part(c)?
        } else {
            string_chars(c.value()?)
        };
    }
    Some(chars)
}

/// A content part object: the characters of its `text` (the last, if repeated).
fn part(c: &mut Cursor<'_>) -> Option<usize> {
    c.begin_object()?;
    let mut first = true;
    let mut chars = 0;
    while let Some(key) = c.next_key(&mut first)? {
        let raw = c.value()?;
        if key == "text" {
            chars = string_chars(raw);
        }
    }
    Some(chars)
}

/// The unescaped byte length of `raw` when it is a string (quotes included, validated, without
/// `\u` escapes: those make the check decline); 0 for any other value.
fn string_chars(raw: &str) -> usize {
    let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) else {
        return 0;
    };
    // Each escape (`\n`, `\"`, `\\`, …) is two bytes standing for one.
    let b = inner.as_bytes();
    let mut escapes = 0;
    let mut i = 0;
    while let Some(at) = memchr::memchr(b'\\', &b[i..]) {
        escapes += 1;
        i += at + 2;
        if i >= b.len() {
            break;
        }
    }
    inner.len() - escapes
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    /// The `Value` path's count, for comparison.
    fn value_chars(messages: &Value) -> usize {
        let text = crate::context::parse_body::text_len;
        messages
            .as_array()
            .map(|a| a.iter().map(|m| m.get("content").map_or(0, text)).sum())
            .unwrap_or(0)
    }

    #[test]
    fn counts_text_like_the_value_path() {
        let text = r#"[{"role":"system","content":"be \"brief\"\n"},{"role":"user","content":[{"type":"text","text":"a\\b"},"cd",{"type":"image_url","image_url":{"url":"x"}}],"name":"n"}] , "rest""#;
        let checked = check(text).expect("accepted");
        assert_eq!(&text[..checked.len], text.split(" , ").next().unwrap());
        let v: Value = serde_json::from_str(&text[..checked.len]).unwrap();
        assert_eq!(checked.prompt_chars, value_chars(&v));
        assert_eq!(checked.prompt_chars, 11 + 3 + 2);
    }

    #[test]
    fn declines_what_the_value_path_must_word_or_may_refuse() {
        for text in [
            "[]",
            "{}",
            r#"[{"content":"no role"}]"#,
            r#"[{"role":1}]"#,
            r#"[{"role":"user"},2]"#,
            r#"[{"role":"user","content":"\ud800"}]"#,
            r#"[{"role":"user","n":1e400}]"#,
            r#"[{"ro\u006ce":"user"}]"#,
            r#"[{"role":"user","content":"tab	raw"}]"#,
            r#"[{"role":"user"}"#,
        ] {
            assert_eq!(check(text), None, "{text}");
        }
        // The last of a repeated key counts, as in a `Value`.
        assert_eq!(
            check(r#"[{"role":1,"role":"user"}]"#).map(|c| c.len),
            Some(26)
        );
        assert_eq!(check(r#"[{"role":"user","role":null}]"#), None);
    }

    fn messages() -> impl Strategy<Value = String> {
        let string = prop_oneof![
            "[a-z ]{0,12}".prop_map(|s| format!("\"{s}\"")),
            Just(r#""esc \" \\ \n \/ \t""#.to_owned()),
            Just(r#""snow \u2603""#.to_owned()),
            Just("\"é ☃\"".to_owned()),
        ];
        let scalar = prop_oneof![
            string.clone(),
            Just("null".to_owned()),
            Just("12".to_owned()),
            Just("-0.5e3".to_owned()),
            Just("true".to_owned()),
        ];
        let part = prop_oneof![
            string.clone(),
            (string.clone(), scalar.clone())
                .prop_map(|(t, x)| format!(r#"{{"type":"text","text":{t},"x":{x}}}"#)),
            scalar.clone().prop_map(|t| format!(r#"{{"text":{t}}}"#)),
        ];
        let content = prop_oneof![
            scalar.clone(),
            prop::collection::vec(part, 0..3).prop_map(|p| format!("[{}]", p.join(","))),
        ];
        let message = (scalar.clone(), content, prop::option::of(scalar)).prop_map(|(r, c, e)| {
            let extra = e.map(|e| format!(r#","name":{e}"#)).unwrap_or_default();
            format!(r#"{{"role":{r},"content":{c}{extra}}}"#)
        });
        prop::collection::vec(message, 0..4).prop_map(|m| format!("[{}]", m.join(",")))
    }

    proptest! {
        /// Whatever the check accepts, serde_json parses without error, to a value whose
        /// messages all have a string role and whose text the check counted.
        #[test]
        fn accepts_only_what_serde_json_parses_the_same(
            text in messages(),
            edit in crate::json_scan::tests::edit(),
            at in any::<prop::sample::Index>(),
            delete in any::<bool>(),
        ) {
            let text = crate::json_scan::tests::mutate(text, at, edit, delete);
            if let Some(checked) = check(&text) {
                let v: Value = serde_json::from_str(&text[..checked.len]).expect("serde_json parses it");
                let list = v.as_array().expect("an array");
                prop_assert!(!list.is_empty());
                prop_assert!(list.iter().all(|m| m.get("role").is_some_and(Value::is_string)));
                prop_assert_eq!(checked.prompt_chars, value_chars(&v));
            }
        }

        /// Unmutated, every array of messages with string roles and no `\u` escape or exponent
        /// is accepted.
        #[test]
        fn accepts_plain_conversations(text in messages()) {
            let v: Value = serde_json::from_str(&text).expect("generated JSON");
            let plain = !text.contains("\\u") && !text.contains("e3");
            let roles = v.as_array().is_some_and(|l| !l.is_empty() && l.iter().all(|m| m["role"].is_string()));
            if plain && roles {
                let checked = check(&text).expect("accepted");
                prop_assert_eq!(checked.len, text.len());
                prop_assert_eq!(checked.prompt_chars, value_chars(&v));
            }
        }
    }
}
