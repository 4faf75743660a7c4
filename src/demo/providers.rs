//! The simulated providers and the models they serve: who is fast, who is cheap, who fails.
//!
//! Within each model every endpoint keeps the same completion-to-prompt price ratio, so the
//! balance layer's 1/price² shares do not depend on the request's token mix and
//! [`DemoModel::shares`] can print them exactly.

use crate::catalog::Api;
use std::time::Duration;

/// One simulated provider.
#[derive(Debug, Clone, Copy)]
pub struct SimSpec {
    /// Routing slug.
    pub slug: &'static str,
    /// Display name (the `provider` of responses).
    pub name: &'static str,
    /// The wire format it speaks.
    pub api: Api,
    /// Time to the first token.
    pub first_token: Duration,
    /// Time between two tokens.
    pub per_token: Duration,
    /// Share of requests it fails (before any content).
    pub failure_rate: f64,
}

/// One endpoint of a demo model: a provider, its model id and its prices.
#[derive(Debug, Clone, Copy)]
pub struct DemoEndpoint {
    /// Provider slug.
    pub provider: &'static str,
    /// The provider's own model id.
    pub upstream_model: &'static str,
    /// USD per million prompt tokens.
    pub prompt: f64,
    /// USD per million completion tokens.
    pub completion: f64,
}

/// One demo model and its endpoints.
#[derive(Debug, Clone, Copy)]
pub struct DemoModel {
    /// `demo/…`.
    pub slug: &'static str,
    /// Its endpoints.
    pub endpoints: &'static [DemoEndpoint],
}

impl DemoModel {
    /// Each endpoint's share of first picks while all are healthy: 1/price², normalised.
    pub fn shares(&self) -> Vec<f64> {
        let weights: Vec<f64> = self
            .endpoints
            .iter()
            .map(|e| 1.0 / (e.prompt * e.prompt))
            .collect();
        let total: f64 = weights.iter().sum();
        weights.iter().map(|w| w / total).collect()
    }
}

/// The simulated providers: one per wire format, plus a cheap one that fails often.
pub const PROVIDERS: &[SimSpec] = &[
    SimSpec {
        slug: "bargain",
        name: "Bargain Compute",
        api: Api::OpenAi,
        first_token: Duration::from_millis(120),
        per_token: Duration::from_millis(12),
        failure_rate: 0.3,
    },
    SimSpec {
        slug: "swift",
        name: "Swift Inference",
        api: Api::OpenAi,
        first_token: Duration::from_millis(150),
        per_token: Duration::from_millis(15),
        failure_rate: 0.0,
    },
    SimSpec {
        slug: "zephyr",
        name: "Zephyr AI",
        api: Api::Anthropic,
        first_token: Duration::from_millis(300),
        per_token: Duration::from_millis(25),
        failure_rate: 0.0,
    },
    SimSpec {
        slug: "atlas",
        name: "Atlas Cloud",
        api: Api::Gemini,
        first_token: Duration::from_millis(450),
        per_token: Duration::from_millis(35),
        failure_rate: 0.0,
    },
];

/// The demo models.
pub const MODELS: &[DemoModel] = &[
    DemoModel {
        slug: "demo/fast",
        endpoints: &[
            DemoEndpoint {
                provider: "bargain",
                upstream_model: "bargain-small",
                prompt: 0.05,
                completion: 0.10,
            },
            DemoEndpoint {
                provider: "swift",
                upstream_model: "swift-mini",
                prompt: 0.10,
                completion: 0.20,
            },
            DemoEndpoint {
                provider: "zephyr",
                upstream_model: "zephyr-haiku",
                prompt: 0.15,
                completion: 0.30,
            },
        ],
    },
    DemoModel {
        slug: "demo/smart",
        endpoints: &[
            DemoEndpoint {
                provider: "atlas",
                upstream_model: "atlas-pro",
                prompt: 1.00,
                completion: 4.00,
            },
            DemoEndpoint {
                provider: "zephyr",
                upstream_model: "zephyr-sonnet",
                prompt: 1.50,
                completion: 6.00,
            },
            DemoEndpoint {
                provider: "swift",
                upstream_model: "swift-large",
                prompt: 2.00,
                completion: 8.00,
            },
        ],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_names_a_provider_and_every_format_is_spoken() {
        for m in MODELS {
            assert!(m.slug.starts_with("demo/"), "{}", m.slug);
            let ratio = m.endpoints[0].completion / m.endpoints[0].prompt;
            for e in m.endpoints {
                assert!(
                    PROVIDERS.iter().any(|p| p.slug == e.provider),
                    "{}",
                    e.provider
                );
                assert!((e.completion / e.prompt - ratio).abs() < 1e-9, "{}", m.slug);
            }
            let total: f64 = m.shares().iter().sum();
            assert!((total - 1.0).abs() < 1e-9);
        }
        for api in [Api::OpenAi, Api::Anthropic, Api::Gemini] {
            assert!(PROVIDERS.iter().any(|p| p.api == api), "{api:?}");
        }
        assert!(PROVIDERS.iter().any(|p| p.failure_rate > 0.0));
    }
}
