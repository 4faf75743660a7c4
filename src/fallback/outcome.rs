//! How the attempt loop ended: [`Outcome`].

use crate::body::Body;
use crate::error::GatewayError;
use http::{HeaderValue, Response, header};
use std::sync::Arc;

/// What error chunks are stamped with.
#[derive(Debug, Clone)]
pub(crate) struct ChunkStamp {
    pub(crate) id: Arc<str>,
    pub(crate) model: Arc<str>,
    pub(crate) provider: Arc<str>,
}

/// How a request ended.
pub(crate) enum Outcome {
    /// A candidate succeeded; its (possibly already-started) response.
    Committed(Response<Body>),
    /// Every allowed candidate failed; the error to return.
    Failed(Failure),
}

/// The error of the last attempt, with the chain of earlier ones.
pub(crate) struct Failure {
    pub(crate) error: GatewayError,
    pub(crate) retry_after: Option<HeaderValue>,
    pub(crate) stamp: ChunkStamp,
}

impl Failure {
    pub(crate) fn into_response(self) -> Response<Body> {
        let mut resp = self.error.into_response();
        if let Some(v) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

impl Outcome {
    pub(crate) fn into_response(self) -> Response<Body> {
        match self {
            Outcome::Committed(resp) => resp,
            Outcome::Failed(failure) => failure.into_response(),
        }
    }
}
