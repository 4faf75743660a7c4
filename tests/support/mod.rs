//! Test support: a small HTTP client, and the gateway started the one way `switchyard::test_util`
//! starts it (configs over its fake upstream come from there too).
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "cli")]
mod serve;
#[cfg(feature = "cli")]
#[allow(unused_imports)] // not every test starts the binary
pub use serve::spawn_serve;

use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use switchyard::test_util;
#[allow(unused_imports)]
pub use switchyard::test_util::{Fake, Models, config_toml, start_fake};

/// Starts a gateway for a config text; returns its base URL (`http://addr/api/v1`).
pub async fn start_gateway(config: &str) -> String {
    start_gateway_with_env(config, &[]).await
}

/// As [`start_gateway`], with environment variables given as pairs instead of the process's.
pub async fn start_gateway_with_env(config: &str, vars: &[(&str, &str)]) -> String {
    let addr = test_util::start_gateway(test_util::gateway_with_vars(config, vars)).await;
    format!("http://{addr}/api/v1")
}

/// A minimal HTTP client for tests (hyper-util legacy client over plain HTTP).
pub async fn post_json(
    url: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, String) {
    use http_body_util::{BodyExt, Full};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let mut req = axum::http::Request::post(url).header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client
        .request(req.body(Full::new(Bytes::from(body.to_owned()))).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

pub async fn get(url: &str) -> (StatusCode, String) {
    use http_body_util::{BodyExt, Empty};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<Bytes>>();
    let resp = client.get(url.parse().unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// The `data:` payloads of an SSE body, and whether comments appeared.
pub fn sse_data(body: &str) -> (Vec<String>, bool) {
    let mut out = Vec::new();
    let mut comments = false;
    for block in body.split("\n\n") {
        for line in block.lines() {
            if let Some(d) = line.strip_prefix("data: ") {
                out.push(d.to_owned());
            } else if line.starts_with(':') {
                comments = true;
            }
        }
    }
    (out, comments)
}

/// GET with an Authorization header.
pub async fn get_with(url: &str, auth: &str) -> (StatusCode, String) {
    request(url, "GET", "", auth).await
}

/// Any method with a JSON body and an Authorization header.
pub async fn request(url: &str, method: &str, body: &str, auth: &str) -> (StatusCode, String) {
    let (status, _, text) = send(url, method, body, &[("authorization", auth)]).await;
    (status, text)
}

/// Any method with a JSON body and extra headers: the status, the headers and the body text.
pub async fn send(
    url: &str,
    method: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, String) {
    use http_body_util::{BodyExt, Full};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let mut req = axum::http::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client
        .request(req.body(Full::new(Bytes::from(body.to_owned()))).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// Models for [`priced_config`], each a list of (scenario, $/request, $/M tokens) endpoints.
pub type PricedModels<'a> = &'a [(&'a str, &'a [(&'a str, f64, f64)])];

/// A config with one provider per fake scenario (`p-<scenario>`, the given `timeouts` inline
/// table) and these models, priced per request and per token, then `extra`.
pub fn priced_config(
    addr: std::net::SocketAddr,
    models: PricedModels<'_>,
    timeouts: &str,
    extra: &str,
) -> String {
    let mut out = String::from("[server]\nkeepalive_ms = 300\n\n");
    let mut scenarios: Vec<&str> = models
        .iter()
        .flat_map(|(_, e)| e.iter().map(|x| x.0))
        .collect();
    scenarios.sort_unstable();
    scenarios.dedup();
    for s in scenarios {
        out.push_str(&format!(
            "[[providers]]\nslug = \"p-{s}\"\nbase_url = \"http://{addr}/{s}/v1\"\ntimeouts = {timeouts}\n\n"
        ));
    }
    for (slug, eps) in models {
        out.push_str(&format!(
            "[[models]]\nslug = \"{slug}\"\ncontext_length = 100000\n"
        ));
        for (s, request, tokens) in eps.iter() {
            out.push_str(&format!(
                "[[models.endpoints]]\nprovider = \"p-{s}\"\nmodel = \"up-{s}\"\npricing = {{ request = {request}, prompt = {tokens}, completion = {tokens} }}\n"
            ));
        }
        out.push('\n');
    }
    out.push_str(extra);
    out
}
