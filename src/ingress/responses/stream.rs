//! A `chat.completion.chunk` stream as Responses events, each named (`event: X`) and numbered
//! (`sequence_number` from 0): `response.created`, `response.in_progress`, then per output item
//! `response.output_item.added`, its part and delta events and `response.output_item.done`,
//! then `response.completed` (`response.incomplete` when the token limit cut it) carrying the
//! whole response with usage. A failure ends the stream with `response.failed`.
//!
//! Reasoning (as a summary), text and each tool call are items of their own, in the order they
//! arrive; a change of kind (or of tool call) finishes the item before it. A call of a custom
//! (freeform) tool is a `custom_tool_call` item whose input comes in one
//! `response.custom_tool_call_input.delta` when the call is complete.

use super::item::Open;
use super::response::{finish, item_id, usage};
use super::store::ResponseStore;
use super::{custom, sealed};
use crate::BoxError;
use crate::error::GatewayError;
use crate::ingress::remap::{Remap, named_event};
use crate::sse::Event;
use bytes::Bytes;
use serde_json::{Value, json};

/// Where a finished response's conversation is kept for `previous_response_id`.
#[derive(Debug)]
pub(super) struct Save {
    pub(super) store: ResponseStore,
    pub(super) owner: u64,
    /// The conversation up to this response: earlier turns and this request's input.
    pub(super) items: Vec<Value>,
}

/// The stream's state; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct ResponsesStream {
    response: Value,
    sequence: u64,
    started: bool,
    output: Vec<Value>,
    open: Option<Open>,
    finish: Option<String>,
    usage: Option<Value>,
    ended: bool,
    save: Option<Save>,
    /// The request's custom tools.
    customs: Vec<String>,
}

impl ResponsesStream {
    /// A stream answering with `response` (a [`skeleton`](super::response::skeleton)).
    pub(super) fn new(response: Value, save: Option<Save>) -> Self {
        ResponsesStream {
            customs: custom::names(&response["tools"]),
            response,
            sequence: 0,
            started: false,
            output: Vec::new(),
            open: None,
            finish: None,
            usage: None,
            ended: false,
            save,
        }
    }

    fn id(&self) -> &str {
        self.response["id"].as_str().unwrap_or("")
    }

    fn emit(&mut self, name: &str, mut data: Value, out: &mut Vec<Bytes>) {
        data["type"] = name.into();
        data["sequence_number"] = self.sequence.into();
        self.sequence += 1;
        out.push(named_event(name, &data));
    }

    fn start(&mut self, out: &mut Vec<Bytes>) {
        if self.started {
            return;
        }
        self.started = true;
        let response = self.response.clone();
        self.emit("response.created", json!({"response": response}), out);
        let response = self.response.clone();
        self.emit("response.in_progress", json!({"response": response}), out);
    }

    fn index(&self) -> usize {
        self.output.len()
    }

    /// Opens `open` as the next output item, finishing the one before.
    fn open(&mut self, open: Open, out: &mut Vec<Bytes>) {
        self.close(out);
        let index = self.index();
        for (name, data) in open.started(index) {
            self.emit(name, data, out);
        }
        self.open = Some(open);
    }

    /// Finishes the open item: its done events, and it joins the output.
    fn close(&mut self, out: &mut Vec<Bytes>) {
        let Some(open) = self.open.take() else { return };
        let index = self.index();
        let (events, item) = open.finished(index);
        for (name, data) in events {
            self.emit(name, data, out);
        }
        self.output.push(item);
    }

