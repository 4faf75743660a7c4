//! Upstream: the innermost service. Sends a request to the provider of the attempt's
//! [`Target`](crate::context::Target) over one pooled hyper-util client (HTTPS by rustls, HTTP/1.1
//! and HTTP/2 by ALPN), with the provider's key injected and its timeouts enforced.
//!
//! The request it receives carries only a path (`/chat/completions`, `/messages`, …), the body
//! and the headers the translate layer chose; the client's own headers never get here, so its
//! `Authorization`, cookies and hop-by-hop headers cannot leak upstream. There is no way for a
//! client to choose the upstream URL: it comes from the catalogue.
//!
//! 1. Join the provider's `base_url` with the request path.
//! 2. Inject the key the way the provider's API expects (`Authorization: Bearer`, `x-api-key`,
//!    `x-goog-api-key`) and the provider's configured headers.
//! 3. Wait for the response headers within `first_byte`, connect errors classified apart.
//! 4. Wrap the body so that the first chunk arrives within `first_byte`, each next one within
//!    `idle`, and the whole exchange within `total`.
//!
//! # Contract
//!
//! | | |
//! |---|---|
//! | reads (required) | [`Target`](crate::context::Target) (the provider: base URL, key, timeouts); missing → [`MissingInput`] |
//! | reads (optional) | [`RequestContext`](crate::context::RequestContext): its upstream wait gets the time spent waiting |
//! | writes | the absolute URI, the provider's key and headers; the client's `Host` is dropped |

mod timed;

pub use crate::error::{Phase, UpstreamError, UpstreamErrorKind};
pub(crate) use timed::source_chain;

use crate::BoxError;
use crate::body::{self, Body};
use crate::catalog::{Api, Provider};
use crate::context::{RequestContext, Target};
use crate::error::MissingInput;
use futures_util::future::BoxFuture;
use http::{Request, Response, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;
use timed::TimedBody;
use tokio::time::Instant;

type HttpsClient = Client<HttpsConnector<HttpConnector>, Body>;

/// The upstream HTTP client service; cheap to clone (clones share the pools).
///
/// The clients sit behind one `Arc`: the gateway clones the whole stack per request.
#[derive(Clone, Debug, Default)]
pub struct Upstream {
    pools: Arc<Pools>,
}

#[derive(Debug, Default)]
struct Pools {
    /// The client of the first connect timeout seen: read without a lock on the hot path.
    first: OnceLock<(Duration, HttpsClient)>,
    /// One client per further distinct connect timeout, each with its own pool.
    clients: RwLock<HashMap<Duration, HttpsClient>>,
}

impl Upstream {
    /// A new client with empty pools.
    pub fn new() -> Self {
        Upstream::default()
    }

    /// Runs `f` with the client (and pool) for `connect_timeout`, borrowed when it is the
    /// first one (the usual case: no lock, no clone).
    fn with_client<R>(&self, connect_timeout: Duration, f: impl FnOnce(&HttpsClient) -> R) -> R {
        let (first_timeout, first) = self
            .pools
            .first
            .get_or_init(|| (connect_timeout, build_client(connect_timeout)));
        if *first_timeout == connect_timeout {
            return f(first);
        }
        if let Ok(map) = self.pools.clients.read() {
            if let Some(c) = map.get(&connect_timeout) {
                return f(c);
            }
        }
        let client = build_client(connect_timeout);
        if let Ok(mut map) = self.pools.clients.write() {
            map.entry(connect_timeout).or_insert_with(|| client.clone());
        }
        f(&client)
    }
}

fn build_client(connect_timeout: Duration) -> HttpsClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    // ring is named explicitly: with several rustls providers compiled into one binary, the
    // process-level default is ambiguous.
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default TLS versions")
    .with_root_certificates(rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    })
    .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        // Without a timer the idle timeout is only checked when a connection is checked out:
        // idle connections to a provider no longer used would stay open for good.
        .pool_timer(hyper_util::rt::TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(connector)
}

