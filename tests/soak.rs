//! Soak: tens of thousands of requests on loopback at concurrency 64 with 20 % injected faults.
//! Not part of the quick test run: `scripts/soak` runs it (`--ignored`, release build).
//!
//! Checks: every request gets exactly one answer (none lost, none doubled: each request tags its
//! answer and each whole answer was served exactly once upstream); nothing ends as a truncated
//! 200; memory and open file descriptors return to their baseline afterwards.
//!
//! Knobs (environment): `SOAK_REQUESTS` (default 20000), `SOAK_CONCURRENCY` (64),
//! `SOAK_MAX_SECS` (600, the test fails beyond it), `SOAK_FIRST_BYTE_MS` (600) and
//! `SOAK_IDLE_MS` (400), the providers' timeouts.
#![allow(clippy::unwrap_used, missing_docs)]

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use switchyard::test_util::{
    FAULTS_AFTER_CONTENT, FAULTS_BEFORE_CONTENT, FaultTimeouts, OK_TEXT, fault_config,
    gateway_from, start_fake, start_gateway,
};

/// Longer than every idle timeout in play (client pool 2 s, fake upstream 2 s).
const SETTLE: Duration = Duration::from_secs(5);

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Resident memory of this process in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Open file descriptors of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

/// The soak's SQLite ledger, in a fresh temporary directory.
fn ledger_path() -> &'static std::path::Path {
    static PATH: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("switchyard-soak-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir.join("ledger.db")
    })
}

/// Ledger rows written so far (read from the database file; the gateway's writer batches
/// within 50 ms).
fn ledger_rows() -> Option<usize> {
    let sink = switchyard::ledger::SqliteSink::open(ledger_path()).ok()?;
    sink.count().ok().map(|n| n as usize)
}

#[derive(Default)]
struct Tally {
    sent: AtomicUsize,
    whole: AtomicUsize,
    error_end: AtomicUsize,
    error_status: AtomicUsize,
    lost: AtomicUsize,
    wrong: AtomicUsize,
    faults: AtomicUsize,
}

/// What one request should get.
#[derive(Clone, Copy)]
struct Job {
    n: usize,
    stream: bool,
    fault: Option<&'static str>,
}

fn job(n: usize) -> Job {
    let all: Vec<&'static str> = FAULTS_BEFORE_CONTENT
        .iter()
        .chain(FAULTS_AFTER_CONTENT)
        .copied()
        .collect();
    // One request in five meets a fault; the faults take turns.
    let fault = (n % 5 == 0).then(|| all[(n / 5) % all.len()]);
    Job {
        n,
        stream: n % 2 == 1,
        fault,
    }
}

