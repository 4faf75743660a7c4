//! Trains the auto-router scorers, evaluates them RouteLLM-style, and regenerates
//! `assets/autoroute/router.json` and `docs/autoroute.md`. Deterministic (fixed seeds).
//!
//! ```text
//! cargo run --release --example autoroute_eval [DATA.jsonl] [--resamples N]
//! cargo run --release --example autoroute_eval -- --import-potion DIR   # re-import the table
//! cargo run --release --example autoroute_eval -- --bank-out bank.bin --weak MODEL DATA.jsonl
//! ```
//! The last form builds a kNN bank from your own labels (`{prompt, scores: {model: value}}`,
//! optional `dataset`): a prompt is hard when `MODEL`, the cheap tier, scored below its median
//! within the prompt's dataset. Point `[auto] bank` at the file to use it.
//! `DATA.jsonl` defaults to `../shared/autorouter-data/routellm-evals/routing_eval.jsonl`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use switchyard::autoroute::calibrate::Calibration;
use switchyard::autoroute::eval::{Estimate, Ranked, SplitMix64};
use switchyard::autoroute::scorer::{
    FEATURE_NAMES, HeuristicScorer, KnnBank, KnnMeta, KnnScorer, LengthScorer, LinearHead,
    N_FEATURES, RouterArtifact, Scorer, StaticEmbedder, StaticLinearScorer,
};
use switchyard::autoroute::train::{FitOptions, Logistic, parse_jsonl, weak_fails};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const DEFAULT_DATA: &str = "../shared/autorouter-data/routellm-evals/routing_eval.jsonl";
const STRONG: &str = "gpt-4-1106-preview";
const WEAK: &str = "mistralai/Mixtral-8x7B-Instruct-v0.1";
const BENCHES: [&str; 3] = ["mt_bench", "mmlu", "gsm8k"];
const LAMBDAS: [f64; 6] = [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0];

/// What the logistic head predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Label {
    /// The strong model scores higher than the weak one.
    Gain,
    /// The weak model scores below its median on that benchmark (for 0/1 scores: it fails).
    WeakBelowMedian,
}

/// One point of the hyper-parameter grid.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
struct Config {
    lambda: f64,
    label: Label,
    /// Use only `log_chars` of the hand features (the others are zeroed).
    len_only: bool,
}

impl std::fmt::Display for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let l = match self.label {
            Label::Gain => "strong > weak",
            Label::WeakBelowMedian => "weak < its median",
        };
        let w = if self.len_only {
            ", hand features: log_chars only"
        } else {
            ", all hand features"
        };
        write!(f, "λ = {:e}, label: {l}{w}", self.lambda)
    }
}

fn grid() -> Vec<Config> {
    [Label::Gain, Label::WeakBelowMedian]
        .into_iter()
        .flat_map(|label| LAMBDAS.map(|lambda| (label, lambda)))
        .flat_map(|(label, lambda)| {
            [false, true].map(|len_only| Config {
                lambda,
                label,
                len_only,
            })
        })
        .collect()
}
/// Benchmark balancing: each row weighs `n_benchmark^-ALPHA` (fixed a priori, not tuned).
const ALPHA: f64 = 0.5;
const SEED: u64 = 20_261_124;
/// Neighbourhood size of the kNN scorer (fixed a priori, not tuned).
const KNN_K: usize = 100;
const KNN_NAME: &str = "knn/potion-base-2M@1";
const KNN_ROWS: &str = "Default (potion-2M kNN ‖ relative length)";
const LINEAR_ROWS: &str = "Linear (potion-2M ‖ hand, logistic)";

/// RouteLLM paper, best router per benchmark (Tables 1–3): APGR, CPT(50%), CPT(80%).
const ROUTELLM: [(&str, &str, f64, f64, f64); 3] = [
    ("mt_bench", "MF, Arena + judge", 0.802, 0.1340, 0.3131),
    ("mmlu", "SW ranking, Arena + gold", 0.603, 0.3540, 0.7155),
    ("gsm8k", "Causal LLM, Arena + judge", 0.622, 0.3364, 0.6326),
];

struct Row {
    bench: usize,
    category: String,
    prompt: String,
    weak: f64,
    strong: f64,
}

