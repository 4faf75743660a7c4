//! The fake's answers: normal completions and streams, paced or re-chunked, and the faults.

use super::ask::{Ask, At, Fault};
use super::fake::{Fake, ResetHandle};
use axum::body::Body as AxBody;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use std::io;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;

pub(super) fn json_response(status: StatusCode, body: String) -> Response {
    (status, [("content-type", "application/json")], body).into_response()
}

/// A response whose body comes from a channel (an `Err` item breaks the body off).
pub(super) fn body_response(
    content_type: &str,
    rx: mpsc::Receiver<Result<Bytes, io::Error>>,
) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Response::builder()
        .header("content-type", content_type)
        .body(AxBody::from_stream(stream))
        .unwrap()
}

pub(super) fn completion_json(ask: &Ask) -> String {
    let text = ask.text();
    let choice = if ask.legacy {
        json!({"index": 0, "text": text, "finish_reason": "stop", "logprobs": null})
    } else {
        json!({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop", "logprobs": null})
    };
    json!({
        "id": "chatcmpl-fake", "object": if ask.legacy { "text_completion" } else { "chat.completion" }, "created": 1_700_000_000, "model": ask.model,
        "choices": [choice],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
    })
    .to_string()
}

/// An embeddings list: one three-dimensional vector per input, 8 prompt tokens each.
pub(super) fn embeddings_json(ask: &Ask, inputs: usize) -> String {
    let data: Vec<Value> = (0..inputs)
        .map(|i| json!({"object": "embedding", "index": i, "embedding": [0.25, -0.5, i as f64]}))
        .collect();
    let tokens = 8 * inputs;
    json!({"object": "list", "data": data, "model": ask.model,
           "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
    .to_string()
}

pub(super) fn chunk(model: &str, delta: &Value, finish: Option<&str>) -> String {
    let v = json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {v}\n\n")
}

/// The events of a normal stream: role, three words (the echo tag in the last one), finish,
/// usage, `[DONE]`.
pub(super) fn stream_events(ask: &Ask) -> Vec<String> {
    let m = &ask.model;
    let last = match &ask.echo {
        Some(e) => format!(" the fake [{e}]"),
        None => " the fake".to_owned(),
    };
    let usage = json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": m, "choices": [],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}});
    vec![
        chunk(m, &json!({"role": "assistant", "content": ""}), None),
        chunk(m, &json!({"content": "Hello"}), None),
        chunk(m, &json!({"content": " from"}), None),
        chunk(m, &json!({"content": last}), None),
        chunk(m, &json!({}), Some("stop")),
        format!("data: {usage}\n\n"),
        "data: [DONE]\n\n".to_owned(),
    ]
}

/// A call of tool `name` with `{"city":"Paris"}`, as JSON or as chunks (the arguments in two
/// pieces).
pub(super) fn tool_call(ask: &Ask, name: &str) -> Response {
    let m = &ask.model;
    let usage = json!({"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27});
    if !ask.stream {
        let body = json!({"id": "chatcmpl-fake", "object": "chat.completion",
            "created": 1_700_000_000, "model": m,
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": null, "tool_calls": [{"id": "call_fake",
                "type": "function", "function": {"name": name,
                "arguments": "{\"city\":\"Paris\"}"}}]}}],
            "usage": usage});
        return json_response(StatusCode::OK, body.to_string());
    }
    let call = |v: Value| json!({"tool_calls": [v]});
    let usage = json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk",
        "created": 1_700_000_000, "model": m, "choices": [], "usage": usage});
    let body = [
        chunk(m, &json!({"role": "assistant", "content": null}), None),
        chunk(
            m,
            &call(json!({"index": 0, "id": "call_fake", "type": "function",
            "function": {"name": name, "arguments": ""}})),
            None,
        ),
        chunk(
            m,
            &call(json!({"index": 0, "function": {"arguments": "{\"city\":"}})),
            None,
        ),
        chunk(
            m,
            &call(json!({"index": 0, "function": {"arguments": "\"Paris\"}"}})),
            None,
        ),
        chunk(m, &json!({}), Some("tool_calls")),
        format!("data: {usage}\n\n"),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat();
    (
        StatusCode::OK,
        [("content-type", "text/event-stream")],
        body,
    )
        .into_response()
}

