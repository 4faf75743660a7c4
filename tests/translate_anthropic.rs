//! OpenAI ⇄ Anthropic Messages translation against fixtures in Anthropic's documented wire
//! shapes, plus a property test that requests lose nothing on the way.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use switchyard::translate::anthropic::{self, StreamTranslator};

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/anthropic/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

/// `(event, data)` pairs of an SSE text.
fn sse(text: &str) -> Vec<(Option<String>, String)> {
    text.split("\n\n")
        .filter_map(|block| {
            let mut event = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    event = Some(e.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push(d);
                }
            }
            (!data.is_empty()).then(|| (event, data.join("\n")))
        })
        .collect()
}

/// Runs a whole fixture stream; the error, if any, comes back with the chunks before it.
fn translate_stream(name: &str) -> (Vec<Value>, Option<switchyard::translate::ProviderError>) {
    let mut t = StreamTranslator::new();
    let mut out = Vec::new();
    for (event, data) in sse(&fixture(name)) {
        if let Err(e) = t.on_event(event.as_deref(), &data, &mut out) {
            return (out, Some(e));
        }
    }
    t.finish(&mut out);
    (out, None)
}

#[test]
fn request_maps_every_supported_field() {
    let req = object(serde_json::from_str(&fixture("request_tools.json")).unwrap());
    let body = anthropic::request(&req, "claude-sonnet-4-5-20250929", 4096).unwrap();
    assert_eq!(
        body,
        json!({
            "model": "claude-sonnet-4-5-20250929",
            "max_tokens": 1024,
            "system": [
                {"type": "text", "text": "You are a weather bot.", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "Answer in celsius."}
            ],
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "What's the weather like in San Francisco?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/sf.jpg"}}
            ]}],
            "stop_sequences": ["END"],
            "temperature": 1.0,
            "top_p": 0.9,
            "top_k": 40,
            "tools": [{
                "name": "get_weather",
                "description": "Get the current weather in a given location",
                "input_schema": req["tools"][0]["function"]["parameters"]
            }],
            "tool_choice": {"type": "any"},
            "metadata": {"user_id": "user-1234"},
            "stream": true
        })
    );
}

#[test]
fn request_defaults_and_plain_system_string() {
    let req = object(json!({"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "hi", "name": "ann"}
    ]}));
    let body = anthropic::request(&req, "m", 4096).unwrap();
    assert_eq!(body["max_tokens"], 4096);
    assert_eq!(body["system"], "Be brief.\n\nBe kind.");
    assert_eq!(body["messages"][0]["content"][0]["text"], "ann: hi");
    assert!(body.get("tool_choice").is_none() && body.get("stream").is_none());
}

#[test]
fn tool_choice_variants() {
    let choice = |tc: Value, parallel: Option<bool>| {
        let mut req = json!({"messages": [{"role": "user", "content": "x"}], "tool_choice": tc});
        if let Some(p) = parallel {
            req["parallel_tool_calls"] = json!(p);
        }
        anthropic::request(&object(req), "m", 100).unwrap()["tool_choice"].clone()
    };
    assert_eq!(choice(json!("auto"), None), json!({"type": "auto"}));
    assert_eq!(choice(json!("none"), None), json!({"type": "none"}));
    assert_eq!(
        choice(
            json!({"type": "function", "function": {"name": "f"}}),
            Some(false)
        ),
        json!({"type": "tool", "name": "f", "disable_parallel_tool_use": true})
    );
    let bad = object(json!({"messages": [], "tool_choice": "sometimes"}));
    assert!(
        anthropic::request(&bad, "m", 100)
            .unwrap_err()
            .message
            .contains("tool_choice")
    );
}

