//! `openrouter/auto` through the whole gateway.
#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use serde_json::Value;
use support::*;

async fn gateway(cheap_scenario: &str, extra: &str) -> String {
    let (addr, _) = start_fake().await;
    let auto = format!(
        "[auto]\nmodels = [{{ slug = \"acme/cheap\", tier = 0 }}, {{ slug = \"acme/strong\", tier = 1 }}]\n{extra}"
    );
    start_gateway(&config_toml(
        addr,
        &[
            ("acme/cheap", &[(cheap_scenario, 0.1, 0.2)]),
            ("acme/strong", &[("ok", 5.0, 15.0)]),
        ],
        &auto,
    ))
    .await
}

async fn ask(url: &str, body: &str) -> (u16, Value) {
    let (s, _, b) = post_json(
        &format!("{url}/chat/completions"),
        body,
        &[("x-openrouter-metadata", "enabled")],
    )
    .await;
    (s.as_u16(), serde_json::from_str(&b).unwrap())
}

const HI: &str = r#"{"model":"openrouter/auto","messages":[{"role":"user","content":"hi"}]}"#;

#[tokio::test]
async fn easy_prompt_goes_to_the_cheap_tier_and_says_so() {
    let url = gateway("ok", "strong_share = 0.3\n").await;
    let (s, v) = ask(&url, HI).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["model"], "acme/cheap");
    let meta = &v["openrouter_metadata"];
    assert_eq!(meta["strategy"], "auto");
    assert_eq!(meta["requested"], "openrouter/auto");
    assert_eq!(meta["pipeline"][0]["type"], "router");
    assert!(meta["pipeline"][0]["data"]["score"].as_f64().unwrap() < 0.5);
    let id = v["id"].as_str().unwrap();
    let (_, g) = get(&format!("{url}/generation?id={id}")).await;
    let g: Value = serde_json::from_str(&g).unwrap();
    assert_eq!(g["data"]["strategy"], "auto");
    assert_eq!(g["data"]["router"], "openrouter/auto");
    assert!(g["data"]["autoroute_score"].is_number(), "{g}");
}

#[tokio::test]
async fn the_cost_knob_moves_calls_to_the_strong_tier() {
    let url = gateway("ok", "strong_share = 1.0\n").await;
    let (_, v) = ask(&url, HI).await;
    assert_eq!(v["model"], "acme/strong");
    // The plugin's cost_tier overrides the configured share.
    let body = r#"{"model":"openrouter/auto","plugins":[{"id":"auto-router","cost_tier":"low"}],"messages":[{"role":"user","content":"hi"}]}"#;
    let (_, v) = ask(&url, body).await;
    assert_eq!(v["model"], "acme/cheap");
}

#[tokio::test]
async fn allowed_and_excluded_models_narrow_the_choice() {
    let url = gateway("ok", "strong_share = 1.0\n").await;
    let body = r#"{"model":"openrouter/auto","plugins":[{"id":"auto-router","allowed_models":["acme/*"],"excluded_models":["*/strong"]}],"messages":[{"role":"user","content":"hi"}]}"#;
    let (_, v) = ask(&url, body).await;
    assert_eq!(v["model"], "acme/cheap");
    let body = r#"{"model":"openrouter/auto","plugins":[{"id":"auto-router","allowed_models":["other/*"]}],"messages":[{"role":"user","content":"hi"}]}"#;
    let (s, v) = ask(&url, body).await;
    assert_eq!(s, 404);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("No models match"),
        "{v}"
    );
}

#[tokio::test]
async fn an_exhausted_choice_escalates_one_tier_never_down() {
    let url = gateway("status-503", "strong_share = 0.0\n").await;
    let (s, v) = ask(&url, HI).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["model"], "acme/strong");
    assert_eq!(v["openrouter_metadata"]["attempts"][0]["status"], 503);
}

#[tokio::test]
async fn bad_auto_config_is_refused_at_start() {
    let (addr, _) = start_fake().await;
    let text = config_toml(
        addr,
        &[("acme/cheap", &[("ok", 0.1, 0.2)])],
        "[auto]\nmodels = [{ slug = \"nope/x\", tier = 0 }]\n",
    );
    let cfg = switchyard::catalog::Config::parse(std::path::Path::new("bad.toml"), &text).unwrap();
    let err = switchyard::server::Gateway::from_config(cfg, std::path::Path::new(".")).unwrap_err();
    assert!(err.to_string().contains("nope/x"), "{err}");
}

#[tokio::test]
async fn a_conversation_keeps_its_model() {
    let url = gateway("ok", "strong_share = 1.0\n").await;
    let first = r#"{"model":"openrouter/auto","session_id":"s-1","messages":[{"role":"user","content":"hi"}]}"#;
    let (_, v) = ask(&url, first).await;
    assert_eq!(v["model"], "acme/strong");
    // The knob now says cheap, but the session stays where it started.
    let next = r#"{"model":"openrouter/auto","session_id":"s-1","plugins":[{"id":"auto-router","cost_tier":"low"}],"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"Hello"},{"role":"user","content":"and now?"}]}"#;
    let (_, v) = ask(&url, next).await;
    assert_eq!(v["model"], "acme/strong");
}

#[tokio::test]
async fn a_bank_built_from_own_labels_replaces_the_shipped_one() {
    use switchyard::autoroute::scorer::{KnnBank, StaticEmbedder};
    let dir = std::env::temp_dir().join(format!("sy-bank-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bank = KnnBank::build(
        StaticEmbedder::shipped(),
        &[
            "hi there",
            "say hello",
            "integrate x^2 sin(x) dx",
            "prove 2^n > n^2 for n > 4",
        ],
        &[false, false, true, true],
        2,
    );
    let path = dir.join("own-bank.bin");
    std::fs::write(&path, bank.to_bytes()).unwrap();
    let url = gateway("ok", &format!("bank = {:?}\n", path.to_str().unwrap())).await;
    let (s, v) = ask(&url, HI).await;
    assert_eq!(s, 200, "{v}");
    let router = &v["openrouter_metadata"]["pipeline"][0];
    assert_eq!(router["name"], "knn/custom:own-bank.bin", "{v}");

    // A file that is not a bank, or is missing, stops the start naming the file.
    let (addr, _) = start_fake().await;
    for (file, bytes) in [
        ("junk.bin", Some(&b"not a bank"[..])),
        ("missing.bin", None),
    ] {
        let p = dir.join(file);
        if let Some(b) = bytes {
            std::fs::write(&p, b).unwrap();
        }
        let text = config_toml(
            addr,
            &[("acme/cheap", &[("ok", 0.1, 0.2)])],
            &format!(
                "[auto]\nmodels = [{{ slug = \"acme/cheap\", tier = 0 }}]\nbank = {:?}\n",
                p.to_str().unwrap()
            ),
        );
        let cfg =
            switchyard::catalog::Config::parse(std::path::Path::new("gw.toml"), &text).unwrap();
        let err = switchyard::server::Gateway::from_config(cfg, std::path::Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(err.contains("[auto] bank") && err.contains(file), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_relative_bank_path_is_read_beside_the_config_file() {
    let cfg = switchyard::catalog::Config::parse(
        std::path::Path::new("/etc/switchyard/gateway.toml"),
        "[auto]\nbank = \"banks/own.bin\"\n",
    )
    .unwrap();
    assert_eq!(
        cfg.auto.unwrap().bank.unwrap(),
        std::path::Path::new("/etc/switchyard/banks/own.bin")
    );
}
