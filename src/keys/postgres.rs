//! [`PostgresKeys`] (feature `postgres`): managed keys and every key's spend in the `api_keys`
//! table, shared by every instance of a deployment, so a key made through one instance works
//! on all and its spend adds up over all. How (settings written through, spend in increments,
//! changes polled, what happens while the server is away) is told on [`PostgresKeys`].

use super::UsageCounters;
use super::{KeyChange, KeyLimits, KeyPersistence, KeyStoreError, LimitReset, StoredKey};
use crate::catalog::Usd;
use crate::ledger::postgres::{migrate, shown};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};
use tokio_postgres::{Client, NoTls, Row};

/// How often waiting spend increments are written.
const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// How far before the previous poll a poll looks, so a write whose `changed_at` was taken
/// before that poll but which committed after it is still seen.
const LOOKBACK_MS: i64 = 2_000;
/// How long a caller waits for an answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long connecting or one statement may take.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(3);
/// Applied batch ids are kept this long (any retry comes far sooner).
const BATCH_IDS_KEPT_MS: i64 = 86_400_000;

/// The server's clock in unix ms.
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

const COLUMNS: &str = "hash, name, label, limit_pico, limit_reset, disabled, created_at, managed,
     limits::text, deleted, usage_total, usage_daily, usage_weekly, usage_monthly,
     day_start, week_start, month_start";

/// Spend waiting to be written, per key hash: the key (its settings, for a config key's first
/// row) and the increments.
type Pending = HashMap<String, (StoredKey, UsageCounters)>;

type Answer<T> = mpsc::Sender<Result<T, String>>;

enum Command {
    Load(Answer<Vec<StoredKey>>),
    Save(Box<StoredKey>, Answer<()>),
    Delete(String, Answer<()>),
    Find(String, Answer<Option<StoredKey>>),
    Changes(Answer<Vec<KeyChange>>),
    Flush(Answer<()>),
}

/// Keys in PostgreSQL, shared by every instance of a deployment.
///
/// - **Settings** (create, update, delete) are written at once; a delete leaves the row with
///   `deleted` set, so it reaches the other instances like any change.
/// - **Spend** is added as increments (`usage_total = usage_total + $n`, each period's counter
///   restarting when its period has moved on), never overwritten with one instance's view. An
///   instance keeps its increments in memory and adds them in one transaction every 250 ms
///   (and before each poll); the batch carries an id recorded in
///   `api_key_spend_batches`, so a batch retried after its answer was lost is not added twice.
///   While PostgreSQL is away, increments wait in memory and are retried.
/// - **Changes**: every write moves `changed_at` (the server's clock, so instances' clocks do
///   not matter). [`changes`](KeyPersistence::changes) returns the rows changed since the last
///   poll less two seconds (for writes that committed late; re-reading a row is harmless),
///   their usage being the deployment-wide one plus this instance's increments not yet written.
///
/// [`KeyPersistence`] is synchronous, so the work runs on a thread of its own with a small
/// Tokio runtime and one connection (reconnected when lost); callers wait for the answer over a
/// channel, at most 5 s. Opening connects and runs the migrations
/// (`migrations/postgres/`), failing with an error naming the server when it cannot be reached.
#[derive(Debug)]
pub struct PostgresKeys {
    shown: String,
    pending: Arc<Mutex<Pending>>,
    commands: tokio::sync::mpsc::UnboundedSender<Command>,
}

