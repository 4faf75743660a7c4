//! Routing: alias, route, balance, health and sticky, alone and driven through tower.
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchyard::BoxError;
use switchyard::alias::{AliasHandle, AliasLayer, AliasTable, watch_file};
use switchyard::balance::BalanceLayer;
use switchyard::catalog::{Catalog, Config};
use switchyard::context::parse_request;
use switchyard::context::{ApiKind, Candidates, ChatRequest};
use switchyard::error::GatewayError;
use switchyard::health::{Health, Outcome};
use switchyard::route::{RouteLayer, Sticky};
use tower::{ServiceBuilder, ServiceExt};

const CONFIG: &str = r#"
[aliases]
"llama" = "meta/llama-70b"
"broken" = "meta/nope"

[[providers]]
slug = "cheap"
base_url = "http://127.0.0.1:9"
collects_data = true

[[providers]]
slug = "mid"
base_url = "http://127.0.0.1:9"
zdr = true

[[providers]]
slug = "pricey"
base_url = "http://127.0.0.1:9"
zdr = true

[[providers]]
slug = "nokey"
base_url = "http://127.0.0.1:9"
api_key_env = "ROUTING_TEST_UNSET_KEY"

[[providers]]
slug = "openai"
base_url = "http://127.0.0.1:9"

[[providers]]
slug = "a"
base_url = "http://127.0.0.1:9"
[[providers]]
slug = "b"
base_url = "http://127.0.0.1:9"
[[providers]]
slug = "c"
base_url = "http://127.0.0.1:9"

[[models]]
slug = "meta/llama-70b"
family = "llama"
created = 100
context_length = 128000
[[models.endpoints]]
provider = "cheap"
model = "l70"
pricing = { prompt = 1, completion = 1 }
quantization = "fp8"
context_length = 8000
[[models.endpoints]]
provider = "mid"
model = "l70"
pricing = { prompt = 2, completion = 2 }
quantization = "bf16"
supported_parameters = ["max_tokens", "temperature"]
[[models.endpoints]]
provider = "mid"
tag = "mid/turbo"
model = "l70-turbo"
pricing = { prompt = 2.5, completion = 2.5 }
quantization = "fp4"
[[models.endpoints]]
provider = "pricey"
model = "l70"
pricing = { prompt = 3, completion = 3, request = 0.01 }
max_completion_tokens = 1000

[[models]]
slug = "meta/llama-80b"
family = "llama"
created = 200
[[models.endpoints]]
provider = "cheap"
model = "l80"
pricing = { prompt = 1, completion = 1 }
supported_parameters = ["temperature"]

[[models]]
slug = "meta/llama-80b:thinking"
family = "llama"
created = 300
[[models.endpoints]]
provider = "cheap"
model = "l80-think"

[[models]]
slug = "acme/chat"
[[models.endpoints]]
provider = "nokey"
model = "chat"

[[models]]
slug = "acme/chat:free"
[[models.endpoints]]
provider = "cheap"
model = "chat-free"

[[models]]
slug = "openai/gpt"
[[models.endpoints]]
provider = "openai"
model = "gpt"
pricing = { prompt = 5, completion = 10 }
[[models.endpoints]]
provider = "openai"
tag = "openai/priority"
service_tier = "priority"
model = "gpt"
pricing = { prompt = 10, completion = 20 }
[[models.endpoints]]
provider = "openai"
tag = "openai/flex"
service_tier = "flex"
model = "gpt"
pricing = { prompt = 2.5, completion = 5 }

[[models]]
slug = "bal/m"
[[models.endpoints]]
provider = "a"
model = "m"
pricing = { prompt = 1, completion = 1 }
[[models.endpoints]]
provider = "b"
model = "m"
pricing = { prompt = 2, completion = 2 }
[[models.endpoints]]
provider = "c"
model = "m"
pricing = { prompt = 3, completion = 3 }
"#;

fn config() -> Config {
    Config::parse(Path::new("routing.toml"), CONFIG).unwrap()
}

fn catalog() -> Arc<Catalog> {
    Arc::new(Catalog::from_config_with_env(&config(), Path::new("."), &|_| None).unwrap())
}