    fn chunk(&mut self, chunk: &Value, out: &mut Vec<Bytes>) {
        if let Some(err) = chunk.get("error").filter(|e| e.is_object()) {
            let message = err["message"].as_str().unwrap_or("the upstream failed");
            self.fail_with(message, out);
            return;
        }
        self.start(out);
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(u.clone());
        }
        let Some(choice) = chunk["choices"].get(0) else {
            return;
        };
        let delta = &choice["delta"];
        let details = delta["reasoning_details"]
            .as_array()
            .filter(|d| !d.is_empty());
        let reasoning = reasoning_delta(delta).unwrap_or_default();
        if !reasoning.is_empty() || details.is_some() {
            // A signature-only delta still belongs to the reasoning item.
            self.text(true, &reasoning, out);
            if let (Some(details), Some(Open::Reasoning { details: all, .. })) =
                (details, &mut self.open)
            {
                for d in details {
                    sealed::merge(all, d);
                }
            }
        }
        if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            self.text(false, text, out);
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            self.tool_delta(call, out);
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            self.finish = Some(f.to_owned());
        }
    }

    /// Reasoning (`reasoning`) or answer text, appended to the open item of its kind.
    fn text(&mut self, reasoning: bool, text: &str, out: &mut Vec<Bytes>) {
        let same = matches!(
            (&self.open, reasoning),
            (Some(Open::Reasoning { .. }), true) | (Some(Open::Message { .. }), false)
        );
        if !same {
            let n = self.index() + usize::from(self.open.is_some());
            let open = if reasoning {
                Open::Reasoning {
                    id: item_id("rs", self.id(), n),
                    text: String::new(),
                    details: Vec::new(),
                }
            } else {
                Open::Message {
                    id: item_id("msg", self.id(), n),
                    text: String::new(),
                }
            };
            self.open(open, out);
        }
        if text.is_empty() {
            return;
        }
        let index = self.index();
        let (name, data) = match &mut self.open {
            Some(Open::Reasoning { id, text: all, .. }) => {
                all.push_str(text);
                (
                    "response.reasoning_summary_text.delta",
                    json!({"item_id": id, "output_index": index, "summary_index": 0, "delta": text}),
                )
            }
            Some(Open::Message { id, text: all }) => {
                all.push_str(text);
                (
                    "response.output_text.delta",
                    json!({"item_id": id, "output_index": index, "content_index": 0,
                        "delta": text, "logprobs": []}),
                )
            }
            _ => return,
        };
        self.emit(name, data, out);
    }

    fn tool_delta(&mut self, call: &Value, out: &mut Vec<Bytes>) {
        let index = call["index"].as_u64().unwrap_or(0);
        let is_open = matches!(&self.open, Some(Open::Tool { index: i, .. }) if *i == index);
        if call.get("id").is_some_and(Value::is_string) || !is_open {
            let n = self.index() + usize::from(self.open.is_some());
            let name = &call["function"]["name"];
            let custom = name
                .as_str()
                .is_some_and(|n| self.customs.iter().any(|c| c == n));
            let open = Open::Tool {
                index,
                id: item_id(if custom { "ctc" } else { "fc" }, self.id(), n),
                call_id: call["id"].clone(),
                name: name.clone(),
                args: String::new(),
                custom,
            };
            self.open(open, out);
        }
        let Some(args) = call["function"]["arguments"]
            .as_str()
            .filter(|a| !a.is_empty())
        else {
            return;
        };
        let output_index = self.index();
        match &mut self.open {
            Some(Open::Tool {
                args: all,
                custom: true,
                ..
            }) => all.push_str(args),
            Some(Open::Tool { id, args: all, .. }) => {
                all.push_str(args);
                let data = json!({"item_id": id, "output_index": output_index, "delta": args});
                self.emit("response.function_call_arguments.delta", data, out);
            }
            _ => {}
        }
    }

    fn fail_with(&mut self, message: &str, out: &mut Vec<Bytes>) {
        if self.ended {
            return;
        }
        self.start(out);
        self.ended = true;
        let mut response = self.response.clone();
        response["status"] = "failed".into();
        response["error"] = json!({"code": "server_error", "message": message});
        response["output"] = Value::Array(std::mem::take(&mut self.output));
        self.emit("response.failed", json!({"response": response}), out);
    }

    fn complete(&mut self, out: &mut Vec<Bytes>) {
        if self.ended {
            return;
        }
        self.start(out);
        self.close(out);
        self.ended = true;
        let usage = self.usage.as_ref().map_or(Value::Null, usage);
        let output = std::mem::take(&mut self.output);
        let mut response = self.response.clone();
        finish(&mut response, output, usage, self.finish.as_deref());
        if let Some(mut save) = self.save.take() {
            save.items
                .extend(response["output"].as_array().into_iter().flatten().cloned());
            save.store.put(self.id().to_owned(), save.owner, save.items);
        }
        let name = if response["status"] == "incomplete" {
            "response.incomplete"
        } else {
            "response.completed"
        };
        self.emit(name, json!({"response": response}), out);
    }
}