/// Feature matrices for both learned scorers.
struct Inputs {
    full: Vec<Vec<f32>>,
    hand: Vec<Vec<f32>>,
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--import-potion") {
        let dir = args.get(i + 1).ok_or("--import-potion needs a directory")?;
        return import_potion(dir);
    }
    if args.iter().any(|a| a == "--bank-out") {
        return build_bank(&args);
    }
    let resamples = match args.iter().position(|a| a == "--resamples") {
        Some(i) => args
            .get(i + 1)
            .ok_or("--resamples needs a number")?
            .parse()?,
        None => 1000,
    };
    let data_path = args
        .iter()
        .enumerate()
        .find(|(i, a)| !a.starts_with("--") && (*i == 0 || args[i - 1] != "--resamples"))
        .map(|(_, a)| a.clone())
        .or_else(|| {
            // The worktree layout puts `shared/` one level further up.
            [DEFAULT_DATA, &format!("../{DEFAULT_DATA}")]
                .into_iter()
                .find(|p| std::path::Path::new(p).exists())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| DEFAULT_DATA.to_owned());
    let text = std::fs::read_to_string(&data_path)
        .map_err(|e| format!("{data_path}: {e} (pass the path to routing_eval.jsonl)"))?;
    let sha = sha256_hex(text.as_bytes());
    let rows: Vec<Row> = parse_jsonl(&text)?
        .into_iter()
        .filter(|e| !e.routellm_contaminated)
        .filter_map(|e| {
            let bench = BENCHES.iter().position(|b| *b == e.dataset)?;
            Some(Row {
                bench,
                weak: *e.scores.get(WEAK)?,
                strong: *e.scores.get(STRONG)?,
                category: e.category,
                prompt: e.prompt,
            })
        })
        .collect();
    let mut out = String::new();
    let t0 = Instant::now();
    let emb = StaticEmbedder::shipped();
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let inputs = features(&rows, emb);
    eprintln!(
        "features for {} prompts in {:.1?}",
        rows.len(),
        t0.elapsed()
    );

    let by_bench: Vec<Vec<usize>> = (0..3)
        .map(|b| (0..rows.len()).filter(|&i| rows[i].bench == b).collect())
        .collect();
    let mut report = Report::default();
    for (b, idx) in by_bench.iter().enumerate() {
        let w: Vec<f64> = idx.iter().map(|&i| rows[i].weak).collect();
        let s: Vec<f64> = idx.iter().map(|&i| rows[i].strong).collect();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        report
            .sets
            .push((BENCHES[b], idx.len(), mean(&w), mean(&s)));
    }

    // Baselines.
    for (b, idx) in by_bench.iter().enumerate() {
        let est = |scores: &[f32], salt: u64| estimate(&rows, idx, scores, resamples, salt);
        let len: Vec<f32> = idx
            .iter()
            .map(|&i| LengthScorer.score(&rows[i].prompt))
            .collect();
        let oracle: Vec<f32> = idx
            .iter()
            .map(|&i| (rows[i].strong - rows[i].weak) as f32)
            .collect();
        report.add("Prompt length (no training)", b, est(&len, 1));
        report.add("Oracle (true gap)", b, est(&oracle, 2));
        let mut rng = SplitMix64(SEED ^ b as u64);
        let mut sum = [0.0; 4];
        let runs = 20;
        for r in 0..runs {
            let rand: Vec<f32> = idx.iter().map(|_| rng.next_f64() as f32).collect();
            let m = Ranked::new(&rand, &w_of(&rows, idx), &s_of(&rows, idx), SEED + r).metrics();
            for (acc, v) in sum.iter_mut().zip([m.apgr, m.apgr10, m.cpt50, m.cpt80]) {
                *acc += v / f64::from(runs as u32);
            }
        }
        report.random[b] = sum;
    }

    // The default scorer: a kNN bank of the other two benchmarks (LOBO), or of those plus four
    // folds of this one (CV). Nothing to select: k and the combination rule are fixed.
    for test in 0..3 {
        let idx = &by_bench[test];
        let others: Vec<usize> = (0..3)
            .filter(|&b| b != test)
            .flat_map(|b| by_bench[b].iter().copied())
            .collect();
        let s = knn_scores(&rows, emb, &others, idx);
        report.add(
            &format!("{KNN_ROWS} — LOBO"),
            test,
            estimate(&rows, idx, &s, resamples, 6),
        );
        eprintln!("knn LOBO {}: {:.3}", BENCHES[test], report.last_apgr());
        let fold_of = folds(&rows, idx, test);
        let mut cv = vec![0.0; idx.len()];
        for fold in 0..5 {
            // Positions (in `idx`) of this fold's prompts; the rest of the set joins the bank.
            let held: Vec<usize> = (0..idx.len()).filter(|&k| fold_of[k] == fold).collect();
            let mut bank = others.clone();
            bank.extend(
                (0..idx.len())
                    .filter(|&k| fold_of[k] != fold)
                    .map(|k| idx[k]),
            );
            let held_rows: Vec<usize> = held.iter().map(|&k| idx[k]).collect();
            let s = knn_scores(&rows, emb, &bank, &held_rows);
            for (&k, v) in held.iter().zip(s) {
                cv[k] = v;
            }
        }
        report.add(
            &format!("{KNN_ROWS} — 5-fold CV"),
            test,
            estimate(&rows, idx, &cv, resamples, 7),
        );
    }

    // Learned scorers: leave-one-benchmark-out (λ picked by inner LOBO on the two training
    // benchmarks only) and 5-fold CV with the same λ.
    let mut chosen: BTreeMap<(&str, usize), (Config, Config)> = BTreeMap::new();
    for (label, x) in [("hand", &inputs.hand), ("default", &inputs.full)] {
        let name = if label == "hand" {
            "Heuristic (hand features, logistic)"
        } else {
            LINEAR_ROWS
        };
        for test in 0..3 {
            let train: Vec<usize> = (0..3).filter(|&b| b != test).collect();
            let tr: Vec<usize> = train
                .iter()
                .flat_map(|&b| by_bench[b].iter().copied())
                .collect();
            let idx = &by_bench[test];
            let inner = inner_select(&rows, x, &by_bench, &train);
            let by_cv = cv_select(&rows, x, &by_bench, &train);
            chosen.insert((label, test), (inner, by_cv));
            for (how, cfg) in [("LOBO", inner), ("LOBO, config by training-set CV", by_cv)] {
                let m = fit(&rows, x, &tr, cfg);
                let scores: Vec<f32> = idx.iter().map(|&i| m.predict(&x[i])).collect();
                let e = estimate(&rows, idx, &scores, resamples, 3);
                report.add(&format!("{name} — {how}"), test, e);
                eprintln!(
                    "{label} {how} {} {cfg}: {:.3}",
                    BENCHES[test],
                    report.last_apgr()
                );
            }
            let avg = grid_average(x, &tr, idx, |cfg| fit(&rows, x, &tr, cfg));
            let e = estimate(&rows, idx, &avg, resamples, 5);
            report.add(
                &format!("{name} — LOBO, grid average (no selection)"),
                test,
                e,
            );
            eprintln!(
                "{label} grid average {}: {:.3}",
                BENCHES[test],
                report.last_apgr()
            );
            let cv = cross_validate(&rows, x, &by_bench, test, inner);
            report.add(
                &format!("{name} — 5-fold CV"),
                test,
                estimate(&rows, idx, &cv, resamples, 4),
            );
        }
    }

    // Shipped artefact: λ by plain LOBO (mean over the three held-out sets), trained on all.
    let all: Vec<usize> = (0..rows.len()).collect();
    let mut heads = Vec::new();
    for (label, x) in [("hand", &inputs.hand), ("default", &inputs.full)] {
        let cfg = outer_select(&rows, x, &by_bench);
        let m = fit(&rows, x, &all, cfg);
        let scores: Vec<f32> = all.iter().map(|&i| m.predict(&x[i])).collect();
        let (name, in_names) = if label == "hand" {
            (
                "heuristic/hand14@1".to_owned(),
                FEATURE_NAMES.iter().map(|s| (*s).to_owned()).collect(),
            )
        } else {
            let mut v = vec![format!("emb*{}", emb.dim())];
            v.extend(FEATURE_NAMES.iter().map(|s| (*s).to_owned()));
            ("static-linear/potion-base-2M@1".to_owned(), v)
        };
        heads.push((
            cfg,
            head(name, in_names, &m, Calibration::from_scores(&scores)),
        ));
    }
    let (hand_cfg, heuristic) = heads.remove(0);
    let (full_cfg, default) = heads.remove(0);
    let len_scores: Vec<f32> = rows.iter().map(|r| LengthScorer.score(&r.prompt)).collect();
    let bank = knn_bank(&rows, emb, &all);
    std::fs::write("assets/autoroute/knn-bank.bin", bank.to_bytes())?;
    let knn = KnnMeta {
        name: KNN_NAME.to_owned(),
        calibration: Calibration::from_scores(&bank.leave_one_out_scores()),
    };

    // Latency of the freshly trained scorers over every prompt, single-threaded.
    let dflt = StaticLinearScorer::new(emb, default.clone());
    let heur = HeuristicScorer::new(heuristic.clone());
    let knn_scorer = KnnScorer::new(emb, bank, KNN_NAME.to_owned());
    let lat_knn = latency(&knn_scorer, &rows);
    let lat_default = latency(&dflt, &rows);
    let lat_heur = latency(&heur, &rows);
    let hard = "Janet has 3 boxes of 12 pencils. She gives 7 pencils to each of her 4 friends and \
                then buys twice as many as she has left. How many pencils does she have now?";
    eprintln!(
        "default: hi={:.3} hard={:.3}",
        dflt.score("hi"),
        dflt.score(hard)
    );

    let trained = serde_json::json!({
        "data": {"file": "routing_eval.jsonl", "sha256": sha, "rows": rows.len(),
                 "filter": "routellm_contaminated == false", "strong": STRONG, "weak": WEAK},
        "row_weight": format!("n_benchmark^-{ALPHA}"),
        "config": {"default": full_cfg.to_string(), "heuristic": hand_cfg.to_string()},
        "selection": "grid point (λ, label, hand features) maximising mean leave-one-benchmark-out APGR over the 3 sets",
        "calibration": "percentiles of the head's scores on all training rows (unweighted)",
        "seed": SEED,
        "lobo_apgr": report.apgr_summary(),
    });
    let art = RouterArtifact {
        format: 1,
        knn,
        default,
        heuristic,
        length_calibration: Calibration::from_scores(&len_scores),
        trained,
    };
    let json = serde_json::to_string_pretty(&art)? + "\n";
    std::fs::write("assets/autoroute/router.json", &json)?;

    write_doc(
        &mut out,
        &report,
        &chosen,
        resamples,
        [lat_knn, lat_default, lat_heur],
        load_ms,
        &data_path,
        &sha,
    )?;
    std::fs::write("docs/autoroute.md", &out)?;
    println!("{out}");
    eprintln!(
        "wrote assets/autoroute/router.json and docs/autoroute.md in {:.1?}",
        t0.elapsed()
    );
    Ok(())
}