/// How a normal answer is sent.
pub(super) enum Pacing {
    /// As written.
    Whole,
    /// Streams: headers at once, the first byte after a delay.
    FirstAfter(Duration),
    /// 16-byte pieces, one per interval.
    Drip(Duration),
    /// Cut at pseudo-random positions from a seed.
    Rechunk(u64),
}

pub(super) fn normal(fake: &Fake, ask: &Ask, pacing: Pacing) -> Response {
    if let Some(inputs) = ask.embeddings {
        fake.completed.fetch_add(1, Ordering::Relaxed);
        return json_response(StatusCode::OK, embeddings_json(ask, inputs));
    }
    let (ct, pieces) = if ask.stream {
        ("text/event-stream", stream_events(ask))
    } else {
        ("application/json", vec![completion_json(ask)])
    };
    if matches!(pacing, Pacing::Whole) && !ask.stream {
        fake.completed.fetch_add(1, Ordering::Relaxed);
        return json_response(StatusCode::OK, pieces.concat());
    }
    let whole: Vec<u8> = pieces.concat().into_bytes();
    let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(16);
    let fake = fake.clone();
    tokio::spawn(async move {
        let ok = match pacing {
            Pacing::Whole => send_all(&tx, pieces.into_iter().map(Bytes::from)).await,
            Pacing::FirstAfter(d) => {
                tokio::time::sleep(d).await;
                send_all(&tx, pieces.into_iter().map(Bytes::from)).await
            }
            Pacing::Drip(d) => {
                let mut ok = true;
                for piece in whole.chunks(16) {
                    tokio::time::sleep(d).await;
                    if tx.send(Ok(Bytes::copy_from_slice(piece))).await.is_err() {
                        ok = false;
                        break;
                    }
                }
                ok
            }
            Pacing::Rechunk(seed) => {
                let mut rng = seed.wrapping_mul(6_364_136_223_846_793_005) | 1;
                let mut rest: &[u8] = &whole;
                let mut ok = true;
                while !rest.is_empty() {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let n = ((rng % 40) as usize + 1).min(rest.len());
                    let (piece, tail) = rest.split_at(n);
                    rest = tail;
                    if tx.send(Ok(Bytes::copy_from_slice(piece))).await.is_err() {
                        ok = false;
                        break;
                    }
                    // Let each piece go out on its own.
                    tokio::task::yield_now().await;
                }
                ok
            }
        };
        if ok {
            fake.completed.fetch_add(1, Ordering::Relaxed);
        } else {
            fake.abandoned.fetch_add(1, Ordering::Relaxed);
        }
    });
    body_response(ct, rx)
}

pub(super) async fn send_all(
    tx: &mpsc::Sender<Result<Bytes, io::Error>>,
    pieces: impl Iterator<Item = Bytes>,
) -> bool {
    for p in pieces {
        if tx.send(Ok(p)).await.is_err() {
            return false;
        }
    }
    true
}

/// Sends nothing for an hour, or until the reader is gone (so stalled bodies do not pile up as
/// sleeping tasks in long tests).
pub(super) async fn silence(tx: &mpsc::Sender<Result<Bytes, io::Error>>) {
    tokio::select! {
        () = tokio::time::sleep(Duration::from_secs(3600)) => {}
        () = tx.closed() => {}
    }
}

/// Breaks a body off: the chunked encoding is aborted, or (`reset`) the connection gets a RST.
pub(super) async fn break_off(
    tx: &mpsc::Sender<Result<Bytes, io::Error>>,
    reset: Option<&ResetHandle>,
) {
    // Let what was sent reach the wire before the connection breaks.
    tokio::time::sleep(Duration::from_millis(30)).await;
    if let Some(r) = reset {
        r.arm();
    }
    let _ = tx
        .send(Err(io::Error::other("fake upstream: cut on purpose")))
        .await;
}

