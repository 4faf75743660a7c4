//! [`Tap`]: how the served generation's figures reach the telemetry layer, which sits outside
//! the fallback loop and so never sees the meter's per-attempt accounting.

use crate::ledger::GenerationRecord;
use std::sync::{Arc, Mutex};

/// What the telemetry layer takes from the served generation's record: only the figures it
/// reports, so filling the tap copies two shared strings and a few numbers, not the record.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Served {
    /// The generation id.
    pub id: Arc<str>,
    /// The model served.
    pub model: Arc<str>,
    /// Slug of the provider that served.
    pub provider: Arc<str>,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// What the key was charged, in picodollars.
    pub cost_picodollars: i64,
    /// Milliseconds from arrival to the first content token.
    pub ttft_ms: u64,
    /// The stream ended with an error chunk.
    pub errored: bool,
    /// The client went away before the end.
    pub cancelled: bool,
}

impl Served {
    /// The figures of `record`.
    pub fn of(record: &GenerationRecord) -> Served {
        Served {
            id: record.id.clone(),
            model: record.model.clone(),
            provider: record.provider_slug.clone(),
            input_tokens: record.tokens_prompt,
            output_tokens: record.tokens_completion,
            cost_picodollars: record.total_cost,
            ttft_ms: record.ttft_ms,
            errored: record.finish_reason.as_deref() == Some("error"),
            cancelled: record.cancelled,
        }
    }
}

/// A request extension the meter fills with the figures of the generation record it finishes
/// (the served attempt's), for a layer further out to read once the response has ended.
/// Cheap to clone: every attempt's request carries the same tap.
///
/// ```
/// use switchyard::ledger::GenerationRecord;
/// use switchyard::telemetry::Tap;
/// let tap = Tap::new();
/// tap.clone().fill(&GenerationRecord { id: "gen-1".into(), tokens_prompt: 3, ..Default::default() });
/// let served = tap.take().unwrap();
/// assert_eq!((&*served.id, served.input_tokens), ("gen-1", 3));
/// assert!(tap.take().is_none());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Tap(Arc<Mutex<Option<Served>>>);

impl Tap {
    /// An empty tap.
    pub fn new() -> Tap {
        Tap::default()
    }

    /// Keeps the figures of `record` (a later record replaces an earlier one).
    pub fn fill(&self, record: &GenerationRecord) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(Served::of(record));
        }
    }

    /// The figures, if the meter finished a record; later calls find none.
    pub fn take(&self) -> Option<Served> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}
