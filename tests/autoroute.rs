//! Auto Router: selection rules, calibration, stickiness, escalation, the shipped scorers and the
//! routing metrics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use switchyard::autoroute::calibrate::Calibration;
use switchyard::autoroute::eval::{Ranked, SplitMix64};
use switchyard::autoroute::scorer::{
    FixedScorer, LengthScorer, Scorer, default_scorer, heuristic_scorer, length_scorer,
    linear_scorer, shipped, shipped_bank,
};
use switchyard::autoroute::select::{
    AutoOptions, AutoRouter, Candidate, NoCandidate, Sticky, cost_tier_share, glob_match,
};

fn uniform() -> Calibration {
    Calibration {
        quantiles: (0..=100).map(|i| i as f32 / 100.0).collect(),
    }
}

fn router(score: f32, share: f32) -> AutoRouter {
    AutoRouter {
        candidates: vec![
            Candidate::new("mistralai/mixtral-8x7b", 0),
            Candidate::new("openai/gpt-4o-mini", 0),
            Candidate::new("anthropic/claude-sonnet-4", 1),
            Candidate::new("openai/gpt-4o", 1),
        ],
        scorer: Arc::new(FixedScorer(score)),
        calibration: uniform(),
        strong_share: share,
    }
}

fn any(_: &str) -> bool {
    true
}

fn opts(allowed: &[&str], excluded: &[&str], tier: Option<&str>) -> AutoOptions {
    AutoOptions {
        allowed_models: allowed.iter().map(|s| (*s).to_owned()).collect(),
        excluded_models: excluded.iter().map(|s| (*s).to_owned()).collect(),
        cost_tier: tier.map(str::to_owned),
    }
}

#[test]
fn glob_matching() {
    assert!(glob_match("openai/gpt-4o", "openai/gpt-4o"));
    assert!(!glob_match("openai/gpt-4o", "openai/gpt-4o-mini"));
    assert!(glob_match("openai/*", "openai/gpt-4o-mini"));
    assert!(glob_match("*/claude-*", "anthropic/claude-sonnet-4"));
    assert!(glob_match("openai/gpt-5*", "openai/gpt-5"));
    assert!(glob_match("*gpt*mini", "openai/gpt-4o-mini"));
    assert!(glob_match("*", ""));
    assert!(glob_match("OpenAI/*", "openai/gpt-4o"));
    assert!(!glob_match("anthropic/*", "openai/gpt-4o"));
    assert!(!glob_match("*mini", "openai/gpt-4o-mini-2024"));
}

#[test]
fn excluded_wins_over_allowed() {
    let r = router(1.0, 0.5);
    let c = r.choose(
        "x",
        &opts(&["openai/*", "anthropic/*"], &["anthropic/*"], None),
        &any,
    );
    assert_eq!(c.map(|c| c.slug), Ok("openai/gpt-4o".to_owned()));
    let none = r.choose("x", &opts(&["openai/*"], &["openai/*"], None), &any);
    assert_eq!(none, Err(NoCandidate));
    assert_eq!(
        NoCandidate.to_string(),
        "No models match your request and model restrictions"
    );
}

#[test]
fn eligibility_and_single_tier() {
    let r = router(0.0, 0.5);
    // Only strong models pass the caller's check: the top (only) tier is used even for an easy
    // prompt.
    let c = r.choose("x", &AutoOptions::default(), &|s: &str| {
        s.contains("gpt-4o")
    });
    assert_eq!(c.map(|c| c.slug), Ok("openai/gpt-4o-mini".to_owned()));
    let none = r.choose("x", &AutoOptions::default(), &|_: &str| false);
    assert_eq!(none, Err(NoCandidate));
}

