//! OpenAI Responses ingress (`POST /api/v1/responses`) through the whole gateway: a plain
//! response and its ledger entry, the stream's named and numbered events, a function-calling
//! round trip, `previous_response_id` (continued, unknown, another key's), invisible fallback
//! before the first content, and errors in OpenAI's shape.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use support::*;

type Seen = Arc<Mutex<Vec<Value>>>;

/// A patch, as Codex's freeform `apply_patch` tool takes it.
const PATCH: &str = "*** Begin Patch\n*** Add File: hello.txt\n+hello\n*** End Patch\n";

/// A chat answer: a call of the first tool until the conversation holds its result, then
/// text. A tool taking one `input` string gets [`PATCH`], any other `{"city":"Paris"}`.
fn tools_answer(req: &Value) -> Response {
    let tool = &req["tools"][0]["function"];
    let args = if tool["parameters"]["properties"]["input"].is_object() {
        json!({"input": PATCH}).to_string()
    } else {
        "{\"city\":\"Paris\"}".to_owned()
    };
    let answered = req["messages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["role"] == "tool");
    let (delta, finish) = if answered {
        (
            json!({"role": "assistant", "content": "It is 18C in Paris."}),
            "stop",
        )
    } else {
        (
            json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0,
                "id": "call_1", "type": "function",
                "function": {"name": tool["name"], "arguments": args}}]}),
            "tool_calls",
        )
    };
    let usage = json!({"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27});
    if req["stream"] != true {
        let mut message = delta;
        if let Some(calls) = message["tool_calls"].as_array_mut() {
            calls[0].as_object_mut().unwrap().remove("index");
        }
        let body = json!({"id": "chatcmpl-t", "object": "chat.completion", "created": 1,
            "model": "up-tools", "choices": [{"index": 0, "message": message,
            "finish_reason": finish}], "usage": usage});
        return ([("content-type", "application/json")], body.to_string()).into_response();
    }
    let chunk = |choices: Value, usage: Value| {
        let mut c = json!({"id": "chatcmpl-t", "object": "chat.completion.chunk",
            "created": 1, "model": "up-tools", "choices": choices});
        if !usage.is_null() {
            c["usage"] = usage;
        }
        format!("data: {c}\n\n")
    };
    let body = [
        chunk(
            json!([{"index": 0, "delta": delta, "finish_reason": null}]),
            Value::Null,
        ),
        chunk(
            json!([{"index": 0, "delta": {}, "finish_reason": finish}]),
            Value::Null,
        ),
        chunk(json!([]), usage),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat();
    ([("content-type", "text/event-stream")], body).into_response()
}

fn fixture(path: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/anthropic/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The tool-calling chat upstream (`/tools/v1`) and an Anthropic one that thinks, with
/// signatures (`/anthropic/v1`); both record the bodies they get.
async fn start_tools() -> (std::net::SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let (s, a) = (seen.clone(), seen.clone());
    let anthropic = post(move |body: String| {
        let seen = a.clone();
        async move {
            let v: Value = serde_json::from_str(&body).unwrap();
            seen.lock().unwrap().push(v.clone());
            if v["stream"] == true {
                let sse = fixture("stream_thinking.sse");
                ([("content-type", "text/event-stream")], sse).into_response()
            } else {
                let json = fixture("thinking.json");
                ([("content-type", "application/json")], json).into_response()
            }
        }
    });
    let app = Router::new()
        .route("/anthropic/v1/messages", anthropic)
        .route(
            "/tools/v1/chat/completions",
            post(move |body: String| {
                let seen = s.clone();
                async move {
                    let v: Value = serde_json::from_str(&body).unwrap();
                    seen.lock().unwrap().push(v.clone());
                    tools_answer(&v)
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

async fn gateway(extra: &str) -> (String, Fake, Seen) {
    let (fake_addr, fake) = start_fake().await;
    let (addr, seen) = start_tools().await;
    let mut toml = config_toml(
        fake_addr,
        &[
            ("openai/gpt-test", &[("ok", 1.0, 2.0)]),
            ("openai/gpt-breaks", &[("errchunkafter", 1.0, 1.0)]),
            (
                "openai/gpt-busy",
                &[("status-503", 0.5, 0.5), ("ok", 2.0, 2.0)],
            ),
        ],
        extra,
    );
    toml.push_str(&format!(
        "\n[[providers]]\nslug = \"tools\"\nname = \"Tools\"\nbase_url = \"http://{addr}/tools/v1\"\n\n\
         [[models]]\nslug = \"openai/gpt-tools\"\n[[models.endpoints]]\nprovider = \"tools\"\n\
         model = \"up-tools\"\npricing = {{ prompt = 1.0, completion = 1.0 }}\n\n\
         [[providers]]\nslug = \"anthropic\"\nname = \"Anthropic\"\napi = \"anthropic\"\n\
         base_url = \"http://{addr}/anthropic/v1\"\n\n\
         [[models]]\nslug = \"anthropic/claude-thinker\"\n[[models.endpoints]]\n\
         provider = \"anthropic\"\nmodel = \"claude-sonnet-4-5-20250929\"\n\
         pricing = {{ prompt = 3.0, completion = 15.0 }}\n"
    ));
    let url =
        start_gateway_with_env(&toml, &[("TEAM_KEY", "sk-sy-v1-team-secret-0123456789")]).await;
    (url, fake, seen)
}

async fn responses(url: &str, body: &Value, headers: &[(&str, &str)]) -> (StatusCode, Value) {
    let (status, _, text) =
        post_json(&format!("{url}/responses"), &body.to_string(), headers).await;
    let v = serde_json::from_str(&text).unwrap_or_else(|_| json!({"raw": text}));
    (status, v)
}

/// The `event:` names of an SSE body, with each event's data.
fn events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter_map(|block| {
            let mut name = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(d).ok();
                }
            }
            Some((name?, data?))
        })
        .collect()
}

#[tokio::test]
async fn a_response_comes_back_in_the_responses_shape_and_is_metered() {
    let (url, fake, _) = gateway("").await;
    let body = json!({"model": "openai/gpt-test", "input": "Say hello",
                      "instructions": "Be brief.", "max_output_tokens": 64});
    let (status, v) = responses(&url, &body, &[]).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["model"], "openai/gpt-test");
    assert_eq!(v["instructions"], "Be brief.");
    let item = &v["output"][0];
    assert_eq!(item["type"], "message");
    assert_eq!(item["role"], "assistant");
    assert_eq!(item["content"][0]["type"], "output_text");
    assert!(
        item["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Hello")
    );
    assert_eq!(v["usage"]["input_tokens"], 12);
    assert_eq!(v["usage"]["output_tokens"], 5);
    assert_eq!(v["usage"]["total_tokens"], 17);
    assert!(v["usage"]["cost"].as_f64().unwrap() > 0.0);
    let seen = fake.requests();
    assert_eq!(
        seen[0].body["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert_eq!(seen[0].body["messages"][1]["content"], "Say hello");
    assert_eq!(seen[0].body["max_tokens"], 64);
    // The ledger knows which API the generation came through.
    let id = v["id"].as_str().unwrap();
    assert!(id.starts_with("resp_"), "{id}");
    let generation = format!("gen-{}", id.trim_start_matches("resp_"));
    let (status, g) = get(&format!("{url}/generation?id={generation}")).await;
    assert_eq!(status, 200, "{g}");
    let g: Value = serde_json::from_str(&g).unwrap();
    assert_eq!(g["data"]["api_type"], "responses", "{g}");
}

#[tokio::test]
async fn a_bare_openai_model_name_is_found_under_openai() {
    let (url, fake, _) = gateway("").await;
    let (status, v) = responses(&url, &json!({"model": "gpt-test", "input": "hi"}), &[]).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["model"], "gpt-test");
    assert_eq!(fake.requests()[0].body["model"], "up-ok");
    let (status, v) = responses(&url, &json!({"model": "gpt-nothing", "input": "hi"}), &[]).await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gpt-nothing")
    );
}

#[tokio::test]
async fn a_stream_sends_named_numbered_events_in_order() {
    let (url, _, _) = gateway("").await;
    let body = json!({"model": "openai/gpt-test", "input": "Say hello", "stream": true});
    // Mounted under `/v1` too.
    let v1 = url.replace("/api/v1", "/v1");
    let (status, headers, text) =
        post_json(&format!("{v1}/responses"), &body.to_string(), &[]).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let evs = events(&text);
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names[..4],
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added"
        ]
    );
    assert_eq!(
        names[names.len() - 4..],
        [
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed"
        ],
        "{names:?}"
    );
    for (i, (name, data)) in evs.iter().enumerate() {
        assert_eq!(data["sequence_number"], i as u64, "{name}");
        assert_eq!(data["type"], name.as_str());
    }
    let deltas: String = evs
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap().to_owned())
        .collect();
    let done = &evs[evs.len() - 4].1;
    assert_eq!(done["text"], deltas.as_str());
    assert!(deltas.starts_with("Hello from"), "{deltas}");
    let completed = &evs.last().unwrap().1["response"];
    assert_eq!(completed["status"], "completed");
    assert_eq!(
        completed["output"][0]["content"][0]["text"],
        deltas.as_str()
    );
    assert_eq!(completed["usage"]["output_tokens"], 3);
    assert!(!text.contains("[DONE]"));
}

#[tokio::test]
async fn a_function_call_round_trip_in_json_and_streams() {
    let (url, _, seen) = gateway("").await;
    let tools = json!([{"type": "function", "name": "get_weather", "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let body = json!({"model": "openai/gpt-tools", "input": "Weather in Paris?", "tools": tools,
                      "tool_choice": "auto"});
    let (status, v) = responses(&url, &body, &[]).await;
    assert_eq!(status, 200, "{v}");
    let call = &v["output"][0];
    assert_eq!(call["type"], "function_call");
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["call_id"], "call_1");
    assert_eq!(call["arguments"], "{\"city\":\"Paris\"}");
    assert!(call["id"].as_str().unwrap().starts_with("fc_"));
    assert_eq!(
        seen.lock().unwrap()[0]["tools"][0]["function"]["name"],
        "get_weather"
    );

    // The client runs the tool and sends the whole conversation back.
    let follow = json!({"model": "openai/gpt-tools", "tools": tools, "input": [
        {"role": "user", "content": "Weather in Paris?"},
        call,
        {"type": "function_call_output", "call_id": "call_1", "output": "18C"}]});
    let (status, v) = responses(&url, &follow, &[]).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["output"][0]["content"][0]["text"], "It is 18C in Paris.");
    {
        let seen = seen.lock().unwrap();
        let m = &seen[1]["messages"];
        assert_eq!(m[1]["tool_calls"][0]["id"], "call_1");
        assert_eq!(
            m[2],
            json!({"role": "tool", "tool_call_id": "call_1", "content": "18C"})
        );
    }

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let (status, _, text) =
        post_json(&format!("{url}/responses"), &streamed.to_string(), &[]).await;
    assert_eq!(status, 200, "{text}");
    let evs = events(&text);
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    assert_eq!(evs[2].1["item"]["name"], "get_weather");
    assert_eq!(evs[4].1["arguments"], "{\"city\":\"Paris\"}");
    assert_eq!(evs[6].1["response"]["output"][0]["call_id"], "call_1");
}

