//! The whole gateway against fake upstreams: responses, streams, fallback, errors.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use serde_json::{Value, json};
use support::*;

// `sort: price` makes the candidate order deterministic (cheapest first) instead of the default
// price-weighted random first pick, so tests can name which provider fails first.
const HELLO: &str =
    r#"{"model":"acme/m","provider":{"sort":"price"},"messages":[{"role":"user","content":"hi"}]}"#;

async fn gateway(models: Models<'_>) -> (String, Fake) {
    let (addr, fake) = start_fake().await;
    let url = start_gateway(&config_toml(addr, models, "")).await;
    (url, fake)
}

#[tokio::test]
async fn chat_completion_is_stamped_like_openrouter() {
    let (url, fake) = gateway(&[("acme/m", &[("ok", 1.0, 2.0)])]).await;
    let (status, headers, body) = post_json(
        &format!("{url}/chat/completions"),
        HELLO,
        &[("authorization", "Bearer client-secret"), ("cookie", "a=b")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let id = v["id"].as_str().unwrap();
    assert!(id.starts_with("gen-"), "{id}");
    assert_eq!(headers["x-generation-id"], id);
    assert_eq!(v["model"], "acme/m");
    assert_eq!(v["provider"], "P ok");
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["choices"][0]["native_finish_reason"], "stop");
    assert_eq!(v["choices"][0]["message"]["content"], "Hello from the fake");
    // The upstream got its own model id and none of the client's credentials.
    let seen = &fake.requests()[0];
    assert_eq!(seen.body["model"], "up-ok");
    assert!(seen.headers.get("authorization").is_none());
    assert!(seen.headers.get("cookie").is_none());
}

#[tokio::test]
async fn unknown_fields_reach_openai_upstreams_and_gateway_fields_do_not() {
    let (url, fake) = gateway(&[("acme/m", &[("ok", 1.0, 2.0)])]).await;
    let body = r#"{"model":"acme/m","messages":[{"role":"user","content":"hi"}],"safe_prompt":true,"provider":{"sort":"price"},"user":"alice"}"#;
    let (status, _, _) = post_json(&format!("{url}/chat/completions"), body, &[]).await;
    assert_eq!(status, 200);
    let seen = &fake.requests()[0].body;
    assert_eq!(seen["safe_prompt"], true);
    assert!(seen.get("provider").is_none());
    assert_ne!(seen["user"], "alice", "the end-user id is hashed");
}

#[tokio::test]
async fn legacy_completions_work() {
    let (url, _) = gateway(&[("acme/m", &[("ok", 1.0, 2.0)])]).await;
    let (status, _, body) = post_json(
        &format!("{url}/completions"),
        r#"{"model":"acme/m","prompt":"Say hi"}"#,
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["choices"][0]["text"], "Hello from the fake");
    assert_eq!(v["object"], "text_completion");
}

#[tokio::test]
async fn falls_back_on_5xx_and_429_and_reports_attempts() {
    let (url, fake) = gateway(&[(
        "acme/m",
        &[
            ("status-500", 1.0, 1.0),
            ("status-429", 2.0, 2.0),
            ("ok", 3.0, 3.0),
        ],
    )])
    .await;
    let (status, _, body) = post_json(
        &format!("{url}/chat/completions"),
        HELLO,
        &[("x-openrouter-metadata", "enabled")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["provider"], "P ok");
    let meta = &v["openrouter_metadata"];
    assert_eq!(meta["attempt"], 3);
    assert_eq!(meta["strategy"], "fallback");
    let statuses: Vec<u64> = meta["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [500, 429, 200]);
    assert_eq!(fake.count("ok"), 1);
}

#[tokio::test]
async fn ordinary_400_is_final_and_carries_the_provider_reason() {
    let (url, fake) = gateway(&[("acme/m", &[("status-400", 1.0, 1.0), ("ok", 3.0, 3.0)])]).await;
    let (status, _, body) = post_json(&format!("{url}/chat/completions"), HELLO, &[]).await;
    assert_eq!(status, 400, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], 400);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("fake upstream says 400"),
        "{body}"
    );
    assert_eq!(v["error"]["metadata"]["provider_name"], "P status-400");
    assert!(
        v["error"]["metadata"]["raw"]
            .as_str()
            .unwrap()
            .contains("fake_error")
    );
    assert_eq!(fake.count("ok"), 0);
}

#[tokio::test]
async fn context_length_error_moves_to_the_next_model() {
    let (url, fake) = gateway(&[
        (
            "acme/a",
            &[("status-400-ctx", 1.0, 1.0), ("status-500", 2.0, 2.0)],
        ),
        ("acme/b", &[("ok", 1.0, 1.0)]),
    ])
    .await;
    let body = r#"{"model":"acme/a","models":["acme/b"],"provider":{"sort":"price"},"messages":[{"role":"user","content":"hi"}]}"#;
    let (status, _, body) = post_json(&format!("{url}/chat/completions"), body, &[]).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["model"], "acme/b");
    assert_eq!(
        fake.count("status-500"),
        0,
        "the rest of acme/a's endpoints are skipped"
    );
}

