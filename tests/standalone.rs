//! Each layer used alone, as a user would: no switchyard layer is stacked beyond the ones each
//! test names, and upstreams are the fake OpenAI-compatible server reached through either the
//! crate's client or a plain hyper-util client of the test's own ("the user's client").

use axum::error_handling::HandleErrorLayer;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchyard::alias::{AliasLayer, AliasTable};
use switchyard::balance::BalanceLayer;
use switchyard::catalog::{Catalog, EndpointSpec, Pricing, ProviderSpec};
use switchyard::context::Target;
use switchyard::fallback::{FallbackLayer, over_base_urls, over_services};
use switchyard::ledger::GenerationRecord;
use switchyard::meter::{MeterLayer, Prices};
use switchyard::route::RouteLayer;
use switchyard::test_util::start_fake;
use switchyard::{Body, BoxError};
use tower::{Layer, Service, ServiceBuilder, ServiceExt};

/// The user's own upstream client: a plain hyper-util client posting each request to
/// `{base}{path}`, or, when `base` is `None`, to the base URL of the attempt's [`Target`].
#[derive(Clone)]
struct PlainClient {
    base: Option<String>,
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Body,
    >,
}

impl PlainClient {
    fn to(base: Option<String>) -> Self {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        PlainClient { base, client }
    }
}

impl Service<Request<Body>> for PlainClient {
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = futures_util::future::BoxFuture<'static, Result<Response<Body>, BoxError>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let base = self.base.clone().or_else(|| {
            req.extensions()
                .get::<Target>()
                .map(|t| t.endpoint().provider.base_url.clone())
        });
        let client = self.client.clone();
        Box::pin(async move {
            let base = base.ok_or("the plain client has no base URL")?;
            let (mut parts, body) = req.into_parts();
            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            parts.uri = format!("{base}{path}").parse()?;
            let resp = client.request(Request::from_parts(parts, body)).await?;
            Ok(resp.map(switchyard::body::boxed))
        })
    }
}

fn chat_body(model: &str, stream: bool) -> Body {
    switchyard::body::full(
        json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
            .to_string(),
    )
}

fn post(model: &str, stream: bool) -> Request<Body> {
    Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .body(chat_body(model, stream))
        .expect("request")
}

