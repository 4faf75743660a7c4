//! Three gateway instances sharing one Redis (feature `redis`): credits are never overspent,
//! an outage seen by one steers the others, per-minute limits hold across instances, and an
//! unreachable Redis fails closed for money and open for health.
//!
//! Needs Redis on 127.0.0.1:6379 (`.ci/run` starts it). Each test writes under its own random
//! key prefix and deletes it after. Set `SWITCHYARD_SKIP_SERVICES=1` to skip when no Redis can
//! be had; otherwise a missing Redis fails the test loudly.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)] // panicking is how tests fail

mod support;

use std::time::Duration;
use support::{Fake, post_json, start_fake, start_gateway_with_env};
use switchyard::catalog::{StateConfig, Usd};
use switchyard::keys::{KeyStore, LimitReset, ReserveError};
use switchyard::state::redis::{RedisAdmission, RedisState};
use switchyard::state::{Admission, Admit, Refusal};

const REDIS_URL: &str = "redis://127.0.0.1:6379";
const KEY: &str = "sk-team-shared";

/// A fresh prefix in the test Redis, or `None` (after saying why) when skipping is allowed.
async fn redis_prefix() -> Option<(String, RedisState)> {
    let prefix = format!("switchyard_test_{:016x}:", rand::random::<u64>());
    let mut config = StateConfig::redis(REDIS_URL);
    config.key_prefix = prefix.clone();
    config.timeout_ms = 2000;
    let redis = RedisState::new(&config).expect("url");
    match redis.connection().await {
        Ok(_) => Some((prefix, redis)),
        Err(e) if std::env::var("SWITCHYARD_SKIP_SERVICES").as_deref() == Ok("1") => {
            println!("SKIPPED: no Redis at {REDIS_URL} ({e}); SWITCHYARD_SKIP_SERVICES=1");
            None
        }
        Err(e) => panic!(
            "Redis is needed at {REDIS_URL} (start it, or set SWITCHYARD_SKIP_SERVICES=1): {e}"
        ),
    }
}

/// Models, each a list of (scenario, $/request, $/M tokens) endpoints.
type Models<'a> = support::PricedModels<'a>;

/// Providers on the fake and these models.
fn config(addr: std::net::SocketAddr, models: Models<'_>, extra: &str) -> String {
    support::priced_config(
        addr,
        models,
        "{ connect_ms = 1000, first_byte_ms = 2000, idle_ms = 1000, total_ms = 10000 }",
        extra,
    )
}

fn state(prefix: &str, url: &str) -> String {
    format!(
        "\n[state]\nredis_url = \"{url}\"\nkey_prefix = \"{prefix}\"\nhealth_poll_ms = 100\ntimeout_ms = 1000\n"
    )
}

async fn three(config: &str) -> Vec<String> {
    let mut urls = Vec::new();
    for _ in 0..3 {
        urls.push(start_gateway_with_env(config, &[("TEAM", KEY)]).await);
    }
    urls
}

fn chat(model: &str) -> String {
    format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}],"max_tokens":5}}"#)
}

async fn ask(url: &str, model: &str) -> (u16, http::HeaderMap, String) {
    let (s, h, b) = post_json(
        &format!("{url}/chat/completions"),
        &chat(model),
        &[("authorization", &format!("Bearer {KEY}"))],
    )
    .await;
    (s.as_u16(), h, b)
}

