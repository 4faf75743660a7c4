//! [`MissingInput`]: a layer did not find what it needs in the request.

use super::GatewayError;
use http::StatusCode;
use std::fmt;

/// A layer found no input it requires in the request: the layer that provides it is missing
/// or stacked in the wrong order, or a user's own layer did not insert it. Each layer's
/// contract (its module docs) names what it requires; none passes a request on without it.
///
/// It reaches the client as a 500 whose message names the layer and the input.
///
/// ```
/// use switchyard::error::MissingInput;
/// let e = MissingInput::new("fallback", "Candidates", "set by the route layer");
/// assert_eq!(e.to_string(), "fallback: the request has no Candidates (set by the route layer)");
/// assert_eq!(e.to_gateway_error().status, 500);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MissingInput {
    /// The layer that needed it.
    pub layer: &'static str,
    /// The input, by its type's name.
    pub input: &'static str,
    /// Where it usually comes from.
    pub hint: &'static str,
}

impl MissingInput {
    /// `layer` needed `input`, which `hint` says where to get.
    pub fn new(layer: &'static str, input: &'static str, hint: &'static str) -> Self {
        MissingInput { layer, input, hint }
    }

    /// The client-facing error: 500, the stack is misassembled.
    pub fn to_gateway_error(&self) -> GatewayError {
        GatewayError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server",
            self.to_string(),
        )
        .with_metadata("missing_input", self.input)
    }
}

impl fmt::Display for MissingInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: the request has no {} ({})",
            self.layer, self.input, self.hint
        )
    }
}

impl std::error::Error for MissingInput {}
