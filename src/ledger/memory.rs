//! A bounded in-memory ledger.

use super::{GenerationRecord, MeterSink};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// Keeps the last `capacity` records in memory, evicting the oldest; nothing survives a restart.
#[derive(Debug)]
pub struct MemorySink {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    by_id: HashMap<Arc<str>, GenerationRecord>,
    /// Ids in arrival order, oldest first; each shares its text with the map's key (one copy
    /// of the id per record, not two).
    order: VecDeque<Arc<str>>,
}

impl MemorySink {
    /// A sink holding at most `capacity` records (at least one).
    pub fn new(capacity: usize) -> Self {
        MemorySink {
            capacity: capacity.max(1),
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

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The map stays consistent even if a holder panicked: every update is one insert/remove.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl MeterSink for MemorySink {
    fn record(&self, rec: GenerationRecord) {
        let mut inner = self.lock();
        let id = Arc::clone(&rec.id);
        if inner.by_id.insert(Arc::clone(&id), rec).is_none() {
            inner.order.push_back(id);
        }
        while inner.by_id.len() > self.capacity {
            match inner.order.pop_front() {
                Some(old) => {
                    inner.by_id.remove(&old);
                }
                None => break,
            }
        }
    }

    fn get(&self, id: &str) -> Option<GenerationRecord> {
        self.lock().by_id.get(id).cloned()
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
}
