//! One simulated provider: an HTTP server on `127.0.0.1:0` speaking its wire format, checking
//! the key the way the real API does, answering after its latencies, and failing its share of
//! requests.

use super::event::Pace;
use super::providers::SimSpec;
use super::reply::Reply;
use super::{anthropic, gemini, openai};
use crate::catalog::Api;
use axum::Router;
use axum::body::Body as AxBody;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use rand::Rng;
use serde_json::Value;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

struct Sim {
    spec: SimSpec,
    key: String,
}

/// What a request asked for, read the way its wire format carries it.
struct Ask {
    model: String,
    stream: bool,
    legacy: bool,
    body: Value,
}

/// Starts the simulated provider `spec`, accepting only `key`; returns its address.
pub(super) async fn start(spec: SimSpec, key: &str) -> std::io::Result<SocketAddr> {
    let sim = Arc::new(Sim {
        spec,
        key: key.to_owned(),
    });
    let router = match spec.api {
        Api::OpenAi => Router::new()
            .route("/v1/chat/completions", post(openai_chat))
            .route("/v1/completions", post(openai_legacy)),
        Api::Anthropic => Router::new().route("/v1/messages", post(anthropic_messages)),
        Api::Gemini => Router::new().route("/v1beta/models/{action}", post(gemini_generate)),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = router.with_state(sim);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("demo provider {}: {e}", spec.slug);
        }
    });
    Ok(addr)
}

async fn openai_chat(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    sim.serve(&headers, None, &body, false).await
}

async fn openai_legacy(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    sim.serve(&headers, None, &body, true).await
}

async fn anthropic_messages(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.serve(&headers, None, &body, false).await
}

async fn gemini_generate(
    State(sim): State<Arc<Sim>>,
    Path(action): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.serve(&headers, Some(&action), &body, false).await
}

impl Sim {
    async fn serve(
        &self,
        headers: &HeaderMap,
        action: Option<&str>,
        body: &[u8],
        legacy: bool,
    ) -> Response {
        let ask = match self.read(headers, action, body, legacy) {
            Ok(ask) => ask,
            Err((status, message)) => return self.error(status, &message),
        };
        let spec = &self.spec;
        let format = spec.api.as_str();
        if rand::rng().random_bool(spec.failure_rate) {
            tokio::time::sleep(jitter(spec.first_token / 2)).await;
            let rate = spec.failure_rate * 100.0;
            if ask.stream && rand::rng().random_bool(0.5) {
                tracing::info!(
                    target: "switchyard::demo",
                    "{} ({format}) {}: stream broken off before any content, a simulated \
                     connection loss ({rate:.0}% of its requests fail)",
                    spec.name, ask.model
                );
                let broken = futures_util::stream::once(async {
                    Err::<Bytes, _>(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
                });
                return (
                    [(header::CONTENT_TYPE, "text/event-stream")],
                    AxBody::from_stream(broken),
                )
                    .into_response();
            }
            tracing::info!(
                target: "switchyard::demo",
                "{} ({format}) {}: 503, a simulated outage ({rate:.0}% of its requests fail)",
                spec.name, ask.model
            );
            let status = if spec.api == Api::Anthropic { 529 } else { 503 };
            return self.error(status, "simulated outage: this provider is overloaded");
        }
        let max_tokens = match spec.api {
            Api::OpenAi => openai::max_tokens(&ask.body),
            Api::Anthropic => anthropic::max_tokens(&ask.body),
            Api::Gemini => gemini::max_tokens(&ask.body),
        };
        let reply = Reply::new(spec.name, format, &ask.model, &ask.body, max_tokens);
        tracing::info!(
            target: "switchyard::demo",
            "{} ({format}) {}: 200, {} tokens{}",
            spec.name, ask.model, reply.completion_tokens(),
            if ask.stream { ", streamed" } else { "" }
        );
        if !ask.stream {
            let generation = spec.first_token + spec.per_token * reply.tokens.len() as u32;
            tokio::time::sleep(jitter(generation)).await;
            let body = match spec.api {
                Api::OpenAi => openai::body(&reply, ask.legacy),
                Api::Anthropic => anthropic::body(&reply),
                Api::Gemini => gemini::body(&reply),
            };
            return json(StatusCode::OK, &body);
        }
        let events = match spec.api {
            Api::OpenAi => openai::events(&reply, ask.legacy),
            Api::Anthropic => anthropic::events(&reply),
            Api::Gemini => gemini::events(&reply),
        };
        let (first, per_token) = (spec.first_token, spec.per_token);
        let stream = futures_util::stream::unfold(events.into_iter(), move |mut rest| async move {
            let event = rest.next()?;
            let wait = match event.pace() {
                Pace::Head => first,
                Pace::Token => per_token,
                Pace::Tail => Duration::ZERO,
            };
            if !wait.is_zero() {
                tokio::time::sleep(jitter(wait)).await;
            }
            Some((Ok::<_, Infallible>(event.into_bytes()), rest))
        });
        (
            [(header::CONTENT_TYPE, "text/event-stream")],
            AxBody::from_stream(stream),
        )
            .into_response()
    }

    /// Checks the key and the format's required headers and reads the request.
    fn read(
        &self,
        headers: &HeaderMap,
        action: Option<&str>,
        body: &[u8],
        legacy: bool,
    ) -> Result<Ask, (u16, String)> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let key_ok = match self.spec.api {
            Api::OpenAi => header("authorization")
                .and_then(|v| v.strip_prefix("Bearer "))
                .is_some_and(|k| k == self.key),
            Api::Anthropic => header("x-api-key") == Some(self.key.as_str()),
            Api::Gemini => header("x-goog-api-key") == Some(self.key.as_str()),
        };
        if !key_ok {
            return Err((401, "missing or invalid API key".to_owned()));
        }
        if self.spec.api == Api::Anthropic && header("anthropic-version").is_none() {
            return Err((400, "anthropic-version: header is required".to_owned()));
        }
        let body: Value = serde_json::from_slice(body)
            .map_err(|e| (400, format!("the request body is not JSON: {e}")))?;
        let (model, stream) = match action {
            Some(action) => match action.rsplit_once(':') {
                Some((model, "generateContent")) => (model.to_owned(), false),
                Some((model, "streamGenerateContent")) => (model.to_owned(), true),
                _ => return Err((404, format!("unknown method `{action}`"))),
            },
            None => {
                let model = body
                    .get("model")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let stream = body.get("stream").and_then(Value::as_bool) == Some(true);
                (model.to_owned(), stream)
            }
        };
        Ok(Ask {
            model,
            stream,
            legacy,
            body,
        })
    }

    fn error(&self, status: u16, message: &str) -> Response {
        let body = match self.spec.api {
            Api::OpenAi => openai::error(status, message),
            Api::Anthropic => anthropic::error(status, message),
            Api::Gemini => gemini::error(status, message),
        };
        json(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            &body,
        )
    }
}

fn json(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `d` give or take a fifth, so latencies look measured rather than scripted.
fn jitter(d: Duration) -> Duration {
    d.mul_f64(rand::rng().random_range(0.8..1.2))
}
