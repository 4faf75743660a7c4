//! OpenAI ⇄ Gemini translation against fixtures in Google's documented wire shapes.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use switchyard::translate::ProviderError;
use switchyard::translate::gemini::{self, StreamTranslator};

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/gemini/{name}",
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

fn sse_data(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter_map(|block| {
            block
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .map(str::to_owned)
        })
        .collect()
}

fn translate_stream(name: &str) -> (Vec<Value>, Option<ProviderError>) {
    let mut t = StreamTranslator::new();
    let mut out = Vec::new();
    for data in sse_data(&fixture(name)) {
        if let Err(e) = t.on_event(None, &data, &mut out) {
            return (out, Some(e));
        }
    }
    t.finish(&mut out);
    (out, None)
}

fn weather_tool() -> Value {
    json!({"type": "function", "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "city": {"type": "string"},
                "units": {"type": ["object", "null"], "properties": {"temp": {"type": "string", "enum": ["C", "F"]}},
                          "additionalProperties": false}
            },
            "required": ["city"]
        }
    }})
}

#[test]
fn request_maps_every_supported_field() {
    let req = object(json!({
        "model": "google/gemini-2.5-flash",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Use metric."}]},
            {"role": "user", "content": [
                {"type": "text", "text": "Describe these."},
                {"type": "image_url", "image_url": {"url": "data:image/webp;base64,UklGRg=="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.PNG?size=2"}}
            ]}
        ],
        "tools": [weather_tool(), {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "max_tokens": 500,
        "temperature": 0.3, "top_p": 0.8, "top_k": 20, "n": 2, "seed": 9,
        "stop": ["\n\n"],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "strict": true,
            "schema": {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": false}}},
        "logit_bias": {"1": 5},
        "user": "u1"
    }));
    let body = gemini::request(&req, "gemini-2.5-flash").unwrap();
    assert_eq!(
        body,
        json!({
            "systemInstruction": {"parts": [{"text": "You are terse.\n\nUse metric."}]},
            "contents": [{"role": "user", "parts": [
                {"text": "Describe these."},
                {"inlineData": {"mimeType": "image/webp", "data": "UklGRg=="}},
                {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/cat.PNG?size=2"}}
            ]}],
            "tools": [{"functionDeclarations": [
                {"name": "get_weather", "description": "Weather for a city", "parameters": {
                    "type": "object",
                    "properties": {
                        "city": {"type": "string"},
                        "units": {"type": "object", "nullable": true,
                                  "properties": {"temp": {"type": "string", "enum": ["C", "F"]}}}
                    },
                    "required": ["city"]
                }},
                {"name": "now"}
            ]}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
            "generationConfig": {
                "maxOutputTokens": 500, "temperature": 0.3, "topP": 0.8, "topK": 20, "candidateCount": 2,
                "seed": 9, "stopSequences": ["\n\n"], "responseMimeType": "application/json",
                "responseSchema": {"type": "object", "properties": {"a": {"type": "integer"}}}
            }
        })
    );
}

#[test]
fn tool_choice_and_thinking_config() {
    let body = |extra: Value, model: &str| {
        let mut req = object(json!({"messages": [{"role": "user", "content": "x"}]}));
        req.extend(object(extra));
        gemini::request(&req, model).unwrap()
    };
    let mode = |tc: &str| {
        body(json!({"tool_choice": tc}), "g")["toolConfig"]["functionCallingConfig"]["mode"].clone()
    };
    assert_eq!(
        (mode("auto"), mode("none"), mode("required")),
        (json!("AUTO"), json!("NONE"), json!("ANY"))
    );
    let thinking = |extra: Value, model: &str| {
        body(extra, model)["generationConfig"]["thinkingConfig"].clone()
    };
    assert_eq!(
        thinking(
            json!({"reasoning": {"effort": "high"}, "max_tokens": 10_000}),
            "gemini-2.5-flash"
        ),
        json!({"thinkingBudget": 8000, "includeThoughts": true})
    );
    assert_eq!(
        thinking(
            json!({"reasoning": {"max_tokens": 2048, "exclude": true}}),
            "gemini-2.5-pro"
        ),
        json!({"thinkingBudget": 2048, "includeThoughts": false})
    );
    assert_eq!(
        thinking(json!({"reasoning_effort": "low"}), "gemini-3-pro-preview"),
        json!({"thinkingLevel": "low", "includeThoughts": true})
    );
    assert_eq!(
        thinking(json!({"reasoning": {"effort": "none"}}), "gemini-2.5-flash"),
        json!({"thinkingBudget": 0, "includeThoughts": false})
    );
    assert_eq!(thinking(json!({}), "gemini-2.5-flash"), Value::Null);
}

#[test]
fn text_response_with_cached_usage() {
    let r = gemini::response(fixture("text.json").as_bytes()).unwrap();
    assert_eq!(
        (&r["object"], &r["id"], &r["model"]),
        (
            &json!("chat.completion"),
            &json!("mTqYaN7lN6fqz7IPj9y-6Ak"),
            &json!("gemini-2.5-flash")
        )
    );
    let choice = &r["choices"][0];
    assert_eq!(
        choice["message"]["content"],
        "AI learns patterns from data to make predictions."
    );
    assert_eq!(
        (&choice["finish_reason"], &choice["native_finish_reason"]),
        (&json!("stop"), &json!("STOP"))
    );
    assert_eq!(
        r["usage"],
        json!({
            "prompt_tokens": 4120, "completion_tokens": 9, "total_tokens": 4129,
            "prompt_tokens_details": {"cached_tokens": 4096, "cache_write_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0}
        })
    );
}

#[test]
fn tool_call_and_thought_signature_round_trip() {
    let r = gemini::response(fixture("function_call.json").as_bytes()).unwrap();
    let choice = &r["choices"][0];
    assert_eq!(
        (&choice["finish_reason"], &choice["native_finish_reason"]),
        (&json!("tool_calls"), &json!("STOP"))
    );
    let message = &choice["message"];
    assert_eq!(message["content"], Value::Null);
    let calls = message["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["id"], "call_aBcD3fGh_0");
    assert_eq!(calls[1]["id"], "call_aBcD3fGh_1");
    assert!(calls[0].get("index").is_none());
    assert_eq!(calls[1]["function"]["name"], "get_current_temperature");
    let args: Value =
        serde_json::from_str(calls[1]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"location": "London"}));
    assert_eq!(
        message["reasoning_details"],
        json!([{"type": "reasoning.encrypted", "data": "CiQB0e2Kb7x4Yp3vYc2bYJt0Gx5m7sZ9rQ8nF1uW2kLhE3dA=",
                "id": "call_aBcD3fGh_0", "format": "google-gemini-v1", "index": 0}])
    );
    assert_eq!(r["usage"]["completion_tokens"], 30 + 112);
    assert_eq!(
        r["usage"]["completion_tokens_details"]["reasoning_tokens"],
        112
    );

    // The client sends the assistant message back as it got it, with both results.
    let follow_up = object(json!({"messages": [
        {"role": "user", "content": "Temperatures in Paris and London?"},
        message,
        {"role": "tool", "tool_call_id": "call_aBcD3fGh_0", "content": "{\"temp\": 18}"},
        {"role": "tool", "tool_call_id": "call_aBcD3fGh_1", "content": "rainy, 14"},
    ]}));
    let body = gemini::request(&follow_up, "gemini-3-pro-preview").unwrap();
    assert_eq!(
        body["contents"],
        json!([
            {"role": "user", "parts": [{"text": "Temperatures in Paris and London?"}]},
            {"role": "model", "parts": [
                {"functionCall": {"name": "get_current_temperature", "args": {"location": "Paris"}},
                 "thoughtSignature": "CiQB0e2Kb7x4Yp3vYc2bYJt0Gx5m7sZ9rQ8nF1uW2kLhE3dA="},
                {"functionCall": {"name": "get_current_temperature", "args": {"location": "London"}}}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_current_temperature", "response": {"temp": 18}}},
                {"functionResponse": {"name": "get_current_temperature", "response": {"content": "rainy, 14"}}}
            ]}
        ])
    );
}

#[test]
fn signature_for_the_second_call_lands_on_the_second_part() {
    let req = object(json!({"messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": "Calling.", "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            {"id": "b", "type": "function", "function": {"name": "g", "arguments": "{\"x\":1}"}}],
         "reasoning_details": [
            {"type": "reasoning.encrypted", "data": "SIG_B", "id": "b", "format": "google-gemini-v1", "index": 0},
            {"type": "reasoning.encrypted", "data": "OTHER", "id": "a", "format": "anthropic-claude-v1", "index": 1}]},
        {"role": "tool", "tool_call_id": "b", "content": "ok"}
    ]}));
    let body = gemini::request(&req, "gemini-3-flash").unwrap();
    let parts = body["contents"][1]["parts"].as_array().unwrap();
    assert_eq!(parts[0], json!({"text": "Calling."}));
    assert!(parts[1].get("thoughtSignature").is_none());
    assert_eq!(parts[2]["thoughtSignature"], "SIG_B");
    assert_eq!(
        body["contents"][2]["parts"][0]["functionResponse"]["name"],
        "g"
    );

    let orphan =
        object(json!({"messages": [{"role": "tool", "tool_call_id": "zz", "content": "x"}]}));
    assert!(
        gemini::request(&orphan, "g")
            .unwrap_err()
            .message
            .contains("messages[0].tool_call_id")
    );
}

#[test]
fn thinking_response_and_text_signature_round_trip() {
    let r = gemini::response(fixture("thinking.json").as_bytes()).unwrap();
    let message = &r["choices"][0]["message"];
    assert_eq!(message["content"], "There are 8 primes below 20.");
    assert!(
        message["reasoning"]
            .as_str()
            .unwrap()
            .starts_with("**Counting the primes**")
    );
    let details = message["reasoning_details"].as_array().unwrap();
    assert_eq!(details[0]["type"], "reasoning.text");
    assert_eq!(details[1]["type"], "reasoning.encrypted");
    assert_eq!(details[1]["id"], Value::Null);
    assert_eq!(details[1]["index"], 1);
    assert_eq!(r["usage"]["completion_tokens"], 8 + 185);

    let next = object(
        json!({"messages": [{"role": "user", "content": "primes?"}, message, {"role": "user", "content": "why?"}]}),
    );
    let body = gemini::request(&next, "gemini-2.5-pro").unwrap();
    assert_eq!(
        body["contents"][1],
        json!({"role": "model", "parts": [{"text": "There are 8 primes below 20.", "thoughtSignature": "EuYBCuMBAdHtim9Sig3pkY8yqv3Ni1SSN9c4TjA3oB"}]})
    );
}

#[test]
fn finish_reason_table() {
    let cases = [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "error"),
    ];
    for (native, expected) in cases {
        let body = json!({"candidates": [{"content": {"parts": [{"text": "x"}], "role": "model"}, "finishReason": native}]});
        let r = gemini::response(body.to_string().as_bytes()).unwrap();
        assert_eq!(r["choices"][0]["finish_reason"], expected, "{native}");
        assert_eq!(r["choices"][0]["native_finish_reason"], native);
    }
    let blocked = gemini::response(fixture("blocked.json").as_bytes()).unwrap();
    assert_eq!(blocked["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(blocked["choices"][0]["native_finish_reason"], "SAFETY");
    assert_eq!(blocked["usage"]["prompt_tokens"], 7);
}

#[test]
fn stream_text_sends_usage_once_with_the_last_chunk() {
    let (chunks, err) = translate_stream("stream_text.sse");
    assert!(err.is_none());
    let deltas: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c.pointer("/choices/0/delta"))
        .collect();
    assert_eq!(deltas[0], &json!({"role": "assistant", "content": ""}));
    let text: String = deltas
        .iter()
        .filter_map(|d| d["content"].as_str())
        .collect();
    assert_eq!(text, "The quick brown fox jumps.");
    let usage: Vec<&Value> = chunks
        .iter()
        .filter(|c| c["choices"] == json!([]))
        .collect();
    assert_eq!(usage.len(), 1);
    assert_eq!(chunks.last().unwrap()["usage"]["total_tokens"], 15);
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    for c in &chunks {
        assert_eq!(
            (&c["object"], &c["id"], &c["model"]),
            (
                &json!("chat.completion.chunk"),
                &json!("sT1a"),
                &json!("gemini-2.5-flash")
            )
        );
    }
}

#[test]
fn stream_function_calls_arrive_whole_with_signatures() {
    let (chunks, err) = translate_stream("stream_function_call.sse");
    assert!(err.is_none());
    let deltas: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c.pointer("/choices/0/delta"))
        .collect();
    assert!(
        deltas[1]["reasoning"]
            .as_str()
            .unwrap()
            .starts_with("**Planning the lookup**")
    );
    let calls = deltas[2]["tool_calls"].as_array().unwrap();
    assert_eq!(calls[0]["index"], 0);
    assert_eq!(calls[0]["id"], "call_str9_0");
    assert_eq!(calls[1]["index"], 1);
    let args: Value =
        serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Paris", "units": {"temp": "C"}}));
    assert_eq!(
        deltas[2]["reasoning_details"],
        json!([{"type": "reasoning.encrypted", "data": "Cs8BAdHtim8pSig", "id": "call_str9_0", "format": "google-gemini-v1", "index": 1}])
    );
    assert_eq!(chunks[3]["choices"][0]["finish_reason"], "tool_calls");
    let usage = &chunks[4]["usage"];
    assert_eq!(
        (
            &usage["completion_tokens"],
            &usage["completion_tokens_details"]["reasoning_tokens"]
        ),
        (&json!(104), &json!(80))
    );
    assert_eq!(chunks.len(), 5);
}

#[test]
fn stream_error_mid_stream_and_usage_from_finish() {
    let (chunks, err) = translate_stream("stream_error.sse");
    assert_eq!(chunks.len(), 2);
    let err = err.unwrap();
    assert_eq!((err.status, err.error_type), (503, "provider_overloaded"));
    assert_eq!(
        err.message,
        "The model is overloaded. Please try again later."
    );

    // A stream that ends without usage on its finish chunk still gets exactly one usage chunk.
    let mut t = StreamTranslator::new();
    let mut out = Vec::new();
    let data = r#"{"candidates":[{"content":{"parts":[{"text":"hi"}],"role":"model"},"finishReason":"MAX_TOKENS"}]}"#;
    t.on_event(None, data, &mut out).unwrap();
    assert_eq!(out[2]["choices"][0]["finish_reason"], "length");
    t.finish(&mut out);
    t.finish(&mut out);
    assert_eq!(out.len(), 4);
    assert_eq!(out[3]["choices"], json!([]));
}

#[test]
fn error_mapping_table() {
    let cases = [
        (400, "INVALID_ARGUMENT", 400, "invalid_request"),
        (400, "FAILED_PRECONDITION", 400, "invalid_request"),
        (401, "UNAUTHENTICATED", 401, "authentication"),
        (403, "PERMISSION_DENIED", 403, "permission_denied"),
        (404, "NOT_FOUND", 404, "not_found"),
        (429, "RESOURCE_EXHAUSTED", 429, "rate_limit_exceeded"),
        (500, "INTERNAL", 500, "server"),
        (503, "UNAVAILABLE", 503, "provider_overloaded"),
        (504, "DEADLINE_EXCEEDED", 504, "timeout"),
        (418, "SOMETHING_NEW", 418, "unmapped"),
    ];
    for (code, status_name, status, error_type) in cases {
        let body = format!(
            r#"{{"error":{{"code":{code},"message":"msg {status_name}","status":"{status_name}"}}}}"#
        );
        let e = gemini::error(code, body.as_bytes());
        assert_eq!(
            (e.status, e.error_type),
            (status, error_type),
            "{status_name}"
        );
        assert_eq!(e.message, format!("msg {status_name}"));
        assert_eq!(e.raw, body);
    }
    let key = br#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT"}}"#;
    assert_eq!(gemini::error(400, key).status, 401);
    let wrapped =
        br#"[{"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED"}}]"#;
    assert_eq!(gemini::error(429, wrapped).message, "slow down");
    assert_eq!(gemini::error(502, b"upstream connect error").status, 502);

    let quota = gemini::response(fixture("error_quota.json").as_bytes()).unwrap_err();
    assert_eq!(
        (quota.status, quota.error_type),
        (429, "rate_limit_exceeded")
    );
    assert!(quota.message.starts_with("You exceeded your current quota"));
    let garbage = gemini::response(b"").unwrap_err();
    assert_eq!(
        (garbage.status, garbage.error_type),
        (502, "provider_unavailable")
    );
}

#[test]
fn several_candidates_become_several_choices() {
    let body = json!({
        "candidates": [
            {"content": {"parts": [{"text": "one"}], "role": "model"}, "finishReason": "STOP", "index": 0},
            {"content": {"parts": [{"functionCall": {"name": "f", "args": {}}}], "role": "model"}, "finishReason": "STOP", "index": 1}
        ],
        "responseId": "r"
    });
    let r = gemini::response(body.to_string().as_bytes()).unwrap();
    let choices = r["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 2);
    assert_eq!(
        (&choices[1]["index"], &choices[1]["finish_reason"]),
        (&json!(1), &json!("tool_calls"))
    );
    assert_eq!(choices[1]["message"]["tool_calls"][0]["id"], "call_r_0");

    let streamed =
        object(json!({"messages": [{"role": "user", "content": "x"}], "n": 3, "stream": true}));
    assert!(
        gemini::request(&streamed, "g").unwrap()["generationConfig"]
            .get("candidateCount")
            .is_none()
    );
}

// ---------------------------------------------------------------------------------------------
// Property: a random conversation survives `request` and an inverse mapping back to OpenAI.
// Gemini has no tool call ids, so calls and results are compared by name and position.

#[derive(Debug, Clone, PartialEq)]
enum Msg {
    System(String),
    User(String),
    Assistant {
        text: Option<String>,
        calls: Vec<(String, Value)>,
    },
    Tool {
        name: String,
        content: String,
    },
}

fn arb_args() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i32>().prop_map(|n| json!(n)),
        any::<bool>().prop_map(|b| json!(b)),
        "\\PC{0,12}".prop_map(|s| json!(s)),
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

fn arb_turn() -> impl Strategy<Value = Vec<Msg>> {
    let text = || "[a-zA-Z0-9 ,.!?]{1,30}";
    (
        text(),
        prop::option::of(text()),
        prop::collection::vec(("[a-z_]{1,10}", arb_args()), 0..3),
        prop::collection::vec(text(), 3),
    )
        .prop_filter("assistant says something", |(_, t, c, _)| {
            t.is_some() || !c.is_empty()
        })
        .prop_map(|(user, text, calls, results)| {
            let mut msgs = vec![
                Msg::User(user),
                Msg::Assistant {
                    text,
                    calls: calls.clone(),
                },
            ];
            for ((name, _), content) in calls.into_iter().zip(results) {
                msgs.push(Msg::Tool { name, content });
            }
            msgs
        })
}

fn to_openai(msgs: &[Msg]) -> Vec<Value> {
    let mut out = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        out.push(match m {
            Msg::System(t) => json!({"role": "system", "content": t}),
            Msg::User(t) => json!({"role": "user", "content": t}),
            Msg::Assistant { text, calls } => {
                pending = (0..calls.len()).map(|k| format!("call_{i}_{k}")).collect();
                let calls: Vec<Value> = calls
                    .iter()
                    .zip(&pending)
                    .map(|((name, args), id)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": args.to_string()}}))
                    .collect();
                json!({"role": "assistant", "content": text, "tool_calls": calls})
            }
            Msg::Tool { content, .. } => json!({"role": "tool", "tool_call_id": pending.remove(0), "content": content}),
        });
    }
    out
}

fn from_gemini(body: &Value) -> Vec<Msg> {
    let mut out = Vec::new();
    if let Some(s) = body
        .pointer("/systemInstruction/parts/0/text")
        .and_then(Value::as_str)
    {
        out.push(Msg::System(s.to_owned()));
    }
    for c in body["contents"].as_array().unwrap() {
        let parts = c["parts"].as_array().unwrap();
        let text: String = parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect();
        if c["role"] == "user" {
            for fr in parts.iter().filter_map(|p| p.get("functionResponse")) {
                let content = fr["response"]["content"]
                    .as_str()
                    .map_or_else(|| fr["response"].to_string(), str::to_owned);
                out.push(Msg::Tool {
                    name: fr["name"].as_str().unwrap().to_owned(),
                    content,
                });
            }
            if !text.is_empty() {
                out.push(Msg::User(text));
            }
        } else {
            let calls = parts
                .iter()
                .filter_map(|p| p.get("functionCall"))
                .map(|fc| (fc["name"].as_str().unwrap().to_owned(), fc["args"].clone()))
                .collect();
            out.push(Msg::Assistant {
                text: (!text.is_empty()).then_some(text),
                calls,
            });
        }
    }
    out
}

proptest! {
    #[test]
    fn request_round_trips_conversations(
        system in prop::option::of("[a-zA-Z ]{1,20}"),
        turns in prop::collection::vec(arb_turn(), 1..4),
    ) {
        let conv: Vec<Msg> = system.map(Msg::System).into_iter().chain(turns.into_iter().flatten()).collect();
        let body = gemini::request(&object(json!({"messages": to_openai(&conv)})), "gemini-2.5-flash").unwrap();
        let contents = body["contents"].as_array().unwrap();
        for pair in contents.windows(2) {
            prop_assert_ne!(&pair[0]["role"], &pair[1]["role"], "roles alternate");
        }
        prop_assert_eq!(from_gemini(&body), conv);
    }
}

#[test]
fn consecutive_thoughts_share_one_reasoning_detail_across_chunks() {
    let mut t = StreamTranslator::new();
    let mut out = Vec::new();
    for data in [
        r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"a","thought":true}]}}],"responseId":"r"}"#,
        r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"b","thought":true},{"text":"Answer"}]}}]}"#,
        r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"c","thought":true}]}}]}"#,
    ] {
        t.on_event(None, data, &mut out).unwrap();
    }
    let indexes: Vec<(String, Value)> = out
        .iter()
        .filter_map(|c| c.pointer("/choices/0/delta/reasoning_details"))
        .flat_map(|d| d.as_array().unwrap().iter())
        .map(|d| (d["text"].as_str().unwrap().to_owned(), d["index"].clone()))
        .collect();
    assert_eq!(
        indexes,
        vec![
            ("a".into(), json!(0)),
            ("b".into(), json!(0)),
            ("c".into(), json!(1))
        ]
    );

    let body = br#"{"candidates":[{"content":{"role":"model","parts":[{"text":"x","thought":true},{"text":"y","thought":true},{"text":"z"}]},"finishReason":"STOP"}]}"#;
    let details =
        gemini::response(body).unwrap()["choices"][0]["message"]["reasoning_details"].clone();
    assert_eq!(
        details,
        json!([{"type": "reasoning.text", "text": "xy", "format": "google-gemini-v1", "index": 0}])
    );
}
