//! Security: what never crosses the gateway. Client credentials and hop-by-hop headers never
//! reach an upstream; provider keys and gateway keys never reach a response, an error or a log
//! line; bodies, headers and slow clients are bounded; clients cannot choose where requests go.
//! See `docs/reliability.md`.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use bytes::Bytes;
use futures_util::future::join_all;
use http_body_util::{BodyExt, Full};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use switchyard::test_util::{
    Fake, FaultTimeouts, fault_config, gateway_from, start_fake, start_gateway,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PROVIDER_KEY: &str = "sk-provider-SECRET-5f1c0e7a9b3d4c2e";
const CLIENT_KEY: &str = "sk-or-v1-CLIENTSECRET-8e2d6b1f0a9c";
const KEY_ENV: &str = "SWITCHYARD_SECURITY_TEST_KEY";

// `sort: price` keeps the candidate order fixed (cheapest first), so each test knows which
// provider is tried first; the default balance would draw the first pick at random.
const CHAT: &str =
    r#"{"model":"acme/m","provider":{"sort":"price"},"messages":[{"role":"user","content":"hi"}]}"#;
const CHAT_STREAM: &str = r#"{"model":"acme/m","stream":true,"provider":{"sort":"price"},"messages":[{"role":"user","content":"hi"}]}"#;

/// Every log line of this test binary, at TRACE level (dependencies included).
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = LogWriter(buf.clone());
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init();
        buf
    })
}

#[derive(Clone)]
struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn env(name: &str) -> Option<String> {
    (name == KEY_ENV).then(|| PROVIDER_KEY.to_owned())
}

fn keyed() -> FaultTimeouts {
    FaultTimeouts {
        key_env: Some(KEY_ENV),
        ..FaultTimeouts::default()
    }
}

async fn gateway_over(scenarios: &[&str]) -> (SocketAddr, Fake) {
    let (fake_addr, fake) = start_fake().await;
    let cfg = fault_config(fake_addr, &[("acme/m", scenarios)], keyed(), "");
    (start_gateway(gateway_from(&cfg, &env)).await, fake)
}

