//! The shared-state phase: what sharing credits and per-minute limits through Redis costs a
//! request, against the same gateway keeping them in process.
//!
//! Runs when `SWITCHYARD_BENCH_REDIS` names a Redis (`scripts/bench` sets it, and builds with
//! the `redis` feature, when `SWITCHYARD_BENCH_REDIS` is exported). Two more gateways (10
//! models) start with the same key — a limit, `rpm` and `tpm`, so every check runs — one with
//! its state in process, one with `[state] redis_url`; both serve 1 KB non-streaming requests
//! on that key at concurrency 1 and 64, in interleaved rounds like the load matrix. Their keys
//! in Redis live under a prefix of this run's own, deleted afterwards.

use super::{Child, Load, Stats, body, catalogue_toml, load_client, run_for};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::Duration;

/// The key both gateways accept (only its hash is in their configs).
const KEY: &str = "sk-bench-shared-state";

/// One concurrency: the in-process gateway's stats, then the Redis one's.
pub(super) struct Row {
    concurrency: usize,
    local: Stats,
    redis: Stats,
    /// Redis's own CPU seconds (`INFO cpu`) while it served the Redis gateway's rounds.
    redis_cpu: Option<f64>,
}

/// The phase's result, or why it did not run.
pub(super) type Outcome = Result<Vec<Row>, String>;

/// Runs the phase; `None` when no Redis is given.
pub(super) async fn run(
    upstream: &Child,
    dir: &Path,
    filter: &str,
    quick: bool,
) -> Option<Outcome> {
    let url = std::env::var("SWITCHYARD_BENCH_REDIS")
        .ok()
        .filter(|u| !u.is_empty())?;
    if !"shared c=1 c=64".contains(filter) {
        return None;
    }
    if !cfg!(feature = "redis") {
        return Some(Err(format!(
            "SWITCHYARD_BENCH_REDIS={url} is set but the bench was built without the `redis` \
             feature (`cargo bench --bench gateway --features redis`)"
        )));
    }
    let prefix = format!("switchyard-bench-{}:", std::process::id());
    let hash = hex::encode(Sha256::digest(KEY.as_bytes()));
    let keys = format!(
        "\n[auth]\nrequired = true\n\n[[keys]]\nlabel = \"bench\"\nkey_sha256 = \"{hash}\"\n\
         limit = 1000000\nrpm = 100000000\ntpm = 100000000000\n"
    );
    let local_toml = format!("{}{keys}", catalogue_toml(upstream.addr, 10));
    let redis_toml =
        format!("{local_toml}\n[state]\nredis_url = \"{url}\"\nkey_prefix = \"{prefix}\"\n");
    let mut gateways = Vec::new();
    for (name, toml) in [
        ("gateway-keys", &local_toml),
        ("gateway-redis", &redis_toml),
    ] {
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, toml).expect("write config");
        gateways.push(Child::spawn(name, "gateway", path.to_str().expect("utf-8")));
    }
    eprintln!("shared state: the same key in process and in Redis at {url} …");
    let (rounds, round, warmup) = if quick {
        (1, Duration::from_millis(400), Duration::from_millis(100))
    } else {
        (3, Duration::from_millis(1200), Duration::from_millis(250))
    };
    let auth = http::HeaderValue::from_str(&format!("Bearer {KEY}")).expect("header");
    let loads: Vec<Load> = gateways
        .iter()
        .map(|g| Load {
            client: load_client(),
            uri: format!("http://{}/api/v1/chat/completions", g.addr)
                .parse()
                .expect("uri"),
            body: body("bench/target", false, 1024),
            stream: false,
            auth: Some(auth.clone()),
        })
        .collect();
    let mut rows = Vec::new();
    for concurrency in [1, 64] {
        for load in &loads {
            let s = run_for(load, concurrency, warmup).await;
            if s.errors > 0 {
                cleanup(&url, &prefix).await;
                return Some(Err(format!(
                    "warm-up requests failed: {}",
                    s.first_error.as_deref().unwrap_or("?")
                )));
            }
        }
        let mut stats = [Stats::new(), Stats::new()];
        let mut redis_cpu = Some(0.0);
        for r in 0..rounds {
            for k in 0..2 {
                let i = (k + r) % 2;
                let cpu = gateways[i].cpu_seconds();
                let before = if i == 1 {
                    redis_cpu_seconds(&url).await
                } else {
                    None
                };
                let mut s = run_for(&loads[i], concurrency, round).await;
                s.cpu = gateways[i].cpu_seconds() - cpu;
                if i == 1 {
                    redis_cpu = match (redis_cpu, before, redis_cpu_seconds(&url).await) {
                        (Some(sum), Some(b), Some(a)) => Some(sum + a - b),
                        _ => None,
                    };
                }
                stats[i].merge(&s);
            }
        }
        let [local, redis] = stats;
        rows.push(Row {
            concurrency,
            local,
            redis,
            redis_cpu,
        });
    }
    drop(gateways);
    cleanup(&url, &prefix).await;
    Some(Ok(rows))
}

