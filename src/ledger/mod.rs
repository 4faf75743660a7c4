//! The generation ledger: where every generation's [`GenerationRecord`] goes, and where
//! `GET /api/v1/generation` finds it.
//!
//! A [`MeterSink`] takes records without blocking on I/O: the sinks that store them
//! ([`JsonlSink`], [`SqliteSink`]) hand them to a background thread that writes in batches.
//! Unlike OpenRouter there is no window in which a finished generation answers 404: a record is
//! visible to [`MeterSink::get`] as soon as [`MeterSink::record`] returns, because records wait
//! in memory until they are written. [`MeterSink::flush`], also run on drop, writes everything
//! recorded so far, so a clean shutdown loses nothing.
//!
//! A kill (SIGKILL, a crash) loses what waits in memory. Against that a sink that stores
//! records can also tell when one is durable: [`MeterSink::record_committed`] returns a
//! [`Commit`] ticket that resolves when the record's batch is committed. The meter layer, told to
//! ([`MeterLayer::commit_before_answer`](crate::meter::MeterLayer::commit_before_answer);
//! `[ledger] commit_before_answer`, on by default for PostgreSQL), awaits it before the end of
//! the answer goes out. The shared writer then commits at once instead of waiting out its batch
//! delay (group commit: a batch is whatever arrived while the previous write was in flight), so
//! the wait is about one write. The sinks that can tell: [`PostgresSink`], [`SqliteSink`],
//! [`JsonlSink`]; [`MemorySink`] and sinks of your own that do not override the method return
//! no ticket and cost nothing.
//!
//! ```
//! use switchyard::ledger::{GenerationRecord, MemorySink, MeterSink};
//!
//! let sink = MemorySink::new(10_000);
//! sink.record(GenerationRecord { id: "gen-1".into(), total_cost: 140_000_000, ..Default::default() });
//! assert_eq!(sink.get("gen-1").unwrap().to_api_json()["data"]["total_cost"], 0.00014);
//! ```

mod batch;
mod commit;
mod jsonl;
mod memory;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
mod record;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use commit::{Commit, CommitSignal, NotCommitted, commit_ticket};
pub use jsonl::JsonlSink;
pub use memory::{DEFAULT_MEMORY_BYTES, MemorySink, record_bytes};
#[cfg(feature = "postgres")]
pub use postgres::PostgresSink;
pub use record::{AttemptRecord, GenerationRecord, Ingress, generation_id, now_ms};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteSink;
#[cfg(feature = "sqlite")]
pub(crate) use sqlite::connect;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where generation records go.
pub trait MeterSink: Send + Sync + fmt::Debug {
    /// Stores a record. Never blocks on I/O; a record with an id already stored replaces it.
    fn record(&self, rec: GenerationRecord);
    /// Stores a record as [`record`](Self::record) does and, from a sink that can tell, returns
    /// a ticket that resolves once the record is committed (see the [module docs](self)).
    /// The default records and returns `None`: nothing to wait for.
    fn record_committed(&self, rec: GenerationRecord) -> Option<Commit> {
        self.record(rec);
        None
    }
    /// The record with this id, as soon as `record` has returned for it.
    fn get(&self, id: &str) -> Option<GenerationRecord>;
    /// Returns once everything recorded so far is written.
    fn flush(&self);
}

impl<T: MeterSink + ?Sized> MeterSink for Arc<T> {
    fn record(&self, rec: GenerationRecord) {
        (**self).record(rec);
    }
    fn record_committed(&self, rec: GenerationRecord) -> Option<Commit> {
        (**self).record_committed(rec)
    }
    fn get(&self, id: &str) -> Option<GenerationRecord> {
        (**self).get(id)
    }
    fn flush(&self) {
        (**self).flush();
    }
}

/// Opens the ledger at `path`: JSON Lines for a `.jsonl` extension, SQLite otherwise.
pub fn open(path: &Path) -> Result<Arc<dyn MeterSink>, LedgerError> {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("jsonl"))
    {
        return Ok(Arc::new(JsonlSink::open(path)?));
    }
    #[cfg(feature = "sqlite")]
    {
        Ok(Arc::new(SqliteSink::open(path)?))
    }
    #[cfg(not(feature = "sqlite"))]
    {
        Err(LedgerError::new(
            path,
            "a SQLite ledger needs the `sqlite` feature; use a .jsonl path instead",
        ))
    }
}

/// A ledger that could not be opened or written; names the file.
#[derive(Debug)]
pub struct LedgerError {
    path: PathBuf,
    message: String,
}

impl LedgerError {
    pub(crate) fn new(path: &Path, message: impl fmt::Display) -> Self {
        LedgerError {
            path: path.to_owned(),
            message: message.to_string(),
        }
    }

    /// The ledger file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl From<std::io::Error> for LedgerError {
    fn from(e: std::io::Error) -> Self {
        LedgerError {
            path: PathBuf::new(),
            message: e.to_string(),
        }
    }
}

impl fmt::Display for LedgerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.as_os_str().is_empty() {
            write!(f, "ledger: {}", self.message)
        } else {
            write!(f, "ledger {}: {}", self.path.display(), self.message)
        }
    }
}

impl std::error::Error for LedgerError {}