#[tokio::test]
async fn a_custom_tool_call_comes_back_as_raw_input() {
    let (url, _, seen) = gateway("").await;
    let tools = json!([{"type": "custom", "name": "apply_patch", "description": "Edit files.",
        "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/s"}}]);
    let body = json!({"model": "openai/gpt-tools", "input": "Add hello.txt", "tools": tools});
    let (status, v) = responses(&url, &body, &[]).await;
    assert_eq!(status, 200, "{v}");
    let call = &v["output"][0];
    assert_eq!(call["type"], "custom_tool_call", "{v}");
    assert_eq!(call["name"], "apply_patch");
    assert_eq!(call["input"], PATCH);
    {
        let seen = seen.lock().unwrap();
        let f = &seen[0]["tools"][0];
        assert_eq!(f["type"], "function");
        assert_eq!(f["function"]["parameters"]["required"], json!(["input"]));
    }

    // Its output, and the call itself, go back as a tool round trip.
    let follow = json!({"model": "openai/gpt-tools", "tools": tools, "input": [
        {"role": "user", "content": "Add hello.txt"},
        call,
        {"type": "custom_tool_call_output", "call_id": "call_1", "output": "Done!"}]});
    let (status, v) = responses(&url, &follow, &[]).await;
    assert_eq!(status, 200, "{v}");
    {
        let seen = seen.lock().unwrap();
        let m = &seen[1]["messages"];
        let args = m[1]["tool_calls"][0]["function"]["arguments"]
            .as_str()
            .unwrap();
        assert_eq!(serde_json::from_str::<Value>(args).unwrap()["input"], PATCH);
        assert_eq!(
            m[2],
            json!({"role": "tool", "tool_call_id": "call_1", "content": "Done!"})
        );
    }

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let (status, _, text) =
        post_json(&format!("{url}/responses"), &streamed.to_string(), &[]).await;
    assert_eq!(status, 200, "{text}");
    let evs = events(&text);
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.custom_tool_call_input.delta",
            "response.custom_tool_call_input.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    assert_eq!(evs[2].1["item"]["type"], "custom_tool_call");
    assert_eq!(evs[3].1["delta"], PATCH);
    assert_eq!(evs[4].1["input"], PATCH);
    assert_eq!(evs[6].1["response"]["output"][0]["input"], PATCH);
}

