//! Hand features shared by the heuristic and the default scorer.
//!
//! Cheap byte/char scans only. Counts are log-compressed so a 100 KB prompt does not dominate.

/// Number of hand features.
pub const N_FEATURES: usize = 14;

/// Names of the hand features, in vector order (stored beside the weights).
pub const FEATURE_NAMES: [&str; N_FEATURES] = [
    "log_chars",
    "log_words",
    "log_lines",
    "log_numbers",
    "log_sentences",
    "log_questions",
    "digit_ratio",
    "math_op_ratio",
    "upper_ratio",
    "non_ascii_ratio",
    "punct_ratio",
    "mean_word_len",
    "has_code",
    "has_choices",
];

/// Bytes of the prompt that the embedding reads: the head and the tail, which bound latency.
const HEAD_BYTES: usize = 2048;
const TAIL_BYTES: usize = 1024;

/// The part of `prompt` that is embedded: all of it up to 3 KB, else the first 2 KB and the
/// last 1 KB (cut at char boundaries).
pub fn scored_text(prompt: &str) -> (&str, &str) {
    if prompt.len() <= HEAD_BYTES + TAIL_BYTES {
        return (prompt, "");
    }
    let mut h = HEAD_BYTES;
    while !prompt.is_char_boundary(h) {
        h -= 1;
    }
    let mut t = prompt.len() - TAIL_BYTES;
    while !prompt.is_char_boundary(t) {
        t += 1;
    }
    (&prompt[..h], &prompt[t..])
}

/// Computes the [`FEATURE_NAMES`] features of `prompt` into `out`.
pub fn hand_features(prompt: &str, out: &mut [f32; N_FEATURES]) {
    let (mut chars, mut words, mut lines, mut numbers, mut sentences, mut questions) =
        (0u32, 0u32, 1u32, 0u32, 0u32, 0u32);
    let (mut digits, mut ops, mut upper, mut non_ascii, mut punct, mut word_chars) =
        (0u32, 0u32, 0u32, 0u32, 0u32, 0u32);
    let (mut in_word, mut in_number) = (false, false);
    for c in prompt.chars() {
        chars += 1;
        if c.is_whitespace() {
            in_word = false;
            if c == '\n' {
                lines += 1;
            }
        } else {
            if !in_word {
                words += 1;
                in_word = true;
            }
            word_chars += 1;
        }
        if c.is_ascii_digit() {
            digits += 1;
            if !in_number {
                numbers += 1;
                in_number = true;
            }
        } else if c != '.' && c != ',' {
            in_number = false;
        }
        match c {
            '+' | '-' | '*' | '/' | '=' | '^' | '<' | '>' | '%' | '$' => ops += 1,
            '.' | '!' => sentences += 1,
            '?' => {
                sentences += 1;
                questions += 1;
            }
            _ => {}
        }
        if c.is_uppercase() {
            upper += 1;
        }
        if !c.is_ascii() {
            non_ascii += 1;
        }
        if c.is_ascii_punctuation() {
            punct += 1;
        }
    }
    let n = chars.max(1) as f32;
    let ln = |x: u32| (1.0 + x as f32).ln();
    let has_code = [
        "```", "def ", "function", "#include", "{\n", "};", "import ", "SELECT ",
    ]
    .iter()
    .any(|m| prompt.contains(m));
    let has_choices = prompt.contains("\nA.") && prompt.contains("\nB.")
        || prompt.contains("\nA)") && prompt.contains("\nB)");
    *out = [
        ln(chars),
        ln(words),
        ln(lines),
        ln(numbers),
        ln(sentences),
        ln(questions),
        digits as f32 / n,
        ops as f32 / n,
        upper as f32 / n,
        non_ascii as f32 / n,
        punct as f32 / n,
        word_chars as f32 / words.max(1) as f32,
        f32::from(u8::from(has_code)),
        f32::from(u8::from(has_choices)),
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        let mut f = [0.0; N_FEATURES];
        hand_features(
            "Tom has 3 apples and buys 12.5 more. How many?\nA. 1\nB. 2",
            &mut f,
        );
        assert!(
            (f[3] - (1.0f32 + 4.0).ln()).abs() < 1e-6,
            "numbers: {}",
            f[3]
        );
        assert!((f[5] - 2.0f32.ln()).abs() < 1e-6);
        assert_eq!(f[13], 1.0);
        assert_eq!(f[12], 0.0);
    }

    #[test]
    fn scored_text_bounds() {
        let long = "é".repeat(5000);
        let (h, t) = scored_text(&long);
        assert!(h.len() <= 2048 && t.len() <= 1024 && !t.is_empty());
        assert_eq!(scored_text("short"), ("short", ""));
    }
}
