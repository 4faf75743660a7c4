//! The generation ledger in PostgreSQL (feature `postgres`), shared by three gateway instances:
//! migrations run once whoever starts first, and a generation served by one instance is found
//! through another, `api_type` included.
//!
//! Needs PostgreSQL on 127.0.0.1:5432 with trust auth for `postgres` (`.ci/run` starts it).
//! Each test makes its own database `switchyard_test_<random>` and drops it after. Set
//! `SWITCHYARD_SKIP_SERVICES=1` to skip when no server can be had; otherwise a missing server
//! fails the test loudly.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)] // panicking is how tests fail

mod support;

use std::time::Duration;
use support::postgres::TestDb;
use support::{Models, config_toml, get, post_json, start_fake};
use switchyard::test_util;
use tokio_postgres::NoTls;

const MODELS: Models<'static> = &[("m/one", &[("ok", 1.0, 2.0)])];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generation_served_by_one_instance_is_found_through_another() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let (addr, _fake) = start_fake().await;
    let extra = format!(
        "\n[ledger]\npostgres_url = \"{}\"\npostgres_pool = 2\n",
        db.url()
    );
    let cfg = config_toml(addr, MODELS, &extra);
    // Built on blocking threads: opening the ledger connects and migrates synchronously.
    let mut urls = Vec::new();
    for _ in 0..3 {
        let cfg = cfg.clone();
        let gw = tokio::task::spawn_blocking(move || test_util::gateway_with_vars(&cfg, &[]))
            .await
            .unwrap();
        urls.push(format!(
            "http://{}/api/v1",
            test_util::start_gateway(gw).await
        ));
    }
    let body = r#"{"model":"m/one","messages":[{"role":"user","content":"hi"}]}"#;
    let (status, _, text) = post_json(&format!("{}/chat/completions", urls[0]), body, &[]).await;
    assert_eq!(status, 200, "{text}");
    let reply: serde_json::Value = serde_json::from_str(&text).unwrap();
    let id = reply["id"].as_str().unwrap().to_owned();
    let mut found = None;
    for _ in 0..40 {
        let (status, record) = get(&format!("{}/generation?id={id}", urls[2])).await;
        if status == 200 {
            found = Some(record);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let record: serde_json::Value =
        serde_json::from_str(&found.expect("found via instance 2")).unwrap();
    assert_eq!(record["data"]["id"], id.as_str());
    assert_eq!(record["data"]["api_type"], "completions");
    assert_eq!(record["data"]["tokens_prompt"], 12);
    // The columns are queryable too, and the migration ran once for three instances.
    let (client, conn) = tokio_postgres::connect(&db.url(), NoTls).await.unwrap();
    tokio::spawn(conn);
    let row = client
        .query_one(
            "SELECT api_type, model FROM generations WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, &str>(0), row.get::<_, &str>(1)),
        ("completions", "m/one")
    );
    let migrations: i64 = client
        .query_one("SELECT COUNT(*) FROM switchyard_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(migrations, 2, "0001_generations and 0002_keys, once each");
    drop(client);
    db.drop_it().await;
}

#[tokio::test]
async fn an_unreachable_postgres_is_a_config_error_naming_it() {
    let (addr, _fake) = start_fake().await;
    let extra = "\n[ledger]\npostgres_url = \"postgres://postgres@127.0.0.1:9/none\"\n";
    let cfg = switchyard::catalog::Config::parse(
        std::path::Path::new("pg.toml"),
        &config_toml(addr, MODELS, extra),
    )
    .unwrap();
    let err = tokio::task::spawn_blocking(move || {
        switchyard::server::Gateway::from_config_with_env(cfg, std::path::Path::new("."), &|_| None)
            .unwrap_err()
    })
    .await
    .unwrap();
    let shown = err.to_string();
    assert!(
        shown.contains("postgres_url") && shown.contains("127.0.0.1:9"),
        "{shown}"
    );
}
