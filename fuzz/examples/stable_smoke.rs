//! The fuzz targets as a bounded random-input loop on stable Rust, for machines without a
//! nightly toolchain: inputs are the seeds under `fuzz/seeds/<target>/`, mutated at random
//! (byte flips, insertions of syntax characters, deletions, splices). A panic saves the input
//! under `fuzz/artifacts/<target>/` and exits non-zero.
//!
//! ```text
//! cargo run --release --manifest-path fuzz/Cargo.toml --no-default-features \
//!     --example stable_smoke -- [seconds per target] [target…]
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("parse_request", switchyard_fuzz::parse_request),
    ("sse_decoder", switchyard_fuzz::sse_decoder),
    ("config_parse", switchyard_fuzz::config_parse),
    ("anthropic_stream", switchyard_fuzz::anthropic_stream),
    ("gemini_stream", switchyard_fuzz::gemini_stream),
];

/// Tokens worth inserting: the syntax the parsers branch on.
const TOKENS: &[&[u8]] = &[
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b"\n",
    b"\r",
    b"\r\n",
    b"\n\n",
    b"data: ",
    b"event: ",
    b": ",
    b"[DONE]",
    b"null",
    b"true",
    b"-1",
    b"1e309",
    b"\\u0000",
    b"\xff",
    b"\"model\"",
    b"\"models\"",
    b"\"stream\"",
    b"\"provider\"",
    b"\"messages\"",
    b"[[providers]]",
    b"[[models]]",
    b"[[models.endpoints]]",
    b"slug = ",
    b"=",
    b"'''",
    b"0.0000001",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], input: &mut Vec<u8>) {
    for _ in 0..=rng.below(8) {
        let at = rng.below(input.len() + 1);
        match rng.below(6) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                input.splice(at..at, t.iter().copied());
            }
            2 if !input.is_empty() => {
                let end = (at + rng.below(16)).min(input.len());
                input.drain(at.min(end)..end);
            }
            3 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                let to = (from + rng.below(64)).min(other.len());
                input.splice(at..at, other[from..to].iter().copied());
            }
            4 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] = rng.next() as u8;
            }
            _ => {
                let end = (at + rng.below(32)).min(input.len());
                let piece = input[at..end].to_vec();
                input.splice(at..at, piece);
            }
        }
    }
    input.truncate(1 << 16);
}

fn seeds(dir: &Path) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read(e.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    if out.is_empty() {
        out.push(Vec::new());
    }
    out
}

fn main() {
    let mut args = std::env::args().skip(1);
    let secs: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(20);
    let only: Vec<String> = args.collect();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // Quiet panics: they are reported below with the input that caused them.
    std::panic::set_hook(Box::new(|_| {}));
    let mut failed = false;
    for (name, target) in TARGETS {
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        let seeds = seeds(&root.join("seeds").join(name));
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id()));
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut runs = 0u64;
        let mut crashed = false;
        for s in &seeds {
            runs += 1;
            target(s);
        }
        while Instant::now() < deadline {
            let mut input = seeds[rng.below(seeds.len())].clone();
            mutate(&mut rng, &seeds, &mut input);
            runs += 1;
            let result = std::panic::catch_unwind(|| target(&input));
            if let Err(payload) = result {
                let msg = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                let dir = root.join("artifacts").join(name);
                let _ = std::fs::create_dir_all(&dir);
                let file = dir.join(format!("crash-stable-{runs}"));
                let _ = std::fs::write(&file, &input);
                eprintln!(
                    "{name}: CRASH after {runs} runs: {msg}\n  input saved to {}",
                    file.display()
                );
                crashed = true;
                break;
            }
        }
        if crashed {
            failed = true;
        } else {
            println!("{name}: {runs} inputs in {secs} s, no crash");
        }
    }
    if failed {
        std::process::exit(1);
    }
}
