//! Static (model2vec-style) embeddings: tokenize, look up one vector per token, mean-pool,
//! L2-normalise.
//!
//! The shipped table is potion-base-2M (MinishLab, MIT), 29,528 × 64, quantised here to int8 with
//! one f32 scale per row (2.0 MB instead of 7.6 MB; see `assets/autoroute/README.md`).

use std::sync::OnceLock;

use super::features::scored_text;
use super::tokenize::WordPiece;

const VOCAB: &str = include_str!("../../../assets/autoroute/potion-base-2M.vocab.txt");
const TABLE: &[u8] = include_bytes!("../../../assets/autoroute/potion-base-2M.q8");

/// Magic bytes at the start of a `.q8` table.
const Q8_MAGIC: &[u8; 4] = b"SYQ8";

/// Token-vector table plus its tokenizer.
#[derive(Debug)]
pub struct StaticEmbedder {
    tokenizer: WordPiece,
    dim: usize,
    scales: Vec<f32>,
    table: Vec<i8>,
}

/// Why a `.q8` table did not load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadTable(pub &'static str);

impl std::fmt::Display for BadTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bad embedding table: {}", self.0)
    }
}

impl std::error::Error for BadTable {}

impl StaticEmbedder {
    /// The compiled-in potion-base-2M embedder, loaded on first use (no file or network access).
    ///
    /// # Panics
    /// Only if the compiled-in table is corrupt, which the crate's tests rule out.
    pub fn shipped() -> &'static Self {
        static EMB: OnceLock<StaticEmbedder> = OnceLock::new();
        EMB.get_or_init(|| {
            #[allow(clippy::expect_used)]
            Self::from_parts(VOCAB, TABLE).expect("shipped potion-base-2M table is valid")
        })
    }

    /// Loads a vocabulary (one token per line) and a `.q8` table:
    /// `SYQ8`, rows: u32 LE, dim: u32 LE, rows × f32 LE scales, rows × dim i8.
    pub fn from_parts(vocab: &str, q8: &[u8]) -> Result<Self, BadTable> {
        let tokenizer = WordPiece::from_lines(vocab);
        let rd = |at: usize| -> Result<[u8; 4], BadTable> {
            q8.get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .ok_or(BadTable("truncated header"))
        };
        if &rd(0)? != Q8_MAGIC {
            return Err(BadTable("missing SYQ8 magic"));
        }
        let rows = u32::from_le_bytes(rd(4)?) as usize;
        let dim = u32::from_le_bytes(rd(8)?) as usize;
        if rows != tokenizer.len() {
            return Err(BadTable("row count differs from vocabulary size"));
        }
        let body = &q8[12..];
        if body.len() != rows * 4 + rows * dim {
            return Err(BadTable("size does not match rows × dim"));
        }
        let (s, t) = body.split_at(rows * 4);
        let scales = s
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let table = t.iter().map(|&b| b as i8).collect();
        Ok(Self {
            tokenizer,
            dim,
            scales,
            table,
        })
    }

    /// Embedding dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Writes the L2-normalised mean token vector of `prompt`'s scored text into `out`
    /// (`out.len() == self.dim()`); all zeros if no token is known.
    pub fn embed_into(&self, prompt: &str, out: &mut [f32]) {
        debug_assert_eq!(out.len(), self.dim);
        out.iter_mut().for_each(|x| *x = 0.0);
        let mut n = 0u32;
        let mut buf = String::with_capacity(64);
        let (head, tail) = scored_text(prompt);
        for part in [head, tail] {
            self.tokenizer.for_each_id(part, &mut buf, |id| {
                let id = id as usize;
                // Skip [PAD] [UNK] [CLS] [SEP] [MASK], ids 0–4 in BERT-style vocabularies.
                if id < 5 {
                    return;
                }
                let row = &self.table[id * self.dim..(id + 1) * self.dim];
                let s = self.scales[id];
                out.iter_mut()
                    .zip(row)
                    .for_each(|(a, &q)| *a += s * f32::from(q));
                n += 1;
            });
        }
        // The mean's 1/n cancels in the L2 normalisation below.
        if n == 0 {
            return;
        }
        let norm = out.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            out.iter_mut().for_each(|x| *x /= norm);
        }
    }
}