async fn text(resp: Response<Body>) -> String {
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

/// The `data:` payloads of an SSE body.
fn events(sse: &str) -> Vec<String> {
    sse.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn a_fallback_alone_over_two_base_urls_fails_over_a_503() {
    let (addr, fake) = start_fake().await;
    let svc = over_base_urls(&[
        &format!("http://{addr}/status-503/v1"),
        &format!("http://{addr}/ok/v1"),
    ])
    .expect("fallback");
    let resp = svc
        .oneshot(post("gpt-4o-mini", false))
        .await
        .expect("served");
    assert_eq!(resp.status(), 200);
    let v: Value = serde_json::from_str(&text(resp).await).expect("json");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        switchyard::test_util::OK_TEXT
    );
    assert_eq!((fake.count("status-503"), fake.count("ok")), (1, 1));
    // Each upstream got the client's real body, at its own `/chat/completions`.
    for seen in fake.requests() {
        assert_eq!(seen.body["model"], "gpt-4o-mini");
        assert_eq!(seen.body["messages"][0]["content"], "hi");
        assert!(seen.path.ends_with("/v1/chat/completions"), "{}", seen.path);
    }
}

#[tokio::test]
async fn a_fallback_alone_over_own_services_hides_resets_timeouts_and_stream_cuts() {
    let (addr, fake) = start_fake().await;
    let own = |scenario: &str| -> tower::util::BoxCloneSyncService<Request<Body>, Response<Body>, BoxError> {
        tower::util::BoxCloneSyncService::new(
            ServiceBuilder::new()
                .timeout(Duration::from_millis(300))
                .service(PlainClient::to(Some(format!("http://{addr}/{scenario}/v1")))),
        )
    };
    // A reset, then a timeout, then a good upstream.
    let svc = over_services(vec![
        ("resets", own("resetconn")),
        ("hangs", own("hang")),
        ("works", own("ok")),
    ])
    .expect("fallback");
    let resp = svc.clone().oneshot(post("m", false)).await.expect("served");
    assert_eq!(resp.status(), 200);
    assert!(text(resp).await.contains(switchyard::test_util::OK_TEXT));
    // A stream cut before its first content is hidden; the client sees one whole stream.
    let svc =
        over_services(vec![("cuts", own("cutbefore")), ("works", own("ok"))]).expect("fallback");
    let resp = svc.oneshot(post("m", true)).await.expect("served");
    assert_eq!(resp.status(), 200);
    let body = text(resp).await;
    let data = events(&body);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{body}");
    assert_eq!(body.matches(r#""role":"assistant""#).count(), 1, "{body}");
    assert!(body.contains("Hello"), "{body}");
    assert_eq!(fake.count("cutbefore"), 1);
}

#[tokio::test]
async fn a_fallback_alone_without_candidates_names_what_is_missing() {
    let (addr, _fake) = start_fake().await;
    let svc = FallbackLayer::new().layer(PlainClient::to(Some(format!("http://{addr}/ok/v1"))));
    let err = svc.oneshot(post("m", false)).await.expect_err("refused");
    assert!(err.to_string().contains("Candidates"), "{err}");
}

#[tokio::test]
async fn b_meter_alone_prices_json_and_streams_and_reports_each_record() {
    let (addr, fake) = start_fake().await;
    let records: Arc<Mutex<Vec<GenerationRecord>>> = Arc::default();
    let seen = Arc::clone(&records);
    let meter = MeterLayer::new()
        .prices(Prices::per_model([(
            "gpt-4o-mini",
            Pricing::per_million(1.0, 2.0),
        )]))
        .on_record(move |r| seen.lock().expect("lock").push(r.clone()));
    // The meter passes the client's path on: `/v1/chat/completions` under the fake's `ok`.
    let svc = meter.layer(PlainClient::to(Some(format!("http://{addr}/ok"))));

    let resp = svc
        .clone()
        .oneshot(post("gpt-4o-mini", false))
        .await
        .expect("served");
    assert_eq!(resp.status(), 200);
    let v: Value = serde_json::from_str(&text(resp).await).expect("json");
    // The fake reports 12 prompt and 5 completion tokens: 12 × 1 + 5 × 2 per million.
    assert_eq!(v["usage"]["cost"], 0.000022, "{v}");

    let resp = svc
        .clone()
        .oneshot(post("gpt-4o-mini", true))
        .await
        .expect("served");
    let body = text(resp).await;
    let data = events(&body);
    let usage: Value = serde_json::from_str(&data[data.len() - 2]).expect("usage chunk");
    // The stream's usage: 12 prompt and 3 completion tokens.
    assert_eq!(usage["usage"]["cost"], 0.000018, "{body}");
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));

    let records = records.lock().expect("lock").clone();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].total_cost, 22_000_000);
    assert!(records[1].streamed);

    // Money fails closed: a model with no price is refused before any upstream is called.
    let calls = fake.total();
    let err = svc
        .oneshot(post("gpt-4o", false))
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("no price"), "{err}");
    assert_eq!(fake.total(), calls);
    // And a meter with no prices at all says what it lacks.
    let bare = MeterLayer::new().layer(PlainClient::to(Some(format!("http://{addr}/ok"))));
    let err = bare
        .oneshot(post("gpt-4o-mini", false))
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("MeterLayer::prices"), "{err}");
}

#[tokio::test]
async fn c_alias_alone_in_front_of_an_axum_handler() {
    let table = AliasTable::new([("fast".to_owned(), "acme/chat-small".to_owned())].into());
    let app = axum::Router::new()
        .route(
            "/v1/chat/completions",
            axum::routing::post(|body: String| async move {
                let v: Value = serde_json::from_str(&body).expect("the handler gets JSON");
                format!("model={}", v["model"].as_str().unwrap_or_default())
            }),
        )
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|e: BoxError| async move {
                    switchyard::error::error_response(&e).map(axum::body::Body::new)
                }))
                .layer(AliasLayer::table_only(table)),
        );
    let call = |model: &str| {
        let req = Request::post("/v1/chat/completions")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(
                json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
                    .to_string(),
            ))
            .expect("request");
        app.clone().oneshot(req)
    };
    let resp = call("fast").await.expect("infallible");
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(&body[..], b"model=acme/chat-small");
    let resp = call("other/model").await.expect("infallible");
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(&body[..], b"model=other/model");
    // A body that is not JSON is refused with the cause named, before the handler.
    let req = Request::post("/v1/chat/completions")
        .body(axum::body::Body::from("{oops"))
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("infallible");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    assert!(
        String::from_utf8_lossy(&body).contains("line 1"),
        "{body:?}"
    );
}

