//! The `switchyard` binary stops gracefully on SIGTERM as on SIGINT: a request served just
//! before the signal keeps its ledger row, a stream in flight finishes within the grace, and
//! one still running after it ends with an error event and is recorded as cancelled.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use switchyard::ledger::{MeterSink, SqliteSink};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Generous bounds: the machine running the tests may be slow and busy.
const START: Duration = Duration::from_secs(60);
const EXIT: Duration = Duration::from_secs(30);

/// A scratch directory of its own for each test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "switchyard-shutdown-{name}-{}-{}",
        std::process::id(),
        switchyard::ledger::now_ms()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The gateway key of the credit test, and the variable that gives it to the gateway.
const KEY: &str = "sk-shutdown-test";
const KEY_ENV: &str = "SWITCHYARD_SHUTDOWN_TEST_KEY";

/// The binary over one provider of the fake upstream (`scenario`), with a SQLite ledger in
/// `dir` and one gateway key (`KEY`, optional); returns the process and its address.
fn start(dir: &Path, fake: SocketAddr, scenario: &str, grace_ms: u64) -> (Child, SocketAddr) {
    let config = format!(
        "[server]\nshutdown_grace_ms = {grace_ms}\n\n\
         [[providers]]\nslug = \"fake\"\nbase_url = \"http://{fake}/{scenario}/v1\"\n\n\
         [[models]]\nslug = \"acme/model\"\n[[models.endpoints]]\nprovider = \"fake\"\n\
         model = \"m\"\npricing = {{ prompt = 1.0, completion = 2.0 }}\n\n\
         [ledger]\npath = \"ledger.db\"\n\n\
         [auth]\nrequired = false\n\n\
         [[keys]]\nlabel = \"test\"\nkey_env = \"{KEY_ENV}\"\nlimit = 100.0\n"
    );
    let path = dir.join("gateway.toml");
    std::fs::write(&path, config).unwrap();
    support::spawn_serve(&path, &[(KEY_ENV, KEY)], START)
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name}");
}

async fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + EXIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the gateway did not exit within {EXIT:?} of the signal");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends a chat completion (with the gateway key) over a fresh connection and returns it,
/// response not yet read.
async fn send(addr: SocketAddr, stream: bool) -> TcpStream {
    let body = format!(
        r#"{{"model":"acme/model","stream":{stream},"messages":[{{"role":"user","content":"hi"}}]}}"#
    );
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\nauthorization: Bearer {KEY}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(body.as_bytes()).await.unwrap();
    tcp
}

/// Reads until `needle` has arrived (or the end); returns everything read.
async fn read_until(tcp: &mut TcpStream, seen: &mut Vec<u8>, needle: &str) {
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(seen).contains(needle) {
        let n = tokio::time::timeout(EXIT, tcp.read(&mut buf))
            .await
            .expect("the gateway kept answering")
            .unwrap();
        if n == 0 {
            return;
        }
        seen.extend_from_slice(&buf[..n]);
    }
}

/// The generation id in a response (body or stream).
fn generation_id(text: &str) -> String {
    let start = text.find("\"id\":\"gen-").expect("a generation id") + 6;
    let end = start + text[start..].find('"').unwrap();
    text[start..end].to_owned()
}

/// What the key has been charged, as persisted in the ledger's database (picodollars).
fn key_usage(dir: &Path) -> i64 {
    let db = rusqlite::Connection::open(dir.join("ledger.db")).unwrap();
    db.query_row("SELECT usage_total FROM keys", [], |r| r.get(0))
        .unwrap()
}

fn ledger_row(dir: &Path, id: &str) -> switchyard::ledger::GenerationRecord {
    let sink = SqliteSink::open(&dir.join("ledger.db")).unwrap();
    sink.get(id)
        .unwrap_or_else(|| panic!("no ledger row for {id}"))
}

/// A request answered just before the signal keeps its row.
async fn served_then_signalled(name: &str) {
    let (fake, _f) = switchyard::test_util::start_fake().await;
    let dir = scratch(name);
    let (mut child, addr) = start(&dir, fake, "ok", 10_000);
    let mut tcp = send(addr, false).await;
    let mut seen = Vec::new();
    read_until(&mut tcp, &mut seen, "\"usage\"").await;
    signal(&child, name);
    let status = wait_exit(&mut child).await;
    assert!(status.success(), "{status}");
    let text = String::from_utf8_lossy(&seen).into_owned();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let row = ledger_row(&dir, &generation_id(&text));
    assert_eq!((row.tokens_prompt, row.tokens_completion), (12, 5));
    assert!(row.total_cost > 0 && !row.cancelled);
    assert_eq!(
        key_usage(&dir),
        row.total_cost,
        "the key's credits were settled"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_keeps_the_row_of_a_request_served_just_before() {
    served_then_signalled("TERM").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_keeps_the_row_of_a_request_served_just_before() {
    served_then_signalled("INT").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_in_flight_at_sigterm_finishes_within_the_grace() {
    let (fake, _f) = switchyard::test_util::start_fake().await;
    let dir = scratch("finish");
    // About 70 pieces of 16 bytes, one every 30 ms: two seconds of stream.
    let (mut child, addr) = start(&dir, fake, "drip-30", 60_000);
    let mut tcp = send(addr, true).await;
    let mut seen = Vec::new();
    read_until(&mut tcp, &mut seen, "\"id\":\"gen-").await;
    signal(&child, "TERM");
    read_until(&mut tcp, &mut seen, "[DONE]").await;
    let status = wait_exit(&mut child).await;
    assert!(status.success(), "{status}");
    let text = String::from_utf8_lossy(&seen).into_owned();
    for piece in ["\"Hello\"", "\" from\"", "\" the fake\"", "data: [DONE]"] {
        assert!(text.contains(piece), "{piece} missing from {text}");
    }
    assert!(!text.contains("shutting down"), "{text}");
    let row = ledger_row(&dir, &generation_id(&text));
    assert!(row.streamed && !row.cancelled && row.tokens_completion == 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_still_running_after_the_grace_ends_with_an_error_event() {
    let (fake, _f) = switchyard::test_util::start_fake().await;
    let dir = scratch("cut");
    // One 16-byte piece every 150 ms: about ten seconds of stream, against a grace of 300 ms.
    let (mut child, addr) = start(&dir, fake, "drip-150", 300);
    let mut tcp = send(addr, true).await;
    let mut seen = Vec::new();
    // Wait for content, so the generation has something to record.
    read_until(&mut tcp, &mut seen, "\"Hello\"").await;
    signal(&child, "TERM");
    read_until(&mut tcp, &mut seen, "[DONE]").await;
    let status = wait_exit(&mut child).await;
    assert!(status.success(), "{status}");
    let text = String::from_utf8_lossy(&seen).into_owned();
    assert!(
        text.contains(r#"data: {"error":{"code":503,"message":"gateway shutting down""#),
        "{text}"
    );
    assert!(text.contains("data: [DONE]"), "{text}");
    assert!(
        !text.contains("\" the fake\""),
        "the stream was not ended early: {text}"
    );
    let row = ledger_row(&dir, &generation_id(&text));
    assert!(row.streamed && row.cancelled, "{row:?}");
    // Charged for what was sent before the end, and settled on the key before the exit.
    assert!(row.total_cost > 0, "{row:?}");
    assert_eq!(key_usage(&dir), row.total_cost);
}
