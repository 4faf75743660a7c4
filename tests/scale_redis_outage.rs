//! Redis going away mid-run, and coming back (feature `redis`): three gateway instances share a
//! private `redis-server` that the test kills (a refused connection) or stops with SIGSTOP (a
//! hung server). While it is away, requests on a key get the documented 503 naming Redis
//! (money fails closed) and keyless requests are served (health fails open), none waiting past
//! `timeout_ms`; once it is back, keys are served again within a bounded time and their limit
//! is still exact.
//!
//! Needs `redis-server` (7.x) on the `PATH` or at `/usr/bin/redis-server`; each test starts its
//! own on a free loopback port and kills it at the end. Set `SWITCHYARD_SKIP_SERVICES=1` to
//! skip when there is none; otherwise a missing `redis-server` fails the test loudly.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)] // panicking is how tests fail

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{post_json, start_fake, start_gateway_with_env};
use switchyard::catalog::StateConfig;
use switchyard::state::redis::RedisState;

const KEY: &str = "sk-team-outage";
const PREFIX: &str = "switchyard_outage:";

/// A private `redis-server` on a loopback port, killed when dropped.
struct RedisServer {
    port: u16,
    child: Option<Child>,
}

fn redis_binary() -> Option<String> {
    ["redis-server", "/usr/bin/redis-server"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .map(str::to_owned)
}

impl RedisServer {
    /// Starts one on a free port, or `None` (after saying why) when skipping is allowed.
    async fn start() -> Option<RedisServer> {
        let Some(_) = redis_binary() else {
            if std::env::var("SWITCHYARD_SKIP_SERVICES").as_deref() == Ok("1") {
                println!("SKIPPED: no redis-server; SWITCHYARD_SKIP_SERVICES=1");
                return None;
            }
            panic!("redis-server is needed (install it, or set SWITCHYARD_SKIP_SERVICES=1)");
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = RedisServer { port, child: None };
        server.restart().await;
        Some(server)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on the same port, with nothing on disk, and waits until it
    /// answers.
    async fn restart(&mut self) {
        let child = Command::new(redis_binary().unwrap())
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let client = redis::Client::open(self.url()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let ping = async {
                let mut c = client.get_multiplexed_async_connection().await?;
                redis::cmd("PING").query_async::<String>(&mut c).await
            };
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(1), ping).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server on port {} never answered", self.port);
    }

    /// Kills it (SIGKILL: nothing is flushed, connections are refused from now on).
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            self.signal(&child, "-CONT");
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGSTOP (`-STOP`) or SIGCONT (`-CONT`): a hung server keeps its connections open but
    /// answers nothing.
    fn signal(&self, child: &Child, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success(), "kill {sig}");
    }

    fn pause(&self, stop: bool) {
        let child = self.child.as_ref().unwrap();
        self.signal(child, if stop { "-STOP" } else { "-CONT" });
    }

    /// A handle for looking at what the gateways wrote.
    fn state(&self) -> RedisState {
        let mut config = StateConfig::redis(self.url());
        config.key_prefix = PREFIX.to_owned();
        config.timeout_ms = 2000;
        RedisState::new(&config).unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Models, each a list of (scenario, $/request, $/M tokens) endpoints.
type Models<'a> = support::PricedModels<'a>;

/// Providers on the fake and these models.
fn config(addr: std::net::SocketAddr, models: Models<'_>, extra: &str) -> String {
    support::priced_config(
        addr,
        models,
        "{ connect_ms = 1000, first_byte_ms = 4000, idle_ms = 2000, total_ms = 10000 }",
        extra,
    )
}

/// `[auth]` optional (keyless requests are served), one key with `limit` dollars, and `[state]`
/// on `url`.
fn extra(limit: f64, url: &str, timeout_ms: u64) -> String {
    format!(
        "[auth]\nrequired = false\n\n[[keys]]\nlabel = \"team\"\nkey_env = \"TEAM\"\nlimit = {limit}\n\n\
         [state]\nredis_url = \"{url}\"\nkey_prefix = \"{PREFIX}\"\nhealth_poll_ms = 100\ntimeout_ms = {timeout_ms}\n"
    )
}

fn chat(model: &str) -> String {
    format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}],"max_tokens":5}}"#)
}

/// One request (with the key, or keyless): status, body and how long it took.
async fn ask(url: &str, model: &str, keyed: bool) -> (u16, String, Duration) {
    let auth = format!("Bearer {KEY}");
    let headers: &[(&str, &str)] = if keyed {
        &[("authorization", &auth)]
    } else {
        &[]
    };
    let t = Instant::now();
    let (s, _, b) = post_json(&format!("{url}/chat/completions"), &chat(model), headers).await;
    (s.as_u16(), b, t.elapsed())
}

