//! One classifier for every layer: what counts as success, what moves on to the next endpoint,
//! what moves on to the next model, and what is final.
//!
//! | outcome | class |
//! |---|---|
//! | 2xx | [`Class::Success`] |
//! | connect error, timeout, broken connection, invalid upstream response | [`Class::NextEndpoint`] |
//! | 408, 429, 500–599, 529, 401/403 from the provider (our key is wrong there, not the client's) | [`Class::NextEndpoint`] |
//! | 400 `context_length_exceeded` / `max_tokens_exceeded`, 403 moderation, 404/413/422 model-specific | [`Class::NextModel`] |
//! | other 4xx | [`Class::Final`] |
//!
//! ```
//! use switchyard::classify::{classify_status, Class};
//! assert_eq!(classify_status(529, None), Class::NextEndpoint);
//! assert_eq!(classify_status(400, Some("invalid_request")), Class::Final);
//! assert_eq!(classify_status(400, Some("context_length_exceeded")), Class::NextModel);
//! ```

use crate::BoxError;
use crate::upstream::UpstreamError;

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Keep the response.
    Success,
    /// Try the next endpoint (of this model, then the next models).
    NextEndpoint,
    /// Skip this model's other endpoints; try the next model of a `models` list.
    NextModel,
    /// Return the error to the client.
    Final,
}

impl Class {
    /// True for either kind of fallback.
    pub fn is_retryable(self) -> bool {
        matches!(self, Class::NextEndpoint | Class::NextModel)
    }
}

/// Classifies an upstream status with the error type our translation derived from its body.
pub fn classify_status(status: u16, error_type: Option<&str>) -> Class {
    match status {
        200..=299 => Class::Success,
        408 | 409 | 425 | 429 | 500..=599 => Class::NextEndpoint,
        // The provider rejecting *our* key or region says nothing about the client's request.
        401..=403
            if error_type != Some("content_policy_violation")
                && error_type != Some("moderation") =>
        {
            Class::NextEndpoint
        }
        403 => Class::NextModel,
        404 | 413 | 422 => Class::NextModel,
        400 => match error_type {
            Some(
                "context_length_exceeded"
                | "max_tokens_exceeded"
                | "token_limit_exceeded"
                | "string_too_long"
                | "content_policy_violation"
                | "moderation",
            ) => Class::NextModel,
            _ => Class::Final,
        },
        _ => Class::Final,
    }
}

/// Classifies an error returned instead of a response: transport failures fall over; errors the
/// gateway raised itself (bad request, no endpoints) are final.
pub fn classify_error(err: &BoxError) -> Class {
    if err.downcast_ref::<UpstreamError>().is_some() {
        Class::NextEndpoint
    } else if let Some(g) = err.downcast_ref::<crate::error::GatewayError>() {
        classify_status(g.status.as_u16(), Some(g.error_type))
    } else {
        Class::NextEndpoint
    }
}

/// Derives an `error_type` from an upstream error message when the provider gave none.
pub fn error_type_from_message(status: u16, message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    if m.contains("context length")
        || m.contains("context_length")
        || m.contains("maximum context")
        || m.contains("too many tokens")
        || m.contains("prompt is too long")
    {
        "context_length_exceeded"
    } else if m.contains("moderation") || m.contains("flagged") {
        "content_policy_violation"
    } else {
        match status {
            400 => "invalid_request",
            401 => "authentication",
            402 => "payment_required",
            403 => "permission_denied",
            404 => "not_found",
            408 | 504 => "timeout",
            413 => "payload_too_large",
            422 => "unprocessable",
            429 => "rate_limit_exceeded",
            503 | 529 => "provider_overloaded",
            502 => "provider_unavailable",
            _ => "server",
        }
    }
}
