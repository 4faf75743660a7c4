//! Killing one instance under load loses no ledger row for a request it answered (feature
//! `postgres`): three `switchyard serve` processes on one PostgreSQL database, concurrent JSON
//! and streaming requests over all three, one instance SIGKILLed mid-load. Every request that
//! got a complete answer (a JSON body with its id, a stream that reached `[DONE]`) has its row
//! in `generations`, found in SQL and through a surviving instance's `GET /generation`; the
//! requests the kill cut off may or may not have one. The kill comes right after the instance
//! completed an answer, so the newest row it answered is at stake.
//!
//! This holds because `[ledger] commit_before_answer` (on by default with `postgres_url`) holds
//! the end of each answer until its record is committed. With it off the rows of what the killed
//! instance answered in its last batch window (up to 50 ms) are lost, and this test fails.
//!
//! Needs PostgreSQL on 127.0.0.1:5432 with trust auth for `postgres` (`.ci/run` starts it); makes
//! its own database and drops it after. `SWITCHYARD_SKIP_SERVICES=1` skips without a server.
#![cfg(all(feature = "postgres", unix))]
#![allow(clippy::unwrap_used, clippy::expect_used)] // panicking is how tests fail

mod support;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::postgres::TestDb;
use support::{Models, config_toml, start_fake};
use tokio_postgres::NoTls;

/// Generous: the machine running the tests may be slow and busy.
const START: Duration = Duration::from_secs(60);
/// Clients sending requests at once, spread over the three instances.
const CLIENTS: usize = 12;

/// JSON answers come whole; streams drip (16 bytes a millisecond), so the kill finds some
/// mid-stream.
const MODELS: Models<'static> = &[
    ("m/json", &[("ok", 1.0, 2.0)]),
    ("m/stream", &[("drip-1", 1.0, 2.0)]),
];

/// The instances, and the scratch directory of their configs; killed and removed on drop, so a
/// failing test leaves no process behind.
struct Instances {
    children: Vec<Arc<Mutex<Child>>>,
    dir: PathBuf,
}

