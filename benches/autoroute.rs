//! Scorer latency per prompt. Criterion times the default scorer on a few typical prompts; then,
//! if the RouteLLM eval file is beside the checkout, every prompt in it is scored once and the
//! p50/p90/p99/max per-prompt latencies are printed.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use switchyard::autoroute::scorer::{
    LengthScorer, Scorer, default_scorer, heuristic_scorer, linear_scorer,
};

const PROMPTS: [(&str, &str); 3] = [
    ("short", "hi"),
    (
        "gsm8k",
        "Natalia sold clips to 48 of her friends in April, and then she sold half as many \
        clips in May. How many clips did Natalia sell altogether in April and May?",
    ),
    (
        "mt_bench",
        "Compose an engaging travel blog post about a recent trip to Hawaii, highlighting \
        cultural experiences and must-see attractions.",
    ),
];

fn bench(c: &mut Criterion) {
    let (dflt, _) = default_scorer();
    let (heur, _) = heuristic_scorer();
    let (lin, _) = linear_scorer();
    dflt.score("warm up");
    let mut g = c.benchmark_group("autoroute_score");
    for (name, p) in PROMPTS {
        g.bench_function(format!("default/{name}"), |b| {
            b.iter(|| dflt.score(black_box(p)))
        });
        g.bench_function(format!("linear/{name}"), |b| {
            b.iter(|| lin.score(black_box(p)))
        });
        g.bench_function(format!("heuristic/{name}"), |b| {
            b.iter(|| heur.score(black_box(p)))
        });
        g.bench_function(format!("length/{name}"), |b| {
            b.iter(|| LengthScorer.score(black_box(p)))
        });
    }
    g.finish();
    eval_file_percentiles(dflt.as_ref());
}

fn eval_file_percentiles(s: &dyn Scorer) {
    let paths = [
        "../shared/autorouter-data/routellm-evals/routing_eval.jsonl",
        "../../shared/autorouter-data/routellm-evals/routing_eval.jsonl",
    ];
    let Some(text) = paths.iter().find_map(|p| std::fs::read_to_string(p).ok()) else {
        eprintln!(
            "routing_eval.jsonl not found beside the checkout; skipping per-prompt percentiles"
        );
        return;
    };
    let prompts: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["prompt"].as_str().map(str::to_owned))
        .collect();
    let mut t: Vec<f64> = prompts
        .iter()
        .map(|p| {
            let t0 = Instant::now();
            black_box(s.score(black_box(p)));
            t0.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    t.sort_by(f64::total_cmp);
    let q = |p: f64| t[((t.len() - 1) as f64 * p).round() as usize];
    println!(
        "{}: {} prompts, per-prompt latency p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        s.name(),
        t.len(),
        q(0.5),
        q(0.9),
        q(0.99),
        t[t.len() - 1]
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
