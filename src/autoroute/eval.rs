//! RouteLLM-style routing metrics: APGR, CPT(x%), and bootstrap confidence intervals.
//!
//! Setting: each test prompt `i` has a weak-model quality `wᵢ` and a strong-model quality `sᵢ`;
//! a router ranks prompts by score and sends the top `k` to the strong model.
//!
//! * **Exact curve.** Sort by score descending (ties broken by a seeded random key). For
//!   `k = 0..N`, the strong-call share is `x = k/N` and PGR(x) = `G(k) / G(N)`, where `G(k)` is
//!   the summed gain `sᵢ − wᵢ` of the top `k`. (That equals `(q(x) − w̄)/(s̄ − w̄)` with `q(x)`
//!   the mean quality when the top `k` go strong.) **APGR** is the trapezoid area under
//!   PGR(x); **CPT(p)** is the smallest `x` with PGR(x) ≥ `p`.
//! * **10-bin variant** (RouteLLM's evaluation code): 11 thresholds at the 0th, 10th, …, 100th
//!   score percentiles, a prompt goes strong when `score ≥ threshold`; the (x, PGR) points are
//!   sorted by `x` and integrated by trapezoids.
//! * **Bootstrap.** Resample prompts with replacement (fixed seed) and recompute with the
//!   scores held fixed; the 95% interval is the 2.5th–97.5th percentile of the resampled values.

/// Metrics of one router on one test set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metrics {
    /// APGR on the exact curve.
    pub apgr: f64,
    /// APGR, RouteLLM's 10-bin variant.
    pub apgr10: f64,
    /// Strong-call share needed for PGR ≥ 0.5.
    pub cpt50: f64,
    /// Strong-call share needed for PGR ≥ 0.8.
    pub cpt80: f64,
}

/// A deterministic SplitMix64 generator (stable across crate versions, unlike `StdRng`).
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
}

/// A test set with a fixed router ranking, ready for repeated (bootstrap) evaluation.
#[derive(Debug, Clone)]
pub struct Ranked {
    /// Prompt indices by score, descending; ties in seeded random order.
    desc: Vec<usize>,
    scores: Vec<f32>,
    gain: Vec<f64>,
}

