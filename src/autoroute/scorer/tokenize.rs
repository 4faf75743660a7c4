//! A BERT-style WordPiece tokenizer (lower-casing, punctuation splitting, greedy longest match).
//!
//! Written for the potion-base-2M vocabulary (bge-base-en-v1.5's, 29,528 entries). It follows the
//! `BertNormalizer` + `BertPreTokenizer` + `WordPiece` pipeline of that model's `tokenizer.json`
//! with one simplification: accents are stripped only when they arrive as combining marks
//! (there is no NFD decomposition table here), so `é` precomposed stays `é` and usually maps to
//! `[UNK]`, which the embedder skips.

use std::collections::HashMap;

/// Longest input word that is looked up at all; longer words are unknown (as in BERT).
const MAX_WORD_CHARS: usize = 100;

/// WordPiece vocabulary and lookup.
#[derive(Debug)]
pub struct WordPiece {
    vocab: HashMap<Box<str>, u32>,
    /// Longest vocabulary entry in bytes (without the `##` prefix), to bound the greedy search.
    max_piece_bytes: usize,
}

impl WordPiece {
    /// Builds the tokenizer from one token per line; the line number is the token id.
    pub fn from_lines(vocab: &str) -> Self {
        let mut map = HashMap::with_capacity(32_768);
        let mut max_piece_bytes = 1;
        for (id, tok) in vocab.lines().enumerate() {
            let bare = tok.strip_prefix("##").unwrap_or(tok);
            max_piece_bytes = max_piece_bytes.max(bare.len());
            map.insert(Box::<str>::from(tok), id as u32);
        }
        Self {
            vocab: map,
            max_piece_bytes,
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.vocab.len()
    }

    /// Whether the vocabulary is empty.
    pub fn is_empty(&self) -> bool {
        self.vocab.is_empty()
    }

    /// Id of one exact vocabulary entry.
    pub fn id(&self, token: &str) -> Option<u32> {
        self.vocab.get(token).copied()
    }

    /// Calls `f` with the id of every known word piece of `text`, in order; unknown words are
    /// skipped. `buf` is scratch space, reused across calls to avoid allocation.
    pub fn for_each_id(&self, text: &str, buf: &mut String, mut f: impl FnMut(u32)) {
        let mut word = String::with_capacity(32);
        for c in text.chars() {
            if is_control(c) {
                continue;
            }
            if c.is_whitespace() {
                self.word_pieces(&word, buf, &mut f);
                word.clear();
            } else if is_punctuation(c) || is_cjk(c) {
                self.word_pieces(&word, buf, &mut f);
                word.clear();
                for l in c.to_lowercase() {
                    word.push(l);
                }
                self.word_pieces(&word, buf, &mut f);
                word.clear();
            } else if ('\u{300}'..='\u{36f}').contains(&c) {
                // A combining accent: BERT strips these after NFD.
            } else {
                for l in c.to_lowercase() {
                    word.push(l);
                }
            }
        }
        self.word_pieces(&word, buf, &mut f);
    }

    fn word_pieces(&self, word: &str, buf: &mut String, f: &mut impl FnMut(u32)) {
        if word.is_empty() || word.chars().count() > MAX_WORD_CHARS {
            return;
        }
        // Greedy longest match first; if any position has no match the whole word is unknown.
        let mut ids = [0u32; MAX_WORD_CHARS];
        let mut n = 0;
        let mut start = 0;
        while start < word.len() {
            let mut end = word.len().min(start + self.max_piece_bytes);
            while !word.is_char_boundary(end) {
                end -= 1;
            }
            let mut found = None;
            while end > start {
                buf.clear();
                if start > 0 {
                    buf.push_str("##");
                }
                buf.push_str(&word[start..end]);
                if let Some(&id) = self.vocab.get(buf.as_str()) {
                    found = Some(id);
                    break;
                }
                end -= 1;
                while !word.is_char_boundary(end) {
                    end -= 1;
                }
            }
            match found {
                Some(id) if n < ids.len() => {
                    ids[n] = id;
                    n += 1;
                    start = end;
                }
                _ => return,
            }
        }
        ids[..n].iter().for_each(|&id| f(id));
    }
}

fn is_control(c: char) -> bool {
    c == '\0' || c == '\u{fffd}' || (c.is_control() && !c.is_whitespace())
}

fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || ('\u{2000}'..='\u{206f}').contains(&c)
        || ('\u{3000}'..='\u{303f}').contains(&c)
        || ('\u{ff01}'..='\u{ff0f}').contains(&c)
        || matches!(c, '¡' | '¿' | '«' | '»' | '§' | '¶' | '·')
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F | 0x2B820..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(wp: &WordPiece, s: &str) -> Vec<u32> {
        let mut v = Vec::new();
        wp.for_each_id(s, &mut String::new(), |id| v.push(id));
        v
    }

    #[test]
    fn greedy_longest_match_and_punctuation() {
        let wp = WordPiece::from_lines("[UNK]\nhello\nwor\n##ld\n##l\n##d\n,\n!\nworld");
        assert_eq!(toks(&wp, "Hello, WORLD!"), vec![1, 6, 8, 7]);
        assert_eq!(toks(&wp, "worlld"), vec![2, 4, 3]);
        // An unmatched tail makes the whole word unknown (skipped).
        assert_eq!(toks(&wp, "hello worx"), vec![1]);
    }
}
