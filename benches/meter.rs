//! Cost metering overhead: pricing a usage, reading an upstream `usage` object, rendering the
//! OpenRouter `usage` object, and a key's reserve/settle round trip.
// `criterion_group!` generates an undocumented function.
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use switchyard::catalog::{PriceOverride, PriceSet, Pricing, Usd};
use switchyard::keys::{KeyStore, LimitReset};
use switchyard::meter::cost::price;
use switchyard::meter::report::usage_json;
use switchyard::meter::usage::Usage;

fn pricing() -> Pricing {
    let m = Usd::from_per_million;
    Pricing {
        prompt: m(3.0),
        completion: m(15.0),
        input_cache_read: Some(m(0.3)),
        input_cache_write: Some(m(3.75)),
        input_cache_write_1h: Some(m(6.0)),
        web_search: Usd::from_dollars(0.004),
        discount_ppm: 100_000,
        overrides: vec![PriceOverride {
            min_prompt_tokens: Some(200_000),
            prices: PriceSet {
                prompt: Some(m(6.0)),
                completion: Some(m(22.5)),
                ..PriceSet::default()
            },
            ..PriceOverride::default()
        }],
        ..Pricing::default()
    }
}

fn usage_value() -> serde_json::Value {
    serde_json::json!({
        "prompt_tokens": 1843, "completion_tokens": 412, "total_tokens": 2255,
        "prompt_tokens_details": {"cached_tokens": 1536, "cache_write_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 128, "audio_tokens": 0},
        "server_tool_use": {"web_search_requests": 0}
    })
}

fn bench(c: &mut Criterion) {
    let pricing = pricing();
    let value = usage_value();
    let usage = Usage::from_openai(&value).expect("usage");

    c.bench_function("price", |b| {
        b.iter(|| price(black_box(&usage), black_box(&pricing), Some("stop"), 1430));
    });
    let flat = Pricing {
        overrides: Vec::new(),
        ..pricing.clone()
    };
    c.bench_function("price_no_overrides", |b| {
        b.iter(|| price(black_box(&usage), black_box(&flat), Some("stop"), 1430));
    });
    c.bench_function("usage_from_openai", |b| {
        b.iter(|| Usage::from_openai(black_box(&value)));
    });
    let cost = price(&usage, &pricing, Some("stop"), 1430);
    c.bench_function("usage_json", |b| {
        b.iter(|| usage_json(black_box(&usage), black_box(&cost), false));
    });
    let store = KeyStore::in_memory();
    let (_, key) = store
        .create("bench", Some(Usd::from_dollars(1e6)), LimitReset::Monthly)
        .expect("key");
    c.bench_function("reserve_settle", |b| {
        b.iter(|| {
            store
                .reserve(&key.hash, Usd::from_dollars(0.01))
                .expect("room")
                .settle(Usd::from_dollars(0.001));
        });
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