#[test]
fn cost_tier_shifts_the_strong_share() {
    // Score 0.5 on a uniform calibration: strong iff the share exceeds 0.5.
    let r = router(0.5, 0.3);
    let tier = |t: Option<&str>| r.choose("x", &opts(&[], &[], t), &any).map(|c| c.tier);
    assert_eq!(tier(None), Ok(0));
    assert_eq!(tier(Some("low")), Ok(0));
    assert_eq!(tier(Some("medium")), Ok(0));
    assert_eq!(tier(Some("xhigh")), Ok(1));
    assert_eq!(tier(Some("max")), Ok(1));
    assert_eq!(tier(Some("bogus")), Ok(0), "unknown names are ignored");
    let shares: Vec<f32> = ["low", "medium", "high", "xhigh", "max"]
        .iter()
        .filter_map(|t| cost_tier_share(t))
        .collect();
    assert!(shares.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn three_tiers_split_the_rest_by_rank() {
    let mk = |score| AutoRouter {
        candidates: vec![
            Candidate::new("a", 0),
            Candidate::new("b", 1),
            Candidate::new("c", 2),
        ],
        ..router(score, 0.3)
    };
    let tier = |s: f32| {
        mk(s)
            .choose("x", &AutoOptions::default(), &any)
            .map(|c| c.tier)
    };
    assert_eq!(tier(0.2), Ok(0));
    assert_eq!(tier(0.5), Ok(1));
    assert_eq!(tier(0.8), Ok(2));
}

#[test]
fn escalation_never_downgrades() {
    let r = router(0.0, 0.5);
    assert_eq!(r.escalate(0), Some("anthropic/claude-sonnet-4"));
    assert_eq!(r.escalate(1), None);
    assert_eq!(r.escalate(7), None);
}

proptest! {
    #[test]
    fn escalation_goes_strictly_up(tiers in proptest::collection::vec(0u8..5, 1..8), from in 0u8..6) {
        let candidates: Vec<Candidate> =
            tiers.iter().enumerate().map(|(i, &t)| Candidate::new(format!("m{i}"), t)).collect();
        let r = AutoRouter { candidates: candidates.clone(), ..router(0.0, 0.5) };
        if let Some(slug) = r.escalate(from) {
            let c = candidates.iter().find(|c| c.slug == slug).map(|c| c.tier);
            prop_assert!(c.is_some_and(|t| t > from));
        } else {
            prop_assert!(tiers.iter().all(|&t| t <= from));
        }
    }

    #[test]
    fn higher_share_never_raises_the_threshold(
        scores in proptest::collection::vec(0.0f32..1.0, 1..200),
        a in 0.0f32..1.0,
        b in 0.0f32..1.0,
    ) {
        let c = Calibration::from_scores(&scores);
        prop_assert!(c.quantiles.windows(2).all(|w| w[0] <= w[1]));
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(c.threshold(hi) <= c.threshold(lo));
    }
}

#[test]
fn calibration_extremes() {
    let c = uniform();
    assert_eq!(c.threshold(0.0), f32::INFINITY);
    assert_eq!(c.threshold(1.0), f32::NEG_INFINITY);
    assert!((c.threshold(0.25) - 0.75).abs() < 1e-6);
}

#[test]
fn sticky_expires_after_idle_ttl() {
    let s = Sticky::default();
    let t0 = Instant::now();
    let k = Sticky::key(None, "first message");
    assert_eq!(k, Sticky::key(None, "first message"));
    assert_ne!(k, Sticky::key(Some("first message"), ""));
    s.insert_at(k, "openai/gpt-4o", t0);
    let nine = t0 + Duration::from_secs(9 * 60);
    assert_eq!(s.get_at(k, nine).as_deref(), Some("openai/gpt-4o"));
    // The read refreshed the idle timer: 9 more minutes is still inside the TTL…
    assert!(s.get_at(k, nine + Duration::from_secs(9 * 60)).is_some());
    // …but 10 idle minutes is not.
    assert!(s.get_at(k, nine + Duration::from_secs(28 * 60)).is_none());
    assert!(s.is_empty());
}

#[test]
fn sticky_is_bounded() {
    let s = Sticky::new(Duration::from_secs(600), 3);
    let t0 = Instant::now();
    for i in 0..10u64 {
        s.insert_at(i, "m", t0 + Duration::from_secs(i));
    }
    assert_eq!(s.len(), 3);
    let now = t0 + Duration::from_secs(10);
    assert!(s.get_at(9, now).is_some() && s.get_at(0, now).is_none());
}

#[test]
fn shipped_scorers_load_and_stay_in_range() {
    let art = shipped();
    assert_eq!(art.default.calibration.quantiles.len(), 101);
    assert_eq!(art.knn.calibration.quantiles.len(), 101);
    let (dflt, cal) = default_scorer();
    let (heur, _) = heuristic_scorer();
    let (lin, lin_cal) = linear_scorer();
    assert!(lin_cal.quantiles.windows(2).all(|w| w[0] <= w[1]));
    assert!(cal.quantiles.windows(2).all(|w| w[0] <= w[1]));
    let long = "word ".repeat(50_000);
    for p in [
        "",
        "hi",
        "¿Qué tal? 日本語のテキスト 🎉",
        long.as_str(),
        "\0\u{7}\u{fffd}",
    ] {
        for s in [&dflt, &heur, &lin] {
            let v = s.score(p);
            assert!(
                (0.0..=1.0).contains(&v),
                "{} gave {v} for {:?}",
                s.name(),
                &p[..p.len().min(20)]
            );
        }
    }
    assert!(dflt.name().starts_with("knn/potion-base-2M"));
    assert!(lin.name().starts_with("static-linear/potion-base-2M"));
    // The shipped bank holds every decontaminated RouteLLM prompt, behind a coarse index.
    let bank = shipped_bank();
    assert_eq!((bank.len(), bank.k()), (15_416, 100));
    assert!(bank.clusters() > 1);
    let (_, len_cal) = length_scorer();
    assert!(len_cal.quantiles.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn a_math_word_problem_scores_higher_than_hi() {
    let (dflt, _) = default_scorer();
    let hard = "Janet has 3 boxes of 12 pencils. She gives 7 pencils to each of her 4 friends and \
                then buys twice as many as she has left. How many pencils does she have now?";
    assert!(
        dflt.score(hard) > dflt.score("hi"),
        "{} vs {}",
        dflt.score(hard),
        dflt.score("hi")
    );
}

#[test]
fn length_scorer_is_monotone() {
    assert!(LengthScorer.score("a longer prompt") > LengthScorer.score("short"));
}

#[test]
fn perfect_ranking_reaches_the_oracle_and_cpt_is_exact() {
    // 10 prompts: 2 with gain 1, the rest 0.
    let weak = [0.0; 10];
    let strong = [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
    let oracle: Vec<f32> = strong.iter().map(|&s| s as f32).collect();
    let m = Ranked::new(&oracle, &weak, &strong, 1).metrics();
    // PGR: 0, .5, 1, 1, …: area = (0.25 + 0.75 + 8) / 10.
    assert!((m.apgr - 0.9).abs() < 1e-12, "{}", m.apgr);
    assert!((m.cpt50 - 0.1).abs() < 1e-12 && (m.cpt80 - 0.2).abs() < 1e-12);
    // Invariant under monotone transforms of the score.
    let squashed: Vec<f32> = oracle.iter().map(|s| (s * 3.0 - 1.0).tanh()).collect();
    assert_eq!(Ranked::new(&squashed, &weak, &strong, 1).metrics(), m);
}

#[test]
fn random_ranking_averages_one_half() {
    let mut rng = SplitMix64(7);
    let n = 500;
    let weak: Vec<f64> = (0..n)
        .map(|_| f64::from(u8::from(rng.next_f64() < 0.6)))
        .collect();
    let strong: Vec<f64> = (0..n)
        .map(|_| f64::from(u8::from(rng.next_f64() < 0.8)))
        .collect();
    let runs = 200;
    let mean: f64 = (0..runs)
        .map(|_| {
            let s: Vec<f32> = (0..n).map(|_| rng.next_f64() as f32).collect();
            Ranked::new(&s, &weak, &strong, rng.next_u64())
                .metrics()
                .apgr
        })
        .sum::<f64>()
        / f64::from(runs);
    assert!((mean - 0.5).abs() < 0.02, "{mean}");
}

#[test]
fn reproduces_reference_values_on_the_routellm_file() {
    let paths = [
        "../shared/autorouter-data/routellm-evals/routing_eval.jsonl",
        "../../shared/autorouter-data/routellm-evals/routing_eval.jsonl",
    ];
    let Some(text) = paths.iter().find_map(|p| std::fs::read_to_string(p).ok()) else {
        eprintln!("skipping: routing_eval.jsonl is not beside the checkout");
        return;
    };
    let rows = switchyard::autoroute::train::parse_jsonl(&text).unwrap_or_default();
    // (set, length APGR, oracle APGR) from the data README.
    for (set, len_apgr, oracle_apgr) in [
        ("mmlu", 0.586, 1.285),
        ("gsm8k", 0.598, 1.121),
        ("mt_bench", 0.547, 0.964),
    ] {
        let r: Vec<_> = rows
            .iter()
            .filter(|e| e.dataset == set && !e.routellm_contaminated)
            .collect();
        let w: Vec<f64> = r
            .iter()
            .map(|e| e.scores["mistralai/Mixtral-8x7B-Instruct-v0.1"])
            .collect();
        let s: Vec<f64> = r.iter().map(|e| e.scores["gpt-4-1106-preview"]).collect();
        let len: Vec<f32> = r.iter().map(|e| LengthScorer.score(&e.prompt)).collect();
        let gap: Vec<f32> = s.iter().zip(&w).map(|(s, w)| (s - w) as f32).collect();
        let l = Ranked::new(&len, &w, &s, 1).metrics().apgr;
        let o = Ranked::new(&gap, &w, &s, 1).metrics().apgr;
        assert!((l - len_apgr).abs() < 0.003, "{set}: length {l}");
        assert!((o - oracle_apgr).abs() < 0.003, "{set}: oracle {o}");
    }
}
