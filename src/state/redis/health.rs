//! [`RedisHealth`]: every instance's outcomes in Redis, every instance reading the verdicts.

use super::RedisState;
use super::scripts::Scripts;
use crate::health::{Health, HealthObserver, Outcome};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::mpsc;

/// Outcomes waiting to be written; past this many, new ones are dropped (health fails open).
const QUEUE: usize = 4096;

/// Shares a [`Health`] registry through Redis. [`RedisHealth::start`] attaches it: from then
/// on outcomes are queued (never blocking a request) and written by a background task, and
/// the verdicts of all instances are read back every `health_poll_ms`.
#[derive(Debug)]
pub struct RedisHealth {
    tx: mpsc::Sender<(String, Outcome)>,
}

impl HealthObserver for RedisHealth {
    fn outcome(&self, key: &str, outcome: Outcome) {
        // A full queue (Redis slow or gone) drops the signal: this instance still has its own.
        let _ = self.tx.try_send((key.to_owned(), outcome));
    }
}

impl RedisHealth {
    /// Shares `health` through `redis`; needs a Tokio runtime. The tasks stop when `health`
    /// is dropped. Returns false when `health` already had an observer.
    pub fn start(health: &Arc<Health>, redis: RedisState) -> bool {
        let (tx, rx) = mpsc::channel(QUEUE);
        if !health.observe(Arc::new(RedisHealth { tx })) {
            return false;
        }
        let rule = health.rule();
        tokio::spawn(write_outcomes(redis.clone(), rx, rule));
        tokio::spawn(read_verdicts(redis, Arc::downgrade(health)));
        true
    }
}

async fn write_outcomes(
    redis: RedisState,
    mut rx: mpsc::Receiver<(String, Outcome)>,
    rule: crate::health::OutageRule,
) {
    let verdicts = redis.key(&["health"]);
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 64).await > 0 {
        let events: Vec<_> = batch
            .drain(..)
            .map(|(ep, o)| (redis.key(&["health", "ev", &ep]), ep, o))
            .collect();
        let verdicts = verdicts.clone();
        // One pipelined round trip for the whole batch.
        let res = redis
            .run(|mut c| async move {
                let mut pipe = redis::pipe();
                for (events_key, ep, o) in &events {
                    let retry_ms =
                        o.retry_after.unwrap_or(Duration::from_secs(1)).as_millis() as u64;
                    let mut inv = Scripts::get().health_record.key(events_key);
                    inv.key(&verdicts)
                        .arg(ep)
                        .arg(if o.success { "1" } else { "0" })
                        .arg(o.status)
                        .arg(retry_ms)
                        .arg(rule.window.as_millis() as u64)
                        .arg(rule.min_failures)
                        .arg(rule.min_failure_ratio)
                        .arg(format!("{:016x}", rand::random::<u64>()));
                    pipe.invoke_script(&inv).ignore();
                }
                // A pipeline sends scripts by hash: load it when Redis does not know it yet
                // (first use, or Redis restarted) and send once more.
                match pipe.query_async::<()>(&mut c).await {
                    Err(e)
                        if e.kind()
                            == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
                    {
                        Scripts::get().health_record.load_async(&mut c).await?;
                        pipe.query_async::<()>(&mut c).await
                    }
                    other => other,
                }
            })
            .await;
        if let Err(e) = res {
            tracing::debug!(error = %e, "health outcomes not shared (Redis)");
        }
    }
}

async fn read_verdicts(redis: RedisState, health: Weak<Health>) {
    let verdicts = redis.key(&["health"]);
    let mut tick = tokio::time::interval(redis.inner.health_poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(health) = health.upgrade() else {
            return;
        };
        let key = verdicts.clone();
        let reply: Result<Vec<String>, _> = redis
            .run(|mut c| async move {
                Scripts::get()
                    .health_read
                    .key(&key)
                    .invoke_async(&mut c)
                    .await
            })
            .await;
        let reply = match reply {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "health verdicts not read (Redis)");
                continue;
            }
        };
        let Some(now) = reply.first().and_then(|n| n.parse::<i64>().ok()) else {
            continue;
        };
        let (mut unstable, mut cooling) = (Vec::new(), Vec::new());
        for pair in reply[1..].chunks_exact(2) {
            let Ok(until) = pair[1].parse::<f64>() else {
                continue;
            };
            let left = Duration::from_millis((until as i64 - now).max(0) as u64);
            match pair[0].split_at_checked(2) {
                Some(("u:", ep)) => unstable.push((ep.to_owned(), left)),
                Some(("c:", ep)) => cooling.push((ep.to_owned(), left)),
                _ => {}
            }
        }
        health.apply_shared(&unstable, &cooling);
    }
}