/// A parsed request: `extra` is merged into a minimal body.
fn chat(extra: Value) -> ChatRequest {
    let mut body = json!({"messages": [{"role": "user", "content": "hello"}]});
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            body[k] = v;
        }
    }
    parse_request(
        ApiKind::Chat,
        body.to_string().as_bytes(),
        &Default::default(),
    )
    .unwrap()
}

fn tags(c: &Candidates) -> Vec<String> {
    c.targets.iter().map(|t| t.endpoint().tag.clone()).collect()
}

fn keys(c: &Candidates) -> Vec<String> {
    c.targets.iter().map(|t| t.key().to_owned()).collect()
}

/// Alias then route (no balance: deterministic default order).
fn route_with(layer: &RouteLayer, extra: Value) -> Result<Candidates, GatewayError> {
    let alias = AliasLayer::new(catalog(), AliasTable::from_config(&config()));
    let c = chat(extra);
    let c = alias.resolve(&c)?.unwrap_or(c);
    layer.plan(&c).map(|p| p.candidates())
}

fn route(extra: Value) -> Result<Candidates, GatewayError> {
    route_with(&RouteLayer::new(catalog()), extra)
}

fn ok(extra: Value) -> Vec<String> {
    tags(&route(extra).unwrap())
}

fn llama(provider: Value) -> Value {
    let mut req = json!({"model": "meta/llama-70b"});
    req["provider"] = provider;
    req
}

#[test]
fn default_order_is_cheapest_first() {
    let c = route(json!({"model": "meta/llama-70b"})).unwrap();
    assert_eq!(tags(&c), ["cheap", "mid", "mid/turbo", "pricey"]);
    assert_eq!(c.limit, None);
    assert_eq!(c.strategy, Some("direct"));
}

#[test]
fn order_skips_unknown_slugs_and_falls_back_to_the_rest() {
    let o = json!({"order": ["pricey", "openai", "mid"]});
    assert_eq!(ok(llama(o)), ["pricey", "mid", "mid/turbo", "cheap"]);
    let full_tag = json!({"order": ["mid/turbo"]});
    assert_eq!(ok(llama(full_tag)), ["mid/turbo", "cheap", "mid", "pricey"]);
}

#[test]
fn allow_fallbacks_false_limits_to_primary_order_or_only() {
    let c = route(llama(
        json!({"order": ["pricey", "mid"], "allow_fallbacks": false}),
    ))
    .unwrap();
    assert_eq!(tags(&c), ["pricey", "mid", "mid/turbo"]);
    assert_eq!(c.limit, Some(3));
    let c = route(llama(json!({"allow_fallbacks": false}))).unwrap();
    assert_eq!((tags(&c), c.limit), (vec!["cheap".to_owned()], Some(1)));
    let c = route(llama(json!({"only": ["mid"], "allow_fallbacks": false}))).unwrap();
    assert_eq!(
        (tags(&c), c.limit),
        (vec!["mid".into(), "mid/turbo".into()], Some(2))
    );
    let e = route(llama(
        json!({"order": ["openai"], "allow_fallbacks": false}),
    ))
    .unwrap_err();
    assert_eq!(e.status, 404);
    assert!(e.message.contains("provider.order"), "{}", e.message);
}

#[test]
fn only_and_ignore_match_base_slugs_and_full_tags() {
    assert_eq!(ok(llama(json!({"only": ["mid"]}))), ["mid", "mid/turbo"]);
    assert_eq!(ok(llama(json!({"only": ["mid/turbo"]}))), ["mid/turbo"]);
    assert_eq!(
        ok(llama(json!({"ignore": ["cheap", "mid/turbo"]}))),
        ["mid", "pricey"]
    );
    assert_eq!(
        ok(llama(json!({"only": ["mid", "pricey"], "ignore": ["mid"]}))),
        ["pricey"]
    );
}

