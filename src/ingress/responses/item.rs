//! One output item of a streamed response while it is written ([`Open`]): the events that
//! start it and, once it is complete, the events that finish it and the item itself.

use super::response::{function_call_item, message_item, reasoning_item};
use super::{custom, sealed};
use serde_json::{Value, json};

/// The output item being written, with what it has gathered.
#[derive(Debug)]
pub(super) enum Open {
    /// Reasoning: its text, and the chat side's `reasoning_details` (kept sealed when signed).
    Reasoning {
        id: String,
        text: String,
        details: Vec<Value>,
    },
    Message {
        id: String,
        text: String,
    },
    /// A tool call; `custom` when of a freeform tool, whose input goes out whole at the end
    /// (it arrives wrapped in JSON arguments, unwrapped only once complete).
    Tool {
        index: u64,
        id: String,
        call_id: Value,
        name: Value,
        args: String,
        custom: bool,
    },
}

/// An event's name and data (without `type` and `sequence_number`, which the stream adds).
pub(super) type ItemEvent = (&'static str, Value);

impl Open {
    /// The events that start the item at `index`: `response.output_item.added`, and the
    /// empty part of a message or a reasoning summary.
    pub(super) fn started(&self, index: usize) -> Vec<ItemEvent> {
        let item = match self {
            Open::Reasoning { id, .. } => json!({"type": "reasoning", "id": id, "summary": []}),
            Open::Message { id, .. } => json!({"type": "message", "id": id,
                "status": "in_progress", "role": "assistant", "content": []}),
            Open::Tool {
                id,
                call_id,
                name,
                custom: true,
                ..
            } => json!({"type": "custom_tool_call", "id": id,
                "call_id": call_id, "name": name, "input": "", "status": "in_progress"}),
            Open::Tool {
                id, call_id, name, ..
            } => json!({"type": "function_call", "id": id,
                "call_id": call_id, "name": name, "arguments": "", "status": "in_progress"}),
        };
        let mut events = vec![(
            "response.output_item.added",
            json!({"output_index": index, "item": item}),
        )];
        match self {
            Open::Reasoning { id, .. } => events.push((
                "response.reasoning_summary_part.added",
                json!({"item_id": id, "output_index": index, "summary_index": 0,
                       "part": {"type": "summary_text", "text": ""}}),
            )),
            Open::Message { id, .. } => events.push((
                "response.content_part.added",
                json!({"item_id": id, "output_index": index, "content_index": 0,
                       "part": {"type": "output_text", "text": "", "annotations": []}}),
            )),
            Open::Tool { .. } => {}
        }
        events
    }

    /// The events that finish the item at `index` (its `.done` events, then
    /// `response.output_item.done`), and the finished item.
    pub(super) fn finished(self, index: usize) -> (Vec<ItemEvent>, Value) {
        let mut events = Vec::with_capacity(3);
        let item = match self {
            Open::Reasoning { id, text, details } => {
                let at = json!({"item_id": id, "output_index": index, "summary_index": 0});
                let mut done = at.clone();
                done["text"] = text.as_str().into();
                events.push(("response.reasoning_summary_text.done", done));
                let mut part = at;
                part["part"] = json!({"type": "summary_text", "text": text});
                events.push(("response.reasoning_summary_part.done", part));
                let mut item = reasoning_item(&id, &text);
                if let Some(kept) = sealed::seal(&details) {
                    item["encrypted_content"] = kept.into();
                }
                item
            }
            Open::Message { id, text } => {
                let at = json!({"item_id": id, "output_index": index, "content_index": 0});
                let mut done = at.clone();
                done["text"] = text.as_str().into();
                done["logprobs"] = json!([]);
                events.push(("response.output_text.done", done));
                let mut part = at;
                part["part"] = json!({"type": "output_text", "text": text, "annotations": []});
                events.push(("response.content_part.done", part));
                message_item(&id, &text)
            }
            Open::Tool {
                id,
                call_id,
                name,
                args,
                custom: true,
                ..
            } => {
                let input = custom::unwrap(&args);
                let at = json!({"item_id": id, "output_index": index});
                let mut delta = at.clone();
                delta["delta"] = input.as_str().into();
                events.push(("response.custom_tool_call_input.delta", delta));
                let mut done = at;
                done["input"] = input.as_str().into();
                events.push(("response.custom_tool_call_input.done", done));
                custom::call_item(&id, &call_id, &name, &input)
            }
            Open::Tool {
                id,
                call_id,
                name,
                args,
                ..
            } => {
                let done = json!({"item_id": id, "output_index": index, "name": name,
                                  "arguments": args});
                events.push(("response.function_call_arguments.done", done));
                function_call_item(&id, &call_id, &name, &args)
            }
        };
        events.push((
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
        ));
        (events, item)
    }
}
