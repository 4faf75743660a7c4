//! What a simulated model answers: a short text about the request, cut into tokens.

use serde_json::Value;

/// One simulated answer, the same whatever wire format carries it.
#[derive(Debug, Clone)]
pub(super) struct Reply {
    /// The provider's own response id.
    pub(super) id: String,
    /// The provider's model id.
    pub(super) model: String,
    /// The answer, one token per element (each with its leading space).
    pub(super) tokens: Vec<String>,
    /// Estimated prompt tokens (four characters a token).
    pub(super) prompt_tokens: u64,
    /// Cut by the request's token limit.
    pub(super) truncated: bool,
    /// Unix seconds.
    pub(super) created: u64,
}

impl Reply {
    /// The answer of provider `name` (speaking `format`) as `model` to `body`, at most
    /// `max_tokens` tokens long.
    pub(super) fn new(
        name: &str,
        format: &str,
        model: &str,
        body: &Value,
        max_tokens: Option<u64>,
    ) -> Reply {
        let texts = prompt_texts(body);
        let chars: usize = texts.iter().map(|t| t.chars().count()).sum();
        let asked: String = texts
            .last()
            .map(|t| t.chars().take(60).collect())
            .unwrap_or_default();
        let text = format!(
            "This is {name}, a simulated provider speaking the {format} wire format, answering \
             as {model}. You asked: \"{asked}\". Each word of this answer arrives as its own \
             token after a simulated delay. The gateway chose this provider, speaks its format, \
             and metered and priced the tokens: see usage.cost, and this generation in \
             GET /api/v1/generation."
        );
        let mut tokens: Vec<String> = text
            .split(' ')
            .enumerate()
            .map(|(i, w)| {
                if i == 0 {
                    w.to_owned()
                } else {
                    format!(" {w}")
                }
            })
            .collect();
        let limit = max_tokens.map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
        let truncated = tokens.len() > limit;
        tokens.truncate(limit.max(1));
        Reply {
            id: crate::ledger::generation_id().replacen("gen", "sim", 1),
            model: model.to_owned(),
            tokens,
            prompt_tokens: (chars as u64).div_ceil(4).max(1),
            truncated,
            created: crate::translate::now_secs(),
        }
    }

    /// Completion tokens.
    pub(super) fn completion_tokens(&self) -> u64 {
        self.tokens.len() as u64
    }

    /// The whole text.
    pub(super) fn text(&self) -> String {
        self.tokens.concat()
    }
}

/// Every prompt string of a request in any of the three formats — the `content` strings and
/// `text` parts of messages, Gemini `contents`, system prompts — with the user's last one
/// (outside any system prompt) at the end.
fn prompt_texts(body: &Value) -> Vec<&str> {
    fn walk<'a>(v: &'a Value, system: bool, out: &mut Vec<(&'a str, bool)>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    let system = system || k == "system" || k == "systemInstruction";
                    match (k.as_str(), v) {
                        ("content" | "text" | "system" | "prompt", Value::String(s)) => {
                            out.push((s, system));
                        }
                        _ => walk(v, system, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, system, out)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(body, false, &mut found);
    // Map keys come sorted, so a system prompt may follow the messages: move it first.
    found.sort_by_key(|(_, system)| !*system);
    found.into_iter().map(|(s, _)| s).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_prompt_of_every_format_and_respects_the_limit() {
        let openai = json!({"messages": [{"role": "user", "content": "hello there"}]});
        let anthropic = json!({"system": "Be brief.", "messages": [{"role": "user",
            "content": [{"type": "text", "text": "hello there"}]}]});
        let gemini = json!({"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]});
        for body in [openai, anthropic, gemini] {
            let r = Reply::new("P", "openai", "m", &body, None);
            assert!(
                r.text().contains("You asked: \"hello there\""),
                "{}",
                r.text()
            );
            assert!(r.prompt_tokens >= 3 && !r.truncated);
        }
        let r = Reply::new("P", "openai", "m", &json!({}), Some(5));
        assert_eq!((r.completion_tokens(), r.truncated), (5, true));
        assert!(r.id.starts_with("sim-"));
    }
}
