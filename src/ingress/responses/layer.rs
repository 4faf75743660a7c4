//! [`ResponsesLayer`]: OpenAI Responses in, over a chat completion service.

use super::request::{input_items, to_chat};
use super::response::{error_body, response_id, skeleton, to_response};
use super::store::ResponseStore;
use super::stream::{ResponsesStream, Save};
use crate::BoxError;
use crate::body::{self, Body};
use crate::context::{DEFAULT_MAX_BODY_BYTES, GenerationId};
use crate::error::GatewayError;
use crate::ingress::anthropic::ModelNames;
use crate::ingress::chat_side::{
    ChatAnswer, chat_request, error_answer, json_answer, read_answer, read_object,
};
use crate::ingress::remap::Remapped;
use crate::ledger::Ingress;
use futures_util::future::BoxFuture;
use http::{HeaderValue, Request, Response, header};
use serde_json::{Map, Value};
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Applies [`Responses`]; see the [module docs](super).
#[derive(Clone, Default)]
pub struct ResponsesLayer {
    max_body_bytes: Option<usize>,
    store: ResponseStore,
    models: Option<ModelNames>,
}

impl fmt::Debug for ResponsesLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponsesLayer")
            .field("max_body_bytes", &self.limit())
            .field("store", &self.store)
            .field("models", &self.models.is_some())
            .finish()
    }
}

impl ResponsesLayer {
    /// The layer: bodies up to [`DEFAULT_MAX_BODY_BYTES`], a [`ResponseStore`] of its own
    /// with the default bounds.
    pub fn new() -> Self {
        ResponsesLayer::default()
    }

    /// Refuses request bodies larger than `max` bytes with a 413.
    pub fn max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = Some(max);
        self
    }

    /// Keeps responses for `previous_response_id` in `store` (share one between layers that
    /// should see each other's responses).
    pub fn store(mut self, store: ResponseStore) -> Self {
        self.store = store;
        self
    }

    /// Maps each request's `model` through `names` before the service below sees it (`None`:
    /// keep it); the response still names the model as the client did.
    pub fn model_names(
        mut self,
        names: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.models = Some(Arc::new(names));
        self
    }

    fn limit(&self) -> usize {
        self.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES)
    }
}

impl<S> Layer<S> for ResponsesLayer {
    type Service = Responses<S>;
    fn layer(&self, inner: S) -> Responses<S> {
        Responses {
            inner,
            config: self.clone(),
        }
    }
}

/// The Responses service; see the [module docs](super).
#[derive(Clone, Debug)]
pub struct Responses<S> {
    inner: S,
    config: ResponsesLayer,
}

/// What the answer needs from the request.
struct Prepared {
    chat: Request<Body>,
    request: Map<String, Value>,
    save: Option<(u64, Vec<Value>)>,
}

impl<S, B> Service<Request<B>> for Responses<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<Body>, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The ready service goes into the future; its clone stays for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let prepared = match prepare(parts, body, &config).await {
                Ok(p) => p,
                Err(e) => return Ok(openai_error(&e)),
            };
            let Prepared {
                chat,
                request,
                save,
            } = prepared;
            let resp = crate::body::call_boxed(&mut inner, chat).await;
            let save = save.map(|(owner, items)| Save {
                store: config.store.clone(),
                owner,
                items,
            });
            match resp {
                Ok(resp) => answer(resp, &request, save).await,
                Err(e) => Ok(openai_error(&GatewayError::from_box(&e))),
            }
        })
    }
}

async fn prepare<B>(
    parts: http::request::Parts,
    body: B,
    config: &ResponsesLayer,
) -> Result<Prepared, GatewayError>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (request, _) = read_object(body, config.limit()).await?;
    let credential = parts
        .headers
        .get(header::AUTHORIZATION)
        .map_or(&[][..], HeaderValue::as_bytes);
    let owner = config.store.owner(credential);
    let mut conversation = match request.get("previous_response_id") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(id)) => config
            .store
            .get(id, owner)
            .ok_or_else(|| {
                GatewayError::bad_request(format!(
                    "Previous response with id '{id}' not found: this gateway keeps recent \
                     responses in memory only; send the whole conversation as `input`"
                ))
                .with_metadata("param", "previous_response_id")
            })?
            .to_vec(),
        Some(_) => {
            return Err(GatewayError::bad_request(
                "`previous_response_id` must be a string",
            ));
        }
    };
    conversation.extend(input_items(&request)?);
    let mut chat = to_chat(&request, &conversation)?;
    let asked = request["model"].as_str().unwrap_or_default();
    if let Some(slug) = config.models.as_ref().and_then(|names| names(asked)) {
        chat.insert("model".into(), slug.into());
    }
    let save = (request.get("store") != Some(&Value::Bool(false))).then_some((owner, conversation));
    Ok(Prepared {
        chat: chat_request(parts, "/responses", &chat, Ingress::Responses)?,
        request,
        save,
    })
}

/// The chat service's answer in the Responses shape.
async fn answer(
    resp: Response<Body>,
    request: &Map<String, Value>,
    save: Option<Save>,
) -> Result<Response<Body>, BoxError> {
    let answer = read_answer(resp).await?;
    let headers = match &answer {
        ChatAnswer::Stream(parts, _)
        | ChatAnswer::Completion(parts, _)
        | ChatAnswer::Failure(parts, _) => &parts.headers,
    };
    // The gateway's generation id names the response, so the two match in the ledger; alone,
    // a fresh one (an upstream's own ids can repeat, and the store keys on this one).
    let generation = headers
        .get("x-generation-id")
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| GenerationId::new().as_str().to_owned(), str::to_owned);
    let id = response_id(&generation);
    let model = request["model"].as_str().unwrap_or("");
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match answer {
        ChatAnswer::Stream(parts, body) => {
            let stream = ResponsesStream::new(skeleton(request, &id, created, model), save);
            Ok(Response::from_parts(
                parts,
                body::boxed(Remapped::new(body, stream)),
            ))
        }
        ChatAnswer::Completion(parts, json) => {
            let response = to_response(&json, skeleton(request, &id, created, model));
            if let Some(mut save) = save {
                save.items
                    .extend(response["output"].as_array().into_iter().flatten().cloned());
                save.store.put(id, save.owner, save.items);
            }
            json_answer(parts, &response)
        }
        ChatAnswer::Failure(parts, json) => {
            let body = error_body(parts.status.as_u16(), &json);
            json_answer(parts, &body)
        }
    }
}

/// A gateway error as an OpenAI error response.
pub(crate) fn openai_error(e: &GatewayError) -> Response<Body> {
    error_answer(e.status, &error_body(e.status.as_u16(), &e.to_json()))
}