impl Drop for Instances {
    fn drop(&mut self) {
        for child in &self.children {
            let mut child = child.lock().unwrap_or_else(|p| p.into_inner());
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `switchyard serve` over `config`; returns the process and its address.
fn start(dir: &Path, n: usize, config: &str) -> (Child, SocketAddr) {
    let path = dir.join(format!("gateway-{n}.toml"));
    std::fs::write(&path, config).unwrap();
    support::spawn_serve(&path, &[], START)
}

type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

/// One completion; its generation id when the answer arrived complete, `None` when it failed
/// or was cut off (the instance died under it).
async fn complete(client: &Client, addr: SocketAddr, stream: bool) -> Option<String> {
    let model = if stream { "m/stream" } else { "m/json" };
    let body = format!(
        r#"{{"model":"{model}","stream":{stream},"messages":[{{"role":"user","content":"hi"}}]}}"#
    );
    let req = http::Request::post(format!("http://{addr}/api/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let resp = client.request(req).await.ok()?;
    if resp.status() != 200 {
        return None;
    }
    let bytes = resp.into_body().collect().await.ok()?.to_bytes();
    let text = String::from_utf8_lossy(&bytes);
    if stream {
        if !text.contains("data: [DONE]") {
            return None;
        }
        // The usage chunk, right before `[DONE]`, carries the generation id.
        let (data, _) = support::sse_data(&text);
        let usage: serde_json::Value = serde_json::from_str(data.iter().rev().nth(1)?).ok()?;
        Some(usage["id"].as_str()?.to_owned())
    } else {
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        Some(v["id"].as_str()?.to_owned())
    }
}

/// A complete answer: which instance gave it, whether it streamed, its generation id.
type Answered = (usize, bool, String);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_instance_under_load_loses_no_answered_row() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let url = db.url();
    let (fake, _fake) = start_fake().await;
    // The default: `commit_before_answer` is on with `postgres_url`. Its bound is raised so
    // that a busy machine's slow commit cannot release an answer early (what the bound does is
    // tests/commit_wait.rs's business).
    let config = config_toml(
        fake,
        MODELS,
        &format!(
            "\n[ledger]\npostgres_url = \"{url}\"\npostgres_pool = 1\ncommit_timeout_ms = 30000\n"
        ),
    );
    let dir = std::env::temp_dir().join(format!("switchyard-kill-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut instances = Instances {
        children: Vec::new(),
        dir,
    };
    let mut addrs = Vec::new();
    for n in 0..3 {
        let (child, addr) = start(&instances.dir, n, &config);
        instances.children.push(Arc::new(Mutex::new(child)));
        addrs.push(addr);
    }

    let client: Client =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(5))
            .build_http();
    let stop = Arc::new(AtomicBool::new(false));
    // The kill comes right after instance 0 has completed an answer, once the load has run a
    // while: that answer's record is as fresh as can be (without the commit wait, still in
    // memory), and the other clients are mid-request.
    let victim = instances.children[0].clone();
    let killed = Arc::new(AtomicBool::new(false));
    let kill_from = Instant::now() + Duration::from_millis(1500);
    let answered: Arc<Mutex<Vec<Answered>>> = Arc::default();
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (client, stop, answered, addrs) = (
            client.clone(),
            stop.clone(),
            answered.clone(),
            addrs.clone(),
        );
        let (victim, killed) = (victim.clone(), killed.clone());
        clients.push(tokio::spawn(async move {
            let mut i = c;
            while !stop.load(Ordering::Relaxed) {
                let (instance, stream) = (i % 3, (i / 3) % 2 == 1);
                i += 1;
                match complete(&client, addrs[instance], stream).await {
                    Some(id) => {
                        answered.lock().unwrap().push((instance, stream, id));
                        if instance == 0
                            && Instant::now() >= kill_from
                            && !killed.swap(true, Ordering::SeqCst)
                        {
                            // SIGKILL: nothing drains.
                            victim.lock().unwrap().kill().unwrap();
                        }
                    }
                    // The killed instance refuses from now on: do not spin on it.
                    None => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        }));
    }
    // Load, the kill, then load on the two left for a moment.
    let deadline = Instant::now() + START;
    while !killed.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "instance 0 answered nothing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    victim.lock().unwrap().wait().unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let answered = std::mem::take(&mut *answered.lock().unwrap());
    let by_killed: Vec<&Answered> = answered.iter().filter(|a| a.0 == 0).collect();
    let streams = by_killed.iter().filter(|a| a.1).count();
    println!(
        "{} complete answers, {} from the killed instance ({streams} streams)",
        answered.len(),
        by_killed.len()
    );
    assert!(
        streams > 0 && by_killed.len() > streams,
        "the killed instance answered JSON and streams before the kill"
    );

    // In SQL, right away: an answer went out only after its row was committed.
    let (pg, conn) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(conn);
    let ids: Vec<&str> = answered.iter().map(|a| a.2.as_str()).collect();
    let rows = pg
        .query("SELECT id FROM generations WHERE id = ANY($1)", &[&ids])
        .await
        .unwrap();
    let stored: std::collections::HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
    let lost: Vec<&Answered> = answered.iter().filter(|a| !stored.contains(&a.2)).collect();
    let lost_by_killed = lost.iter().filter(|a| a.0 == 0).count();
    assert!(
        lost.is_empty(),
        "{} answered requests have no row ({lost_by_killed} of them answered by the killed \
         instance), e.g. {:?}",
        lost.len(),
        lost.first()
    );

    // And through the instances left: each finds what the dead one answered.
    let lookup: hyper_util::client::legacy::Client<_, http_body_util::Empty<Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    for (k, (_, _, id)) in by_killed.iter().enumerate() {
        let addr = addrs[1 + k % 2];
        let uri = format!("http://{addr}/api/v1/generation?id={id}")
            .parse()
            .unwrap();
        let resp = lookup.get(uri).await.unwrap();
        assert_eq!(resp.status(), 200, "{id} through {addr}");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let record: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(record["data"]["id"], id.as_str());
    }

    drop(instances);
    drop(pg);
    db.drop_it().await;
}