#[test]
fn data_collection_zdr_and_quantizations() {
    let deny = json!({"data_collection": "deny"});
    assert_eq!(ok(llama(deny)), ["mid", "mid/turbo", "pricey"]);
    assert_eq!(
        ok(llama(json!({"zdr": true}))),
        ["mid", "mid/turbo", "pricey"]
    );
    let q = json!({"quantizations": ["fp8", "unknown"]});
    assert_eq!(ok(llama(q)), ["cheap", "pricey"]);
    let combined =
        json!({"quantizations": ["FP8", "bf16", "fp4"], "zdr": true, "ignore": ["mid/turbo"]});
    assert_eq!(ok(llama(combined)), ["mid"]);
}

#[test]
fn require_parameters_and_default_tool_preference() {
    let tools = json!([{"type": "function", "function": {"name": "f", "parameters": {}}}]);
    let mut req = json!({"model": "meta/llama-70b", "tools": tools});
    // Default preference: some endpoints support tools, so only those.
    assert_eq!(ok(req.clone()), ["cheap", "mid/turbo", "pricey"]);
    req["provider"] = json!({"require_parameters": true, "order": ["mid"]});
    assert_eq!(ok(req.clone()), ["mid/turbo", "cheap", "pricey"]);
    req["provider"] = json!({"require_parameters": true});
    req["top_k"] = json!(5);
    assert_eq!(
        ok(req.clone()),
        ["cheap", "mid/turbo", "pricey"],
        "no list = all supported"
    );
    // No endpoint of llama-80b supports tools: the preference keeps the model…
    let mut req = json!({"model": "meta/llama-80b", "tools": tools});
    assert_eq!(ok(req.clone()), ["cheap"]);
    // …but require_parameters does not.
    req["provider"] = json!({"require_parameters": true});
    let e = route(req).unwrap_err();
    assert_eq!(e.status, 404);
    assert!(
        e.message.contains("does not support `tools`"),
        "{}",
        e.message
    );
    assert_eq!(
        e.availability.unwrap()["excluded_by"],
        json!(["require_parameters"])
    );
}

#[test]
fn max_price_per_token_and_per_request() {
    assert_eq!(ok(llama(json!({"max_price": {"prompt": 1.5}}))), ["cheap"]);
    let mp = json!({"max_price": {"prompt": "2", "completion": 2}});
    assert_eq!(ok(llama(mp)), ["cheap", "mid"]);
    let mp = json!({"max_price": {"request": "0.001"}});
    assert_eq!(ok(llama(mp)), ["cheap", "mid", "mid/turbo"]);
    let e = route(llama(json!({"max_price": {"prompt": 0.5}}))).unwrap_err();
    assert_eq!(e.status, 404);
    let a = e.availability.clone().unwrap();
    assert_eq!(a["code"], "constraint_filtered");
    assert_eq!(a["excluded_by"], json!(["max_price"]));
    assert_eq!(a["requested_models"], json!(["meta/llama-70b"]));
    for k in ["cheap", "mid", "mid/turbo", "pricey"] {
        assert!(
            e.message
                .contains(&format!("meta/llama-70b@{k} excluded by max_price")),
            "{}",
            e.message
        );
    }
}

#[test]
fn context_length_and_max_tokens() {
    let long = "x".repeat(40_000); // ~10,000 tokens: over cheap's 8,000
    let req = json!({"model": "meta/llama-70b", "messages": [{"role": "user", "content": long}]});
    assert_eq!(ok(req), ["mid", "mid/turbo", "pricey"]);
    let req = json!({"model": "meta/llama-70b", "max_tokens": 2000});
    assert_eq!(
        ok(req),
        ["cheap", "mid", "mid/turbo"],
        "pricey returns at most 1000"
    );
    let req = json!({"model": "meta/llama-70b", "max_tokens": 200_000});
    let e = route(req).unwrap_err();
    assert_eq!(
        e.availability.unwrap()["excluded_by"],
        json!(["context_length"])
    );
}

