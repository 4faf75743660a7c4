//! The default scorer: nearest labelled prompts in static-embedding space, plus relative length.
//!
//! A bank holds labelled prompts: their unit embedding, whether the cheap model failed on them
//! ("hard") and their log length. A new prompt is scored from its `K` most similar bank prompts
//! (cosine, weighted by `similarity⁴` so the closest count most):
//!
//! - **topic**: the smoothed share of those neighbours the cheap model failed, as a logit;
//! - **relative length**: the prompt's log length minus its neighbours' weighted mean — longer
//!   than similar prompts reads as harder (more steps, more constraints).
//!
//! The two parts are added with *unit weights on standardised values* (each divided by its
//! spread over the bank, measured leave-one-out), not with fitted weights. Fitted weights
//! follow the training domains (within MMLU length says little; within GSM8K it says most), and
//! equal weights on standardised predictors are the robust choice when the serving traffic is
//! a different domain ("improper linear models", Dawes 1979). See `docs/autoroute.md`.
//!
//! Brute force over the bank: 15,416 × 64 multiply-adds, tens of µs, no index needed at this size.
//!
//! ```
//! use switchyard::autoroute::scorer::{KnnBank, KnnScorer, Scorer, StaticEmbedder};
//!
//! let emb = StaticEmbedder::shipped();
//! let prompts = ["What is 2 + 2?", "Write a haiku about rain.", "Prove that √2 is irrational."];
//! let bank = KnnBank::build(emb, &prompts, &[false, false, true], 2);
//! let scorer = KnnScorer::new(emb, bank, "knn/example".into());
//! let p = scorer.score("Prove that there are infinitely many primes.");
//! assert!((0.0..=1.0).contains(&p));
//! ```

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use super::kmeans::spherical_kmeans;
use super::{Scorer, StaticEmbedder};

const MAGIC: &[u8; 4] = b"SYKN";
const FORMAT: u32 = 1;
/// Embeddings are unit vectors, so each component fits in `[-1, 1]`: one shared int8 scale.
const Q: f32 = 127.0;
/// The query's fixed-point scale: i16 components, so `i8 × i16` products summed over 64 (or
/// even 512) dimensions stay far inside i32.
const QUERY_SCALE: f32 = 16_384.0;
/// Largest embedding dimension a bank may have (the query lives on the stack).
const MAX_DIM: usize = 512;
/// Rows used to estimate the bank's leave-one-out spreads.
const LOO_SAMPLE: usize = 2000;
/// Bytes before the cluster offsets.
const HEADER: usize = 32;
/// Coarse index: about this many rows per cluster, at most this many clusters.
const ROWS_PER_CLUSTER: usize = 256;
const MAX_CLUSTERS: usize = 64;
const KMEANS_ROUNDS: usize = 8;

/// Why a kNN bank file did not load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadBank(pub String);

impl std::fmt::Display for BadBank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadBank {}

/// Labelled prompts for [`KnnScorer`], grouped by a coarse clustering so a query reads only
/// the clusters nearest to it.
#[derive(Clone)]
pub struct KnnBank {
    dim: usize,
    k: usize,
    /// `n × dim`, unit vectors on the int8 grid (`component × 127`, as the file stores them),
    /// widened to i16 so the dot product needs no unpacking. Rows are ordered by cluster.
    vectors: Vec<i16>,
    hard: Vec<bool>,
    log_chars: Vec<f32>,
    /// Cluster `c` holds rows `offsets[c]..offsets[c + 1]`.
    offsets: Vec<u32>,
    /// `clusters × dim` unit centroids on the same int8 grid.
    centroids: Vec<i16>,
    /// Leave-one-out spread over the bank of the topic logit and of the relative length.
    topic_sd: f32,
    rel_sd: f32,
}

impl std::fmt::Debug for KnnBank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnnBank")
            .field("rows", &self.len())
            .field("dim", &self.dim)
            .field("k", &self.k)
            .field("clusters", &self.clusters())
            .finish_non_exhaustive()
    }
}

/// `ln(1 + chars)`: the hand feature `log_chars`, without the other thirteen (this runs per
/// request).
fn log_chars(prompt: &str) -> f32 {
    (1.0 + prompt.chars().count() as f32).ln()
}