#[tokio::test]
async fn all_failing_returns_the_last_error_with_retry_after() {
    let (url, _) = gateway(&[(
        "acme/m",
        &[("status-503", 1.0, 1.0), ("status-429-ra7", 2.0, 2.0)],
    )])
    .await;
    let (status, headers, body) = post_json(&format!("{url}/chat/completions"), HELLO, &[]).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(headers["retry-after"], "7");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["metadata"]["previous_errors"][0]["status"], 503);
}

#[tokio::test]
async fn invalid_json_and_error_inside_200_fall_over() {
    let (url, _) = gateway(&[(
        "acme/m",
        &[
            ("garbage", 1.0, 1.0),
            ("error200", 2.0, 2.0),
            ("ok", 3.0, 3.0),
        ],
    )])
    .await;
    let (status, _, body) = post_json(&format!("{url}/chat/completions"), HELLO, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("P ok"));
}

#[tokio::test]
async fn hung_upstream_times_out_and_falls_over() {
    let (url, _) = gateway(&[("acme/m", &[("hang", 1.0, 1.0), ("ok", 3.0, 3.0)])]).await;
    let started = std::time::Instant::now();
    let (status, _, body) = post_json(&format!("{url}/chat/completions"), HELLO, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test]
async fn stream_is_chunked_stamped_and_ends_with_done() {
    let (url, _) = gateway(&[("acme/m", &[("ok", 1.0, 2.0)])]).await;
    let req = r#"{"model":"acme/m","stream":true,"provider":{"sort":"price"},"messages":[{"role":"user","content":"hi"}]}"#;
    let (status, headers, body) = post_json(&format!("{url}/chat/completions"), req, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/event-stream");
    let (data, _) = sse_data(&body);
    assert_eq!(data.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let id = headers["x-generation-id"].to_str().unwrap();
    assert!(
        chunks
            .iter()
            .all(|c| c["id"] == id && c["model"] == "acme/m" && c["provider"] == "P ok")
    );
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello from the fake");
    let usage: Vec<&Value> = chunks
        .iter()
        .filter(|c| c.get("usage").is_some_and(|u| !u.is_null()))
        .collect();
    assert_eq!(usage.len(), 1, "exactly one usage chunk");
    assert_eq!(usage[0]["choices"], json!([]));
    assert!(
        std::ptr::eq(usage[0], chunks.last().unwrap()),
        "the usage chunk is last before [DONE]"
    );
}

#[tokio::test]
async fn stream_failure_before_content_falls_over_invisibly() {
    let (url, _) = gateway(&[(
        "acme/m",
        &[
            ("cutbefore", 1.0, 1.0),
            ("status-502", 2.0, 2.0),
            ("ok", 3.0, 3.0),
        ],
    )])
    .await;
    let req = r#"{"model":"acme/m","stream":true,"provider":{"sort":"price"},"messages":[{"role":"user","content":"hi"}]}"#;
    let (status, _, body) = post_json(&format!("{url}/chat/completions"), req, &[]).await;
    assert_eq!(status, 200);
    let (data, _) = sse_data(&body);
    let chunks: Vec<Value> = data
        .iter()
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(
        chunks.iter().all(|c| c["provider"] == "P ok"),
        "one clean stream from the last provider: {body}"
    );
    assert_eq!(
        chunks
            .iter()
            .filter(|c| c["choices"][0]["delta"]["role"] == "assistant")
            .count(),
        1
    );
    assert!(chunks.iter().all(|c| c.get("error").is_none()));
}

#[tokio::test]
async fn stream_failure_after_content_ends_with_error_chunk_and_done() {
    for scenario in ["cutafter", "stallafter", "nodone"] {
        let (url, fake) = gateway(&[("acme/m", &[(scenario, 1.0, 1.0), ("ok", 3.0, 3.0)])]).await;
        let req = r#"{"model":"acme/m","stream":true,"provider":{"sort":"price"},"messages":[{"role":"user","content":"hi"}]}"#;
        let (status, _, body) = post_json(&format!("{url}/chat/completions"), req, &[]).await;
        assert_eq!(status, 200);
        let (data, _) = sse_data(&body);
        assert_eq!(data.last().unwrap(), "[DONE]", "{scenario}: {body}");
        let last: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
        assert_eq!(
            last["choices"][0]["finish_reason"], "error",
            "{scenario}: {body}"
        );
        assert!(last["error"]["code"].as_u64().unwrap() >= 500);
        assert!(
            body.contains("\"content\":\"Hello\""),
            "content so far reaches the client"
        );
        assert_eq!(
            fake.count("ok"),
            0,
            "no failover after the first content ({scenario})"
        );
    }
}

#[tokio::test]
async fn slow_first_byte_gets_keepalive_comments_never_data() {
    let (url, _) = gateway(&[("acme/m", &[("slowfirst-900", 1.0, 1.0)])]).await;
    let req = r#"{"model":"acme/m","stream":true,"provider":{"sort":"price"},"messages":[{"role":"user","content":"hi"}]}"#;
    let (status, _, body) = post_json(&format!("{url}/chat/completions"), req, &[]).await;
    assert_eq!(status, 200);
    assert!(body.starts_with(": OPENROUTER PROCESSING\n\n"), "{body}");
    let (data, comments) = sse_data(&body);
    assert!(comments);
    assert!(data.iter().all(|d| d == "[DONE]" || d.starts_with('{')));
    assert_eq!(data.last().unwrap(), "[DONE]");
}

#[tokio::test]
async fn request_errors_name_their_cause() {
    let (url, _) = gateway(&[("acme/m", &[("ok", 1.0, 2.0)])]).await;
    let chat = format!("{url}/chat/completions");
    let (s, _, b) = post_json(&chat, "{\"model\": \"acme/m\", \"messages\": [", &[]).await;
    assert_eq!(s, 400);
    assert!(b.contains("line 1, column"), "{b}");
    let (s, _, b) = post_json(
        &chat,
        r#"{"model":"nope/x","messages":[{"role":"user","content":"hi"}]}"#,
        &[],
    )
    .await;
    assert_eq!(s, 400);
    let v: Value = serde_json::from_str(&b).unwrap();
    assert!(v["error"]["message"].as_str().unwrap().contains("nope/x"));
    assert_eq!(v["error"]["availability"]["code"], "model_not_found");
    let big = format!(
        r#"{{"model":"acme/m","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(33 * 1024 * 1024)
    );
    let (s, _, b) = post_json(&chat, &big, &[]).await;
    assert_eq!(s, 413, "{b}");
    let (s, b) = get(&url.replace("/api/v1", "/nowhere")).await;
    assert_eq!(s, 404);
    assert!(b.contains("/nowhere"));
}

#[tokio::test]
async fn disabled_provider_gives_404_naming_the_key_variable() {
    let (addr, _) = start_fake().await;
    let cfg = format!(
        "[[providers]]\nslug = \"locked\"\nbase_url = \"http://{addr}/ok/v1\"\napi_key_env = \"SWITCHYARD_TEST_UNSET_KEY\"\n[[models]]\nslug = \"acme/m\"\n[[models.endpoints]]\nprovider = \"locked\"\nmodel = \"x\"\n"
    );
    let url = start_gateway(&cfg).await;
    let (s, _, b) = post_json(&format!("{url}/chat/completions"), HELLO, &[]).await;
    assert_eq!(s, 404);
    assert!(b.contains("SWITCHYARD_TEST_UNSET_KEY"), "{b}");
}

#[tokio::test]
async fn models_endpoints_providers_and_healthz() {
    let (url, _) = gateway(&[("acme/m", &[("ok", 0.15, 0.6), ("status-500", 1.0, 2.0)])]).await;
    let (s, b) = get(&format!("{url}/models")).await;
    assert_eq!(s, 200);
    let v: Value = serde_json::from_str(&b).unwrap();
    let m = &v["data"][0];
    assert_eq!(m["id"], "acme/m");
    assert_eq!(m["pricing"]["prompt"], "0.00000015");
    assert_eq!(m["pricing"]["completion"], "0.0000006");
    for k in [
        "canonical_slug",
        "name",
        "created",
        "context_length",
        "architecture",
        "top_provider",
        "per_request_limits",
        "supported_parameters",
        "links",
    ] {
        assert!(m.get(k).is_some(), "missing {k}");
    }
    assert_eq!(v["total_count"], 1);
    let (_, b) = get(&format!(
        "{url}/models?supported_parameters=nonexistent_param"
    ))
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&b).unwrap()["data"],
        json!([])
    );
    let (_, b) = get(&format!("{url}/models?output_modalities=image")).await;
    assert_eq!(
        serde_json::from_str::<Value>(&b).unwrap()["data"],
        json!([])
    );
    let (s, b) = get(&format!("{url}/models/acme/m/endpoints")).await;
    assert_eq!(s, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&b).unwrap()["data"]["endpoints"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (s, b) = get(&format!("{url}/providers")).await;
    assert_eq!(s, 200);
    assert!(b.contains("p-ok"));
    let (s, _) = get(&url.replace("/api/v1", "/healthz")).await;
    assert_eq!(s, 200);
    let (s, _) = get(&url.replace("/api/v1", "/v1/models")).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn models_sort_and_single_model_lookup() {
    let (addr, _) = start_fake().await;
    let cfg = config_toml(
        addr,
        &[
            ("acme/cheap", &[("ok", 0.1, 0.2)]),
            ("acme/dear", &[("ok", 5.0, 15.0)]),
        ],
        "[aliases]\n\"acme/latest\" = \"acme/dear\"\n",
    );
    let url = start_gateway(&cfg).await;
    let ids = |b: &str| -> Vec<String> {
        let v: Value = serde_json::from_str(b).unwrap();
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, b) = get(&format!("{url}/models?sort=pricing-high-to-low")).await;
    assert_eq!(ids(&b), ["acme/dear", "acme/cheap"]);
    let (_, b) = get(&format!("{url}/models?sort=pricing-low-to-high")).await;
    assert_eq!(ids(&b), ["acme/cheap", "acme/dear"]);
    let (s, b) = get(&format!("{url}/model/acme/cheap")).await;
    assert_eq!(s, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&b).unwrap()["data"]["id"],
        "acme/cheap"
    );
    let (s, b) = get(&format!("{url}/model/acme/latest")).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        serde_json::from_str::<Value>(&b).unwrap()["data"]["alias_target"]["slug"],
        "acme/dear"
    );
    let (s, _) = get(&format!("{url}/model/acme/cheap:floor")).await;
    assert_eq!(s, 200, "variant suffixes resolve");
    let (s, _) = get(&format!("{url}/model/nope/none")).await;
    assert_eq!(s, 404);
}

/// A large body goes out as slices of the client's buffer: every attempt (here a 500 and then a
/// success) gets the same `messages`, escapes and non-ASCII text intact, with its own `model`.
#[tokio::test]
async fn large_bodies_reach_every_attempt_intact() {
    let (url, fake) = gateway(&[("acme/m", &[("status-500", 1.0, 1.0), ("ok", 2.0, 2.0)])]).await;
    let text = "quote \" backslash \\ newline \n snow ☃ tab \t ".repeat(3000);
    let body = json!({
        "model": "acme/m",
        "provider": {"sort": "price"},
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": text}]}
        ],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}],
    });
    let (status, _, resp) =
        post_json(&format!("{url}/chat/completions"), &body.to_string(), &[]).await;
    assert_eq!(status, 200, "{resp}");
    let seen = fake.requests();
    assert_eq!(seen.len(), 2, "a failed attempt, then the served one");
    for (req, model) in seen.iter().zip(["up-status-500", "up-ok"]) {
        assert_eq!(req.body["messages"], body["messages"]);
        assert_eq!(req.body["tools"], body["tools"]);
        assert_eq!(req.body["model"], model);
        assert!(req.body.get("provider").is_none());
    }
}
