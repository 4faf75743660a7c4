//! Gateway keys: authentication, credit limits under concurrency, periods, persistence, API.

use http::{Method, StatusCode};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use switchyard::catalog::{AuthConfig, KeyConfig, Usd};
use switchyard::keys::api::{credits_json, handle, key_info_json};
use switchyard::keys::hash::hash_key;
use switchyard::keys::period::days_from_civil;
use switchyard::keys::{AuthError, KeyStore, LimitReset, ReserveError};

const DAY: i64 = 86_400_000;

fn dollars(d: f64) -> Usd {
    Usd::from_dollars(d)
}

/// Unix ms of a UTC date at `hour`.
fn at(y: i64, m: u32, d: u32, hour: i64) -> i64 {
    days_from_civil(y, m, d) * DAY + hour * 3_600_000
}

fn store_with_clock(now: &Arc<AtomicI64>) -> KeyStore {
    let now = Arc::clone(now);
    KeyStore::builder()
        .clock(move || now.load(Ordering::SeqCst))
        .build()
        .expect("store")
}

#[test]
fn exactly_as_many_reservations_as_the_limit_allows() {
    let store = KeyStore::in_memory();
    let worst = dollars(0.01);
    let (_, key) = store
        .create("team-a", Some(worst * 10), LimitReset::Monthly)
        .expect("create");
    let barrier = Arc::new(Barrier::new(100));
    let granted = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..100)
        .map(|_| {
            let (store, hash) = (store.clone(), key.hash.clone());
            let (barrier, granted) = (Arc::clone(&barrier), Arc::clone(&granted));
            std::thread::spawn(move || {
                barrier.wait();
                match store.reserve(&hash, worst) {
                    Ok(hold) => {
                        granted.fetch_add(1, Ordering::SeqCst);
                        // Hold while the others try, then spend all of it.
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        hold.settle(worst);
                    }
                    Err(ReserveError::Insufficient(e)) => {
                        assert_eq!(e.needed, worst);
                        assert!(e.remaining < worst);
                    }
                    Err(e) => panic!("unexpected {e}"),
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    assert_eq!(granted.load(Ordering::SeqCst), 10);
    let info = store.get(&key.hash).expect("key");
    assert_eq!(
        info.usage.monthly,
        worst * 10,
        "spend reaches but never exceeds the limit"
    );
    assert_eq!(info.reserved, Usd::ZERO);
    assert_eq!(info.limit_remaining(), Some(Usd::ZERO));
}

#[test]
fn unsettled_reservations_are_released_on_drop() {
    let store = KeyStore::in_memory();
    let (_, key) = store
        .create("k", Some(dollars(1.0)), LimitReset::Never)
        .expect("create");
    let hold = store.reserve(&key.hash, dollars(1.0)).expect("first");
    assert_eq!(store.get(&key.hash).expect("key").reserved, dollars(1.0));
    let refused = store.reserve(&key.hash, dollars(0.01)).expect_err("full");
    assert_eq!(refused.status(), StatusCode::PAYMENT_REQUIRED);
    assert!(refused.to_string().starts_with("Key limit exceeded"));
    drop(hold); // the request failed
    let info = store.get(&key.hash).expect("key");
    assert_eq!((info.reserved, info.usage.total), (Usd::ZERO, Usd::ZERO));
    let hold = store.reserve(&key.hash, dollars(1.0)).expect("free again");
    hold.settle(dollars(0.25)); // cheaper than the worst case: the rest comes back
    assert_eq!(
        store.get(&key.hash).expect("key").limit_remaining(),
        Some(dollars(0.75))
    );
}

#[test]
fn unlimited_keys_always_reserve() {
    let store = KeyStore::in_memory();
    let (_, key) = store
        .create("free", None, LimitReset::Never)
        .expect("create");
    let hold = store.reserve(&key.hash, dollars(1e6)).expect("unlimited");
    hold.settle(dollars(2.0));
    assert_eq!(store.get(&key.hash).expect("key").usage.total, dollars(2.0));
    assert!(matches!(
        store.reserve(&"0".repeat(64), dollars(1.0)),
        Err(ReserveError::UnknownKey)
    ));
}

#[test]
fn counters_roll_over_by_utc_day_monday_week_and_month() {
    // Wednesday 2026-11-25, noon.
    let now = Arc::new(AtomicI64::new(at(2026, 11, 25, 12)));
    let store = store_with_clock(&now);
    let (_, key) = store.create("k", None, LimitReset::Never).expect("create");
    store.charge(&key.hash, dollars(1.0));
    let usage = |store: &KeyStore| store.get(&key.hash).expect("key").usage;
    let u = usage(&store);
    assert_eq!(
        (u.daily, u.weekly, u.monthly),
        (dollars(1.0), dollars(1.0), dollars(1.0))
    );

    now.store(at(2026, 11, 26, 0), Ordering::SeqCst); // Thursday
    let u = usage(&store);
    assert_eq!(
        (u.daily, u.weekly, u.monthly),
        (Usd::ZERO, dollars(1.0), dollars(1.0))
    );

    now.store(at(2026, 11, 29, 23), Ordering::SeqCst); // Sunday night: same week
    assert_eq!(usage(&store).weekly, dollars(1.0));

    now.store(at(2026, 11, 30, 0), Ordering::SeqCst); // Monday 00:00: new week
    let u = usage(&store);
    assert_eq!((u.weekly, u.monthly), (Usd::ZERO, dollars(1.0)));

    now.store(at(2026, 12, 1, 0), Ordering::SeqCst); // new month
    let u = usage(&store);
    assert_eq!((u.monthly, u.total), (Usd::ZERO, dollars(1.0)));
}

#[test]
fn a_daily_limit_frees_up_the_next_day() {
    let now = Arc::new(AtomicI64::new(at(2026, 2, 28, 23)));
    let store = store_with_clock(&now);
    let (_, key) = store
        .create("daily", Some(dollars(1.0)), LimitReset::Daily)
        .expect("create");
    store
        .reserve(&key.hash, dollars(1.0))
        .expect("room")
        .settle(dollars(1.0));
    match store.reserve(&key.hash, dollars(0.5)) {
        Err(ReserveError::Insufficient(e)) => {
            assert_eq!((e.remaining, e.limit_reset), (Usd::ZERO, LimitReset::Daily));
            assert!(e.to_string().contains("of its $1 daily limit left"), "{e}");
        }
        other => panic!("expected refusal, got {other:?}"),
    }
    now.store(at(2026, 3, 1, 0), Ordering::SeqCst);
    store
        .reserve(&key.hash, dollars(1.0))
        .expect("new day")
        .settle(Usd::ZERO);
}

/// A `[[keys]]` entry: `label`'s, changed by `edit`.
fn key_with(label: &str, edit: impl FnOnce(&mut KeyConfig)) -> KeyConfig {
    let mut key = KeyConfig::new(label);
    edit(&mut key);
    key
}

#[test]
fn config_keys_authenticate_and_disabled_ones_get_403() {
    let secret = "sk-sy-v1-configured-secret-0123456789";
    let other = "sk-sy-v1-hashed-secret-9876543210";
    let keys = [
        key_with("team", |k| {
            k.key_env = Some("TEAM_KEY".into());
            k.limit = Some(5.0);
            k.limit_reset = Some("weekly".into());
        }),
        key_with("off", |k| {
            k.key_sha256 = Some(hash_key(other).to_uppercase());
            k.disabled = true;
        }),
    ];
    let mut auth = AuthConfig::new(true);
    auth.management_key_env = Some("MGMT".into());
    let env = |var: &str| match var {
        "TEAM_KEY" => Some(secret.to_owned()),
        "MGMT" => Some("sk-sy-v1-management".to_owned()),
        _ => None,
    };
    let store = KeyStore::builder()
        .config(Some(&auth), &keys, env)
        .build()
        .expect("store");

    let info = store
        .authenticate(&format!("Bearer {secret}"))
        .expect("known");
    assert_eq!(
        (info.name.as_str(), info.limit),
        ("team", Some(dollars(5.0)))
    );
    assert_eq!(info.limit_reset, LimitReset::Weekly);
    assert_eq!(info.label, "sk-sy-v1-con…789");

    let disabled = store.authenticate(other).expect_err("disabled");
    assert_eq!(
        (disabled, disabled.status()),
        (AuthError::Disabled, StatusCode::FORBIDDEN)
    );
    let unknown = store.authenticate("sk-sy-v1-nope").expect_err("unknown");
    assert_eq!(
        (unknown, unknown.status()),
        (AuthError::Unknown, StatusCode::UNAUTHORIZED)
    );
    assert_eq!(store.authenticate("Bearer  "), Err(AuthError::Missing));
    for e in [disabled, unknown] {
        assert!(!e.to_string().contains("sk-sy"));
    }

    assert!(store.is_management_key("Bearer sk-sy-v1-management"));
    let mgmt = store
        .management_key_info("Bearer sk-sy-v1-management")
        .expect("management key");
    assert_eq!(key_info_json(&mgmt)["data"]["is_management_key"], true);
    assert!(store.management_key_info(secret).is_none());
    assert!(!store.is_management_key(secret));
    assert!(!KeyStore::in_memory().is_management_key(""));

    // Config keys are not the management API's to change.
    let (status, body) = handle(&store, &Method::DELETE, &format!("/{}", info.hash), b"");
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

#[test]
fn bad_key_config_is_named() {
    let missing_env = [key_with("a", |k| k.key_env = Some("NOPE".into()))];
    // A key whose variable is unset is left out (with a warning), like a provider whose key
    // variable is unset: the gateway still starts.
    let store = KeyStore::builder()
        .config(None, &missing_env, |_| None)
        .build()
        .expect("an unset key variable leaves the key out");
    assert_eq!(store.len(), 0);
    let bad_reset = [key_with("b", |k| {
        k.key_sha256 = Some("a".repeat(64));
        k.limit_reset = Some("yearly".into());
    })];
    let err = KeyStore::builder()
        .config(None, &bad_reset, |_| None)
        .build()
        .expect_err("bad reset");
    assert!(err.to_string().contains("yearly"), "{err}");
}

#[test]
fn debug_output_never_shows_secrets() {
    let store = KeyStore::in_memory();
    let (secret, info) = store.create("k", None, LimitReset::Never).expect("create");
    let hold = store.reserve(&info.hash, Usd::ZERO).expect("hold");
    let body = secret.trim_start_matches("sk-sy-v1-");
    for text in [
        format!("{store:?}"),
        format!("{info:?}"),
        format!("{hold:?}"),
        key_info_json(&info).to_string(),
    ] {
        assert!(!text.contains(body), "secret leaked in {text}");
    }
}

#[test]
fn management_api_round_trip() {
    let store = KeyStore::in_memory();
    let (status, created) = handle(
        &store,
        &Method::POST,
        "",
        br#"{"name": "ci", "limit": 2.5, "limit_reset": "monthly"}"#,
    );
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["key"]
        .as_str()
        .expect("secret shown once")
        .to_owned();
    let hash = created["data"]["hash"].as_str().expect("hash").to_owned();
    assert_eq!(hash, hash_key(&secret));
    assert_eq!(created["data"]["limit"], 2.5);
    assert_eq!(created["data"]["limit_reset"], "monthly");
    assert_eq!(created["data"]["usage"], 0.0);

    let (status, list) = handle(&store, &Method::GET, "/api/v1/keys", b"");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["data"][0]["hash"], hash.as_str());
    assert!(
        list["data"][0].get("key").is_none(),
        "secrets are never listed"
    );

    store.charge(&hash, dollars(0.5));
    let (status, one) = handle(&store, &Method::GET, &format!("/{hash}"), b"");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["data"]["limit_remaining"], 2.0);

    let (status, patched) = handle(
        &store,
        &Method::PATCH,
        &hash,
        br#"{"name": "ci-2", "limit": null, "disabled": true}"#,
    );
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["data"]["name"], "ci-2");
    assert_eq!(patched["data"]["limit"], serde_json::Value::Null);
    assert_eq!(patched["data"]["disabled"], true);
    assert_eq!(store.authenticate(&secret), Err(AuthError::Disabled));

    let (status, gone) = handle(&store, &Method::DELETE, &format!("/{hash}"), b"");
    assert_eq!(
        (status, gone),
        (StatusCode::OK, serde_json::json!({"deleted": true}))
    );
    assert_eq!(store.authenticate(&secret), Err(AuthError::Unknown));
    let (status, body) = handle(&store, &Method::GET, &format!("/{hash}"), b"");
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], 404);
}

