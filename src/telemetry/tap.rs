//! [`Tap`]: how the served generation's record reaches the telemetry layer, which sits outside
//! the fallback loop and so never sees the meter's per-attempt accounting.

use crate::ledger::GenerationRecord;
use std::sync::{Arc, Mutex};

/// A request extension the meter fills with a copy of the generation record it finishes
/// (the served attempt's), for a layer further out to read once the response has ended.
/// Cheap to clone: every attempt's request carries the same tap.
///
/// ```
/// use switchyard::ledger::GenerationRecord;
/// use switchyard::telemetry::Tap;
/// let tap = Tap::new();
/// tap.clone().fill(&GenerationRecord { id: "gen-1".into(), ..Default::default() });
/// assert_eq!(&*tap.take().unwrap().id, "gen-1");
/// assert!(tap.take().is_none());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Tap(Arc<Mutex<Option<GenerationRecord>>>);

impl Tap {
    /// An empty tap.
    pub fn new() -> Tap {
        Tap::default()
    }

    /// Keeps a copy of `record` (a later record replaces an earlier one).
    pub fn fill(&self, record: &GenerationRecord) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(record.clone());
        }
    }

    /// The record, if the meter finished one; later calls find none.
    pub fn take(&self) -> Option<GenerationRecord> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}