#[tokio::test]
async fn signed_thinking_rides_in_encrypted_content_to_the_next_turn() {
    let (url, _, seen) = gateway("").await;
    let ask = json!({"model": "anthropic/claude-thinker", "input": "27 * 453?",
                     "reasoning": {"effort": "high"}, "max_output_tokens": 4000});
    let (status, v) = responses(&url, &ask, &[]).await;
    assert_eq!(status, 200, "{v}");
    let reasoning = &v["output"][0];
    assert_eq!(reasoning["type"], "reasoning", "{v}");
    assert!(
        reasoning["summary"][0]["text"]
            .as_str()
            .unwrap()
            .contains("12231")
    );
    assert!(reasoning["encrypted_content"].is_string(), "{reasoning}");
    assert_eq!(v["output"][1]["content"][0]["text"], "27 × 453 = 12,231.");

    // The client sends the items back (as Codex does, `store: false`): the thinking goes to
    // Anthropic again with its signature.
    let follow = json!({"model": "anthropic/claude-thinker", "store": false,
        "reasoning": {"effort": "high"}, "max_output_tokens": 4000,
        "input": [{"role": "user", "content": "27 * 453?"}, reasoning, v["output"][1],
                  {"role": "user", "content": "And times 2?"}]});
    let (status, v) = responses(&url, &follow, &[]).await;
    assert_eq!(status, 200, "{v}");
    {
        let seen = seen.lock().unwrap();
        let assistant = &seen[1]["messages"][1];
        assert_eq!(assistant["role"], "assistant");
        assert_eq!(assistant["content"][0]["type"], "thinking", "{assistant}");
        assert!(
            assistant["content"][0]["signature"]
                .as_str()
                .unwrap()
                .starts_with("EqQB")
        );
        assert_eq!(assistant["content"][1]["type"], "redacted_thinking");
    }

    let mut streamed = ask.clone();
    streamed["stream"] = json!(true);
    let (status, _, text) =
        post_json(&format!("{url}/responses"), &streamed.to_string(), &[]).await;
    assert_eq!(status, 200, "{text}");
    let evs = events(&text);
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&"response.reasoning_summary_text.delta"),
        "{names:?}"
    );
    let done = &evs.last().unwrap().1["response"];
    assert_eq!(done["output"][0]["type"], "reasoning");
    assert!(
        done["output"][0]["encrypted_content"]
            .as_str()
            .unwrap()
            .contains("EqQB")
    );
    assert!(
        done["output"][1]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("21")
    );
}

