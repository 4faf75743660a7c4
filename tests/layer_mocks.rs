//! Each layer over a `tower-test` mock: the test plays the inner service, so it sees exactly
//! what a layer hands on (body, extensions, path) and answers whatever it likes, failures
//! included. A layer missing an input must refuse without calling the mock at all.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use switchyard::alias::{AliasLayer, AliasTable};
use switchyard::balance::BalanceLayer;
use switchyard::catalog::{Api, Catalog, EndpointSpec, Pricing, ProviderSpec};
use switchyard::context::{ApiKind, Candidates, ChatRequest, Target};
use switchyard::fallback::FallbackLayer;
use switchyard::keys::{CreditLayer, KeyStore};
use switchyard::ledger::GenerationRecord;
use switchyard::meter::{MeterLayer, Prices};
use switchyard::parse::ParseLayer;
use switchyard::route::RouteLayer;
use switchyard::translate::TranslateLayer;
use switchyard::{Body, BoxError};
use tower::{Layer, Service, ServiceExt};
use tower_test::mock;

type Handle = mock::Handle<Request<Body>, Response<Body>>;

fn chat(model: &str) -> Request<Body> {
    Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .body(switchyard::body::full(
            json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}).to_string(),
        ))
        .expect("request")
}

async fn bytes_of(body: Body) -> Bytes {
    body.collect().await.expect("body").to_bytes()
}

async fn json_of(body: Body) -> Value {
    serde_json::from_slice(&bytes_of(body).await).expect("json body")
}

fn json_response(status: u16, v: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(switchyard::body::full(v.to_string()))
        .expect("response")
}

fn completion(model: &str) -> Value {
    json!({
        "id": "chatcmpl-mock", "object": "chat.completion", "created": 1, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500},
    })
}

/// The status a caller sees: the response's, or the one the error envelope would carry.
fn status_of(result: &Result<Response<Body>, BoxError>) -> StatusCode {
    match result {
        Ok(resp) => resp.status(),
        Err(e) => switchyard::error::error_response(e).status(),
    }
}

/// Asserts the layer handed nothing on: once the service is gone, the mock saw no request.
async fn untouched(mut handle: Handle) {
    assert!(
        handle.next_request().await.is_none(),
        "the inner service was called"
    );
}

fn two_provider_catalog() -> Arc<Catalog> {
    let catalog = Catalog::builder()
        .provider(ProviderSpec::openai("first", "http://first.invalid/v1"))
        .provider(ProviderSpec::openai("second", "http://second.invalid/v1"))
        .model(
            "acme/chat",
            [
                EndpointSpec::new("first", "chat-first").price(1.0, 2.0),
                EndpointSpec::new("second", "chat-second").price(1.0, 2.0),
            ],
        )
        .build()
        .expect("catalogue");
    Arc::new(catalog)
}

