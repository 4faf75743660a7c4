//! [`KeyLimits`]: what a key may do besides spend — requests and tokens per minute, and which
//! models it may call (an allow-list of globs such as `openai/*`).
//!
//! They are settings of the key, kept with it in the store (config `[[keys]]` or the management
//! API); the counting happens in a [`RateLimiter`](crate::state::RateLimiter), in process or
//! shared between instances.

use serde_json::{Value, json};

/// Per-key limits; the default has none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyLimits {
    /// Requests per minute.
    pub rpm: Option<u32>,
    /// Tokens (prompt + completion) per minute. A request is admitted while the minute's tokens
    /// are below the limit; its own tokens count once it has finished.
    pub tpm: Option<u64>,
    /// Models the key may call, as globs (`*` any run of characters, `?` one); empty allows all.
    pub models: Vec<String>,
}

impl KeyLimits {
    /// True when nothing is limited.
    pub fn is_unlimited(&self) -> bool {
        self.rpm.is_none() && self.tpm.is_none() && self.models.is_empty()
    }

    /// True when the key may call `model` (a concrete slug such as `openai/gpt-5`).
    pub fn allows(&self, model: &str) -> bool {
        self.models.is_empty() || self.models.iter().any(|p| glob(p, model))
    }

    /// The limits as the management API shows them.
    pub fn to_json(&self) -> Value {
        json!({"rpm": self.rpm, "tpm": self.tpm, "models": self.models})
    }

    /// Parses the JSON [`KeyLimits::to_json`] writes (missing fields: no limit).
    pub fn from_json(v: &Value) -> KeyLimits {
        KeyLimits {
            rpm: v["rpm"].as_u64().and_then(|n| u32::try_from(n).ok()),
            tpm: v["tpm"].as_u64(),
            models: v["models"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|m| m.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// Glob match over bytes: `*` matches any run (also empty), `?` any one byte, the rest itself.
/// Iterative with one backtrack point, so it is linear-ish and cannot blow up.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == b'?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("openai/*", "openai/gpt-5"));
        assert!(glob("*", ""));
        assert!(glob("*/gpt-?", "openai/gpt-5"));
        assert!(glob("a*b*c", "aXbYbc"));
        assert!(!glob("openai/*", "anthropic/claude"));
        assert!(!glob("openai/gpt-5", "openai/gpt-5-mini"));
        assert!(glob("openai/gpt-5*", "openai/gpt-5-mini"));
    }

    #[test]
    fn allow_list_and_json() {
        let l = KeyLimits {
            rpm: Some(5),
            tpm: None,
            models: vec!["openai/*".into(), "meta/llama-3".into()],
        };
        assert!(l.allows("openai/x") && l.allows("meta/llama-3") && !l.allows("meta/llama-4"));
        assert!(KeyLimits::default().allows("anything"));
        assert_eq!(KeyLimits::from_json(&l.to_json()), l);
    }
}