#[test]
fn reasoning_becomes_a_thinking_budget() {
    let budget = |extra: Value| {
        let mut req =
            object(json!({"messages": [{"role": "user", "content": "x"}], "temperature": 0.2}));
        req.extend(object(extra));
        let body = anthropic::request(&req, "m", 10_000).unwrap();
        (
            body.get("thinking").cloned(),
            body["max_tokens"].clone(),
            body.get("temperature").is_some(),
        )
    };
    let thinking = |n: u64| Some(json!({"type": "enabled", "budget_tokens": n}));
    assert_eq!(
        budget(json!({"reasoning": {"effort": "high"}})),
        (thinking(8_000), json!(10_000), false)
    );
    assert_eq!(
        budget(json!({"reasoning_effort": "low"})),
        (thinking(2_000), json!(10_000), false)
    );
    assert_eq!(
        budget(json!({"reasoning": {"max_tokens": 3000}})),
        (thinking(3_000), json!(10_000), false)
    );
    assert_eq!(
        budget(json!({"reasoning": {"enabled": true}})),
        (thinking(5_000), json!(10_000), false)
    );
    assert_eq!(
        budget(json!({"reasoning": {"effort": "minimal"}, "max_tokens": 2000})),
        (thinking(1_024), json!(2_000), false)
    );
    assert_eq!(
        budget(json!({"reasoning": {"effort": "none"}})),
        (None, json!(10_000), true)
    );
    let both =
        object(json!({"messages": [], "reasoning": {"effort": "high"}, "reasoning_effort": "low"}));
    assert!(anthropic::request(&both, "m", 100).is_err());
}

#[test]
fn text_response_with_cache_usage() {
    let r = anthropic::response(fixture("text.json").as_bytes()).unwrap();
    assert_eq!(r["object"], "chat.completion");
    assert_eq!(r["id"], "msg_013Zva2CMHLNnXjNJJKqJ2EF");
    assert_eq!(r["model"], "claude-sonnet-4-5-20250929");
    let choice = &r["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], "Hi! My name is Claude.");
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(choice["native_finish_reason"], "end_turn");
    assert_eq!(
        r["usage"],
        json!({
            "prompt_tokens": 12 + 4096 + 2051, "completion_tokens": 9, "total_tokens": 12 + 4096 + 2051 + 9,
            "prompt_tokens_details": {"cached_tokens": 4096, "cache_write_tokens": 2051},
            "completion_tokens_details": {"reasoning_tokens": 0}
        })
    );
}

#[test]
fn tool_call_round_trip() {
    let r = anthropic::response(fixture("tool_use.json").as_bytes()).unwrap();
    let message = &r["choices"][0]["message"];
    assert_eq!(r["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(r["choices"][0]["native_finish_reason"], "tool_use");
    let call = &message["tool_calls"][0];
    assert_eq!(call["id"], "toolu_01A09q90qw90lq917835lq9");
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(
        args,
        json!({"location": "San Francisco, CA", "unit": "celsius"})
    );

    let follow_up = object(json!({"messages": [
        {"role": "user", "content": "What's the weather in SF?"},
        message,
        {"role": "tool", "tool_call_id": "toolu_01A09q90qw90lq917835lq9", "content": "15 degrees"},
    ]}));
    let body = anthropic::request(&follow_up, "m", 1024).unwrap();
    assert_eq!(
        body["messages"][1],
        json!({"role": "assistant", "content": [
            {"type": "text", "text": "I'll check the current weather in San Francisco for you."},
            {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather",
             "input": {"location": "San Francisco, CA", "unit": "celsius"}}
        ]})
    );
    assert_eq!(
        body["messages"][2],
        json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9", "content": "15 degrees"}
        ]})
    );
}