/// Integer dot product of a bank row and a fixed-point query, in eight i32 lanes that the
/// compiler keeps in two SSE2 registers (about 30% faster here than a plain reduction, which
/// it vectorises four lanes at a time). The shipped embedder's 64 dimensions take
/// [`dot_fixed`]; a dispatch over more sizes cost ≈ 6 instructions a row in the scan.
fn dot(row: &[i16], q: &[i16]) -> i32 {
    if let (Ok(r), Ok(q)) = (<&[i16; 64]>::try_from(row), <&[i16; 64]>::try_from(q)) {
        return dot_fixed(r, q);
    }
    let mut acc = [0i32; 8];
    let (rc, qc) = (row.chunks_exact(8), q.chunks_exact(8));
    let tail: i32 = rc
        .remainder()
        .iter()
        .zip(qc.remainder())
        .map(|(&x, &y)| i32::from(x) * i32::from(y))
        .sum();
    for (r, q) in rc.zip(qc) {
        for i in 0..8 {
            acc[i] += i32::from(r[i]) * i32::from(q[i]);
        }
    }
    acc.iter().sum::<i32>() + tail
}

/// [`dot`] at a length known when compiling: the loops unroll and the per-chunk bounds checks
/// and remainder go, ≈ 40 % fewer instructions per 64-dimension row than the general loop (a
/// row is ≈ 55 instructions; the scan is most of a score).
fn dot_fixed<const N: usize>(row: &[i16; N], q: &[i16; N]) -> i32 {
    const { assert!(N % 8 == 0) };
    let mut acc = [0i32; 8];
    for c in 0..N / 8 {
        for i in 0..8 {
            acc[i] += i32::from(row[c * 8 + i]) * i32::from(q[c * 8 + i]);
        }
    }
    acc.iter().sum::<i32>()
}

/// A unit vector in the query's fixed-point form.
fn to_query(v: &[f32], out: &mut [i16]) {
    for (o, x) in out.iter_mut().zip(v) {
        *o = (x.clamp(-1.0, 1.0) * QUERY_SCALE).round() as i16;
    }
}

thread_local! {
    /// Per-thread top-k heap, so scoring allocates nothing after the first call.
    static SCRATCH: RefCell<BinaryHeap<Reverse<(i32, u32)>>> = const { RefCell::new(BinaryHeap::new()) };
}