impl Ranked {
    /// Ranks `scores` against the qualities `weak` and `strong` (same length).
    pub fn new(scores: &[f32], weak: &[f64], strong: &[f64], tie_seed: u64) -> Self {
        let mut rng = SplitMix64(tie_seed);
        let keys: Vec<u64> = scores.iter().map(|_| rng.next_u64()).collect();
        let mut desc: Vec<usize> = (0..scores.len()).collect();
        desc.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(keys[a].cmp(&keys[b])));
        let gain = strong.iter().zip(weak).map(|(s, w)| s - w).collect();
        Self {
            desc,
            scores: scores.to_vec(),
            gain,
        }
    }

    /// Number of prompts.
    pub fn len(&self) -> usize {
        self.desc.len()
    }

    /// Whether there are no prompts.
    pub fn is_empty(&self) -> bool {
        self.desc.is_empty()
    }

    /// Metrics with every prompt counted once.
    pub fn metrics(&self) -> Metrics {
        self.metrics_counted(&vec![1; self.len()])
    }

    /// Metrics with prompt `i` counted `counts[i]` times (a bootstrap resample).
    pub fn metrics_counted(&self, counts: &[u32]) -> Metrics {
        let m: f64 = counts.iter().map(|&c| f64::from(c)).sum();
        let total: f64 = self
            .desc
            .iter()
            .map(|&i| f64::from(counts[i]) * self.gain[i])
            .sum();
        if m == 0.0 || total <= 0.0 {
            return Metrics {
                apgr: f64::NAN,
                apgr10: f64::NAN,
                cpt50: f64::NAN,
                cpt80: f64::NAN,
            };
        }
        let (mut area, mut g0, mut k0) = (0.0, 0.0, 0.0);
        let (mut cpt50, mut cpt80) = (f64::NAN, f64::NAN);
        for &i in &self.desc {
            let c = f64::from(counts[i]);
            if c == 0.0 {
                continue;
            }
            let g = self.gain[i];
            area += c * g0 + g * c * c / 2.0;
            for (p, slot) in [(0.5, &mut cpt50), (0.8, &mut cpt80)] {
                if slot.is_nan() {
                    let target = p * total - 1e-9;
                    if g0 >= target {
                        *slot = k0 / m;
                    } else if g > 0.0 && g0 + c * g >= target {
                        *slot = (k0 + ((target - g0) / g).ceil().clamp(0.0, c)) / m;
                    }
                }
            }
            g0 += c * g;
            k0 += c;
        }
        let apgr = area / (m * total);
        let apgr10 = self.apgr10(counts, m, total);
        Metrics {
            apgr,
            apgr10,
            cpt50: cpt50.min(1.0),
            cpt80: cpt80.min(1.0),
        }
    }

    fn apgr10(&self, counts: &[u32], m: f64, total: f64) -> f64 {
        // Ascending walk for percentiles of the (resampled) scores, numpy's linear method.
        let asc: Vec<usize> = self
            .desc
            .iter()
            .rev()
            .copied()
            .filter(|&i| counts[i] > 0)
            .collect();
        let cum: Vec<f64> = asc
            .iter()
            .scan(0.0, |acc, &i| {
                *acc += f64::from(counts[i]);
                Some(*acc)
            })
            .collect();
        let at = |pos: f64| -> f64 {
            // Value of the `pos`-th order statistic (0-based) of the expanded sample.
            let j = cum.partition_point(|&c| c <= pos);
            f64::from(self.scores[asc[j.min(asc.len() - 1)]])
        };
        let mut pts: Vec<(f64, f64)> = (0..=10)
            .map(|b| {
                let pos = (m - 1.0) * f64::from(b) / 10.0;
                let (lo, hi) = (pos.floor(), pos.ceil());
                let t = at(lo) + (at(hi) - at(lo)) * (pos - lo);
                let (mut k, mut g) = (0.0, 0.0);
                for &i in &asc {
                    if f64::from(self.scores[i]) >= t {
                        k += f64::from(counts[i]);
                        g += f64::from(counts[i]) * self.gain[i];
                    }
                }
                (k / m, g / total)
            })
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        pts.windows(2)
            .map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0)
            .sum()
    }

    /// Point estimate plus 95% bootstrap intervals over `resamples` resamples.
    pub fn bootstrap(&self, resamples: usize, seed: u64) -> Estimate {
        let point = self.metrics();
        let mut rng = SplitMix64(seed);
        let n = self.len();
        let mut draws = Vec::with_capacity(resamples);
        let mut counts = vec![0u32; n];
        for _ in 0..resamples {
            counts.iter_mut().for_each(|c| *c = 0);
            for _ in 0..n {
                counts[rng.below(n)] += 1;
            }
            draws.push(self.metrics_counted(&counts));
        }
        let ci = |f: fn(&Metrics) -> f64| -> (f64, f64) {
            let mut v: Vec<f64> = draws.iter().map(f).filter(|x| !x.is_nan()).collect();
            v.sort_by(f64::total_cmp);
            if v.is_empty() {
                return (f64::NAN, f64::NAN);
            }
            let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
            (q(0.025), q(0.975))
        };
        Estimate {
            point,
            apgr: ci(|m| m.apgr),
            apgr10: ci(|m| m.apgr10),
            cpt50: ci(|m| m.cpt50),
            cpt80: ci(|m| m.cpt80),
        }
    }
}

/// Point metrics with 95% bootstrap intervals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// On the full test set.
    pub point: Metrics,
    /// Interval for [`Metrics::apgr`].
    pub apgr: (f64, f64),
    /// Interval for [`Metrics::apgr10`].
    pub apgr10: (f64, f64),
    /// Interval for [`Metrics::cpt50`].
    pub cpt50: (f64, f64),
    /// Interval for [`Metrics::cpt80`].
    pub cpt80: (f64, f64),
}
