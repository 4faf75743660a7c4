//! The edge helper: any error of the stack → OpenRouter's error envelope
//! `{"error":{"code","message","metadata"}}` with HTTP status = `code`.
//!
//! Layers return concrete error types inside [`BoxError`](crate::BoxError); [`GatewayError::from_box`]
//! downcasts the ones it knows, so every error names its cause (the constraint, the provider, the
//! byte position) instead of a generic "Provider returned error".
//!
//! ```
//! use switchyard::error::GatewayError;
//! use http::StatusCode;
//! let e = GatewayError::new(StatusCode::BAD_REQUEST, "invalid_request", "`messages` is required");
//! let resp = e.into_response();
//! assert_eq!(resp.status(), 400);
//! ```

mod missing;
mod transport;

pub use missing::MissingInput;
pub use transport::{Phase, UpstreamError, UpstreamErrorKind};

use crate::BoxError;
use crate::body::{self, Body};
use http::{HeaderValue, Response, StatusCode};
use serde_json::{Map, Value, json};
use std::fmt;

/// An error as the client will see it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GatewayError {
    /// HTTP status, also `error.code`.
    pub status: StatusCode,
    /// `error.metadata.error_type` (SPEC 7.3 vocabulary).
    pub error_type: &'static str,
    /// Human-readable cause.
    pub message: String,
    /// Extra `error.metadata` fields (`raw`, `provider_name`, …).
    pub metadata: Map<String, Value>,
    /// `error.availability` for routing failures.
    pub availability: Option<Value>,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
}

impl GatewayError {
    /// An error with a status, type and message.
    pub fn new(status: StatusCode, error_type: &'static str, message: impl Into<String>) -> Self {
        GatewayError {
            status,
            error_type,
            message: message.into(),
            metadata: Map::new(),
            availability: None,
            retry_after: None,
        }
    }

    /// 400 `invalid_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// Adds an `error.metadata` field.
    pub fn with_metadata(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.metadata.insert(key.to_owned(), value.into());
        self
    }

    /// The envelope as JSON.
    pub fn to_json(&self) -> Value {
        let mut metadata = self.metadata.clone();
        metadata.insert("error_type".into(), Value::from(self.error_type));
        let mut error = json!({
            "code": self.status.as_u16(),
            "message": self.message,
            "metadata": metadata,
        });
        if let Some(a) = &self.availability {
            error["availability"] = a.clone();
        }
        json!({ "error": error })
    }

    /// The HTTP response.
    pub fn into_response(self) -> Response<Body> {
        let bytes = serde_json::to_vec(&self.to_json()).unwrap_or_default();
        let mut resp = Response::new(body::full(bytes));
        *resp.status_mut() = self.status;
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }

    /// Turns any error from the stack into the client's error, downcasting known types.
    pub fn from_box(err: &BoxError) -> GatewayError {
        if let Some(e) = err.downcast_ref::<GatewayError>() {
            return e.clone();
        }
        if let Some(e) = err.downcast_ref::<UpstreamError>() {
            return e.to_gateway_error();
        }
        if let Some(e) = err.downcast_ref::<MissingInput>() {
            return e.to_gateway_error();
        }
        if let Some(e) = err.downcast_ref::<crate::catalog::ConfigError>() {
            return GatewayError::new(StatusCode::INTERNAL_SERVER_ERROR, "server", e.to_string());
        }
        // Internal errors are masked (SPEC 7.3) but still say something useful and safe.
        GatewayError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server",
            format!("internal error: {}", first_line(&err.to_string())),
        )
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.status.as_u16(),
            self.error_type,
            self.message
        )
    }
}

impl std::error::Error for GatewayError {}

/// The response for an error returned by a service: known types keep their status.
pub fn error_response(err: &BoxError) -> Response<Body> {
    GatewayError::from_box(err).into_response()
}