#[test]
fn consecutive_tool_results_share_one_user_turn() {
    let req = object(json!({"messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            {"id": "b", "type": "function", "function": {"name": "g", "arguments": ""}}
        ]},
        {"role": "tool", "tool_call_id": "a", "content": "1"},
        {"role": "tool", "tool_call_id": "b", "content": [{"type": "text", "text": "2"}]},
        {"role": "user", "content": "thanks"}
    ]}));
    let body = anthropic::request(&req, "m", 100).unwrap();
    let msgs = body["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3);
    assert_eq!(
        msgs[2]["content"],
        json!([
            {"type": "tool_result", "tool_use_id": "a", "content": "1"},
            {"type": "tool_result", "tool_use_id": "b", "content": [{"type": "text", "text": "2"}]},
            {"type": "text", "text": "thanks"}
        ])
    );
    let bad = object(json!({"messages": [{"role": "assistant", "tool_calls": [
        {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]}));
    let err = anthropic::request(&bad, "m", 100).unwrap_err();
    assert!(
        err.message
            .starts_with("messages[0].tool_calls[0].function.arguments"),
        "{err}"
    );
}

#[test]
fn thinking_with_signature_round_trips() {
    let r = anthropic::response(fixture("thinking.json").as_bytes()).unwrap();
    let message = &r["choices"][0]["message"];
    assert_eq!(message["content"], "27 × 453 = 12,231.");
    assert!(
        message["reasoning"]
            .as_str()
            .unwrap()
            .starts_with("The user wants 27 * 453.")
    );
    let details = message["reasoning_details"].as_array().unwrap();
    assert_eq!(details[0]["type"], "reasoning.text");
    assert_eq!(details[0]["format"], "anthropic-claude-v1");
    assert_eq!(details[0]["index"], 0);
    assert!(
        details[0]["signature"]
            .as_str()
            .unwrap()
            .starts_with("EqQB")
    );
    assert_eq!(details[1]["type"], "reasoning.encrypted");
    assert_eq!(details[1]["index"], 1);
    let reasoning_tokens = r["usage"]["completion_tokens_details"]["reasoning_tokens"]
        .as_u64()
        .unwrap();
    assert!(reasoning_tokens > 0 && reasoning_tokens <= 240);

    let next = object(json!({"messages": [
        {"role": "user", "content": "27 * 453?"}, message, {"role": "user", "content": "thanks"}
    ]}));
    let body = anthropic::request(&next, "m", 100).unwrap();
    let blocks = body["messages"][1]["content"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "thinking");
    assert_eq!(blocks[0]["thinking"], details[0]["text"]);
    assert_eq!(blocks[0]["signature"], details[0]["signature"]);
    assert_eq!(
        blocks[1],
        json!({"type": "redacted_thinking", "data": details[1]["data"]})
    );
    assert_eq!(
        blocks[2],
        json!({"type": "text", "text": "27 × 453 = 12,231."})
    );
}

fn assert_chunk_shape(chunks: &[Value]) {
    for c in chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert!(
            c["id"].is_string() && c["model"].is_string() && c["created"].is_u64(),
            "{c}"
        );
        for choice in c["choices"].as_array().unwrap() {
            assert_eq!(choice["index"], 0);
            assert!(
                choice.get("finish_reason").is_some()
                    && choice.get("native_finish_reason").is_some()
            );
        }
    }
}

#[test]
fn stream_text() {
    let (chunks, err) = translate_stream("stream_text.sse");
    assert!(err.is_none());
    assert_chunk_shape(&chunks);
    let deltas: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c.pointer("/choices/0/delta"))
        .collect();
    assert_eq!(deltas[0], &json!({"role": "assistant", "content": ""}));
    assert_eq!(deltas[1], &json!({"content": "Hello"}));
    assert_eq!(deltas[2], &json!({"content": "!"}));
    let finish = &chunks[3]["choices"][0];
    assert_eq!(
        (&finish["finish_reason"], &finish["native_finish_reason"]),
        (&json!("stop"), &json!("end_turn"))
    );
    assert_eq!(chunks.len(), 5, "one usage chunk, sent once");
    let usage = &chunks[4];
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["id"], "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY");
    assert_eq!(usage["usage"]["prompt_tokens"], 125);
    assert_eq!(usage["usage"]["completion_tokens"], 15);
    assert_eq!(
        usage["usage"]["prompt_tokens_details"]["cached_tokens"],
        100
    );
}

#[test]
fn stream_tool_arguments_split_across_many_deltas() {
    let (chunks, err) = translate_stream("stream_tool_use.sse");
    assert!(err.is_none());
    assert_chunk_shape(&chunks);
    let mut ids = Vec::new();
    let mut args = [String::new(), String::new()];
    for c in &chunks {
        for call in c
            .pointer("/choices/0/delta/tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let i = call["index"].as_u64().unwrap() as usize;
            if let Some(id) = call.get("id") {
                assert_eq!(call["type"], "function");
                assert_eq!(call["function"]["arguments"], "");
                ids.push((i, id.clone(), call["function"]["name"].clone()));
            }
            args[i].push_str(call["function"]["arguments"].as_str().unwrap());
        }
    }
    assert_eq!(
        ids,
        vec![
            (
                0,
                json!("toolu_01T1x1fJ34qAmk2tNTrN7Up6"),
                json!("get_weather")
            ),
            (1, json!("toolu_02SecondCall"), json!("get_time"))
        ]
    );
    let expected: Value =
        serde_json::from_str(&fixture("stream_tool_use.expected_args.json")).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&args[0]).unwrap(), expected);
    assert_eq!(
        serde_json::from_str::<Value>(&args[1]).unwrap(),
        json!({"tz": "America/Los_Angeles"})
    );
    let finish = &chunks[chunks.len() - 2]["choices"][0];
    assert_eq!(finish["finish_reason"], "tool_calls");
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 89);
}