/// `--bank-out FILE --weak MODEL DATA.jsonl`: a kNN bank from any labelled JSON Lines file.
fn build_bank(args: &[String]) -> Res<()> {
    let value = |flag: &str| -> Res<&String> {
        let i = args
            .iter()
            .position(|a| a == flag)
            .ok_or(format!("{flag} is required"))?;
        Ok(args.get(i + 1).ok_or(format!("{flag} needs a value"))?)
    };
    let (out, weak) = (value("--bank-out")?, value("--weak")?);
    let data = args
        .iter()
        .enumerate()
        .find(|(i, a)| !a.starts_with("--") && (*i == 0 || !args[i - 1].starts_with("--")))
        .map(|(_, a)| a)
        .ok_or("pass the labelled JSON Lines file")?;
    let text = std::fs::read_to_string(data).map_err(|e| format!("{data}: {e}"))?;
    let examples: Vec<_> = parse_jsonl(&text)
        .map_err(|e| format!("{data}: {e}"))?
        .into_iter()
        .filter(|e| !e.routellm_contaminated)
        .collect();
    let labelled: Vec<(&str, bool)> = examples
        .iter()
        .zip(weak_fails(&examples, weak))
        .filter_map(|(e, hard)| Some((e.prompt.as_str(), hard?)))
        .collect();
    if labelled.is_empty() {
        return Err(format!("{data}: no prompt has a score for `{weak}`").into());
    }
    let prompts: Vec<&str> = labelled.iter().map(|l| l.0).collect();
    let hard: Vec<bool> = labelled.iter().map(|l| l.1).collect();
    let bank = KnnBank::build(StaticEmbedder::shipped(), &prompts, &hard, KNN_K);
    std::fs::write(out, bank.to_bytes()).map_err(|e| format!("{out}: {e}"))?;
    let n_hard = hard.iter().filter(|h| **h).count();
    eprintln!(
        "wrote {out}: {} prompts ({n_hard} hard for `{weak}`), {} clusters, k = {KNN_K}",
        bank.len(),
        bank.clusters()
    );
    Ok(())
}

/// The weak model's median score per benchmark over the rows `idx` (0 where none).
fn weak_medians(rows: &[Row], idx: &[usize]) -> Vec<f64> {
    (0..3)
        .map(|b| {
            let mut v: Vec<f64> = idx
                .iter()
                .filter(|&&i| rows[i].bench == b)
                .map(|&i| rows[i].weak)
                .collect();
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(0.0)
        })
        .collect()
}

/// A kNN bank of `bank` rows; a row is hard when the weak model scored below its benchmark's
/// median over those rows (for 0/1 scores: it failed).
fn knn_bank(rows: &[Row], emb: &StaticEmbedder, bank: &[usize]) -> KnnBank {
    let median = weak_medians(rows, bank);
    let prompts: Vec<&str> = bank.iter().map(|&i| rows[i].prompt.as_str()).collect();
    let hard: Vec<bool> = bank
        .iter()
        .map(|&i| rows[i].weak < median[rows[i].bench])
        .collect();
    KnnBank::build(emb, &prompts, &hard, KNN_K)
}

/// Scores of the `test` rows by a kNN scorer over a bank of the `bank` rows.
fn knn_scores(
    rows: &[Row],
    emb: &'static StaticEmbedder,
    bank: &[usize],
    test: &[usize],
) -> Vec<f32> {
    let s = KnnScorer::new(emb, knn_bank(rows, emb, bank), KNN_NAME.to_owned());
    test.iter().map(|&i| s.score(&rows[i].prompt)).collect()
}

fn w_of(rows: &[Row], idx: &[usize]) -> Vec<f64> {
    idx.iter().map(|&i| rows[i].weak).collect()
}