impl PostgresKeys {
    /// Connects, runs the migrations and starts the thread. Fails, naming the server, when
    /// PostgreSQL cannot be reached.
    pub fn open(url: &str) -> Result<Self, KeyStoreError> {
        let shown = shown(url);
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| KeyStoreError::Persistence(format!("PostgreSQL at {shown}: {e}")))?;
        let pending = Arc::new(Mutex::new(Pending::new()));
        let (commands, rx) = tokio::sync::mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let mut worker = Worker {
            config,
            shown: shown.clone(),
            client: None,
            pending: Arc::clone(&pending),
            inflight: None,
            since: None,
            batch_ids_pruned: None,
        };
        std::thread::Builder::new()
            .name("switchyard-keys-pg".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => return drop(ready_tx.send(Err(e.to_string()))),
                };
                rt.block_on(async move {
                    let ready = match worker.client().await {
                        Ok(c) => migrate(c)
                            .await
                            .map_err(|e| worker.error(format!("migrations: {e}"))),
                        Err(e) => Err(e),
                    };
                    let ok = ready.is_ok();
                    let _ = ready_tx.send(ready);
                    if ok {
                        worker.run(rx).await;
                    }
                });
            })
            .map_err(|e| KeyStoreError::Persistence(e.to_string()))?;
        ready_rx
            .recv()
            .map_err(|_| KeyStoreError::Persistence(format!("PostgreSQL at {shown}: no answer")))?
            .map_err(KeyStoreError::Persistence)?;
        Ok(PostgresKeys {
            shown,
            pending,
            commands,
        })
    }

    fn ask<T>(&self, command: impl FnOnce(Answer<T>) -> Command) -> Result<T, KeyStoreError> {
        let (tx, rx) = mpsc::channel();
        let gone = || KeyStoreError::Persistence(format!("PostgreSQL at {}: gone", self.shown));
        self.commands.send(command(tx)).map_err(|_| gone())?;
        match rx.recv_timeout(ANSWER_TIMEOUT) {
            Ok(answer) => answer.map_err(KeyStoreError::Persistence),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(KeyStoreError::Persistence(format!(
                "PostgreSQL at {} did not answer within {} s",
                self.shown,
                ANSWER_TIMEOUT.as_secs()
            ))),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(gone()),
        }
    }
}

fn lock(p: &Mutex<Pending>) -> MutexGuard<'_, Pending> {
    p.lock().unwrap_or_else(|p| p.into_inner())
}

impl KeyPersistence for PostgresKeys {
    fn load(&self) -> Result<Vec<StoredKey>, KeyStoreError> {
        self.ask(Command::Load)
    }

    fn save(&self, key: &StoredKey) -> Result<(), KeyStoreError> {
        self.ask(|a| Command::Save(Box::new(key.clone()), a))
    }

    fn delete(&self, hash: &str) -> Result<(), KeyStoreError> {
        self.ask(|a| Command::Delete(hash.to_owned(), a))
    }

    fn add_spend(&self, key: &StoredKey, amount: Usd, at_ms: i64) -> Result<(), KeyStoreError> {
        // Memory only: the worker writes it off the request path.
        let mut pending = lock(&self.pending);
        let entry = pending
            .entry(key.hash.clone())
            .or_insert_with(|| (key.clone(), UsageCounters::default()));
        entry.0 = key.clone();
        entry.1.add(at_ms, amount.max(Usd::ZERO));
        Ok(())
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn find(&self, hash: &str) -> Result<Option<StoredKey>, KeyStoreError> {
        self.ask(|a| Command::Find(hash.to_owned(), a))
    }

    fn changes(&self) -> Result<Vec<KeyChange>, KeyStoreError> {
        self.ask(Command::Changes)
    }

    fn flush(&self) {
        if let Err(e) = self.ask(Command::Flush) {
            tracing::warn!(error = %e, "keys: spend not yet written to PostgreSQL");
        }
    }
}

/// The thread's side: the connection and the batch being written.
struct Worker {
    config: tokio_postgres::Config,
    shown: String,
    client: Option<Client>,
    pending: Arc<Mutex<Pending>>,
    /// A batch taken from `pending` with its id, until it is written (retried as it is).
    inflight: Option<(String, Pending)>,
    /// The server time from which the next poll looks.
    since: Option<i64>,
    batch_ids_pruned: Option<Instant>,
}

/// Runs a statement's future within [`STATEMENT_TIMEOUT`].
async fn timed<T>(
    f: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(STATEMENT_TIMEOUT, f).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!(
            "no answer within {} s",
            STATEMENT_TIMEOUT.as_secs()
        )),
    }
}