#[test]
fn management_api_errors_use_the_envelope() {
    let store = KeyStore::in_memory();
    let (status, body) = handle(&store, &Method::POST, "", b"{\n  \"name\": \"x\",,\n}");
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let msg = body["error"]["message"].as_str().expect("message");
    assert!(msg.contains("line 2 column"), "{msg}");
    let (status, _) = handle(&store, &Method::POST, "", br#"{"limit": 1}"#);
    assert_eq!(status, StatusCode::BAD_REQUEST, "name is required");
    let (status, _) = handle(&store, &Method::POST, "", br#"{"name": "x", "limit": -1}"#);
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = handle(
        &store,
        &Method::POST,
        "",
        br#"{"name": "x", "limit_reset": "yearly"}"#,
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = handle(&store, &Method::PATCH, &"0".repeat(64), b"{}");
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = handle(&store, &Method::PUT, "", b"{}");
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["error"]["code"], 405);
}

#[test]
fn key_and_credits_json() {
    let store = KeyStore::in_memory();
    let (secret, _) = store
        .create("a", Some(dollars(10.0)), LimitReset::Monthly)
        .expect("create");
    let (_, unlimited) = store.create("b", None, LimitReset::Never).expect("create");
    let info = store.authenticate(&secret).expect("auth");
    store.charge(&info.hash, dollars(4.0));
    store.charge(&unlimited.hash, dollars(1.0));

    let info = store.authenticate(&secret).expect("auth");
    let v = key_info_json(&info);
    let d = &v["data"];
    assert!(d["label"].as_str().expect("label").contains('…'));
    assert_eq!(
        (d["limit"].clone(), d["limit_remaining"].clone()),
        (10.0.into(), 6.0.into())
    );
    assert_eq!(d["limit_reset"], "monthly");
    assert_eq!(
        (d["usage"].clone(), d["usage_monthly"].clone()),
        (4.0.into(), 4.0.into())
    );
    assert_eq!(d["byok_usage"], 0.0);
    assert_eq!(
        (d["is_free_tier"].clone(), d["is_management_key"].clone()),
        (false.into(), false.into())
    );
    assert_eq!(d["expires_at"], serde_json::Value::Null);

    let c = credits_json(&store);
    assert_eq!(c["data"]["total_usage"], 5.0);
    assert_eq!(
        c["data"]["total_credits"], 11.0,
        "usage + what limited keys can still spend"
    );
}

#[cfg(feature = "sqlite")]
mod persistence {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::AtomicU32;
    use switchyard::keys::SqliteKeys;
    use switchyard::ledger::{self, GenerationRecord, MeterSink};

    struct TempDb(PathBuf);

    impl Drop for TempDb {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let mut p = self.0.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
        }
    }

    fn temp_db() -> TempDb {
        static N: AtomicU32 = AtomicU32::new(0);
        TempDb(std::env::temp_dir().join(format!(
            "switchyard-keys-{}-{}-{}.db",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            ledger::now_ms()
        )))
    }

    fn open(db: &TempDb, config: &[KeyConfig], env: &str) -> KeyStore {
        let env = env.to_owned();
        KeyStore::builder()
            .persistence(Arc::new(SqliteKeys::open(&db.0).expect("keys table")))
            .config(None, config, move |_| Some(env.clone()))
            .build()
            .expect("store")
    }

    #[test]
    fn managed_keys_and_usage_survive_a_restart_as_hashes_only() {
        let db = temp_db();
        let config_secret = "sk-sy-v1-from-the-config-file-000000";
        let config = [key_with("cfg", |k| k.key_env = Some("K".into()))];
        // The ledger shares the database file.
        let ledger_sink = ledger::open(&db.0).expect("ledger");
        let (secret, hash) = {
            let store = open(&db, &config, config_secret);
            let (secret, info) = store
                .create("managed", Some(dollars(3.0)), LimitReset::Daily)
                .expect("create");
            store
                .reserve(&info.hash, dollars(1.0))
                .expect("hold")
                .settle(dollars(0.75));
            let cfg = store.authenticate(config_secret).expect("config key");
            store.charge(&cfg.hash, dollars(0.5));
            ledger_sink.record(GenerationRecord {
                id: "gen-1".into(),
                ..GenerationRecord::default()
            });
            (secret, info.hash)
        };
        ledger_sink.flush();

        let store = open(&db, &config, config_secret);
        let info = store.authenticate(&secret).expect("managed key survived");
        assert_eq!(info.hash, hash);
        assert_eq!(info.usage.total, dollars(0.75));
        assert_eq!(info.limit_remaining(), Some(dollars(2.25)));
        let cfg = store.authenticate(config_secret).expect("config key");
        assert_eq!(
            cfg.usage.total,
            dollars(0.5),
            "config keys keep their usage"
        );
        assert!(ledger_sink.get("gen-1").is_some());

        let mut bytes = std::fs::read(&db.0).expect("db");
        let mut wal = db.0.clone().into_os_string();
        wal.push("-wal");
        bytes.extend(std::fs::read(wal).unwrap_or_default());
        let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
        assert!(contains(&hash), "the hash is stored");
        assert!(
            !contains(secret.trim_start_matches("sk-sy-v1-")),
            "the secret is not"
        );
        assert!(!contains("from-the-config-file"), "nor the config key");
    }

    #[test]
    fn deleted_keys_stay_deleted() {
        let db = temp_db();
        let hash = {
            let store = open(&db, &[], "");
            let (_, info) = store.create("x", None, LimitReset::Never).expect("create");
            assert!(store.delete(&info.hash).expect("delete"));
            info.hash
        };
        assert!(open(&db, &[], "").get(&hash).is_none());
    }
}