fn s_of(rows: &[Row], idx: &[usize]) -> Vec<f64> {
    idx.iter().map(|&i| rows[i].strong).collect()
}

fn estimate(rows: &[Row], idx: &[usize], scores: &[f32], resamples: usize, salt: u64) -> Estimate {
    Ranked::new(scores, &w_of(rows, idx), &s_of(rows, idx), SEED ^ salt)
        .bootstrap(resamples, SEED.wrapping_mul(31) ^ salt)
}

fn apgr(rows: &[Row], idx: &[usize], scores: &[f32]) -> f64 {
    Ranked::new(scores, &w_of(rows, idx), &s_of(rows, idx), SEED)
        .metrics()
        .apgr
}

fn features(rows: &[Row], emb: &StaticEmbedder) -> Inputs {
    let d = emb.dim() + N_FEATURES;
    let full: Vec<Vec<f32>> = rows
        .iter()
        .map(|r| {
            let mut v = vec![0.0; d];
            StaticLinearScorer::inputs(emb, &r.prompt, &mut v);
            v
        })
        .collect();
    let hand = full.iter().map(|v| v[emb.dim()..].to_vec()).collect();
    Inputs { full, hand }
}

fn fit(rows: &[Row], x: &[Vec<f32>], train: &[usize], cfg: Config) -> Logistic {
    let d = x.first().map_or(0, Vec::len);
    // Column of `log_chars`, the one prior that holds on every benchmark (longer prompts are
    // harder); it is moved to the unpenalised tail, so a large λ shrinks the model towards the
    // length baseline rather than towards a constant.
    let lc = d - N_FEATURES;
    let mut n_b = [0usize; 3];
    train.iter().for_each(|&i| n_b[rows[i].bench] += 1);
    // Benchmark indicators (all but the first present) absorb each benchmark's base rate, so the
    // shared weights learn what makes a prompt hard *within* a benchmark; dropped after fitting.
    let present: Vec<usize> = (0..3).filter(|&b| n_b[b] > 0).skip(1).collect();
    let xs: Vec<Vec<f32>> = train
        .iter()
        .map(|&i| {
            let mut v = x[i].clone();
            if cfg.len_only {
                v[lc + 1..].iter_mut().for_each(|f| *f = 0.0);
            }
            let len = v.remove(lc);
            v.push(len);
            let b = rows[i].bench;
            v.extend(present.iter().map(|&p| f32::from(u8::from(b == p))));
            v
        })
        .collect();
    let median = weak_medians(rows, train);
    let y: Vec<bool> = train
        .iter()
        .map(|&i| match cfg.label {
            Label::Gain => rows[i].strong > rows[i].weak,
            Label::WeakBelowMedian => rows[i].weak < median[rows[i].bench],
        })
        .collect();
    let w: Vec<f64> = train
        .iter()
        .map(|&i| (n_b[rows[i].bench] as f64).powf(-ALPHA))
        .collect();
    let opts = FitOptions {
        lambda: cfg.lambda,
        free_tail: 1 + present.len(),
        ..FitOptions::default()
    };
    let mut m = Logistic::fit(&xs, &y, &w, opts);
    m.truncate(d);
    // Back to the input order.
    for v in [&mut m.mean, &mut m.std, &mut m.w] {
        let len = v.pop().unwrap_or_default();
        v.insert(lc, len);
    }
    if cfg.len_only {
        // Unused inputs: zero weight, and a neutral standardisation so serving ignores them.
        for j in lc + 1..d {
            m.w[j] = 0.0;
            m.mean[j] = 0.0;
            m.std[j] = 1.0;
        }
    }
    m
}

/// The grid point for a model trained on the benchmarks `train`, chosen on those benchmarks
/// only: 5-fold CV over their rows (folds as in [`folds`]), then the mean over those benchmarks
/// of the APGR of the out-of-fold scores (first best in grid order on ties).
fn cv_select(rows: &[Row], x: &[Vec<f32>], by_bench: &[Vec<usize>], train: &[usize]) -> Config {
    let fold: Vec<Vec<usize>> = train
        .iter()
        .map(|&b| folds(rows, &by_bench[b], b))
        .collect();
    let all: Vec<usize> = train
        .iter()
        .flat_map(|&b| by_bench[b].iter().copied())
        .collect();
    let fold_all: Vec<usize> = fold.iter().flatten().copied().collect();
    best(|cfg| {
        let mut oof = vec![0.0f32; all.len()];
        for f in 0..5 {
            let tr: Vec<usize> = all
                .iter()
                .zip(&fold_all)
                .filter(|(_, k)| **k != f)
                .map(|(i, _)| *i)
                .collect();
            let m = fit(rows, x, &tr, cfg);
            for (k, &i) in all.iter().enumerate() {
                if fold_all[k] == f {
                    oof[k] = m.predict(&x[i]);
                }
            }
        }
        let mut start = 0;
        let mut sum = 0.0;
        for &b in train {
            let n = by_bench[b].len();
            sum += apgr(rows, &by_bench[b], &oof[start..start + n]);
            start += n;
        }
        sum / train.len() as f64
    })
}

/// The grid point for a model trained on `train` benchmarks, chosen without looking at any other benchmark:
/// train on one of them, validate on the other, both ways; best mean APGR (first on ties).
fn inner_select(rows: &[Row], x: &[Vec<f32>], by_bench: &[Vec<usize>], train: &[usize]) -> Config {
    best(|cfg| {
        let pairs = [(train[0], train[1]), (train[1], train[0])];
        pairs
            .iter()
            .map(|&(a, v)| {
                let m = fit(rows, x, &by_bench[a], cfg);
                let s: Vec<f32> = by_bench[v].iter().map(|&i| m.predict(&x[i])).collect();
                apgr(rows, &by_bench[v], &s)
            })
            .sum::<f64>()
            / 2.0
    })
}

/// The grid point for the shipped model: mean LOBO APGR over all three benchmarks.
fn outer_select(rows: &[Row], x: &[Vec<f32>], by_bench: &[Vec<usize>]) -> Config {
    best(|cfg| {
        (0..3)
            .map(|t| {
                let tr: Vec<usize> = (0..3)
                    .filter(|&b| b != t)
                    .flat_map(|b| by_bench[b].iter().copied())
                    .collect();
                let m = fit(rows, x, &tr, cfg);
                let s: Vec<f32> = by_bench[t].iter().map(|&i| m.predict(&x[i])).collect();
                apgr(rows, &by_bench[t], &s)
            })
            .sum::<f64>()
            / 3.0
    })
}

