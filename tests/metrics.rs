//! `GET /metrics` on a served gateway: completions, upstream attempts and the overhead histogram
//! counted as they happened; the management key when the gateway has keys; `[server] metrics`.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::net::SocketAddr;
use switchyard::overhead::OVERHEAD_HEADER;
use switchyard::test_util::{FaultTimeouts, fault_config, gateway_from, start_fake, start_gateway};

const CHAT: &str = r#"{"model":"acme/m","messages":[{"role":"user","content":"hi"}]}"#;
// The order is pinned: under the default price-weighted draw the failing endpoint comes first
// only four times in five, and the assertions below count its one failed attempt.
const FALLS_BACK: &str = r#"{"model":"acme/fb","provider":{"order":["p-status-500","p-ok"]},"messages":[{"role":"user","content":"hi"}]}"#;
const UNKNOWN: &str = r#"{"model":"nobody/none","messages":[{"role":"user","content":"hi"}]}"#;
const NO_ENDPOINT: &str = r#"{"model":"acme/m","provider":{"only":["p-none"]},"messages":[{"role":"user","content":"hi"}]}"#;
const LEGACY: &str = r#"{"model":"acme/m","prompt":"hi"}"#;
const MGMT: &str = "sk-metrics-MANAGEMENT";
const ORDINARY: &str = "sk-metrics-ORDINARY";

struct Answer {
    status: u16,
    headers: http::HeaderMap,
    text: String,
}

async fn send(addr: SocketAddr, method: &str, path: &str, body: &str, key: Option<&str>) -> Answer {
    let bearer = key.map(|k| format!("Bearer {k}"));
    let auth: Vec<(&str, &str)> = bearer
        .iter()
        .map(|b| ("authorization", b.as_str()))
        .collect();
    let url = format!("http://{addr}{path}");
    let (status, headers, text) = support::send(&url, method, body, &auth).await;
    Answer {
        status: status.as_u16(),
        headers,
        text,
    }
}

