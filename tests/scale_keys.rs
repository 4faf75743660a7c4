//! Managed keys and their spend in PostgreSQL (feature `postgres`), shared by three gateway
//! instances: a key created through one works at once on the others, its spend shows as the
//! deployment-wide total on every instance, a key disabled or deleted on one stops working on
//! the others within the poll interval, a restarted instance keeps keys and spend, and while
//! PostgreSQL is away known keys keep working, an unknown one is 503 and spend waits.
//!
//! Needs PostgreSQL on 127.0.0.1:5432 with trust auth for `postgres` (`.ci/run` starts it).
//! Each test makes its own database `switchyard_test_<random>` and drops it after. Set
//! `SWITCHYARD_SKIP_SERVICES=1` to skip when no server can be had; otherwise a missing server
//! fails the test loudly.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)] // panicking is how tests fail

mod support;

use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::postgres::TestDb;
use support::{request, send, start_fake};
use switchyard::catalog::Usd;
use switchyard::keys::{KeyPersistence, KeyStore, LimitReset, PostgresKeys};
use switchyard::test_util;

const MGMT: &str = "sk-sy-v1-management-for-tests";
/// The poll interval the instances are configured with.
const POLL_MS: u64 = 200;
/// Each request costs exactly this (a per-request price, no token prices).
const PER_REQUEST: f64 = 0.01;

/// A gateway config over the fake: one model at `PER_REQUEST` a request, keys required, the
/// management API on, keys and ledger in the PostgreSQL at `url`.
fn config(fake: SocketAddr, url: &str) -> String {
    format!(
        "[server]\nkeepalive_ms = 300\n\n\
         [[providers]]\nslug = \"p-ok\"\nbase_url = \"http://{fake}/ok/v1\"\n\
         timeouts = {{ connect_ms = 1000, first_byte_ms = 2000, idle_ms = 1000, total_ms = 10000 }}\n\n\
         [[models]]\nslug = \"m/one\"\ncontext_length = 100000\n\
         [[models.endpoints]]\nprovider = \"p-ok\"\nmodel = \"up-ok\"\n\
         pricing = {{ request = {PER_REQUEST}, prompt = 0, completion = 0 }}\n\n\
         [auth]\nrequired = true\nmanagement_key_env = \"MGMT\"\nkeys_poll_ms = {POLL_MS}\n\n\
         [ledger]\npostgres_url = \"{url}\"\npostgres_pool = 1\n"
    )
}

/// A running instance that can be shut down gracefully.
struct Instance {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Instance {
    /// Builds (on a blocking thread: opening PostgreSQL connects and migrates) and serves.
    async fn start(cfg: &str) -> Instance {
        let cfg = cfg.to_owned();
        let gw = tokio::task::spawn_blocking(move || {
            test_util::gateway_with_vars(&cfg, &[("MGMT", MGMT)])
        })
        .await
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api/v1", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let done = tokio::spawn(gw.serve(listener, async move {
            let _ = stopped.await;
        }));
        Instance {
            url,
            stop: Some(stop),
            done,
        }
    }

    async fn shut_down(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.done).await.unwrap().unwrap();
    }
}

async fn three(cfg: &str) -> Vec<Instance> {
    let mut out = Vec::new();
    for _ in 0..3 {
        out.push(Instance::start(cfg).await);
    }
    out
}

