//! Anthropic Messages ingress (`POST /api/v1/messages`) through the whole gateway: translated
//! onto OpenAI-speaking upstreams (JSON, SSE in Anthropic's event order, tool use, fallback),
//! passed natively to Anthropic upstreams (body, `cache_control`, `anthropic-*` headers),
//! errors in Anthropic's shape, `x-api-key` auth, token counting and the Anthropic model list.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use support::*;

type Seen = Arc<Mutex<Vec<(String, HeaderMap, Value)>>>;

fn fixture(path: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn answer(status: u16, content_type: &'static str, body: String) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", content_type)],
        body,
    )
        .into_response()
}

/// An OpenAI-style tool call answer, as JSON or as chunks.
fn tool_call(stream: bool) -> Response {
    if !stream {
        return answer(
            200,
            "application/json",
            json!({"id": "chatcmpl-tool", "object": "chat.completion", "created": 1_700_000_000,
                "model": "up-tools", "choices": [{"index": 0, "finish_reason": "tool_calls",
                "message": {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1",
                "type": "function", "function": {"name": "get_weather",
                "arguments": "{\"city\":\"Paris\"}"}}]}}],
                "usage": {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27}})
            .to_string(),
        );
    }
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-tool", "object": "chat.completion.chunk",
                "created": 1_700_000_000, "model": "up-tools",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    let body = [
        chunk(
            json!({"role": "assistant", "content": "Checking."}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                "function": {"name": "get_weather", "arguments": ""}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
            Value::Null,
        ),
        chunk(json!({}), json!("tool_calls")),
        format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-tool", "object": "chat.completion.chunk", "created": 1,
                "model": "up-tools", "choices": [],
                "usage": {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27}})
        ),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat();
    answer(200, "text/event-stream", body)
}

