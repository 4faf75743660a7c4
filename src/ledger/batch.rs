//! The background writer shared by the sinks that store records: `record` hands a record to a
//! channel and returns; a thread writes batches of up to `max_batch` records, or whatever
//! arrived within `max_delay` of the first one. A record someone waits for
//! ([`Batcher::send_committed`]) is written at once with everything queued by then, and its
//! ticket resolves after the write: while one write is in flight the next batch gathers, so
//! under load many waiters share one commit (group commit) and the wait is about one write.

use super::commit::{Commit, CommitSignal, commit_ticket};
use super::{GenerationRecord, LedgerError};
use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Where batches go. Runs on the writer thread only.
pub(crate) trait WriteBatch: Send + 'static {
    /// Stores `batch` durably enough to survive a clean shutdown; all or nothing.
    fn write(&mut self, batch: &[GenerationRecord]) -> Result<(), LedgerError>;
}

/// How big and how late batches may get.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchConfig {
    pub(crate) max_batch: usize,
    pub(crate) max_delay: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_batch: 256,
            max_delay: Duration::from_millis(50),
        }
    }
}

enum Msg {
    // Boxed: records are large, control messages tiny. The signal, when someone waits for
    // the record's commit.
    Record(Box<GenerationRecord>, Option<CommitSignal>),
    Flush(Sender<()>),
    Shutdown,
}

