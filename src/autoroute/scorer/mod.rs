//! Difficulty scorers: a prompt in, P(the cheap tier is not good enough) out.
//!
//! | Scorer | Assets | What it reads |
//! |---|---|---|
//! | [`KnnScorer`] (the [`default_scorer`]) | potion-base-2M token vectors (int8, 2 MB) and a bank of 15,416 labelled prompts (int8, 1.1 MB), in the crate | the 100 most similar labelled prompts' failure rate ‖ length relative to them |
//! | [`StaticLinearScorer`] ([`linear_scorer`]) | the same token vectors | mean-pooled static embedding ‖ hand features → logistic |
//! | [`HeuristicScorer`] | none (a few dozen numbers) | hand features → logistic |
//! | [`LengthScorer`] | none | character count only (the baseline every router must beat) |
//!
//! All four are pure, synchronous and allocation-light, so they run inline in a service's
//! `call`. Weights and calibration are compiled in (`include_bytes!`) and parsed once on first use.

mod embed;
mod features;
mod kmeans;
mod knn;
mod linear;
mod tokenize;

use std::sync::{Arc, OnceLock};

pub use embed::StaticEmbedder;
pub use features::{FEATURE_NAMES, N_FEATURES, hand_features, scored_text};
pub use knn::{BadBank, KnnBank, KnnScorer};
pub use linear::{HeuristicScorer, LinearHead, StaticLinearScorer};
pub use tokenize::WordPiece;

use super::calibrate::Calibration;

/// Scores how hard a prompt is for the cheap tier.
///
/// `score` returns P(the cheap tier is not good enough) in `[0, 1]`. Only the *order* of scores
/// matters to the router: thresholds come from a [`Calibration`] over training-set scores, so a
/// scorer need not be a well-calibrated probability.
pub trait Scorer: Send + Sync + std::fmt::Debug {
    /// A short stable identifier, e.g. `static-linear/potion-base-2M@1`; goes into logs and headers.
    fn name(&self) -> &str;
    /// P(cheap tier not good enough) in `[0, 1]`.
    fn score(&self, prompt: &str) -> f32;
}

impl<S: Scorer + ?Sized> Scorer for Arc<S> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn score(&self, prompt: &str) -> f32 {
        (**self).score(prompt)
    }
}

/// The prompt-length baseline: longer prompts score higher. No training, no assets.
///
/// `score = chars / (chars + 500)`, a monotone squashing of the character count.
#[derive(Debug, Clone, Copy, Default)]
pub struct LengthScorer;

impl Scorer for LengthScorer {
    fn name(&self) -> &str {
        "length"
    }
    fn score(&self, prompt: &str) -> f32 {
        let n = prompt.chars().count() as f32;
        n / (n + 500.0)
    }
}

/// A scorer that always returns the same value; for tests and for forcing a tier.
#[derive(Debug, Clone, Copy)]
pub struct FixedScorer(pub f32);

impl Scorer for FixedScorer {
    fn name(&self) -> &str {
        "fixed"
    }
    fn score(&self, _prompt: &str) -> f32 {
        self.0.clamp(0.0, 1.0)
    }
}

/// Name and calibration of the shipped [`KnnScorer`] (its bank is `knn-bank.bin`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct KnnMeta {
    /// Scorer identifier, e.g. `knn/potion-base-2M@1`.
    pub name: String,
    /// Percentiles of the bank's leave-one-out scores.
    pub calibration: Calibration,
}

/// The shipped router artefact (`assets/autoroute/router.json`): heads and calibrations.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RouterArtifact {
    /// Format version of this file.
    pub format: u32,
    /// The default scorer ([`KnnScorer`]): name and calibration.
    pub knn: KnnMeta,
    /// The linear scorer's head (embedding ‖ hand features), the previous default.
    pub default: LinearHead,
    /// The zero-asset fallback's head (hand features only).
    pub heuristic: LinearHead,
    /// Calibration of the [`LengthScorer`] on the training data.
    pub length_calibration: Calibration,
    /// Free-form provenance: data, split, seeds, metrics.
    pub trained: serde_json::Value,
}

const ROUTER_JSON: &str = include_str!("../../../assets/autoroute/router.json");

/// The shipped artefact, parsed once.
///
/// # Panics
/// Only if the compiled-in `router.json` is malformed, which the crate's tests rule out.
pub fn shipped() -> &'static RouterArtifact {
    static ART: OnceLock<RouterArtifact> = OnceLock::new();
    ART.get_or_init(|| {
        #[allow(clippy::expect_used)]
        serde_json::from_str(ROUTER_JSON).expect("assets/autoroute/router.json is valid")
    })
}

const KNN_BANK: &[u8] = include_bytes!("../../../assets/autoroute/knn-bank.bin");

/// The shipped kNN bank, decoded once (≈ 4 MB of f32 vectors).
///
/// # Panics
/// Only if the compiled-in `knn-bank.bin` is malformed, which the crate's tests rule out.
pub fn shipped_bank() -> Arc<KnnBank> {
    static BANK: OnceLock<Arc<KnnBank>> = OnceLock::new();
    BANK.get_or_init(|| {
        #[allow(clippy::expect_used)]
        Arc::new(KnnBank::from_bytes(KNN_BANK).expect("assets/autoroute/knn-bank.bin is valid"))
    })
    .clone()
}

/// The default scorer ([`KnnScorer`] over the shipped bank) and its calibration.
pub fn default_scorer() -> (Arc<dyn Scorer>, Calibration) {
    let art = shipped();
    let s = KnnScorer::new(
        StaticEmbedder::shipped(),
        shipped_bank(),
        art.knn.name.clone(),
    );
    (Arc::new(s), art.knn.calibration.clone())
}

/// The linear scorer ([`StaticLinearScorer`] on the shipped weights) and its calibration: the
/// previous default, kept for comparison and for deployments that want ~10 µs scoring.
pub fn linear_scorer() -> (Arc<dyn Scorer>, Calibration) {
    let art = shipped();
    let s = StaticLinearScorer::new(StaticEmbedder::shipped(), art.default.clone());
    (Arc::new(s), art.default.calibration.clone())
}

/// The zero-asset fallback ([`HeuristicScorer`] on the shipped weights) and its calibration.
pub fn heuristic_scorer() -> (Arc<dyn Scorer>, Calibration) {
    let art = shipped();
    let s = HeuristicScorer::new(art.heuristic.clone());
    (Arc::new(s), art.heuristic.calibration.clone())
}

/// The prompt-length baseline and its calibration on the training data.
pub fn length_scorer() -> (Arc<dyn Scorer>, Calibration) {
    (Arc::new(LengthScorer), shipped().length_calibration.clone())
}