#[test]
fn stream_thinking_with_signature() {
    let (chunks, err) = translate_stream("stream_thinking.sse");
    assert!(err.is_none());
    assert_chunk_shape(&chunks);
    let (mut reasoning, mut signature, mut content) = (String::new(), None, String::new());
    for c in &chunks {
        let Some(d) = c.pointer("/choices/0/delta") else {
            continue;
        };
        reasoning.push_str(d["reasoning"].as_str().unwrap_or(""));
        content.push_str(d["content"].as_str().unwrap_or(""));
        for detail in d["reasoning_details"].as_array().into_iter().flatten() {
            assert_eq!(detail["type"], "reasoning.text");
            assert_eq!(detail["format"], "anthropic-claude-v1");
            assert_eq!(detail["index"], 0);
            if let Some(s) = detail.get("signature") {
                signature = Some(s.clone());
            }
        }
    }
    assert!(reasoning.ends_with("So GCD(1071, 462) = 21"));
    assert!(signature.unwrap().as_str().unwrap().starts_with("EqQB"));
    assert_eq!(
        content,
        "The greatest common divisor of 1071 and 462 is **21**."
    );
}

#[test]
fn stream_error_event_mid_stream() {
    let (chunks, err) = translate_stream("stream_error.sse");
    assert_eq!(
        chunks.len(),
        2,
        "role chunk and the partial text came first"
    );
    assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "Partial");
    let err = err.unwrap();
    assert_eq!(
        (err.status, err.error_type, err.message.as_str()),
        (529, "provider_overloaded", "Overloaded")
    );
    assert!(err.raw.contains("overloaded_error"));
}

