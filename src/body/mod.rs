//! The body type every layer of the stack produces, and small constructors.
//!
//! Inside the stack, a `text/event-stream` body yields **one complete SSE event per data frame**
//! (`data: …\n\n` or a `: comment\n\n`). The translate layer establishes this from the upstream's
//! arbitrary chunking, so the layers outside it never re-frame.

mod read;

pub use read::{MAX_RESPONSE_BYTES, read_limited};

use crate::BoxError;
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};

/// A boxed response or request body.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A body holding `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An empty body.
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// Boxes any body whose errors convert into [`BoxError`].
pub fn boxed<B>(body: B) -> Body
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

/// Boxes a body whose errors already are [`BoxError`]s: [`boxed`] without the error-mapping
/// wrapper, one call less per frame (the stack's own stream bodies, polled once per event).
pub(crate) fn boxed_as_is<B>(body: B) -> Body
where
    B: http_body::Body<Data = Bytes, Error = BoxError> + Send + 'static,
{
    UnsyncBoxBody::new(body)
}

/// The `data: [DONE]` event that ends every stream.
pub const DONE_EVENT: &[u8] = b"data: [DONE]\n\n";

/// Encodes a JSON value as one SSE `data:` event.
pub fn sse_event(value: &serde_json::Value) -> Bytes {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"data: ");
    // Serialising a Value cannot fail.
    let _ = serde_json::to_writer(&mut out, value);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// Calls a service and boxes its future.
///
/// Holding a generic `S::Future` across an `.await` inside an `async` block trips a rustc
/// limitation ("`Send` is not general enough") when the request type names `BoxError`; a boxed
/// future created in a plain function does not.
pub(crate) fn call_boxed<S, R>(
    svc: &mut S,
    req: R,
) -> futures_util::future::BoxFuture<'static, Result<S::Response, BoxError>>
where
    S: tower::Service<R>,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
{
    use futures_util::TryFutureExt;
    Box::pin(svc.call(req).map_err(Into::into))
}
