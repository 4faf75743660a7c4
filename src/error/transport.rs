//! Transport failures talking to an upstream (the upstream service's errors).

use super::GatewayError;
use http::StatusCode;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Which deadline expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// TCP/TLS connect.
    Connect,
    /// Waiting for the response headers or the first body byte.
    FirstByte,
    /// Silence between two body chunks.
    Idle,
    /// The whole exchange.
    Total,
}

/// What went wrong on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpstreamErrorKind {
    /// The connection could not be made (refused, DNS, TLS).
    Connect,
    /// A deadline expired.
    Timeout(Phase, Duration),
    /// The connection broke (reset, cut) mid-exchange.
    Broken,
    /// The upstream sent something that is not the protocol it should speak.
    Invalid,
}

/// A transport failure, naming the provider and the cause.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UpstreamError {
    /// What went wrong.
    pub kind: UpstreamErrorKind,
    /// Provider display name.
    pub provider: Arc<str>,
    /// Detail (the underlying error's text).
    pub detail: String,
}

impl UpstreamError {
    /// True for a timeout of any phase.
    pub fn is_timeout(&self) -> bool {
        matches!(self.kind, UpstreamErrorKind::Timeout(..))
    }

    /// The client-facing error: 502 for broken or invalid upstreams, 504 for timeouts.
    pub fn to_gateway_error(&self) -> GatewayError {
        let (status, error_type) = match self.kind {
            UpstreamErrorKind::Timeout(..) => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
            _ => (StatusCode::BAD_GATEWAY, "provider_unavailable"),
        };
        GatewayError::new(status, error_type, self.to_string())
            .with_metadata("provider_name", &*self.provider)
    }
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.provider;
        match &self.kind {
            UpstreamErrorKind::Connect => write!(f, "Could not connect to {p}: {}", self.detail),
            UpstreamErrorKind::Timeout(phase, after) => {
                let what = match phase {
                    Phase::Connect => "connecting",
                    Phase::FirstByte => "waiting for the first byte",
                    Phase::Idle => "waiting for the next chunk",
                    Phase::Total => "receiving the whole response",
                };
                write!(f, "{p} timed out {what} (limit {} ms)", after.as_millis())
            }
            UpstreamErrorKind::Broken => {
                write!(f, "{p} disconnected unexpectedly: {}", self.detail)
            }
            UpstreamErrorKind::Invalid => {
                write!(f, "{p} returned an invalid response: {}", self.detail)
            }
        }
    }
}

impl std::error::Error for UpstreamError {}
