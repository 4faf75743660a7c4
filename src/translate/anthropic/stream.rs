//! Anthropic Messages SSE events → OpenAI `chat.completion.chunk`s.

use super::REASONING_FORMAT;
use super::response::{error, finish_reason, reasoning_tokens, usage};
use crate::translate::common::{ChunkHead, ProviderError, Usage, count, now};
use serde::Deserialize;
use serde_json::{Value, json};
use std::borrow::Cow;

/// One SSE event's data. Typed rather than a `Value` so the per-token deltas borrow their
/// text from the input instead of building a map per event; rare events keep `Value`s.
#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    index: Option<usize>,
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
    #[serde(default)]
    message: Value,
    #[serde(default)]
    content_block: Value,
    #[serde(default)]
    usage: Value,
}

/// The `delta` of `content_block_delta` and `message_delta` events.
#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    partial_json: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    signature: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
}

/// What an Anthropic content block turned into, by block index.
#[derive(Debug, Clone, Copy)]
enum Block {
    Text,
    /// A thinking block and its ordinal among reasoning details.
    Thinking(usize),
    /// A tool_use block and its ordinal among tool calls.
    Tool(usize),
    Other,
}

/// Translates one Anthropic SSE stream into OpenAI chunks, event by event.
///
/// Feed every SSE event to [`on_event`](Self::on_event) in order and call
/// [`finish`](Self::finish) when the upstream body ends. Chunks come out in the OpenAI order:
/// the role chunk, content/reasoning/tool-call deltas, a finish chunk, then one usage chunk
/// with `choices: []`.
#[derive(Debug)]
pub struct StreamTranslator {
    head: ChunkHead,
    started: bool,
    blocks: Vec<Block>,
    tools: usize,
    details: usize,
    thinking_bytes: usize,
    usage: Usage,
    usage_sent: bool,
}

impl Default for StreamTranslator {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamTranslator {
    /// A translator for a new stream.
    pub fn new() -> Self {
        StreamTranslator {
            head: ChunkHead {
                created: now(),
                ..ChunkHead::default()
            },
            started: false,
            blocks: Vec::new(),
            tools: 0,
            details: 0,
            thinking_bytes: 0,
            usage: Usage::default(),
            usage_sent: false,
        }
    }

    /// Consumes one SSE event (`event:` name, if any, and its `data:`), pushing the chunks it
    /// produces onto `out`. An `error` event, or data that is not JSON, is `Err`.
    pub fn on_event(
        &mut self,
        event: Option<&str>,
        data: &str,
        out: &mut Vec<Value>,
    ) -> Result<(), ProviderError> {
        let ev: Event<'_> = serde_json::from_str(data)
            .map_err(|e| ProviderError::invalid_body("stream event", &e, data.as_bytes()))?;
        match event.or(ev.kind.as_deref()).unwrap_or("") {
            "message_start" => self.message_start(&ev.message, out),
            "content_block_start" => self.block_start(&ev, out),
            "content_block_delta" => self.block_delta(&ev, out),
            "message_delta" => {
                self.merge_usage(&ev.usage);
                if let Some(native) = ev.delta.as_ref().and_then(|d| d.stop_reason.as_deref()) {
                    let finish = Some((finish_reason(native), native));
                    out.push(self.head.chunk(json!({}), finish));
                }
            }
            "message_stop" => self.finish(out),
            "error" => return Err(error(0, data.as_bytes())),
            _ => {} // ping, content_block_stop, and event types added later
        }
        Ok(())
    }

    /// Ends the stream: pushes the usage chunk unless `message_stop` already did.
    pub fn finish(&mut self, out: &mut Vec<Value>) {
        if self.started && !self.usage_sent {
            self.usage_sent = true;
            self.usage.reasoning = reasoning_tokens(self.thinking_bytes, self.usage.completion);
            out.push(self.head.usage_chunk(self.usage));
        }
    }

    fn message_start(&mut self, m: &Value, out: &mut Vec<Value>) {
        self.head.id = m["id"].as_str().unwrap_or("").to_owned();
        self.head.model = m["model"].as_str().unwrap_or("").to_owned();
        self.usage = usage(m.get("usage").unwrap_or(&Value::Null));
        self.started = true;
        out.push(
            self.head
                .chunk(json!({"role": "assistant", "content": ""}), None),
        );
    }

    /// `message_delta` usage is cumulative; newer APIs repeat the input counts there too.
    fn merge_usage(&mut self, u: &Value) {
        if u.get("input_tokens").is_some() {
            let mut merged = usage(u);
            merged.completion = merged.completion.max(self.usage.completion);
            self.usage = merged;
        } else {
            self.usage.completion = count(u, "output_tokens").max(self.usage.completion);
        }
    }

    fn block_start(&mut self, ev: &Event<'_>, out: &mut Vec<Value>) {
        let index = ev.index.unwrap_or(self.blocks.len());
        let b = &ev.content_block;
        let block = match b["type"].as_str() {
            Some("text") => {
                if let Some(t) = b["text"].as_str().filter(|t| !t.is_empty()) {
                    out.push(self.head.chunk(json!({"content": t}), None));
                }
                Block::Text
            }
            Some("thinking") => {
                self.details += 1;
                Block::Thinking(self.details - 1)
            }
            Some("redacted_thinking") => {
                let detail = json!({"type": "reasoning.encrypted", "data": b["data"],
                                    "format": REASONING_FORMAT, "index": self.details});
                self.details += 1;
                out.push(
                    self.head
                        .chunk(json!({"reasoning_details": [detail]}), None),
                );
                Block::Other
            }
            Some("tool_use") => {
                let call = json!({"index": self.tools, "id": b["id"], "type": "function",
                                  "function": {"name": b["name"], "arguments": ""}});
                self.tools += 1;
                out.push(self.head.chunk(json!({"tool_calls": [call]}), None));
                Block::Tool(self.tools - 1)
            }
            _ => Block::Other,
        };
        if self.blocks.len() <= index {
            self.blocks.resize(index + 1, Block::Other);
        }
        self.blocks[index] = block;
    }

    fn block_delta(&mut self, ev: &Event<'_>, out: &mut Vec<Value>) {
        let block = self
            .blocks
            .get(ev.index.unwrap_or(0))
            .copied()
            .unwrap_or(Block::Other);
        let Some(d) = &ev.delta else { return };
        let delta = match (d.kind.as_deref(), block) {
            (Some("text_delta"), _) => json!({"content": d.text}),
            (Some("input_json_delta"), Block::Tool(i)) => {
                json!({"tool_calls": [{"index": i, "function": {"arguments": d.partial_json}}]})
            }
            (Some("thinking_delta"), Block::Thinking(i)) => {
                self.thinking_bytes += d.thinking.as_deref().map_or(0, str::len);
                json!({
                    "reasoning": d.thinking,
                    "reasoning_details": [{"type": "reasoning.text", "text": d.thinking,
                                           "format": REASONING_FORMAT, "index": i}],
                })
            }
            (Some("signature_delta"), Block::Thinking(i)) => json!({
                "reasoning_details": [{"type": "reasoning.text", "signature": d.signature,
                                       "format": REASONING_FORMAT, "index": i}],
            }),
            _ => return,
        };
        out.push(self.head.chunk(delta, None));
    }
}