async fn same_minute() {
    let ms = switchyard::ledger::now_ms() % 60_000;
    if ms > 57_000 {
        tokio::time::sleep(Duration::from_millis((60_000 - ms + 200) as u64)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_requests_over_three_instances_spend_at_most_the_limit() {
    let Some((prefix, redis)) = redis_prefix().await else {
        return;
    };
    let (addr, fake) = start_fake().await;
    // Each request costs exactly $0.1 (worst case = actual), the key has $0.5: room for 5.
    let keys =
        "[auth]\nrequired = true\n\n[[keys]]\nlabel = \"team\"\nkey_env = \"TEAM\"\nlimit = 0.5\n";
    let cfg = config(
        addr,
        &[("m/one", &[("ok", 0.1, 0.0)])],
        &format!("{keys}{}", state(&prefix, REDIS_URL)),
    );
    let urls = three(&cfg).await;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let url = urls[i % 3].clone();
            tokio::spawn(async move { ask(&url, "m/one").await })
        })
        .collect();
    let (mut served, mut refused) = (0, 0);
    for t in tasks {
        let (status, _, body) = t.await.unwrap();
        match status {
            200 => served += 1,
            402 => {
                assert!(body.contains("Key limit exceeded"), "{body}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(served, 5, "exactly the limit's room is served");
    assert_eq!(refused, 45);
    assert_eq!(fake.count("ok"), 5, "the upstream saw no more than 5");
    let spent = spend(&redis, &prefix).await;
    assert_eq!(spent, 500_000_000_000, "spend is the limit, in picodollars");
    cleanup(&redis).await;
}

/// The key's spend as Redis holds it, once the settlements (spawned) have landed.
async fn spend(redis: &RedisState, prefix: &str) -> i64 {
    let pattern = format!("{prefix}spend:*");
    for _ in 0..50 {
        let mut c = redis.connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(&pattern)
            .query_async(&mut c)
            .await
            .unwrap();
        if let Some(k) = keys.first() {
            // Holds first: a settlement drops its hold and adds its cost in one script, so
            // once none is left the spend read after it is final (read before, it could
            // miss the last one).
            let holds: usize = redis::cmd("HLEN")
                .arg(format!(
                    "{prefix}holds:{}",
                    k.split(':').nth(2).unwrap_or("")
                ))
                .query_async(&mut c)
                .await
                .unwrap();
            let v: String = redis::cmd("GET").arg(k).query_async(&mut c).await.unwrap();
            if holds == 0 && v != "0" {
                return v.parse().unwrap();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("settlements never landed in Redis");
}

async fn cleanup(redis: &RedisState) {
    redis.delete_all().await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_seen_by_one_instance_steers_the_others() {
    let Some((prefix, redis)) = redis_prefix().await else {
        return;
    };
    let (addr, fake) = start_fake().await;
    // The failing endpoint is far cheaper, so balance picks it first while it looks healthy.
    let cfg = config(
        addr,
        &[("m/two", &[("status-503", 0.0, 0.01), ("ok", 0.0, 100.0)])],
        &state(&prefix, REDIS_URL),
    );
    let urls = three(&cfg).await;
    for _ in 0..3 {
        let (status, _, body) = post_json(
            &format!("{}/chat/completions", urls[0]),
            &chat("m/two"),
            &[],
        )
        .await;
        assert_eq!(status, 200, "fallback serves: {body}");
    }
    let failed = fake.count("status-503");
    assert!(failed >= 2, "instance 0 saw the outage ({failed})");
    wait_for_verdict(&fake, &redis, &prefix).await;
    for url in &urls[1..] {
        for _ in 0..4 {
            let (status, _, body) =
                post_json(&format!("{url}/chat/completions"), &chat("m/two"), &[]).await;
            assert_eq!(status, 200, "{body}");
        }
    }
    assert_eq!(
        fake.count("status-503"),
        failed,
        "the others went straight to the healthy endpoint"
    );
    cleanup(&redis).await;
}

/// Until the shared verdict is in Redis and a poll (100 ms) has passed.
async fn wait_for_verdict(_fake: &Fake, redis: &RedisState, prefix: &str) {
    for _ in 0..40 {
        let mut c = redis.connection().await.unwrap();
        let n: usize = redis::cmd("HLEN")
            .arg(format!("{prefix}health"))
            .query_async(&mut c)
            .await
            .unwrap();
        if n > 0 {
            tokio::time::sleep(Duration::from_millis(350)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no shared health verdict appeared in Redis");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpm_holds_across_instances() {
    let Some((prefix, redis)) = redis_prefix().await else {
        return;
    };
    let (addr, _fake) = start_fake().await;
    let keys =
        "[auth]\nrequired = true\n\n[[keys]]\nlabel = \"team\"\nkey_env = \"TEAM\"\nrpm = 4\n";
    let cfg = config(
        addr,
        &[("m/one", &[("ok", 0.0, 1.0)])],
        &format!("{keys}{}", state(&prefix, REDIS_URL)),
    );
    let urls = three(&cfg).await;
    same_minute().await;
    let mut statuses = Vec::new();
    for i in 0..9 {
        let (status, headers, body) = ask(&urls[i % 3], "m/one").await;
        if status == 429 {
            assert!(body.contains("4 requests per minute"), "{body}");
            assert_eq!(headers["x-ratelimit-limit"], "4");
            assert_eq!(headers["x-ratelimit-remaining"], "0");
            assert!(headers.contains_key("retry-after"));
        }
        statuses.push(status);
    }
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 429, 429, 429, 429, 429],
        "{statuses:?}"
    );
    cleanup(&redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_refuses_money_and_serves_the_rest() {
    let (addr, _fake) = start_fake().await;
    // A closed port: nothing listens on the discard port on loopback.
    let keys =
        "[auth]\nrequired = false\n\n[[keys]]\nlabel = \"team\"\nkey_env = \"TEAM\"\nlimit = 5\n";
    let cfg = config(
        addr,
        &[("m/one", &[("ok", 0.0, 1.0)])],
        &format!(
            "{keys}{}",
            state("switchyard_test_closed:", "redis://127.0.0.1:9")
        ),
    );
    let url = start_gateway_with_env(&cfg, &[("TEAM", KEY)]).await;
    let (status, _, body) = ask(&url, "m/one").await;
    assert_eq!(status, 503, "money fails closed: {body}");
    assert!(body.contains("Redis at redis://127.0.0.1:9"), "{body}");
    // Keyless requests spend nothing: health fails open and they are served.
    let (status, _, body) =
        post_json(&format!("{url}/chat/completions"), &chat("m/one"), &[]).await;
    assert_eq!(status, 200, "{body}");
}

async fn admit(
    adm: &RedisAdmission,
    hash: &str,
    cost: Usd,
) -> Result<Box<dyn switchyard::context::CreditSettle>, Refusal> {
    match adm.admit(hash, cost) {
        Admit::Ready(r) => r,
        Admit::Pending(f) => f.await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn money_stays_exact_past_what_a_double_holds() {
    let Some((prefix, redis)) = redis_prefix().await else {
        return;
    };
    // $20,000 and one picodollar: 2e16 picodollars, past 2^53, where Lua's doubles round.
    let store = KeyStore::in_memory();
    let limit = Usd::from_picodollars(20_000 * Usd::PICO + 1);
    let (_, key) = store.create("big", Some(limit), LimitReset::Never).unwrap();
    let adm = RedisAdmission::new(store.clone(), redis.clone());
    let half = Usd::from_picodollars(10_000 * Usd::PICO);
    let pico = Usd::from_picodollars(1);
    let a = admit(&adm, &key.hash, half).await.unwrap();
    let b = admit(&adm, &key.hash, half).await.unwrap();
    let last = admit(&adm, &key.hash, pico)
        .await
        .expect("the last picodollar fits");
    match admit(&adm, &key.hash, pico).await {
        Err(Refusal::Credit(ReserveError::Insufficient(e))) => assert_eq!(e.remaining, Usd::ZERO),
        Err(e) => panic!("unexpected refusal: {e}"),
        Ok(_) => panic!("one picodollar too many was admitted"),
    }
    drop(last); // released, off the request path
    let mut again = None;
    for _ in 0..40 {
        if let Ok(h) = admit(&adm, &key.hash, pico).await {
            again = Some(h);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let again = again.expect("a released hold frees its credit");
    a.settle(half);
    b.settle(Usd::ZERO);
    again.settle(pico);
    assert_eq!(spend(&redis, &prefix).await, 10_000 * Usd::PICO + 1);
    cleanup(&redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpm_counts_finished_requests_across_instances() {
    let Some((prefix, redis)) = redis_prefix().await else {
        return;
    };
    let (addr, _fake) = start_fake().await;
    // The fake answers with 12 + 5 = 17 tokens: two requests use up 20 tokens a minute.
    let keys =
        "[auth]\nrequired = true\n\n[[keys]]\nlabel = \"team\"\nkey_env = \"TEAM\"\ntpm = 20\n";
    let cfg = config(
        addr,
        &[("m/one", &[("ok", 0.0, 1.0)])],
        &format!("{keys}{}", state(&prefix, REDIS_URL)),
    );
    let urls = three(&cfg).await;
    same_minute().await;
    let mut statuses = Vec::new();
    for url in &urls {
        let (status, headers, body) = ask(url, "m/one").await;
        if status == 429 {
            assert!(body.contains("20 tokens per minute"), "{body}");
            assert_eq!(headers["x-ratelimit-limit"], "20");
        }
        statuses.push(status);
        // Settling (which adds the tokens) runs just after the response.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(statuses, [200, 200, 429]);
    cleanup(&redis).await;
}

async fn ask_session(url: &str, model: &str, session: &str) -> (u16, String) {
    let (s, _, b) = post_json(
        &format!("{url}/chat/completions"),
        &chat(model),
        &[("x-session-id", session)],
    )
    .await;
    (s.as_u16(), b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_keeps_its_endpoint_on_another_instance() {
    let Some((prefix, redis)) = redis_prefix().await else {
        return;
    };
    let (addr, fake) = start_fake().await;
    // Default order puts the far cheaper endpoint first; it fails once, so instance 0 serves
    // the session on the other one and pins it there.
    let cfg = config(
        addr,
        &[("m/s", &[("status-503", 0.0, 0.01), ("slow-1", 0.0, 100.0)])],
        &state(&prefix, REDIS_URL),
    );
    let urls = three(&cfg).await;
    let (status, body) = ask_session(&urls[0], "m/s", "conv-1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((fake.count("status-503"), fake.count("slow-1")), (1, 1));
    // The pin is written off the request path.
    let mut pinned = false;
    for _ in 0..100 {
        let mut c = redis.connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}sticky:*"))
            .query_async(&mut c)
            .await
            .unwrap();
        if !keys.is_empty() {
            pinned = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(pinned, "the pin reached Redis");
    // Instances 1 and 2 have never seen the session: they send it straight to its endpoint.
    for url in &urls[1..] {
        let (status, body) = ask_session(url, "m/s", "conv-1").await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        (fake.count("status-503"), fake.count("slow-1")),
        (1, 3),
        "the session stayed on its endpoint"
    );
    // Another session on instance 2 gets the default order: the cheap endpoint first.
    let (status, body) = ask_session(&urls[2], "m/s", "conv-2").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        fake.count("status-503"),
        2,
        "default order would have differed"
    );
    cleanup(&redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speed_measured_by_one_instance_sorts_the_others() {
    let Some((prefix, redis)) = redis_prefix().await else {
        return;
    };
    let (addr, fake) = start_fake().await;
    // Without measurements a latency sort falls back to price: the cheap, slow endpoint.
    let cfg = config(
        addr,
        &[("m/l", &[("slow-300", 0.0, 0.01), ("ok", 0.0, 100.0)])],
        &state(&prefix, REDIS_URL),
    );
    let urls = three(&cfg).await;
    let body = |provider: &str| {
        format!(
            r#"{{"model":"m/l","messages":[{{"role":"user","content":"hi"}}],"max_tokens":5,"stream":true,"provider":{provider}}}"#
        )
    };
    // Instance 0 measures both endpoints.
    for p in ["p-slow-300", "p-ok"] {
        let (status, _, b) = post_json(
            &format!("{}/chat/completions", urls[0]),
            &body(&format!(r#"{{"order":["{p}"]}}"#)),
            &[],
        )
        .await;
        assert_eq!(status, 200, "{b}");
    }
    assert_eq!((fake.count("slow-300"), fake.count("ok")), (1, 1));
    let mut shared = 0;
    for _ in 0..100 {
        let mut c = redis.connection().await.unwrap();
        shared = redis::cmd("HLEN")
            .arg(format!("{prefix}health:speed"))
            .query_async(&mut c)
            .await
            .unwrap();
        if shared == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(shared, 2, "both speeds reached Redis");
    tokio::time::sleep(Duration::from_millis(350)).await; // a poll (100 ms) has passed
    // Instances 1 and 2 measured nothing themselves, yet sort the fast endpoint first.
    for url in &urls[1..] {
        let (status, _, b) = post_json(
            &format!("{url}/chat/completions"),
            &body(r#"{"sort":"latency"}"#),
            &[],
        )
        .await;
        assert_eq!(status, 200, "{b}");
    }
    assert_eq!(
        (fake.count("slow-300"), fake.count("ok")),
        (1, 3),
        "the deployment's latency EWMAs sorted the other instances"
    );
    cleanup(&redis).await;
}

/// The outage rule over the outcomes of two instances together: failures and attempts are
/// counted across both, so 2 failures against 3 successes are no outage, and one more failure
/// (3 of 6) is — seen by an instance whose own outcomes (1 failure of 4) are no outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outage_rule_counts_failures_and_attempts_of_all_instances() {
    use std::time::Instant;
    use switchyard::health::{Health, Outcome};
    use switchyard::state::redis::RedisHealth;
    let Some((prefix, _)) = redis_prefix().await else {
        return;
    };
    let instance = || {
        let mut config = StateConfig::redis(REDIS_URL);
        config.key_prefix = prefix.clone();
        config.timeout_ms = 2000;
        config.health_poll_ms = 50;
        let redis = RedisState::new(&config).expect("url");
        let health = std::sync::Arc::new(Health::new());
        assert!(RedisHealth::start(&health, redis.clone()));
        (health, redis)
    };
    let ((a, redis), (b, _)) = (instance(), instance());
    let outcome = |success| Outcome {
        success,
        status: if success { 200 } else { 500 },
        retry_after: None,
    };
    let ep = "acme/m@p-flaky";
    // Outcomes reach Redis in the background: let each step land before the next, so the rule
    // is only ever judged on the counts this test means.
    let settle = || tokio::time::sleep(Duration::from_millis(300));
    for _ in 0..3 {
        b.record(ep, outcome(true));
    }
    settle().await;
    a.record(ep, outcome(false));
    settle().await;
    b.record(ep, outcome(false));
    settle().await;
    assert!(!b.is_unstable(ep), "2 failures of 5 attempts are no outage");
    a.record(ep, outcome(false));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.is_unstable(ep) {
        assert!(
            Instant::now() < deadline,
            "3 failures of 6 attempts across the instances never reached instance B"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    redis.delete_all().await.unwrap();
}
