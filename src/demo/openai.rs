//! The OpenAI wire format of a simulated answer: `chat.completion` (or legacy
//! `text_completion`) bodies, `chat.completion.chunk` SSE events ending in `data: [DONE]`,
//! and OpenAI's error envelope.

use super::event::Event;
use super::reply::Reply;
use crate::body::{DONE_EVENT, sse_event};
use bytes::Bytes;
use serde_json::{Value, json};

/// The request's token limit.
pub(super) fn max_tokens(body: &Value) -> Option<u64> {
    body.get("max_completion_tokens")
        .or_else(|| body.get("max_tokens"))
        .and_then(Value::as_u64)
}

fn finish(r: &Reply) -> &'static str {
    if r.truncated { "length" } else { "stop" }
}

fn usage(r: &Reply) -> Value {
    let (p, c) = (r.prompt_tokens, r.completion_tokens());
    json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c})
}

/// The whole answer; `legacy` for `/completions`.
pub(super) fn body(r: &Reply, legacy: bool) -> Value {
    let (object, choice) = if legacy {
        let choice = json!({"index": 0, "text": r.text(), "finish_reason": finish(r)});
        ("text_completion", choice)
    } else {
        let message = json!({"role": "assistant", "content": r.text()});
        let choice = json!({"index": 0, "message": message, "finish_reason": finish(r)});
        ("chat.completion", choice)
    };
    json!({"id": r.id, "object": object, "created": r.created, "model": r.model,
           "choices": [choice], "usage": usage(r)})
}

/// The answer as a stream: a role chunk, one chunk per token, the finish chunk, the usage
/// chunk (`choices: []`) and `[DONE]`.
pub(super) fn events(r: &Reply, legacy: bool) -> Vec<Event> {
    let object = if legacy {
        "text_completion"
    } else {
        "chat.completion.chunk"
    };
    let chunk = |choices: Value| {
        sse_event(&json!({"id": r.id, "object": object, "created": r.created,
                          "model": r.model, "choices": choices}))
    };
    let delta = |text: &str, finish: Option<&str>| {
        if legacy {
            json!([{"index": 0, "text": text, "finish_reason": finish}])
        } else {
            let delta = if finish.is_some() {
                json!({})
            } else {
                json!({"content": text})
            };
            json!([{"index": 0, "delta": delta, "finish_reason": finish}])
        }
    };
    let mut out = Vec::with_capacity(r.tokens.len() + 4);
    if !legacy {
        let role = json!([{"index": 0, "delta": {"role": "assistant", "content": ""},
                           "finish_reason": null}]);
        out.push(Event::head(chunk(role)));
    }
    out.extend(r.tokens.iter().map(|t| Event::token(chunk(delta(t, None)))));
    out.push(Event::tail(chunk(delta("", Some(finish(r))))));
    let mut last = json!({"id": r.id, "object": object, "created": r.created,
                          "model": r.model, "choices": [], "usage": usage(r)});
    if legacy {
        last["object"] = json!("text_completion");
    }
    out.push(Event::tail(sse_event(&last)));
    out.push(Event::tail(Bytes::from_static(DONE_EVENT)));
    out
}

/// OpenAI's error envelope.
pub(super) fn error(status: u16, message: &str) -> Value {
    let kind = if status == 401 {
        "invalid_request_error"
    } else {
        "server_error"
    };
    json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
}