/// The value of the sample line `series` (name and labels exactly as rendered), if present.
fn sample(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn config(fake: SocketAddr, extra: &str) -> String {
    // `acme/fb`'s cheaper endpoint answers 500: fallback moves on to `ok`.
    fault_config(
        fake,
        &[("acme/m", &["ok"]), ("acme/fb", &["status-500", "ok"])],
        FaultTimeouts::default(),
        extra,
    )
}

#[tokio::test]
async fn metrics_count_completions_attempts_and_overheads() {
    let (fake, _fake) = start_fake().await;
    let addr = start_gateway(gateway_from(&config(fake, ""), &|_| None)).await;
    let mut with_header = 0;
    for (path, body, status) in [
        ("/api/v1/chat/completions", CHAT, 200),
        ("/v1/chat/completions", UNKNOWN, 400),
        ("/api/v1/chat/completions", NO_ENDPOINT, 404),
        ("/api/v1/chat/completions", FALLS_BACK, 200),
        ("/v1/completions", LEGACY, 200),
        ("/v1/chat/completions", "{not json", 400),
    ] {
        let a = send(addr, "POST", path, body, None).await;
        assert_eq!(a.status, status, "{path} {body}: {}", a.text);
        with_header += usize::from(a.headers.contains_key(OVERHEAD_HEADER));
    }
    // The three served completions and the two the route layer refuses (inside parse's
    // scope); a body parse itself rejects has no overhead header.
    assert_eq!(with_header, 5);

    let m = send(addr, "GET", "/metrics", "", None).await;
    assert_eq!(m.status, 200, "{}", m.text);
    assert_eq!(
        m.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let t = &m.text;
    let requests = |api: &str, status: &str| {
        sample(
            t,
            &format!("switchyard_requests_total{{api=\"{api}\",status=\"{status}\"}}"),
        )
    };
    assert_eq!(requests("chat", "200"), Some(2), "{t}");
    assert_eq!(requests("chat", "404"), Some(1), "{t}");
    assert_eq!(requests("chat", "400"), Some(2), "{t}");
    assert_eq!(requests("completions", "200"), Some(1), "{t}");
    assert_eq!(requests("completions", "400"), None, "{t}");
    let attempts = |provider: &str, outcome: &str| {
        sample(
            t,
            &format!(
                "switchyard_upstream_attempts_total{{provider=\"{provider}\",outcome=\"{outcome}\"}}"
            ),
        )
    };
    assert_eq!(attempts("p-ok", "success"), Some(3), "{t}");
    assert_eq!(attempts("p-ok", "failure"), Some(0), "{t}");
    assert_eq!(attempts("p-status-500", "failure"), Some(1), "{t}");
    assert_eq!(attempts("p-status-500", "success"), Some(0), "{t}");
    let count = sample(t, "switchyard_overhead_seconds_count");
    assert_eq!(count, Some(with_header as u64), "{t}");
    assert_eq!(
        sample(t, "switchyard_overhead_seconds_bucket{le=\"+Inf\"}"),
        count,
        "{t}"
    );
    assert!(
        t.contains("# TYPE switchyard_overhead_seconds histogram\n"),
        "{t}"
    );

    // At the root only, beside /healthz.
    for path in ["/v1/metrics", "/api/v1/metrics"] {
        assert_eq!(
            send(addr, "GET", path, "", None).await.status,
            404,
            "{path}"
        );
    }
}

#[tokio::test]
async fn metrics_need_the_management_key_when_the_gateway_has_keys() {
    let (fake, _fake) = start_fake().await;
    let cfg = config(
        fake,
        "[auth]\nrequired = true\nmanagement_key_env = \"MGMT\"\n\n[[keys]]\nlabel = \"ordinary\"\nkey_env = \"ORDINARY\"\n",
    );
    let env = |name: &str| match name {
        "MGMT" => Some(MGMT.to_owned()),
        "ORDINARY" => Some(ORDINARY.to_owned()),
        _ => None,
    };
    let addr = start_gateway(gateway_from(&cfg, &env)).await;
    let a = send(addr, "POST", "/v1/chat/completions", CHAT, Some(ORDINARY)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    for key in [None, Some(ORDINARY), Some("sk-wrong")] {
        let a = send(addr, "GET", "/metrics", "", key).await;
        assert_eq!(a.status, 401, "{key:?}: {}", a.text);
        let v: serde_json::Value = serde_json::from_str(&a.text).unwrap();
        assert_eq!(v["error"]["code"], 401, "{}", a.text);
        assert!(!a.text.contains("switchyard_"), "{}", a.text);
    }
    let a = send(addr, "GET", "/metrics", "", Some(MGMT)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        sample(
            &a.text,
            "switchyard_requests_total{api=\"chat\",status=\"200\"}"
        ),
        Some(1),
        "{}",
        a.text
    );
}

#[tokio::test]
async fn metrics_off_is_a_404_and_records_nothing() {
    let (fake, _fake) = start_fake().await;
    let cfg = config(fake, "").replacen("[server]\n", "[server]\nmetrics = false\n", 1);
    let gateway = gateway_from(&cfg, &|_| None);
    assert!(!gateway.config().server.metrics);
    let addr = start_gateway(gateway.clone()).await;
    for body in [CHAT, FALLS_BACK, UNKNOWN, NO_ENDPOINT] {
        send(addr, "POST", "/v1/chat/completions", body, None).await;
    }
    let a = send(addr, "GET", "/metrics", "", None).await;
    assert_eq!(a.status, 404, "{}", a.text);
    let v: serde_json::Value = serde_json::from_str(&a.text).unwrap();
    assert_eq!(v["error"]["code"], 404, "{}", a.text);
    let text = gateway.metrics().render();
    assert_eq!(
        sample(&text, "switchyard_overhead_seconds_count"),
        Some(0),
        "{text}"
    );
    assert!(!text.contains("switchyard_requests_total{"), "{text}");
    assert!(
        !text.contains("switchyard_upstream_attempts_total{"),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_break_generations_down_by_model_provider_and_key() {
    let (fake, _fake) = start_fake().await;
    let cfg = config(
        fake,
        "[auth]\nrequired = true\nmanagement_key_env = \"MGMT\"\n\n[[keys]]\nlabel = \"team-a\"\nkey_env = \"ORDINARY\"\n\n[[keys]]\nlabel = \"team-b\"\nkey_env = \"OTHER\"\n",
    );
    let env = |name: &str| match name {
        "MGMT" => Some(MGMT.to_owned()),
        "ORDINARY" => Some(ORDINARY.to_owned()),
        "OTHER" => Some("sk-metrics-OTHER".to_owned()),
        _ => None,
    };
    let addr = start_gateway(gateway_from(&cfg, &env)).await;
    // (prompt, completion, cost) summed per key.
    let mut sent = std::collections::HashMap::<&str, (u64, u64, f64)>::new();
    for (body, key, label) in [
        (CHAT, ORDINARY, "team-a"),
        (CHAT, ORDINARY, "team-a"),
        (FALLS_BACK, "sk-metrics-OTHER", "team-b"),
    ] {
        let a = send(addr, "POST", "/v1/chat/completions", body, Some(key)).await;
        assert_eq!(a.status, 200, "{}", a.text);
        let v: serde_json::Value = serde_json::from_str(&a.text).unwrap();
        let u = &v["usage"];
        let e = sent.entry(label).or_default();
        e.0 += u["prompt_tokens"].as_u64().unwrap();
        e.1 += u["completion_tokens"].as_u64().unwrap();
        e.2 += u["cost"].as_f64().unwrap();
    }
    let m = send(addr, "GET", "/metrics", "", Some(MGMT)).await;
    assert_eq!(m.status, 200, "{}", m.text);
    let t = &m.text;
    for (model, label) in [("acme/m", "team-a"), ("acme/fb", "team-b")] {
        let (prompt, completion, cost) = sent[label];
        let tokens = |kind: &str| {
            sample(
                t,
                &format!(
                    "switchyard_tokens_total{{model=\"{model}\",key=\"{label}\",kind=\"{kind}\"}}"
                ),
            )
        };
        assert_eq!(tokens("input"), Some(prompt), "{t}");
        assert_eq!(tokens("output"), Some(completion), "{t}");
        let series = format!("switchyard_cost_usd_total{{model=\"{model}\",key=\"{label}\"}} ");
        let shown: f64 = t
            .lines()
            .find_map(|l| l.strip_prefix(&series))
            .unwrap_or_else(|| panic!("{series} in {t}"))
            .parse()
            .unwrap();
        assert!((shown - cost).abs() < 1e-9, "{shown} vs {cost}");
    }
    for (family, model, n) in [
        ("switchyard_ttft_seconds", "acme/m", 2),
        ("switchyard_request_duration_seconds", "acme/m", 2),
        ("switchyard_ttft_seconds", "acme/fb", 1),
    ] {
        let count = format!("{family}_count{{model=\"{model}\",provider=\"p-ok\"}}");
        assert_eq!(sample(t, &count), Some(n), "{count} in {t}");
        let inf = format!("{family}_bucket{{model=\"{model}\",provider=\"p-ok\",le=\"+Inf\"}}");
        assert_eq!(sample(t, &inf), Some(n), "{inf} in {t}");
    }
    let fallbacks = |model: &str| {
        sample(
            t,
            &format!("switchyard_fallbacks_total{{model=\"{model}\",provider=\"p-ok\"}}"),
        )
    };
    assert_eq!(fallbacks("acme/fb"), Some(1), "{t}");
    assert_eq!(fallbacks("acme/m"), Some(0), "{t}");
    for gauge in [
        "switchyard_endpoint_outage",
        "switchyard_endpoint_cooling_down",
    ] {
        for provider in ["p-ok", "p-status-500"] {
            let s = format!("{gauge}{{model=\"acme/fb\",provider=\"{provider}\"}}");
            assert!(sample(t, &s).is_some_and(|v| v <= 1), "{s} in {t}");
        }
        assert!(t.contains(&format!("# TYPE {gauge} gauge\n")), "{t}");
    }
    // Keys by label only: no secret, no hash.
    for secret in [MGMT, ORDINARY, "sk-metrics-OTHER"] {
        assert!(!t.contains(secret), "{secret} in {t}");
    }
}

#[tokio::test]
async fn messages_and_responses_are_counted_under_their_own_api() {
    let (fake, _fake) = start_fake().await;
    let addr = start_gateway(gateway_from(&config(fake, ""), &|_| None)).await;
    let messages =
        r#"{"model":"acme/m","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}"#;
    let responses = r#"{"model":"acme/m","input":"hi"}"#;
    for (path, body) in [
        ("/api/v1/messages", messages),
        ("/api/v1/messages", messages),
        ("/api/v1/responses", responses),
        ("/api/v1/chat/completions", CHAT),
    ] {
        let a = send(addr, "POST", path, body, None).await;
        assert_eq!(a.status, 200, "{path}: {}", a.text);
    }
    let m = send(addr, "GET", "/metrics", "", None).await;
    let count = |api: &str| {
        sample(
            &m.text,
            &format!(r#"switchyard_requests_total{{api="{api}",status="200"}}"#),
        )
    };
    assert_eq!(count("messages"), Some(2), "{}", m.text);
    assert_eq!(count("responses"), Some(1), "{}", m.text);
    assert_eq!(count("chat"), Some(1), "{}", m.text);
}