impl Worker {
    fn error(&self, e: impl std::fmt::Display) -> String {
        format!("PostgreSQL at {}: {e}", self.shown)
    }

    /// The connection, (re)connected when there is none or the server closed it.
    async fn client(&mut self) -> Result<&mut Client, String> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = None;
            let mut config = self.config.clone();
            config.connect_timeout(STATEMENT_TIMEOUT);
            let (client, connection) = timed(config.connect(NoTls))
                .await
                .map_err(|e| self.error(e))?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "keys: PostgreSQL connection ended");
                }
            });
            self.client = Some(client);
        }
        self.client
            .as_mut()
            .ok_or_else(|| format!("PostgreSQL at {}: not connected", self.shown))
    }

    async fn run(&mut self, mut rx: tokio::sync::mpsc::UnboundedReceiver<Command>) {
        let mut failing = false;
        let mut next_flush = tokio::time::Instant::now() + FLUSH_EVERY;
        loop {
            let command = match tokio::time::timeout_at(next_flush, rx.recv()).await {
                Ok(Some(c)) => Some(c),
                // Every handle is gone: write what is left, then end.
                Ok(None) => {
                    let _ = self.flush().await;
                    return;
                }
                Err(_) => None,
            };
            let Some(command) = command else {
                next_flush = tokio::time::Instant::now() + FLUSH_EVERY;
                match self.flush().await {
                    Ok(()) if failing => {
                        failing = false;
                        tracing::info!("keys: spend written to PostgreSQL again");
                    }
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(error = %e, "keys: spend waits in memory, retrying");
                    }
                    _ => {}
                }
                continue;
            };
            match command {
                Command::Load(a) => drop(a.send(self.load().await)),
                Command::Save(k, a) => drop(a.send(self.save(&k).await)),
                Command::Delete(h, a) => drop(a.send(self.delete(&h).await)),
                Command::Find(h, a) => drop(a.send(self.find(&h).await)),
                Command::Changes(a) => drop(a.send(self.changes().await)),
                Command::Flush(a) => drop(a.send(self.flush().await)),
            }
        }
    }

    /// A failed statement drops a connection the server closed, so the next one reconnects.
    fn failed(&mut self, e: String) -> String {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        self.error(e)
    }

    async fn load(&mut self) -> Result<Vec<StoredKey>, String> {
        let now = self.server_now().await?;
        let c = self.client().await?;
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE NOT deleted ORDER BY created_at");
        let rows = timed(c.query(sql.as_str(), &[]))
            .await
            .map_err(|e| self.failed(e))?;
        self.since.get_or_insert(now - LOOKBACK_MS);
        rows.iter().map(|r| self.merged(r)).collect()
    }

    async fn server_now(&mut self) -> Result<i64, String> {
        let c = self.client().await?;
        let sql = format!("SELECT {NOW_MS}");
        let row = timed(c.query_one(sql.as_str(), &[]))
            .await
            .map_err(|e| self.failed(e))?;
        Ok(row.get(0))
    }

    async fn save(&mut self, k: &StoredKey) -> Result<(), String> {
        let limits = (!k.limits.is_unlimited()).then(|| k.limits.to_json().to_string());
        let u = &k.usage;
        let sql = format!(
            "INSERT INTO api_keys (hash, name, label, limit_pico, limit_reset, disabled,
                 created_at, managed, limits, day_start, week_start, month_start, changed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CAST($9 AS TEXT)::jsonb, $10, $11, $12,
                 {NOW_MS})
             ON CONFLICT (hash) DO UPDATE SET name = EXCLUDED.name, label = EXCLUDED.label,
                 limit_pico = EXCLUDED.limit_pico, limit_reset = EXCLUDED.limit_reset,
                 disabled = EXCLUDED.disabled, managed = EXCLUDED.managed,
                 limits = EXCLUDED.limits, changed_at = EXCLUDED.changed_at"
        );
        let (limit, reset) = (k.limit.map(Usd::picodollars), k.limit_reset.to_string());
        let c = self.client().await?;
        timed(c.execute(
            sql.as_str(),
            &[
                &k.hash,
                &k.name,
                &k.label,
                &limit,
                &reset,
                &k.disabled,
                &k.created_at,
                &k.managed,
                &limits,
                &u.day_start,
                &u.week_start,
                &u.month_start,
            ],
        ))
        .await
        .map(drop)
        .map_err(|e| self.failed(e))
    }

    async fn delete(&mut self, hash: &str) -> Result<(), String> {
        let sql =
            format!("UPDATE api_keys SET deleted = true, changed_at = {NOW_MS} WHERE hash = $1");
        let c = self.client().await?;
        timed(c.execute(sql.as_str(), &[&hash]))
            .await
            .map(drop)
            .map_err(|e| self.failed(e))
    }

    async fn find(&mut self, hash: &str) -> Result<Option<StoredKey>, String> {
        let sql =
            format!("SELECT {COLUMNS} FROM api_keys WHERE hash = $1 AND managed AND NOT deleted");
        let c = self.client().await?;
        let row = timed(c.query_opt(sql.as_str(), &[&hash]))
            .await
            .map_err(|e| self.failed(e))?;
        row.map(|r| self.merged(&r)).transpose()
    }

    async fn changes(&mut self) -> Result<Vec<KeyChange>, String> {
        // Our own spend first, so the rows read count it (and `merged` does not count it twice).
        self.flush().await?;
        let now = self.server_now().await?;
        let since = self.since.unwrap_or(now - LOOKBACK_MS);
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE changed_at >= $1");
        let c = self.client().await?;
        let rows = timed(c.query(sql.as_str(), &[&since]))
            .await
            .map_err(|e| self.failed(e))?;
        self.since = Some(now - LOOKBACK_MS);
        rows.iter()
            .map(|r| {
                if r.get::<_, bool>("deleted") {
                    Ok(KeyChange::Deleted(r.get("hash")))
                } else {
                    self.merged(r).map(KeyChange::Upsert)
                }
            })
            .collect()
    }

    /// A row as a key, its usage plus this instance's increments not yet written.
    fn merged(&self, r: &Row) -> Result<StoredKey, String> {
        let mut key = from_row(r).map_err(|e| self.error(e))?;
        let waiting = |p: &Pending| p.get(&key.hash).map(|(_, u)| *u);
        let mut extra: Vec<UsageCounters> = self
            .inflight
            .as_ref()
            .and_then(|(_, p)| waiting(p))
            .into_iter()
            .collect();
        extra.extend(waiting(&lock(&self.pending)));
        for more in extra {
            key.usage = key.usage.plus(&more);
        }
        Ok(key)
    }

    /// Writes the batch in flight, or else the increments waiting, in one transaction.
    async fn flush(&mut self) -> Result<(), String> {
        if self.inflight.is_none() {
            let batch = std::mem::take(&mut *lock(&self.pending));
            if batch.is_empty() {
                return Ok(());
            }
            self.inflight = Some((format!("{:032x}", rand::random::<u128>()), batch));
        }
        let Some((id, batch)) = self.inflight.take() else {
            return Ok(());
        };
        let prune = self
            .batch_ids_pruned
            .is_none_or(|t| t.elapsed() > Duration::from_secs(3600));
        let result = async {
            let c = self.client().await?;
            let tx = timed(c.transaction()).await?;
            write_batch(&tx, &id, &batch, prune).await?;
            timed(tx.commit()).await
        }
        .await;
        match result {
            Ok(()) => {
                if prune {
                    self.batch_ids_pruned = Some(Instant::now());
                }
                Ok(())
            }
            Err(e) => {
                self.inflight = Some((id, batch));
                Err(self.failed(e))
            }
        }
    }
}

