//! Where attempts go: a [`Target`] (one endpoint of one model) and the ordered [`Candidates`].

use crate::catalog::{Endpoint, Model};
use std::sync::Arc;

/// One endpoint of one model: what an attempt is sent to.
#[derive(Debug, Clone)]
pub struct Target {
    /// The model (concrete slug, reported as `model`).
    pub model: Arc<Model>,
    /// Index into `model.endpoints`.
    pub endpoint: usize,
}

impl Target {
    /// Endpoint `endpoint` of `model` (an index into `model.endpoints`); `None` when it has no
    /// such endpoint.
    pub fn new(model: Arc<Model>, endpoint: usize) -> Option<Target> {
        (endpoint < model.endpoints.len()).then_some(Target { model, endpoint })
    }

    /// Every endpoint of `model`, in the catalogue's order.
    pub fn all_of(model: &Arc<Model>) -> impl Iterator<Item = Target> + '_ {
        (0..model.endpoints.len()).map(|endpoint| Target {
            model: Arc::clone(model),
            endpoint,
        })
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.model.endpoints[self.endpoint]
    }

    /// A stable key for health tracking: `model slug @ endpoint tag`.
    pub fn key(&self) -> &str {
        &self.endpoint().key
    }
}

/// The ordered candidates Fallback will try.
#[derive(Debug, Clone, Default)]
pub struct Candidates {
    /// In trial order.
    pub targets: Vec<Target>,
    /// With `allow_fallbacks: false`, how many of `targets` may be tried.
    pub limit: Option<usize>,
    /// Strategy for `openrouter_metadata` (`direct`, `fallback`, …).
    pub strategy: Option<&'static str>,
}

impl Candidates {
    /// These targets, in this order, all of them allowed.
    pub fn new(targets: Vec<Target>) -> Candidates {
        Candidates {
            targets,
            limit: None,
            strategy: None,
        }
    }

    /// At most `n` of the targets are tried (`allow_fallbacks: false` routes one).
    pub fn limit(mut self, n: usize) -> Candidates {
        self.limit = Some(n);
        self
    }
}
