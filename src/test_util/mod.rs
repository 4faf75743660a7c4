//! Test utilities (feature `test-util`): a fake OpenAI-compatible upstream that behaves like the
//! real API, including its failures, chosen per provider by the first path segment of the
//! provider's `base_url` (`http://127.0.0.1:PORT/<scenario>/v1`), plus helpers that build a
//! gateway config over it and start the gateway.
//!
//! # Scenarios
//!
//! Both modes (the request's `stream` flag):
//!
//! | scenario | behaviour |
//! |---|---|
//! | `ok` (or no scenario segment) | a normal completion / stream |
//! | `status-<code>[-ra<secs>][-ctx]` | an error status (429, 500, 502, 503, 529 …), optional `Retry-After`, `-ctx` = OpenAI's `context_length_exceeded` code |
//! | `hang` | never answers (hang before the headers) |
//! | `hangheaders` | 200 headers, then silence (hang before the first chunk) |
//! | `resetconn` | reads the request, then resets the TCP connection (RST), no response |
//! | `garbage` | invalid JSON in a 200 (`application/json` even for streams) |
//! | `error200` | an error object inside a 200 (`application/json`) |
//! | `huge-<MiB>` | a valid answer whose content is MiB mebibytes (streams: in one event) |
//! | `slow-<ms>`, `slowfirst-<ms>` | waits before the headers (`slowfirst`: streams send headers first) |
//! | `drip-<ms>` | the normal answer in 16-byte pieces, one every `ms` |
//! | `rechunk-<seed>` | the normal answer cut at pseudo-random byte positions |
//! | `finishnodone` | streams: finish reason and usage, then the end without `[DONE]` |
//! | `echokey` | 401 whose message echoes the `Authorization` header it received (as OpenAI does) |
//! | `toolcall` | a call of the request's first tool with `{"city":"Paris"}` (streams: the arguments in two pieces); a normal answer once the last message is a tool result |
//!
//! Stream faults, injected after the role chunk (`…before`, before any content) or after the
//! first content chunk (`…after`):
//!
//! | fault | stream | non-stream |
//! |---|---|---|
//! | `cut` | the body breaks off (chunked encoding aborted) | half the JSON, then the same |
//! | `reset` | the TCP connection is reset (RST) | half the JSON, then RST |
//! | `stall` | silence | half the JSON, then silence |
//! | `nodone` (`nodone` = `nodoneafter`) | clean end without finish reason or `[DONE]` | a cleanly ended but truncated JSON |
//! | `malformed` | a `data:` event that is not JSON | invalid JSON |
//! | `errchunk` | a `data: {"error":…}` event, then `[DONE]` | an error object in a 200 |
//! | `errkeychunk` | as `errchunk`, its message echoing the `Authorization` header | as `echokey` but in a 200 |
//!
//! Connection refused has no scenario: point a provider at [`refused_base_url`].
//!
//! `POST …/v1/embeddings` gets, in `ok` and the other normal scenarios, an embeddings list: one
//! three-number vector per input and 8 prompt tokens each (`status-…` scenarios fail as above).
//!
//! ```no_run
//! # async fn demo() {
//! let (addr, fake) = switchyard::test_util::start_fake().await;
//! // point a provider's base_url at format!("http://{addr}/ok/v1")
//! # let _ = (addr, fake);
//! # }
//! ```
//!
//! The pieces: `fake.rs` serves the fake and records what it received, `ask.rs` reads what a
//! request asks for, `scenarios.rs` starts the fake's router and dispatches each scenario to `answers.rs`, which writes the answers and the
//! faults, and `harness.rs` builds gateway configs over the fake and starts a gateway — the one
//! way the crate's own tests start one.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod answers;
mod ask;
mod fake;
mod harness;
mod scenarios;

pub use fake::{Fake, OK_TEXT, Seen, refused_base_url};
pub use harness::{
    FaultTimeouts, Models, config_toml, fault_config, gateway_from, gateway_with_vars,
    start_gateway,
};
pub use scenarios::{FAULTS_AFTER_CONTENT, FAULTS_BEFORE_CONTENT, start_fake, start_fake_on};
