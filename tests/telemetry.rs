//! `[telemetry]` on a served gateway: one JSON request-log line per completion request with the
//! key's label, the attempt chain, tokens, cost and timings — and no secret; the trace id in
//! `x-switchyard-trace-id`, taken from an incoming `traceparent`; `GET /dashboard/data`.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use switchyard::test_util::{FaultTimeouts, fault_config, gateway_from, start_fake, start_gateway};

const MGMT: &str = "sk-mgmt-SECRET-7f3a";
const KEY_A: &str = "sk-team-a-SECRET-91bd";
const KEY_B: &str = "sk-team-b-SECRET-2c6e";
const UPSTREAM: &str = "sk-upstream-SECRET-5e08";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn env(name: &str) -> Option<String> {
    Some(
        match name {
            "MGMT" => MGMT,
            "KEY_A" => KEY_A,
            "KEY_B" => KEY_B,
            "UPSTREAM_KEY" => UPSTREAM,
            _ => return None,
        }
        .to_owned(),
    )
}

fn scratch(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir =
        std::env::temp_dir().join(format!("switchyard-{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn config(fake: SocketAddr, telemetry: &str) -> String {
    let extra = format!(
        "[auth]\nrequired = true\nmanagement_key_env = \"MGMT\"\n\n\
         [[keys]]\nlabel = \"team-a\"\nkey_env = \"KEY_A\"\n\n\
         [[keys]]\nlabel = \"team-b\"\nkey_env = \"KEY_B\"\n\n\
         [telemetry]\n{telemetry}\n"
    );
    fault_config(
        fake,
        &[
            ("acme/m", &["ok"]),
            ("acme/fb", &["status-500", "ok"]),
            ("acme/echo", &["echokey"]),
        ],
        FaultTimeouts {
            key_env: Some("UPSTREAM_KEY"),
            ..FaultTimeouts::default()
        },
        &extra,
    )
}

struct Sent {
    key: &'static str,
    label: &'static str,
    body: String,
    traceparent: bool,
}

fn chat(model: &str, stream: bool) -> String {
    let fallback = if model == "acme/fb" {
        r#","provider":{"order":["p-status-500","p-ok"]}"#
    } else {
        ""
    };
    format!(
        r#"{{"model":"{model}","stream":{stream}{fallback},"messages":[{{"role":"user","content":"hi"}}]}}"#
    )
}

async fn read_lines(path: &std::path::Path, n: usize) -> Vec<Value> {
    for _ in 0..100 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().count() >= n {
            return text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("fewer than {n} lines in {}", path.display());
}

#[tokio::test]
async fn the_request_log_has_one_line_per_request_and_no_secret() {
    let (fake, _fake) = start_fake().await;
    let dir = scratch("request-log");
    let log = dir.join("requests.jsonl");
    let cfg = config(
        fake,
        &format!(
            "request_log = true\nrequest_log_path = {:?}\n",
            log.display().to_string()
        ),
    );
    let addr = start_gateway(gateway_from(&cfg, &env)).await;
    let sent = [
        Sent {
            key: KEY_A,
            label: "team-a",
            body: chat("acme/m", false),
            traceparent: true,
        },
        Sent {
            key: KEY_B,
            label: "team-b",
            body: chat("acme/m", true),
            traceparent: false,
        },
        Sent {
            key: KEY_A,
            label: "team-a",
            body: chat("acme/fb", false),
            traceparent: false,
        },
        Sent {
            key: KEY_B,
            label: "team-b",
            body: chat("acme/echo", false),
            traceparent: false,
        },
        Sent {
            key: KEY_A,
            label: "team-a",
            body: chat("nobody/none", false),
            traceparent: false,
        },
    ];
    let mut answers = Vec::new();
    for s in &sent {
        let bearer = format!("Bearer {}", s.key);
        let mut headers = vec![("authorization", bearer.as_str())];
        if s.traceparent {
            headers.push(("traceparent", TRACEPARENT));
        }
        let url = format!("http://{addr}/api/v1/chat/completions");
        answers.push(support::send(&url, "POST", &s.body, &headers).await);
    }
    let lines = read_lines(&log, sent.len()).await;
    assert_eq!(lines.len(), sent.len(), "{lines:?}");
    for ((s, (status, headers, text)), line) in sent.iter().zip(&answers).zip(&lines) {
        assert_eq!(line["status"], status.as_u16(), "{line} for {text}");
        assert_eq!(line["key"], s.label, "{line}");
        let trace = headers["x-switchyard-trace-id"].to_str().unwrap();
        assert_eq!(line["trace_id"], trace, "{line}");
        assert_eq!(trace.len(), 32);
        if let Some(id) = headers.get("x-generation-id") {
            assert_eq!(line["id"], id.to_str().unwrap(), "{line}");
        }
        for field in [
            "at_ms",
            "api",
            "requested_model",
            "attempts",
            "outcome",
            "total_ms",
        ] {
            assert!(!line[field].is_null(), "{field} in {line}");
        }
    }
    // The traceparent's trace id is the request's.
    assert_eq!(lines[0]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_ne!(lines[1]["trace_id"], lines[0]["trace_id"]);
    // Served: model, provider, tokens and cost as the response's usage says.
    let usage: Value = serde_json::from_str(&answers[0].2).unwrap();
    let l = &lines[0];
    assert_eq!(l["model"], "acme/m");
    assert_eq!(l["provider"], "p-ok");
    assert_eq!(l["outcome"], "ok");
    assert_eq!(l["input_tokens"], usage["usage"]["prompt_tokens"]);
    assert_eq!(l["output_tokens"], usage["usage"]["completion_tokens"]);
    assert_eq!(l["cost_usd"], usage["usage"]["cost"]);
    assert!(l["ttft_ms"].as_u64().unwrap() <= l["total_ms"].as_u64().unwrap());
    assert_eq!(lines[1]["streamed"], true);
    assert!(
        lines[1]["output_tokens"].as_u64().unwrap() > 0,
        "{}",
        lines[1]
    );
    // The fallback: both attempts, the failed one first.
    let attempts = lines[2]["attempts"].as_array().unwrap();
    let chain: Vec<(&str, u64)> = attempts
        .iter()
        .map(|a| {
            (
                a["provider"].as_str().unwrap(),
                a["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        chain,
        [("p-status-500", 500), ("p-ok", 200)],
        "{}",
        lines[2]
    );
    // Failures: an upstream that echoes its key, a model nobody serves.
    assert_eq!(lines[3]["outcome"], "error");
    assert!(lines[3]["model"].is_null(), "{}", lines[3]);
    assert_eq!(lines[4]["outcome"], "error");
    assert_eq!(lines[4]["requested_model"], "nobody/none");
    // No secret of any kind, not even the upstream key the echoing provider sent back.
    let text = std::fs::read_to_string(&log).unwrap();
    let hash = |k: &str| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(k.as_bytes()))
    };
    for secret in [MGMT, KEY_A, KEY_B, UPSTREAM] {
        assert!(!text.contains(secret), "{secret} in the log:\n{text}");
        assert!(!text.contains(&hash(secret)), "hash of {secret} in the log");
        assert!(
            !text.contains(&secret[secret.len() - 8..]),
            "tail of {secret} in the log"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_request_log_is_off_by_default_and_the_trace_header_is_not() {
    let (fake, _fake) = start_fake().await;
    let cfg = config(fake, "");
    let gw = gateway_from(&cfg, &env);
    assert!(!gw.config().telemetry.request_log);
    let addr = start_gateway(gw).await;
    let url = format!("http://{addr}/api/v1/chat/completions");
    let bearer = format!("Bearer {KEY_A}");
    let (status, headers, _) = support::send(
        &url,
        "POST",
        &chat("acme/m", false),
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-switchyard-trace-id"].len(), 32);
}

#[tokio::test]
async fn the_dashboard_needs_the_management_key_and_counts_the_traffic() {
    let (fake, _fake) = start_fake().await;
    let addr = start_gateway(gateway_from(&config(fake, ""), &env)).await;
    let url = |path: &str| format!("http://{addr}{path}");
    // Refused without the management key, with a Basic challenge for browsers.
    for auth in [
        None,
        Some(format!("Bearer {KEY_A}")),
        Some("Basic OnNrLXdyb25n".into()),
    ] {
        for path in ["/dashboard", "/dashboard/data"] {
            let headers: Vec<(&str, &str)> =
                auth.iter().map(|a| ("authorization", a.as_str())).collect();
            let (status, h, text) = support::send(&url(path), "GET", "", &headers).await;
            assert_eq!(status, 401, "{path} {auth:?}: {text}");
            assert!(
                h["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .starts_with("Basic ")
            );
        }
    }
    let mgmt = format!("Bearer {MGMT}");
    let (status, h, page) =
        support::send(&url("/dashboard"), "GET", "", &[("authorization", &mgmt)]).await;
    assert_eq!(status, 200);
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert!(page.contains("<title>switchyard dashboard</title>"));
    assert!(
        page.contains("name=\"viewport\""),
        "phones get the responsive layout"
    );

    let mut spend = std::collections::HashMap::<&str, f64>::new();
    for (key, label, model) in [
        (KEY_A, "team-a", "acme/m"),
        (KEY_A, "team-a", "acme/fb"),
        (KEY_B, "team-b", "acme/m"),
        (KEY_B, "team-b", "acme/echo"),
    ] {
        let bearer = format!("Bearer {key}");
        let (_, _, text) = support::send(
            &url("/v1/chat/completions"),
            "POST",
            &chat(model, false),
            &[("authorization", &bearer)],
        )
        .await;
        let v: Value = serde_json::from_str(&text).unwrap();
        *spend.entry(label).or_default() += v["usage"]["cost"].as_f64().unwrap_or(0.0);
    }
    // Basic authentication with the management key as the password: ":<key>".
    let basic = format!("Basic {}", base64(&format!("browser:{MGMT}")));
    let (status, _, text) = support::send(
        &url("/dashboard/data"),
        "GET",
        "",
        &[("authorization", &basic)],
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let d: Value = serde_json::from_str(&text).unwrap();
    let t = &d["totals"];
    assert_eq!(t["requests"], 4, "{d}");
    assert_eq!(t["errors"], 1, "{d}");
    assert_eq!(t["fallbacks"], 1, "{d}");
    assert_eq!(t["error_rate"], 0.25);
    let provider = |name: &str| {
        d["providers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {d}"))
            .clone()
    };
    assert_eq!(provider("p-ok")["served"], 3);
    assert_eq!(provider("p-ok")["share"], 1.0);
    assert_eq!(provider("p-status-500")["failed_attempts"], 1);
    assert_eq!(provider("p-echokey")["failed_attempts"], 1);
    for k in d["keys"].as_array().unwrap() {
        let label = k["name"].as_str().unwrap();
        let shown = k["cost_usd"].as_f64().unwrap();
        assert!(
            (shown - spend[label]).abs() < 1e-12,
            "{label}: {shown} vs {}",
            spend[label]
        );
    }
    let recent = d["recent"].as_array().unwrap();
    assert_eq!(recent.len(), 4);
    assert_eq!(recent[0]["outcome"], "error", "newest first");
    assert_eq!(
        recent[2]["attempts"].as_array().unwrap().len(),
        2,
        "{}",
        recent[2]
    );
    assert!(!text.contains(KEY_A) && !text.contains(MGMT) && !text.contains(UPSTREAM));
}

fn base64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from_be_bytes([0, b[0], b[1], b[2]]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test]
async fn a_stream_the_client_leaves_is_logged_as_cancelled() {
    use http_body_util::BodyExt;
    let (fake, _fake) = start_fake().await;
    let dir = scratch("request-log-cancel");
    let log = dir.join("requests.jsonl");
    let cfg = fault_config(
        fake,
        &[("acme/slow", &["drip-30"])],
        FaultTimeouts::default(),
        &format!(
            "[telemetry]\nrequest_log = true\nrequest_log_path = {:?}\n",
            log.display().to_string()
        ),
    );
    let addr = start_gateway(gateway_from(&cfg, &|_| None)).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let req = http::Request::post(format!("http://{addr}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(chat(
            "acme/slow",
            true,
        ))))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    // Some of the stream, then the client goes away.
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.is_data());
    drop(body);
    drop(client);
    let lines = read_lines(&log, 1).await;
    assert_eq!(lines[0]["outcome"], "cancelled", "{}", lines[0]);
    assert_eq!(lines[0]["streamed"], true);
    let _ = std::fs::remove_dir_all(dir);
}
