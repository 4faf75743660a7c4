//! The request body that carries the request: [`ChatBody`], and [`chat_of`] for layers that
//! work with or without a parse layer in front.

use super::{ApiKind, ChatRequest, Target};
use crate::BoxError;
use crate::error::GatewayError;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body::{Frame, SizeHint};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// A request body holding a [`ChatRequest`], rendered as JSON only when it is read: the stack's
/// own layers read the request from the extensions and never poll it, and any other service
/// gets the real body.
///
/// ```
/// use http_body_util::BodyExt;
/// use switchyard::context::{ApiKind, ChatBody, ChatRequest};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let chat = ChatRequest::from_json(ApiKind::Chat, r#"{"model":"a/b","messages":[{"role":"user","content":"hi"}]}"#.into()).unwrap();
/// let body = ChatBody::for_model(chat.into(), "b-upstream-id");
/// let bytes = body.collect().await.unwrap().to_bytes();
/// assert!(std::str::from_utf8(&bytes).unwrap().contains(r#""model":"b-upstream-id""#));
/// # }
/// ```
#[derive(Debug)]
pub struct ChatBody {
    json: Option<Json>,
}

#[derive(Debug)]
enum Json {
    Chat(Arc<ChatRequest>),
    ForModel(Arc<ChatRequest>, Arc<str>),
    ForTarget(Arc<ChatRequest>, Target),
}

impl ChatBody {
    /// The request as it stands (see [`ChatRequest::to_json`]).
    pub fn new(chat: Arc<ChatRequest>) -> ChatBody {
        ChatBody {
            json: Some(Json::Chat(chat)),
        }
    }

    /// The request with `model` replaced: what one endpoint receives.
    pub fn for_model(chat: Arc<ChatRequest>, model: impl Into<Arc<str>>) -> ChatBody {
        ChatBody {
            json: Some(Json::ForModel(chat, model.into())),
        }
    }

    /// The request as one endpoint receives it: `model` set to the endpoint's upstream model
    /// id (kept as the client sent it when the endpoint names none).
    pub fn for_target(chat: Arc<ChatRequest>, target: Target) -> ChatBody {
        ChatBody {
            json: Some(Json::ForTarget(chat, target)),
        }
    }

    /// The JSON bytes, rendered now.
    pub fn render(self) -> Bytes {
        match self.json {
            Some(Json::Chat(c)) => c.to_json(),
            Some(Json::ForModel(c, m)) => c.to_json_with_model(&m),
            Some(Json::ForTarget(c, t)) => match &*t.endpoint().upstream_model {
                "" => c.to_json(),
                id => c.to_json_with_model(id),
            },
            None => Bytes::new(),
        }
    }
}

impl http_body::Body for ChatBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let Some(json) = self.json.take() else {
            return Poll::Ready(None);
        };
        Poll::Ready(Some(Ok(Frame::data(
            ChatBody { json: Some(json) }.render(),
        ))))
    }

    fn is_end_stream(&self) -> bool {
        self.json.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match &self.json {
            None => SizeHint::with_exact(0),
            Some(Json::Chat(c)) if c.source.is_some() => {
                SizeHint::with_exact(c.source.as_ref().map_or(0, |b| b.len() as u64))
            }
            Some(_) => SizeHint::default(),
        }
    }
}

/// Request body types a layer can put a [`ChatBody`] into: the crate's [`Body`](crate::Body),
/// `Full<Bytes>`, and axum's body (feature `server`).
pub trait FromChat: Sized {
    /// The body holding `body`.
    fn from_chat(body: ChatBody) -> Self;
}

impl FromChat for crate::body::Body {
    fn from_chat(body: ChatBody) -> Self {
        crate::body::boxed(body)
    }
}

impl FromChat for http_body_util::Full<Bytes> {
    fn from_chat(body: ChatBody) -> Self {
        http_body_util::Full::new(body.render())
    }
}

#[cfg(feature = "server")]
impl FromChat for axum::body::Body {
    fn from_chat(body: ChatBody) -> Self {
        axum::body::Body::new(body)
    }
}

/// Sets a changed request on `req`: the `Arc<ChatRequest>` extension and a body that renders
/// it (the old `Content-Length` no longer holds).
pub fn set_chat<B: FromChat>(req: &mut Request<B>, chat: Arc<ChatRequest>) {
    req.headers_mut().remove(http::header::CONTENT_LENGTH);
    *req.body_mut() = B::from_chat(ChatBody::new(Arc::clone(&chat)));
    req.extensions_mut().insert(chat);
}

/// The client API a request path names: `…/completions` but not `…/chat/completions` is the
/// legacy completions API, `…/embeddings` embeddings; anything else is chat.
pub fn api_of_path(path: &str) -> ApiKind {
    let path = path.trim_end_matches('/');
    if path.ends_with("/embeddings") {
        ApiKind::Embeddings
    } else if path.ends_with("/completions") && !path.ends_with("/chat/completions") {
        ApiKind::Completions
    } else {
        ApiKind::Chat
    }
}

/// The request's [`ChatRequest`]: the one a parse layer (or any layer) left in the extensions,
/// or else parsed here from the body, read up to `max_body_bytes` (413 past it; 400 naming the
/// cause for a body that is not a valid request). The request comes back with the
/// `ChatRequest` in its extensions and its body intact.
pub async fn chat_of<B>(
    req: Request<B>,
    max_body_bytes: usize,
) -> Result<(Request<B>, Arc<ChatRequest>), GatewayError>
where
    B: http_body::Body<Data = Bytes> + FromChat,
    B::Error: Into<BoxError>,
{
    if let Some(chat) = req.extensions().get::<Arc<ChatRequest>>() {
        let chat = Arc::clone(chat);
        return Ok((req, chat));
    }
    let (mut parts, body) = req.into_parts();
    let bytes = crate::body::read_limited(body, max_body_bytes)
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                GatewayError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("Request body exceeds the limit of {max_body_bytes} bytes"),
                )
            } else {
                GatewayError::bad_request(format!("Could not read the request body: {e}"))
            }
        })?;
    let kind = api_of_path(parts.uri.path());
    let chat = Arc::new(ChatRequest::from_json_with_headers(
        kind,
        bytes,
        &parts.headers,
    )?);
    parts.extensions.insert(Arc::clone(&chat));
    let body = B::from_chat(ChatBody::new(Arc::clone(&chat)));
    Ok((Request::from_parts(parts, body), chat))
}

/// The body limit layers use when they read a body themselves (as the parse layer's default).
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// The path of a layer that found no `ChatRequest` (no parse layer in front): read and parse
/// the body ([`chat_of`]), apply `step` to the request, then call `inner` with it.
pub(crate) fn parse_then_call<S, B, F>(
    req: Request<B>,
    mut inner: S,
    step: F,
) -> futures_util::future::BoxFuture<'static, Result<S::Response, BoxError>>
where
    S: tower::Service<Request<B>> + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + FromChat + Send + 'static,
    B::Error: Into<BoxError>,
    F: FnOnce(&mut Request<B>, &ChatRequest) -> Result<(), GatewayError> + Send + 'static,
{
    Box::pin(async move {
        let (mut req, chat) = chat_of(req, DEFAULT_MAX_BODY_BYTES).await?;
        step(&mut req, &chat)?;
        std::future::poll_fn(|cx| inner.poll_ready(cx))
            .await
            .map_err(Into::into)?;
        inner.call(req).await.map_err(Into::into)
    })
}
