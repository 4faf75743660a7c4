//! The Redis backend (feature `redis`): credits, per-minute limits and health shared by every
//! gateway instance pointed at the same Redis and key prefix.
//!
//! - [`RedisAdmission`]: one Lua script checks the key's requests/tokens per minute and
//!   reserves its worst case against `limit − spend in the period − live holds`, atomically in
//!   Redis — never read-then-write — so the hot path costs exactly one round trip. Settling
//!   (one more script, off the request path) replaces the hold with the actual cost and adds
//!   the tokens. Holds carry an expiry, so an instance that dies mid-request frees its holds
//!   after `reservation_ttl_s`.
//! - [`RedisHealth`]: outcomes and speed samples are queued without blocking and written by a
//!   background task; each instance polls the verdicts (unstable until, cooling down until)
//!   and the deployment's speed EWMAs every `health_poll_ms` with one command and folds them
//!   into its own [`Health`].
//! - [`RedisSticky`]: session → endpoint pins, read from a local cache first and from Redis
//!   (one `MGET`, within `timeout_ms`) only for a session this instance has not seen; written
//!   off the request path.
//!
//! Timestamps come from Redis's own clock (`TIME`), so instances with skewed clocks agree.
//! Money is kept in picodollars as decimal strings and added in two 12-digit limbs inside the
//! scripts: Lua's numbers are doubles, exact only to 2^53 (about $9,007 in picodollars).
//!
//! Keys (under `key_prefix`): `spend:{key hash}:{period}`, `holds:{key hash}`,
//! `rate:{key hash}`, `health` (a hash of verdicts), `health:ev:{endpoint}` and
//! `health:fail:{endpoint}` (an endpoint's events and failures in the outage window),
//! `health:speed` (a hash of EWMAs) and `sticky:{session hash}`.
//!
//! [`Health`]: crate::health::Health

mod admit;
mod health;
mod scripts;
mod sticky;

pub use admit::RedisAdmission;
pub use health::RedisHealth;
pub use sticky::RedisSticky;

use crate::catalog::StateConfig;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::OnceCell;

/// A handle on one Redis: a small pool of multiplexed connections, made on first use (so a
/// gateway starts while Redis is down) and re-established by the connection manager.
#[derive(Clone)]
pub struct RedisState {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    /// The URL without its password, for messages.
    shown: String,
    prefix: String,
    timeout: Duration,
    reservation_ttl: Duration,
    health_poll: Duration,
    pool: Box<[OnceCell<ConnectionManager>]>,
    next: AtomicUsize,
}

impl fmt::Debug for RedisState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisState")
            .field("url", &self.inner.shown)
            .field("prefix", &self.inner.prefix)
            .field("pool", &self.inner.pool.len())
            .finish_non_exhaustive()
    }
}

/// A Redis command that failed or timed out.
#[derive(Debug, Clone)]
pub struct RedisError {
    shown: String,
    cause: String,
    /// No answer came in time: the command was sent and may still run in Redis.
    timed_out: bool,
}

impl fmt::Display for RedisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redis at {}: {}", self.shown, self.cause)
    }
}

impl std::error::Error for RedisError {}

impl RedisError {
    /// True when the command was sent but no answer came within `timeout_ms` (Redis hung or
    /// slow): unlike a refused connection, the command may still run later.
    pub fn timed_out(&self) -> bool {
        self.timed_out
    }

    pub(crate) fn unavailable(&self) -> super::StateUnavailable {
        super::StateUnavailable {
            store: format!("Redis at {}", self.shown),
            cause: self.cause.clone(),
        }
    }
}

impl RedisState {
    /// A handle for `[state]`; fails only on a malformed URL (nothing is connected yet).
    pub fn new(config: &StateConfig) -> Result<Self, String> {
        let url = config
            .redis_url
            .as_deref()
            .ok_or("[state]: `redis_url` is not set")?;
        let client =
            redis::Client::open(url).map_err(|e| format!("[state] redis_url `{url}`: {e}"))?;
        let shown = match url.split_once('@') {
            Some((scheme, host)) => format!(
                "{}//…@{host}",
                scheme.split("//").next().unwrap_or("redis:")
            ),
            None => url.to_owned(),
        };
        Ok(RedisState {
            inner: Arc::new(Inner {
                client,
                shown,
                prefix: config.key_prefix.clone(),
                timeout: Duration::from_millis(config.timeout_ms.max(1)),
                reservation_ttl: Duration::from_secs(config.reservation_ttl_s.max(1)),
                health_poll: Duration::from_millis(config.health_poll_ms.max(10)),
                pool: (0..config.pool_size.max(1))
                    .map(|_| OnceCell::new())
                    .collect(),
                next: AtomicUsize::new(0),
            }),
        })
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    pub(crate) fn key(&self, parts: &[&str]) -> String {
        let mut k = self.inner.prefix.clone();
        k.push_str(&parts.join(":"));
        k
    }

    fn error(&self, cause: impl fmt::Display) -> RedisError {
        RedisError {
            shown: self.inner.shown.clone(),
            cause: cause.to_string(),
            timed_out: false,
        }
    }

    fn no_answer(&self) -> RedisError {
        RedisError {
            timed_out: true,
            ..self.error(format_args!(
                "no answer within {} ms",
                self.inner.timeout.as_millis()
            ))
        }
    }

    /// A connection from the pool. It is made lazily: the first command on it connects, within
    /// that command's timeout, so connecting to a hung Redis never takes longer than
    /// `timeout_ms` either; a lost connection is made again by the next command.
    pub async fn connection(&self) -> Result<ConnectionManager, RedisError> {
        let i = self.inner.next.fetch_add(1, Ordering::Relaxed) % self.inner.pool.len();
        let timeout = self.inner.timeout;
        let client = self.inner.client.clone();
        let conn = self.inner.pool[i].get_or_try_init(|| async move {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout))
                .set_number_of_retries(1);
            ConnectionManager::new_lazy_with_config(client, config)
        });
        conn.await.cloned().map_err(|e| self.error(e))
    }

    /// Runs `f` on a pooled connection within the timeout.
    pub(crate) async fn run<T, F, Fut>(&self, f: F) -> Result<T, RedisError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.connection().await?;
        self.run_on(conn, f).await
    }

    /// Runs `f` on `conn` within the timeout. Commands sent on one connection run in Redis in
    /// the order they were sent, so a clean-up sent after a command that timed out on the same
    /// connection runs after it, even when Redis was hung in between.
    pub(crate) async fn run_on<T, F, Fut>(
        &self,
        conn: ConnectionManager,
        f: F,
    ) -> Result<T, RedisError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        match tokio::time::timeout(self.inner.timeout, f(conn)).await {
            Ok(Ok(v)) => Ok(v),
            // The connection's own response timeout (the same length) may fire first.
            Ok(Err(e)) if e.is_timeout() => Err(self.no_answer()),
            Ok(Err(e)) => Err(self.error(e)),
            Err(_) => Err(self.no_answer()),
        }
    }

    /// Deletes every key under the prefix (for tests and for retiring a deployment).
    pub async fn delete_all(&self) -> Result<u64, RedisError> {
        let pattern = format!("{}*", self.inner.prefix);
        self.run(|mut c| async move {
            let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query_async(&mut c).await?;
            if keys.is_empty() {
                return Ok(0);
            }
            redis::cmd("DEL").arg(&keys).query_async(&mut c).await
        })
        .await
    }
}
