//! [`RedisHealth`]: every instance's outcomes and speed samples in Redis, every instance
//! reading the verdicts and the deployment's speed EWMAs.

use super::RedisState;
use super::scripts::Scripts;
use crate::health::{Health, HealthObserver, Outcome, Speed};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::mpsc;

/// Signals waiting to be written; past this many, new ones are dropped (health fails open).
const QUEUE: usize = 4096;

/// Weight of the newest sample in the shared EWMAs (as in each instance's own).
const ALPHA: f64 = 0.3;

/// One signal for the writer.
#[derive(Debug)]
enum Signal {
    Outcome(String, Outcome),
    Speed(String, Speed),
}

/// Shares a [`Health`] registry through Redis. [`RedisHealth::start`] attaches it: from then
/// on outcomes and speed samples are queued (never blocking a request) and written by a
/// background task, and the verdicts and speed EWMAs of all instances are read back every
/// `health_poll_ms`.
#[derive(Debug)]
pub struct RedisHealth {
    tx: mpsc::Sender<Signal>,
}

impl HealthObserver for RedisHealth {
    fn outcome(&self, key: &str, outcome: Outcome) {
        // A full queue (Redis slow or gone) drops the signal: this instance still has its own.
        let _ = self.tx.try_send(Signal::Outcome(key.to_owned(), outcome));
    }

    fn speed(&self, key: &str, sample: Speed) {
        let _ = self.tx.try_send(Signal::Speed(key.to_owned(), sample));
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
    mut rx: mpsc::Receiver<Signal>,
    rule: crate::health::OutageRule,
) {
    let verdicts = redis.key(&["health"]);
    let speeds = redis.key(&["health", "speed"]);
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 64).await > 0 {
        let (mut events, mut samples) = (Vec::new(), Vec::new());
        for signal in batch.drain(..) {
            match signal {
                Signal::Outcome(ep, o) => events.push((
                    redis.key(&["health", "ev", &ep]),
                    redis.key(&["health", "fail", &ep]),
                    ep,
                    o,
                )),
                Signal::Speed(ep, s) => samples.push((ep, s)),
            }
        }
        let (verdicts, speeds) = (verdicts.clone(), speeds.clone());
        // One pipelined round trip for the whole batch.
        let res = redis
            .run(|mut c| async move {
                let mut pipe = redis::pipe();
                for (ep, s) in &samples {
                    let mut inv = Scripts::get().health_speed.key(&speeds);
                    inv.arg(ep).arg(s.ttft).arg(s.tps).arg(ALPHA);
                    pipe.invoke_script(&inv).ignore();
                }
                for (events_key, failures_key, ep, o) in &events {
                    let retry_ms =
                        o.retry_after.unwrap_or(Duration::from_secs(1)).as_millis() as u64;
                    let mut inv = Scripts::get().health_record.key(events_key);
                    inv.key(&verdicts)
                        .key(failures_key)
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
                        Scripts::get().health_speed.load_async(&mut c).await?;
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
    let speeds = redis.key(&["health", "speed"]);
    // The deployment's speeds count until a few polls have failed in a row.
    let fresh_for = (redis.inner.health_poll * 4).max(Duration::from_secs(1));
    let mut tick = tokio::time::interval(redis.inner.health_poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(health) = health.upgrade() else {
            return;
        };
        let (key, speed_key) = (verdicts.clone(), speeds.clone());
        let reply: Result<Vec<String>, _> = redis
            .run(|mut c| async move {
                Scripts::get()
                    .health_read
                    .key(&key)
                    .key(&speed_key)
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
        let (mut unstable, mut cooling, mut speed) = (Vec::new(), Vec::new(), Vec::new());
        for pair in reply[1..].chunks_exact(2) {
            let left = || {
                let until = pair[1].parse::<f64>().ok()?;
                Some(Duration::from_millis((until as i64 - now).max(0) as u64))
            };
            match (pair[0].split_at_checked(2), left()) {
                (Some(("u:", ep)), Some(left)) => unstable.push((ep.to_owned(), left)),
                (Some(("c:", ep)), Some(left)) => cooling.push((ep.to_owned(), left)),
                (Some(("s:", ep)), _) => {
                    if let Some((t, s)) = pair[1].split_once(':') {
                        if let (Ok(ttft), Ok(tps)) = (t.parse(), s.parse()) {
                            speed.push((ep.to_owned(), Speed { ttft, tps }));
                        }
                    }
                }
                _ => {}
            }
        }
        health.apply_shared(&unstable, &cooling);
        health.apply_shared_speed(&speed, fresh_for);
    }
}