impl KnnBank {
    /// Embeds `prompts` and labels them (`hard[i]`: the cheap model failed on prompt `i`).
    /// `k` is the neighbourhood size.
    ///
    /// # Panics
    /// If `prompts` and `hard` differ in length or `k == 0`.
    pub fn build(emb: &StaticEmbedder, prompts: &[&str], hard: &[bool], k: usize) -> Self {
        assert_eq!(prompts.len(), hard.len(), "one label per prompt");
        assert!(k > 0, "k must be positive");
        let (dim, n) = (emb.dim(), prompts.len());
        assert!(dim <= MAX_DIM, "embedding dimension over {MAX_DIM}");
        // Unit vectors, rounded to the int8 grid the file keeps.
        let mut grid = vec![0.0f32; n * dim];
        for (p, row) in prompts.iter().zip(grid.chunks_exact_mut(dim)) {
            emb.embed_into(p, row);
            row.iter_mut()
                .for_each(|x| *x = (x.clamp(-1.0, 1.0) * Q).round() / Q);
        }
        let clusters = (n / ROWS_PER_CLUSTER).clamp(1, MAX_CLUSTERS);
        let (assign, cent) = spherical_kmeans(&grid, dim, clusters, KMEANS_ROUNDS);
        let clusters = cent.len() / dim;
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| (assign[i], i));
        let mut offsets = vec![0u32; clusters + 1];
        for &a in &assign {
            offsets[a + 1] += 1;
        }
        for c in 0..clusters {
            offsets[c + 1] += offsets[c];
        }
        let on_grid =
            |v: &[f32]| -> Vec<i16> { v.iter().map(|x| (x * Q).round() as i16).collect() };
        let lens: Vec<f32> = prompts.iter().map(|p| log_chars(p)).collect();
        let mut bank = Self {
            dim,
            k,
            vectors: order
                .iter()
                .flat_map(|&i| on_grid(&grid[i * dim..(i + 1) * dim]))
                .collect(),
            hard: order.iter().map(|&i| hard[i]).collect(),
            log_chars: order.iter().map(|&i| lens[i]).collect(),
            offsets,
            centroids: on_grid(&cent),
            topic_sd: 1.0,
            rel_sd: 1.0,
        };
        // The spreads are estimated on at most ~2,000 rows (a fixed stride): enough for two
        // standard deviations, and it keeps building a 15k bank to about a second.
        let stride = (n / LOO_SAMPLE).max(1);
        let parts: Vec<(f32, f32)> = (0..n)
            .step_by(stride)
            .map(|i| bank.parts(&bank.query_of(i), bank.log_chars[i], Some(i)))
            .collect();
        let sd = |f: fn(&(f32, f32)) -> f32| {
            let m = parts.len().max(1) as f64;
            let mean = parts.iter().map(|p| f64::from(f(p))).sum::<f64>() / m;
            let var = parts
                .iter()
                .map(|p| (f64::from(f(p)) - mean).powi(2))
                .sum::<f64>()
                / m;
            (var.sqrt() as f32).max(1e-3)
        };
        bank.topic_sd = sd(|p| p.0);
        bank.rel_sd = sd(|p| p.1);
        bank
    }

    /// Number of labelled prompts.
    pub fn len(&self) -> usize {
        self.hard.len()
    }

    /// Whether the bank is empty.
    pub fn is_empty(&self) -> bool {
        self.hard.is_empty()
    }

    /// Embedding dimension of the rows.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Neighbourhood size.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Number of clusters of the coarse index.
    pub fn clusters(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    fn row(&self, i: usize) -> &[i16] {
        &self.vectors[i * self.dim..(i + 1) * self.dim]
    }

    /// Bank row `i` as a query (for leave-one-out).
    fn query_of(&self, i: usize) -> Vec<i16> {
        let v: Vec<f32> = self.row(i).iter().map(|&x| f32::from(x) / Q).collect();
        let mut q = vec![0; self.dim];
        to_query(&v, &mut q);
        q
    }

    /// Rows a query reads: those of its nearest clusters, in order of centroid similarity,
    /// until at least `max(n / 8, 10 k)` rows (so small banks are read whole).
    fn probe(&self, q: &[i16], mut visit: impl FnMut(std::ops::Range<usize>)) {
        let want = (self.len() / 8).max(10 * self.k);
        let mut near = [(0i32, 0u16); MAX_CLUSTERS];
        let near = &mut near[..self.clusters()];
        for (c, (slot, cent)) in near
            .iter_mut()
            .zip(self.centroids.chunks_exact(self.dim))
            .enumerate()
        {
            *slot = (dot(cent, q), c as u16);
        }
        near.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut seen = 0;
        for &(_, c) in near.iter() {
            let (lo, hi) = (
                self.offsets[c as usize] as usize,
                self.offsets[c as usize + 1] as usize,
            );
            visit(lo..hi);
            seen += hi - lo;
            if seen >= want {
                break;
            }
        }
    }

    /// (topic logit, relative length) of a query, leaving bank row `exclude` out.
    fn parts(&self, q: &[i16], q_log_chars: f32, exclude: Option<usize>) -> (f32, f32) {
        SCRATCH.with(|s| {
            let mut top = s.borrow_mut();
            top.clear();
            // A min-heap of the k best so far: most rows are rejected by one comparison with
            // the worst kept similarity.
            let mut worst = i32::MIN;
            self.probe(q, |rows| {
                let block = &self.vectors[rows.start * self.dim..rows.end * self.dim];
                for (i, row) in rows.zip(block.chunks_exact(self.dim)) {
                    let d = dot(row, q);
                    if (top.len() == self.k && d <= worst) || Some(i) == exclude {
                        continue;
                    }
                    if top.len() < self.k {
                        top.push(Reverse((d, i as u32)));
                    } else if let Some(mut min) = top.peek_mut() {
                        *min = Reverse((d, i as u32));
                    }
                    worst = top.peek().map_or(i32::MIN, |Reverse((w, _))| *w);
                }
            });
            let k = top.len();
            if k == 0 {
                return (0.0, 0.0);
            }
            let (mut wsum, mut hard, mut len) = (0.0f32, 0.0f32, 0.0f32);
            for Reverse((d, i)) in top.drain() {
                let sim = d as f32 / (Q * QUERY_SCALE);
                let w = sim.max(0.0).powi(4) + 1e-6;
                wsum += w;
                hard += w * f32::from(u8::from(self.hard[i as usize]));
                len += w * self.log_chars[i as usize];
            }
            // Laplace smoothing on k pseudo-draws keeps the logit finite.
            let rate = (hard / wsum * k as f32 + 1.0) / (k as f32 + 2.0);
            ((rate / (1.0 - rate)).ln(), q_log_chars - len / wsum)
        })
    }

    fn combine(&self, (topic, rel): (f32, f32)) -> f32 {
        let z = topic / self.topic_sd + rel / self.rel_sd;
        1.0 / (1.0 + (-z).exp())
    }

    /// Scores of the bank's own prompts, each leaving itself out: what a new prompt like it
    /// would score. Calibrating on these avoids the self-match bias.
    pub fn leave_one_out_scores(&self) -> Vec<f32> {
        (0..self.len())
            .map(|i| self.combine(self.parts(&self.query_of(i), self.log_chars[i], Some(i))))
            .collect()
    }

    /// Serialises the bank: `SYKN`, format, rows, dim, k, clusters (u32 LE), the two spreads
    /// (f32 LE), cluster offsets (u32 LE), centroids and rows (int8), labels (u8), log lengths
    /// (f32 LE).
    pub fn to_bytes(&self) -> Vec<u8> {
        let n = self.len();
        let mut out = Vec::with_capacity(HEADER + n * (self.dim + 5));
        out.extend_from_slice(MAGIC);
        for v in [
            FORMAT,
            n as u32,
            self.dim as u32,
            self.k as u32,
            self.clusters() as u32,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.topic_sd.to_le_bytes());
        out.extend_from_slice(&self.rel_sd.to_le_bytes());
        self.offsets
            .iter()
            .for_each(|o| out.extend_from_slice(&o.to_le_bytes()));
        out.extend(self.centroids.iter().map(|&x| x as i8 as u8));
        out.extend(self.vectors.iter().map(|&x| x as i8 as u8));
        out.extend(self.hard.iter().map(|&h| u8::from(h)));
        self.log_chars
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
        out
    }

    /// Reads what [`KnnBank::to_bytes`] wrote.
    pub fn from_bytes(b: &[u8]) -> Result<Self, BadBank> {
        let bad = |m: &str| BadBank(format!("kNN bank: {m}"));
        if b.len() < HEADER || &b[..4] != MAGIC {
            return Err(bad("missing SYKN header"));
        }
        let u = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let f = |at: usize| f32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        if u(4) != FORMAT {
            return Err(bad(&format!("format {} (expected {FORMAT})", u(4))));
        }
        let (n, dim, k, c) = (
            u(8) as usize,
            u(12) as usize,
            u(16) as usize,
            u(20) as usize,
        );
        let body = &b[HEADER..];
        let expect = (c + 1) * 4 + c * dim + n * (dim + 5);
        if dim == 0 || dim > MAX_DIM || k == 0 || c == 0 || c > MAX_CLUSTERS || body.len() != expect
        {
            return Err(bad(&format!(
                "{} bytes after the header, expected {expect} for {n} rows of {dim} in {c} clusters",
                body.len()
            )));
        }
        let (offs, rest) = body.split_at((c + 1) * 4);
        let (cents, rest) = rest.split_at(c * dim);
        let (vecs, rest) = rest.split_at(n * dim);
        let (hard, lens) = rest.split_at(n);
        let offsets: Vec<u32> = offs
            .chunks_exact(4)
            .map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]))
            .collect();
        if offsets[0] != 0 || offsets[c] as usize != n || offsets.windows(2).any(|w| w[0] > w[1]) {
            return Err(bad("cluster offsets do not cover the rows in order"));
        }
        let widen = |v: &[u8]| -> Vec<i16> { v.iter().map(|&q| i16::from(q as i8)).collect() };
        Ok(Self {
            dim,
            k,
            vectors: widen(vecs),
            hard: hard.iter().map(|&h| h != 0).collect(),
            log_chars: lens
                .chunks_exact(4)
                .map(|x| f32::from_le_bytes([x[0], x[1], x[2], x[3]]))
                .collect(),
            offsets,
            centroids: widen(cents),
            topic_sd: f(24),
            rel_sd: f(28),
        })
    }
}