async fn post(
    addr: SocketAddr,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> (u16, http::HeaderMap, String) {
    let url = format!("http://{addr}{path}");
    let (status, headers, text) = support::send(&url, "POST", body, headers).await;
    (status.as_u16(), headers, text)
}

fn assert_no_secret(text: &str, what: &str) {
    for secret in [PROVIDER_KEY, CLIENT_KEY] {
        assert!(!text.contains(secret), "{what} leaks {secret}: {text}");
    }
    // A recognisable part of the provider key is a leak too.
    assert!(
        !text.contains("SECRET-5f1c"),
        "{what} leaks part of the key: {text}"
    );
}

/// Everything a client sends that is about its own connection or identity.
const CLIENT_HEADERS: &[(&str, &str)] = &[
    ("authorization", "Bearer sk-or-v1-CLIENTSECRET-8e2d6b1f0a9c"),
    ("cookie", "session=CLIENTCOOKIE"),
    ("proxy-authorization", "Basic Q0xJRU5UUFJPWFk="),
    ("x-api-key", "CLIENTXAPIKEY"),
    ("x-goog-api-key", "CLIENTGOOGKEY"),
    ("api-key", "CLIENTAZUREKEY"),
    ("keep-alive", "timeout=5"),
    ("te", "trailers"),
    ("trailer", "x-client-trailer"),
    ("proxy-connection", "keep-alive"),
    ("x-forwarded-for", "203.0.113.9"),
    ("forwarded", "for=203.0.113.9"),
    ("x-real-ip", "203.0.113.9"),
    ("http-referer", "https://client.example"),
    ("x-title", "client app"),
];

#[tokio::test]
async fn client_credentials_and_hop_by_hop_headers_never_reach_an_upstream() {
    logs();
    let (addr, fake) = gateway_over(&["ok"]).await;
    for body in [CHAT, CHAT_STREAM] {
        let (status, _, _) = post(addr, "/api/v1/chat/completions", body, CLIENT_HEADERS).await;
        assert_eq!(status, 200);
    }
    let seen = fake.requests();
    assert_eq!(seen.len(), 2);
    for s in &seen {
        // The provider's own key, and nothing of the client's.
        assert_eq!(
            s.headers["authorization"],
            format!("Bearer {PROVIDER_KEY}"),
            "the provider key replaces the client's"
        );
        for (name, value) in s.headers.iter() {
            let value = value.to_str().unwrap_or("");
            for (client_name, client_value) in CLIENT_HEADERS {
                assert!(
                    !value.contains(client_value),
                    "the client's `{client_name}` reached the upstream as `{name}: {value}`"
                );
            }
            assert!(
                ![
                    "cookie",
                    "proxy-authorization",
                    "x-api-key",
                    "x-goog-api-key",
                    "api-key",
                    "keep-alive",
                    "te",
                    "trailer",
                    "proxy-connection",
                    "forwarded",
                    "x-forwarded-for",
                    "x-real-ip"
                ]
                .contains(&name.as_str()),
                "`{name}` reached the upstream"
            );
        }
        assert_no_secret(&s.body.to_string(), "the upstream body");
    }
}

#[tokio::test]
async fn provider_keys_never_reach_responses_errors_or_logs() {
    logs();
    // Upstreams that echo the key they were sent, as OpenAI's 401 does.
    let echoing: &[&[&str]] = &[
        &["echokey"],
        &["errkeychunkbefore"],
        &["errkeychunkafter"],
        &["echokey", "errkeychunkbefore", "status-500"],
        &["echokey", "ok"],
    ];
    let runs = echoing.iter().flat_map(|s| [(*s, CHAT), (*s, CHAT_STREAM)]);
    join_all(runs.map(|(scenarios, body)| async move {
        let (addr, _) = gateway_over(scenarios).await;
        let (status, headers, text) = post(
            addr,
            "/api/v1/chat/completions",
            body,
            &[
                ("authorization", &format!("Bearer {CLIENT_KEY}")),
                ("x-openrouter-metadata", "enabled"),
            ],
        )
        .await;
        let what = format!("{scenarios:?} stream={}", body == CHAT_STREAM);
        assert_no_secret(&text, &what);
        for (name, v) in &headers {
            assert_no_secret(v.to_str().unwrap_or(""), &format!("{what}: header {name}"));
        }
        if scenarios == ["echokey"] && body == CHAT {
            // The reason survives, masked.
            assert_eq!(status, 401, "{text}");
            assert!(
                text.contains("Incorrect API key provided: Bearer [redacted]"),
                "{text}"
            );
        }
    }))
    .await;
    // Every other fault, for the logs.
    let faults = [
        "status-500",
        "refused",
        "resetconn",
        "hang",
        "cutbefore",
        "cutafter",
        "resetafter",
        "malformedbefore",
        "errchunkafter",
        "garbage",
        "error200",
    ];
    join_all(faults.iter().map(|f| async move {
        let (addr, _) = gateway_over(&[f, "ok"]).await;
        for body in [CHAT, CHAT_STREAM] {
            let auth = format!("Bearer {CLIENT_KEY}");
            let (_, _, text) = post(
                addr,
                "/api/v1/chat/completions",
                body,
                &[("authorization", &auth)],
            )
            .await;
            assert_no_secret(&text, f);
        }
    }))
    .await;
    let text = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
    assert!(!text.is_empty(), "the log capture works");
    assert_no_secret(&text, "the logs");
    // Debug output of the whole gateway (catalogue, providers) masks keys too.
    let (fake_addr, _) = start_fake().await;
    let gw = gateway_from(
        &fault_config(fake_addr, &[("acme/m", &["ok"])], keyed(), ""),
        &env,
    );
    assert_no_secret(&format!("{gw:?}"), "Debug of the gateway");
}

#[tokio::test]
async fn oversized_bodies_get_413_without_reaching_an_upstream() {
    logs();
    let (fake_addr, fake) = start_fake().await;
    let cfg = fault_config(fake_addr, &[("acme/m", &["ok"])], keyed(), "")
        .replace("[server]\n", "[server]\nmax_body_bytes = 65536\n");
    let addr = start_gateway(gateway_from(&cfg, &env)).await;
    let big = format!(
        r#"{{"model":"acme/m","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(100_000)
    );
    // Declared length.
    let (status, _, text) = post(addr, "/api/v1/chat/completions", &big, &[]).await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("65536"), "{text}");
    // Chunked, no declared length: cut off at the limit.
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = b"POST /api/v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for piece in big.as_bytes().chunks(8192) {
        req.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        req.extend_from_slice(piece);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let _ = tcp.write_all(&req).await;
    let head = read_head(&mut tcp).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert_eq!(fake.total(), 0);
}

