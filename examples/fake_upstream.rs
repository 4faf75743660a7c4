//! A fake OpenAI-compatible upstream with scripted behaviours (see `switchyard::test_util`), for
//! trying the gateway without provider keys and for the Python SDK test.
//!
//! ```text
//! cargo run --example fake_upstream --features test-util -- 127.0.0.1:9000
//! ```

#[tokio::main]
async fn main() {
    let bind = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let (addr, _fake) = switchyard::test_util::start_fake_on(&bind).await;
    println!("fake upstream listening on http://{addr}");
    let _ = tokio::signal::ctrl_c().await;
}
