//! Anthropic Messages SSE events → OpenAI `chat.completion.chunk`s.

use super::REASONING_FORMAT;
use super::response::{error, finish_reason, reasoning_tokens, usage};
use crate::translate::common::{ChunkHead, UpstreamError, Usage, count, now};
use serde_json::{Value, json};

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
    ) -> Result<(), UpstreamError> {
        let v: Value = serde_json::from_str(data)
            .map_err(|e| UpstreamError::invalid_body("stream event", &e, data.as_bytes()))?;
        let kind = event
            .or_else(|| v.get("type").and_then(Value::as_str))
            .unwrap_or("");
        match kind {
            "message_start" => self.message_start(&v, out),
            "content_block_start" => self.block_start(&v, out),
            "content_block_delta" => self.block_delta(&v, out),
            "message_delta" => {
                let u = v.get("usage").unwrap_or(&Value::Null);
                self.merge_usage(u);
                if let Some(native) = v["delta"]["stop_reason"].as_str() {
                    out.push(
                        self.head
                            .chunk(json!({}), Some((finish_reason(native), native))),
                    );
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

    fn message_start(&mut self, v: &Value, out: &mut Vec<Value>) {
        let m = v.get("message").unwrap_or(&Value::Null);
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

    fn block_start(&mut self, v: &Value, out: &mut Vec<Value>) {
        let index = v["index"].as_u64().unwrap_or(self.blocks.len() as u64) as usize;
        let b = &v["content_block"];
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

    fn block_delta(&mut self, v: &Value, out: &mut Vec<Value>) {
        let index = v["index"].as_u64().unwrap_or(0) as usize;
        let block = self.blocks.get(index).copied().unwrap_or(Block::Other);
        let d = &v["delta"];
        let delta = match (d["type"].as_str(), block) {
            (Some("text_delta"), _) => json!({"content": d["text"]}),
            (Some("input_json_delta"), Block::Tool(i)) => {
                json!({"tool_calls": [{"index": i, "function": {"arguments": d["partial_json"]}}]})
            }
            (Some("thinking_delta"), Block::Thinking(i)) => {
                self.thinking_bytes += d["thinking"].as_str().map_or(0, str::len);
                json!({
                "reasoning": d["thinking"],
                "reasoning_details": [{"type": "reasoning.text", "text": d["thinking"],
                                       "format": REASONING_FORMAT, "index": i}],
                })
            }
            (Some("signature_delta"), Block::Thinking(i)) => json!({
                "reasoning_details": [{"type": "reasoning.text", "signature": d["signature"],
                                       "format": REASONING_FORMAT, "index": i}],
            }),
            _ => return,
        };
        out.push(self.head.chunk(delta, None));
    }
}