/// Adds one batch of increments, unless its id shows it was added before.
async fn write_batch(
    tx: &tokio_postgres::Transaction<'_>,
    id: &str,
    batch: &Pending,
    prune: bool,
) -> Result<(), String> {
    let sql = format!(
        "INSERT INTO api_key_spend_batches (id, applied_at) VALUES ($1, {NOW_MS})
         ON CONFLICT (id) DO NOTHING"
    );
    if timed(tx.execute(sql.as_str(), &[&id])).await? == 0 {
        return Ok(());
    }
    // Each period's counter adds when the row counts the same period, restarts when the
    // increment's period is later, and is left alone for an increment from a period already
    // over (that spend still counts in the total).
    let period = |v: &str, start: &str| {
        format!(
            "{v} = CASE WHEN api_keys.{start} = EXCLUDED.{start} THEN api_keys.{v} + EXCLUDED.{v}
                 WHEN api_keys.{start} < EXCLUDED.{start} THEN EXCLUDED.{v} ELSE api_keys.{v} END,
             {start} = GREATEST(api_keys.{start}, EXCLUDED.{start})"
        )
    };
    let sql = format!(
        "INSERT INTO api_keys (hash, name, label, limit_pico, limit_reset, disabled, created_at,
             managed, usage_total, usage_daily, usage_weekly, usage_monthly, day_start,
             week_start, month_start, changed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, {NOW_MS})
         ON CONFLICT (hash) DO UPDATE SET usage_total = api_keys.usage_total + EXCLUDED.usage_total,
             {}, {}, {}, changed_at = EXCLUDED.changed_at",
        period("usage_daily", "day_start"),
        period("usage_weekly", "week_start"),
        period("usage_monthly", "month_start"),
    );
    let statement = timed(tx.prepare(&sql)).await?;
    for (k, u) in batch.values() {
        let (limit, reset) = (k.limit.map(Usd::picodollars), k.limit_reset.to_string());
        let [total, daily, weekly, monthly] =
            [u.total, u.daily, u.weekly, u.monthly].map(Usd::picodollars);
        timed(tx.execute(
            &statement,
            &[
                &k.hash,
                &k.name,
                &k.label,
                &limit,
                &reset,
                &k.disabled,
                &k.created_at,
                &k.managed,
                &total,
                &daily,
                &weekly,
                &monthly,
                &u.day_start,
                &u.week_start,
                &u.month_start,
            ],
        ))
        .await?;
    }
    if prune {
        let sql = format!("DELETE FROM api_key_spend_batches WHERE applied_at < {NOW_MS} - $1");
        timed(tx.execute(sql.as_str(), &[&BATCH_IDS_KEPT_MS])).await?;
    }
    Ok(())
}

fn from_row(r: &Row) -> Result<StoredKey, tokio_postgres::Error> {
    let pico = |i: usize| r.try_get::<_, i64>(i).map(Usd::from_picodollars);
    let reset: String = r.try_get(4)?;
    let limits: Option<String> = r.try_get(8)?;
    let limits = limits
        .and_then(|l| serde_json::from_str(&l).ok())
        .map(|v| KeyLimits::from_json(&v))
        .unwrap_or_default();
    let usage = UsageCounters {
        total: pico(10)?,
        daily: pico(11)?,
        weekly: pico(12)?,
        monthly: pico(13)?,
        day_start: r.try_get(14)?,
        week_start: r.try_get(15)?,
        month_start: r.try_get(16)?,
    };
    Ok(StoredKey {
        hash: r.try_get(0)?,
        name: r.try_get(1)?,
        label: r.try_get(2)?,
        limit: r.try_get::<_, Option<i64>>(3)?.map(Usd::from_picodollars),
        limit_reset: reset.parse().unwrap_or(LimitReset::Never),
        disabled: r.try_get(5)?,
        created_at: r.try_get(6)?,
        managed: r.try_get(7)?,
        usage,
        limits: Arc::new(limits),
    })
}
