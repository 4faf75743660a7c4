//! A bounded in-memory ledger.
//!
//! The bound that matters to an operator is memory, not a count: a record's size varies with
//! its model slug, ids, labels and attempts, so a count bound is either wasteful or unsafe.
//! [`MemorySink::with_byte_limit`] keeps the newest records whose estimated heap size
//! ([`record_bytes`]) fits the limit; [`MemorySink::new`] bounds the count instead.
//!
//! ```
//! use switchyard::ledger::{GenerationRecord, MemorySink, MeterSink};
//!
//! let sink = MemorySink::with_byte_limit(32 * 1024 * 1024);
//! sink.record(GenerationRecord { id: "gen-1".into(), ..Default::default() });
//! assert!(sink.get("gen-1").is_some());
//! assert!(sink.bytes() > 0 && sink.bytes() <= 32 * 1024 * 1024);
//! ```

use super::{AttemptRecord, GenerationRecord, MeterSink};
use std::collections::{HashMap, VecDeque};
use std::mem::size_of;
use std::sync::{Arc, Mutex, MutexGuard};

/// The default bound of the in-memory ledger: 32 MiB of records.
pub const DEFAULT_MEMORY_BYTES: usize = 32 * 1024 * 1024;

/// What the allocator adds to each heap block: its header, and the rounding of the block to
/// 16 bytes (glibc's granularity).
const ALLOC_GRANULE: usize = 16;

/// Per-record bookkeeping outside the record's own blocks: the map's bucket (shared id and
/// boxed entry, with the table's load-factor slack and control byte) and the queue's slot.
const ENTRY_OVERHEAD: usize =
    (size_of::<Arc<str>>() + size_of::<Entry>()) * 8 / 7 + 1 + size_of::<Arc<str>>();

/// Keeps the newest records in memory within a record count and a byte budget, evicting the
/// oldest; nothing survives a restart.
#[derive(Debug)]
pub struct MemorySink {
    max_records: usize,
    max_bytes: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Records boxed: the table then grows by 32-byte buckets, not by the record's ~600 bytes
    /// (a hash table doubles its capacity, so most of an inline table would be empty slots).
    by_id: HashMap<Arc<str>, Entry>,
    /// Ids in arrival order, oldest first; each shares its text with the map's key (one copy
    /// of the id per record, not two).
    order: VecDeque<Arc<str>>,
    /// Sum of the held records' [`record_bytes`].
    bytes: usize,
}

#[derive(Debug)]
struct Entry {
    record: Box<GenerationRecord>,
    bytes: usize,
}

/// The heap a block of `len` bytes takes, allocator overhead included; nothing for `0`.
fn block(len: usize) -> usize {
    if len == 0 {
        0
    } else {
        len.next_multiple_of(ALLOC_GRANULE) + ALLOC_GRANULE
    }
}

/// The estimated memory one record holds in a [`MemorySink`]: the boxed struct, a heap block
/// for each string and for the attempts (allocator overhead included), the shared id and the
/// sink's per-entry bookkeeping.
pub fn record_bytes(rec: &GenerationRecord) -> usize {
    let opt = |s: &Option<String>| s.as_ref().map_or(0, |s| block(s.len()));
    let strings = block(rec.id.len())
        + block(rec.model.len())
        + block(rec.provider_name.len())
        + block(rec.provider_slug.len())
        + block(rec.upstream_model.len())
        + opt(&rec.upstream_id)
        + opt(&rec.api_key_hash)
        + opt(&rec.label)
        + opt(&rec.finish_reason)
        + opt(&rec.native_finish_reason)
        + opt(&rec.router)
        + opt(&rec.session_id)
        + opt(&rec.external_user)
        + opt(&rec.strategy)
        + opt(&rec.scorer);
    let attempts = block(rec.attempts.len() * size_of::<AttemptRecord>())
        + rec
            .attempts
            .iter()
            .map(|a| block(a.provider.len()) + block(a.model.len()))
            .sum::<usize>();
    // The map's key: an `Arc<str>` block holds two counts and the id's text.
    let shared_id = block(2 * size_of::<usize>() + rec.id.len());
    block(size_of::<GenerationRecord>()) + strings + attempts + shared_id + ENTRY_OVERHEAD
}

