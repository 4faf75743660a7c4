//! The cost knob: a target share of calls to the strong tier → a score threshold.
//!
//! A scorer's raw outputs are not comparable across scorers or training runs, and a probability
//! threshold of 0.5 says nothing about cost. So, like RouteLLM's calibrated thresholds, the knob
//! is the *share of calls* that should go to the strong tier, and the threshold is the matching
//! quantile of the scorer's outputs on its training prompts:
//!
//! 1. At training time, score every training prompt and keep the 101 percentiles
//!    (`quantiles[i]` = the `i`-th percentile, linear interpolation between order statistics).
//! 2. At run time, `threshold(s)` is the `(1 − s)` quantile, interpolated between percentiles;
//!    prompts scoring at or above it go to the strong tier. If live traffic looks like the
//!    training data, a share `s` of it does.
//!
//! A higher strong share never gives a higher threshold.

/// Percentiles of a scorer's outputs on its training prompts.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Calibration {
    /// 101 non-decreasing values: the 0th, 1st, …, 100th percentile.
    pub quantiles: Vec<f32>,
}

impl Calibration {
    /// Percentiles of `scores` (NaNs ignored). An empty input gives the uniform calibration
    /// `quantiles[i] = i / 100`.
    pub fn from_scores(scores: &[f32]) -> Self {
        let mut v: Vec<f32> = scores.iter().copied().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return Self {
                quantiles: (0..=100).map(|i| i as f32 / 100.0).collect(),
            };
        }
        v.sort_by(f32::total_cmp);
        let last = (v.len() - 1) as f64;
        let quantiles = (0..=100)
            .map(|i| {
                let pos = last * f64::from(i) / 100.0;
                let lo = pos.floor() as usize;
                let hi = pos.ceil() as usize;
                let t = (pos - lo as f64) as f32;
                v[lo] + (v[hi] - v[lo]) * t
            })
            .collect();
        Self { quantiles }
    }

    /// The threshold that sends a share `strong_share` (clamped to `[0, 1]`) of the calibration
    /// prompts to the strong tier: `score >= threshold` goes strong. `0` gives `+∞` (never),
    /// `1` gives `-∞` (always).
    pub fn threshold(&self, strong_share: f32) -> f32 {
        let s = strong_share.clamp(0.0, 1.0);
        if s <= 0.0 || self.quantiles.len() < 2 {
            return f32::INFINITY;
        }
        if s >= 1.0 {
            return f32::NEG_INFINITY;
        }
        self.quantile(1.0 - s)
    }

    /// The `p`-quantile (`p` in `[0, 1]`), interpolated between stored percentiles.
    pub fn quantile(&self, p: f32) -> f32 {
        let q = &self.quantiles;
        if q.is_empty() {
            return p;
        }
        let pos = p.clamp(0.0, 1.0) * (q.len() - 1) as f32;
        let lo = (pos.floor() as usize).min(q.len() - 1);
        let hi = (lo + 1).min(q.len() - 1);
        q[lo] + (q[hi] - q[lo]) * (pos - lo as f32)
    }

    /// Fraction of calibration prompts scoring below `score` (the inverse of [`Self::quantile`]),
    /// in `[0, 1]`. Used to split the non-strong share among several lower tiers.
    pub fn rank(&self, score: f32) -> f32 {
        let q = &self.quantiles;
        if q.len() < 2 || score.is_nan() {
            return 0.5;
        }
        let n = (q.len() - 1) as f32;
        if score <= q[0] {
            return 0.0;
        }
        if score >= q[q.len() - 1] {
            return 1.0;
        }
        // First percentile strictly above `score`.
        let hi = q.partition_point(|&x| x <= score);
        let lo = hi - 1;
        let span = q[hi] - q[lo];
        let t = if span > 0.0 {
            (score - q[lo]) / span
        } else {
            0.0
        };
        (lo as f32 + t) / n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_scores_give_matching_shares() {
        let scores: Vec<f32> = (0..1000).map(|i| i as f32 / 999.0).collect();
        let c = Calibration::from_scores(&scores);
        let t = c.threshold(0.3);
        let share = scores.iter().filter(|&&s| s >= t).count() as f32 / 1000.0;
        assert!((share - 0.3).abs() < 0.01, "{share}");
        assert!((c.rank(0.25) - 0.25).abs() < 0.01);
    }
}