#[tokio::test]
async fn d_route_balance_fallback_from_a_catalogue_built_in_code_over_own_client() {
    let (addr, fake) = start_fake().await;
    let catalog = Arc::new(
        Catalog::builder()
            .provider(ProviderSpec::openai(
                "down",
                &format!("http://{addr}/status-503/v1"),
            ))
            .provider(ProviderSpec::openai("up", &format!("http://{addr}/ok/v1")))
            .model(
                "acme/chat",
                [
                    EndpointSpec::new("down", "chat-down").price(1.0, 1.0),
                    EndpointSpec::new("up", "chat-up").price(1.0, 1.0),
                ],
            )
            .build()
            .expect("catalogue"),
    );
    let svc = ServiceBuilder::new()
        .layer(RouteLayer::new(catalog))
        .layer(BalanceLayer::from_seed(1))
        .layer(FallbackLayer::new())
        .service(PlainClient::to(None));
    for _ in 0..4 {
        let resp = svc
            .clone()
            .oneshot(post("acme/chat", false))
            .await
            .expect("served");
        assert_eq!(resp.status(), 200);
    }
    // Each endpoint got its own upstream model id.
    for seen in fake.requests() {
        let want = if seen.scenario == "ok" {
            "chat-up"
        } else {
            "chat-down"
        };
        assert_eq!(seen.body["model"], want);
    }
    assert_eq!(fake.count("ok"), 4);
    // An unknown model is a 400 naming it, from the route layer alone.
    let err = svc
        .oneshot(post("acme/none", false))
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("acme/none"), "{err}");
}

/// An in-house model of the app's own: answers every chat in OpenAI's shape, with usage.
async fn in_house(body: String) -> axum::Json<Value> {
    let v: Value = serde_json::from_str(&body).unwrap_or_default();
    axum::Json(json!({
        "id": "chatcmpl-own", "object": "chat.completion", "model": v["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "mine"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
    }))
}

#[tokio::test]
async fn e_an_existing_axum_app_gets_the_gateway_and_one_handler_metered_and_aliased() {
    let (addr, _fake) = start_fake().await;
    let catalog = Catalog::builder()
        .provider(ProviderSpec::openai("up", &format!("http://{addr}/ok/v1")))
        .model(
            "acme/chat",
            [EndpointSpec::new("up", "chat-up").price(1.0, 1.0)],
        )
        .build()
        .expect("catalogue");
    let gateway = switchyard::server::Gateway::new(Default::default(), catalog);
    let records: Arc<Mutex<Vec<GenerationRecord>>> = Arc::default();
    let seen = Arc::clone(&records);
    let table = AliasTable::new([("house".to_owned(), "own/model-v2".to_owned())].into());
    let own_chat = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(|e: BoxError| async move {
            switchyard::error::error_response(&e)
        }))
        .layer(AliasLayer::table_only(table))
        .layer(
            MeterLayer::new()
                .prices(Prices::fixed(Pricing::per_million(1.0, 2.0)))
                .on_record(move |r| seen.lock().expect("lock").push(r.clone())),
        )
        .map_response(|r: axum::response::Response| r.map(switchyard::body::boxed))
        .service(axum::routing::post(in_house));
    let app = axum::Router::new()
        .route("/status", axum::routing::get(|| async { "app ok" }))
        .route_service("/my/chat", own_chat)
        .merge(gateway.router());

    let send = |path: &str, body: Option<Value>| {
        let req = match body {
            Some(b) => Request::post(path)
                .header("content-type", "application/json")
                .body(axum::body::Body::from(b.to_string())),
            None => Request::get(path).body(axum::body::Body::empty()),
        }
        .expect("request");
        let app = app.clone();
        async move {
            let resp = app.oneshot(req).await.expect("infallible");
            let status = resp.status();
            let bytes = resp.into_body().collect().await.expect("body").to_bytes();
            (status, String::from_utf8_lossy(&bytes).into_owned())
        }
    };
    // The app's own route.
    assert_eq!(
        send("/status", None).await,
        (StatusCode::OK, "app ok".into())
    );
    // Its own handler, aliased and metered: 10 × 1 + 20 × 2 per million.
    let msg = json!([{"role": "user", "content": "hi"}]);
    let (status, body) = send("/my/chat", Some(json!({"model": "house", "messages": msg}))).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["model"], "own/model-v2");
    assert_eq!(v["usage"]["cost"], 0.00005, "{v}");
    assert_eq!(records.lock().expect("lock")[0].total_cost, 50_000_000);
    // And switchyard's endpoints, merged in.
    let (status, body) = send("/api/v1/models", None).await;
    assert_eq!(status, 200);
    assert!(body.contains("acme/chat"), "{body}");
    let (status, body) = send(
        "/v1/chat/completions",
        Some(json!({"model": "acme/chat", "messages": msg})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(switchyard::test_util::OK_TEXT), "{body}");
}
