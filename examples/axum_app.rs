//! An existing axum app keeps its own routes, gets switchyard's endpoints merged in, and wraps
//! one of its own handlers (an in-house model) with the alias and meter layers alone.
//!
//! ```text
//! cargo run --example axum_app --features test-util
//! curl localhost:8080/my/chat -d '{"model":"house","messages":[{"role":"user","content":"hi"}]}'
//! curl localhost:8080/v1/chat/completions -d '{"model":"acme/chat","messages":[{"role":"user","content":"hi"}]}'
//! ```

use axum::error_handling::HandleErrorLayer;
use serde_json::{Value, json};
use switchyard::BoxError;
use switchyard::alias::{AliasLayer, AliasTable};
use switchyard::catalog::{Catalog, EndpointSpec, Pricing, ProviderSpec};
use switchyard::meter::{MeterLayer, Prices};
use tower::ServiceBuilder;

/// The app's own model: answers in OpenAI's shape, with usage.
async fn in_house(body: String) -> axum::Json<Value> {
    let v: Value = serde_json::from_str(&body).unwrap_or_default();
    axum::Json(json!({
        "id": "chatcmpl-own", "object": "chat.completion", "model": v["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "mine"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
    }))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // A fake upstream stands in for a real provider, so this runs with no key.
    let (addr, _fake) = switchyard::test_util::start_fake().await;
    let catalog = Catalog::builder()
        .provider(ProviderSpec::openai("up", &format!("http://{addr}/ok/v1")))
        .model(
            "acme/chat",
            [EndpointSpec::new("up", "chat-up").price(0.15, 0.60)],
        )
        .build()?;
    let gateway = switchyard::server::Gateway::new(Default::default(), catalog);

    let table = AliasTable::new([("house".to_owned(), "own/model-v2".to_owned())].into());
    let own_chat = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(|e: BoxError| async move {
            switchyard::error::error_response(&e)
        }))
        .layer(AliasLayer::table_only(table))
        .layer(
            MeterLayer::new()
                .prices(Prices::fixed(Pricing::per_million(1.0, 2.0)))
                .on_record(|r| println!("{} cost {} picodollars", r.model, r.total_cost)),
        )
        .map_response(|r: axum::response::Response| r.map(switchyard::body::boxed))
        .service(axum::routing::post(in_house));
    let app = axum::Router::new()
        .route("/status", axum::routing::get(|| async { "app ok" }))
        .route_service("/my/chat", own_chat)
        .merge(gateway.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
