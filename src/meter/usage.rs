//! Token usage as reported by an upstream, normalised.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What one generation consumed, in the counts the cost formula needs.
///
/// `cached_tokens` and `cache_write_tokens` are parts of `prompt_tokens`;
/// `cache_write_1h_tokens` is the part of `cache_write_tokens` written with a one-hour TTL;
/// `reasoning_tokens` is the part of `completion_tokens` spent reasoning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens, cached and cache-written ones included.
    pub prompt_tokens: u64,
    /// Completion tokens, reasoning ones included.
    pub completion_tokens: u64,
    /// Prompt tokens read from the provider's prompt cache.
    pub cached_tokens: u64,
    /// Prompt tokens written to the provider's prompt cache (all TTLs).
    pub cache_write_tokens: u64,
    /// The part of `cache_write_tokens` written with a one-hour TTL.
    pub cache_write_1h_tokens: u64,
    /// The part of `completion_tokens` spent on reasoning.
    pub reasoning_tokens: u64,
    /// Images in the prompt.
    pub images: u64,
    /// Web searches run for the request.
    pub web_search_requests: u64,
    /// True when the counts were estimated from text lengths, not reported by the upstream.
    pub estimated: bool,
}

/// Characters per token used by [`Usage::estimate`].
const CHARS_PER_TOKEN: u64 = 4;

impl Usage {
    /// Reads an OpenAI/OpenRouter `usage` object; Anthropic's field names
    /// (`input_tokens`, `output_tokens`, `cache_read_input_tokens`,
    /// `cache_creation_input_tokens`, `cache_creation.ephemeral_1h_input_tokens`) are understood
    /// too. `None` when `v` is not an object or has no token count at all.
    ///
    /// ```
    /// use switchyard::meter::usage::Usage;
    /// let v = serde_json::json!({
    ///     "prompt_tokens": 120, "completion_tokens": 30,
    ///     "prompt_tokens_details": {"cached_tokens": 100},
    ///     "completion_tokens_details": {"reasoning_tokens": 12}
    /// });
    /// let u = Usage::from_openai(&v).unwrap();
    /// assert_eq!((u.prompt_tokens, u.cached_tokens, u.reasoning_tokens), (120, 100, 12));
    /// ```
    pub fn from_openai(v: &Value) -> Option<Usage> {
        let obj = v.as_object()?;
        let nested = |outer: &str, inner: &str| count(obj.get(outer).and_then(|d| d.get(inner)));
        Counts {
            prompt_tokens: count(obj.get("prompt_tokens")),
            completion_tokens: count(obj.get("completion_tokens")),
            output_tokens: count(obj.get("output_tokens")),
            input_tokens: count(obj.get("input_tokens")),
            cached_tokens: nested("prompt_tokens_details", "cached_tokens"),
            cache_write_tokens: nested("prompt_tokens_details", "cache_write_tokens"),
            cache_read_input_tokens: count(obj.get("cache_read_input_tokens")),
            cache_creation_input_tokens: count(obj.get("cache_creation_input_tokens")),
            ephemeral_1h_input_tokens: nested("cache_creation", "ephemeral_1h_input_tokens"),
            reasoning_tokens: nested("completion_tokens_details", "reasoning_tokens"),
            web_search_requests: nested("server_tool_use", "web_search_requests"),
        }
        .usage()
    }

    /// [`Usage::from_openai`] of the JSON text `json` (a `usage` value as the upstream wrote
    /// it), without building a `Value` tree for the usual shapes; an error when `json` is not
    /// valid JSON (as parsing it into a `Value` would report).
    ///
    /// ```
    /// use switchyard::meter::usage::Usage;
    /// let u = Usage::from_openai_json(r#"{"prompt_tokens":3,"completion_tokens":4.0}"#).unwrap();
    /// assert_eq!(u.map(|u| (u.prompt_tokens, u.completion_tokens)), Some((3, 4)));
    /// assert_eq!(Usage::from_openai_json("null").unwrap(), None);
    /// ```
    pub fn from_openai_json(json: &str) -> serde_json::Result<Option<Usage>> {
        match serde_json::from_str::<Option<typed::Usage>>(json) {
            Ok(u) => Ok(u.and_then(|u| u.0.usage())),
            // A shape the typed read does not decide (a count that is not a number, a nested
            // object that is not one, serde_json's raw-value marker key) or a text that does
            // not parse: the `Value` decides, as it always did.
            Err(_) => serde_json::from_str::<Value>(json).map(|v| Usage::from_openai(&v)),
        }
    }

