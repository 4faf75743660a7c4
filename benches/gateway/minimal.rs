//! The `minimal` role: the least any OpenRouter-compatible gateway must do per request, written
//! as directly as possible on hyper and serde_json, with none of switchyard's layers.
//!
//! The bare proxy is the limit of one proxy hop; this is what one *gateway* hop costs done the
//! plain way. It is not a lower bound for large bodies: serde_json's validation of a large body
//! costs several times what switchyard's own JSON cursor spends (the bench's 1 MB rows).
//! Per request it:
//!
//! 1. reads the whole request body (a gateway routes on `model`, which may come last);
//! 2. validates it as JSON and reads `model` (serde_json, borrowing; malformed JSON gets 400);
//! 3. looks the slug up in a one-model catalogue (unknown: 404) and writes the endpoint's own
//!    model id in its place (one splice of the client's bytes);
//! 4. forwards it over a pooled hyper-util client;
//! 5. meters: a JSON response is read whole, validated, its `usage` read and the cost sent back
//!    in a header; a stream is forwarded frame by frame, each frame searched for `"usage"` and
//!    that event parsed (a line cut between frames is carried to the next).
//!
//! It skips everything else switchyard does: provider preferences, price balancing, fallback,
//! health, aliases, the Auto Router, translation to other wire formats, OpenRouter's response
//! stamps (`gen-…` ids, `provider`, `native_finish_reason`), `usage.cost` written into the body,
//! the ledger, keys and credit limits, body and time limits, the overhead header.

use super::{ProxyBody, accept_loop};
use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Request, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use std::borrow::Cow;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;

/// The one model the minimal gateway serves, and where.
struct Endpoint {
    slug: &'static str,
    upstream_model: &'static str,
    uri: Uri,
    /// USD per token.
    prompt_price: f64,
    completion_price: f64,
}

/// The routing fields; every other field is validated and skipped.
#[derive(Deserialize)]
struct Routing<'a> {
    #[serde(borrow)]
    model: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
}

#[derive(Deserialize)]
struct WithUsage {
    usage: Option<Usage>,
}

/// Nano-USD metered so far: the stand-in for a ledger.
static METERED: AtomicU64 = AtomicU64::new(0);

pub(super) async fn serve_minimal(listener: TcpListener, upstream: SocketAddr) {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(http);
    let endpoint = Arc::new(Endpoint {
        slug: "bench/target",
        upstream_model: "bench-up",
        uri: format!("http://{upstream}/v1/chat/completions")
            .parse()
            .expect("uri"),
        prompt_price: 0.1e-6,
        completion_price: 0.2e-6,
    });
    accept_loop(listener, move |req: Request<Incoming>| {
        let client = client.clone();
        let endpoint = endpoint.clone();
        async move { Ok::<_, Infallible>(handle(req, &client, &endpoint).await) }
    })
    .await;
}

fn answer(status: StatusCode, message: &str) -> Response<ProxyBody> {
    let body = serde_json::json!({"error": {"code": status.as_u16(), "message": message}});
    let mut r = Response::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r
}