/// Redis's CPU seconds so far (system + user, from `INFO cpu`): what the scripts cost it.
#[cfg(feature = "redis")]
async fn redis_cpu_seconds(url: &str) -> Option<f64> {
    let client = redis::Client::open(url).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .query_async(&mut conn)
        .await
        .ok()?;
    let field = |name: &str| -> Option<f64> {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
    };
    Some(field("used_cpu_sys:")? + field("used_cpu_user:")?)
}

#[cfg(not(feature = "redis"))]
async fn redis_cpu_seconds(_: &str) -> Option<f64> {
    None
}

/// Deletes what the Redis gateway wrote under this run's prefix.
#[cfg(feature = "redis")]
async fn cleanup(url: &str, prefix: &str) {
    let Ok(client) = redis::Client::open(url) else {
        return;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        eprintln!("shared state: could not connect to {url} to delete keys under {prefix}");
        return;
    };
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<(), _> = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await;
    }
}

#[cfg(not(feature = "redis"))]
async fn cleanup(_: &str, _: &str) {}

/// Prints the phase's table (or why it did not run).
pub(super) fn report(outcome: Option<&Outcome>) {
    let Some(outcome) = outcome else {
        println!(
            "\n(The shared-state phase did not run: export SWITCHYARD_BENCH_REDIS=redis://… to \
             measure credits and limits in Redis against in process.)"
        );
        return;
    };
    println!("\n## Shared state: the same key's credits and limits in process and in Redis\n");
    let rows = match outcome {
        Ok(rows) => rows,
        Err(why) => {
            println!("Not measured: {why}");
            return;
        }
    };
    println!(
        "1 KB non-streaming requests on a key with a limit, `rpm` and `tpm` (10-model gateways).\n"
    );
    println!(
        "| conc | state | RPS | p50 | p99 | gateway CPU µs/req | Redis CPU µs/req | errors | RPS ÷ in process | p50 − in process (ms) | gateway CPU ÷ in process |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        for (name, s) in [("in process", &row.local), ("Redis", &row.redis)] {
            let ms = |us: u64| us as f64 / 1000.0;
            let (ratio_rps, added, ratio_cpu) = if std::ptr::eq(s, &row.local) {
                ("1.00×".to_owned(), String::new(), "1.00×".to_owned())
            } else {
                (
                    format!("{:.2}×", s.rps() / row.local.rps().max(1e-9)),
                    format!(
                        "{:+.3}",
                        ms(s.latency.value_at_quantile(0.5))
                            - ms(row.local.latency.value_at_quantile(0.5))
                    ),
                    format!(
                        "{:.2}×",
                        s.cpu_per_request() / row.local.cpu_per_request().max(1e-9)
                    ),
                )
            };
            let redis_cpu = match row.redis_cpu {
                Some(cpu) if !std::ptr::eq(s, &row.local) => {
                    format!("{:.0}", cpu * 1e6 / (s.requests.max(1) as f64))
                }
                _ => String::new(),
            };
            println!(
                "| {} | {name} | {:.0} | {:.3} | {:.3} | {:.0} | {redis_cpu} | {} | {ratio_rps} | {added} | {ratio_cpu} |",
                row.concurrency,
                s.rps(),
                ms(s.latency.value_at_quantile(0.5)),
                ms(s.latency.value_at_quantile(0.99)),
                s.cpu_per_request(),
                s.errors,
            );
        }
    }
}
