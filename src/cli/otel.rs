//! The command's OTLP export (feature `otel`): logging starts before the config is read, so the
//! subscriber is built with an empty slot that `serve` fills with the exporting layer once
//! `[telemetry]` is known.

use crate::telemetry::TelemetryConfig;
use crate::telemetry::otel::OtelGuard;
use std::sync::OnceLock;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

type Slot = Option<Box<dyn Layer<Registry> + Send + Sync>>;

static SLOT: OnceLock<reload::Handle<Slot, Registry>> = OnceLock::new();

/// Logs to stderr through `filter`, with the slot the exporter goes into.
pub(super) fn init_logging(filter: EnvFilter) {
    let (slot, handle) = reload::Layer::new(None::<Box<dyn Layer<Registry> + Send + Sync>>);
    let installed = tracing_subscriber::registry()
        .with(slot)
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .try_init();
    if installed.is_ok() {
        let _ = SLOT.set(handle);
    }
}

/// Starts exporting spans when `[telemetry] otlp_endpoint` is set; the guard flushes them when
/// dropped.
pub(super) fn install(cfg: &TelemetryConfig) -> Result<Option<OtelGuard>, String> {
    let Some((layer, guard)) = crate::telemetry::otel::layer::<Registry>(cfg)
        .map_err(|e| format!("[telemetry] otlp_endpoint: {e}"))?
    else {
        return Ok(None);
    };
    let Some(slot) = SLOT.get() else {
        return Err("[telemetry] otlp_endpoint: logging was set up elsewhere".to_owned());
    };
    slot.modify(|s| *s = Some(Box::new(layer)))
        .map_err(|e| format!("[telemetry] otlp_endpoint: {e}"))?;
    tracing::info!(
        "exporting spans to {}",
        cfg.otlp_endpoint.as_deref().unwrap_or_default()
    );
    Ok(Some(guard))
}
