//! A `chat.completion.chunk` stream as Anthropic's Messages events, in Anthropic's order:
//! `message_start`, then per content block `content_block_start` (the first followed by
//! `ping`), its deltas and `content_block_stop`, then `message_delta` (stop reason and usage)
//! and `message_stop`. A failure ends the stream with an `error` event.
//!
//! Thinking arrives as `reasoning_details` (with signatures) or plain `reasoning`, text as
//! `content`, tool calls as `tool_calls` deltas: each kind opens its own block, and a change of
//! kind (or of tool call) closes the block before it.

use super::response::{error_type, message_id, stop_reason, usage};
use crate::BoxError;
use crate::error::GatewayError;
use crate::ingress::remap::{Remap, named_event};
use crate::sse::Event;
use bytes::Bytes;
use serde_json::{Value, json};

/// The block being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    /// A thinking block, by its `reasoning_details` index (plain `reasoning`: none).
    Thinking(Option<u64>),
    /// A tool call, by its `tool_calls` index.
    Tool(u64),
}

/// The stream's state; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct MessagesStream {
    model: String,
    estimated_input: u64,
    started: bool,
    /// Index of the next content block.
    next_index: u64,
    open: Option<Block>,
    pinged: bool,
    finish: Option<String>,
    native_finish: Option<String>,
    usage: Option<Value>,
    ended: bool,
}

impl MessagesStream {
    /// A stream answering for `model` (as the client named it); `estimated_input` is the
    /// prompt-token estimate `message_start` carries before the upstream reports its count.
    pub(crate) fn new(model: String, estimated_input: u64) -> Self {
        MessagesStream {
            model,
            estimated_input,
            started: false,
            next_index: 0,
            open: None,
            pinged: false,
            finish: None,
            native_finish: None,
            usage: None,
            ended: false,
        }
    }

    fn start(&mut self, id: &str, out: &mut Vec<Bytes>) {
        if self.started {
            return;
        }
        self.started = true;
        out.push(named_event(
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": message_id(id), "type": "message", "role": "assistant",
                "model": self.model, "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": self.estimated_input, "output_tokens": 0,
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
            }}),
        ));
    }

    /// Makes `block` the open one, closing another and opening it with `start` if needed.
    fn open(&mut self, block: Block, start: &Value, out: &mut Vec<Bytes>) {
        if self.open == Some(block) {
            return;
        }
        self.close(out);
        out.push(named_event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": self.next_index, "content_block": start}),
        ));
        if !self.pinged {
            self.pinged = true;
            out.push(named_event("ping", &json!({"type": "ping"})));
        }
        self.open = Some(block);
    }

    fn close(&mut self, out: &mut Vec<Bytes>) {
        if self.open.take().is_some() {
            out.push(named_event(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": self.next_index}),
            ));
            self.next_index += 1;
        }
    }

    fn delta(&mut self, delta: &Value, out: &mut Vec<Bytes>) {
        out.push(named_event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": self.next_index, "delta": delta}),
        ));
    }

    fn chunk(&mut self, chunk: &Value, out: &mut Vec<Bytes>) {
        if let Some(err) = chunk.get("error").filter(|e| e.is_object()) {
            let status = err["code"].as_u64().and_then(|c| u16::try_from(c).ok());
            let message = err["message"].as_str().unwrap_or("the upstream failed");
            self.error(status.unwrap_or(502), message, out);
            return;
        }
        self.start(chunk["id"].as_str().unwrap_or(""), out);
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(u.clone());
        }
        let Some(choice) = chunk["choices"].get(0) else {
            return;
        };
        let delta = &choice["delta"];
        self.thinking(delta, out);
        if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            self.open(Block::Text, &json!({"type": "text", "text": ""}), out);
            self.delta(&json!({"type": "text_delta", "text": text}), out);
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let index = call["index"].as_u64().unwrap_or(0);
            if call.get("id").is_some_and(Value::is_string) || self.open != Some(Block::Tool(index))
            {
                let start = json!({"type": "tool_use", "id": call["id"],
                                   "name": call["function"]["name"], "input": {}});
                self.open(Block::Tool(index), &start, out);
            }
            if let Some(args) = call["function"]["arguments"]
                .as_str()
                .filter(|a| !a.is_empty())
            {
                self.delta(
                    &json!({"type": "input_json_delta", "partial_json": args}),
                    out,
                );
            }
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            self.finish = Some(f.to_owned());
        }
        if let Some(f) = choice["native_finish_reason"].as_str() {
            self.native_finish = Some(f.to_owned());
        }
    }

    /// Thinking deltas: `reasoning_details` when present (they carry signatures), else plain
    /// `reasoning` text.
    fn thinking(&mut self, delta: &Value, out: &mut Vec<Bytes>) {
        let thinking_start = || json!({"type": "thinking", "thinking": "", "signature": ""});
        if let Some(details) = delta["reasoning_details"].as_array() {
            for d in details {
                let index = d["index"].as_u64();
                match d["type"].as_str() {
                    Some("reasoning.text") => {
                        if let Some(t) = d["text"].as_str().filter(|t| !t.is_empty()) {
                            self.open(Block::Thinking(index), &thinking_start(), out);
                            self.delta(&json!({"type": "thinking_delta", "thinking": t}), out);
                        }
                        if let Some(s) = d["signature"].as_str().filter(|s| !s.is_empty()) {
                            self.open(Block::Thinking(index), &thinking_start(), out);
                            self.delta(&json!({"type": "signature_delta", "signature": s}), out);
                        }
                    }
                    Some("reasoning.encrypted") => {
                        self.close(out);
                        let start = json!({"type": "redacted_thinking", "data": d["data"]});
                        self.open(Block::Thinking(index), &start, out);
                        self.close(out);
                    }
                    _ => {}
                }
            }
            return;
        }
        if let Some(t) = delta["reasoning"].as_str().filter(|t| !t.is_empty()) {
            self.open(Block::Thinking(None), &thinking_start(), out);
            self.delta(&json!({"type": "thinking_delta", "thinking": t}), out);
        }
    }

    fn error(&mut self, status: u16, message: &str, out: &mut Vec<Bytes>) {
        if self.ended {
            return;
        }
        self.ended = true;
        out.push(named_event(
            "error",
            &json!({"type": "error", "error": {"type": error_type(status), "message": message}}),
        ));
    }

    fn finish(&mut self, out: &mut Vec<Bytes>) {
        if self.ended {
            return;
        }
        self.start("", out);
        self.close(out);
        self.ended = true;
        let stop = stop_reason(self.finish.as_deref(), self.native_finish.as_deref())
            .unwrap_or("end_turn");
        let usage = self
            .usage
            .as_ref()
            .map_or_else(|| json!({"output_tokens": 0}), usage);
        out.push(named_event(
            "message_delta",
            &json!({"type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": usage}),
        ));
        out.push(named_event(
            "message_stop",
            &json!({"type": "message_stop"}),
        ));
    }
}

