//! `[telemetry]`: the request log, the dashboard and OTLP trace export (`docs/config.md`).

use serde::Deserialize;
use std::path::PathBuf;

/// `[telemetry]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TelemetryConfig {
    /// Write one JSON line per completion request (default false): to stdout, or appended to
    /// `request_log_path` when that is set.
    #[serde(default)]
    pub request_log: bool,
    /// The file the request log is appended to (relative to the config file) instead of stdout.
    #[serde(default)]
    pub request_log_path: Option<PathBuf>,
    /// Serve `GET /dashboard` and `GET /dashboard/data` (default true).
    #[serde(default = "yes")]
    pub dashboard: bool,
    /// How many of the latest requests the dashboard keeps for its percentiles, its spend over
    /// time and its list (default 2000); its totals count every request.
    #[serde(default = "default_window")]
    pub dashboard_window: usize,
    /// OTLP/HTTP collector to export spans to, e.g. `http://127.0.0.1:4318/v1/traces` (needs
    /// the `otel` cargo feature; unset: no export).
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// How spans are sent: `http/protobuf` (default) or `http/json`.
    #[serde(default = "default_protocol")]
    pub otlp_protocol: String,
    /// `service.name` of the exported spans (default `switchyard`).
    #[serde(default = "default_service_name")]
    pub service_name: String,
    /// Share of traces sampled when the request carries no sampled `traceparent`, 0 to 1
    /// (default 1).
    #[serde(default = "one")]
    pub sampling_ratio: f64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            request_log: false,
            request_log_path: None,
            dashboard: true,
            dashboard_window: default_window(),
            otlp_endpoint: None,
            otlp_protocol: default_protocol(),
            service_name: default_service_name(),
            sampling_ratio: 1.0,
        }
    }
}

impl TelemetryConfig {
    /// Whether anything needs the telemetry layer on the completion stacks.
    pub fn observes(&self) -> bool {
        self.request_log || self.dashboard || self.otlp_endpoint.is_some()
    }
}

fn yes() -> bool {
    true
}
fn one() -> f64 {
    1.0
}
fn default_window() -> usize {
    2000
}
fn default_protocol() -> String {
    "http/protobuf".to_owned()
}
fn default_service_name() -> String {
    "switchyard".to_owned()
}