    /// Estimates usage from text lengths (about four characters per token, rounded up) for
    /// upstreams that report none; marks the result `estimated`.
    pub fn estimate(prompt_chars: u64, completion_chars: u64) -> Usage {
        Usage {
            prompt_tokens: prompt_chars.div_ceil(CHARS_PER_TOKEN),
            completion_tokens: completion_chars.div_ceil(CHARS_PER_TOKEN),
            estimated: true,
            ..Usage::default()
        }
    }

    /// Prompt plus completion tokens.
    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}

/// The counts a `usage` object carries, each as [`count`] reads it; both readers
/// ([`Usage::from_openai`] and [`Usage::from_openai_json`]) fill this in and share the rules
/// below.
#[derive(Debug, Default)]
struct Counts {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    output_tokens: Option<u64>,
    input_tokens: Option<u64>,
    /// `prompt_tokens_details.cached_tokens`.
    cached_tokens: Option<u64>,
    /// `prompt_tokens_details.cache_write_tokens`.
    cache_write_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    /// `cache_creation.ephemeral_1h_input_tokens`.
    ephemeral_1h_input_tokens: Option<u64>,
    /// `completion_tokens_details.reasoning_tokens`.
    reasoning_tokens: Option<u64>,
    /// `server_tool_use.web_search_requests`.
    web_search_requests: Option<u64>,
}

impl Counts {
    /// The usage these counts describe; `None` when there is no token count at all.
    fn usage(&self) -> Option<Usage> {
        let prompt = self.prompt_tokens;
        let completion = self.completion_tokens.or(self.output_tokens);
        // Anthropic's input_tokens excludes the cache reads and writes; OpenAI's prompt_tokens
        // includes them.
        let anthropic_input = self.input_tokens;
        if prompt.is_none() && completion.is_none() && anthropic_input.is_none() {
            return None;
        }
        let cached = self
            .cached_tokens
            .or(self.cache_read_input_tokens)
            .unwrap_or(0);
        let cache_write = self
            .cache_write_tokens
            .or(self.cache_creation_input_tokens)
            .unwrap_or(0);
        let cache_write_1h = self.ephemeral_1h_input_tokens.unwrap_or(0).min(cache_write);
        let prompt_tokens = match (prompt, anthropic_input) {
            (Some(p), _) => p,
            (None, Some(input)) => input.saturating_add(cached).saturating_add(cache_write),
            (None, None) => 0,
        };
        Some(Usage {
            prompt_tokens,
            completion_tokens: completion.unwrap_or(0),
            cached_tokens: cached,
            cache_write_tokens: cache_write,
            cache_write_1h_tokens: cache_write_1h,
            reasoning_tokens: self.reasoning_tokens.unwrap_or(0),
            images: 0,
            web_search_requests: self.web_search_requests.unwrap_or(0),
            estimated: false,
        })
    }
}

/// A non-negative token count; some upstreams send floats such as `12.0`.
fn count(v: Option<&Value>) -> Option<u64> {
    let v = v?;
    v.as_u64().or_else(|| v.as_f64().and_then(float_count))
}

/// A float as a token count: rounded when non-negative (saturating: `as` clamps huge ones).
fn float_count(f: f64) -> Option<u64> {
    (f >= 0.0).then(|| f.round() as u64)
}