/// [`KnnBank`] neighbours of a prompt's static embedding → P(the cheap tier fails).
#[derive(Debug, Clone)]
pub struct KnnScorer {
    embedder: &'static StaticEmbedder,
    bank: Arc<KnnBank>,
    name: String,
}

impl KnnScorer {
    /// Scores with `bank`, whose vectors must come from `embedder`.
    ///
    /// # Panics
    /// If the bank's dimension is not the embedder's.
    pub fn new(
        embedder: &'static StaticEmbedder,
        bank: impl Into<Arc<KnnBank>>,
        name: String,
    ) -> Self {
        let bank = bank.into();
        assert_eq!(bank.dim, embedder.dim(), "bank does not fit the embedder");
        Self {
            embedder,
            bank,
            name,
        }
    }

    /// The bank this scorer reads.
    pub fn bank(&self) -> &KnnBank {
        &self.bank
    }
}

impl Scorer for KnnScorer {
    fn name(&self) -> &str {
        &self.name
    }
    fn score(&self, prompt: &str) -> f32 {
        let dim = self.bank.dim;
        let (mut v, mut q) = ([0.0f32; MAX_DIM], [0i16; MAX_DIM]);
        self.embedder.embed_into(prompt, &mut v[..dim]);
        to_query(&v[..dim], &mut q[..dim]);
        self.bank
            .combine(self.bank.parts(&q[..dim], log_chars(prompt), None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bank() -> KnnBank {
        let prompts = [
            "Solve for x: 3x + 7 = 22, then compute x squared minus four.",
            "A train travels 120 km in 1.5 hours. What is its average speed in km per hour?",
            "Compute the derivative of x^3 sin(x) and evaluate it at x = 2.",
            "Write a friendly two-line greeting for a birthday card.",
            "Say hello to my friend Sam in a cheerful way.",
            "Suggest a name for a golden retriever puppy.",
        ];
        KnnBank::build(
            StaticEmbedder::shipped(),
            &prompts,
            &[true, true, true, false, false, false],
            3,
        )
    }

    #[test]
    fn neighbours_carry_their_labels() {
        let s = KnnScorer::new(StaticEmbedder::shipped(), bank(), "knn/test".into());
        let math = s.score("Compute the integral of x^2 cos(x) from 0 to 3 and solve for x.");
        let chat = s.score("Write a cheerful greeting for my friend's birthday.");
        assert!(math > chat, "math {math} vs chat {chat}");
    }

    #[test]
    fn bytes_round_trip_exactly() {
        let b = bank();
        let back = KnnBank::from_bytes(&b.to_bytes()).unwrap();
        assert_eq!(back.vectors, b.vectors);
        assert_eq!(back.offsets, b.offsets);
        assert_eq!(back.centroids, b.centroids);
        assert_eq!(back.hard, b.hard);
        assert_eq!(back.log_chars, b.log_chars);
        assert_eq!(
            (back.topic_sd, back.rel_sd, back.k),
            (b.topic_sd, b.rel_sd, b.k)
        );
        assert_eq!(back.leave_one_out_scores(), b.leave_one_out_scores());
    }

    #[test]
    fn truncated_or_foreign_files_are_refused() {
        let bytes = bank().to_bytes();
        assert!(KnnBank::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        assert!(KnnBank::from_bytes(b"SYQ8rest").is_err());
        assert!(KnnBank::from_bytes(&[]).is_err());
    }

    #[test]
    fn longer_than_its_neighbours_scores_higher() {
        let s = KnnScorer::new(StaticEmbedder::shipped(), bank(), "knn/test".into());
        let short = "A train travels 120 km in 1.5 hours. What is its speed?";
        let long = "A train travels 120 km in 1.5 hours, stops for 20 minutes, then travels 80 km \
                    more in 50 minutes. A second train leaves 30 minutes later at 90 km per hour. \
                    What is the first train's average speed, and when does the second catch up?";
        assert!(s.score(long) > s.score(short));
    }

    #[test]
    fn log_chars_is_the_hand_feature() {
        for p in ["", "hi", "¿Qué tal? 日本語 🎉", &"word ".repeat(999)] {
            let mut f = [0.0; super::super::N_FEATURES];
            super::super::hand_features(p, &mut f);
            assert_eq!(log_chars(p), f[0], "{p:?}");
        }
    }

    #[test]
    fn dot_handles_any_length() {
        // The general loop, the fixed length, and lengths just off it.
        for n in [1, 13, 63, 64, 65, 256, 512] {
            let a: Vec<i16> = (0..n).map(|i| (i % 255) as i16 - 127).collect();
            let b: Vec<i16> = (0..n).map(|i| ((i * 37) % 256) as i16 - 128).collect();
            let want: i32 = a
                .iter()
                .zip(&b)
                .map(|(&x, &y)| i32::from(x) * i32::from(y))
                .sum();
            assert_eq!(dot(&a, &b), want, "{n}");
        }
    }

    #[test]
    fn fixed_point_dot_matches_float() {
        let a: Vec<f32> = (0..64).map(|i| ((i as f32) * 0.37).sin() / 4.0).collect();
        let b: Vec<f32> = (0..64).map(|i| ((i as f32) * 0.11).cos() / 4.0).collect();
        let want: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        let row: Vec<i16> = a.iter().map(|x| (x * Q).round() as i16).collect();
        let mut q = vec![0; 64];
        to_query(&b, &mut q);
        let got = dot(&row, &q) as f32 / (Q * QUERY_SCALE);
        assert!((got - want).abs() < 0.01, "{got} vs {want}");
    }
}