impl Remap for MessagesStream {
    fn event(&mut self, event: &Event, out: &mut Vec<Bytes>) {
        if self.ended {
            return;
        }
        if event.data == "[DONE]" {
            self.finish(out);
            return;
        }
        match serde_json::from_str::<Value>(&event.data) {
            Ok(chunk) => self.chunk(&chunk, out),
            Err(e) => self.error(
                502,
                &format!("the upstream stream held malformed JSON: {e}"),
                out,
            ),
        }
    }

    fn end(&mut self, out: &mut Vec<Bytes>) {
        // A chat stream always ends with `[DONE]`; without it the answer is incomplete.
        self.error(502, "the stream ended before it was complete", out);
    }

    fn fail(&mut self, error: &BoxError, out: &mut Vec<Bytes>) {
        let e = GatewayError::from_box(error);
        self.error(e.status.as_u16(), &e.message, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[Value]) -> Vec<(String, Value)> {
        let mut s = MessagesStream::new("claude-x".into(), 12);
        let mut out = Vec::new();
        for c in chunks {
            s.event(
                &Event {
                    event: None,
                    data: c.to_string(),
                },
                &mut out,
            );
        }
        s.event(
            &Event {
                event: None,
                data: "[DONE]".into(),
            },
            &mut out,
        );
        s.end(&mut out);
        crate::ingress::remap::parse_named(&out)
    }

    #[test]
    fn events_come_in_anthropic_order() {
        let chunk = |delta: Value, finish: Value| json!({"id": "gen-1-a", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        let events = run(&[
            chunk(json!({"role": "assistant"}), Value::Null),
            chunk(
                json!({"reasoning_details": [{"type": "reasoning.text", "text": "hm", "index": 0}]}),
                Value::Null,
            ),
            chunk(
                json!({"reasoning_details": [{"type": "reasoning.text", "signature": "sig", "index": 0}]}),
                Value::Null,
            ),
            chunk(json!({"content": "Hi"}), Value::Null),
            chunk(
                json!({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "f", "arguments": ""}}]}),
                Value::Null,
            ),
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\":1}"}}]}),
                Value::Null,
            ),
            chunk(json!({}), json!("tool_calls")),
            json!({"id": "gen-1-a", "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 5, "cost": 0.5}}),
        ]);
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "ping",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ]
        );
        assert_eq!(events[0].1["message"]["usage"]["input_tokens"], 12);
        assert_eq!(
            events[4].1["delta"],
            json!({"type": "signature_delta", "signature": "sig"})
        );
        assert_eq!(events[6].1["index"], 1);
        assert_eq!(events[9].1["content_block"]["name"], "f");
        assert_eq!(events[10].1["delta"]["partial_json"], "{\"a\":1}");
        assert_eq!(events[12].1["delta"]["stop_reason"], "tool_use");
        assert_eq!(events[12].1["usage"]["input_tokens"], 10);
        assert_eq!(events[12].1["usage"]["cost"], 0.5);
    }

    #[test]
    fn an_error_chunk_ends_in_an_error_event() {
        let events = run(&[
            json!({"id": "g", "choices": [{"delta": {"content": "par"}}]}),
            json!({"error": {"code": 502, "message": "P: connection reset"},
                   "choices": [{"delta": {"content": ""}, "finish_reason": "error"}]}),
        ]);
        let last = events.last().expect("events");
        assert_eq!(last.0, "error");
        assert_eq!(
            last.1["error"],
            json!({"type": "api_error", "message": "P: connection reset"})
        );
        assert!(events.iter().all(|(n, _)| n != "message_stop"));
    }
}