#[test]
fn stream_ends_without_message_stop_still_reports_usage_once() {
    let mut t = StreamTranslator::new();
    let mut out = Vec::new();
    let start = r#"{"type":"message_start","message":{"id":"m","model":"c","usage":{"input_tokens":3,"output_tokens":1}}}"#;
    t.on_event(None, start, &mut out).unwrap();
    t.on_event(None, r#"{"type":"ping"}"#, &mut out).unwrap();
    assert_eq!(out.len(), 1);
    t.finish(&mut out);
    t.finish(&mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(out[1]["usage"]["prompt_tokens"], 3);
    assert!(t.on_event(None, "not json", &mut out).is_err());
}

#[test]
fn error_mapping_table() {
    let cases = [
        ("invalid_request_error", 400, 400, "invalid_request"),
        ("authentication_error", 401, 401, "authentication"),
        ("billing_error", 402, 402, "payment_required"),
        ("permission_error", 403, 403, "permission_denied"),
        ("not_found_error", 404, 404, "not_found"),
        ("request_too_large", 413, 413, "payload_too_large"),
        ("rate_limit_error", 429, 429, "rate_limit_exceeded"),
        ("api_error", 500, 500, "server"),
        ("timeout_error", 504, 504, "timeout"),
        ("overloaded_error", 529, 529, "provider_overloaded"),
        ("something_new", 418, 418, "unmapped"),
        ("something_new", 503, 503, "provider_overloaded"),
    ];
    for (kind, http, status, error_type) in cases {
        let body =
            format!(r#"{{"type":"error","error":{{"type":"{kind}","message":"msg {kind}"}}}}"#);
        let e = anthropic::error(http, body.as_bytes());
        assert_eq!((e.status, e.error_type), (status, error_type), "{kind}");
        assert_eq!(e.message, format!("msg {kind}"));
        assert_eq!(e.raw, body);
    }
    let long = br#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#;
    assert_eq!(
        anthropic::error(400, long).error_type,
        "context_length_exceeded"
    );
    let html = anthropic::error(502, b"<html>Bad Gateway</html>");
    assert_eq!(
        (html.status, html.error_type),
        (502, "provider_unavailable")
    );
    assert_eq!(html.raw, "<html>Bad Gateway</html>");

    let in_body = anthropic::response(fixture("error_overloaded.json").as_bytes()).unwrap_err();
    assert_eq!(
        (in_body.status, in_body.error_type),
        (529, "provider_overloaded")
    );
    let garbage = anthropic::response(b"{not json").unwrap_err();
    assert_eq!(
        (garbage.status, garbage.error_type),
        (502, "provider_unavailable")
    );
    assert!(garbage.message.contains("invalid JSON"));
}

// ---------------------------------------------------------------------------------------------
// Property: a random conversation survives `request` and an inverse mapping back to OpenAI.

/// The parts of a message the translation must preserve.
#[derive(Debug, Clone, PartialEq)]
enum Msg {
    System(String),
    User(String),
    Assistant {
        text: Option<String>,
        calls: Vec<(String, String, Value)>,
    },
    Tool {
        id: String,
        content: String,
    },
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i32>().prop_map(|n| json!(n)),
        any::<bool>().prop_map(|b| json!(b)),
        "\\PC{0,12}".prop_map(|s| json!(s)),
        Just(Value::Null),
    ];
    let inner = leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn arb_text() -> impl Strategy<Value = String> {
    "\\PC{1,30}"
}

/// One user turn, the assistant's answer and, if it called tools, their results.
fn arb_turn(turn: usize) -> impl Strategy<Value = Vec<Msg>> {
    let calls = prop::collection::vec(("[a-z_]{1,10}", arb_json()), 0..3);
    (
        arb_text(),
        prop::option::of(arb_text()),
        calls,
        prop::collection::vec(arb_text(), 3),
    )
        .prop_filter("assistant says something", |(_, text, calls, _)| {
            text.is_some() || !calls.is_empty()
        })
        .prop_map(move |(user, text, calls, results)| {
            let calls: Vec<(String, String, Value)> = calls
                .into_iter()
                .enumerate()
                .map(|(k, (name, args))| (format!("toolu_{turn}_{k}"), name, args))
                .collect();
            let mut msgs = vec![
                Msg::User(user),
                Msg::Assistant {
                    text,
                    calls: calls.clone(),
                },
            ];
            for ((id, _, _), content) in calls.iter().zip(results) {
                msgs.push(Msg::Tool {
                    id: id.clone(),
                    content,
                });
            }
            msgs
        })
}

fn arb_conversation() -> impl Strategy<Value = Vec<Msg>> {
    (prop::option::of(arb_text()), 1..4usize)
        .prop_flat_map(|(system, turns)| {
            let turns: Vec<_> = (0..turns).map(arb_turn).collect();
            (Just(system), turns)
        })
        .prop_map(|(system, turns)| {
            system
                .map(Msg::System)
                .into_iter()
                .chain(turns.into_iter().flatten())
                .collect()
        })
}

fn to_openai(msgs: &[Msg]) -> Vec<Value> {
    msgs.iter()
        .map(|m| match m {
            Msg::System(t) => json!({"role": "system", "content": t}),
            Msg::User(t) => json!({"role": "user", "content": t}),
            Msg::Assistant { text, calls } => {
                let mut v = json!({"role": "assistant", "content": text});
                if !calls.is_empty() {
                    v["tool_calls"] = calls
                        .iter()
                        .map(|(id, name, args)| {
                            json!({"id": id, "type": "function", "function": {"name": name, "arguments": args.to_string()}})
                        })
                        .collect();
                }
                v
            }
            Msg::Tool { id, content } => json!({"role": "tool", "tool_call_id": id, "content": content}),
        })
        .collect()
}

/// The inverse of `anthropic::request` for the message shapes above.
fn from_anthropic(body: &Value) -> Vec<Msg> {
    let mut out = Vec::new();
    if let Some(s) = body.get("system").and_then(Value::as_str) {
        out.push(Msg::System(s.to_owned()));
    }
    for m in body["messages"].as_array().unwrap() {
        let blocks = m["content"].as_array().unwrap();
        let texts: Vec<&str> = blocks
            .iter()
            .filter(|b| b["type"] == "text")
            .map(|b| b["text"].as_str().unwrap())
            .collect();
        if m["role"] == "user" {
            for b in blocks.iter().filter(|b| b["type"] == "tool_result") {
                out.push(Msg::Tool {
                    id: b["tool_use_id"].as_str().unwrap().to_owned(),
                    content: b["content"].as_str().unwrap().to_owned(),
                });
            }
            if !texts.is_empty() {
                out.push(Msg::User(texts.concat()));
            }
        } else {
            let calls = blocks
                .iter()
                .filter(|b| b["type"] == "tool_use")
                .map(|b| {
                    (
                        b["id"].as_str().unwrap().to_owned(),
                        b["name"].as_str().unwrap().to_owned(),
                        b["input"].clone(),
                    )
                })
                .collect();
            let text = (!texts.is_empty()).then(|| texts.concat());
            out.push(Msg::Assistant { text, calls });
        }
    }
    out
}

proptest! {
    #[test]
    fn request_round_trips_conversations(conv in arb_conversation()) {
        let req = object(json!({"messages": to_openai(&conv)}));
        let body = anthropic::request(&req, "m", 1024).unwrap();
        let msgs = body["messages"].as_array().unwrap();
        for pair in msgs.windows(2) {
            prop_assert_ne!(&pair[0]["role"], &pair[1]["role"], "roles alternate");
        }
        prop_assert_eq!(from_anthropic(&body), as_sent(conv));
    }
}

/// The conversation as Anthropic must receive it: a final assistant text (a prefill) loses its
/// trailing whitespace, which the API rejects — and the whole message when nothing is left
/// (`prefill_is_trimmed_and_empty_messages_dropped` pins this rule down).
fn as_sent(mut conv: Vec<Msg>) -> Vec<Msg> {
    if let Some(Msg::Assistant { text, calls }) = conv.last_mut() {
        let trimmed = text
            .as_deref()
            .map(str::trim_end)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        if trimmed.is_none() && calls.is_empty() {
            conv.pop();
        } else {
            *text = trimmed;
        }
    }
    conv
}

#[test]
fn prefill_is_trimmed_and_empty_messages_dropped() {
    let req = object(json!({"messages": [
        {"role": "user", "content": "Write JSON."},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "Now."},
        {"role": "assistant", "content": "{\n  "}
    ]}));
    let body = anthropic::request(&req, "m", 100).unwrap();
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "Write JSON."}, {"type": "text", "text": "Now."}]},
            {"role": "assistant", "content": [{"type": "text", "text": "{"}]}
        ])
    );
}

