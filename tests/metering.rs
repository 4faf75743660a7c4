//! Metering, the ledger and gateway keys through the whole gateway.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use serde_json::{Value, json};
use support::*;

const STREAM: &str =
    r#"{"model":"acme/m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
const MGMT: &[(&str, &str)] = &[("SWITCHYARD_TEST_MGMT", "sk-mgmt-secret")];
const PLAIN: &str = r#"{"model":"acme/m","messages":[{"role":"user","content":"hi"}]}"#;

fn usage_chunk(body: &str) -> Value {
    let (data, _) = sse_data(body);
    let chunks: Vec<Value> = data
        .iter()
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let with_usage: Vec<&Value> = chunks
        .iter()
        .filter(|c| c.get("usage").is_some_and(|u| !u.is_null()))
        .collect();
    assert_eq!(with_usage.len(), 1, "{body}");
    with_usage[0].clone()
}

#[tokio::test]
async fn cost_is_inline_and_matches_the_ledger() {
    let (addr, _) = start_fake().await;
    let url = start_gateway(&config_toml(addr, &[("acme/m", &[("ok", 1.0, 2.0)])], "")).await;
    // Non-streaming: 12 prompt × $1/M + 5 completion × $2/M.
    let (s, headers, body) = post_json(&format!("{url}/chat/completions"), PLAIN, &[]).await;
    assert_eq!(s, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["usage"]["cost"], json!(0.000022));
    assert_eq!(v["usage"]["is_byok"], false);
    assert!(v["usage"]["cost_details"].is_object());
    let id = headers["x-generation-id"].to_str().unwrap();
    // Queryable at once: no 404 window.
    let (s, g) = get(&format!("{url}/generation?id={id}")).await;
    assert_eq!(s, 200, "{g}");
    let g: Value = serde_json::from_str(&g).unwrap();
    assert_eq!(g["data"]["total_cost"], json!(0.000022));
    assert_eq!(g["data"]["tokens_prompt"], 12);
    assert_eq!(g["data"]["provider_name"], "P ok");
    assert_eq!(g["data"]["model"], "acme/m");
    assert_eq!(g["data"]["streamed"], false);

    // Streaming: the final chunk's cost equals the ledger's total_cost equals 12×1 + 3×2 per M.
    let (s, headers, body) = post_json(&format!("{url}/chat/completions"), STREAM, &[]).await;
    assert_eq!(s, 200);
    let u = usage_chunk(&body);
    assert_eq!(u["choices"], json!([]));
    assert_eq!(u["usage"]["cost"], json!(0.000018));
    let id = headers["x-generation-id"].to_str().unwrap();
    let (_, g) = get(&format!("{url}/generation?id={id}")).await;
    let g: Value = serde_json::from_str(&g).unwrap();
    assert_eq!(g["data"]["total_cost"], json!(0.000018));
    assert_eq!(g["data"]["streamed"], true);
    assert_eq!(g["data"]["finish_reason"], "stop");
    let (s, _) = get(&format!("{url}/generation?id=gen-unknown")).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn mid_stream_failure_is_recorded_once_and_insured() {
    let (addr, _) = start_fake().await;
    let url = start_gateway(&config_toml(
        addr,
        &[("acme/m", &[("cutafter", 1.0, 2.0)])],
        "",
    ))
    .await;
    let (_, headers, body) = post_json(&format!("{url}/chat/completions"), STREAM, &[]).await;
    assert!(body.contains("\"finish_reason\":\"error\""));
    let id = headers["x-generation-id"].to_str().unwrap();
    let (s, g) = get(&format!("{url}/generation?id={id}")).await;
    assert_eq!(s, 200);
    let g: Value = serde_json::from_str(&g).unwrap();
    assert_eq!(g["data"]["finish_reason"], "error");
    assert_eq!(
        g["data"]["total_cost"],
        json!(0.0),
        "finish reason error is insured"
    );
}

fn keyed_config(addr: std::net::SocketAddr, ledger: &str) -> String {
    config_toml(
        addr,
        &[("acme/m", &[("ok", 1000.0, 1000.0)])],
        &format!(
            "[auth]\nrequired = true\nmanagement_key_env = \"SWITCHYARD_TEST_MGMT\"\n\n[[keys]]\nlabel = \"team-a\"\nkey_sha256 = \"{}\"\nlimit = 1.0\nlimit_reset = \"monthly\"\n\n[ledger]\npath = \"{ledger}\"\n",
            sha256_hex("sk-team-a")
        ),
    )
}

fn sha256_hex(s: &str) -> String {
    switchyard::keys::hash::hash_key(s)
}

fn temp_db(name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("switchyard-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("ledger.db").display().to_string()
}

#[tokio::test]
async fn keys_are_required_and_limits_hold_under_concurrency() {
    let (addr, _) = start_fake().await;
    let db = temp_db("limits");
    let url = start_gateway_with_env(&keyed_config(addr, &db), MGMT).await;
    let chat = format!("{url}/chat/completions");
    let (s, _, b) = post_json(&chat, PLAIN, &[]).await;
    assert_eq!(s, 401, "{b}");
    let (s, _, b) = post_json(&chat, PLAIN, &[("authorization", "Bearer sk-wrong")]).await;
    assert_eq!(s, 401);
    assert!(!b.contains("sk-wrong"), "keys never echo");
    // Each request holds up to 4096 × $1000/M ≈ $4.1 worst case: over the $1 limit with no max_tokens.
    let (s, _, b) = post_json(&chat, PLAIN, &[("authorization", "Bearer sk-team-a")]).await;
    assert_eq!(s, 402, "{b}");
    assert!(b.contains("team-a") && b.contains("limit"), "{b}");
    // With max_tokens 90 the worst case is (1 + 90) × $0.001 = $0.091: 10 fit in $1, 11 do not.
    let limited =
        r#"{"model":"acme/m","max_tokens":90,"messages":[{"role":"user","content":"hi"}]}"#;
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let chat = chat.clone();
        tasks.push(tokio::spawn(async move {
            post_json(&chat, limited, &[("authorization", "Bearer sk-team-a")])
                .await
                .0
        }));
    }
    let mut ok = 0;
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap().as_u16() {
            200 => ok += 1,
            402 => refused += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(ok + refused, 100);
    assert!(ok >= 10, "at least the 10 that fit: {ok}");
    // Spend never exceeds the limit.
    let (s, key) = get_with(&format!("{url}/key"), "Bearer sk-team-a").await;
    assert_eq!(s, 200, "{key}");
    let key: Value = serde_json::from_str(&key).unwrap();
    assert!(key["data"]["usage"].as_f64().unwrap() <= 1.0, "{key}");
    assert_eq!(key["data"]["limit"], json!(1.0));
}

#[tokio::test]
async fn management_api_creates_disables_and_refuses_ordinary_keys() {
    let (addr, _) = start_fake().await;
    let url = start_gateway_with_env(&keyed_config(addr, &temp_db("mgmt")), MGMT).await;
    let (s, _, _) = post_json(
        &format!("{url}/keys"),
        r#"{"name":"x"}"#,
        &[("authorization", "Bearer sk-team-a")],
    )
    .await;
    assert_eq!(s, 403, "ordinary keys cannot manage keys");
    let (s, _, b) = post_json(
        &format!("{url}/keys"),
        r#"{"name":"ci","limit":5}"#,
        &[("authorization", "Bearer sk-mgmt-secret")],
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let v: Value = serde_json::from_str(&b).unwrap();
    let secret = v["key"].as_str().unwrap().to_owned();
    let hash = v["data"]["hash"].as_str().unwrap().to_owned();
    let auth = format!("Bearer {secret}");
    let (s, _, _) = post_json(
        &format!("{url}/chat/completions"),
        r#"{"model":"acme/m","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#,
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = request(
        &format!("{url}/keys/{hash}"),
        "PATCH",
        r#"{"disabled":true}"#,
        "Bearer sk-mgmt-secret",
    )
    .await;
    assert_eq!(s, 200);
    let (s, _, _) = post_json(
        &format!("{url}/chat/completions"),
        PLAIN,
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(s, 403, "disabled keys get 403");
    let (s, b) = get_with(&format!("{url}/keys"), "Bearer sk-mgmt-secret").await;
    assert_eq!(s, 200);
    assert!(!b.contains(&secret), "the secret is shown once only");
    let (s, _) = request(
        &format!("{url}/keys/{hash}"),
        "DELETE",
        "",
        "Bearer sk-mgmt-secret",
    )
    .await;
    assert_eq!(s, 200);
    let (s, _, _) = post_json(
        &format!("{url}/chat/completions"),
        PLAIN,
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn sqlite_ledger_survives_a_restart() {
    let (addr, _) = start_fake().await;
    let db = temp_db("restart");
    let cfg = config_toml(
        addr,
        &[("acme/m", &[("ok", 1.0, 2.0)])],
        &format!("[ledger]\npath = \"{db}\"\n"),
    );
    let url = start_gateway(&cfg).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let (_, h, _) = post_json(&format!("{url}/chat/completions"), PLAIN, &[]).await;
        ids.push(h["x-generation-id"].to_str().unwrap().to_owned());
    }
    // A second gateway on the same file (the first one's writer flushes within 50 ms).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let url2 = start_gateway(&cfg).await;
    for id in ids {
        let (s, _) = get(&format!("{url2}/generation?id={id}")).await;
        assert_eq!(s, 200, "{id}");
    }
}

#[tokio::test]
async fn a_thousand_concurrent_requests_leave_exactly_one_row_each() {
    let (addr, _) = start_fake().await;
    let db = temp_db("thousand");
    let cfg = config_toml(
        addr,
        &[("acme/m", &[("ok", 1.0, 2.0)])],
        &format!("[ledger]\npath = \"{db}\"\n"),
    );
    let url = start_gateway(&cfg).await;
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let url = url.clone();
        let sem = sem.clone();
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire().await.unwrap();
            let body = if i % 2 == 0 { STREAM } else { PLAIN };
            let (s, h, _) = post_json(&format!("{url}/chat/completions"), body, &[]).await;
            assert_eq!(s, 200);
            h["x-generation-id"].to_str().unwrap().to_owned()
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap());
    }
    assert_eq!(ids.len(), 1000);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let sink = switchyard::ledger::SqliteSink::open(std::path::Path::new(&db)).unwrap();
    assert_eq!(sink.count().unwrap(), 1000);
}

#[tokio::test]
async fn a_stream_that_failed_over_is_recorded_once_for_the_provider_that_served() {
    let (addr, _) = start_fake().await;
    let url = start_gateway(&config_toml(
        addr,
        &[("acme/m", &[("cutbefore", 1.0, 2.0), ("ok", 1.0, 2.0)])],
        "",
    ))
    .await;
    let body = r#"{"model":"acme/m","stream":true,"provider":{"sort":"price"},"messages":[{"role":"user","content":"hi"}]}"#;
    let (_, headers, raw) = post_json(&format!("{url}/chat/completions"), body, &[]).await;
    assert_eq!(usage_chunk(&raw)["provider"], "P ok");
    let id = headers["x-generation-id"].to_str().unwrap();
    let (_, g) = get(&format!("{url}/generation?id={id}")).await;
    let g: Value = serde_json::from_str(&g).unwrap();
    assert_eq!(g["data"]["provider_name"], "P ok");
    assert_eq!(g["data"]["total_cost"], json!(0.000018));
    assert_eq!(
        g["data"]["provider_responses"].as_array().map(Vec::len),
        Some(2),
        "{g}"
    );
}

#[tokio::test]
async fn optional_auth_serves_anonymous_callers_and_still_limits_known_keys() {
    let (addr, _) = start_fake().await;
    let cfg =
        keyed_config(addr, &temp_db("optional")).replace("required = true", "required = false");
    let url = start_gateway_with_env(&cfg, MGMT).await;
    let chat = format!("{url}/chat/completions");
    let (s, _, _) = post_json(&chat, PLAIN, &[]).await;
    assert_eq!(s, 200, "no key: served");
    let (s, _, _) = post_json(
        &chat,
        PLAIN,
        &[("authorization", "Bearer sk-any-sdk-default")],
    )
    .await;
    assert_eq!(s, 200, "unknown key: served anonymously");
    // The known key's $1 limit still applies: no max_tokens means a worst case over $4.
    let (s, _, b) = post_json(&chat, PLAIN, &[("authorization", "Bearer sk-team-a")]).await;
    assert_eq!(s, 402, "{b}");
}