#[test]
fn privacy_and_no_endpoint_codes() {
    let e = route(llama(json!({"data_collection": "deny", "only": ["cheap"]}))).unwrap_err();
    assert_eq!(
        e.availability.as_ref().unwrap()["code"],
        "constraint_filtered"
    );
    let e = route(json!({"model": "meta/llama-80b", "provider": {"zdr": true}})).unwrap_err();
    let a = e.availability.unwrap();
    assert_eq!(a["code"], "privacy_restricted");
    assert!(e.message.contains("data policy"), "{}", e.message);
    assert_eq!(a["excluded_by"], json!(["data_policy:zdr"]));
    let e = route(json!({"model": "meta/llama-80b", "provider": {"data_collection": "deny"}}))
        .unwrap_err();
    assert_eq!(
        e.availability.unwrap()["excluded_by"],
        json!(["data_policy:training"])
    );
    let e = route(json!({"model": "acme/chat"})).unwrap_err();
    assert_eq!(e.status, 404);
    assert_eq!(e.availability.unwrap()["code"], "no_endpoints");
    assert!(
        e.message.contains("ROUTING_TEST_UNSET_KEY"),
        "{}",
        e.message
    );
    let e = route(json!({"model": "meta/unknown"})).unwrap_err();
    assert_eq!(e.status, 400);
    assert_eq!(e.availability.unwrap()["code"], "model_not_found");
}

#[test]
fn models_list_partition_model_and_none() {
    let req = json!({"model": "openai/gpt", "models": ["meta/llama-70b"]});
    let c = route(req.clone()).unwrap();
    assert_eq!(
        keys(&c),
        [
            "openai/gpt@openai",
            "meta/llama-70b@cheap",
            "meta/llama-70b@mid",
            "meta/llama-70b@mid/turbo",
            "meta/llama-70b@pricey"
        ]
    );
    assert_eq!(c.strategy, Some("fallback"));
    let mut none = req.clone();
    none["provider"] = json!({"sort": {"by": "price", "partition": "none"}});
    // Expected cost: the request price ($0.01) puts pricey after gpt.
    assert_eq!(
        keys(&route(none).unwrap()),
        [
            "meta/llama-70b@cheap",
            "meta/llama-70b@mid",
            "meta/llama-70b@mid/turbo",
            "openai/gpt@openai",
            "meta/llama-70b@pricey"
        ]
    );
    // Legacy `route: "sort"` = partition none; `route: "fallback"` = partition model.
    let mut legacy = req;
    legacy["route"] = json!("sort");
    legacy["provider"] = json!({"sort": "price"});
    assert_eq!(
        keys(&route(legacy.clone()).unwrap())[0],
        "meta/llama-70b@cheap"
    );
    legacy["route"] = json!("fallback");
    assert_eq!(keys(&route(legacy).unwrap())[0], "openai/gpt@openai");
}

#[test]
fn sorts_by_price_throughput_and_latency() {
    let health = Arc::new(Health::new());
    let ms = Duration::from_millis;
    health.record_stream("meta/llama-70b@pricey", ms(100), 300, ms(1100));
    health.record_stream("meta/llama-70b@mid", ms(500), 100, ms(1500));
    let layer = RouteLayer::new(catalog()).health(health);
    let by = |s: Value| tags(&route_with(&layer, llama(json!({"sort": s}))).unwrap());
    assert_eq!(by(json!("price")), ["cheap", "mid", "mid/turbo", "pricey"]);
    assert_eq!(
        by(json!("throughput")),
        ["pricey", "mid", "cheap", "mid/turbo"],
        "unmeasured last, by price"
    );
    assert_eq!(
        by(json!({"by": "latency"})),
        ["pricey", "mid", "cheap", "mid/turbo"]
    );
    // :nitro = sort by throughput.
    let c = route_with(&layer, json!({"model": "meta/llama-70b:nitro"})).unwrap();
    assert_eq!(tags(&c)[0], "pricey");
    // An explicit sort wins over the variant's.
    let c = route_with(
        &layer,
        json!({"model": "meta/llama-70b:nitro", "provider": {"sort": "price"}}),
    )
    .unwrap();
    assert_eq!(tags(&c)[0], "cheap");
}