/// Creates a managed key through `url`'s management API: its secret and hash.
async fn create_key(url: &str, name: &str) -> (String, String) {
    let (status, body) = request(
        &format!("{url}/keys"),
        "POST",
        &format!(r#"{{"name":"{name}","limit":100}}"#),
        &format!("Bearer {MGMT}"),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    (
        v["key"].as_str().unwrap().to_owned(),
        v["data"]["hash"].as_str().unwrap().to_owned(),
    )
}

/// One chat completion with `secret`: the status and the body.
async fn ask(url: &str, secret: &str) -> (u16, String) {
    let (status, _, body) = send(
        &format!("{url}/chat/completions"),
        "POST",
        r#"{"model":"m/one","messages":[{"role":"user","content":"hi"}],"max_tokens":5}"#,
        &[("authorization", &format!("Bearer {secret}"))],
    )
    .await;
    (status.as_u16(), body)
}

/// `GET /api/v1/key` for `secret` on `url`: its `usage` in USD.
async fn usage(url: &str, secret: &str) -> f64 {
    let (status, body) = request(
        &format!("{url}/key"),
        "GET",
        "",
        &format!("Bearer {secret}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["data"]["usage"].as_f64().unwrap()
}

/// Waits (up to `within`) until `check` holds; returns how long that took.
async fn eventually<F, Fut>(within: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < within {
        if check().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_created_on_one_instance_works_on_all_and_its_spend_adds_up() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let (addr, _fake) = start_fake().await;
    let gws = three(&config(addr, &db.url())).await;
    let (secret, hash) = create_key(&gws[0].url, "shared").await;
    // At once, before any poll could have brought it: the others look it up.
    for gw in &gws[1..] {
        let (status, body) = ask(&gw.url, &secret).await;
        assert_eq!(status, 200, "{body}");
    }
    // Seven more, spread over the three: nine in all.
    for i in 0..7 {
        let (status, body) = ask(&gws[i % 3].url, &secret).await;
        assert_eq!(status, 200, "{body}");
    }
    let total = 9.0 * PER_REQUEST;
    for gw in &gws {
        let took = eventually(Duration::from_secs(5), || async {
            close(usage(&gw.url, &secret).await, total)
        })
        .await;
        let shown = usage(&gw.url, &secret).await;
        assert!(took.is_some(), "{} shows {shown}, not {total}", gw.url);
        println!("deployment-wide spend on {} after {took:?}", gw.url);
    }
    // The management listing shows it too, and PostgreSQL holds exactly that many picodollars.
    let (status, body) = request(
        &format!("{}/keys/{hash}", gws[2].url),
        "GET",
        "",
        &format!("Bearer {MGMT}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(close(v["data"]["usage"].as_f64().unwrap(), total), "{body}");
    assert!(
        close(
            v["data"]["limit_remaining"].as_f64().unwrap(),
            100.0 - total
        ),
        "{body}"
    );
    let row = db
        .client()
        .await
        .query_one(
            "SELECT usage_total, managed FROM api_keys WHERE hash = $1",
            &[&hash],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), Usd::from_dollars(total).picodollars());
    assert!(row.get::<_, bool>(1));
    for gw in gws {
        gw.shut_down().await;
    }
    db.drop_it().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_disabled_or_deleted_on_one_instance_is_refused_by_the_others() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let (addr, _fake) = start_fake().await;
    let gws = three(&config(addr, &db.url())).await;
    let (off, off_hash) = create_key(&gws[0].url, "to-disable").await;
    let (gone, gone_hash) = create_key(&gws[0].url, "to-delete").await;
    // Known (cached) everywhere first.
    for gw in &gws {
        assert_eq!(ask(&gw.url, &off).await.0, 200);
        assert_eq!(ask(&gw.url, &gone).await.0, 200);
    }
    let mgmt = format!("Bearer {MGMT}");
    let (status, body) = request(
        &format!("{}/keys/{off_hash}", gws[1].url),
        "PATCH",
        r#"{"disabled":true}"#,
        &mgmt,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = request(
        &format!("{}/keys/{gone_hash}", gws[1].url),
        "DELETE",
        "",
        &mgmt,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Refused on the instance that made the change at once, and on the others within the
    // poll interval (with room for a loaded machine).
    assert_eq!(ask(&gws[1].url, &off).await.0, 403);
    assert_eq!(ask(&gws[1].url, &gone).await.0, 401);
    let within = Duration::from_millis(POLL_MS * 10);
    for gw in [&gws[0], &gws[2]] {
        let took = eventually(within, || async { ask(&gw.url, &off).await.0 == 403 }).await;
        assert!(took.is_some(), "the disabled key still works on {}", gw.url);
        println!("disabled key refused on {} after {took:?}", gw.url);
        let took = eventually(within, || async { ask(&gw.url, &gone).await.0 == 401 }).await;
        assert!(took.is_some(), "the deleted key still works on {}", gw.url);
        println!("deleted key refused on {} after {took:?}", gw.url);
        // The listing no longer has it either.
        let (_, list) = request(&format!("{}/keys", gw.url), "GET", "", &mgmt).await;
        assert!(!list.contains(&gone_hash), "{list}");
    }
    // Enabled again on instance 3: works on 1 again.
    let (status, _) = request(
        &format!("{}/keys/{off_hash}", gws[2].url),
        "PATCH",
        r#"{"disabled":false}"#,
        &mgmt,
    )
    .await;
    assert_eq!(status, 200);
    let took = eventually(within, || async { ask(&gws[0].url, &off).await.0 == 200 }).await;
    assert!(took.is_some(), "the re-enabled key is still refused");
    for gw in gws {
        gw.shut_down().await;
    }
    db.drop_it().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_instance_keeps_the_keys_and_their_spend() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let (addr, _fake) = start_fake().await;
    let cfg = config(addr, &db.url());
    let mut gws = three(&cfg).await;
    let (secret, _) = create_key(&gws[1].url, "kept").await;
    for gw in &gws {
        assert_eq!(ask(&gw.url, &secret).await.0, 200);
    }
    // Spent on instance 1 and shut down at once: the spend waiting in memory is written at
    // shutdown, not lost.
    assert_eq!(ask(&gws[0].url, &secret).await.0, 200);
    gws.remove(0).shut_down().await;
    let again = Instance::start(&cfg).await;
    let total = 4.0 * PER_REQUEST;
    // Loaded at start: known at once, with every instance's spend.
    let took = eventually(Duration::from_secs(5), || async {
        close(usage(&again.url, &secret).await, total)
    })
    .await;
    assert!(
        took.is_some(),
        "restarted: {}",
        usage(&again.url, &secret).await
    );
    assert_eq!(ask(&again.url, &secret).await.0, 200);
    again.shut_down().await;
    for gw in gws {
        gw.shut_down().await;
    }
    db.drop_it().await;
}

/// A TCP relay to PostgreSQL that the test can cut and restore, on a fixed local port.
struct Relay {
    addr: SocketAddr,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Relay {
    async fn start() -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay = Relay {
            addr: listener.local_addr().unwrap(),
            tasks: Arc::default(),
        };
        relay.serve(listener);
        relay
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let tasks = Arc::clone(&self.tasks);
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect("127.0.0.1:5432").await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tasks.lock().unwrap().push(conn);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// Closes every relayed connection and stops listening.
    fn cut(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    async fn restore(&self) {
        // The port was ours a moment ago; retry while the kernel lets it go.
        for _ in 0..50 {
            if let Ok(l) = tokio::net::TcpListener::bind(self.addr).await {
                return self.serve(l);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("could not listen on {} again", self.addr);
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@{}/{db}", self.addr)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_postgres_is_away_known_keys_work_unknown_ones_get_503_and_spend_waits() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let (addr, _fake) = start_fake().await;
    let relay = Relay::start().await;
    let cut_off = Instance::start(&config(addr, &relay.url(db.name()))).await;
    let direct = Instance::start(&config(addr, &db.url())).await;
    let (known, hash) = create_key(&cut_off.url, "known").await;
    assert_eq!(ask(&cut_off.url, &known).await.0, 200);

    relay.cut();
    // Made after the cut, so the cut-off instance cannot have polled it.
    let (unknown, _) = create_key(&direct.url, "unknown-there").await;
    for _ in 0..3 {
        let (status, body) = ask(&cut_off.url, &known).await;
        assert_eq!(status, 200, "a known key keeps working: {body}");
    }
    let (status, body) = ask(&cut_off.url, &unknown).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("PostgreSQL at postgres://postgres@127.0.0.1"),
        "{body}"
    );
    // A key that exists nowhere is not admitted either: it cannot be checked.
    let (status, _) = ask(&cut_off.url, "sk-sy-v1-never-made").await;
    assert_eq!(status, 503);
    // A change that cannot be stored is refused and does not take effect here either.
    let mgmt = format!("Bearer {MGMT}");
    let (status, body) = request(
        &format!("{}/keys/{hash}", cut_off.url),
        "PATCH",
        r#"{"disabled":true}"#,
        &mgmt,
    )
    .await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("PostgreSQL at"), "{body}");
    let (status, body) =
        request(&format!("{}/keys/{hash}", cut_off.url), "DELETE", "", &mgmt).await;
    assert_eq!(status, 500, "{body}");
    let (status, body) = ask(&cut_off.url, &known).await;
    assert_eq!(
        status, 200,
        "neither the disabling nor the deletion took effect: {body}"
    );

    relay.restore().await;
    // The five requests' spend reaches PostgreSQL once it is back; the unknown key works.
    let pg = db.client().await;
    let want = Usd::from_dollars(5.0 * PER_REQUEST).picodollars();
    let took = eventually(Duration::from_secs(10), || async {
        let row = pg
            .query_one("SELECT usage_total FROM api_keys WHERE hash = $1", &[&hash])
            .await
            .unwrap();
        row.get::<_, i64>(0) == want
    })
    .await;
    assert!(
        took.is_some(),
        "the spend made while PostgreSQL was away was not written"
    );
    println!("spend written {took:?} after PostgreSQL came back");
    assert_eq!(ask(&cut_off.url, &unknown).await.0, 200);
    cut_off.shut_down().await;
    direct.shut_down().await;
    drop(pg);
    db.drop_it().await;
}

/// The SQL side alone: increments from two stores add up, each period's counter restarts when
/// its period moves on, and a late increment for a period already over counts only in the total.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spend_increments_from_two_stores_add_up_period_by_period() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let url = db.url();
    let (a, b) = tokio::task::spawn_blocking(move || {
        let open = || Arc::new(PostgresKeys::open(&url).unwrap());
        (open(), open())
    })
    .await
    .unwrap();
    let day = 86_400_000_i64;
    // Monday 2026-12-07, 10:00 UTC, and the next day.
    let monday = 1_796_637_600_000_i64;
    let clock = Arc::new(std::sync::atomic::AtomicI64::new(monday));
    let (pa, pb) = (Arc::clone(&a), Arc::clone(&b));
    let c = Arc::clone(&clock);
    let rows = tokio::task::spawn_blocking(move || {
        let store = |p: Arc<PostgresKeys>| {
            let c = Arc::clone(&c);
            KeyStore::builder()
                .persistence(p)
                .clock(move || c.load(std::sync::atomic::Ordering::SeqCst))
                .sync_every(Duration::from_secs(3600))
                .build()
                .unwrap()
        };
        let (sa, sb) = (store(pa.clone()), store(pb.clone()));
        let (_, key) = sa
            .create("two", Some(Usd::from_dollars(10.0)), LimitReset::Daily)
            .unwrap();
        sb.sync().unwrap();
        assert!(sb.get(&key.hash).is_some(), "created on a, seen by b");
        sa.charge(&key.hash, Usd::from_dollars(1.0));
        sb.charge(&key.hash, Usd::from_dollars(2.0));
        pa.flush();
        pb.flush();
        let first = pa.load().unwrap();
        // The next day: b spends; then a spends late, stamped on the day before.
        c.store(monday + day, std::sync::atomic::Ordering::SeqCst);
        sb.charge(&key.hash, Usd::from_dollars(0.5));
        pb.flush();
        c.store(monday, std::sync::atomic::Ordering::SeqCst);
        sa.charge(&key.hash, Usd::from_dollars(0.25));
        pa.flush();
        (first, pa.load().unwrap())
    })
    .await
    .unwrap();
    let (first, last) = rows;
    let u = first[0].usage;
    assert_eq!(
        (u.total, u.daily),
        (Usd::from_dollars(3.0), Usd::from_dollars(3.0))
    );
    let u = last[0].usage;
    assert_eq!(u.total, Usd::from_dollars(3.75));
    assert_eq!(
        u.daily,
        Usd::from_dollars(0.5),
        "the new day counts only its own spend"
    );
    assert_eq!(u.day_start, monday + day - (monday + day) % day);
    assert_eq!(u.weekly, Usd::from_dollars(3.75), "one week: everything");
    drop((a, b));
    db.drop_it().await;
}

/// Redis lost its counters (restarted without persistence): the spend counter is seeded from
/// the deployment-wide spend in PostgreSQL, even on an instance that never served the key.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_redis_spend_counter_is_seeded_with_the_deployment_wide_spend() {
    use switchyard::catalog::StateConfig;
    use switchyard::state::redis::RedisState;
    const REDIS_URL: &str = "redis://127.0.0.1:6379";
    let Some(db) = TestDb::create().await else {
        return;
    };
    let prefix = format!("switchyard_test_{:016x}:", rand::random::<u64>());
    let mut state = StateConfig::redis(REDIS_URL);
    state.key_prefix = prefix.clone();
    let redis = RedisState::new(&state).unwrap();
    if let Err(e) = redis.connection().await {
        if std::env::var("SWITCHYARD_SKIP_SERVICES").as_deref() == Ok("1") {
            println!("SKIPPED: no Redis at {REDIS_URL} ({e}); SWITCHYARD_SKIP_SERVICES=1");
            return db.drop_it().await;
        }
        panic!("Redis is needed at {REDIS_URL} (or set SWITCHYARD_SKIP_SERVICES=1): {e}");
    }
    let (addr, _fake) = start_fake().await;
    let cfg = format!(
        "{}\n[state]\nredis_url = \"{REDIS_URL}\"\nkey_prefix = \"{prefix}\"\ntimeout_ms = 1000\n",
        config(addr, &db.url())
    );
    let gws = three(&cfg).await;
    let (secret, hash) = create_key(&gws[0].url, "seeded").await;
    for gw in [&gws[0], &gws[1], &gws[0]] {
        assert_eq!(ask(&gw.url, &secret).await.0, 200);
    }
    let before = 3.0 * PER_REQUEST;
    let synced = eventually(Duration::from_secs(5), || async {
        close(usage(&gws[2].url, &secret).await, before)
    })
    .await;
    assert!(synced.is_some(), "instance 3 never saw the others' spend");
    redis.delete_all().await.unwrap();
    assert_eq!(ask(&gws[2].url, &secret).await.0, 200);
    let want = Usd::from_dollars(4.0 * PER_REQUEST)
        .picodollars()
        .to_string();
    let spend_key = format!("{prefix}spend:{hash}:total");
    let landed = eventually(Duration::from_secs(5), || async {
        let mut c = redis.connection().await.unwrap();
        let v: Option<String> = redis::cmd("GET")
            .arg(&spend_key)
            .query_async(&mut c)
            .await
            .unwrap();
        v.as_deref() == Some(want.as_str())
    })
    .await;
    let mut c = redis.connection().await.unwrap();
    let shown: Option<String> = redis::cmd("GET")
        .arg(&spend_key)
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(landed.is_some(), "Redis holds {shown:?}, not {want}");
    redis.delete_all().await.unwrap();
    for gw in gws {
        gw.shut_down().await;
    }
    db.drop_it().await;
}