/// A fake with an Anthropic-speaking provider (`/anthropic/v1/messages`, its
/// `count_tokens`) and an OpenAI-speaking one that answers with a tool call.
async fn start_upstreams() -> (std::net::SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let (s1, s2) = (seen.clone(), seen.clone());
    let app = Router::new()
        .route(
            "/anthropic/v1/{*action}",
            post(
                move |Path(action): Path<String>, headers: HeaderMap, body: String| {
                    let seen = s1.clone();
                    async move {
                        let v: Value = serde_json::from_str(&body).unwrap();
                        seen.lock()
                            .unwrap()
                            .push((action.clone(), headers, v.clone()));
                        if action == "messages/count_tokens" {
                            answer(200, "application/json", r#"{"input_tokens":42}"#.into())
                        } else if v["stream"] == true {
                            answer(
                                200,
                                "text/event-stream",
                                fixture("anthropic/stream_text.sse"),
                            )
                        } else {
                            answer(200, "application/json", fixture("anthropic/text.json"))
                        }
                    }
                },
            ),
        )
        .route(
            "/tools/v1/chat/completions",
            post(move |headers: HeaderMap, body: String| {
                let seen = s2.clone();
                async move {
                    let v: Value = serde_json::from_str(&body).unwrap();
                    seen.lock()
                        .unwrap()
                        .push(("chat".into(), headers, v.clone()));
                    tool_call(v["stream"] == true)
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

/// The shared OpenAI fake's models (`openai/gpt-test`, and `openai/gpt-busy` whose cheaper
/// endpoint answers 503), plus the Anthropic and tool-calling providers of [`start_upstreams`].
async fn gateway(extra: &str) -> (String, Fake, Seen) {
    let (fake_addr, fake) = start_fake().await;
    let (addr, seen) = start_upstreams().await;
    let mut toml = config_toml(
        fake_addr,
        &[
            ("openai/gpt-test", &[("ok", 1.0, 2.0)]),
            (
                "openai/gpt-busy",
                &[("status-503", 0.5, 0.5), ("ok", 2.0, 2.0)],
            ),
        ],
        extra,
    );
    toml.push_str(&format!(
        r#"
[[providers]]
slug = "anthropic"
name = "Anthropic"
api = "anthropic"
base_url = "http://{addr}/anthropic/v1"
api_key_env = "TEST_ANTHROPIC_KEY"

[[providers]]
slug = "tools"
name = "Tools"
base_url = "http://{addr}/tools/v1"

[[models]]
slug = "anthropic/claude-sonnet-4.5"
name = "Claude Sonnet 4.5"
[[models.endpoints]]
provider = "anthropic"
model = "claude-sonnet-4-5-20250929"
pricing = {{ prompt = 3.0, completion = 15.0 }}

[[models]]
slug = "openai/gpt-tools"
[[models.endpoints]]
provider = "tools"
model = "up-tools"
pricing = {{ prompt = 1.0, completion = 1.0 }}
"#
    ));
    let url = start_gateway_with_env(
        &toml,
        &[
            ("TEST_ANTHROPIC_KEY", "ak-upstream-secret"),
            ("TEAM_KEY", "sk-sy-v1-team-secret-0123456789"),
        ],
    )
    .await;
    (url, fake, seen)
}

async fn messages(url: &str, body: &Value, headers: &[(&str, &str)]) -> (StatusCode, String) {
    let mut all = vec![("anthropic-version", "2023-06-01")];
    all.extend_from_slice(headers);
    let (status, _, text) = post_json(&format!("{url}/messages"), &body.to_string(), &all).await;
    (status, text)
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

fn hello(model: &str, stream: bool) -> Value {
    json!({"model": model, "max_tokens": 256, "stream": stream,
           "messages": [{"role": "user", "content": "Say hello"}]})
}

#[tokio::test]
async fn a_translated_message_comes_back_in_anthropics_shape_and_is_metered() {
    let (url, fake, _) = gateway("").await;
    let (status, text) = messages(&url, &hello("openai/gpt-test", false), &[]).await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "openai/gpt-test");
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["content"][0]["type"], "text");
    assert!(v["content"][0]["text"].as_str().unwrap().contains("Hello"));
    assert_eq!(v["usage"]["input_tokens"], 12);
    assert_eq!(v["usage"]["output_tokens"], 5);
    // OpenRouter's cost rides along: 12 × $1/M + 5 × $2/M.
    assert!(
        (v["usage"]["cost"].as_f64().unwrap() - 0.000022).abs() < 1e-12,
        "{v}"
    );
    let id = v["id"].as_str().unwrap();
    assert!(id.starts_with("msg_"), "{id}");
    // The upstream got an OpenAI chat request.
    let seen = fake.requests();
    assert_eq!(seen[0].body["messages"][0]["content"], "Say hello");
    assert_eq!(seen[0].body["max_tokens"], 256);
    // The ledger knows which API the generation came through.
    let generation = format!("gen-{}", id.trim_start_matches("msg_"));
    let (status, g) = get(&format!("{url}/generation?id={generation}")).await;
    assert_eq!(status, 200, "{g}");
    let g: Value = serde_json::from_str(&g).unwrap();
    assert_eq!(g["data"]["api_type"], "messages", "{g}");
    assert!(g["data"]["total_cost"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn a_translated_stream_follows_anthropics_event_order() {
    let (url, _, _) = gateway("").await;
    let (status, text) = messages(&url, &hello("openai/gpt-test", true), &[]).await;
    assert_eq!(status, 200, "{text}");
    let evs = events(&text);
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[..3], ["message_start", "content_block_start", "ping"]);
    assert_eq!(
        names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"],
        "{names:?}"
    );
    let text: String = evs
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, d)| d["delta"]["text"].as_str().unwrap().to_owned())
        .collect();
    assert!(text.starts_with("Hello from"), "{text}");
    let delta = &evs[evs.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 3);
}

#[tokio::test]
async fn tool_calls_become_tool_use_blocks_in_json_and_streams() {
    let (url, _, seen) = gateway("").await;
    let body = json!({"model": "openai/gpt-tools", "max_tokens": 100,
        "tools": [{"name": "get_weather", "description": "Weather by city",
                   "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        "messages": [{"role": "user", "content": "Weather in Paris?"}]});
    let (status, text) = messages(&url, &body, &[]).await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["stop_reason"], "tool_use");
    let block = v["content"].as_array().unwrap().last().unwrap();
    assert_eq!(block["type"], "tool_use");
    assert_eq!(block["name"], "get_weather");
    assert_eq!(block["input"], json!({"city": "Paris"}));
    {
        let seen = seen.lock().unwrap();
        let tools = &seen[0].2["tools"];
        assert_eq!(tools[0]["type"], "function");
        assert_eq!(tools[0]["function"]["name"], "get_weather");
    }

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let (status, text) = messages(&url, &streamed, &[]).await;
    assert_eq!(status, 200, "{text}");
    let evs = events(&text);
    let starts: Vec<&Value> = evs
        .iter()
        .filter(|(n, _)| n == "content_block_start")
        .map(|(_, d)| &d["content_block"])
        .collect();
    assert_eq!(starts[0]["type"], "text");
    assert_eq!(starts[1]["type"], "tool_use");
    assert_eq!(starts[1]["name"], "get_weather");
    let args: String = evs
        .iter()
        .filter_map(|(_, d)| d["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"city": "Paris"})
    );
    let stop = evs.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(stop.1["delta"]["stop_reason"], "tool_use");
}

#[tokio::test]
async fn an_anthropic_upstream_gets_the_native_body_and_headers() {
    let (url, _, seen) = gateway("").await;
    let body = json!({"model": "claude-sonnet-4-5-20250929", "max_tokens": 64,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "hi"}]});
    let (status, text) = messages(
        &url,
        &body,
        &[("anthropic-beta", "prompt-caching-2024-07-31")],
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["text"], "Hi! My name is Claude.");
    assert!(v["usage"]["cost"].as_f64().unwrap() > 0.0, "{v}");
    let seen = seen.lock().unwrap();
    let (action, headers, up) = &seen[0];
    assert_eq!(action, "messages");
    assert_eq!(up["model"], "claude-sonnet-4-5-20250929");
    assert_eq!(up["system"][0]["cache_control"]["type"], "ephemeral");
    assert!(up.get("messages").is_some() && up.get("provider").is_none());
    assert_eq!(headers["anthropic-version"], "2023-06-01");
    assert_eq!(headers["anthropic-beta"], "prompt-caching-2024-07-31");
    assert_eq!(headers["x-api-key"], "ak-upstream-secret");
}

#[tokio::test]
async fn a_native_stream_arrives_as_anthropic_events() {
    let (url, _, _) = gateway("").await;
    // Claude Code's SDK adds `?beta=true`; the route ignores the query.
    let (status, _, text) = post_json(
        &format!("{url}/messages?beta=true"),
        &hello("claude-sonnet-4-5", true).to_string(),
        &[("anthropic-version", "2023-06-01")],
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let names: Vec<String> = events(&text).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names.first().map(String::as_str), Some("message_start"));
    assert_eq!(names.last().map(String::as_str), Some("message_stop"));
    assert!(names.iter().any(|n| n == "content_block_delta"));
}

#[tokio::test]
async fn a_failing_first_endpoint_is_invisible_to_a_stream() {
    let (url, fake, _) = gateway("").await;
    let (status, text) = messages(&url, &hello("openai/gpt-busy:floor", true), &[]).await;
    assert_eq!(status, 200, "{text}");
    assert!(!text.contains("event: error"), "{text}");
    assert_eq!(fake.count("status-503"), 1);
    assert_eq!(fake.count("ok"), 1);
    assert!(text.contains("message_stop"));
}

#[tokio::test]
async fn errors_come_back_in_anthropics_shape() {
    let (url, _, _) = gateway("").await;
    let (status, text) = messages(&url, &hello("nobody/no-such-model", false), &[]).await;
    // OpenRouter's status for an unknown model (400), in Anthropic's envelope.
    assert_eq!(status, 400, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no-such-model")
    );

    let (status, _, text) = post_json(&format!("{url}/messages"), "{not json", &[]).await;
    assert_eq!(status, 400, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(v["error"]["message"].as_str().unwrap().contains("JSON"));

    let no_messages = json!({"model": "openai/gpt-test", "max_tokens": 5});
    let (status, text) = messages(&url, &no_messages, &[]).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("messages"), "{text}");
}

#[tokio::test]
async fn claude_clients_authenticate_with_x_api_key() {
    let keys = "[auth]\nrequired = true\n\n[[keys]]\nlabel = \"team\"\nkey_env = \"TEAM_KEY\"\n";
    let (url, _, _) = gateway(keys).await;
    let body = hello("openai/gpt-test", false);
    let (status, text) = messages(&url, &body, &[]).await;
    assert_eq!(status, 401, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["error"]["type"],
        "authentication_error"
    );
    let key = "sk-sy-v1-team-secret-0123456789";
    let (status, text) = messages(&url, &body, &[("x-api-key", key)]).await;
    assert_eq!(status, 200, "{text}");
    let count =
        json!({"model": "openai/gpt-test", "messages": [{"role": "user", "content": "hi"}]});
    let (status, _, text) = post_json(
        &format!("{url}/messages/count_tokens"),
        &count.to_string(),
        &[("x-api-key", "sk-wrong")],
    )
    .await;
    assert_eq!(status, 401, "{text}");
    let (status, _, text) = post_json(
        &format!("{url}/messages/count_tokens"),
        &count.to_string(),
        &[("x-api-key", key)],
    )
    .await;
    assert_eq!(status, 200, "{text}");
}

#[tokio::test]
async fn count_tokens_asks_an_anthropic_provider_or_estimates() {
    let (url, _, seen) = gateway("").await;
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 9,
        "messages": [{"role": "user", "content": "hello there"}]});
    let (status, headers, text) = post_json(
        &format!("{url}/messages/count_tokens"),
        &body.to_string(),
        &[("anthropic-version", "2023-06-01")],
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["input_tokens"],
        42
    );
    assert_eq!(headers["x-switchyard-token-count"], "provider");
    {
        let seen = seen.lock().unwrap();
        let (action, _, up) = seen.last().unwrap();
        assert_eq!(action, "messages/count_tokens");
        assert_eq!(up["model"], "claude-sonnet-4-5-20250929");
        assert!(
            up.get("max_tokens").is_none(),
            "count_tokens takes no max_tokens"
        );
    }

    let body = json!({"model": "openai/gpt-test",
        "messages": [{"role": "user", "content": "x".repeat(400)}]});
    let (status, headers, text) = post_json(
        &format!("{url}/messages/count_tokens"),
        &body.to_string(),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(headers["x-switchyard-token-count"], "estimate");
    let n = serde_json::from_str::<Value>(&text).unwrap()["input_tokens"]
        .as_u64()
        .unwrap();
    assert!((100..=130).contains(&n), "{n}");

    let body = json!({"model": "nobody/none", "messages": []});
    let (status, _, text) = post_json(
        &format!("{url}/messages/count_tokens"),
        &body.to_string(),
        &[],
    )
    .await;
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("not_found_error"), "{text}");
}

#[tokio::test]
async fn models_answers_in_anthropics_shape_when_asked_by_a_claude_client() {
    let (url, _, _) = gateway("").await;
    let (status, _, text) = send(
        &format!("{url}/models"),
        "GET",
        "",
        &[("anthropic-version", "2023-06-01")],
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["has_more"], false);
    let claude = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "anthropic/claude-sonnet-4.5")
        .unwrap();
    assert_eq!(claude["type"], "model");
    assert_eq!(claude["display_name"], "Claude Sonnet 4.5");
    assert!(claude["created_at"].as_str().unwrap().ends_with('Z'));
    // Without the header, OpenRouter's shape.
    let (_, text) = get(&format!("{url}/models")).await;
    assert!(serde_json::from_str::<Value>(&text).unwrap()["data"][0]["pricing"].is_object());
}

#[tokio::test]
async fn a_failure_after_content_ends_the_stream_with_an_anthropic_error_event() {
    let (fake_addr, _fake) = start_fake().await;
    let toml = config_toml(
        fake_addr,
        &[("openai/cut", &[("errchunkafter", 1.0, 1.0)])],
        "",
    );
    let url = start_gateway_with_env(&toml, &[]).await;
    let (status, text) = messages(&url, &hello("openai/cut", true), &[]).await;
    assert_eq!(status, 200, "{text}");
    let evs = events(&text);
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"content_block_delta"), "{names:?}");
    let (last, data) = evs.last().unwrap();
    assert_eq!(last, "error", "{names:?}");
    assert_eq!(data["type"], "error");
    assert!(data["error"]["type"].is_string() && data["error"]["message"].is_string());
    assert!(!names.contains(&"message_stop"), "{names:?}");
}

#[tokio::test]
async fn the_messages_layer_alone_reaches_the_chat_path_of_a_plain_client() {
    use switchyard::ingress::anthropic::MessagesLayer;
    use tower::{Layer, ServiceExt};
    let (addr, fake) = start_fake().await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<switchyard::Body>();
    let upstream = tower::service_fn(move |req: http::Request<switchyard::Body>| {
        let client = client.clone();
        async move {
            let (mut parts, body) = req.into_parts();
            parts.uri = format!("http://{addr}/ok{}", parts.uri).parse()?;
            let resp = client
                .request(http::Request::from_parts(parts, body))
                .await?;
            Ok::<_, switchyard::BoxError>(resp.map(switchyard::body::boxed))
        }
    });
    let svc = MessagesLayer::new()
        .model_names(|_| Some("local".to_owned()))
        .layer(upstream);
    let req = http::Request::post("/v1/messages?beta=true")
        .body(switchyard::body::full(
            hello("claude-sonnet-4-5", false).to_string(),
        ))
        .unwrap();
    let resp = svc.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["content"][0]["text"], "Hello from the fake");
    assert_eq!(v["model"], "claude-sonnet-4-5");
    assert!(v.get("provider").is_none(), "{v}");
    let seen = fake.requests();
    assert_eq!(seen[0].path, "/ok/v1/chat/completions");
    assert_eq!(seen[0].body["model"], "local");
}