pub(super) fn faulty_stream(
    fake: &Fake,
    ask: &Ask,
    fault: Fault,
    at: At,
    reset: Option<ResetHandle>,
) -> Response {
    let events = stream_events(ask);
    let sent_before = match at {
        At::Before => 1,
        At::After => 2,
    };
    let model = ask.model.clone();
    let auth = ask.auth.clone();
    let fake = fake.clone();
    let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(16);
    tokio::spawn(async move {
        if !send_all(&tx, events.into_iter().take(sent_before).map(Bytes::from)).await {
            fake.abandoned.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match fault {
            Fault::Cut => break_off(&tx, None).await,
            Fault::Reset => break_off(&tx, reset.as_ref()).await,
            Fault::Stall => silence(&tx).await,
            Fault::NoDone => {}
            Fault::Malformed => {
                let _ = tx
                    .send(Ok(Bytes::from_static(
                        b"data: {\"choices\": [{\"delta\": {\"content\": oops\n\n",
                    )))
                    .await;
                // A well-formed rest must not make the stream look whole again.
                let _ = tx
                    .send(Ok(Bytes::from(chunk(
                        &model,
                        &json!({"content": " more"}),
                        None,
                    ))))
                    .await;
                let _ = tx.send(Ok(Bytes::from_static(b"data: [DONE]\n\n"))).await;
            }
            Fault::ErrChunk | Fault::ErrKeyChunk => {
                let message = if fault == Fault::ErrKeyChunk {
                    format!("Incorrect API key provided: {auth}")
                } else {
                    "upstream model crashed".to_owned()
                };
                let v = json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
                    "error": {"code": 502, "message": message}, "choices": []});
                let _ = tx.send(Ok(Bytes::from(format!("data: {v}\n\n")))).await;
                let _ = tx.send(Ok(Bytes::from_static(b"data: [DONE]\n\n"))).await;
            }
        }
    });
    body_response("text/event-stream", rx)
}

pub(super) fn faulty_json(ask: &Ask, fault: Fault, reset: Option<ResetHandle>) -> Response {
    let whole = completion_json(ask);
    let half = Bytes::from(whole[..whole.len() / 2].to_owned());
    match fault {
        Fault::Malformed => return json_response(StatusCode::OK, "{\"choices\": [oops".to_owned()),
        Fault::ErrChunk => {
            return json_response(
                StatusCode::OK,
                json!({"error": {"code": 502, "message": "upstream model crashed"}}).to_string(),
            );
        }
        Fault::ErrKeyChunk => {
            return json_response(
                StatusCode::OK,
                json!({"error": {"code": 401, "message": format!("Incorrect API key provided: {}", ask.auth)}}).to_string(),
            );
        }
        Fault::Cut | Fault::Reset | Fault::Stall | Fault::NoDone => {}
    }
    let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(4);
    tokio::spawn(async move {
        let _ = tx.send(Ok(half)).await;
        match fault {
            Fault::Cut => break_off(&tx, None).await,
            Fault::Reset => break_off(&tx, reset.as_ref()).await,
            Fault::Stall => silence(&tx).await,
            _ => {}
        }
    });
    body_response("application/json", rx)
}

/// A valid answer whose content is `mib` MiB of `x`, sent in 64 KiB pieces.
pub(super) fn huge(ask: &Ask, mib: usize) -> Response {
    let total = mib * 1024 * 1024;
    let (head, tail, ct) = if ask.stream {
        let role = chunk(
            &ask.model,
            &json!({"role": "assistant", "content": ""}),
            None,
        );
        let done = format!(
            "{}data: [DONE]\n\n",
            chunk(&ask.model, &json!({}), Some("stop"))
        );
        (
            format!(
                "{role}data: {{\"id\":\"chatcmpl-fake\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"{}\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"",
                ask.model
            ),
            format!("\"}},\"finish_reason\":null}}]}}\n\n{done}"),
            "text/event-stream",
        )
    } else {
        (
            format!(
                "{{\"id\":\"chatcmpl-fake\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":\"{}\",\"choices\":[{{\"index\":0,\"finish_reason\":\"stop\",\"message\":{{\"role\":\"assistant\",\"content\":\"",
                ask.model
            ),
            "\"}}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1,\"total_tokens\":2}}"
                .to_owned(),
            "application/json",
        )
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(4);
    tokio::spawn(async move {
        let piece = Bytes::from(vec![b'x'; 64 * 1024]);
        if tx.send(Ok(Bytes::from(head))).await.is_err() {
            return;
        }
        let mut left = total;
        while left > 0 {
            let n = left.min(piece.len());
            if tx.send(Ok(piece.slice(..n))).await.is_err() {
                return;
            }
            left -= n;
        }
        let _ = tx.send(Ok(Bytes::from(tail))).await;
    });
    body_response(ct, rx)
}