/// Handle to the writer thread; flushes and joins it on drop.
#[derive(Debug)]
pub(crate) struct Batcher {
    tx: Sender<Msg>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Batcher {
    /// Starts the writer thread.
    pub(crate) fn spawn<W: WriteBatch>(
        name: &str,
        writer: W,
        config: BatchConfig,
    ) -> Result<Batcher, LedgerError> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || run(writer, &rx, config))?;
        Ok(Batcher {
            tx,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues a record; never blocks.
    pub(crate) fn send(&self, rec: GenerationRecord) {
        self.queue(rec, None);
    }

    /// Queues a record to be written at once (with whatever else is queued); never blocks.
    /// The ticket resolves when its batch is committed.
    pub(crate) fn send_committed(&self, rec: GenerationRecord) -> Commit {
        let (signal, commit) = commit_ticket();
        self.queue(rec, Some(signal));
        commit
    }

    fn queue(&self, rec: GenerationRecord, signal: Option<CommitSignal>) {
        // On error the signal goes with the message: the ticket resolves as not committed.
        if self.tx.send(Msg::Record(Box::new(rec), signal)).is_err() {
            tracing::error!("ledger writer thread is gone; a generation record was dropped");
        }
    }

    /// Returns once every record queued before the call has been written (or failed to be).
    pub(crate) fn flush(&self) {
        let (ack_tx, ack_rx) = mpsc::channel();
        if self.tx.send(Msg::Flush(ack_tx)).is_ok() {
            // An error means the thread died; there is nothing left to wait for.
            let _ = ack_rx.recv();
        }
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Shutdown);
        let thread = match self.thread.get_mut() {
            Ok(t) => t.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(thread) = thread {
            if thread.join().is_err() {
                tracing::error!("ledger writer thread panicked");
            }
        }
    }
}

/// What the writer thread holds between writes.
struct Queue {
    buf: Vec<GenerationRecord>,
    /// The waiters on records in `buf`, told when it is written.
    signals: Vec<CommitSignal>,
    /// When `buf` is written even if nobody waits (or, after a failure, retried).
    deadline: Instant,
    /// The last write failed: the next waits for `deadline` even with waiters, so a server
    /// that is down is not hammered.
    backing_off: bool,
}

fn run<W: WriteBatch>(mut writer: W, rx: &Receiver<Msg>, config: BatchConfig) {
    let mut q = Queue {
        buf: Vec::with_capacity(config.max_batch),
        signals: Vec::new(),
        deadline: Instant::now(),
        backing_off: false,
    };
    loop {
        let msg = if q.buf.is_empty() {
            rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else if !q.signals.is_empty() && !q.backing_off {
            // Someone waits: take what is already queued (what arrived during the last write),
            // then write without waiting out the delay: group commit.
            rx.try_recv().map_err(|e| match e {
                TryRecvError::Empty => RecvTimeoutError::Timeout,
                TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
            })
        } else {
            rx.recv_timeout(q.deadline.saturating_duration_since(Instant::now()))
        };
        match msg {
            Ok(Msg::Record(rec, signal)) => {
                if q.buf.is_empty() {
                    q.deadline = Instant::now() + config.max_delay;
                }
                q.buf.push(*rec);
                q.signals.extend(signal);
                if q.buf.len() >= config.max_batch {
                    write(&mut writer, &mut q, config);
                }
            }
            Ok(Msg::Flush(ack)) => {
                write(&mut writer, &mut q, config);
                let _ = ack.send(());
            }
            Err(RecvTimeoutError::Timeout) => {
                write(&mut writer, &mut q, config);
            }
            Ok(Msg::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                write(&mut writer, &mut q, config);
                if !q.buf.is_empty() {
                    tracing::error!(
                        lost = q.buf.len(),
                        "ledger: records not written at shutdown"
                    );
                }
                // Dropped unsignalled: their waiters learn the records were not committed.
                return;
            }
        }
    }
}

/// Writes the buffer and tells its waiters; on failure keeps both for the next attempt, one
/// `max_delay` later.
fn write<W: WriteBatch>(writer: &mut W, q: &mut Queue, config: BatchConfig) {
    if q.buf.is_empty() {
        return;
    }
    match writer.write(&q.buf) {
        Ok(()) => {
            q.buf.clear();
            q.backing_off = false;
            for signal in q.signals.drain(..) {
                signal.committed();
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, pending = q.buf.len(), "ledger write failed; will retry");
            q.deadline = Instant::now() + config.max_delay;
            q.backing_off = true;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // panicking is how tests fail
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// Counts batches; fails while `down` is set.
    #[derive(Clone, Default)]
    struct Store {
        batches: Arc<AtomicUsize>,
        down: Arc<AtomicBool>,
    }

    impl WriteBatch for Store {
        fn write(&mut self, _: &[GenerationRecord]) -> Result<(), LedgerError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(LedgerError::new(std::path::Path::new("store"), "down"));
            }
            self.batches.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    fn rec(id: &str) -> GenerationRecord {
        GenerationRecord {
            id: id.into(),
            ..Default::default()
        }
    }

    /// A delay no test waits out: a write that happens came from a waiter, not the timer.
    const LONG: BatchConfig = BatchConfig {
        max_batch: 256,
        max_delay: Duration::from_secs(3600),
    };

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_waited_record_is_written_at_once_with_what_is_queued() {
        let store = Store::default();
        let batcher = Batcher::spawn("test-batch", store.clone(), LONG).unwrap();
        batcher.send(rec("a"));
        let commit = batcher.send_committed(rec("b"));
        let waited =
            block_on(async { tokio::time::timeout(Duration::from_secs(10), commit).await });
        assert_eq!(waited.expect("committed well before max_delay"), Ok(()));
        // `a` rode along: one batch, and nothing is left for a flush to write.
        assert_eq!(store.batches.load(Ordering::SeqCst), 1);
        batcher.flush();
        assert_eq!(store.batches.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_failed_write_keeps_the_waiter_until_a_retry_commits() {
        let store = Store::default();
        store.down.store(true, Ordering::SeqCst);
        let config = BatchConfig {
            max_batch: 256,
            max_delay: Duration::from_millis(20),
        };
        let batcher = Batcher::spawn("test-batch", store.clone(), config).unwrap();
        let commit = batcher.send_committed(rec("a"));
        block_on(async {
            let mut commit = std::pin::pin!(commit);
            // Down: no commit, however long the waiter waits (here: several retries).
            let early = tokio::time::timeout(Duration::from_millis(150), &mut commit).await;
            assert!(early.is_err(), "no commit while the store is down");
            store.down.store(false, Ordering::SeqCst);
            let late = tokio::time::timeout(Duration::from_secs(10), &mut commit).await;
            assert_eq!(late.expect("committed once the store is back"), Ok(()));
        });
    }

    #[test]
    fn a_record_given_up_at_shutdown_says_so() {
        let store = Store::default();
        store.down.store(true, Ordering::SeqCst);
        let batcher = Batcher::spawn("test-batch", store, LONG).unwrap();
        let commit = batcher.send_committed(rec("a"));
        drop(batcher);
        assert_eq!(block_on(commit), Err(crate::ledger::NotCommitted));
    }
}