/// Reads until the end of a response head (or the connection's end).
async fn read_head(tcp: &mut tokio::net::TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut chunk)).await {
            Ok(Ok(0) | Err(_)) | Err(_) => break,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// A gateway served with tight connection limits.
async fn limited_gateway(limits: switchyard::server::ServerLimits) -> (SocketAddr, Fake) {
    let (fake_addr, fake) = start_fake().await;
    let cfg = fault_config(fake_addr, &[("acme/m", &["ok"])], keyed(), "");
    let gw = gateway_from(&cfg, &env);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(gw.serve_with_limits(listener, std::future::pending::<()>(), limits));
    (addr, fake)
}

#[tokio::test]
async fn oversized_headers_get_431() {
    logs();
    // The defaults: 64 KiB of request head.
    let (fake_addr, fake) = start_fake().await;
    let cfg = fault_config(fake_addr, &[("acme/m", &["ok"])], keyed(), "");
    let addr = start_gateway(gateway_from(&cfg, &env)).await;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST /api/v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-big: {}\r\ncontent-length: {}\r\n\r\n{CHAT}",
        "a".repeat(100 * 1024),
        CHAT.len()
    );
    let _ = tcp.write_all(req.as_bytes()).await;
    let head = read_head(&mut tcp).await;
    assert!(head.starts_with("HTTP/1.1 431"), "{head}");
    // Many small headers.
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let many: String = (0..200).map(|i| format!("x-h{i}: v\r\n")).collect();
    let req = format!(
        "POST /api/v1/chat/completions HTTP/1.1\r\nhost: x\r\n{many}content-length: {}\r\n\r\n{CHAT}",
        CHAT.len()
    );
    let _ = tcp.write_all(req.as_bytes()).await;
    let head = read_head(&mut tcp).await;
    assert!(head.starts_with("HTTP/1.1 431"), "{head}");
    assert_eq!(fake.total(), 0);
    // A normal request on the same gateway still works.
    let (status, _, _) = post(addr, "/api/v1/chat/completions", CHAT, &[]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn slowloris_clients_are_cut_off() {
    logs();
    let limits = switchyard::server::ServerLimits {
        header_read_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let (addr, fake) = limited_gateway(limits).await;
    // Headers one byte every 50 ms: never complete; closed at the deadline.
    let start = Instant::now();
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"POST /api/v1/chat/completions HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let dribble = async {
        for b in b"x-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter() {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if tcp.write_all(&[*b]).await.is_err() {
                break;
            }
        }
    };
    dribble.await;
    let head = read_head(&mut tcp).await;
    let elapsed = start.elapsed();
    assert!(
        head.is_empty() || head.starts_with("HTTP/1.1 408"),
        "closed, not served: {head}"
    );
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    // A connection that never sends anything is closed too.
    let start = Instant::now();
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut b = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(3), idle.read(&mut b))
        .await
        .expect("the server closes an idle connection")
        .unwrap_or(0);
    let text = String::from_utf8_lossy(&b[..n]);
    assert!(n == 0 || text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(start.elapsed() < Duration::from_millis(300 + 1000));
    assert_eq!(fake.total(), 0);
    // Ordinary clients are unaffected.
    let (status, _, _) = post(addr, "/api/v1/chat/completions", CHAT, &[]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_slow_request_body_gets_408() {
    use switchyard::context::ApiKind;
    use switchyard::parse::ParseLayer;
    use tower::{Layer, ServiceExt};
    logs();
    // The parse layer's body deadline (30 s in the gateway; short here).
    let inner = tower::service_fn(|_req: http::Request<switchyard::body::Body>| async {
        Ok::<_, switchyard::BoxError>(http::Response::new(switchyard::body::empty()))
    });
    let svc = ParseLayer::new(ApiKind::Chat)
        .read_timeout(Duration::from_millis(200))
        .layer(inner);
    let first: Result<http_body::Frame<Bytes>, std::io::Error> =
        Ok(http_body::Frame::data(Bytes::from_static(b"{\"model\":")));
    let stream = futures_util::StreamExt::chain(
        futures_util::stream::iter([first]),
        futures_util::stream::pending(),
    );
    let body = http_body_util::StreamBody::new(stream);
    let start = Instant::now();
    let resp = svc
        .oneshot(http::Request::post("/").body(body).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 408);
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn clients_cannot_choose_the_upstream_url() {
    logs();
    let (evil_addr, evil) = start_fake().await;
    let (addr, fake) = gateway_over(&["ok"]).await;
    let evil_url = format!("http://{evil_addr}/ok/v1");
    let bodies = [
        format!(
            r#"{{"model":"acme/m","messages":[{{"role":"user","content":"hi"}}],"base_url":"{evil_url}","api_base":"{evil_url}","url":"{evil_url}","endpoint":"{evil_url}"}}"#
        ),
        format!(r#"{{"model":"{evil_url}","messages":[{{"role":"user","content":"hi"}}]}}"#),
        format!(
            r#"{{"model":"acme/m","messages":[{{"role":"user","content":"hi"}}],"provider":{{"order":["{evil_url}"],"only":["{evil_url}"]}}}}"#
        ),
        format!(
            r#"{{"model":"acme/m","messages":[{{"role":"user","content":"hi"}}],"provider":{{"base_url":"{evil_url}"}}}}"#
        ),
        r#"{"model":"../../etc/passwd","messages":[{"role":"user","content":"hi"}]}"#.to_owned(),
    ];
    let evil_host = evil_addr.to_string();
    let headers: &[(&str, &str)] = &[
        ("x-forwarded-host", &evil_host),
        ("x-upstream-url", &evil_url),
        ("x-base-url", &evil_url),
        ("openai-base-url", &evil_url),
    ];
    for body in &bodies {
        let (status, _, text) = post(addr, "/api/v1/chat/completions", body, headers).await;
        assert!(status == 200 || status >= 400, "{status}: {text}");
    }
    for path in [
        "/api/v1/chat/completions?base_url=http://evil",
        "/api/v1/../../ok/v1/chat/completions",
        "//evil/api/v1/chat/completions",
    ] {
        let _ = post(addr, path, CHAT, &[]).await;
    }
    // A proxy-style absolute request target naming the other server.
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST http://{evil_addr}/api/v1/chat/completions HTTP/1.1\r\nhost: {evil_addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{CHAT}",
        CHAT.len()
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let _ = read_head(&mut tcp).await;
    assert_eq!(evil.total(), 0, "the other server was never contacted");
    for s in fake.requests() {
        assert_eq!(s.path, "/ok/v1/chat/completions", "only the configured URL");
    }
}

/// The gateway config with keys, for the tests below (enabled once the keys layer exists).
fn keys_config(fake_addr: SocketAddr) -> String {
    // sha256("sk-gw-hashed-only") — the config holds only the hash.
    let hashed = "8f3e5aa4972859ba53cdab13788ee2069b7f679809f72d847c08ee718acf7711";
    fault_config(
        fake_addr,
        &[("acme/m", &["ok"])],
        keyed(),
        &format!(
            "[auth]\nrequired = true\nmanagement_key_env = \"SWITCHYARD_SEC_MGMT\"\n\n[[keys]]\nlabel = \"ordinary\"\nkey_env = \"SWITCHYARD_SEC_ORDINARY\"\n\n[[keys]]\nlabel = \"hashed\"\nkey_sha256 = \"{hashed}\"\n"
        ),
    )
}

fn keys_env(name: &str) -> Option<String> {
    match name {
        KEY_ENV => Some(PROVIDER_KEY.to_owned()),
        "SWITCHYARD_SEC_MGMT" => Some("sk-mgmt-MANAGEMENTSECRET".to_owned()),
        "SWITCHYARD_SEC_ORDINARY" => Some(CLIENT_KEY.to_owned()),
        _ => None,
    }
}

#[tokio::test]
async fn gateway_keys_are_required_and_never_echoed() {
    let (fake_addr, _) = start_fake().await;
    let addr = start_gateway(gateway_from(&keys_config(fake_addr), &keys_env)).await;
    let (status, _, _) = post(addr, "/api/v1/chat/completions", CHAT, &[]).await;
    assert_eq!(status, 401, "no key");
    let wrong = "sk-or-v1-WRONGKEY-0000";
    let (status, _, text) = post(
        addr,
        "/api/v1/chat/completions",
        CHAT,
        &[("authorization", &format!("Bearer {wrong}"))],
    )
    .await;
    assert_eq!(status, 401);
    assert!(!text.contains(wrong), "a wrong key is not echoed: {text}");
    let (status, _, text) = post(
        addr,
        "/api/v1/chat/completions",
        CHAT,
        &[("authorization", &format!("Bearer {CLIENT_KEY}"))],
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_no_secret(&text, "a served response");
    // A key configured only by its SHA-256 works: keys are stored and compared hashed.
    let (status, _, _) = post(
        addr,
        "/api/v1/chat/completions",
        CHAT,
        &[("authorization", "Bearer sk-gw-hashed-only")],
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_management_api_refuses_ordinary_keys() {
    let (fake_addr, _) = start_fake().await;
    let addr = start_gateway(gateway_from(&keys_config(fake_addr), &keys_env)).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let get = |key: &'static str| {
        let client = client.clone();
        async move {
            let req = http::Request::get(format!("http://{addr}/api/v1/keys"))
                .header("authorization", format!("Bearer {key}"))
                .body(Full::new(Bytes::new()))
                .unwrap();
            let resp = client.request(req).await.unwrap();
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    let (status, _) = get(CLIENT_KEY).await;
    assert!(status == 401 || status == 403, "an ordinary key: {status}");
    let (status, text) = get("sk-mgmt-MANAGEMENTSECRET").await;
    assert_eq!(status, 200, "{text}");
    assert_no_secret(&text, "the key listing");
    assert!(!text.contains("MANAGEMENTSECRET"));
}

#[tokio::test]
async fn the_header_deadline_never_cuts_a_long_stream() {
    logs();
    let limits = switchyard::server::ServerLimits {
        header_read_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let (fake_addr, _) = start_fake().await;
    // ~1.1 s of stream: 16 bytes every 15 ms; a non-streaming answer after 900 ms.
    let t = FaultTimeouts {
        first_byte_ms: 2000,
        ..keyed()
    };
    let cfg = fault_config(
        fake_addr,
        &[("acme/m", &["drip-15"]), ("acme/slow", &["slow-900"])],
        t,
        "",
    );
    let gw = gateway_from(&cfg, &env);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(gw.serve_with_limits(listener, std::future::pending::<()>(), limits));
    let start = Instant::now();
    let (status, _, text) = post(addr, "/api/v1/chat/completions", CHAT_STREAM, &[]).await;
    assert_eq!(status, 200);
    assert!(
        start.elapsed() > Duration::from_millis(600),
        "{:?}",
        start.elapsed()
    );
    assert!(text.contains("the fake"), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let start = Instant::now();
    let slow = CHAT.replace("acme/m", "acme/slow");
    let (status, _, text) = post(addr, "/api/v1/chat/completions", &slow, &[]).await;
    assert_eq!(status, 200, "{text}");
    assert!(start.elapsed() > Duration::from_millis(800));
}
