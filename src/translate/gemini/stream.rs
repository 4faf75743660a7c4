//! Gemini `streamGenerateContent?alt=sse` chunks → OpenAI `chat.completion.chunk`s.

use super::response::{Seen, finish, head, parse, read_parts, usage};
use crate::translate::common::{ChunkHead, ProviderError, Usage, now};
use serde_json::{Map, Value, json};

/// Translates one Gemini SSE stream into OpenAI chunks.
///
/// Each `data:` is a whole `GenerateContentResponse`. Text and thoughts stream as deltas;
/// function calls arrive whole, so each is one complete `tool_calls` delta. The usage chunk
/// (`choices: []`) is sent once: with the chunk that carries the finish reason and usage, or
/// from [`finish`](Self::finish) when the stream ends without one.
#[derive(Debug)]
pub struct StreamTranslator {
    head: ChunkHead,
    started: bool,
    seen: Seen,
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
            seen: Seen::default(),
            usage: Usage::default(),
            usage_sent: false,
        }
    }

    /// Consumes one SSE event's data (Gemini sends no `event:` names), pushing the chunks it
    /// produces onto `out`. An error object, or data that is not JSON, is `Err`.
    pub fn on_event(
        &mut self,
        _event: Option<&str>,
        data: &str,
        out: &mut Vec<Value>,
    ) -> Result<(), ProviderError> {
        let r = parse(data, "stream chunk")?;
        if !self.started {
            self.started = true;
            self.head = head(&r, self.head.created);
            out.push(
                self.head
                    .chunk(json!({"role": "assistant", "content": ""}), None),
            );
        }
        let candidate = r.candidates.first();
        let parts = read_parts(candidate, &self.head.id, &mut self.seen);
        let mut delta = Map::new();
        if !parts.text.is_empty() {
            delta.insert("content".into(), Value::String(parts.text));
        }
        if !parts.reasoning.is_empty() {
            delta.insert("reasoning".into(), Value::String(parts.reasoning));
        }
        if !parts.calls.is_empty() {
            delta.insert("tool_calls".into(), Value::Array(parts.calls));
        }
        if !parts.details.is_empty() {
            delta.insert("reasoning_details".into(), Value::Array(parts.details));
        }
        if !delta.is_empty() {
            out.push(self.head.chunk(Value::Object(delta), None));
        }
        let has_usage = r.usage_metadata.is_some();
        if has_usage {
            self.usage = usage(r.usage_metadata.as_ref());
        }
        if let Some(f) = finish(&r, candidate, self.seen.calls > 0) {
            out.push(self.head.chunk(json!({}), Some(f)));
            if has_usage {
                self.finish(out);
            }
        }
        Ok(())
    }

    /// Ends the stream: pushes the usage chunk unless it was already sent.
    pub fn finish(&mut self, out: &mut Vec<Value>) {
        if self.started && !self.usage_sent {
            self.usage_sent = true;
            out.push(self.head.usage_chunk(self.usage));
        }
    }
}
