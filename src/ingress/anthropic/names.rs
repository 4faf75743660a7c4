//! The catalogue slugs an Anthropic model name may stand for.
//!
//! Claude Code sends Anthropic's own names: `claude-sonnet-4-5`, dated ids
//! (`claude-sonnet-4-5-20250929`), `-latest` and context suffixes (`claude-sonnet-4-5[1m]`).
//! OpenRouter's slugs put the vendor first and dots in versions (`anthropic/claude-sonnet-4.5`).

/// The names to try for `name`, most specific first: as sent, without a `[…]` suffix, under
/// `anthropic/`, then without its date or `-latest` and with dotted versions.
///
/// ```
/// use switchyard::ingress::anthropic::model_name_candidates;
/// let names = model_name_candidates("claude-sonnet-4-5-20250929[1m]");
/// assert_eq!(names.last().map(String::as_str), Some("anthropic/claude-sonnet-4.5"));
/// assert!(model_name_candidates("claude-3-5-haiku-latest").contains(&"anthropic/claude-3.5-haiku".to_owned()));
/// ```
pub fn candidates(name: &str) -> Vec<String> {
    let mut out = vec![name.to_owned()];
    let mut push = |n: String| {
        if !out.contains(&n) {
            out.push(n);
        }
    };
    let bare = name.split_once('[').map_or(name, |(b, _)| b).trim();
    push(bare.to_owned());
    if bare.contains('/') {
        return out;
    }
    push(format!("anthropic/{bare}"));
    let undated = strip_date(bare.trim_end_matches("-latest"));
    push(format!("anthropic/{undated}"));
    push(format!("anthropic/{}", dotted(undated)));
    out
}

/// Without a trailing `-YYYYMMDD`.
fn strip_date(name: &str) -> &str {
    match name.rsplit_once('-') {
        Some((head, date)) if date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()) => head,
        _ => name,
    }
}

/// Single-digit version parts joined with dots: `claude-3-5-haiku` → `claude-3.5-haiku`.
fn dotted(name: &str) -> String {
    let parts: Vec<&str> = name.split('-').collect();
    let mut out = String::with_capacity(name.len());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            let digit = |s: &str| s.len() == 1 && s.bytes().all(|b| b.is_ascii_digit());
            out.push(if digit(parts[i - 1]) && digit(part) {
                '.'
            } else {
                '-'
            });
        }
        out.push_str(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_names_reach_openrouter_slugs() {
        for (name, slug) in [
            ("claude-sonnet-4-5", "anthropic/claude-sonnet-4.5"),
            ("claude-sonnet-4-5-20250929", "anthropic/claude-sonnet-4.5"),
            ("claude-opus-4-1-20250805", "anthropic/claude-opus-4.1"),
            ("claude-sonnet-4-20250514", "anthropic/claude-sonnet-4"),
            ("claude-3-7-sonnet-latest", "anthropic/claude-3.7-sonnet"),
            ("claude-haiku-4-5[1m]", "anthropic/claude-haiku-4.5"),
        ] {
            assert!(
                candidates(name).contains(&slug.to_owned()),
                "{name}: {:?}",
                candidates(name)
            );
        }
        assert_eq!(candidates("openai/gpt-4o"), ["openai/gpt-4o"]);
    }
}