impl MemorySink {
    /// A sink holding at most `capacity` records (at least one), whatever their size.
    pub fn new(capacity: usize) -> Self {
        MemorySink {
            max_records: capacity.max(1),
            max_bytes: usize::MAX,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// A sink holding the newest records whose [`record_bytes`] add up to at most `max_bytes`
    /// (the newest record is always kept, however large).
    pub fn with_byte_limit(max_bytes: usize) -> Self {
        MemorySink {
            max_records: usize::MAX,
            max_bytes,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    /// True when no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The estimated bytes the held records take ([`record_bytes`] summed).
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The map stays consistent even if a holder panicked: every update is one insert/remove.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl MeterSink for MemorySink {
    fn record(&self, rec: GenerationRecord) {
        let size = record_bytes(&rec);
        let mut inner = self.lock();
        let id = Arc::clone(&rec.id);
        inner.bytes += size;
        let entry = Entry {
            record: Box::new(rec),
            bytes: size,
        };
        match inner.by_id.insert(Arc::clone(&id), entry) {
            Some(old) => inner.bytes -= old.bytes,
            None => inner.order.push_back(id),
        }
        while inner.by_id.len() > self.max_records
            || (inner.bytes > self.max_bytes && inner.by_id.len() > 1)
        {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            if let Some(evicted) = inner.by_id.remove(&old) {
                inner.bytes -= evicted.bytes;
            }
        }
    }

    fn get(&self, id: &str) -> Option<GenerationRecord> {
        self.lock().by_id.get(id).map(|e| (*e.record).clone())
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str) -> GenerationRecord {
        GenerationRecord {
            id: id.into(),
            ..GenerationRecord::default()
        }
    }

    #[test]
    fn evicts_the_oldest() {
        let sink = MemorySink::new(2);
        sink.record(rec("a"));
        sink.record(rec("b"));
        sink.record(rec("a"));
        sink.record(rec("c"));
        assert_eq!(sink.len(), 2);
        assert!(sink.get("a").is_none());
        assert!(sink.get("b").is_some() && sink.get("c").is_some());
    }

    #[test]
    fn sizes_count_every_string_and_attempt() {
        let small = record_bytes(&rec("gen-1"));
        let big = GenerationRecord {
            model: "m".repeat(100).into(),
            session_id: Some("s".repeat(50)),
            attempts: vec![AttemptRecord {
                provider: "p".repeat(15).into(),
                model: "u".repeat(15).into(),
                status: 503,
                latency_ms: 1,
            }],
            ..rec("gen-1")
        };
        // Each string and the attempts list is a heap block of its own (rounded, plus a
        // header); the empty ones take none.
        assert_eq!(
            record_bytes(&big),
            small + block(100) + block(50) + block(size_of::<AttemptRecord>()) + 2 * block(15)
        );
        assert_eq!((block(0), block(1), block(16), block(17)), (0, 32, 32, 48));
    }

    #[test]
    fn byte_limit_evicts_oldest_until_the_records_fit() {
        let one = record_bytes(&rec("gen-00"));
        // Room for three small records, not four.
        let sink = MemorySink::with_byte_limit(one * 3 + one / 2);
        for i in 0..10 {
            sink.record(rec(&format!("gen-{i:02}")));
        }
        assert_eq!(sink.len(), 3);
        assert_eq!(sink.bytes(), one * 3);
        assert!(sink.get("gen-06").is_none());
        assert!(
            ["gen-07", "gen-08", "gen-09"]
                .iter()
                .all(|id| sink.get(id).is_some())
        );

        // One large record displaces as many small ones as it needs.
        let large = GenerationRecord {
            model: "x".repeat(one * 2).into(),
            ..rec("gen-10")
        };
        sink.record(large);
        assert!(sink.bytes() <= one * 3 + one / 2, "{}", sink.bytes());
        assert!(sink.get("gen-10").is_some() && sink.get("gen-09").is_none());
        assert_eq!(sink.len(), 1);

        // Replacing a record with the same id counts its new size once.
        sink.record(rec("gen-10"));
        assert_eq!((sink.len(), sink.bytes()), (1, one));
    }

    #[test]
    fn the_newest_record_stays_even_over_the_limit() {
        let sink = MemorySink::with_byte_limit(10);
        sink.record(rec("gen-a"));
        sink.record(rec("gen-b"));
        assert_eq!(sink.len(), 1);
        assert!(sink.get("gen-b").is_some());
    }

    #[test]
    fn default_bound_holds_tens_of_thousands_of_typical_records() {
        let typical = GenerationRecord {
            id: "gen-1765112345-AbCdEfGhIjKlMnOpQrSt".into(),
            model: "anthropic/claude-sonnet-4".into(),
            provider_name: "Anthropic".into(),
            provider_slug: "anthropic".into(),
            upstream_model: "claude-sonnet-4-20250514".into(),
            upstream_id: Some("msg_01XFDUDYJgAACzvnptvVoYEL".into()),
            finish_reason: Some("stop".into()),
            native_finish_reason: Some("end_turn".into()),
            strategy: Some("direct".into()),
            attempts: vec![AttemptRecord {
                provider: "anthropic".into(),
                model: "claude-sonnet-4-20250514".into(),
                status: 200,
                latency_ms: 420,
            }],
            ..GenerationRecord::default()
        };
        let per_record = record_bytes(&typical);
        let held = DEFAULT_MEMORY_BYTES / per_record;
        assert!((15_000..60_000).contains(&held), "{per_record} B → {held}");
    }
}
