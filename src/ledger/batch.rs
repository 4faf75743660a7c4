//! The background writer shared by the sinks that store records: `record` hands a record to a
//! channel and returns; a thread writes batches of up to `max_batch` records, or whatever
//! arrived within `max_delay` of the first one.

use super::{GenerationRecord, LedgerError};
use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
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
    // Boxed: records are large, control messages tiny.
    Record(Box<GenerationRecord>),
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
        if self.tx.send(Msg::Record(Box::new(rec))).is_err() {
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

fn run<W: WriteBatch>(mut writer: W, rx: &Receiver<Msg>, config: BatchConfig) {
    let mut buf: Vec<GenerationRecord> = Vec::with_capacity(config.max_batch);
    let mut deadline = Instant::now();
    loop {
        let msg = if buf.is_empty() {
            rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        };
        match msg {
            Ok(Msg::Record(rec)) => {
                if buf.is_empty() {
                    deadline = Instant::now() + config.max_delay;
                }
                buf.push(*rec);
                if buf.len() >= config.max_batch {
                    write(&mut writer, &mut buf, &mut deadline, config);
                }
            }
            Ok(Msg::Flush(ack)) => {
                write(&mut writer, &mut buf, &mut deadline, config);
                let _ = ack.send(());
            }
            Err(RecvTimeoutError::Timeout) => {
                write(&mut writer, &mut buf, &mut deadline, config);
            }
            Ok(Msg::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                write(&mut writer, &mut buf, &mut deadline, config);
                if !buf.is_empty() {
                    tracing::error!(lost = buf.len(), "ledger: records not written at shutdown");
                }
                return;
            }
        }
    }
}

/// Writes the buffer; on failure keeps it for the next attempt, one `max_delay` later.
fn write<W: WriteBatch>(
    writer: &mut W,
    buf: &mut Vec<GenerationRecord>,
    deadline: &mut Instant,
    config: BatchConfig,
) {
    if buf.is_empty() {
        return;
    }
    match writer.write(buf) {
        Ok(()) => buf.clear(),
        Err(e) => {
            tracing::warn!(error = %e, pending = buf.len(), "ledger write failed; will retry");
            *deadline = Instant::now() + config.max_delay;
        }
    }
}
