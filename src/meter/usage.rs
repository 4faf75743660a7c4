//! Token usage as reported by an upstream, normalised.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What one generation consumed, in the counts the cost formula needs.
///
/// `cached_tokens` and `cache_write_tokens` are parts of `prompt_tokens`;
/// `cache_write_1h_tokens` is the part of `cache_write_tokens` written with a one-hour TTL;
/// `reasoning_tokens` is the part of `completion_tokens` spent reasoning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens, cached and cache-written ones included.
    pub prompt_tokens: u64,
    /// Completion tokens, reasoning ones included.
    pub completion_tokens: u64,
    /// Prompt tokens read from the provider's prompt cache.
    pub cached_tokens: u64,
    /// Prompt tokens written to the provider's prompt cache (all TTLs).
    pub cache_write_tokens: u64,
    /// The part of `cache_write_tokens` written with a one-hour TTL.
    pub cache_write_1h_tokens: u64,
    /// The part of `completion_tokens` spent on reasoning.
    pub reasoning_tokens: u64,
    /// Images in the prompt.
    pub images: u64,
    /// Web searches run for the request.
    pub web_search_requests: u64,
    /// True when the counts were estimated from text lengths, not reported by the upstream.
    pub estimated: bool,
}

/// Characters per token used by [`Usage::estimate`].
const CHARS_PER_TOKEN: u64 = 4;

impl Usage {
    /// Reads an OpenAI/OpenRouter `usage` object; Anthropic's field names
    /// (`input_tokens`, `output_tokens`, `cache_read_input_tokens`,
    /// `cache_creation_input_tokens`, `cache_creation.ephemeral_1h_input_tokens`) are understood
    /// too. `None` when `v` is not an object or has no token count at all.
    ///
    /// ```
    /// use switchyard::meter::usage::Usage;
    /// let v = serde_json::json!({
    ///     "prompt_tokens": 120, "completion_tokens": 30,
    ///     "prompt_tokens_details": {"cached_tokens": 100},
    ///     "completion_tokens_details": {"reasoning_tokens": 12}
    /// });
    /// let u = Usage::from_openai(&v).unwrap();
    /// assert_eq!((u.prompt_tokens, u.cached_tokens, u.reasoning_tokens), (120, 100, 12));
    /// ```
    pub fn from_openai(v: &Value) -> Option<Usage> {
        let obj = v.as_object()?;
        let prompt = count(obj.get("prompt_tokens"));
        let completion = count(obj.get("completion_tokens")).or(count(obj.get("output_tokens")));
        // Anthropic's input_tokens excludes the cache reads and writes; OpenAI's prompt_tokens
        // includes them.
        let anthropic_input = count(obj.get("input_tokens"));
        if prompt.is_none() && completion.is_none() && anthropic_input.is_none() {
            return None;
        }
        let prompt_details = obj.get("prompt_tokens_details");
        let cached = count(prompt_details.and_then(|d| d.get("cached_tokens")))
            .or(count(obj.get("cache_read_input_tokens")))
            .unwrap_or(0);
        let cache_write = count(prompt_details.and_then(|d| d.get("cache_write_tokens")))
            .or(count(obj.get("cache_creation_input_tokens")))
            .unwrap_or(0);
        let cache_write_1h = count(
            obj.get("cache_creation")
                .and_then(|c| c.get("ephemeral_1h_input_tokens")),
        )
        .unwrap_or(0)
        .min(cache_write);
        let prompt_tokens = match (prompt, anthropic_input) {
            (Some(p), _) => p,
            (None, Some(input)) => input.saturating_add(cached).saturating_add(cache_write),
            (None, None) => 0,
        };
        let reasoning = count(
            obj.get("completion_tokens_details")
                .and_then(|d| d.get("reasoning_tokens")),
        )
        .unwrap_or(0);
        let web_search = count(
            obj.get("server_tool_use")
                .and_then(|s| s.get("web_search_requests")),
        )
        .unwrap_or(0);
        Some(Usage {
            prompt_tokens,
            completion_tokens: completion.unwrap_or(0),
            cached_tokens: cached,
            cache_write_tokens: cache_write,
            cache_write_1h_tokens: cache_write_1h,
            reasoning_tokens: reasoning,
            images: 0,
            web_search_requests: web_search,
            estimated: false,
        })
    }

    /// Estimates usage from text lengths (about four characters per token, rounded up) for
    /// upstreams that report none; marks the result `estimated`.
    pub fn estimate(prompt_chars: u64, completion_chars: u64) -> Usage {
        Usage {
            prompt_tokens: prompt_chars.div_ceil(CHARS_PER_TOKEN),
            completion_tokens: completion_chars.div_ceil(CHARS_PER_TOKEN),
            estimated: true,
            ..Usage::default()
        }
    }

    /// Prompt plus completion tokens.
    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}

/// A non-negative token count; some upstreams send floats such as `12.0`.
fn count(v: Option<&Value>) -> Option<u64> {
    let v = v?;
    v.as_u64()
        .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f.round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_openrouter_usage() {
        let v = json!({
            "prompt_tokens": 1000, "completion_tokens": 200, "total_tokens": 1200,
            "prompt_tokens_details": {"cached_tokens": 600, "cache_write_tokens": 300},
            "completion_tokens_details": {"reasoning_tokens": 150},
            "server_tool_use": {"web_search_requests": 2}
        });
        let u = Usage::from_openai(&v).expect("usage");
        assert_eq!(
            u,
            Usage {
                prompt_tokens: 1000,
                completion_tokens: 200,
                cached_tokens: 600,
                cache_write_tokens: 300,
                reasoning_tokens: 150,
                web_search_requests: 2,
                ..Usage::default()
            }
        );
    }

    #[test]
    fn reads_anthropic_usage() {
        let v = json!({
            "input_tokens": 10, "output_tokens": 50,
            "cache_read_input_tokens": 100, "cache_creation_input_tokens": 40,
            "cache_creation": {"ephemeral_5m_input_tokens": 10, "ephemeral_1h_input_tokens": 30},
            "server_tool_use": {"web_search_requests": 1}
        });
        let u = Usage::from_openai(&v).expect("usage");
        assert_eq!(u.prompt_tokens, 150);
        assert_eq!(u.completion_tokens, 50);
        assert_eq!((u.cached_tokens, u.cache_write_tokens), (100, 40));
        assert_eq!(u.cache_write_1h_tokens, 30);
        assert_eq!(u.web_search_requests, 1);
    }

    #[test]
    fn rejects_non_usage_and_tolerates_nulls() {
        assert_eq!(Usage::from_openai(&json!(null)), None);
        assert_eq!(Usage::from_openai(&json!({"foo": 1})), None);
        let u = Usage::from_openai(&json!({
            "prompt_tokens": 5.0, "completion_tokens": null, "prompt_tokens_details": null
        }))
        .expect("usage");
        assert_eq!((u.prompt_tokens, u.completion_tokens), (5, 0));
    }

    #[test]
    fn estimates_four_chars_per_token() {
        let u = Usage::estimate(9, 8);
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.estimated),
            (3, 2, true)
        );
    }
}