fn best(mut score: impl FnMut(Config) -> f64) -> Config {
    let g = grid();
    let mut best = (f64::NEG_INFINITY, g[0]);
    for c in g {
        let v = score(c);
        if v > best.0 {
            best = (v, c);
        }
    }
    best.1
}

/// Out-of-fold scores for benchmark `test`: 5 folds (MMLU grouped by subject), each trained on
/// the other two benchmarks plus the other four folds.
fn cross_validate(
    rows: &[Row],
    x: &[Vec<f32>],
    by_bench: &[Vec<usize>],
    test: usize,
    cfg: Config,
) -> Vec<f32> {
    let idx = &by_bench[test];
    let fold_of = folds(rows, idx, test);
    let others: Vec<usize> = (0..3)
        .filter(|&b| b != test)
        .flat_map(|b| by_bench[b].iter().copied())
        .collect();
    let mut scores = vec![0.0; idx.len()];
    for fold in 0..5 {
        let mut tr = others.clone();
        tr.extend(
            idx.iter()
                .zip(&fold_of)
                .filter(|(_, f)| **f != fold)
                .map(|(i, _)| *i),
        );
        let m = fit(rows, x, &tr, cfg);
        for (k, &i) in idx.iter().enumerate() {
            if fold_of[k] == fold {
                scores[k] = m.predict(&x[i]);
            }
        }
    }
    scores
}

/// Scores for `idx` averaged over every grid point's model (trained by `fit_cfg`), each model's
/// logit standardised by its mean and spread on the training rows `tr`: no selection at all.
fn grid_average(
    x: &[Vec<f32>],
    tr: &[usize],
    idx: &[usize],
    mut fit_cfg: impl FnMut(Config) -> Logistic,
) -> Vec<f32> {
    let logit = |p: f32| {
        let p = f64::from(p).clamp(1e-9, 1.0 - 1e-9);
        (p / (1.0 - p)).ln()
    };
    let g = grid();
    let mut sum = vec![0.0f64; idx.len()];
    for cfg in &g {
        let m = fit_cfg(*cfg);
        let t: Vec<f64> = tr.iter().map(|&i| logit(m.predict(&x[i]))).collect();
        let mean = t.iter().sum::<f64>() / t.len() as f64;
        let sd = (t.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / t.len() as f64).sqrt();
        for (acc, &i) in sum.iter_mut().zip(idx) {
            *acc += (logit(m.predict(&x[i])) - mean) / sd.max(1e-12);
        }
    }
    // Back to (0, 1) so the values read as scores; the order is what matters.
    sum.iter()
        .map(|z| (1.0 / (1.0 + (-z / g.len() as f64).exp())) as f32)
        .collect()
}

/// Fold (0..5) of each prompt of benchmark `bench` (`idx`): MMLU grouped by subject, the others
/// at random; fixed seeds.
fn folds(rows: &[Row], idx: &[usize], bench: usize) -> Vec<usize> {
    let mut rng = SplitMix64(SEED ^ 0xcf ^ bench as u64);
    if BENCHES[bench] == "mmlu" {
        let mut cats: Vec<&str> = idx.iter().map(|&i| rows[i].category.as_str()).collect();
        cats.sort_unstable();
        cats.dedup();
        shuffle(&mut cats, &mut rng);
        let f: BTreeMap<&str, usize> = cats.iter().enumerate().map(|(k, c)| (*c, k % 5)).collect();
        idx.iter().map(|&i| f[rows[i].category.as_str()]).collect()
    } else {
        let mut order: Vec<usize> = (0..idx.len()).collect();
        shuffle(&mut order, &mut rng);
        let mut f = vec![0; idx.len()];
        order.iter().enumerate().for_each(|(k, &p)| f[p] = k % 5);
        f
    }
}

fn shuffle<T>(v: &mut [T], rng: &mut SplitMix64) {
    for i in (1..v.len()).rev() {
        v.swap(i, rng.below(i + 1));
    }
}

fn head(name: String, inputs: Vec<String>, m: &Logistic, calibration: Calibration) -> LinearHead {
    let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect();
    LinearHead {
        name,
        inputs,
        mean: f(&m.mean),
        std: f(&m.std),
        w: f(&m.w),
        b: m.b as f32,
        calibration,
    }
}