/// The reasoning text of a chunk delta: `reasoning_details` texts, else plain `reasoning`.
fn reasoning_delta(delta: &Value) -> Option<String> {
    if let Some(details) = delta["reasoning_details"].as_array() {
        return Some(details.iter().filter_map(|d| d["text"].as_str()).collect());
    }
    delta["reasoning"].as_str().map(str::to_owned)
}

impl Remap for ResponsesStream {
    fn event(&mut self, event: &Event, out: &mut Vec<Bytes>) {
        if self.ended {
            return;
        }
        if event.data == "[DONE]" {
            self.complete(out);
            return;
        }
        match serde_json::from_str::<Value>(&event.data) {
            Ok(chunk) => self.chunk(&chunk, out),
            Err(e) => self.fail_with(
                &format!("the upstream stream held malformed JSON: {e}"),
                out,
            ),
        }
    }

    fn end(&mut self, out: &mut Vec<Bytes>) {
        // A chat stream always ends with `[DONE]`; without it the answer is incomplete.
        self.fail_with("the stream ended before it was complete", out);
    }

    fn fail(&mut self, error: &BoxError, out: &mut Vec<Bytes>) {
        let e = GatewayError::from_box(error);
        self.fail_with(&e.message, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[Value], store: Option<&ResponseStore>) -> Vec<(String, Value)> {
        let save = store.map(|s| Save {
            store: s.clone(),
            owner: 0,
            items: vec![json!({"role": "user", "content": "hi"})],
        });
        let mut s = ResponsesStream::new(
            json!({"id": "resp_1", "output": [], "status": "in_progress"}),
            save,
        );
        let mut out = Vec::new();
        let data = chunks
            .iter()
            .map(Value::to_string)
            .chain(["[DONE]".to_owned()]);
        for data in data {
            s.event(&Event { event: None, data }, &mut out);
        }
        s.end(&mut out);
        crate::ingress::remap::parse_named(&out)
    }

    #[test]
    fn events_come_in_order_and_numbered() {
        let chunk = |delta: Value, finish: Value| json!({"id": "gen-1", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        let store = ResponseStore::default();
        let events = run(
            &[
                chunk(json!({"role": "assistant", "content": "Hi"}), Value::Null),
                chunk(json!({"content": " there"}), Value::Null),
                chunk(
                    json!({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "f", "arguments": ""}}]}),
                    Value::Null,
                ),
                chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\":1}"}}]}),
                    Value::Null,
                ),
                chunk(json!({}), json!("tool_calls")),
                json!({"id": "gen-1", "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 5}}),
            ],
            Some(&store),
        );
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        for (i, (name, data)) in events.iter().enumerate() {
            assert_eq!(data["sequence_number"], i as u64);
            assert_eq!(data["type"], name.as_str());
        }
        assert_eq!(events[6].1["text"], "Hi there");
        assert_eq!(events[9].1["output_index"], 1);
        assert_eq!(events[11].1["arguments"], "{\"a\":1}");
        let done = &events[13].1["response"];
        assert_eq!(done["status"], "completed");
        assert_eq!(done["output"][1]["call_id"], "call_1");
        assert_eq!(done["usage"]["total_tokens"], 15);
        let kept = store.get("resp_1", 0).expect("stored");
        assert_eq!(kept.len(), 3);
        assert_eq!(kept[2]["type"], "function_call");
    }

    #[test]
    fn an_error_chunk_fails_the_response() {
        let events = run(
            &[
                json!({"id": "g", "choices": [{"delta": {"content": "par"}}]}),
                json!({"error": {"code": 502, "message": "P: connection reset"},
                   "choices": [{"delta": {"content": ""}, "finish_reason": "error"}]}),
            ],
            None,
        );
        let last = events.last().expect("events");
        assert_eq!(last.0, "response.failed");
        assert_eq!(
            last.1["response"]["error"]["message"],
            "P: connection reset"
        );
        assert!(events.iter().all(|(n, _)| n != "response.completed"));
    }
}
