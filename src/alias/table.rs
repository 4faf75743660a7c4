//! The alias table and its reload: a handle to swap it, and a file watcher.

use crate::catalog::Config;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

/// Plain aliases (`[aliases]` of the config): `"openai/gpt-latest" = "openai/gpt-5"`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AliasTable(HashMap<String, String>);

impl AliasTable {
    /// A table from alias → target pairs.
    pub fn new(aliases: HashMap<String, String>) -> Self {
        AliasTable(aliases)
    }

    /// The config's `[aliases]`.
    pub fn from_config(config: &Config) -> Self {
        AliasTable(
            config
                .aliases
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }

    /// The target of `alias`.
    pub fn get(&self, alias: &str) -> Option<&str> {
        self.0.get(alias).map(String::as_str)
    }

    /// Number of aliases.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there is no alias.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(String, String)> for AliasTable {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        AliasTable(iter.into_iter().collect())
    }
}

/// A shared, swappable [`AliasTable`]: every [`AliasLayer`](super::AliasLayer) cloned from the
/// same layer sees a [`replace`](Self::replace) on its next request. Readers take a read lock
/// only long enough to clone an `Arc`.
#[derive(Debug, Clone, Default)]
pub struct AliasHandle(Arc<RwLock<Arc<AliasTable>>>);

impl AliasHandle {
    /// A handle holding `table`.
    pub fn new(table: AliasTable) -> Self {
        AliasHandle(Arc::new(RwLock::new(Arc::new(table))))
    }

    /// The table in force.
    pub fn current(&self) -> Arc<AliasTable> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Swaps in a new table (SIGHUP, file change); requests in flight keep the old one.
    pub fn replace(&self, table: AliasTable) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(table);
    }
}

/// Polls the config file's modification time every second on a tokio task and, when it changes,
/// reloads its `[aliases]` into `handle`. A file that fails to load is logged with
/// `tracing::warn!` and the old table stays. Abort the returned task to stop watching.
pub fn watch_file(path: impl Into<PathBuf>, handle: AliasHandle) -> tokio::task::JoinHandle<()> {
    watch_every(path.into(), handle, Duration::from_secs(1))
}

fn stamp(m: &std::fs::Metadata) -> (Option<SystemTime>, u64) {
    (m.modified().ok(), m.len())
}

pub(super) fn watch_every(
    path: PathBuf,
    handle: AliasHandle,
    period: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = tokio::fs::metadata(&path).await.ok().map(|m| stamp(&m));
        let mut missing = false;
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = match tokio::fs::metadata(&path).await {
                Ok(m) => stamp(&m),
                Err(e) => {
                    if !missing {
                        tracing::warn!(path = %path.display(), error = %e, "alias file unreadable; keeping the current aliases");
                    }
                    missing = true;
                    continue;
                }
            };
            missing = false;
            if last == Some(now) {
                continue;
            }
            last = Some(now);
            let p = path.clone();
            match tokio::task::spawn_blocking(move || Config::load(&p)).await {
                Ok(Ok(config)) => {
                    let table = AliasTable::from_config(&config);
                    tracing::info!(path = %path.display(), aliases = table.len(), "aliases reloaded");
                    handle.replace(table);
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "alias reload failed; keeping the current aliases");
                }
                Err(e) => tracing::warn!(error = %e, "alias reload task failed"),
            }
        }
    })
}
