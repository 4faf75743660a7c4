//! A PostgreSQL ledger (feature `postgres`): every instance of a deployment writes to one
//! `generations` table, so `GET /api/v1/generation` finds a generation whichever instance
//! served it.
//!
//! [`MeterSink`] is synchronous (records never wait on I/O; lookups are rare), so the sink owns
//! two threads, each with a small Tokio runtime of its own and never touching the caller's:
//! - the **writer** (the shared [`Batcher`]): one multi-row `INSERT … ON CONFLICT` per batch;
//! - the **reader**: lookups from a pool of `pool_size` connections, answered over a channel
//!   within the timeout.
//!
//! Records wait in memory until their batch commits, so `get` finds a record as soon as
//! `record` returns, as with the other sinks. [`MeterSink::record_committed`] hands out a ticket
//! that resolves after the commit; a record someone waits for is written at once, with every
//! record queued by then, so waiters share commits (group commit). Migrations (`migrations/postgres/*.sql`, embedded)
//! run at open under an advisory lock, so instances starting together apply each once.

use super::batch::{BatchConfig, Batcher, WriteBatch};
use super::{Commit, GenerationRecord, LedgerError, MeterSink};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::Duration;
use tokio_postgres::{Client, NoTls};

/// The migrations, in order; each runs once (recorded in `switchyard_migrations`).
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        include_str!("../../migrations/postgres/0001_generations.sql"),
    ),
    (2, include_str!("../../migrations/postgres/0002_keys.sql")),
];

/// Held while migrating, so concurrent instances do not race (any constant unique to us).
const MIGRATION_LOCK: i64 = 0x5357_4954_4348_5944;

/// How long a lookup may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

type Pending = Arc<Mutex<HashMap<Arc<str>, GenerationRecord>>>;
type Lookup = (
    String,
    mpsc::Sender<Result<Option<GenerationRecord>, String>>,
);

/// The generation ledger in PostgreSQL; see the [module docs](self).
#[derive(Debug)]
pub struct PostgresSink {
    shown: String,
    pending: Pending,
    lookups: tokio::sync::mpsc::UnboundedSender<Lookup>,
    batcher: Batcher,
}

fn err(shown: &str, e: impl std::fmt::Display) -> LedgerError {
    LedgerError::new(Path::new(shown), e)
}

/// The URL without its password, for messages.
pub(crate) fn shown(url: &str) -> String {
    match url.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once("://") {
            Some((scheme, user)) => {
                let user = user.split(':').next().unwrap_or("");
                format!("{scheme}://{user}@{host}")
            }
            None => format!("…@{host}"),
        },
        None => url.to_owned(),
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

async fn connect(url: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "ledger: PostgreSQL connection ended");
        }
    });
    Ok(client)
}

pub(crate) async fn migrate(client: &Client) -> Result<(), tokio_postgres::Error> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let result = async {
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS switchyard_migrations (
                     version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            )
            .await?;
        for (version, sql) in MIGRATIONS {
            let done = client
                .query_opt(
                    "SELECT 1 FROM switchyard_migrations WHERE version = $1",
                    &[version],
                )
                .await?
                .is_some();
            if !done {
                client.batch_execute(sql).await?;
                client
                    .execute(
                        "INSERT INTO switchyard_migrations (version) VALUES ($1)",
                        &[version],
                    )
                    .await?;
            }
        }
        Ok(())
    }
    .await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await?;
    result
}

