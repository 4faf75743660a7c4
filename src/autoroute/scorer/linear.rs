//! Logistic heads over [`hand_features`](super::hand_features), with or without the static
//! embedding in front.

use super::Scorer;
use super::embed::StaticEmbedder;
use super::features::{N_FEATURES, hand_features};
use crate::autoroute::calibrate::Calibration;

/// A standardised logistic head: `σ(b + Σ wᵢ·(xᵢ − meanᵢ)/stdᵢ)`, plus the calibration of its
/// scores on the training data. Serialised into `assets/autoroute/router.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LinearHead {
    /// Scorer id reported in [`Scorer::name`].
    pub name: String,
    /// Input layout, e.g. `["emb*64", "log_chars", …]`; informational.
    pub inputs: Vec<String>,
    /// Per-input mean used for standardisation.
    pub mean: Vec<f32>,
    /// Per-input standard deviation used for standardisation (never 0).
    pub std: Vec<f32>,
    /// Weights on the standardised inputs.
    pub w: Vec<f32>,
    /// Bias.
    pub b: f32,
    /// Quantiles of this head's scores on its training prompts.
    pub calibration: Calibration,
}

impl LinearHead {
    /// Folds standardisation into the weights: returns `(w', b')` with `σ(b' + w'·x)`.
    fn folded(&self) -> (Vec<f32>, f32) {
        let w: Vec<f32> = self.w.iter().zip(&self.std).map(|(w, s)| w / s).collect();
        let b = self.b - w.iter().zip(&self.mean).map(|(w, m)| w * m).sum::<f32>();
        (w, b)
    }
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

/// The default scorer: potion-base-2M mean embedding ‖ hand features → logistic.
#[derive(Debug)]
pub struct StaticLinearScorer {
    embedder: &'static StaticEmbedder,
    name: String,
    w: Vec<f32>,
    b: f32,
}

impl StaticLinearScorer {
    /// Wraps `head`, whose inputs must be `embedder.dim()` embedding values then the hand features.
    ///
    /// # Panics
    /// If `head.w.len() != embedder.dim() + N_FEATURES`.
    pub fn new(embedder: &'static StaticEmbedder, head: LinearHead) -> Self {
        assert_eq!(
            head.w.len(),
            embedder.dim() + N_FEATURES,
            "head does not fit the embedder"
        );
        let (w, b) = head.folded();
        Self {
            embedder,
            name: head.name,
            w,
            b,
        }
    }

    /// Writes the raw (unstandardised) input vector of `prompt` into `out`
    /// (`embedder.dim() + N_FEATURES` long). Training uses this, so training and serving match.
    pub fn inputs(embedder: &StaticEmbedder, prompt: &str, out: &mut [f32]) {
        let d = embedder.dim();
        embedder.embed_into(prompt, &mut out[..d]);
        let mut f = [0.0; N_FEATURES];
        hand_features(prompt, &mut f);
        out[d..d + N_FEATURES].copy_from_slice(&f);
    }
}

impl Scorer for StaticLinearScorer {
    fn name(&self) -> &str {
        &self.name
    }
    fn score(&self, prompt: &str) -> f32 {
        let mut x = [0.0f32; 512];
        let n = self.w.len().min(x.len());
        Self::inputs(self.embedder, prompt, &mut x[..n]);
        sigmoid(self.b + self.w.iter().zip(&x[..n]).map(|(w, x)| w * x).sum::<f32>())
    }
}

/// The zero-asset fallback: hand features → logistic. Needs no embedding table.
#[derive(Debug, Clone)]
pub struct HeuristicScorer {
    name: String,
    w: Vec<f32>,
    b: f32,
}

impl HeuristicScorer {
    /// Wraps `head`, whose inputs must be the hand features.
    ///
    /// # Panics
    /// If `head.w.len() != N_FEATURES`.
    pub fn new(head: LinearHead) -> Self {
        assert_eq!(
            head.w.len(),
            N_FEATURES,
            "head does not fit the hand features"
        );
        let (w, b) = head.folded();
        Self {
            name: head.name,
            w,
            b,
        }
    }
}

impl Scorer for HeuristicScorer {
    fn name(&self) -> &str {
        &self.name
    }
    fn score(&self, prompt: &str) -> f32 {
        let mut f = [0.0; N_FEATURES];
        hand_features(prompt, &mut f);
        sigmoid(self.b + self.w.iter().zip(&f).map(|(w, x)| w * x).sum::<f32>())
    }
}