#[test]
fn stream_estimates_reasoning_tokens() {
    let (chunks, _) = translate_stream("stream_thinking.sse");
    let usage = &chunks.last().unwrap()["usage"];
    let reasoning = usage["completion_tokens_details"]["reasoning_tokens"]
        .as_u64()
        .unwrap();
    assert!(reasoning > 10 && reasoning <= 88, "{usage}");
}

proptest! {
    /// However the upstream splits tool arguments, the client reassembles the same JSON, and
    /// tool calls keep their ordinal even when text blocks sit between them.
    #[test]
    fn streamed_tool_arguments_reassemble(
        calls in prop::collection::vec((arb_json(), prop::collection::vec(1..8usize, 1..40)), 1..4),
    ) {
        let mut t = StreamTranslator::new();
        let mut out = Vec::new();
        let mut feed = |data: Value| t.on_event(None, &data.to_string(), &mut out).unwrap();
        feed(json!({"type": "message_start", "message": {"id": "m", "model": "c", "usage": {"input_tokens": 1}}}));
        let mut block = 0;
        for (k, (args, cuts)) in calls.iter().enumerate() {
            feed(json!({"type": "content_block_start", "index": block, "content_block": {"type": "text", "text": ""}}));
            feed(json!({"type": "content_block_delta", "index": block, "delta": {"type": "text_delta", "text": "…"}}));
            block += 1;
            feed(json!({"type": "content_block_start", "index": block,
                        "content_block": {"type": "tool_use", "id": format!("toolu_{k}"), "name": "f", "input": {}}}));
            let chars: Vec<char> = args.to_string().chars().collect();
            let mut at = 0;
            for cut in cuts.iter().cycle() {
                if at >= chars.len() {
                    break;
                }
                let end = (at + cut).min(chars.len());
                let piece: String = chars[at..end].iter().collect();
                feed(json!({"type": "content_block_delta", "index": block, "delta": {"type": "input_json_delta", "partial_json": piece}}));
                at = end;
            }
            feed(json!({"type": "content_block_stop", "index": block}));
            block += 1;
        }
        feed(json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 5}}));
        feed(json!({"type": "message_stop"}));

        let mut assembled = vec![String::new(); calls.len()];
        for c in &out {
            for call in c.pointer("/choices/0/delta/tool_calls").and_then(Value::as_array).into_iter().flatten() {
                let i = call["index"].as_u64().unwrap() as usize;
                if let Some(id) = call.get("id") {
                    prop_assert_eq!(id, &json!(format!("toolu_{i}")));
                }
                assembled[i].push_str(call["function"]["arguments"].as_str().unwrap());
            }
        }
        for ((args, _), got) in calls.iter().zip(&assembled) {
            prop_assert_eq!(&serde_json::from_str::<Value>(got).unwrap(), args);
        }
        prop_assert_eq!(out.last().unwrap()["choices"].as_array().unwrap().len(), 0);
    }
}