/// A `usage` object read straight into [`Counts`] instead of a `Value` tree.
///
/// Each count accepts exactly what [`count`] reads (a number; `null` counts as absent), each
/// nested object exactly what `Value::get` looks into (an object; `null` is absent); any other
/// type is an error, and the caller then reads the `Value`. As in a `Value`, a repeated key's
/// last value wins. Every other entry is parsed the way a `Value` would parse it (numbers in
/// range, valid escapes, nesting depth) and dropped, so the typed read fails on exactly the
/// texts a `Value` parse fails on — skipping them unchecked would accept more. serde_json's
/// raw-value marker key, which a `Value` parse treats specially, is an error too.
mod typed {
    use serde::Deserialize;
    use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    use std::fmt;

    /// The top-level keys read: the counts first, then the nested objects.
    pub(super) const TOP: [&str; 10] = [
        "prompt_tokens",
        "completion_tokens",
        "output_tokens",
        "input_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
        "prompt_tokens_details",
        "cache_creation",
        "completion_tokens_details",
        "server_tool_use",
    ];
    /// Where the nested objects start in [`TOP`].
    const FIRST_OBJECT: usize = 6;
    /// The counts read inside each nested object, in [`TOP`]'s order.
    const NESTED: [&[&str]; 4] = [
        &["cached_tokens", "cache_write_tokens"],
        &["ephemeral_1h_input_tokens"],
        &["reasoning_tokens"],
        &["web_search_requests"],
    ];

    /// The counts of a nested object, by its [`NESTED`] names.
    type Inner = [Option<u64>; 2];

    /// A `usage` object.
    pub(super) struct Usage(pub(super) super::Counts);

