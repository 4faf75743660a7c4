//! Per-key limits in one gateway (in process): requests per minute (429 with `Retry-After` and
//! `X-RateLimit-*`), the model allow-list (403 naming the model), and the management API.

#![allow(clippy::unwrap_used)] // panicking is how tests fail

mod support;

use support::{config_toml, post_json, request, start_fake, start_gateway_with_env};

const MODELS: support::Models<'static> = &[
    ("openai/small", &[("ok", 1.0, 1.0)]),
    ("meta/llama", &[("ok", 1.0, 1.0)]),
];

fn chat(model: &str) -> String {
    format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}],"max_tokens":5}}"#)
}

/// Waits out the end of a minute, so a test's requests fall in one rate-limit window.
async fn same_minute() {
    let ms = switchyard::ledger::now_ms() % 60_000;
    if ms > 57_000 {
        tokio::time::sleep(std::time::Duration::from_millis((60_000 - ms + 200) as u64)).await;
    }
}

#[tokio::test]
async fn rpm_limit_answers_429_with_rate_limit_headers() {
    let (addr, _fake) = start_fake().await;
    let keys =
        "[auth]\nrequired = true\n\n[[keys]]\nlabel = \"team\"\nkey_env = \"TEAM\"\nrpm = 2\n";
    let url =
        start_gateway_with_env(&config_toml(addr, MODELS, keys), &[("TEAM", "sk-team")]).await;
    let auth = [("authorization", "Bearer sk-team")];
    same_minute().await;
    for _ in 0..2 {
        let (status, _, body) = post_json(
            &format!("{url}/chat/completions"),
            &chat("openai/small"),
            &auth,
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, headers, body) = post_json(
        &format!("{url}/chat/completions"),
        &chat("openai/small"),
        &auth,
    )
    .await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body.contains("team") && body.contains("2 requests per minute"),
        "{body}"
    );
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(h("x-ratelimit-limit"), "2");
    assert_eq!(h("x-ratelimit-remaining"), "0");
    let retry: u64 = h("retry-after").parse().expect("Retry-After");
    assert!((1..=60).contains(&retry), "{retry}");
    let reset: i64 = h("x-ratelimit-reset").parse().expect("reset");
    assert_eq!(reset % 60_000, 0, "the window ends on a minute");
}

#[tokio::test]
async fn model_allow_list_filters_and_refuses_with_403() {
    let (addr, _fake) = start_fake().await;
    let keys = "[auth]\nrequired = true\n\n[[keys]]\nlabel = \"team\"\nkey_env = \"TEAM\"\nmodels = [\"openai/*\"]\n";
    let url =
        start_gateway_with_env(&config_toml(addr, MODELS, keys), &[("TEAM", "sk-team")]).await;
    let auth = [("authorization", "Bearer sk-team")];
    let (status, _, body) = post_json(
        &format!("{url}/chat/completions"),
        &chat("openai/small"),
        &auth,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = post_json(
        &format!("{url}/chat/completions"),
        &chat("meta/llama"),
        &auth,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("`meta/llama`") && body.contains("`team`"),
        "{body}"
    );
}

#[tokio::test]
async fn management_api_sets_and_shows_limits() {
    let (addr, _fake) = start_fake().await;
    let keys = "[auth]\nrequired = true\nmanagement_key_env = \"MGMT\"\n";
    let url =
        start_gateway_with_env(&config_toml(addr, MODELS, keys), &[("MGMT", "sk-mgmt")]).await;
    let (status, body) = request(
        &format!("{url}/keys"),
        "POST",
        r#"{"name":"ci","rpm":1,"tpm":1000,"models":["meta/*"]}"#,
        "Bearer sk-mgmt",
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let created: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(created["data"]["rpm"], 1);
    assert_eq!(created["data"]["tpm"], 1000);
    assert_eq!(created["data"]["models"][0], "meta/*");
    let secret = created["key"].as_str().unwrap().to_owned();
    let auth = [("authorization", format!("Bearer {secret}"))];
    let auth: Vec<(&str, &str)> = auth.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, _, body) = post_json(
        &format!("{url}/chat/completions"),
        &chat("openai/small"),
        &auth,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let hash = created["data"]["hash"].as_str().unwrap();
    let (status, body) = request(
        &format!("{url}/keys/{hash}"),
        "PATCH",
        r#"{"models":null,"rpm":null}"#,
        "Bearer sk-mgmt",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let patched: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(patched["data"]["rpm"], serde_json::Value::Null);
    assert_eq!(patched["data"]["tpm"], 1000, "untouched fields stay");
    let (status, _, body) = post_json(
        &format!("{url}/chat/completions"),
        &chat("openai/small"),
        &auth,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}