/// The key's spend in Redis (picodollars) once no hold is left, polled for up to 10 s.
async fn settled_spend(redis: &RedisState) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = None;
    while Instant::now() < deadline {
        // Errors (the test's connection predates a restart) mean "ask again".
        if let Ok(Some((spend, held))) = spend_and_holds(redis).await {
            if held == 0 {
                return spend.parse().unwrap();
            }
            last = Some((spend, held));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the holds never cleared in Redis (last spend, holds: {last:?})");
}

/// The key's spend counter and its number of live holds, if it has a counter.
async fn spend_and_holds(redis: &RedisState) -> Result<Option<(String, usize)>, String> {
    let mut c = redis.connection().await.map_err(|e| e.to_string())?;
    let keys = |pattern: String| redis::cmd("KEYS").arg(pattern).clone();
    let spends: Vec<String> = keys(format!("{PREFIX}spend:*"))
        .query_async(&mut c)
        .await
        .map_err(|e| e.to_string())?;
    let holds: Vec<String> = keys(format!("{PREFIX}holds:*"))
        .query_async(&mut c)
        .await
        .map_err(|e| e.to_string())?;
    let mut held = 0;
    for h in &holds {
        held += redis::cmd("HLEN")
            .arg(h)
            .query_async::<usize>(&mut c)
            .await
            .map_err(|e| e.to_string())?;
    }
    let Some(k) = spends.first() else {
        return Ok(None);
    };
    let spend: String = redis::cmd("GET")
        .arg(k)
        .query_async(&mut c)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Some((spend, held)))
}