async fn handle(
    req: Request<Incoming>,
    client: &Client<HttpConnector, Full<Bytes>>,
    endpoint: &Endpoint,
) -> Response<ProxyBody> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return answer(StatusCode::BAD_REQUEST, &format!("reading the body: {e}")),
    };
    let routing: Routing<'_> = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return answer(StatusCode::BAD_REQUEST, &format!("invalid JSON: {e}")),
    };
    if routing.model != endpoint.slug {
        return answer(
            StatusCode::NOT_FOUND,
            &format!("no model {:?}", routing.model),
        );
    }
    let forwarded = match &routing.model {
        // The slug's own bytes inside the body: splice the upstream id in their place.
        Cow::Borrowed(slug) => {
            let start = slug.as_ptr() as usize - body.as_ptr() as usize;
            let end = start + slug.len();
            let mut out = BytesMut::with_capacity(body.len() + endpoint.upstream_model.len());
            out.extend_from_slice(&body[..start]);
            out.extend_from_slice(endpoint.upstream_model.as_bytes());
            out.extend_from_slice(&body[end..]);
            out.freeze()
        }
        // An escaped slug: rare enough to take the slow path.
        Cow::Owned(_) => {
            let mut v: serde_json::Value = serde_json::from_slice(&body).expect("validated");
            v["model"] = endpoint.upstream_model.into();
            Bytes::from(serde_json::to_vec(&v).expect("serialises"))
        }
    };
    let mut up = Request::post(endpoint.uri.clone())
        .body(Full::new(forwarded))
        .expect("request");
    for name in [header::CONTENT_TYPE, header::ACCEPT] {
        if let Some(v) = parts.headers.get(&name) {
            up.headers_mut().insert(name, v.clone());
        }
    }
    let resp = match client.request(up).await {
        Ok(r) => r,
        Err(e) => return answer(StatusCode::BAD_GATEWAY, &format!("upstream: {e}")),
    };
    let is_stream = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let (mut parts, body) = resp.into_parts();
    if is_stream {
        return Response::from_parts(parts, metered_stream(body, endpoint));
    }
    let bytes = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return answer(StatusCode::BAD_GATEWAY, &format!("upstream body: {e}")),
    };
    match serde_json::from_slice::<WithUsage>(&bytes) {
        Ok(WithUsage { usage: Some(u) }) => {
            let cost = meter(&u, (endpoint.prompt_price, endpoint.completion_price));
            parts
                .headers
                .insert("x-minimal-cost", HeaderValue::from(cost));
        }
        Ok(_) => {}
        Err(e) => return answer(StatusCode::BAD_GATEWAY, &format!("upstream JSON: {e}")),
    }
    Response::from_parts(
        parts,
        Full::new(bytes).map_err(|never| match never {}).boxed(),
    )
}

/// Records the cost of `usage` at `(prompt, completion)` USD per token; returns it in nano-USD.
fn meter(usage: &Usage, (prompt, completion): (f64, f64)) -> u64 {
    let usd = usage.prompt_tokens as f64 * prompt + usage.completion_tokens as f64 * completion;
    let nano = (usd * 1e9).round() as u64;
    METERED.fetch_add(nano, Ordering::Relaxed);
    nano
}

/// The upstream's frames unchanged, each searched for the usage event.
fn metered_stream(body: Incoming, endpoint: &Endpoint) -> ProxyBody {
    let finder = memchr::memmem::Finder::new(b"\"usage\"").into_owned();
    let prices = (endpoint.prompt_price, endpoint.completion_price);
    let state = (body, Vec::<u8>::new(), finder);
    let frames =
        futures_util::stream::unfold(state, move |(mut body, mut carry, finder)| async move {
            let frame = body.frame().await?;
            if let Ok(frame) = &frame
                && let Some(data) = frame.data_ref()
            {
                scan(data, &mut carry, &finder, prices);
            }
            Some((frame, (body, carry, finder)))
        });
    StreamBody::new(frames).boxed()
}

/// Finds a complete `data:` line holding `"usage"` and meters it; keeps an unfinished line.
fn scan(data: &[u8], carry: &mut Vec<u8>, finder: &memchr::memmem::Finder<'_>, prices: (f64, f64)) {
    let joined;
    let text: &[u8] = if carry.is_empty() {
        data
    } else {
        carry.extend_from_slice(data);
        joined = std::mem::take(carry);
        &joined
    };
    let tail_start = memchr::memrchr(b'\n', text).map_or(0, |i| i + 1);
    if let Some(at) = finder.find(&text[..tail_start]) {
        let line_start = memchr::memrchr(b'\n', &text[..at]).map_or(0, |i| i + 1);
        let line_end = at + memchr::memchr(b'\n', &text[at..]).unwrap_or(text.len() - at);
        let line = &text[line_start..line_end];
        if let Some(json) = line.strip_prefix(b"data:")
            && let Ok(WithUsage { usage: Some(u) }) = serde_json::from_slice(json.trim_ascii())
        {
            meter(&u, prices);
        }
    }
    // Only a line that may still be cut is kept, and only when it could hold the usage.
    let tail = &text[tail_start..];
    if !tail.is_empty() {
        carry.extend_from_slice(tail);
    }
}
