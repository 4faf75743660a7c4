//! Training data and an L2-regularised logistic regression, deterministic and dependency-free.
//!
//! Data is JSON Lines of `{prompt, scores: {model: value}}` (optionally `dataset`, `category`,
//! `routellm_contaminated`), the schema of RouteLLM's evaluation files as normalised in
//! `shared/autorouter-data/routellm-evals/routing_eval.jsonl`, and the (prompt, model, score)
//! triples NotDiamond-style routers train on.

use std::collections::BTreeMap;

/// One labelled prompt.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Example {
    /// The (first) user turn.
    pub prompt: String,
    /// Quality of each model's answer.
    pub scores: BTreeMap<String, f64>,
    /// Benchmark name, e.g. `mmlu`.
    #[serde(default)]
    pub dataset: String,
    /// Sub-group, e.g. the MMLU subject.
    #[serde(default)]
    pub category: String,
    /// Near-duplicate of RouteLLM's training data; dropped from evaluation.
    #[serde(default)]
    pub routellm_contaminated: bool,
}

/// Why a data file did not parse.
#[derive(Debug)]
pub struct BadData {
    /// 1-based line number.
    pub line: usize,
    /// Parser message.
    pub message: String,
}

impl std::fmt::Display for BadData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for BadData {}

/// Parses JSON Lines (blank lines skipped).
pub fn parse_jsonl(text: &str) -> Result<Vec<Example>, BadData> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| BadData {
                line: i + 1,
                message: e.to_string(),
            })
        })
        .collect()
}

/// Whether the cheap model failed on each example: its score (under `weak`) is below the median
/// of its scores within the example's `dataset` (for 0/1 scores: it was wrong). `None` where the
/// example has no score for `weak`.
pub fn weak_fails(examples: &[Example], weak: &str) -> Vec<Option<bool>> {
    let mut by_set: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for e in examples {
        if let Some(&s) = e.scores.get(weak) {
            by_set.entry(e.dataset.as_str()).or_default().push(s);
        }
    }
    let median: BTreeMap<&str, f64> = by_set
        .into_iter()
        .map(|(k, mut v)| {
            v.sort_by(f64::total_cmp);
            (k, v[v.len() / 2])
        })
        .collect();
    examples
        .iter()
        .map(|e| {
            let s = *e.scores.get(weak)?;
            Some(s < median[e.dataset.as_str()])
        })
        .collect()
}

/// Fitting options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitOptions {
    /// L2 penalty on the standardised weights, relative to the mean (weighted) log-loss.
    pub lambda: f64,
    /// Newton iterations (each is exact; 25 is plenty for these sizes).
    pub iterations: usize,
    /// The last `free_tail` inputs are not penalised (e.g. group indicators that absorb
    /// per-benchmark base rates, dropped again with [`Logistic::truncate`]).
    pub free_tail: usize,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            lambda: 1e-3,
            iterations: 25,
            free_tail: 0,
        }
    }
}

/// A fitted model on standardised inputs: `σ(b + Σ wⱼ (xⱼ − meanⱼ)/stdⱼ)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Logistic {
    /// Input means.
    pub mean: Vec<f64>,
    /// Input standard deviations (≥ 1e-6).
    pub std: Vec<f64>,
    /// Weights.
    pub w: Vec<f64>,
    /// Bias.
    pub b: f64,
}

