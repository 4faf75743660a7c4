//! What sharing state through Redis costs per request, against keeping it in process: the
//! admission step alone (credit hold + rate limit, then settle) and a whole gateway request
//! over loopback, both ways in one run. Needs Redis (default `redis://127.0.0.1:6379`, or the
//! first argument); writes under a random prefix and deletes it after.
//!
//! ```text
//! cargo run --release --features redis,test-util --example state_cost -- [redis_url] [requests]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};
use switchyard::catalog::{StateConfig, Usd};
use switchyard::keys::{KeyLimits, KeyStore, LimitReset};
use switchyard::state::redis::{RedisAdmission, RedisState};
use switchyard::state::{Admission, Admit, LocalAdmission};
use switchyard::test_util;

async fn admit_once(adm: &dyn Admission, hash: &str) {
    let hold = match adm.admit(hash, Usd::from_dollars(0.0001)) {
        Admit::Ready(r) => r,
        Admit::Pending(f) => f.await,
    }
    .expect("admitted");
    hold.settle_with_tokens(Usd::from_dollars(0.00005), 17);
}

/// Median and p99 of `n` sequential runs of `f`, in microseconds.
async fn time<F, Fut>(n: usize, mut f: F) -> (f64, f64)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut samples: Vec<Duration> = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f().await;
        samples.push(t.elapsed());
    }
    samples.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    (us(samples[n / 2]), us(samples[n * 99 / 100]))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5000);
    let prefix = format!("switchyard_bench_{:016x}:", rand::random::<u64>());
    let mut cfg = StateConfig::redis(&url);
    cfg.key_prefix = prefix.clone();
    let redis = RedisState::new(&cfg).unwrap();

    // 1. Admission alone: a limited key with rpm and tpm, so every check runs.
    let store = KeyStore::in_memory();
    let limits = KeyLimits {
        rpm: Some(u32::MAX),
        tpm: Some(u64::MAX / 2),
        models: Vec::new(),
    };
    let (_, key) = store
        .create_with_limits(
            "bench",
            Some(Usd::from_dollars(1e6)),
            LimitReset::Monthly,
            limits,
        )
        .unwrap();
    let local = LocalAdmission::new(store.clone());
    let shared = RedisAdmission::new(store.clone(), redis.clone());
    admit_once(&shared, &key.hash).await; // loads the script
    let (l50, l99) = time(n, || admit_once(&local, &key.hash)).await;
    let (r50, r99) = time(n, || admit_once(&shared, &key.hash)).await;
    println!(
        "| admission (reserve + rate limit + settle) | in process | {l50:.1} µs | {l99:.1} µs |"
    );
    println!("| admission (reserve + rate limit + settle) | Redis | {r50:.1} µs | {r99:.1} µs |");

    // 2. A whole request through a gateway on loopback, over the fake upstream.
    let (addr, _fake) = test_util::start_fake().await;
    let keys = "[auth]\nrequired = true\n\n[[keys]]\nlabel = \"team\"\nkey_env = \"TEAM\"\nlimit = 1000000\nrpm = 100000000\n";
    let base = test_util::config_toml(addr, &[("m/one", &[("ok", 1.0, 1.0)])], keys);
    let with_redis = format!("{base}\n[state]\nredis_url = \"{url}\"\nkey_prefix = \"{prefix}\"\n");
    for (label, config) in [
        ("in process", base.as_str()),
        ("Redis", with_redis.as_str()),
    ] {
        let gw = test_util::gateway_with_vars(config, &[("TEAM", "sk-bench")]);
        let addr = test_util::start_gateway(gw).await;
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Full<bytes::Bytes>>();
        let uri: http::Uri = format!("http://{addr}/api/v1/chat/completions")
            .parse()
            .unwrap();
        let send = || {
            let (client, uri) = (client.clone(), uri.clone());
            async move {
                use http_body_util::BodyExt;
                let req = http::Request::post(uri)
                    .header("authorization", "Bearer sk-bench")
                    .header("content-type", "application/json")
                    .body(http_body_util::Full::new(bytes::Bytes::from_static(
                        br#"{"model":"m/one","messages":[{"role":"user","content":"hi"}],"max_tokens":5}"#,
                    )))
                    .unwrap();
                let resp = client.request(req).await.unwrap();
                assert_eq!(resp.status(), 200);
                resp.into_body().collect().await.unwrap();
            }
        };
        for _ in 0..200 {
            send().await;
        }
        let (p50, p99) = time(n / 5, send).await;
        println!(
            "| gateway request, sequential keep-alive | {label} | {p50:.1} µs | {p99:.1} µs |"
        );
    }
    redis.delete_all().await.unwrap();
}
