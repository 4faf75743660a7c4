//! Commit tickets: how a sink that stores records tells a waiter that one is durable.
//!
//! [`MeterSink::record_committed`](super::MeterSink::record_committed) returns a [`Commit`], a
//! future that resolves once the record's batch is committed (or fails with [`NotCommitted`]
//! when the sink gave up on it, e.g. it shut down with the record unwritten). The meter layer
//! awaits it, within a bound, before it lets the end of the answer go out, so a process killed
//! after answering has lost no row of what it answered.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::oneshot;

/// A pair: the signal the writer keeps and the ticket the waiter awaits.
///
/// A sink of your own that writes somewhere durable makes a pair with this, keeps
/// the [`CommitSignal`] with the record and calls [`CommitSignal::committed`] after the write:
///
/// ```
/// use switchyard::ledger::commit_ticket;
///
/// # tokio_test_block_on(async {
/// let (signal, commit) = commit_ticket();
/// std::thread::spawn(move || {
///     // … write the record durably, then:
///     signal.committed();
/// });
/// assert!(commit.await.is_ok());
/// # });
/// # fn tokio_test_block_on(f: impl std::future::Future<Output = ()>) {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
pub fn commit_ticket() -> (CommitSignal, Commit) {
    let (tx, rx) = oneshot::channel();
    (CommitSignal(tx), Commit(rx))
}

/// Resolves once the record it was issued for is committed; see the [ledger docs](super).
#[derive(Debug)]
#[must_use = "a commit ticket does nothing unless awaited"]
pub struct Commit(oneshot::Receiver<()>);

impl Future for Commit {
    type Output = Result<(), NotCommitted>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map_err(|_| NotCommitted)
    }
}

/// The writer's half of a [`Commit`]: dropped without [`committed`](Self::committed), the
/// ticket resolves to [`NotCommitted`].
#[derive(Debug)]
pub struct CommitSignal(oneshot::Sender<()>);

impl CommitSignal {
    /// The record is durable: wakes the waiter (if it still waits).
    pub fn committed(self) {
        let _ = self.0.send(());
    }
}

/// The sink gave up on the record before committing it (it stopped, or its writer died).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotCommitted;

impl std::fmt::Display for NotCommitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the ledger gave up on the record before committing it")
    }
}

impl std::error::Error for NotCommitted {}
