//! A whole non-streaming OpenAI-compatible response stamped without building a `Value` tree.
//!
//! The upstream's `chat.completion` (or `text_completion`) goes through the chunk splicer's one
//! validating pass ([`super::splice::splice_object`]): the gateway's `id`, `object`, `model` and
//! `provider` are written first, `created` kept or filled in, finish reasons normalised,
//! reasoning dropped when asked, everything else copied as the upstream wrote it — whitespace
//! inside values included (real upstreams pretty-print; nothing downstream scans these bytes).
//! The byte range of the upstream's `usage` entry is kept so meter can replace it.
//!
//! Anything the splicer does not take (malformed JSON, an embedded `error`, no `choices` array,
//! escaped keys, …) answers `None`: the caller then takes the `Value` path of
//! [`super::parse_response`], which reports the errors exactly as before.

use super::normalize::Stamp;
use super::splice::{SplicedObject, splice_object, write_head};

/// The response in `bytes` stamped for the client; `None` when it needs the `Value` path.
pub(super) fn splice_response(bytes: &[u8], stamp: &Stamp, object: &str) -> Option<SplicedObject> {
    let data = std::str::from_utf8(bytes).ok()?;
    // Room for the gateway's fields and meter's `usage` (with cost), in one allocation.
    let mut out = Vec::with_capacity(data.len() + stamp.model.len() + stamp.provider.len() + 512);
    write_head(&mut out, b"{", stamp, object);
    let out = splice_object(out, stamp.strip_reasoning, data, false, true)?;
    // No `choices` array is an error the `Value` path words.
    out.choices.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Api;
    use crate::context::ApiKind;
    use crate::deferred_json::DeferredJson;
    use crate::translate::normalize::stamp;
    use crate::translate::splice::tests::{finish, string};
    use http_body_util::BodyExt;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn gateway(strip_reasoning: bool) -> Stamp {
        Stamp {
            id: "gen-1".into(),
            model: "openai/gpt-4o \"q\" ✓".into(),
            provider: "Up".into(),
            strip_reasoning,
        }
    }

    /// What the `Value` path answers for `data` (before it is serialised: see the chunk tests).
    fn stamped(data: &str, s: &Stamp, object: &str) -> Value {
        let mut v = super::super::parse_response(Api::OpenAi, ApiKind::Chat, data.as_bytes(), "Up")
            .expect("a valid response");
        stamp(&mut v, s, object);
        v
    }

    fn spliced(data: &str, s: &Stamp, object: &str) -> Option<Value> {
        let out = splice_response(data.as_bytes(), s, object)?;
        let v: Value = serde_json::from_slice(&out.json).expect("spliced JSON parses");
        // What meter reads instead of the bytes: the written first choice's reasons.
        let choice = v["choices"].get(0);
        let text = |key: &str| choice.and_then(|c| c[key].as_str()).map(str::to_owned);
        let noted = choice.map(|_| crate::deferred_json::FirstChoice {
            finish: text("finish_reason"),
            native: text("native_finish_reason"),
        });
        assert_eq!(out.first, noted, "{data}");
        if let Some(r) = out.usage {
            assert!(out.json[r.clone()].starts_with(b",\"usage\":"), "{r:?}");
            assert_eq!(v.get("usage").map(|_| ()), Some(()));
        }
        Some(v)
    }

    /// `created` is the clock's when the upstream has none: equal up to the second it was read.
    fn same(mut a: Value, mut b: Value) {
        for v in [&mut a, &mut b] {
            let created = v.as_object_mut().and_then(|o| o.remove("created"));
            assert!(created.is_some_and(|c| c.is_u64()), "created: {v}");
        }
        assert_eq!(a, b);
    }

    const PRETTY: &str = r#"{
  "id": "chatcmpl-1",
  "object": "chat.completion",
  "created": 1700000000,
  "model": "gpt-4o-2024",
  "choices": [
    {
      "index": 0,
      "message": {
        "role": "assistant",
        "content": "He said \"hi\" \u00e9 — ünï 🎉\n\ttab",
        "reasoning": "hmm",
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\": 1}"}}]
      },
      "logprobs": null,
      "finish_reason": "tool_use"
    }
  ],
  "usage": {
    "prompt_tokens": 12,
    "completion_tokens": 7,
    "total_tokens": 19
  },
  "system_fingerprint": "fp"
}
"#;

    #[test]
    fn splices_a_pretty_printed_response() {
        for strip in [false, true] {
            let s = gateway(strip);
            let v = spliced(PRETTY, &s, "chat.completion").expect("spliced");
            assert_eq!(v["id"], "gen-1");
            assert_eq!(v["object"], "chat.completion");
            assert_eq!(v["model"], "openai/gpt-4o \"q\" ✓");
            assert_eq!(v["provider"], "Up");
            assert_eq!(v["created"], 1_700_000_000);
            let c = &v["choices"][0];
            assert_eq!(c["finish_reason"], "tool_calls");
            assert_eq!(c["native_finish_reason"], "tool_use");
            assert_eq!(c["message"]["content"], "He said \"hi\" é — ünï 🎉\n\ttab");
            assert_eq!(c["message"].get("reasoning").is_none(), strip);
            assert_eq!(v["usage"]["total_tokens"], 19);
            assert_eq!(v, stamped(PRETTY, &s, "chat.completion"));
        }
    }

    #[test]
    fn legacy_completions_and_missing_fields() {
        let s = gateway(false);
        for data in [
            r#"{"object":"text_completion","choices":[{"text":"hi","index":0,"finish_reason":"length"}]}"#,
            r#"{"choices":[],"usage":null,"created":"yesterday"}"#,
            r#" { "choices" : [ { } ] , "error" : null } "#,
        ] {
            let v = spliced(data, &s, "text_completion").expect(data);
            assert_eq!(v["object"], "text_completion");
            same(v, stamped(data, &s, "text_completion"));
        }
    }

    #[test]
    fn leaves_errors_and_the_unusual_to_the_value_path() {
        let s = gateway(false);
        for (data, error) in [
            (r#"{"choices":[{"message":{}}]"#, Some("malformed JSON")),
            (r#"{"choices":[]} x"#, Some("malformed JSON")),
            (
                r#"{"error":{"message":"overloaded","code":529},"choices":[]}"#,
                Some("overloaded"),
            ),
            (r#"{"id":"x","usage":{}}"#, Some("no `choices`")),
            (r#"{"choices":{"0":{}}}"#, Some("no `choices`")),
            (r#"[1]"#, Some("no `choices`")),
            (r#"{"choices":[],"usage":{},"usage":null}"#, None),
            (r#"{"ch\u006fices":[]}"#, None),
            (r#"{"choices":[1]}"#, None),
        ] {
            assert!(
                splice_response(data.as_bytes(), &s, "chat.completion").is_none(),
                "{data}"
            );
            let parsed =
                super::super::parse_response(Api::OpenAi, ApiKind::Chat, data.as_bytes(), "Up");
            match error {
                Some(e) => {
                    let err = parsed.expect_err(data);
                    assert!(err.message.contains(e), "{data}: {}", err.message);
                    assert!(err.metadata.contains_key("raw"), "{data}");
                }
                None => assert!(parsed.is_ok(), "{data}"),
            }
        }
        assert!(
            splice_response(b"{\"choices\":[],\"x\":\"\xff\"}", &s, "chat.completion").is_none()
        );
    }

    async fn body_of(json: DeferredJson) -> Value {
        let bytes = json.collect().await.expect("body").to_bytes();
        serde_json::from_slice(&bytes).expect("JSON")
    }

    #[tokio::test]
    async fn usage_is_replaced_passed_through_or_added_and_edits_still_work() {
        let s = gateway(false);
        let out = |data: &str| {
            let o = splice_response(data.as_bytes(), &s, "chat.completion").expect("spliced");
            DeferredJson::spliced(o.json, o.usage, o.first)
        };
        let ours = || json!({"cost": 1}).to_string();
        // No meter: the upstream's usage passes through.
        let v = body_of(out(PRETTY)).await;
        assert_eq!(v["usage"]["total_tokens"], 19);
        // Meter's replaces it, wherever it stood; or is added when there was none.
        for data in [
            PRETTY,
            r#"{"usage":{"total_tokens":3},"choices":[]}"#,
            r#"{"choices":[]}"#,
        ] {
            let json = out(data);
            assert!(json.set_raw("usage", ours()));
            let v = body_of(json).await;
            assert_eq!(v["usage"], json!({"cost": 1}), "{data}");
            let mut want = stamped(data, &s, "chat.completion");
            want["usage"] = json!({"cost": 1});
            same(v, want);
        }
        // An edit (metadata) after meter's usage: both arrive.
        let json = out(PRETTY);
        assert!(json.set_raw("usage", ours()));
        assert_eq!(
            json.edit(|v| v["openrouter_metadata"] = json!({"attempt": 1})),
            Some(())
        );
        let v = body_of(json).await;
        assert_eq!(v["usage"], json!({"cost": 1}));
        assert_eq!(v["openrouter_metadata"]["attempt"], 1);
        assert_eq!(
            v["choices"][0]["message"]["content"],
            "He said \"hi\" é — ünï 🎉\n\ttab"
        );
    }

    prop_compose! {
        fn choice()(
            content in proptest::option::of(string()),
            reasoning in proptest::option::of(string()),
            finish in finish(),
            native in finish(),
            text in proptest::option::of(string()),
        ) -> Value {
            let mut m = serde_json::Map::new();
            if let Some(c) = content { m.insert("content".into(), c.into()); }
            if let Some(r) = reasoning { m.insert("reasoning".into(), r.into()); }
            let mut c = serde_json::Map::new();
            c.insert("index".into(), 0.into());
            c.insert("message".into(), m.into());
            if let Some(f) = finish { c.insert("finish_reason".into(), f); }
            if let Some(n) = native { c.insert("native_finish_reason".into(), n); }
            if let Some(t) = text { c.insert("text".into(), t.into()); }
            Value::Object(c)
        }
    }

    prop_compose! {
        fn response()(
            id in proptest::option::of(string()),
            created in prop_oneof![
                Just(None),
                any::<u64>().prop_map(|c| Some(c.into())),
                string().prop_map(|c| Some(c.into())),
            ],
            choices in proptest::collection::vec(choice(), 0..3),
            usage in proptest::option::of(Just(json!({"prompt_tokens": 3, "completion_tokens": 4}))),
            extra in proptest::option::of(("[a-z_]{1,10}", string())),
        ) -> Value {
            let mut o = serde_json::Map::new();
            if let Some(id) = id { o.insert("id".into(), id.into()); }
            if let Some(c) = created { o.insert("created".into(), c); }
            o.insert("choices".into(), choices.into());
            if let Some(u) = usage { o.insert("usage".into(), u); }
            if let Some((k, v)) = extra {
                if k != "error" { o.insert(k, v.into()); }
            }
            Value::Object(o)
        }
    }

    proptest! {
        #[test]
        fn splice_matches_the_value_path(
            resp in response(),
            pretty in any::<bool>(),
            strip in any::<bool>(),
        ) {
            let s = gateway(strip);
            let data = if pretty {
                serde_json::to_string_pretty(&resp)
            } else {
                serde_json::to_string(&resp)
            }.expect("json");
            let v = spliced(&data, &s, "chat.completion").expect("an ordinary response is spliced");
            same(v, stamped(&data, &s, "chat.completion"));
        }
    }
}
