//! Provider reasoning kept across turns in a reasoning item's `encrypted_content`.
//!
//! Some providers sign their reasoning (Anthropic's thinking) and need it back, signature and
//! all, with a later turn's tool results. The chat side carries it as `reasoning_details`; a
//! Responses client keeps only the items it was given, so those details travel in the
//! reasoning item's `encrypted_content` — the field Codex CLI asks for (`include:
//! ["reasoning.encrypted_content"]`) and sends back unchanged. The content is opaque to the
//! client but not encrypted: it holds the provider's own reasoning, which the client was shown.

use serde_json::Value;

/// What marks `encrypted_content` as this gateway's.
const PREFIX: &str = "switchyard.reasoning.v1:";

/// The `encrypted_content` for `details`, when any of them is signed or encrypted (plain text
/// reasoning needs no keeping: the summary holds it).
pub(super) fn seal(details: &[Value]) -> Option<String> {
    let kept = details
        .iter()
        .any(|d| d["signature"].as_str().is_some_and(|s| !s.is_empty()) || d["data"].is_string());
    kept.then(|| format!("{PREFIX}{}", Value::from(details.to_vec())))
}

/// The details an `encrypted_content` of this gateway holds; `None` for anyone else's.
pub(super) fn open(content: &str) -> Option<Vec<Value>> {
    let json = content.strip_prefix(PREFIX)?;
    match serde_json::from_str(json) {
        Ok(Value::Array(details)) => Some(details),
        _ => None,
    }
}

/// Adds one streamed `reasoning_details` delta to `details`: a delta with the `index` of one
/// already there extends it (text and signature appended, other fields set), else it is new.
pub(super) fn merge(details: &mut Vec<Value>, delta: &Value) {
    let index = delta.get("index").filter(|i| i.is_u64());
    let found = index.and_then(|i| details.iter_mut().find(|d| d.get("index") == Some(i)));
    let Some(detail) = found else {
        details.push(delta.clone());
        return;
    };
    let (Some(detail), Some(delta)) = (detail.as_object_mut(), delta.as_object()) else {
        return;
    };
    for (key, value) in delta {
        match (key.as_str(), value.as_str()) {
            ("text" | "signature", Some(more)) => {
                let mut all = detail
                    .get(key)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                all.push_str(more);
                detail.insert(key.clone(), all.into());
            }
            _ if !value.is_null() => {
                detail.insert(key.clone(), value.clone());
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn signed_reasoning_survives_the_round_trip() {
        let mut details = Vec::new();
        for delta in [
            json!({"type": "reasoning.text", "text": "Let me ", "index": 0, "format": "anthropic-claude-v1"}),
            json!({"type": "reasoning.text", "text": "think.", "index": 0}),
            json!({"type": "reasoning.text", "signature": "sig", "index": 0}),
        ] {
            merge(&mut details, &delta);
        }
        assert_eq!(details.len(), 1);
        assert_eq!(details[0]["text"], "Let me think.");
        let sealed = seal(&details).expect("signed, so kept");
        assert_eq!(open(&sealed), Some(details));
        assert!(open("gAAAAB-openai-blob").is_none());
        assert!(seal(&[json!({"type": "reasoning.text", "text": "plain"})]).is_none());
    }
}
