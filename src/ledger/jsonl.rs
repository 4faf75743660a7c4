//! An append-only JSON Lines ledger: one record per line.

use super::batch::{BatchConfig, Batcher, WriteBatch};
use super::{Commit, GenerationRecord, LedgerError, MeterSink};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// Appends records to a `.jsonl` file from a background thread and answers `get` from an
/// in-memory index of every record, rebuilt from the file at open. A line left half-written by
/// a crash is skipped with a warning.
#[derive(Debug)]
pub struct JsonlSink {
    index: Arc<Mutex<HashMap<Arc<str>, GenerationRecord>>>,
    // Declared last: dropped (flushed and joined) after nothing else can record.
    batcher: Batcher,
}

impl JsonlSink {
    /// Opens (or creates) the file and indexes the records already in it.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        let err = |e: std::io::Error| LedgerError::new(path, e);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(err)?;
        let mut index = HashMap::new();
        let mut line_no = 0_usize;
        for line in BufReader::new(&file).lines() {
            line_no += 1;
            let line = line.map_err(err)?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<GenerationRecord>(&line) {
                Ok(rec) => {
                    index.insert(rec.id.clone(), rec);
                }
                Err(e) => tracing::warn!(
                    path = %path.display(), line = line_no, error = %e,
                    "ledger: skipping unreadable line"
                ),
            }
        }
        // After a crash mid-line, start the next record on a line of its own.
        if ends_without_newline(&mut file).map_err(err)? {
            file.write_all(b"\n").map_err(err)?;
        }
        let writer = JsonlWriter {
            path: path.to_owned(),
            file,
            line: Vec::with_capacity(1024),
        };
        Ok(JsonlSink {
            index: Arc::new(Mutex::new(index)),
            batcher: Batcher::spawn("switchyard-ledger-jsonl", writer, BatchConfig::default())?,
        })
    }

    /// Records held (each id once).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when the ledger is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, GenerationRecord>> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn ends_without_newline(file: &mut File) -> std::io::Result<bool> {
    let len = file.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0_u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

impl MeterSink for JsonlSink {
    fn record(&self, rec: GenerationRecord) {
        self.lock().insert(rec.id.clone(), rec.clone());
        self.batcher.send(rec);
    }

    fn record_committed(&self, rec: GenerationRecord) -> Option<Commit> {
        self.lock().insert(rec.id.clone(), rec.clone());
        Some(self.batcher.send_committed(rec))
    }

    fn get(&self, id: &str) -> Option<GenerationRecord> {
        self.lock().get(id).cloned()
    }

    fn flush(&self) {
        self.batcher.flush();
    }
}

struct JsonlWriter {
    path: PathBuf,
    file: File,
    line: Vec<u8>,
}

impl WriteBatch for JsonlWriter {
    fn write(&mut self, batch: &[GenerationRecord]) -> Result<(), LedgerError> {
        // One write per batch, so a batch is appended whole or (on a crash) cut at its end.
        self.line.clear();
        for rec in batch {
            serde_json::to_writer(&mut self.line, rec)
                .map_err(|e| LedgerError::new(&self.path, e))?;
            self.line.push(b'\n');
        }
        self.file
            .write_all(&self.line)
            .map_err(|e| LedgerError::new(&self.path, e))
    }
}