#[tokio::test]
async fn previous_response_id_continues_a_stored_conversation() {
    let keys = "[auth]\nrequired = false\n\n[[keys]]\nlabel = \"team\"\nkey_env = \"TEAM_KEY\"\n";
    let (url, fake, _) = gateway(keys).await;
    let first = json!({"model": "openai/gpt-test", "input": "My name is Ada.", "stream": true});
    let (status, _, text) = post_json(&format!("{url}/responses"), &first.to_string(), &[]).await;
    assert_eq!(status, 200, "{text}");
    let completed = events(&text).pop().unwrap().1;
    let id = completed["response"]["id"].as_str().unwrap().to_owned();

    let next = json!({"model": "openai/gpt-test", "input": "What is my name?",
                      "previous_response_id": id, "instructions": "Answer briefly."});
    let (status, v) = responses(&url, &next, &[]).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["previous_response_id"], id.as_str());
    let m = &fake.requests()[1].body["messages"];
    assert_eq!(m[0]["role"], "system");
    assert_eq!(m[1], json!({"role": "user", "content": "My name is Ada."}));
    assert_eq!(m[2]["role"], "assistant");
    assert!(m[2]["content"].as_str().unwrap().starts_with("Hello from"));
    assert_eq!(m[3], json!({"role": "user", "content": "What is my name?"}));

    // A chain: the second response continues the first's conversation.
    let third = json!({"model": "openai/gpt-test", "input": "And again?",
                       "previous_response_id": v["id"]});
    let (status, _) = responses(&url, &third, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(
        fake.requests()[2].body["messages"]
            .as_array()
            .unwrap()
            .len(),
        5
    );

    // Unknown: a 400 naming it, in OpenAI's shape.
    let unknown = json!({"model": "openai/gpt-test", "input": "x",
                         "previous_response_id": "resp_nope"});
    let (status, v) = responses(&url, &unknown, &[]).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(v["error"]["param"], "previous_response_id");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("resp_nope")
    );

    // Another key cannot continue it; `store: false` keeps nothing.
    let key = [("authorization", "Bearer sk-sy-v1-team-secret-0123456789")];
    let (status, v) = responses(&url, &next, &key).await;
    assert_eq!(status, 400, "{v}");
    let unstored = json!({"model": "openai/gpt-test", "input": "x", "store": false});
    let (_, v) = responses(&url, &unstored, &[]).await;
    let follow = json!({"model": "openai/gpt-test", "input": "y", "previous_response_id": v["id"]});
    let (status, _) = responses(&url, &follow, &[]).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_failing_first_endpoint_is_invisible_to_a_stream() {
    let (url, fake, _) = gateway("").await;
    let body = json!({"model": "openai/gpt-busy:floor", "input": "hi", "stream": true});
    let (status, _, text) = post_json(&format!("{url}/responses"), &body.to_string(), &[]).await;
    assert_eq!(status, 200, "{text}");
    assert!(!text.contains("response.failed"), "{text}");
    assert_eq!(fake.count("status-503"), 1);
    assert_eq!(fake.count("ok"), 1);
    assert_eq!(events(&text).last().unwrap().0, "response.completed");
}