fn latency(s: &dyn Scorer, rows: &[Row]) -> (f64, f64, f64) {
    let mut sink = 0.0f32;
    for r in rows.iter().take(200) {
        sink += s.score(&r.prompt);
    }
    let mut t: Vec<f64> = rows
        .iter()
        .map(|r| {
            let t0 = Instant::now();
            sink += s.score(&r.prompt);
            t0.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    std::hint::black_box(sink);
    t.sort_by(f64::total_cmp);
    let q = |p: f64| t[((t.len() - 1) as f64 * p).round() as usize];
    (q(0.5), q(0.99), t[t.len() - 1])
}

#[derive(Default)]
struct Report {
    sets: Vec<(&'static str, usize, f64, f64)>,
    random: [[f64; 4]; 3],
    rows: Vec<(String, usize, Estimate)>,
}

impl Report {
    fn add(&mut self, name: &str, bench: usize, e: Estimate) {
        self.rows.push((name.to_owned(), bench, e));
    }
    fn last_apgr(&self) -> f64 {
        self.rows.last().map_or(f64::NAN, |r| r.2.point.apgr)
    }
    fn get(&self, name: &str, bench: usize) -> Option<&Estimate> {
        self.rows
            .iter()
            .find(|r| r.0 == name && r.1 == bench)
            .map(|r| &r.2)
    }
    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for r in &self.rows {
            if !v.contains(&r.0) {
                v.push(r.0.clone());
            }
        }
        v
    }
    fn apgr_summary(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for name in self.names().iter().filter(|n| n.contains("LOBO")) {
            let per: serde_json::Map<String, serde_json::Value> = (0..3)
                .filter_map(|b| {
                    let e = self.get(name, b)?;
                    Some((
                        BENCHES[b].to_owned(),
                        serde_json::json!((e.point.apgr * 1000.0).round() / 1000.0),
                    ))
                })
                .collect();
            m.insert(name.clone(), per.into());
        }
        m.into()
    }
}

fn ci(v: f64, (lo, hi): (f64, f64), pct: bool) -> String {
    if pct {
        format!("{:.1}% [{:.1}, {:.1}]", v * 100.0, lo * 100.0, hi * 100.0)
    } else {
        format!("{v:.3} [{lo:.3}, {hi:.3}]")
    }
}

fn bench_title(b: &str) -> &'static str {
    match b {
        "mt_bench" => "MT-Bench",
        "mmlu" => "MMLU",
        _ => "GSM8K",
    }
}

#[allow(clippy::too_many_arguments)]
fn write_doc(
    out: &mut String,
    r: &Report,
    chosen: &BTreeMap<(&str, usize), (Config, Config)>,
    resamples: usize,
    lat: [(f64, f64, f64); 3],
    load_ms: f64,
    data: &str,
    sha: &str,
) -> std::fmt::Result {
    let machine = machine();
    writeln!(out, "# Auto Router: scorer evaluation\n")?;
    writeln!(
        out,
        "Generated by `cargo run --release --example autoroute_eval` (deterministic: fixed seeds, \
        sorted iteration; everything but the latency section is identical between runs); do not edit by hand. It also rewrites `assets/autoroute/router.json`.\n"
    )?;
    let data = data.rsplit('/').next().unwrap_or(data);
    writeln!(
        out,
        "- Data: `{data}` (sha256 `{sha}`), rows with `routellm_contaminated == false` \
        (RouteLLM's decontamination: prompts within cosine 0.95 of its Arena training data removed)."
    )?;
    writeln!(
        out,
        "- Strong model `{STRONG}`, weak model `{WEAK}`. Linear heads weight rows by n_benchmark^-{ALPHA} (fixed a priori); the kNN bank holds rows unweighted."
    )?;
    writeln!(
        out,
        "- Bootstrap: {resamples} resamples of the test prompts, scores held fixed; [95% interval]."
    )?;
    writeln!(out, "- Machine: {machine}.\n")?;
    writeln!(
        out,
        "| Set | n | weak mean | strong mean |\n|---|---|---|---|"
    )?;
    for (b, n, w, s) in &r.sets {
        writeln!(out, "| {} | {n} | {w:.4} | {s:.4} |", bench_title(b))?;
    }
    writeln!(
        out,
        "\n## Headline: leave-one-benchmark-out (train on the other two, test on this one)\n"
    )?;
    writeln!(
        out,
        "**Default scorer (kNN).** The held-out benchmark's prompts are scored against a bank of the \
        other two benchmarks' prompts (5-fold CV: plus four folds of this one): the {KNN_K} most similar \
        bank prompts (cosine of potion-base-2M static embeddings, weighted by similarity⁴) give the \
        smoothed share the weak model failed (a logit), and the prompt's log length minus theirs gives \
        its relative length; the two are added after dividing each by its leave-one-out spread over \
        the bank (unit weights on standardised parts: nothing is fitted, so nothing can follow the \
        training domains). A bank prompt is *hard* when the weak model scored below its benchmark's \
        median (for 0/1 scores: it failed). k and the rule were fixed before the final run; see the \
        development log for what was seen before.\n"
    )?;
    writeln!(
        out,
        "**Linear and heuristic scorers** (the previous default, kept for comparison): L2-logistic heads \
        trained on the other two benchmarks. For each held-out \
        benchmark a grid point (λ ∈ {LAMBDAS:?}; label: strong > weak, or weak below its benchmark \
        median; hand features: all, or `log_chars` only) is chosen on the two training benchmarks \
        only, in two ways: *LOBO* by inner leave-one-benchmark-out (train on one, \
        validate on the other, both ways), and *LOBO, config by training-set CV* by 5-fold CV over the training rows. The held-out \
        benchmark is never used for fitting or selection. Benchmark indicator columns absorb each \
        benchmark's base rate during training and are dropped afterwards; `log_chars` is not \
        penalised, so a large λ shrinks a head towards the length baseline.\n"
    )?;
    for (b, bench) in BENCHES.iter().enumerate() {
        writeln!(out, "### {}\n", bench_title(bench))?;
        writeln!(
            out,
            "| Router | APGR (exact) | APGR (10-bin) | CPT(50%) | CPT(80%) |\n|---|---|---|---|---|"
        )?;
        let rnd = r.random[b];
        writeln!(
            out,
            "| Random (mean of 20 seeds; analytic 0.5) | {:.3} | {:.3} | {:.1}% | {:.1}% |",
            rnd[0],
            rnd[1],
            rnd[2] * 100.0,
            rnd[3] * 100.0
        )?;
        for name in r.names() {
            if let Some(e) = r.get(&name, b) {
                writeln!(
                    out,
                    "| {name} | {} | {} | {} | {} |",
                    ci(e.point.apgr, e.apgr, false),
                    ci(e.point.apgr10, e.apgr10, false),
                    ci(e.point.cpt50, e.cpt50, true),
                    ci(e.point.cpt80, e.cpt80, true)
                )?;
            }
        }
        let (_, who, a, c5, c8) = ROUTELLM[b];
        writeln!(
            out,
            "| *RouteLLM best published ({who})* | *{a:.3}* | — | *{:.1}%* | *{:.1}%* |\n",
            c5 * 100.0,
            c8 * 100.0
        )?;
        for (k, who) in [("default", "Linear"), ("hand", "Heuristic")] {
            if let Some((inner, by_cv)) = chosen.get(&(k, b)) {
                writeln!(
                    out,
                    "- {who}, chosen without this set: by inner LOBO {inner}; by CV {by_cv}."
                )?;
            }
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "## Summary (exact-curve APGR, LOBO for learned scorers)\n"
    )?;
    writeln!(
        out,
        "| Router | MT-Bench | MMLU | GSM8K |\n|---|---|---|---|"
    )?;
    for name in r.names() {
        let cells: Vec<String> = (0..3)
            .map(|b| {
                r.get(&name, b)
                    .map_or("—".into(), |e| format!("{:.3}", e.point.apgr))
            })
            .collect();
        writeln!(out, "| {name} | {} |", cells.join(" | "))?;
    }
    writeln!(
        out,
        "| *RouteLLM best published* | *0.802* | *0.603* | *0.622* |\n"
    )?;
    out.push_str(DEV_LOG);
    writeln!(
        out,
        "## Scorer latency (same run, one thread, every prompt above once)\n"
    )?;
    writeln!(out, "| Scorer | p50 | p99 | max |\n|---|---|---|---|")?;
    for (name, (p50, p99, max)) in [
        "Default (potion-2M kNN)",
        "Linear (potion-2M ‖ hand)",
        "Heuristic (hand features)",
    ]
    .iter()
    .zip(lat)
    {
        writeln!(out, "| {name} | {p50:.1} µs | {p99:.1} µs | {max:.1} µs |")?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "Wall-clock per call, release build, after a 200-prompt warm-up; the first call also pays \
        the one-time table load ({load_ms:.0} ms in this run, not counted). The maximum is dominated by scheduler \
        preemption on a shared 2-core VM and varies between runs; `cargo bench --bench autoroute` \
        repeats the measurement with criterion.\n"
    )?;
    writeln!(out, "## Findings\n")?;
    let apgr = |name: &str, b: usize| r.get(name, b).map_or(f64::NAN, |e| e.point.apgr);
    let knn = format!("{KNN_ROWS} — LOBO");
    let len = "Prompt length (no training)";
    let lin = format!("{LINEAR_ROWS} — LOBO");
    writeln!(
        out,
        "- **Where the default lands (LOBO, the headline):** MT-Bench {:.3}, MMLU {:.3}, GSM8K {:.3}, \
        against RouteLLM's best published 0.802 / 0.603 / 0.622 and prompt length {:.3} / {:.3} / {:.3}. \
        Against RouteLLM's points: {:+.3} on MT-Bench (72 prompts, interval ±0.1), {:+.3} on MMLU, \
        {:+.3} on GSM8K, where it is also {:+.3} against prompt length. The \
        previous default (linear head, inner-LOBO selection) had {:.3} / {:.3} / {:.3}.",
        apgr(&knn, 0),
        apgr(&knn, 1),
        apgr(&knn, 2),
        apgr(len, 0),
        apgr(len, 1),
        apgr(len, 2),
        apgr(&knn, 0) - ROUTELLM[0].2,
        apgr(&knn, 1) - ROUTELLM[1].2,
        apgr(&knn, 2) - ROUTELLM[2].2,
        apgr(&knn, 2) - apgr(len, 2),
        apgr(&lin, 0),
        apgr(&lin, 1),
        apgr(&lin, 2),
    )?;
    writeln!(
        out,
        "- **Why kNN:** what transfers between benchmarks is *topic* (math, reasoning, code and \
        moral-scenario questions are where Mixtral fails), and difficulty is local in embedding space \
        (the kNN paper's finding, arXiv 2505.12601): the failure rate of the 100 nearest labelled \
        prompts carries that signal without a fitted head that can overfit the two training domains. \
        On MMLU a per-subject oracle of the gap would reach 0.707, so topic is most of what is there.\n\
        - **Why relative length:** within a domain, longer means harder (more steps), but how much \
        differs by domain — the fitted length slope is 0.93 on GSM8K and 0.10 within MMLU subjects — \
        so a slope learned on two benchmarks does not transfer to the third (development log row 11). \
        Length *relative to the nearest prompts* is a within-domain signal by construction, and \
        adding it with unit weight after standardising (no fit) is the robust choice (row 14).\n\
        - **GSM8K is the hard case:** all of it is one topic, so only within-domain signals can help, \
        and the only one found (length) cannot be weighted from MMLU and MT-Bench. With in-domain \
        labels (5-fold CV rows) GSM8K rises to the length baseline; MMLU *drops* under subject-grouped \
        CV, because a subject's own neighbours mislead when the subject's labels are held out.\n\
        - **The linear head's selection problem is gone:** the kNN scorer has no grid to select from \
        (k = {KNN_K} and the combination rule fixed), so its LOBO numbers do not depend on a selection \
        rule the way the linear head's do (MT-Bench 0.56–0.75 across rules).\n\
        - **Next:** labels from the gateway's own traffic (AUTOROUTER.md §4.6) go straight into the \
        bank — no retraining, a new row per labelled prompt — which is the in-domain data RouteLLM \
        needed for its MMLU and GSM8K numbers.\n"
    )?;
    writeln!(out, "## Notes\n")?;
    writeln!(
        out,
        "- *Exact curve*: sort by score, send the top k to strong for k = 0..N, trapezoid over the \
        strong-call share. *10-bin*: thresholds at the 0th..100th score percentiles in steps of 10, as \
        in RouteLLM's evaluation code. CPT(x%) is the smallest strong-call share reaching PGR ≥ x (exact curve)."
    )?;
    writeln!(
        out,
        "- *5-fold CV* trains on the other two benchmarks plus four folds of this one (MMLU folds \
        grouped by subject; the others random), with the configuration chosen for LOBO; it shows what in-domain \
        labels add, like RouteLLM's \"+ gold / + judge\" routers."
    )?;
    writeln!(
        out,
        "- RouteLLM's numbers are quoted from its paper (Tables 1–3). Its routers were trained on other \
        data (Arena battles plus augmentation), so the comparison is of outcomes, not a like-for-like \
        replication; its random, length and oracle anchors are reproduced above on the same files."
    )?;
    writeln!(
        out,
        "- The default scorer's tokenizer is this crate's own BERT WordPiece (no NFD accent \
        stripping), and its embedding table is int8; training and serving use the same code."
    )?;
    writeln!(
        out,
        "- The oracle exceeds 1 where the weak model is sometimes right and the strong one wrong."
    )?;
    writeln!(
        out,
        "- MT-Bench has 72 prompts: intervals of ±0.1 APGR are normal there."
    )?;
    writeln!(
        out,
        "- The shipped kNN bank (`assets/autoroute/knn-bank.bin`) holds all rows; its calibration (the \
        cost knob) is the percentiles of the rows' leave-one-out scores, dominated by MMLU. The shipped \
        linear weights are trained on all rows with the grid point (λ, label, hand features) that \
        maximises mean LOBO APGR. Recalibrate on real traffic when logs exist.\n\
        - The kNN scorer reads only the nearest clusters of a coarse index (spherical k-means, ≤ 64 \
        clusters; clusters in order of centroid similarity until max(n/8, 10k) rows), which cost \
        0.02 APGR on MT-Bench against an exact search (rows 14–16) and cuts the scan to an eighth."
    )?;
    Ok(())
}

/// Development log: the variants tried while building the scorer, with the LOBO APGR each gave.
/// Static text (numbers from earlier runs of this example at 50 resamples), kept so the spread is
/// visible: picking the best row after the fact would be tuning on the held-out benchmarks.
const DEV_LOG: &str = "## Development log (variants tried, in order)

First round (2026-11-24), linear heads. Every change below was made after seeing the previous row's held-out numbers, so the rows are
not independent evidence; the spread between them (MT-Bench 0.56–0.75 for the default scorer) is
itself the main finding: with 72 MT-Bench prompts and only two other benchmarks to select on, the
transfer result depends more on the selection rule than on the model. The current code reports rows
6 (the headline rule, fixed before rows 7–8 were tried), 7 and 8; the shipped weights use row 6's rule with all three benchmarks (grid point by mean LOBO
APGR over the three).

| # | Change | Default LOBO (MT-Bench / MMLU / GSM8K) | Heuristic LOBO |
|---|---|---|---|
| 1 | label strong > weak; λ ∈ {1e-4…1e-1} by inner LOBO | 0.629 / 0.561 / 0.523 | 0.488 / 0.521 / 0.535 |
| 2 | + benchmark indicators (base rates absorbed) | 0.663 / 0.561 / 0.527 | 0.470 / 0.553 / 0.534 |
| 3 | + label choice (strong > weak, or weak below median) in the grid | 0.740 / 0.561 / 0.515 | 0.470 / 0.556 / 0.492 |
| 4 | + optional within-subject hand head (dropped) | 0.610 / 0.561 / 0.515 | — |
| 5 | 3 + optional `log_chars`-only hand features | 0.748 / 0.561 / 0.534 | 0.548 / 0.586 / 0.492 |
| 6 | 5 + `log_chars` unpenalised, λ grid up to 10 (current) | 0.558 / 0.562 / 0.534 | 0.548 / 0.586 / 0.538 |
| 7 | 6, grid point by CV on the training rows (now reported beside it) | 0.621 / 0.575 / 0.526 | 0.548 / 0.557 / 0.507 |
| 8 | 6, no selection: average of all 24 grid models' standardised logits (reported beside it) | 0.683 / 0.585 / 0.551 | 0.572 / 0.575 / 0.586 |

Second round (2026-11-29), exploring on the same features and folds; the numbers below were seen
before the shipped rule was chosen, so they too are not independent evidence. Rows 9–13 are
variants, row 14 the rule fixed for the shipped scorer, rows 15–16 the same with the coarse index.

| # | Change | LOBO (MT-Bench / MMLU / GSM8K) |
|---|---|---|
| 9 | linear head on embedding ‖ `log_chars`, label weak fails, rows unweighted, no benchmark indicators, fixed λ (no selection) | 0.758 / 0.606 / 0.527 |
| 10 | kNN failure rate alone (k = 20–400) | 0.78–0.79 / 0.54–0.56 / 0.49–0.50 |
| 11 | kNN rate + relative length, weighted by the training benchmarks' within-benchmark length slope (0.17–0.35) | 0.79–0.80 / 0.58–0.61 / 0.51–0.52 |
| 12 | kNN rate + relative length, hand-set weights 0.25–2 | 0.72–0.79 / 0.585–0.603 / 0.517–0.585 (a trade-off between MT-Bench and GSM8K) |
| 13 | k-means centroids (256 or 1,024) as neighbourhoods instead of prompts | 0.75–0.79 / 0.57–0.60 / 0.49–0.50 |
| 14 | kNN k = 100 (similarity⁴ weights) + relative length, unit weights on parts standardised by their leave-one-out spread over the bank (the rule shipped), exact search | 0.747 / 0.605 / 0.577 |
| 15 | 14 reading only the nearest clusters of a coarse index until n/5 rows (latency) | 0.737 / 0.605 / 0.577 |
| 16 | 15 until n/8 rows (shipped: p50 ≈ 65–100 µs at n/5 on this noisy machine was too close to the 100 µs budget) | 0.727 / 0.605 / 0.578 |

";

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{cpu}, {cores} cores available, {} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(b))
}

