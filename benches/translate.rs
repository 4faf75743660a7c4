//! Stream translation throughput against a plain pass-through hop.
//!
//! The pass-through baseline parses each SSE `data:` as JSON and serialises it again, which is
//! the least a metering proxy does; translation additionally maps every event to OpenAI chunks
//! and serialises those. Both run over the same synthetic streams in the same run, in events/s
//! and in upstream bytes/s.
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use serde_json::{Value, json};
use switchyard::translate::{anthropic, gemini};

/// `(event name, data)` pairs of an Anthropic stream: thinking, text and a tool call.
fn anthropic_stream() -> Vec<(Option<&'static str>, String)> {
    let mut ev: Vec<(Option<&'static str>, Value)> = Vec::new();
    ev.push((Some("message_start"), json!({"type": "message_start", "message": {"id": "msg_01Bench", "type": "message", "role": "assistant", "content": [], "model": "claude-sonnet-4-5-20250929", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 1200, "cache_read_input_tokens": 1024, "output_tokens": 1}}})));
    ev.push((Some("content_block_start"), json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}})));
    for i in 0..100 {
        ev.push((Some("content_block_delta"), json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": format!("step {i}: consider the next case carefully. ")}})));
    }
    ev.push((Some("content_block_delta"), json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds3sMn6NpSiQ"}})));
    ev.push((
        Some("content_block_stop"),
        json!({"type": "content_block_stop", "index": 0}),
    ));
    ev.push((Some("content_block_start"), json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}})));
    for i in 0..300 {
        ev.push((Some("content_block_delta"), json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": format!(" word{i} and")}})));
        if i % 50 == 0 {
            ev.push((Some("ping"), json!({"type": "ping"})));
        }
    }
    ev.push((
        Some("content_block_stop"),
        json!({"type": "content_block_stop", "index": 1}),
    ));
    ev.push((Some("content_block_start"), json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_01Bench", "name": "search", "input": {}}})));
    let args =
        json!({"query": "weather in san francisco", "limit": 10, "filters": {"days": [1, 2, 3]}})
            .to_string();
    for piece in args.as_bytes().chunks(4) {
        let piece = String::from_utf8(piece.to_vec()).unwrap();
        ev.push((Some("content_block_delta"), json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": piece}})));
    }
    ev.push((
        Some("content_block_stop"),
        json!({"type": "content_block_stop", "index": 2}),
    ));
    ev.push((Some("message_delta"), json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 900}})));
    ev.push((Some("message_stop"), json!({"type": "message_stop"})));
    ev.into_iter().map(|(e, d)| (e, d.to_string())).collect()
}

/// Data lines of a Gemini stream: thoughts, text chunks and a final function call.
fn gemini_stream() -> Vec<String> {
    let usage = json!({"promptTokenCount": 1200, "totalTokenCount": 1200});
    let chunk = |parts: Value, finish: Option<&str>| {
        let mut c = json!({"candidates": [{"content": {"parts": parts, "role": "model"}, "index": 0}],
                           "usageMetadata": usage, "modelVersion": "gemini-2.5-flash", "responseId": "bench1"});
        if let Some(f) = finish {
            c["candidates"][0]["finishReason"] = json!(f);
        }
        c.to_string()
    };
    let mut out = Vec::new();
    for i in 0..50 {
        out.push(chunk(
            json!([{"text": format!("thinking about case {i}. "), "thought": true}]),
            None,
        ));
    }
    for i in 0..300 {
        out.push(chunk(json!([{"text": format!(" word{i} and")}]), None));
    }
    out.push(chunk(
        json!([{"functionCall": {"name": "search", "args": {"query": "weather", "limit": 10}}, "thoughtSignature": "CiQB0e2Kb7x4Yp3vYc2bYJt0Gx5m7sZ9rQ8nF1uW2kLhE3dA="}]),
        Some("STOP"),
    ));
    out
}

fn passthrough(data: &str) -> usize {
    let v: Value = serde_json::from_str(data).unwrap();
    serde_json::to_string(&v).unwrap().len()
}

fn bench(c: &mut Criterion) {
    let anthropic_events = anthropic_stream();
    let gemini_events = gemini_stream();
    let a_bytes: usize = anthropic_events.iter().map(|(_, d)| d.len()).sum();
    let g_bytes: usize = gemini_events.iter().map(String::len).sum();

    let translate_anthropic = || {
        let mut t = anthropic::StreamTranslator::new();
        let mut out = Vec::new();
        let mut written = 0;
        for (event, data) in &anthropic_events {
            t.on_event(*event, data, &mut out).unwrap();
            written += out
                .drain(..)
                .map(|c| serde_json::to_string(&c).unwrap().len())
                .sum::<usize>();
        }
        t.finish(&mut out);
        written
    };
    let translate_gemini = || {
        let mut t = gemini::StreamTranslator::new();
        let mut out = Vec::new();
        let mut written = 0;
        for data in &gemini_events {
            t.on_event(None, data, &mut out).unwrap();
            written += out
                .drain(..)
                .map(|c| serde_json::to_string(&c).unwrap().len())
                .sum::<usize>();
        }
        t.finish(&mut out);
        written
    };
    let pass_anthropic = || {
        anthropic_events
            .iter()
            .map(|(_, d)| passthrough(d))
            .sum::<usize>()
    };
    let pass_gemini = || gemini_events.iter().map(|d| passthrough(d)).sum::<usize>();

    for (unit, a, g) in [
        (
            "events",
            Throughput::Elements(anthropic_events.len() as u64),
            Throughput::Elements(gemini_events.len() as u64),
        ),
        (
            "bytes",
            Throughput::Bytes(a_bytes as u64),
            Throughput::Bytes(g_bytes as u64),
        ),
    ] {
        let mut group = c.benchmark_group(format!("anthropic_stream_{unit}"));
        group.throughput(a);
        group.bench_function("translate", |b| b.iter(|| black_box(translate_anthropic())));
        group.bench_function("passthrough", |b| b.iter(|| black_box(pass_anthropic())));
        group.finish();
        let mut group = c.benchmark_group(format!("gemini_stream_{unit}"));
        group.throughput(g);
        group.bench_function("translate", |b| b.iter(|| black_box(translate_gemini())));
        group.bench_function("passthrough", |b| b.iter(|| black_box(pass_gemini())));
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