#[tokio::test]
async fn a_failure_after_content_ends_the_stream_with_response_failed() {
    let (url, _, _) = gateway("").await;
    let body = json!({"model": "openai/gpt-breaks", "input": "hi", "stream": true});
    let (status, _, text) = post_json(&format!("{url}/responses"), &body.to_string(), &[]).await;
    assert_eq!(status, 200, "{text}");
    let evs = events(&text);
    assert!(
        evs.iter().any(|(n, _)| n == "response.output_text.delta"),
        "{text}"
    );
    let (name, last) = evs.last().unwrap();
    assert_eq!(name, "response.failed", "{text}");
    assert_eq!(last["response"]["status"], "failed");
    assert!(last["response"]["error"]["message"].is_string());
    assert!(evs.iter().all(|(n, _)| n != "response.completed"));
}

#[tokio::test]
async fn errors_come_back_in_openais_shape() {
    let (url, _, _) = gateway("").await;
    let (status, v) = responses(
        &url,
        &json!({"model": "nobody/no-such-model", "input": "hi"}),
        &[],
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no-such-model")
    );
    assert!(v["error"].get("code").is_some());

    let (status, _, text) = post_json(&format!("{url}/responses"), "{not json", &[]).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("JSON"), "{text}");

    let hosted = json!({"model": "openai/gpt-test", "input": "hi",
                        "tools": [{"type": "web_search_preview"}]});
    let (status, v) = responses(&url, &hosted, &[]).await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("web_search_preview")
    );
}