/// Converts potion-base-2M (`model.safetensors` + `tokenizer.json`) into the shipped
/// `potion-base-2M.vocab.txt` and int8 `potion-base-2M.q8`.
fn import_potion(dir: &str) -> Res<()> {
    let st = std::fs::read(format!("{dir}/model.safetensors"))?;
    let n = u64::from_le_bytes(st.get(..8).ok_or("short file")?.try_into()?) as usize;
    let header: serde_json::Value = serde_json::from_slice(&st[8..8 + n])?;
    let e = &header["embeddings"];
    if e["dtype"] != "F32" {
        return Err("expected F32 embeddings".into());
    }
    let rows = e["shape"][0].as_u64().ok_or("shape")? as usize;
    let dim = e["shape"][1].as_u64().ok_or("shape")? as usize;
    let start = 8 + n + e["data_offsets"][0].as_u64().ok_or("offsets")? as usize;
    let data = &st[start..start + rows * dim * 4];
    let tok: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/tokenizer.json"))?)?;
    let vocab = tok["model"]["vocab"].as_object().ok_or("no vocab")?;
    let mut by_id = vec![String::new(); vocab.len()];
    for (t, id) in vocab {
        by_id[id.as_u64().ok_or("id")? as usize] = t.clone();
    }
    if by_id.len() != rows || by_id.iter().any(|t| t.is_empty() || t.contains('\n')) {
        return Err("vocabulary does not match the table".into());
    }
    let mut scales = Vec::with_capacity(rows * 4);
    let mut q = Vec::with_capacity(rows * dim);
    for r in 0..rows {
        let v: Vec<f32> = data[r * dim * 4..(r + 1) * dim * 4]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let scale = v.iter().fold(0.0f32, |m, x| m.max(x.abs())) / 127.0;
        scales.extend_from_slice(&scale.to_le_bytes());
        q.extend(v.iter().map(|x| {
            if scale > 0.0 {
                (x / scale).round().clamp(-127.0, 127.0) as i8 as u8
            } else {
                0
            }
        }));
    }
    let mut out = b"SYQ8".to_vec();
    out.extend_from_slice(&(rows as u32).to_le_bytes());
    out.extend_from_slice(&(dim as u32).to_le_bytes());
    out.extend(scales);
    out.extend(q);
    std::fs::write("assets/autoroute/potion-base-2M.q8", out)?;
    std::fs::write(
        "assets/autoroute/potion-base-2M.vocab.txt",
        by_id.join("\n") + "\n",
    )?;
    eprintln!("imported {rows} × {dim} from {dir}");
    Ok(())
}