/// The full upstream URL for a request path on a provider: the prepared one for the fixed
/// paths ([`UpstreamParts`](crate::catalog::UpstreamParts)), else joined and parsed here.
pub fn upstream_uri(provider: &Provider, path_and_query: &str) -> Result<Uri, UpstreamError> {
    if let Some(uri) = provider.upstream_parts.uri(path_and_query) {
        return Ok(uri.clone());
    }
    let url = format!("{}{}", provider.base_url, path_and_query);
    url.parse::<Uri>().map_err(|e| UpstreamError {
        kind: UpstreamErrorKind::Invalid,
        provider: provider.name.clone(),
        detail: format!("invalid base_url `{}`: {e}", provider.base_url),
    })
}

fn inject_auth(provider: &Provider, headers: &mut http::HeaderMap) {
    for (name, value) in provider.upstream_parts.headers() {
        headers.insert(name.clone(), value.clone());
    }
    let Some(key) = &provider.api_key else { return };
    let (name, value) = match provider.api {
        Api::OpenAi => (http::header::AUTHORIZATION, key.bearer_header()),
        Api::Anthropic => (
            http::HeaderName::from_static("x-api-key"),
            key.bare_header(),
        ),
        Api::Gemini => (
            http::HeaderName::from_static("x-goog-api-key"),
            key.bare_header(),
        ),
    };
    if let Some(v) = value {
        headers.insert(name, v.clone());
    }
}

impl tower::Service<Request<Body>> for Upstream {
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<Body>, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        // The request is sent here, synchronously: the future owns what it needs, so neither
        // this service nor its client is cloned per call.
        let target = match req.extensions().get::<Target>() {
            Some(t) => t.clone(),
            None => {
                return Box::pin(std::future::ready(Err(Box::new(MissingInput::new(
                    "upstream",
                    "Target",
                    "set by the fallback layer for each attempt, or inserted by your own layer",
                )) as BoxError)));
            }
        };
        let provider = target.endpoint().provider.clone();
        let t = provider.timeouts;
        let (mut parts, body) = req.into_parts();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        parts.uri = match upstream_uri(&provider, path) {
            Ok(uri) => uri,
            Err(e) => return Box::pin(std::future::ready(Err(Box::new(e) as BoxError))),
        };
        parts.headers.remove(http::header::HOST);
        inject_auth(&provider, &mut parts.headers);
        // Overhead (src/overhead.rs): the time spent waiting on the upstream.
        let wait = parts.extensions.get::<RequestContext>().cloned();
        let start = Instant::now();
        let sent = self.with_client(t.connect, |client| {
            client.request(Request::from_parts(parts, body))
        });
        Box::pin(async move {
            let sent = tokio::time::timeout(t.first_byte.min(t.total), sent).await;
            if let Some(w) = &wait {
                w.upstream_wait().add(start.elapsed());
            }
            let resp = match sent {
                Err(_) => {
                    return Err(Box::new(UpstreamError {
                        kind: UpstreamErrorKind::Timeout(
                            Phase::FirstByte,
                            t.first_byte.min(t.total),
                        ),
                        provider: provider.name.clone(),
                        detail: String::new(),
                    }) as BoxError);
                }
                Ok(Err(e)) => {
                    let kind = if e.is_connect() {
                        UpstreamErrorKind::Connect
                    } else {
                        UpstreamErrorKind::Broken
                    };
                    return Err(Box::new(UpstreamError {
                        kind,
                        provider: provider.name.clone(),
                        detail: source_chain(&e),
                    }) as BoxError);
                }
                Ok(Ok(resp)) => resp,
            };
            let (parts, incoming) = resp.into_parts();
            let timed = TimedBody::new(
                incoming,
                start + t.first_byte,
                t.idle,
                start + t.total,
                provider,
                t.first_byte,
                t.total,
            )
            .with_wait(crate::overhead::WaitClock::new(wait));
            Ok(Response::from_parts(parts, body::boxed_as_is(timed)))
        })
    }
}
