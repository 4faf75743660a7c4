//! Whatever an OpenAI-compatible upstream sends — its usual answers, or those answers with bytes
//! inserted, deleted or cut — the client gets well-formed output: a JSON completion with
//! `usage` or a JSON error envelope; a stream of `data:` events each holding JSON, ending in
//! `[DONE]`, or an error status. The splicer reads upstream bytes with its own JSON cursor
//! (`src/json_scan.rs`) and passes most of them on unchanged, so this checks end to end
//! that nothing malformed slips through, on the same layer stack the server mounts.
#![allow(clippy::unwrap_used, missing_docs)]

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use proptest::prelude::*;
use serde_json::Value;
use std::convert::Infallible;
use std::sync::Arc;
use switchyard::BoxError;
use switchyard::body::{self, Body};
use switchyard::context::ApiKind;
use tower::ServiceExt;

const CONFIG: &str = r#"
[catalog]
include_default = false
[[providers]]
slug = "up"
name = "Upstream"
api = "openai"
base_url = "http://127.0.0.1:9/v1"
[[models]]
slug = "acme/m"
[[models.endpoints]]
provider = "up"
model = "up-m"
pricing = { prompt = 0.1, completion = 0.2 }
"#;

const RESPONSE: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"up-m","choices":[{"index":0,"message":{"role":"assistant","content":"He said \"hi\" \u00e9","reasoning":"r"},"finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#;

fn chunk(delta: &str, finish: &str) -> String {
    format!(
        r#"{{"id":"c","object":"chat.completion.chunk","created":1700000000,"model":"up-m","choices":[{{"index":0,"delta":{delta},"finish_reason":{finish}}}]}}"#
    )
}

/// The upstream's usual stream: role, two contents, finish, usage, `[DONE]`.
fn stream_events() -> Vec<String> {
    vec![
        chunk(r#"{"role":"assistant","content":""}"#, "null"),
        chunk(r#"{"content":"Hel"}"#, "null"),
        chunk(r#"{"content":"lo \"x\" \n"}"#, "null"),
        chunk("{}", r#""stop""#),
        r#"{"id":"c","object":"chat.completion.chunk","created":1700000000,"model":"up-m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#.to_owned(),
        "[DONE]".to_owned(),
    ]
}

/// `text` with `edit` put in at `at` (or in place of the character there).
fn mutate(mut text: String, at: prop::sample::Index, edit: &str, replace: bool) -> String {
    let mut i = at.index(text.len() + 1);
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    if replace && i < text.len() {
        let next = text[i..].chars().next().map_or(0, char::len_utf8);
        text.replace_range(i..i + next, edit);
    } else {
        text.insert_str(i, edit);
    }
    text
}

fn edit() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just(""),
        Just(" "),
        Just(","),
        Just("\""),
        Just("\\"),
        Just("}"),
        Just("]"),
        Just("{"),
        Just("0"),
        Just("\u{1}"),
        Just("\n"),
        Just("\"error\":{\"message\":\"x\"},"),
        Just("\"usage\":null,"),
    ]
}

/// One request through the gateway's completion stack (`Gateway::completion_service_over`)
/// over an in-process upstream answering `upstream`; the client's status and body.
async fn through_the_gateway(stream: bool, upstream: Vec<Bytes>) -> (u16, String) {
    let gw = switchyard::test_util::gateway_from(CONFIG, &|_| None);
    let upstream = Arc::new(upstream);
    let service = tower::service_fn(move |_req: Request<Body>| {
        let frames = upstream.clone();
        async move {
            let frames = futures_util::stream::iter(
                (0..frames.len())
                    .map(move |i| Ok::<_, Infallible>(http_body::Frame::data(frames[i].clone()))),
            );
            let mut resp = Response::new(body::boxed(http_body_util::StreamBody::new(frames)));
            let ct = if stream {
                "text/event-stream"
            } else {
                "application/json"
            };
            resp.headers_mut()
                .insert(http::header::CONTENT_TYPE, ct.parse().unwrap());
            Ok::<_, BoxError>(resp)
        }
    });
    let req = Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(format!(
            r#"{{"model":"acme/m","stream":{stream},"messages":[{{"role":"user","content":"hi"}}]}}"#
        )))
        .unwrap();
    let resp = gw
        .completion_service_over(ApiKind::Chat, service)
        .oneshot(req)
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.map(|c| c.to_bytes());
    // A body that breaks off mid-stream is an error the client sees as such; its bytes up to
    // there are not checked.
    let text = bytes.map_or_else(
        |_| String::new(),
        |b| String::from_utf8_lossy(&b).into_owned(),
    );
    (status, text)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A JSON answer: a completion with `usage` (cost included), or an error envelope.
fn assert_json_answer(status: u16, body: &str) {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{status}: {e}: {body}"));
    if status == 200 {
        assert!(v["choices"].is_array(), "{body}");
        assert!(v["usage"]["cost"].is_number(), "{body}");
        assert!(v["id"].as_str().unwrap().starts_with("gen-"), "{body}");
    } else {
        assert!(v["error"]["message"].is_string(), "{status}: {body}");
    }
}

/// A stream answer: every event is a `data:` line holding JSON (or a comment), `[DONE]` last.
fn assert_stream_answer(status: u16, body: &str) {
    if status != 200 {
        return assert_json_answer(status, body);
    }
    if body.is_empty() {
        return; // broke off: the client saw an error
    }
    let events: Vec<&str> = body.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.last(), Some(&"data: [DONE]"), "{body}");
    for ev in &events[..events.len() - 1] {
        if ev.starts_with(':') {
            continue;
        }
        let data = ev
            .strip_prefix("data: ")
            .unwrap_or_else(|| panic!("{ev:?} in {body}"));
        assert!(!data.contains('\n'), "one line per event: {ev:?}");
        let v: Value = serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}"));
        assert!(v.is_object(), "{data}");
    }
}

#[test]
fn the_usual_answers_pass_whole() {
    let rt = runtime();
    let (status, body) = rt.block_on(through_the_gateway(false, vec![Bytes::from(RESPONSE)]));
    assert_eq!(status, 200, "{body}");
    assert_json_answer(status, &body);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "He said \"hi\" é");
    assert_eq!(v["usage"]["completion_tokens"], 4);
    let sse: Vec<Bytes> = stream_events()
        .into_iter()
        .map(|e| Bytes::from(format!("data: {e}\n\n")))
        .collect();
    let (status, body) = rt.block_on(through_the_gateway(true, sse));
    assert_eq!(status, 200, "{body}");
    assert_stream_answer(status, &body);
    assert!(body.contains(r#""content":"lo \"x\" \n""#), "{body}");
    assert!(body.contains(r#""cost":"#), "{body}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn mangled_json_answers_stay_well_formed(
        pretty in any::<bool>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), edit(), any::<bool>()), 0..3),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut text = if pretty {
            serde_json::to_string_pretty(&serde_json::from_str::<Value>(RESPONSE).unwrap()).unwrap()
        } else {
            RESPONSE.to_owned()
        };
        for (at, e, replace) in edits {
            text = mutate(text, at, e, replace);
        }
        if let Some(at) = cut {
            let mut i = at.index(text.len() + 1);
            while !text.is_char_boundary(i) { i -= 1; }
            text.truncate(i);
        }
        let (status, body) = runtime().block_on(through_the_gateway(false, vec![Bytes::from(text)]));
        assert_json_answer(status, &body);
    }

    #[test]
    fn mangled_streams_stay_well_formed(
        which in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), edit(), any::<bool>()), 1..3),
        split in any::<prop::sample::Index>(),
    ) {
        let mut events = stream_events();
        let i = which.index(events.len());
        for (at, e, replace) in edits {
            events[i] = mutate(std::mem::take(&mut events[i]), at, e, replace);
        }
        let whole: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
        // Cut the bytes in two anywhere: events may straddle frames.
        let mut at = split.index(whole.len() + 1);
        while !whole.is_char_boundary(at) { at -= 1; }
        let frames = vec![Bytes::from(whole[..at].to_owned()), Bytes::from(whole[at..].to_owned())];
        let (status, body) = runtime().block_on(through_the_gateway(true, frames));
        assert_stream_answer(status, &body);
    }
}
