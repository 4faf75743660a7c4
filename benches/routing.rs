//! The routing decision (alias + route + balance) per request, for 1–1,000 endpoints of the
//! requested model, in catalogues of 10 and 10,000 models. It should be linear in the model's
//! endpoints and flat in the catalogue size.
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::fmt::Write;
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use switchyard::alias::{AliasLayer, AliasTable};
use switchyard::balance::BalanceLayer;
use switchyard::catalog::{Catalog, Config};
use switchyard::context::ApiKind;
use switchyard::context::parse_request;
use switchyard::health::{Health, Outcome};
use switchyard::route::RouteLayer;

/// `models` models with one endpoint each, plus `bench/target` with `endpoints` endpoints.
fn catalog(models: usize, endpoints: usize) -> Catalog {
    let mut toml = String::from("[catalog]\ninclude_default = false\n");
    for p in 0..endpoints.max(1) {
        writeln!(
            toml,
            "[[providers]]\nslug = \"p{p}\"\nbase_url = \"http://127.0.0.1:9\""
        )
        .unwrap();
    }
    writeln!(
        toml,
        "[[models]]\nslug = \"bench/target\"\nfamily = \"target\"\ncreated = 1"
    )
    .unwrap();
    for p in 0..endpoints {
        let price = 0.1 + p as f64 * 0.01;
        writeln!(
            toml,
            "[[models.endpoints]]\nprovider = \"p{p}\"\nmodel = \"t\"\npricing = {{ prompt = {price}, completion = {} }}",
            price * 2.0
        )
        .unwrap();
    }
    for m in 1..models {
        writeln!(
            toml,
            "[[models]]\nslug = \"filler/m{m}\"\nfamily = \"filler\"\ncreated = {m}\n[[models.endpoints]]\nprovider = \"p0\"\nmodel = \"m\"\npricing = {{ prompt = 1, completion = 1 }}"
        )
        .unwrap();
    }
    let config = Config::parse(Path::new("bench.toml"), &toml).unwrap();
    Catalog::from_config_with_env(&config, Path::new("."), &|_| None).unwrap()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("routing");
    for models in [10usize, 10_000] {
        for endpoints in [1usize, 10, 100, 1_000] {
            let catalog = Arc::new(catalog(models, endpoints));
            let health = Arc::new(Health::new());
            // One endpoint in outage, so the stable/unstable split has work to do.
            for _ in 0..2 {
                let o = Outcome {
                    success: false,
                    status: 503,
                    retry_after: None,
                };
                health.record("bench/target@p0", o);
            }
            let aliases = AliasTable::new([("t".to_owned(), "bench/target".to_owned())].into());
            let alias = AliasLayer::new(catalog.clone(), aliases);
            let route = RouteLayer::new(catalog).health(health.clone());
            let balance = BalanceLayer::from_seed(1).health(health);
            let body = br#"{"model":"~bench/target-latest","messages":[{"role":"user","content":"Summarise the plot of Hamlet in three sentences."}],"max_tokens":300}"#;
            let chat = parse_request(ApiKind::Chat, body, &Default::default()).unwrap();
            let id = BenchmarkId::new(format!("{models}_models"), endpoints);
            group.bench_with_input(id, &chat, |b, chat| {
                b.iter(|| {
                    let chat = alias.resolve(black_box(chat)).unwrap().unwrap();
                    let mut plan = route.plan(&chat).unwrap();
                    balance.reorder(&mut plan, &chat);
                    black_box(plan.candidates())
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