impl PostgresSink {
    /// Connects (`pool_size` reading connections and one writing), runs the migrations and
    /// starts the threads. Fails, naming the server, when PostgreSQL cannot be reached.
    pub fn open(url: &str, pool_size: usize) -> Result<Self, LedgerError> {
        let shown = shown(url);
        let pending = Pending::default();
        // The reader thread connects and migrates first, so the writer finds the table.
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let (lookups, mut lookup_rx) = tokio::sync::mpsc::unbounded_channel::<Lookup>();
        let (reader_url, size) = (url.to_owned(), pool_size.max(1));
        std::thread::Builder::new()
            .name("switchyard-ledger-pg-read".into())
            .spawn(move || {
                let rt = match runtime() {
                    Ok(rt) => rt,
                    Err(e) => return drop(ready_tx.send(Err(e.to_string()))),
                };
                rt.block_on(async move {
                    let mut pool = Vec::with_capacity(size);
                    for _ in 0..size {
                        match connect(&reader_url).await {
                            Ok(c) => pool.push(Arc::new(c)),
                            Err(e) => return drop(ready_tx.send(Err(e.to_string()))),
                        }
                    }
                    if let Err(e) = migrate(&pool[0]).await {
                        return drop(ready_tx.send(Err(format!("migrations: {e}"))));
                    }
                    let _ = ready_tx.send(Ok(()));
                    let mut next = 0;
                    while let Some((id, reply)) = lookup_rx.recv().await {
                        let client = Arc::clone(&pool[next % pool.len()]);
                        next += 1;
                        tokio::spawn(async move {
                            let _ = reply.send(load(&client, &id).await);
                        });
                    }
                });
            })?;
        ready_rx
            .recv()
            .map_err(|_| err(&shown, "the reader thread ended"))?
            .map_err(|e| err(&shown, e))?;
        let writer = PostgresWriter::open(url, &shown, Arc::clone(&pending))?;
        Ok(PostgresSink {
            pending,
            lookups,
            batcher: Batcher::spawn("switchyard-ledger-pg", writer, BatchConfig::default())?,
            shown,
        })
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<Arc<str>, GenerationRecord>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn load(&self, id: &str) -> Result<Option<GenerationRecord>, LedgerError> {
        let (tx, rx) = mpsc::channel();
        self.lookups
            .send((id.to_owned(), tx))
            .map_err(|_| err(&self.shown, "the reader thread ended"))?;
        rx.recv_timeout(LOOKUP_TIMEOUT)
            .map_err(|_| err(&self.shown, "lookup timed out"))?
            .map_err(|e| err(&self.shown, e))
    }
}

async fn load(client: &Client, id: &str) -> Result<Option<GenerationRecord>, String> {
    let row = client
        .query_opt("SELECT record::text FROM generations WHERE id = $1", &[&id])
        .await
        .map_err(|e| e.to_string())?;
    row.map(|r| serde_json::from_str(r.get::<_, &str>(0)).map_err(|e| e.to_string()))
        .transpose()
}

impl MeterSink for PostgresSink {
    fn record(&self, rec: GenerationRecord) {
        self.pending().insert(rec.id.clone(), rec.clone());
        self.batcher.send(rec);
    }

    fn record_committed(&self, rec: GenerationRecord) -> Option<Commit> {
        self.pending().insert(rec.id.clone(), rec.clone());
        Some(self.batcher.send_committed(rec))
    }

    fn get(&self, id: &str) -> Option<GenerationRecord> {
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

/// The writer thread's side: a runtime and a connection of its own.
struct PostgresWriter {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    url: String,
    shown: String,
    pending: Pending,
}

impl PostgresWriter {
    fn open(url: &str, shown: &str, pending: Pending) -> Result<Self, LedgerError> {
        Ok(PostgresWriter {
            rt: runtime()?,
            client: None,
            url: url.to_owned(),
            shown: shown.to_owned(),
            pending,
        })
    }
}

/// Columns per row of the batched insert.
const COLUMNS: usize = 7;

impl WriteBatch for PostgresWriter {
    fn write(&mut self, batch: &[GenerationRecord]) -> Result<(), LedgerError> {
        let shown = self.shown.clone();
        let e = |e: &dyn std::fmt::Display| err(&shown, e);
        // Connect lazily (inside the runtime: the connection task lives there), and again
        // after the server closed the connection.
        if self.client.as_ref().is_none_or(Client::is_closed) {
            let client = self.rt.block_on(connect(&self.url)).map_err(|x| e(&x))?;
            self.client = Some(client);
        }
        let client = self.client.as_ref().ok_or_else(|| e(&"not connected"))?;
        // A later record with the same id wins within the batch too.
        let mut rows: Vec<&GenerationRecord> = Vec::with_capacity(batch.len());
        for rec in batch.iter().rev() {
            if !rows.iter().any(|r| r.id == rec.id) {
                rows.push(rec);
            }
        }
        let json: Vec<String> = rows
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<_, _>>()
            .map_err(|x| e(&x))?;
        let mut sql = String::from(
            "INSERT INTO generations
                 (id, created_at, model, api_key_hash, api_type, total_cost, record) VALUES ",
        );
        // Borrowed as `&str` (what `ToSql` takes) for the parameters.
        let text: Vec<[&str; 3]> = rows
            .iter()
            .map(|r| [&*r.id, &*r.model, r.api.as_str()])
            .collect();
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            Vec::with_capacity(rows.len() * COLUMNS);
        for (i, ((r, j), [id, model, api])) in rows.iter().zip(&json).zip(&text).enumerate() {
            let b = i * COLUMNS;
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, CAST(${} AS TEXT)::jsonb)",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7
            ));
            params.push(id);
            params.push(&r.created_at);
            params.push(model);
            params.push(&r.api_key_hash);
            params.push(api);
            params.push(&r.total_cost);
            params.push(j);
        }
        sql.push_str(
            " ON CONFLICT (id) DO UPDATE SET created_at = EXCLUDED.created_at,
                 model = EXCLUDED.model, api_key_hash = EXCLUDED.api_key_hash,
                 api_type = EXCLUDED.api_type, total_cost = EXCLUDED.total_cost,
                 record = EXCLUDED.record",
        );
        let result = self.rt.block_on(client.execute(sql.as_str(), &params));
        if let Err(x) = result {
            if client.is_closed() {
                self.client = None;
            }
            return Err(e(&x));
        }
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        for rec in batch {
            if pending.get(&rec.id) == Some(rec) {
                pending.remove(&rec.id);
            }
        }
        Ok(())
    }
}
