//! OTLP/HTTP export of the request and attempt spans (feature `otel`): a
//! [`tracing_opentelemetry`] layer over an OpenTelemetry SDK tracer that batches spans to
//! `[telemetry] otlp_endpoint`, protobuf or JSON as `otlp_protocol` says.
//!
//! The gateway's spans are plain `tracing` spans, so without this feature they cost what any
//! disabled span costs and the default build carries no OpenTelemetry code. With it, the
//! `switchyard` command installs the layer at start; an embedding program adds [`layer`]'s
//! to its own subscriber.
//!
//! Sampling is parent-based: a request whose `traceparent` says sampled is always exported, one
//! that says not sampled never is, and a request without one is sampled at `sampling_ratio`.

use super::TelemetryConfig;
use crate::BoxError;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TraceId, TracerProvider as _};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use tracing::Span;
use tracing::subscriber::Subscriber;
use tracing_opentelemetry::{OpenTelemetryLayer, OpenTelemetrySpanExt};
use tracing_subscriber::registry::LookupSpan;

/// Keeps the exporter running; dropping it flushes the spans still batched and stops it.
#[derive(Debug)]
pub struct OtelGuard {
    provider: SdkTracerProvider,
}

impl OtelGuard {
    /// Exports every span ended so far, waiting for the collector.
    pub fn flush(&self) -> Result<(), BoxError> {
        self.provider.force_flush().map_err(Into::into)
    }
}

impl Drop for OtelGuard {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
    }
}

/// The `tracing` layer that exports spans.
pub type OtelLayer<S> = OpenTelemetryLayer<S, SdkTracer>;

/// The layer exporting to `cfg.otlp_endpoint`, and the guard that keeps it running; `None`
/// when no endpoint is configured.
pub fn layer<S>(cfg: &TelemetryConfig) -> Result<Option<(OtelLayer<S>, OtelGuard)>, BoxError>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(endpoint) = &cfg.otlp_endpoint else {
        return Ok(None);
    };
    let protocol = match cfg.otlp_protocol.as_str() {
        "http/protobuf" => Protocol::HttpBinary,
        "http/json" => Protocol::HttpJson,
        other => {
            return Err(format!(
                "[telemetry] otlp_protocol: `{other}` is not `http/protobuf` or `http/json`"
            )
            .into());
        }
    };
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .with_endpoint(endpoint.clone())
        .build()?;
    let ratio = cfg.sampling_ratio.clamp(0.0, 1.0);
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            ratio,
        ))))
        .with_resource(
            Resource::builder()
                .with_service_name(cfg.service_name.clone())
                .build(),
        )
        .build();
    let tracer = provider.tracer("switchyard");
    let layer = tracing_opentelemetry::layer().with_tracer(tracer);
    Ok(Some((layer, OtelGuard { provider })))
}

/// Makes the request's `traceparent` the span's parent and returns the span's trace id; `None`
/// when no OpenTelemetry layer records the span.
pub(super) fn adopt(span: &Span, headers: &http::HeaderMap) -> Option<String> {
    if headers.contains_key("traceparent") {
        let cx = TraceContextPropagator::new().extract(&Headers(headers));
        let _ = span.set_parent(cx);
    }
    let id = span.context().span().span_context().trace_id();
    (id != TraceId::INVALID).then(|| id.to_string())
}

/// An HTTP header map as the propagator reads it.
struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}
