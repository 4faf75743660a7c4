//! A SQLite ledger (bundled SQLite, WAL mode, batched transactions).

use super::batch::{BatchConfig, Batcher, WriteBatch};
use super::{Commit, GenerationRecord, LedgerError, MeterSink};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Schema of the `generations` table: the full record as JSON, plus the columns worth querying.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS generations (
    id           TEXT PRIMARY KEY NOT NULL,
    created_at   INTEGER NOT NULL,
    model        TEXT NOT NULL,
    api_key_hash TEXT,
    total_cost   INTEGER NOT NULL,
    record       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS generations_by_key ON generations (api_key_hash, created_at);
";

type Pending = Arc<Mutex<HashMap<Arc<str>, GenerationRecord>>>;

/// Writes records to a `generations` table from a background thread, one transaction per batch.
/// Records wait in memory until their transaction commits, so `get` always finds them.
#[derive(Debug)]
pub struct SqliteSink {
    path: PathBuf,
    pending: Pending,
    reader: Mutex<Connection>,
    batcher: Batcher,
}

/// Opens a connection with the ledger's pragmas and schema.
pub(crate) fn connect(path: &Path) -> Result<Connection, LedgerError> {
    let err = |e: rusqlite::Error| LedgerError::new(path, e);
    let conn = Connection::open(path).map_err(err)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(err)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(err)?;
    Ok(conn)
}

impl SqliteSink {
    /// Opens (or creates) the database and its `generations` table.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        let reader = connect(path)?;
        reader
            .execute_batch(SCHEMA)
            .map_err(|e| LedgerError::new(path, e))?;
        let pending = Pending::default();
        let writer = SqliteWriter {
            path: path.to_owned(),
            conn: connect(path)?,
            pending: Arc::clone(&pending),
        };
        Ok(SqliteSink {
            path: path.to_owned(),
            pending,
            reader: Mutex::new(reader),
            batcher: Batcher::spawn("switchyard-ledger-sqlite", writer, BatchConfig::default())?,
        })
    }

    /// Rows in the `generations` table (records not yet written are not counted).
    pub fn count(&self) -> Result<u64, LedgerError> {
        self.reader()
            .query_row("SELECT COUNT(*) FROM generations", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n.unsigned_abs())
            .map_err(|e| LedgerError::new(&self.path, e))
    }

    fn reader(&self) -> MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<Arc<str>, GenerationRecord>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn load(&self, id: &str) -> Result<Option<GenerationRecord>, LedgerError> {
        let err = |e: &dyn std::fmt::Display| LedgerError::new(&self.path, e);
        let json: Option<String> = self
            .reader()
            .query_row("SELECT record FROM generations WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| err(&e))?;
        json.map(|j| serde_json::from_str(&j).map_err(|e| err(&e)))
            .transpose()
    }
}

impl MeterSink for SqliteSink {
    fn record(&self, rec: GenerationRecord) {
        self.pending().insert(rec.id.clone(), rec.clone());
        self.batcher.send(rec);
    }

    fn record_committed(&self, rec: GenerationRecord) -> Option<Commit> {
        self.pending().insert(rec.id.clone(), rec.clone());
        Some(self.batcher.send_committed(rec))
    }

    fn get(&self, id: &str) -> Option<GenerationRecord> {
        // Pending first: the writer removes a record only after its commit, so a miss here
        // means the row is already visible.
        if let Some(rec) = self.pending().get(id) {
            return Some(rec.clone());
        }
        self.load(id).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "ledger: lookup failed");
            None
        })
    }

    fn flush(&self) {
        self.batcher.flush();
    }
}

struct SqliteWriter {
    path: PathBuf,
    conn: Connection,
    pending: Pending,
}

impl WriteBatch for SqliteWriter {
    fn write(&mut self, batch: &[GenerationRecord]) -> Result<(), LedgerError> {
        let err = |e: &dyn std::fmt::Display| LedgerError::new(&self.path, e);
        let tx = self.conn.transaction().map_err(|e| err(&e))?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO generations
                         (id, created_at, model, api_key_hash, total_cost, record)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(|e| err(&e))?;
            for rec in batch {
                let json = serde_json::to_string(rec).map_err(|e| err(&e))?;
                insert
                    .execute(params![
                        rec.id,
                        rec.created_at,
                        rec.model,
                        rec.api_key_hash,
                        rec.total_cost,
                        json
                    ])
                    .map_err(|e| err(&e))?;
            }
        }
        tx.commit().map_err(|e| err(&e))?;
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        for rec in batch {
            // A newer record with the same id may be queued behind this one: keep it.
            if pending.get(&rec.id) == Some(rec) {
                pending.remove(&rec.id);
            }
        }
        Ok(())
    }
}