impl Logistic {
    /// Fits rows `x` (all the same length) to labels `y` in {0, 1} with per-row weights
    /// `weight`, by Newton's method (IRLS) on the weighted mean log-loss plus
    /// `lambda/2 · ‖w‖²` (bias unpenalised).
    pub fn fit(x: &[Vec<f32>], y: &[bool], weight: &[f64], opts: FitOptions) -> Self {
        let n = x.len();
        let d = x.first().map_or(0, Vec::len);
        let wsum: f64 = weight.iter().sum::<f64>().max(f64::MIN_POSITIVE);
        let r: Vec<f64> = weight.iter().map(|w| w / wsum).collect();
        let mut mean = vec![0.0; d];
        for (row, &ri) in x.iter().zip(&r) {
            mean.iter_mut()
                .zip(row)
                .for_each(|(m, &v)| *m += ri * f64::from(v));
        }
        let mut var = vec![0.0; d];
        for (row, &ri) in x.iter().zip(&r) {
            var.iter_mut()
                .zip(row.iter().zip(&mean))
                .for_each(|(s, (&v, m))| *s += ri * (f64::from(v) - m).powi(2));
        }
        let std: Vec<f64> = var.iter().map(|v| v.sqrt().max(1e-6)).collect();
        // Standardised design with a trailing 1 for the bias.
        let z: Vec<Vec<f64>> = x
            .iter()
            .map(|row| {
                row.iter()
                    .zip(mean.iter().zip(&std))
                    .map(|(&v, (m, s))| (f64::from(v) - m) / s)
                    .chain(std::iter::once(1.0))
                    .collect()
            })
            .collect();
        let p = d + 1;
        let mut beta = vec![0.0; p];
        for _ in 0..opts.iterations {
            let mut grad = vec![0.0; p];
            let mut hess = vec![0.0; p * p];
            for i in 0..n {
                let zi = &z[i];
                let eta: f64 = zi.iter().zip(&beta).map(|(a, b)| a * b).sum();
                let mu = 1.0 / (1.0 + (-eta).exp());
                let err = mu - f64::from(u8::from(y[i]));
                let h = r[i] * mu * (1.0 - mu);
                for a in 0..p {
                    grad[a] += r[i] * err * zi[a];
                    let ha = h * zi[a];
                    let row = &mut hess[a * p..a * p + a + 1];
                    row.iter_mut()
                        .zip(&zi[..=a])
                        .for_each(|(hv, &zb)| *hv += ha * zb);
                }
            }
            for a in 0..d.saturating_sub(opts.free_tail) {
                grad[a] += opts.lambda * beta[a];
                hess[a * p + a] += opts.lambda;
            }
            hess[(p - 1) * p + (p - 1)] += 1e-9;
            for a in 0..p {
                for b in 0..a {
                    hess[b * p + a] = hess[a * p + b];
                }
            }
            let Some(step) = solve_spd(&hess, &grad, p) else {
                break;
            };
            let mut max_step: f64 = 0.0;
            beta.iter_mut().zip(&step).for_each(|(b, s)| {
                *b -= s;
                max_step = max_step.max(s.abs());
            });
            if max_step < 1e-8 {
                break;
            }
        }
        let b = beta[d];
        beta.truncate(d);
        Self {
            mean,
            std,
            w: beta,
            b,
        }
    }

    /// Keeps the first `d` inputs: dropped inputs count as sitting at their training mean.
    pub fn truncate(&mut self, d: usize) {
        self.mean.truncate(d);
        self.std.truncate(d);
        self.w.truncate(d);
    }

    /// σ(b + w·standardised x).
    pub fn predict(&self, x: &[f32]) -> f32 {
        let eta = self.b
            + x.iter()
                .zip(self.w.iter().zip(self.mean.iter().zip(&self.std)))
                .map(|(&v, (w, (m, s)))| w * (f64::from(v) - m) / s)
                .sum::<f64>();
        (1.0 / (1.0 + (-eta).exp())) as f32
    }
}

/// Solves `A x = b` for symmetric positive-definite `A` (`n × n`, row-major) by Cholesky.
fn solve_spd(a: &[f64], b: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            if i == j {
                let v = a[i * n + i] - s;
                if v <= 0.0 {
                    return None;
                }
                l[i * n + i] = v.sqrt();
            } else {
                l[i * n + j] = (a[i * n + j] - s) / l[j * n + j];
            }
        }
    }
    let mut y = vec![0.0; n];
    for i in 0..n {
        let s: f64 = (0..i).map(|k| l[i * n + k] * y[k]).sum();
        y[i] = (b[i] - s) / l[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|k| l[k * n + i] * x[k]).sum();
        x[i] = (y[i] - s) / l[i * n + i];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_fails_is_below_the_median_of_its_dataset() {
        let text = r#"{"prompt":"a","dataset":"x","scores":{"cheap":0,"big":1}}
{"prompt":"b","dataset":"x","scores":{"cheap":1,"big":1}}
{"prompt":"c","dataset":"x","scores":{"cheap":1,"big":0}}
{"prompt":"d","dataset":"y","scores":{"cheap":7,"big":9}}
{"prompt":"e","dataset":"y","scores":{"cheap":9,"big":9}}
{"prompt":"f","scores":{"big":9}}"#;
        let ex = parse_jsonl(text).unwrap();
        assert_eq!(
            weak_fails(&ex, "cheap"),
            vec![
                Some(true),
                Some(false),
                Some(false),
                Some(true),
                Some(false),
                None
            ]
        );
    }

    #[test]
    fn separates_a_threshold() {
        let x: Vec<Vec<f32>> = (0..200).map(|i| vec![i as f32, 1.0]).collect();
        let y: Vec<bool> = (0..200).map(|i| i >= 100).collect();
        let m = Logistic::fit(&x, &y, &vec![1.0; 200], FitOptions::default());
        assert!(m.predict(&[150.0, 1.0]) > 0.9 && m.predict(&[50.0, 1.0]) < 0.1);
    }
}