/// Sends keyed requests to `url` until one is served, each refusal being the documented 503;
/// returns how long that took. Fails after `within`.
async fn until_served(url: &str, redis_url: &str, within: Duration) -> Duration {
    let t = Instant::now();
    loop {
        let (status, body, _) = ask(url, "m/paid", true).await;
        match status {
            200 => return t.elapsed(),
            503 => assert!(body.contains(&format!("Redis at {redis_url}")), "{body}"),
            other => panic!("while Redis comes back: {other} {body}"),
        }
        assert!(
            t.elapsed() < within,
            "keys not served again within {within:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// $0.1 a request on the key; `m/free` is for keyless traffic (its own upstream counter).
const MODELS: Models<'static> = &[
    ("m/paid", &[("ok", 0.1, 0.0)]),
    ("m/free", &[("slow-5", 0.0, 0.0)]),
    // The failing endpoint is far cheaper, so balance picks it while it looks healthy.
    (
        "m/flaky",
        &[("status-503", 0.0, 0.01), ("slow-1", 0.0, 100.0)],
    ),
];

/// A refusal while Redis is away must come well within this: `timeout_ms` plus room for a
/// loaded machine.
const SLACK: Duration = Duration::from_millis(1500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_run_fails_keys_closed_then_recovers() {
    let Some(mut server) = RedisServer::start().await else {
        return;
    };
    let redis_url = server.url();
    let timeout = Duration::from_millis(1000);
    let (addr, fake) = start_fake().await;
    // $1 on the key: room for exactly 10 requests over the whole run.
    let cfg = config(
        addr,
        MODELS,
        &extra(1.0, &redis_url, timeout.as_millis() as u64),
    );
    let mut urls = Vec::new();
    for _ in 0..3 {
        urls.push(start_gateway_with_env(&cfg, &[("TEAM", KEY)]).await);
    }

    // Keyless traffic over all three instances for the whole run.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let traffic = {
        let (urls, stop) = (urls.clone(), stop.clone());
        tokio::spawn(async move {
            let mut seen = Vec::new();
            for i in 0.. {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                seen.push(ask(&urls[i % 3], "m/free", false).await);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            seen
        })
    };

    // Redis up: three requests on the key, all on instance 0.
    for _ in 0..3 {
        let (status, body, _) = ask(&urls[0], "m/paid", true).await;
        assert_eq!(status, 200, "{body}");
    }
    let redis = server.state();
    assert_eq!(settled_spend(&redis).await, 300_000_000_000);

    server.kill();
    // Every instance refuses the key, naming Redis, and sends nothing upstream.
    for url in &urls {
        for _ in 0..2 {
            let (status, body, took) = ask(url, "m/paid", true).await;
            assert_eq!(status, 503, "money fails closed: {body}");
            assert!(
                body.contains(&format!("Redis at {redis_url}")) && body.contains("unreachable"),
                "{body}"
            );
            assert!(took < timeout + SLACK, "refused after {took:?}");
        }
    }
    assert_eq!(
        fake.count("ok"),
        3,
        "no unchecked request reached the upstream"
    );
    // The upstream is still reachable for keyless requests, also with a failing endpoint.
    let (status, body, _) = ask(&urls[1], "m/flaky", false).await;
    assert_eq!(status, 200, "health fails open: {body}");

    server.restart().await;
    let mut recovery = Vec::new();
    for url in &urls {
        recovery.push(until_served(url, &redis_url, Duration::from_secs(20)).await);
    }
    println!("keys served again after (per instance): {recovery:?}");
    // Instance 0 asked first, so the restarted Redis counts from its $0.3 (it served all the
    // earlier requests): 3 + 3 served so far, room for 4 more and not one past that.
    let mut served = 6;
    for i in 0..9 {
        let (status, body, _) = ask(&urls[i % 3], "m/paid", true).await;
        match status {
            200 => served += 1,
            402 => assert!(body.contains("Key limit exceeded"), "{body}"),
            other => panic!("after recovery: {other} {body}"),
        }
    }
    assert_eq!(served, 10, "the limit holds across the restart");
    assert_eq!(fake.count("ok"), 10);
    assert_eq!(settled_spend(&redis).await, 1_000_000_000_000);

    // Shared health works again: an outage seen by instance 2 steers instances 0 and 1.
    for _ in 0..3 {
        let (status, body, _) = ask(&urls[2], "m/flaky", false).await;
        assert_eq!(status, 200, "{body}");
    }
    let failed = fake.count("status-503");
    wait_for_verdict(&redis).await;
    for url in &urls[..2] {
        let (status, body, _) = ask(url, "m/flaky", false).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        fake.count("status-503"),
        failed,
        "the verdict was shared after the restart"
    );

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = traffic.await.unwrap();
    assert!(
        seen.len() > 10,
        "keyless traffic kept flowing ({} requests)",
        seen.len()
    );
    for (status, body, took) in &seen {
        assert_eq!(
            *status, 200,
            "keyless requests are served throughout: {body}"
        );
        assert!(*took < timeout + SLACK, "a keyless request took {took:?}");
    }
    let slowest = seen.iter().map(|s| s.2).max().unwrap();
    println!("keyless requests: {}, slowest {slowest:?}", seen.len());
}

/// Until a shared verdict is in Redis and a poll (100 ms) has surely passed.
async fn wait_for_verdict(redis: &RedisState) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        // The test's own connection predates the restart: its first commands may fail (a
        // broken pipe) while the connection manager reconnects, so errors mean "not yet".
        let n: usize = match redis.connection().await {
            Ok(mut c) => redis::cmd("HLEN")
                .arg(format!("{PREFIX}health"))
                .query_async(&mut c)
                .await
                .unwrap_or(0),
            Err(_) => 0,
        };
        if n > 0 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no shared health verdict appeared in Redis after the restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_fails_within_the_timeout_and_leaves_no_holds() {
    let Some(server) = RedisServer::start().await else {
        return;
    };
    let redis_url = server.url();
    let timeout = Duration::from_millis(400);
    let (addr, fake) = start_fake().await;
    // $0.5: room for 5 requests.
    let cfg = config(
        addr,
        MODELS,
        &extra(0.5, &redis_url, timeout.as_millis() as u64),
    );
    let mut urls = Vec::new();
    for _ in 0..3 {
        urls.push(start_gateway_with_env(&cfg, &[("TEAM", KEY)]).await);
    }
    let (status, body, _) = ask(&urls[0], "m/paid", true).await;
    assert_eq!(status, 200, "{body}");
    let redis = server.state();
    assert_eq!(settled_spend(&redis).await, 100_000_000_000);

    server.pause(true);
    let (mut took, mut sticky) = (Vec::new(), Vec::new());
    for url in &urls {
        let (status, body, t) = ask(url, "m/paid", true).await;
        assert_eq!(status, 503, "money fails closed: {body}");
        assert!(body.contains(&format!("Redis at {redis_url}")), "{body}");
        assert!(body.contains("no answer within 400 ms"), "{body}");
        assert!(t < timeout + SLACK, "a hung Redis held a request for {t:?}");
        took.push(t);
        let (status, body, t) = ask(url, "m/free", false).await;
        assert_eq!(status, 200, "health fails open: {body}");
        assert!(
            t < timeout + SLACK,
            "a keyless request waited {t:?} on a hung Redis"
        );
        // A session this instance has not seen: the pin lookup gives up within the timeout
        // (default order), and the next new session does not wait for Redis again.
        for session in ["new-1", "new-2"] {
            let t = Instant::now();
            let (status, _, body) = post_json(
                &format!("{url}/chat/completions"),
                &chat("m/free"),
                &[("x-session-id", session)],
            )
            .await;
            assert_eq!(status, 200, "sticky sessions fail open: {body}");
            assert!(
                t.elapsed() < timeout + SLACK,
                "{session} waited {:?}",
                t.elapsed()
            );
            sticky.push(t.elapsed());
        }
    }
    println!("new sessions with Redis hung: {sticky:?}");
    println!("refusals with Redis hung (timeout {timeout:?}): {took:?}");
    assert_eq!(
        fake.count("ok"),
        1,
        "no unchecked request reached the upstream"
    );

    server.pause(false);
    // The three admissions that timed out still run once Redis wakes up; their holds are
    // released again, so the key keeps all of its remaining room.
    for url in &urls {
        until_served(url, &redis_url, Duration::from_secs(20)).await;
    }
    let (mut served, mut refused) = (4, 0);
    for i in 0..4 {
        let (status, body, _) = ask(&urls[i % 3], "m/paid", true).await;
        match status {
            200 => served += 1,
            402 => refused += 1,
            other => panic!("after the hang: {other} {body}"),
        }
    }
    assert_eq!((served, refused), (5, 3), "exactly the room left is served");
    assert_eq!(settled_spend(&redis).await, 500_000_000_000);
}
