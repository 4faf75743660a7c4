//! [`SqliteKeys`]: managed keys and every key's usage in the `keys` table of the SQLite ledger
//! file, so they survive restarts.

use super::{KeyLimits, KeyPersistence, KeyStoreError, StoredKey, UsageCounters};
use crate::catalog::Usd;
use crate::keys::LimitReset;
use rusqlite::{Connection, Row, params};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS keys (
    hash          TEXT PRIMARY KEY NOT NULL,
    name          TEXT NOT NULL,
    label         TEXT NOT NULL,
    limit_pico    INTEGER,
    limit_reset   TEXT NOT NULL,
    disabled      INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    managed       INTEGER NOT NULL,
    usage_total   INTEGER NOT NULL,
    usage_daily   INTEGER NOT NULL,
    usage_weekly  INTEGER NOT NULL,
    usage_monthly INTEGER NOT NULL,
    day_start     INTEGER NOT NULL,
    week_start    INTEGER NOT NULL,
    month_start   INTEGER NOT NULL,
    limits        TEXT
);
";

/// Tables made before per-key limits lack their column: add it, once.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let has_limits = conn
        .prepare("SELECT 1 FROM pragma_table_info('keys') WHERE name = 'limits'")?
        .exists([])?;
    if !has_limits {
        conn.execute_batch("ALTER TABLE keys ADD COLUMN limits TEXT")?;
    }
    Ok(())
}

/// Keys in a `keys` table, normally in the SQLite ledger's database. Stores hashes and
/// masked labels, never secrets.
#[derive(Debug)]
pub struct SqliteKeys {
    conn: Mutex<Connection>,
}

fn err(e: impl std::fmt::Display) -> KeyStoreError {
    KeyStoreError::Persistence(e.to_string())
}

impl SqliteKeys {
    /// Opens (or creates) the database and its `keys` table.
    pub fn open(path: &Path) -> Result<Self, KeyStoreError> {
        let conn = crate::ledger::connect(path).map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        migrate(&conn).map_err(err)?;
        Ok(SqliteKeys {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn row(r: &Row<'_>) -> rusqlite::Result<StoredKey> {
    let pico = |i: usize| r.get::<_, i64>(i).map(Usd::from_picodollars);
    let reset: String = r.get(4)?;
    let limits: Option<String> = r.get(15)?;
    let limits = limits
        .and_then(|l| serde_json::from_str(&l).ok())
        .map(|v| KeyLimits::from_json(&v))
        .unwrap_or_default();
    Ok(StoredKey {
        hash: r.get(0)?,
        name: r.get(1)?,
        label: r.get(2)?,
        limit: r.get::<_, Option<i64>>(3)?.map(Usd::from_picodollars),
        limit_reset: reset.parse().unwrap_or(LimitReset::Never),
        disabled: r.get(5)?,
        created_at: r.get(6)?,
        managed: r.get(7)?,
        usage: UsageCounters {
            total: pico(8)?,
            daily: pico(9)?,
            weekly: pico(10)?,
            monthly: pico(11)?,
            day_start: r.get(12)?,
            week_start: r.get(13)?,
            month_start: r.get(14)?,
        },
        limits: Arc::new(limits),
    })
}

impl KeyPersistence for SqliteKeys {
    fn load(&self) -> Result<Vec<StoredKey>, KeyStoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT hash, name, label, limit_pico, limit_reset, disabled, created_at, managed,
                        usage_total, usage_daily, usage_weekly, usage_monthly,
                        day_start, week_start, month_start, limits
                 FROM keys ORDER BY created_at",
            )
            .map_err(err)?;
        let rows = stmt.query_map([], row).map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn save(&self, k: &StoredKey) -> Result<(), KeyStoreError> {
        let u = &k.usage;
        self.conn()
            .prepare_cached(
                "INSERT OR REPLACE INTO keys (hash, name, label, limit_pico, limit_reset,
                     disabled, created_at, managed, usage_total, usage_daily, usage_weekly,
                     usage_monthly, day_start, week_start, month_start, limits)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    k.hash,
                    k.name,
                    k.label,
                    k.limit.map(Usd::picodollars),
                    k.limit_reset.to_string(),
                    k.disabled,
                    k.created_at,
                    k.managed,
                    u.total.picodollars(),
                    u.daily.picodollars(),
                    u.weekly.picodollars(),
                    u.monthly.picodollars(),
                    u.day_start,
                    u.week_start,
                    u.month_start,
                    (!k.limits.is_unlimited()).then(|| k.limits.to_json().to_string()),
                ])
            })
            .map(drop)
            .map_err(err)
    }

    fn delete(&self, hash: &str) -> Result<(), KeyStoreError> {
        self.conn()
            .execute("DELETE FROM keys WHERE hash = ?1", [hash])
            .map(drop)
            .map_err(err)
    }
}
