//! The steps every client API in front of a chat service takes the same way: reading the
//! client's JSON under a size limit, handing a chat body to the service below on its path, and
//! reading that service's answer back (a stream to remap, a completion, or a failure).
//!
//! Each API keeps what is its own: the shape of requests, answers and errors.

use crate::BoxError;
use crate::body::{self, Body, read_limited};
use crate::error::GatewayError;
use crate::ledger::Ingress;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use serde_json::{Map, Value};

/// Largest error or JSON answer read back from the chat service.
const MAX_ANSWER_BYTES: usize = crate::body::MAX_RESPONSE_BYTES;

/// The client's body as a JSON object, and its length: over `max` bytes is a 413, anything
/// but a JSON object a 400.
pub(super) async fn read_object<B>(
    body: B,
    max: usize,
) -> Result<(Map<String, Value>, usize), GatewayError>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let bytes = read_limited(body, max).await.map_err(|e| {
        if e.is::<http_body_util::LengthLimitError>() {
            GatewayError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the request body exceeds {max} bytes"),
            )
        } else {
            GatewayError::bad_request(format!("the request body could not be read: {e}"))
        }
    })?;
    let object = serde_json::from_slice(&bytes)
        .map_err(|e| GatewayError::bad_request(format!("the body is not a JSON object: {e}")))?;
    Ok((object, bytes.len()))
}

/// The chat request for the service below: `chat` as its JSON body, marked with `ingress`,
/// and its path `…/<endpoint>` (`endpoint` with its leading `/`) as `…/chat/completions` (query dropped, as Claude Code's
/// `?beta=true`), so a service that forwards the path reaches the chat endpoint beside it.
pub(super) fn chat_request(
    mut parts: http::request::Parts,
    endpoint: &str,
    chat: &Map<String, Value>,
    ingress: Ingress,
) -> Result<Request<Body>, GatewayError> {
    let bytes = serde_json::to_vec(chat)
        .map_err(|e| GatewayError::bad_request(format!("the request cannot be encoded: {e}")))?;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(prefix) = parts.uri.path().strip_suffix(endpoint) {
        let mut uri = parts.uri.clone().into_parts();
        uri.path_and_query = format!("{prefix}/chat/completions").parse().ok();
        if let Ok(uri) = http::Uri::from_parts(uri) {
            parts.uri = uri;
        }
    }
    parts.extensions.insert(ingress);
    Ok(Request::from_parts(parts, body::full(bytes)))
}

/// What the chat service answered.
pub(super) enum ChatAnswer {
    /// A successful SSE stream, for the API's remapper.
    Stream(http::response::Parts, Body),
    /// A successful completion (it has a choice).
    Completion(http::response::Parts, Value),
    /// An error status, with its JSON body (`null` when it was not JSON).
    Failure(http::response::Parts, Value),
}

/// Reads the chat service's answer: a stream is left unread; a 2xx without a choice is a 502.
pub(super) async fn read_answer(resp: Response<Body>) -> Result<ChatAnswer, BoxError> {
    let (mut parts, body) = resp.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    if parts.status.is_success() && is_event_stream(&parts.headers) {
        return Ok(ChatAnswer::Stream(parts, body));
    }
    let bytes = read_limited(body, MAX_ANSWER_BYTES).await?;
    let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if !parts.status.is_success() {
        return Ok(ChatAnswer::Failure(parts, json));
    }
    if json["choices"].get(0).is_none() {
        let json = GatewayError::new(
            StatusCode::BAD_GATEWAY,
            "provider_unavailable",
            "the chat completion service answered without a completion",
        )
        .to_json();
        parts.status = StatusCode::BAD_GATEWAY;
        return Ok(ChatAnswer::Failure(parts, json));
    }
    Ok(ChatAnswer::Completion(parts, json))
}

fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"))
}

/// `value` as the JSON answer, keeping the chat answer's status and headers.
pub(super) fn json_answer(
    mut parts: http::response::Parts,
    value: &Value,
) -> Result<Response<Body>, BoxError> {
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(Response::from_parts(
        parts,
        body::full(serde_json::to_vec(value)?),
    ))
}

/// An error answer with `status` and an API's error `body`.
pub(super) fn error_answer(status: StatusCode, body: &Value) -> Response<Body> {
    let mut resp = Response::new(body::full(serde_json::to_vec(body).unwrap_or_default()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