    impl<'de> Deserialize<'de> for Usage {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_map(UsageVisitor)
        }
    }

    struct UsageVisitor;

    impl<'de> Visitor<'de> for UsageVisitor {
        type Value = Usage;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a usage object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Usage, A::Error> {
            let mut top = [None; FIRST_OBJECT];
            let mut nested: [Option<Inner>; 4] = [None; 4];
            while let Some(key) = map.next_key_seed(Key(&TOP))? {
                match key {
                    Some(i) if i < FIRST_OBJECT => top[i] = map.next_value::<Count>()?.0,
                    Some(i) => {
                        let names = NESTED[i - FIRST_OBJECT];
                        nested[i - FIRST_OBJECT] = map.next_value_seed(Nested(names))?;
                    }
                    None => map.next_value::<Checked>().map(drop)?,
                }
            }
            let inner = |object: usize, count: usize| nested[object].and_then(|n| n[count]);
            Ok(Usage(super::Counts {
                prompt_tokens: top[0],
                completion_tokens: top[1],
                output_tokens: top[2],
                input_tokens: top[3],
                cache_read_input_tokens: top[4],
                cache_creation_input_tokens: top[5],
                cached_tokens: inner(0, 0),
                cache_write_tokens: inner(0, 1),
                ephemeral_1h_input_tokens: inner(1, 0),
                reasoning_tokens: inner(2, 0),
                web_search_requests: inner(3, 0),
            }))
        }
    }

    /// A key as its index in the names read (`None` for any other key), without allocating.
    struct Key(&'static [&'static str]);

    impl<'de> DeserializeSeed<'de> for Key {
        type Value = Option<usize>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
            d.deserialize_str(self)
        }
    }

    impl Visitor<'_> for Key {
        type Value = Option<usize>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a key")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<usize>, E> {
            unmarked(v)?;
            Ok(self.0.iter().position(|k| *k == v))
        }
    }

    /// Any key but serde_json's raw-value marker: a `Value` parse reads an object whose first
    /// key it is as the JSON text of its value, which only the `Value` path then mirrors.
    fn unmarked<E: de::Error>(key: &str) -> Result<(), E> {
        if key == RAW_VALUE_TOKEN {
            return Err(E::custom("raw-value marker key"));
        }
        Ok(())
    }

    /// serde_json's (private, stable) marker key of a raw value inside a `Value`.
    const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

    /// A key of an entry [`Checked`] drops.
    struct CheckedKey;

    impl<'de> Deserialize<'de> for CheckedKey {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_str(CheckedKey)
        }
    }

    impl Visitor<'_> for CheckedKey {
        type Value = CheckedKey;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a key")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<CheckedKey, E> {
            unmarked(v).map(|()| CheckedKey)
        }
    }

    /// A nested object's counts (`None` for `null`), by the names given.
    struct Nested(&'static [&'static str]);

    impl<'de> DeserializeSeed<'de> for Nested {
        type Value = Option<Inner>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Inner>, D::Error> {
            d.deserialize_option(self)
        }
    }

    impl<'de> Visitor<'de> for Nested {
        type Value = Option<Inner>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Option<Inner>, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<Inner>, D::Error> {
            // Only an object: `Value::get` finds nothing in an array, and the `Value` decides.
            d.deserialize_map(self)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Inner>, A::Error> {
            let mut counts = [None; 2];
            while let Some(key) = map.next_key_seed(Key(self.0))? {
                match key {
                    Some(i) => counts[i] = map.next_value::<Count>()?.0,
                    None => map.next_value::<Checked>().map(drop)?,
                }
            }
            Ok(Some(counts))
        }
    }

    /// A count as [`super::count`] reads it: `None` for `null` or a negative number.
    struct Count(Option<u64>);

    impl<'de> Deserialize<'de> for Count {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(CountVisitor)
        }
    }

    struct CountVisitor;

    impl Visitor<'_> for CountVisitor {
        type Value = Count;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number or null")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Count, E> {
            Ok(Count(None))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Count, E> {
            Ok(Count(Some(v)))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Count, E> {
            // serde_json hands over only negative integers as `i64`: `as_f64` of one is
            // negative, which `count` refuses.
            Ok(Count(u64::try_from(v).ok()))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Count, E> {
            Ok(Count(super::float_count(v)))
        }
    }

    /// Any JSON value, parsed as a `Value` would parse it (so failing where it fails), kept
    /// nowhere: strings are borrowed or unescaped into the parser's scratch space.
    struct Checked;

    impl<'de> Deserialize<'de> for Checked {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(Checked)
        }
    }

    impl<'de> Visitor<'de> for Checked {
        type Value = Checked;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Checked, E> {
            Ok(Checked)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Checked, E> {
            Ok(Checked)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Checked, E> {
            Ok(Checked)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Checked, E> {
            Ok(Checked)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Checked, E> {
            Ok(Checked)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Checked, E> {
            Ok(Checked)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
            while seq.next_element::<Checked>()?.is_some() {}
            Ok(Checked)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
            while map.next_entry::<CheckedKey, Checked>()?.is_some() {}
            Ok(Checked)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn reads_openrouter_usage() {
        let v = json!({
            "prompt_tokens": 1000, "completion_tokens": 200, "total_tokens": 1200,
            "prompt_tokens_details": {"cached_tokens": 600, "cache_write_tokens": 300},
            "completion_tokens_details": {"reasoning_tokens": 150},
            "server_tool_use": {"web_search_requests": 2}
        });
        let u = Usage::from_openai(&v).expect("usage");
        assert_eq!(
            u,
            Usage {
                prompt_tokens: 1000,
                completion_tokens: 200,
                cached_tokens: 600,
                cache_write_tokens: 300,
                reasoning_tokens: 150,
                web_search_requests: 2,
                ..Usage::default()
            }
        );
    }

    #[test]
    fn reads_anthropic_usage() {
        let v = json!({
            "input_tokens": 10, "output_tokens": 50,
            "cache_read_input_tokens": 100, "cache_creation_input_tokens": 40,
            "cache_creation": {"ephemeral_5m_input_tokens": 10, "ephemeral_1h_input_tokens": 30},
            "server_tool_use": {"web_search_requests": 1}
        });
        let u = Usage::from_openai(&v).expect("usage");
        assert_eq!(u.prompt_tokens, 150);
        assert_eq!(u.completion_tokens, 50);
        assert_eq!((u.cached_tokens, u.cache_write_tokens), (100, 40));
        assert_eq!(u.cache_write_1h_tokens, 30);
        assert_eq!(u.web_search_requests, 1);
    }

    #[test]
    fn rejects_non_usage_and_tolerates_nulls() {
        assert_eq!(Usage::from_openai(&json!(null)), None);
        assert_eq!(Usage::from_openai(&json!({"foo": 1})), None);
        let u = Usage::from_openai(&json!({
            "prompt_tokens": 5.0, "completion_tokens": null, "prompt_tokens_details": null
        }))
        .expect("usage");
        assert_eq!((u.prompt_tokens, u.completion_tokens), (5, 0));
    }

    /// `from_openai_json` answers what parsing into a `Value` and `from_openai` answer.
    fn agree(json: &str) {
        let want = serde_json::from_str::<Value>(json).map(|v| Usage::from_openai(&v));
        let got = Usage::from_openai_json(json);
        assert_eq!(got.as_ref().ok(), want.as_ref().ok(), "{json}");
        assert_eq!(got.is_err(), want.is_err(), "{json}");
    }

    /// Whether the typed read decides `json` on its own, without the `Value` fallback.
    fn typed_decides(json: &str) -> bool {
        serde_json::from_str::<Option<typed::Usage>>(json).is_ok()
    }

    #[test]
    fn the_typed_read_agrees_with_the_value() {
        let ordinary = [
            r#"{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19}"#,
            r#"{"prompt_tokens":1000,"completion_tokens":200,"total_tokens":1200,"prompt_tokens_details":{"cached_tokens":600,"cache_write_tokens":300,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":150,"audio_tokens":null},"server_tool_use":{"web_search_requests":2},"cost":0.0012,"is_byok":false,"cost_details":{"upstream_inference_cost":null}}"#,
            r#"{"input_tokens":10,"output_tokens":50,"cache_read_input_tokens":100,"cache_creation_input_tokens":40,"cache_creation":{"ephemeral_5m_input_tokens":10,"ephemeral_1h_input_tokens":30},"service_tier":"standard"}"#,
            r#"{"prompt_tokens":5.0,"completion_tokens":null,"prompt_tokens_details":null}"#,
            r#"{"prompt_tokens":-3,"completion_tokens":-0,"input_tokens":2.5,"output_tokens":1e2}"#,
            r#"{"prompt_tokens":18446744073709551616,"completion_tokens":1e300,"input_tokens":-0.0}"#,
            r#"{"prompt_tokens":1,"prompt_tokens":2,"prompt_tokens_details":{"cached_tokens":1},"prompt_tokens_details":{}}"#,
            r#"{"pr\u006fmpt_tokens":4,"x":"\ud83c\udf89 \n","nested":[[{"a":[]}]]}"#,
            r#"{"foo":1}"#,
            "{}",
            "null",
            " {\n \"prompt_tokens\" : 3 } ",
        ];
        for json in ordinary {
            agree(json);
            assert!(typed_decides(json), "{json}");
        }
        // Odd types are left to the `Value`; texts a `Value` refuses are refused.
        for json in [
            r#"{"prompt_tokens":"12"}"#,
            r#"{"prompt_tokens":3,"prompt_tokens_details":[600]}"#,
            r#"{"prompt_tokens":3,"completion_tokens_details":7}"#,
            r#"{"prompt_tokens":true,"completion_tokens":4}"#,
            r#"{"$serde_json::private::RawValue":"{\"prompt_tokens\":5}"}"#,
            r#"{"prompt_tokens":3,"x":{"$serde_json::private::RawValue":"nope"}}"#,
            r#"{"prompt_tokens":3,"x":1e400}"#,
            r#"{"prompt_tokens":3,"x":"\ud800"}"#,
            r#"{"prompt_tokens":3,"x":"\q"}"#,
            r#"{"prompt_tokens":3,"#,
            r#"{"prompt_tokens":3} x"#,
            "[1,2]",
            r#""usage""#,
            "7",
        ] {
            agree(json);
        }
        // Nesting deeper than a `Value` parse allows fails both ways.
        let deep = format!(
            r#"{{"prompt_tokens":3,"x":{}1{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        agree(&deep);
        assert!(Usage::from_openai_json(&deep).is_err());
    }

    /// JSON texts of token counts, odd ones included.
    fn count_text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<u64>().prop_map(|n| n.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| format!("{f:e}")),
            (0_u32..100_000, 0_u32..1000).prop_map(|(a, b)| format!("{a}.{b}")),
            prop::sample::select(vec![
                "null",
                "0",
                "-0",
                "-0.0",
                "0.5",
                "1.5",
                "2.5",
                "1e2",
                "1E-2",
                "12.0",
                "18446744073709551615",
                "18446744073709551616",
                "-9223372036854775809",
                "1e400",
                "\"12\"",
                "true",
                "[1]",
                "{}",
                "{\"a\":1}",
            ])
            .prop_map(str::to_owned),
        ]
    }

    /// Keys: those `from_openai` reads, and others.
    fn key() -> impl Strategy<Value = String> {
        let others = [
            "cached_tokens",
            "cache_write_tokens",
            "ephemeral_1h_input_tokens",
            "reasoning_tokens",
            "web_search_requests",
            "total_tokens",
            "audio_tokens",
            "cost",
            "pr\\u006fmpt_tokens",
            "$serde_json::private::RawValue",
        ];
        prop::sample::select(
            super::typed::TOP
                .iter()
                .chain(&others)
                .copied()
                .collect::<Vec<_>>(),
        )
        .prop_map(str::to_owned)
    }

    /// `{"k":v,…}` with the entries given (repeats kept, as a text can have them).
    fn object(entries: &[(String, String)]) -> String {
        let body: Vec<String> = entries
            .iter()
            .map(|(k, v)| format!("\"{k}\":{v}"))
            .collect();
        format!("{{{}}}", body.join(","))
    }

    /// A `usage`-like value's text: nested objects of counts, other values, and rare non-objects.
    fn usage_text() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            4 => count_text(),
            1 => "[a-z \\\"]{0,6}".prop_map(|s| format!("\"{s}\"")),
        ];
        let value = prop_oneof![
            3 => leaf.clone(),
            1 => prop::collection::vec((key(), leaf), 0..4).prop_map(|e| object(&e)),
        ];
        prop_oneof![
            12 => prop::collection::vec((key(), value), 0..8).prop_map(|e| object(&e)),
            1 => count_text(),
        ]
    }

    /// A number in range, or `null`.
    fn plain_count() -> impl Strategy<Value = String> {
        count_text().prop_filter("a number in range or null", |t| {
            serde_json::from_str::<Value>(t).is_ok_and(|v| v.is_number() || v.is_null())
        })
    }

    /// A `usage` object with numbers (in range) or `null` under the count keys, objects of them
    /// (or `null`) under the nested keys, anything valid elsewhere: every one the typed read
    /// decides alone.
    fn plain_usage_text() -> impl Strategy<Value = String> {
        let nested = prop::collection::vec((key(), plain_count()), 0..4).prop_map(|entries| {
            let entries: Vec<_> = entries
                .into_iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .collect();
            object(&entries)
        });
        let entry = (key(), plain_count(), nested, usage_text()).prop_map(|(k, n, o, other)| {
            let v = match k.as_str() {
                "prompt_tokens_details"
                | "cache_creation"
                | "completion_tokens_details"
                | "server_tool_use" => o,
                "prompt_tokens"
                | "pr\\u006fmpt_tokens"
                | "completion_tokens"
                | "output_tokens"
                | "input_tokens"
                | "cache_read_input_tokens"
                | "cache_creation_input_tokens" => n,
                _ if !other.contains('$') && serde_json::from_str::<Value>(&other).is_ok() => other,
                _ => n,
            };
            (k, v)
        });
        prop::collection::vec(entry, 0..8).prop_map(|entries| {
            let entries: Vec<_> = entries
                .into_iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .collect();
            object(&entries)
        })
    }

    proptest! {
        #[test]
        fn the_typed_read_agrees_with_the_value_on_anything(json in usage_text()) {
            agree(&json);
        }

        #[test]
        fn the_typed_read_decides_plain_usage(json in plain_usage_text()) {
            prop_assert!(typed_decides(&json), "{}", json);
            agree(&json);
        }
    }

    #[test]
    fn estimates_four_chars_per_token() {
        let u = Usage::estimate(9, 8);
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.estimated),
            (3, 2, true)
        );
    }
}