async fn run_one(
    client: &hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Full<Bytes>,
    >,
    addr: SocketAddr,
    job: Job,
    tally: &Tally,
) {
    tally.sent.fetch_add(1, Ordering::Relaxed);
    if job.fault.is_some() {
        tally.faults.fetch_add(1, Ordering::Relaxed);
    }
    let model = match job.fault {
        Some(f) => format!("acme/{f}"),
        None => "acme/ok".to_owned(),
    };
    let tag = format!("soak-{}", job.n);
    let body = format!(
        r#"{{"model":"{model}","stream":{},"x_echo":"{tag}","provider":{{"sort":"price"}},"messages":[{{"role":"user","content":"hi"}}]}}"#,
        job.stream
    );
    let req = http::Request::post(format!("http://{addr}/api/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let start = Instant::now();
    let exchange = async {
        let resp = client.request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let id = resp
            .headers()
            .get("x-generation-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok::<_, String>((status, id, String::from_utf8_lossy(&bytes).into_owned()))
    };
    let Ok(Ok((status, id, text))) = tokio::time::timeout(Duration::from_secs(10), exchange).await
    else {
        tally.lost.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let expected = format!("{OK_TEXT} [{tag}]");
    let visible = job.fault.is_some_and(|f| FAULTS_AFTER_CONTENT.contains(&f)) && job.stream;
    let verdict = if status != 200 {
        // Every candidate list ends in a healthy provider: an error status is wrong, except
        // a 429 when every provider is cooling down.
        tally.error_status.fetch_add(1, Ordering::Relaxed);
        Err(format!("status {status}: {text}"))
    } else if !job.stream {
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| e.to_string())
            .unwrap_or_default();
        if v["choices"][0]["message"]["content"] == expected.as_str() {
            tally.whole.fetch_add(1, Ordering::Relaxed);
            Ok(())
        } else {
            Err(format!("non-stream answer: {text}"))
        }
    } else {
        let datas: Vec<&str> = text
            .split("\n\n")
            .filter_map(|b| b.strip_prefix("data: "))
            .collect();
        let chunks: Vec<serde_json::Value> = datas
            .iter()
            .filter(|d| **d != "[DONE]")
            .filter_map(|d| serde_json::from_str(d).ok())
            .collect();
        let content: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        let done_once = datas.iter().filter(|d| **d == "[DONE]").count() == 1
            && datas.last() == Some(&"[DONE]");
        let errors = chunks.iter().filter(|c| c.get("error").is_some()).count();
        let last_is_error = chunks
            .last()
            .is_some_and(|c| c["choices"][0]["finish_reason"] == "error");
        if done_once && errors == 0 && content == expected {
            tally.whole.fetch_add(1, Ordering::Relaxed);
            Ok(())
        } else if done_once && visible && errors == 1 && last_is_error && content == "Hello" {
            tally.error_end.fetch_add(1, Ordering::Relaxed);
            Ok(())
        } else {
            Err(format!("stream: {text}"))
        }
    };
    if let Err(why) = verdict {
        if tally.wrong.fetch_add(1, Ordering::Relaxed) < 5 {
            eprintln!(
                "request {} ({:?}, {id}, {:?}): {why}",
                job.n,
                job.fault,
                start.elapsed()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak test: run it with scripts/soak"]
async fn soak_with_injected_faults() {
    let requests = env_or("SOAK_REQUESTS", 20_000);
    let concurrency = env_or("SOAK_CONCURRENCY", 64);
    let max = Duration::from_secs(env_or("SOAK_MAX_SECS", 600) as u64);
    let (fake_addr, fake) = start_fake().await;
    fake.set_recording(false);
    // Idle connections end on every side within the settle time, so leaks show.
    fake.close_idle_after(Duration::from_secs(2));
    let mut models: Vec<(String, Vec<&str>)> = vec![("acme/ok".into(), vec!["ok"])];
    for f in FAULTS_BEFORE_CONTENT.iter().chain(FAULTS_AFTER_CONTENT) {
        models.push((format!("acme/{f}"), vec![f, "ok"]));
    }
    let refs: Vec<(&str, &[&str])> = models
        .iter()
        .map(|(m, s)| (m.as_str(), s.as_slice()))
        .collect();
    // Loose enough that CPU contention alone (two shared cores at thousands of requests per
    // second) does not trip them.
    let t = FaultTimeouts {
        connect_ms: 1000,
        first_byte_ms: env_or("SOAK_FIRST_BYTE_MS", 600) as u64,
        idle_ms: env_or("SOAK_IDLE_MS", 400) as u64,
        total_ms: 3000,
        keepalive_ms: 1000,
        key_env: None,
    };
    let addr = start_gateway(gateway_from(
        &fault_config(
            fake_addr,
            &refs,
            t,
            &format!("[ledger]\npath = \"{}\"\n", ledger_path().display()),
        ),
        &|_| None,
    ))
    .await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(2))
        .pool_timer(hyper_util::rt::TokioTimer::new())
        .build_http::<Full<Bytes>>();
    let run = |range: std::ops::Range<usize>, tally: &'static Tally| {
        let client = client.clone();
        async move {
            futures_util::stream::iter(range)
                .map(|n| {
                    let client = client.clone();
                    async move { run_one(&client, addr, job(n), tally).await }
                })
                .buffer_unordered(concurrency)
                .collect::<Vec<()>>()
                .await;
        }
    };
    let started = Instant::now();
    let body = async {
        // Warm up: pools, allocator arenas, lazy statics.
        let warm: &'static Tally = Box::leak(Box::default());
        run(0..2_000.min(requests), warm).await;
        tokio::time::sleep(SETTLE).await;
        let (rss0, fds0) = (rss_kib(), open_fds());
        let completed0 = fake.completed();
        let tally: &'static Tally = Box::leak(Box::default());
        let base = 1_000_000; // distinct tags from the warm-up
        // Four quarters, memory and descriptors sampled after each.
        let mut samples = Vec::new();
        for q in 0..4 {
            let from = base + requests * q / 4;
            let to = base + requests * (q + 1) / 4;
            run(from..to, tally).await;
            samples.push((rss_kib(), open_fds()));
        }
        let (rss1, _) = samples[1];
        let (rss2, _) = samples[3];
        // Let idle pooled connections expire on every side.
        tokio::time::sleep(SETTLE).await;
        let (rss3, fds3) = (rss_kib(), open_fds());
        let served_upstream = fake.completed() - completed0;
        let g = |a: &AtomicUsize| a.load(Ordering::Relaxed);
        println!(
            "soak: {} requests ({} with faults, {:.1} %) at concurrency {concurrency} in {:.1} s: \
             {} whole, {} ended with an error chunk, {} error statuses, {} lost, {} wrong; \
             {served_upstream} whole answers served upstream; ledger rows: {:?}",
            g(&tally.sent),
            g(&tally.faults),
            100.0 * g(&tally.faults) as f64 / g(&tally.sent).max(1) as f64,
            started.elapsed().as_secs_f64(),
            g(&tally.whole),
            g(&tally.error_end),
            g(&tally.error_status),
            g(&tally.lost),
            g(&tally.wrong),
            ledger_rows(),
        );
        println!(
            "soak: RSS KiB baseline {rss0}, after each quarter {:?}, settled {rss3}; \
             fds baseline {fds0}, after each quarter {:?}, settled {fds3}",
            samples.iter().map(|s| s.0).collect::<Vec<_>>(),
            samples.iter().map(|s| s.1).collect::<Vec<_>>(),
        );
        assert_eq!(g(&tally.sent), requests);
        assert_eq!(g(&tally.lost), 0, "lost responses");
        assert_eq!(g(&tally.wrong), 0, "wrong, truncated or doubled responses");
        assert_eq!(
            g(&tally.whole) + g(&tally.error_end),
            requests,
            "every request got exactly one answer"
        );
        assert_eq!(
            served_upstream,
            g(&tally.whole),
            "each whole answer was served upstream exactly once (none doubled, none lost)"
        );
        // One row per served request: every whole answer has one, a stream cut after its first
        // content has one, and nothing is doubled (rows are keyed by generation id). The
        // warm-up's requests are in the same ledger.
        let rows = ledger_rows().expect("the soak's ledger");
        let served_min = g(&tally.whole) + g(&warm.whole);
        let served_max = served_min + g(&tally.error_end) + g(&warm.error_end);
        assert!(
            (served_min..=served_max).contains(&rows),
            "ledger rows {rows}, expected between {served_min} and {served_max}"
        );
        assert!(fds3 <= fds0 + 4, "file descriptors leak: {fds0} → {fds3}");
        // Memory: no growth between the two halves beyond allocator noise, and back near the
        // baseline at the end.
        assert!(
            rss2 <= rss1 + 16 * 1024,
            "memory grows with requests: {rss1} → {rss2} KiB"
        );
        assert!(
            rss3 <= rss0 + 32 * 1024,
            "memory does not return to its baseline: {rss0} → {rss3} KiB"
        );
    };
    tokio::time::timeout(max, body)
        .await
        .expect("the soak test exceeded SOAK_MAX_SECS");
}