#[tokio::test]
async fn parse_hands_on_the_typed_request_and_refuses_malformed_json_itself() {
    let (svc, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let svc = ParseLayer::new(ApiKind::Chat).layer(svc);
    let call = tokio::spawn(svc.clone().oneshot(chat("acme/chat")));
    let (req, send) = handle.next_request().await.expect("a request");
    let seen = req
        .extensions()
        .get::<Arc<ChatRequest>>()
        .expect("ChatRequest");
    assert_eq!(seen.model.as_deref(), Some("acme/chat"));
    assert_eq!(json_of(req.into_body()).await["model"], "acme/chat");
    send.send_response(json_response(200, &completion("acme/chat")));
    assert_eq!(call.await.expect("task").expect("served").status(), 200);

    let bad = Request::post("/v1/chat/completions")
        .body(switchyard::body::full("{\"model\": "))
        .expect("request");
    let resp = svc.oneshot(bad).await.expect("an envelope, not an error");
    assert_eq!(resp.status(), 400);
    let v = json_of(resp.into_body()).await;
    assert!(
        v["error"]["message"]
            .to_string()
            .to_lowercase()
            .contains("json"),
        "{v}"
    );
    untouched(handle).await;
}

#[tokio::test]
async fn alias_alone_resolves_the_model_in_the_body_the_inner_service_reads() {
    let (svc, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let table = AliasTable::new([("fast".to_owned(), "acme/chat".to_owned())].into());
    let svc = AliasLayer::table_only(table).layer(svc);
    let call = tokio::spawn(svc.oneshot(chat("fast")));
    let (req, send) = handle.next_request().await.expect("a request");
    let body = json_of(req.into_body()).await;
    assert_eq!(body["model"], "acme/chat");
    assert_eq!(body["messages"][0]["content"], "hi");
    send.send_response(json_response(200, &completion("acme/chat")));
    assert_eq!(call.await.expect("task").expect("served").status(), 200);
}

#[tokio::test]
async fn route_alone_writes_candidates_and_refuses_an_unknown_model_before_the_inner_service() {
    let (svc, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let svc = RouteLayer::new(two_provider_catalog()).layer(svc);
    let call = tokio::spawn(svc.clone().oneshot(chat("acme/chat")));
    let (req, send) = handle.next_request().await.expect("a request");
    let candidates = req.extensions().get::<Candidates>().expect("Candidates");
    let mut providers: Vec<&str> = candidates
        .targets
        .iter()
        .map(|t| &*t.endpoint().provider.slug)
        .collect();
    providers.sort_unstable();
    assert_eq!(providers, ["first", "second"]);
    send.send_response(json_response(200, &completion("acme/chat")));
    assert_eq!(call.await.expect("task").expect("served").status(), 200);

    let refused = svc.oneshot(chat("acme/none")).await;
    assert!(status_of(&refused).is_client_error(), "{refused:?}");
    let message = refused.expect_err("refused").to_string();
    assert!(message.contains("acme/none"), "{message}");
    untouched(handle).await;
}

#[tokio::test]
async fn balance_without_a_plan_or_candidates_names_what_is_missing() {
    let (svc, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let result = BalanceLayer::new()
        .layer(svc)
        .oneshot(chat("acme/chat"))
        .await;
    assert_eq!(status_of(&result), 500);
    let message = result.expect_err("refused").to_string();
    assert!(message.contains("no Plan"), "{message}");
    untouched(handle).await;
}

#[tokio::test]
async fn fallback_alone_moves_to_the_next_candidate_after_a_503_with_its_own_body() {
    let catalog = two_provider_catalog();
    let model = catalog.model("acme/chat").expect("model").clone();
    let fixed = Candidates::new(Target::all_of(&model).collect());
    let (svc, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let svc = FallbackLayer::new().candidates(fixed).layer(svc);
    let call = tokio::spawn(svc.oneshot(chat("acme/chat")));

    let (req, send) = handle.next_request().await.expect("first attempt");
    assert_eq!(req.uri().path(), "/chat/completions");
    let target = req.extensions().get::<Target>().expect("Target").clone();
    assert_eq!(&*target.endpoint().provider.slug, "first");
    assert_eq!(json_of(req.into_body()).await["model"], "chat-first");
    send.send_response(json_response(
        503,
        &json!({"error": {"message": "overloaded", "type": "server_error"}}),
    ));

    let (req, send) = handle.next_request().await.expect("second attempt");
    let target = req.extensions().get::<Target>().expect("Target").clone();
    assert_eq!(&*target.endpoint().provider.slug, "second");
    assert_eq!(json_of(req.into_body()).await["model"], "chat-second");
    send.send_response(json_response(200, &completion("chat-second")));

    let resp = call.await.expect("task").expect("served");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        json_of(resp.into_body()).await["choices"][0]["message"]["content"],
        "ok"
    );
}

#[tokio::test]
async fn fallback_alone_passes_a_client_error_on_without_trying_another_candidate() {
    let catalog = two_provider_catalog();
    let model = catalog.model("acme/chat").expect("model").clone();
    let fixed = Candidates::new(Target::all_of(&model).collect());
    let (svc, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let svc = FallbackLayer::new().candidates(fixed).layer(svc);
    let call = tokio::spawn(svc.oneshot(chat("acme/chat")));
    let (_, send) = handle.next_request().await.expect("first attempt");
    send.send_response(json_response(
        400,
        &json!({"error": {"message": "messages must not be empty", "type": "invalid_request_error"}}),
    ));
    let result = call.await.expect("task");
    assert_eq!(status_of(&result), 400);
    untouched(handle).await;
}

#[tokio::test]
async fn meter_alone_adds_the_cost_and_reports_the_record() {
    let records: Arc<Mutex<Vec<GenerationRecord>>> = Arc::default();
    let sink = Arc::clone(&records);
    let (svc, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let svc = MeterLayer::new()
        .prices(Prices::fixed(Pricing::per_million(1.0, 2.0)))
        .on_record(move |r| sink.lock().expect("lock").push(r.clone()))
        .layer(svc);
    let call = tokio::spawn(svc.clone().oneshot(chat("own/model")));
    let (_, send) = handle.next_request().await.expect("a request");
    send.send_response(json_response(200, &completion("own/model")));
    let resp = call.await.expect("task").expect("served");
    let v = json_of(resp.into_body()).await;
    // 1000 prompt tokens at $1 and 500 completion tokens at $2 per million.
    assert_eq!(v["usage"]["cost"], 0.002, "{v}");
    let records = records.lock().expect("lock").clone();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].tokens_prompt, 1000);
    assert_eq!(records[0].total_cost, 2_000_000_000);

    // A 200 it cannot price is refused, not passed on for free.
    let call = tokio::spawn(svc.oneshot(chat("own/model")));
    let (_, send) = handle.next_request().await.expect("a request");
    send.send_response(
        Response::builder()
            .status(200)
            .body(switchyard::body::full("<html>not a completion</html>"))
            .expect("response"),
    );
    assert_eq!(status_of(&call.await.expect("task")), 502);
}

#[tokio::test]
async fn credits_refuse_a_keyless_request_without_calling_the_inner_service() {
    let (svc, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let result = CreditLayer::new(KeyStore::in_memory())
        .layer(svc)
        .oneshot(chat("acme/chat"))
        .await;
    assert_eq!(status_of(&result), 401);
    untouched(handle).await;
}

#[tokio::test]
async fn translate_speaks_anthropic_to_an_anthropic_endpoint_and_answers_in_openai_shape() {
    let catalog = Catalog::builder()
        .provider(ProviderSpec::new(
            "claude",
            Api::Anthropic,
            "http://claude.invalid/v1",
        ))
        .model(
            "anthropic/claude",
            [EndpointSpec::new("claude", "claude-up").price(3.0, 15.0)],
        )
        .build()
        .expect("catalogue");
    let model = catalog.model("anthropic/claude").expect("model").clone();
    let target = Target::new(model, 0).expect("endpoint 0");
    let body =
        json!({"model": "anthropic/claude", "messages": [{"role": "user", "content": "hi"}]});
    let request = ChatRequest::from_json(ApiKind::Chat, Bytes::from(body.to_string()))
        .expect("a chat request");
    let mut req = chat("anthropic/claude");
    req.extensions_mut().insert(Arc::new(request));
    req.extensions_mut().insert(target);

    let (svc, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let mut svc = TranslateLayer::new().layer(svc);
    let call = tokio::spawn(async move {
        svc.ready().await?;
        svc.call(req).await
    });
    let (up, send) = handle.next_request().await.expect("the upstream request");
    assert!(up.uri().path().ends_with("/messages"), "{}", up.uri());
    let sent = json_of(up.into_body()).await;
    assert_eq!(sent["model"], "claude-up");
    assert!(
        sent["max_tokens"].is_u64(),
        "Anthropic needs max_tokens: {sent}"
    );
    send.send_response(json_response(
        200,
        &json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-up",
            "content": [{"type": "text", "text": "hello"}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 3, "output_tokens": 1},
        }),
    ));
    let resp = call.await.expect("task").expect("served");
    let v = json_of(resp.into_body()).await;
    assert_eq!(v["object"], "chat.completion", "{v}");
    assert_eq!(v["choices"][0]["message"]["content"], "hello");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
}