#[test]
fn soft_speed_preferences_move_misses_to_the_end() {
    let health = Arc::new(Health::new());
    let ms = Duration::from_millis;
    health.record_stream("meta/llama-70b@cheap", ms(2000), 10, ms(3000));
    health.record_stream("meta/llama-70b@mid", ms(100), 100, ms(1100));
    let layer = RouteLayer::new(catalog()).health(health);
    let go = |p: Value| tags(&route_with(&layer, llama(p)).unwrap());
    let expect = ["mid", "mid/turbo", "pricey", "cheap"];
    assert_eq!(go(json!({"preferred_min_throughput": 50})), expect);
    assert_eq!(go(json!({"preferred_min_throughput": {"p90": 50}})), expect);
    assert_eq!(go(json!({"preferred_max_latency": 1})), expect);
    assert_eq!(
        go(json!({"preferred_max_latency": {"p50": 5}})),
        ["cheap", "mid", "mid/turbo", "pricey"]
    );
}

#[test]
fn service_tiers_need_an_opt_in() {
    assert_eq!(ok(json!({"model": "openai/gpt"})), ["openai"]);
    assert_eq!(
        ok(json!({"model": "openai/gpt", "provider": {"only": ["openai"]}})),
        ["openai"]
    );
    assert_eq!(
        ok(json!({"model": "openai/gpt:floor"})),
        ["openai/flex", "openai"]
    );
    let nitro = ok(json!({"model": "openai/gpt:nitro"}));
    assert_eq!(nitro, ["openai", "openai/priority"], "unmeasured: by price");
    assert_eq!(
        ok(json!({"model": "openai/gpt", "provider": {"order": ["openai/priority"]}})),
        ["openai/priority", "openai"]
    );
    assert_eq!(
        ok(json!({"model": "openai/gpt", "service_tier": "flex"})),
        ["openai/flex", "openai"]
    );
}

#[test]
fn aliases_latest_and_variants() {
    let alias = AliasLayer::new(catalog(), AliasTable::from_config(&config()));
    let resolve = |extra: Value| alias.resolve(&chat(extra));
    let c = resolve(json!({"model": "llama"})).unwrap().unwrap();
    assert_eq!(c.model.as_deref(), Some("meta/llama-70b"));
    assert_eq!(
        (c.hints.strategy, c.hints.requested.as_deref()),
        (Some("alias"), Some("llama"))
    );
    let c = resolve(json!({"model": "~meta/llama-latest"}))
        .unwrap()
        .unwrap();
    assert_eq!(
        c.model.as_deref(),
        Some("meta/llama-80b"),
        "variants are not in the family race"
    );
    assert_eq!(c.hints.strategy, Some("latest"));
    assert!(
        resolve(json!({"model": "meta/llama-70b"}))
            .unwrap()
            .is_none(),
        "no rewrite"
    );
    let c = resolve(json!({"model": "llama:floor"})).unwrap().unwrap();
    assert_eq!(
        (c.model.as_deref(), c.hints.sort.as_deref()),
        (Some("meta/llama-70b"), Some("price"))
    );
    let c = resolve(json!({"model": "meta/llama-70b:exacto"}))
        .unwrap()
        .unwrap();
    assert_eq!(c.hints.sort.as_deref(), Some("exacto"));
    let c = resolve(json!({"model": "meta/llama-80b:online"}))
        .unwrap()
        .unwrap();
    assert_eq!(c.body()["plugins"], json!([{"id": "web"}]));
    // Static variants: the catalogue's own slug.
    assert!(
        resolve(json!({"model": "meta/llama-80b:thinking"}))
            .unwrap()
            .is_none()
    );
    let c = resolve(json!({"model": "~meta/llama-latest:thinking"}))
        .unwrap()
        .unwrap();
    assert_eq!(c.model.as_deref(), Some("meta/llama-80b:thinking"));
    let e = resolve(json!({"model": "meta/llama-70b:thinking"})).unwrap_err();
    assert!(e.message.contains(":thinking"), "{}", e.message);
    // :free: the catalogue's free model, else free endpoints only.
    assert!(
        resolve(json!({"model": "acme/chat:free"}))
            .unwrap()
            .is_none()
    );
    let c = resolve(json!({"model": "meta/llama-70b:free"}))
        .unwrap()
        .unwrap();
    assert!(c.hints.free_only);
    let e = route(json!({"model": "meta/llama-70b:free"})).unwrap_err();
    assert_eq!(e.status, 404);
    assert!(e.message.contains("not free"), "{}", e.message);
    // Errors name what was asked for.
    for (m, needle) in [
        ("meta/llama-70b:bogus", "unknown variant `:bogus`"),
        ("broken", "`meta/nope`"),
        ("~meta/nope-latest", "`~meta/nope-latest`"),
    ] {
        let e = resolve(json!({"model": m})).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains(needle), "{m}: {}", e.message);
    }
}

