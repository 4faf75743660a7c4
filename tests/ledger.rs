//! The generation ledger's sinks under concurrency and across restarts.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use switchyard::ledger::{self, GenerationRecord, JsonlSink, MemorySink, MeterSink};

const RECORDS: usize = 1_000;
const THREADS: usize = 16;

/// A fresh path in the system temp dir (removed when dropped).
struct TempPath(PathBuf);

impl TempPath {
    fn new(ext: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "switchyard-ledger-{}-{}-{}.{ext}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            ledger::now_ms()
        );
        TempPath(std::env::temp_dir().join(name))
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

fn rec(i: usize) -> GenerationRecord {
    GenerationRecord {
        id: format!("gen-test-{i:05}").into(),
        created_at: 1_700_000_000_000 + i as i64,
        model: "acme/tiny".into(),
        provider_slug: "local".into(),
        tokens_prompt: i as u64,
        total_cost: (i as i64) * 1_000,
        api_key_hash: Some("ab".repeat(32)),
        ..GenerationRecord::default()
    }
}

/// Records `RECORDS` records from `THREADS` threads, checking each is readable at once.
fn record_from_threads(sink: &Arc<dyn MeterSink>) {
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let sink = Arc::clone(sink);
            std::thread::spawn(move || {
                for i in (t..RECORDS).step_by(THREADS) {
                    sink.record(rec(i));
                    let got = sink.get(&rec(i).id).expect("readable right after record");
                    assert_eq!(got.tokens_prompt, i as u64);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("recording thread");
    }
}

fn assert_all_readable(sink: &dyn MeterSink) {
    for i in 0..RECORDS {
        let got = sink.get(&rec(i).id).expect("record present");
        assert_eq!(got, rec(i));
    }
    assert!(sink.get("gen-missing").is_none());
}

#[test]
fn memory_sink_keeps_every_record_from_many_threads() {
    let memory = Arc::new(MemorySink::new(RECORDS));
    let sink: Arc<dyn MeterSink> = memory.clone();
    record_from_threads(&sink);
    assert_eq!(memory.len(), RECORDS);
    assert_all_readable(&*sink);
}

#[test]
fn jsonl_sink_writes_each_record_once_and_survives_reopen() {
    let path = TempPath::new("jsonl");
    {
        let jsonl = Arc::new(JsonlSink::open(&path.0).expect("open"));
        let sink: Arc<dyn MeterSink> = jsonl.clone();
        record_from_threads(&sink);
        sink.flush();
        assert_eq!(jsonl.len(), RECORDS);

        let text = std::fs::read_to_string(&path.0).expect("read ledger");
        let ids: Vec<String> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<GenerationRecord>(l)
                    .expect("one record per line")
                    .id
                    .to_string()
            })
            .collect();
        assert_eq!(ids.len(), RECORDS, "no record lost or doubled");
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), RECORDS);
    }
    let reopened = JsonlSink::open(&path.0).expect("reopen");
    assert_eq!(reopened.len(), RECORDS);
    assert_all_readable(&reopened);
}

#[test]
fn jsonl_sink_skips_a_torn_last_line() {
    let path = TempPath::new("jsonl");
    let mut first = serde_json::to_string(&rec(1)).expect("json");
    first.push('\n');
    first.push_str(r#"{"id":"gen-torn","mod"#);
    std::fs::write(&path.0, first).expect("write");
    {
        let sink = JsonlSink::open(&path.0).expect("open");
        assert_eq!(sink.len(), 1);
        sink.record(rec(2));
    }
    let sink = JsonlSink::open(&path.0).expect("reopen");
    assert_eq!(sink.get(&rec(2).id), Some(rec(2)));
    assert_eq!(sink.len(), 2);
}

#[test]
fn dropping_a_sink_writes_what_was_recorded() {
    let path = TempPath::new("jsonl");
    {
        let sink = ledger::open(&path.0).expect("open");
        for i in 0..10 {
            sink.record(rec(i));
        }
        // No flush: drop must write.
    }
    let sink = JsonlSink::open(&path.0).expect("reopen");
    assert_eq!(sink.len(), 10);
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use switchyard::ledger::SqliteSink;

    #[test]
    fn sqlite_sink_stores_each_record_once_and_survives_reopen() {
        let path = TempPath::new("db");
        {
            let sqlite = Arc::new(SqliteSink::open(&path.0).expect("open"));
            let sink: Arc<dyn MeterSink> = sqlite.clone();
            record_from_threads(&sink);
            sink.flush();
            assert_eq!(sqlite.count().expect("count"), RECORDS as u64);
            assert_all_readable(&*sink);
        }
        let reopened = SqliteSink::open(&path.0).expect("reopen");
        assert_eq!(reopened.count().expect("count"), RECORDS as u64);
        assert_all_readable(&reopened);
    }

    #[test]
    fn open_picks_sqlite_by_default_and_drop_persists() {
        let path = TempPath::new("sqlite");
        {
            let sink = ledger::open(&path.0).expect("open");
            sink.record(rec(7));
            sink.record(GenerationRecord {
                cancelled: true,
                ..rec(7)
            });
        }
        let sink = SqliteSink::open(&path.0).expect("reopen");
        assert_eq!(sink.count().expect("count"), 1, "same id replaces");
        assert!(sink.get(&rec(7).id).expect("present").cancelled);
    }

    #[test]
    fn jsonl_and_sqlite_render_the_same_api_json() {
        let (a, b) = (TempPath::new("jsonl"), TempPath::new("db"));
        let (a, b) = (
            ledger::open(&a.0).expect("jsonl"),
            ledger::open(&b.0).expect("sqlite"),
        );
        a.record(rec(3));
        b.record(rec(3));
        a.flush();
        b.flush();
        let json = |s: &Arc<dyn MeterSink>| s.get(&rec(3).id).map(|r| r.to_api_json());
        assert_eq!(json(&a), json(&b));
        assert_eq!(
            json(&a).expect("present")["data"]["total_cost"],
            0.000000003
        );
    }
}