#[test]
fn each_models_entry_keeps_its_own_suffix() {
    let c =
        route(json!({"model": "openai/gpt:floor", "models": ["llama:nitro", "meta/llama-80b"]}))
            .unwrap();
    assert_eq!(
        keys(&c),
        [
            "openai/gpt@openai/flex",
            "openai/gpt@openai",
            "meta/llama-70b@cheap",
            "meta/llama-70b@mid",
            "meta/llama-70b@mid/turbo",
            "meta/llama-70b@pricey",
            "meta/llama-80b@cheap",
        ]
    );
}

#[tokio::test]
async fn alias_table_reloads_from_the_file() {
    let dir = std::env::temp_dir().join(format!("switchyard-alias-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gateway.toml");
    std::fs::write(&path, "[aliases]\n\"fast\" = \"meta/llama-70b\"\n").unwrap();
    let handle = AliasHandle::new(AliasTable::from_config(&Config::load(&path).unwrap()));
    let alias = AliasLayer::with_handle(catalog(), handle.clone());
    let model = |a: &AliasLayer| {
        a.resolve(&chat(json!({"model": "fast"})))
            .unwrap()
            .unwrap()
            .model
            .unwrap()
    };
    assert_eq!(model(&alias), "meta/llama-70b");
    let task = watch_file(&path, handle.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;
    std::fs::write(&path, "[aliases]\n\"fast\" = \"meta/llama-80b\"\n").unwrap();
    let later = std::time::SystemTime::now() + Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(later)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(model(&alias), "meta/llama-80b");
    // A broken file keeps the old table.
    std::fs::write(&path, "[aliases\n").unwrap();
    let later = std::time::SystemTime::now() + Duration::from_secs(10);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(later)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(model(&alias), "meta/llama-80b");
    task.abort();
    std::fs::remove_dir_all(&dir).ok();
}

/// First-pick shares over `n` seeded draws on `bal/m` ($1, $2, $3 per million tokens).
fn shares(health: Arc<Health>, n: usize) -> ([f64; 3], Vec<Vec<String>>) {
    let route = RouteLayer::new(catalog()).health(health.clone());
    let balance = BalanceLayer::from_seed(42).health(health);
    let c = chat(json!({"model": "bal/m"}));
    let plan = route.plan(&c).unwrap();
    let mut counts = [0usize; 3];
    let mut orders = Vec::new();
    for _ in 0..n {
        let mut p = plan.clone();
        assert!(balance.reorder(&mut p, &c));
        let t = tags(&p.candidates());
        counts[["a", "b", "c"].iter().position(|x| *x == t[0]).unwrap()] += 1;
        orders.push(t);
    }
    (counts.map(|k| k as f64 / n as f64), orders)
}

#[test]
fn balance_first_pick_is_weighted_by_inverse_square_price() {
    let (s, orders) = shares(Arc::new(Health::new()), 20_000);
    let total = 1.0 + 0.25 + 1.0 / 9.0;
    for (got, want) in s
        .iter()
        .zip([1.0 / total, 0.25 / total, (1.0 / 9.0) / total])
    {
        assert!((got - want).abs() < 0.01, "shares {s:?}");
    }
    // After the first pick: the other stable endpoints cheapest first.
    for o in &orders {
        let rest: Vec<&String> = o.iter().skip(1).collect();
        let mut sorted = rest.clone();
        sorted.sort();
        assert_eq!(rest, sorted);
    }
}

#[test]
fn an_endpoint_in_outage_is_tried_last() {
    let health = Arc::new(Health::new());
    for _ in 0..2 {
        health.record(
            "bal/m@b",
            Outcome {
                success: false,
                status: 503,
                retry_after: None,
            },
        );
    }
    let (s, orders) = shares(health, 20_000);
    assert!(
        (s[0] - 0.9).abs() < 0.01 && s[1] == 0.0 && (s[2] - 0.1).abs() < 0.01,
        "{s:?}"
    );
    assert!(orders.iter().all(|o| o[2] == "b"));
}

#[test]
fn retry_after_takes_the_endpoint_out_for_that_long() {
    let health = Health::new();
    let key = "bal/m@a";
    let retry = Some(Duration::from_millis(300));
    health.record(
        key,
        Outcome {
            success: false,
            status: 429,
            retry_after: retry,
        },
    );
    assert!(health.cooling_down(key));
    std::thread::sleep(Duration::from_millis(150));
    assert!(health.cooling_down(key), "still inside Retry-After");
    std::thread::sleep(Duration::from_millis(200));
    assert!(!health.cooling_down(key));
}

#[test]
fn sticky_session_goes_first_unless_order_is_set_or_it_is_unhealthy() {
    let health = Arc::new(Health::new());
    let sticky = Arc::new(Sticky::new());
    let layer = RouteLayer::new(catalog())
        .health(health.clone())
        .sticky(sticky.clone());
    let req = json!({"model": "bal/m", "session_id": "conv-1"});
    assert_eq!(tags(&route_with(&layer, req.clone()).unwrap())[0], "a");
    sticky.remember("conv-1", "bal/m", "bal/m@c");
    let plan = layer.plan(&chat(req.clone())).unwrap();
    assert_eq!(tags(&plan.candidates()), ["c", "a", "b"]);
    // Balance keeps the pin and reorders only the rest.
    let mut p = plan;
    BalanceLayer::from_seed(1)
        .health(health.clone())
        .reorder(&mut p, &chat(req.clone()));
    assert_eq!(tags(&p.candidates())[0], "c");
    let mut other = req.clone();
    other["session_id"] = json!("conv-2");
    assert_eq!(tags(&route_with(&layer, other).unwrap())[0], "a");
    let mut ordered = req.clone();
    ordered["provider"] = json!({"order": ["b"]});
    assert_eq!(tags(&route_with(&layer, ordered).unwrap())[0], "b");
    health.record(
        "bal/m@c",
        Outcome {
            success: false,
            status: 429,
            retry_after: Some(Duration::from_secs(30)),
        },
    );
    assert_eq!(
        tags(&route_with(&layer, req).unwrap())[0],
        "a",
        "cooling pin ignored"
    );
}

/// The inner service of the tower tests: records the candidates it was given.
type Seen = Arc<Mutex<Option<(Candidates, Arc<ChatRequest>)>>>;

async fn drive(extra: Value, seed: u64) -> (Result<(), BoxError>, Seen) {
    let seen: Seen = Arc::default();
    let s2 = seen.clone();
    let health = Arc::new(Health::new());
    let svc = ServiceBuilder::new()
        .layer(AliasLayer::new(
            catalog(),
            AliasTable::from_config(&config()),
        ))
        .layer(RouteLayer::new(catalog()).health(health.clone()))
        .layer(BalanceLayer::from_seed(seed).health(health))
        .service(tower::service_fn(
            move |req: http::Request<switchyard::Body>| {
                let s = s2.clone();
                async move {
                    let c = req.extensions().get::<Candidates>().cloned().unwrap();
                    let chat = req.extensions().get::<Arc<ChatRequest>>().cloned().unwrap();
                    assert!(!chat.hints.per_model.is_empty() || chat.hints.requested.is_none());
                    *s.lock().unwrap() = Some((c, chat));
                    Ok::<_, BoxError>(())
                }
            },
        ));
    let mut req = http::Request::new(switchyard::body::empty());
    req.extensions_mut().insert(Arc::new(chat(extra)));
    (svc.oneshot(req).await, seen)
}

#[tokio::test]
async fn the_layers_through_tower() {
    let (r, seen) = drive(json!({"model": "llama:floor", "models": ["bal/m"]}), 3).await;
    r.unwrap();
    let (c, chat) = seen.lock().unwrap().take().unwrap();
    assert_eq!(chat.model.as_deref(), Some("meta/llama-70b"));
    assert_eq!(chat.hints.requested.as_deref(), Some("llama:floor"));
    let k = keys(&c);
    assert_eq!(
        &k[..4],
        [
            "meta/llama-70b@cheap",
            "meta/llama-70b@mid",
            "meta/llama-70b@mid/turbo",
            "meta/llama-70b@pricey"
        ]
    );
    assert!(
        k[4..].iter().all(|k| k.starts_with("bal/m@")),
        "all of the first model first"
    );
    // Balance draws the first pick: over seeds, every bal/m endpoint comes first sometimes.
    let mut firsts = std::collections::HashSet::new();
    for seed in 0..200 {
        let (r, seen) = drive(json!({"model": "bal/m"}), seed).await;
        r.unwrap();
        firsts.insert(tags(&seen.lock().unwrap().take().unwrap().0)[0].clone());
    }
    assert_eq!(firsts.len(), 3, "{firsts:?}");
    // Errors come back as downcastable GatewayErrors.
    for (extra, status) in [
        (json!({"model": "meta/llama-70b:bogus"}), 400),
        (json!({"model": "nope/nope"}), 400),
        (llama(json!({"max_price": {"prompt": 0.1}})), 404),
    ] {
        let (r, seen) = drive(extra, 0).await;
        let e = r.unwrap_err();
        assert_eq!(e.downcast_ref::<GatewayError>().unwrap().status, status);
        assert!(seen.lock().unwrap().is_none(), "inner not called");
    }
}

/// Route + balance + fallback over an upstream where `bal/m@a` answers 429 with `Retry-After: 1`.
#[tokio::test]
async fn retry_after_through_fallback_skips_the_endpoint_until_it_expires() {
    use switchyard::body::{self, Body};
    use switchyard::context::Target;
    use switchyard::fallback::FallbackLayer;
    let health = Arc::new(Health::new());
    let tried: Arc<Mutex<Vec<String>>> = Arc::default();
    let t2 = tried.clone();
    let upstream = tower::service_fn(move |req: http::Request<Body>| {
        let tag = req
            .extensions()
            .get::<Target>()
            .unwrap()
            .endpoint()
            .tag
            .clone();
        t2.lock().unwrap().push(tag.clone());
        async move {
            let mut resp = if tag == "a" {
                let mut r = http::Response::new(body::full("{\"error\":\"slow down\"}"));
                *r.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
                r.headers_mut()
                    .insert("retry-after", http::HeaderValue::from_static("1"));
                r
            } else {
                http::Response::new(body::full(
                    r#"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}"#,
                ))
            };
            resp.headers_mut().insert(
                "content-type",
                http::HeaderValue::from_static("application/json"),
            );
            Ok::<_, BoxError>(resp)
        }
    });
    let svc = ServiceBuilder::new()
        .layer(RouteLayer::new(catalog()).health(health.clone()))
        .layer(BalanceLayer::from_seed(5).health(health.clone()))
        .layer(FallbackLayer::new().health(health.clone()))
        .service(upstream);
    type Svc = tower::util::BoxCloneService<http::Request<Body>, http::Response<Body>, BoxError>;
    let call = |svc: &Svc| {
        let svc = svc.clone();
        let mut req = http::Request::new(body::empty());
        let c = chat(json!({"model": "bal/m", "provider": {"order": ["a", "b"]}}));
        req.extensions_mut().insert(Arc::new(c));
        svc.oneshot(req)
    };
    let svc = Svc::new(svc);
    let resp = call(&svc).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(std::mem::take(&mut *tried.lock().unwrap()), ["a", "b"]);
    assert!(health.cooling_down("bal/m@a"));
    call(&svc).await.unwrap();
    assert_eq!(
        std::mem::take(&mut *tried.lock().unwrap()),
        ["b"],
        "a is cooling down"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    call(&svc).await.unwrap();
    assert_eq!(
        std::mem::take(&mut *tried.lock().unwrap()),
        ["a", "b"],
        "Retry-After elapsed"
    );
}
