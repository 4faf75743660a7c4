//! Holding the end of an answer until its generation record is committed
//! ([`MeterLayer::commit_before_answer`](super::MeterLayer::commit_before_answer)).
//!
//! A [`CommitWait`] resolves when the sink's [`Commit`] ticket does, or when the bound runs out
//! first (the ledger's store is down or slow): the answer is then released anyway and the
//! record stays queued in the sink for retry. Clients are never held hostage to the ledger; a
//! warning says which generation went out before its row was durable.

use crate::ledger::{Commit, NotCommitted};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// Waits for one record's commit, at most until a deadline; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct CommitWait {
    commit: Commit,
    deadline: Instant,
    /// Made at the first poll, not with the ticket: the record may be finished where no
    /// timer runs (a stream's body dropped outside the runtime), and then nobody waits.
    sleep: Option<Pin<Box<Sleep>>>,
    id: Arc<str>,
}

impl CommitWait {
    pub(crate) fn new(commit: Commit, bound: Duration, id: Arc<str>) -> Self {
        CommitWait {
            commit,
            deadline: Instant::now() + bound,
            sleep: None,
            id,
        }
    }
}

impl Future for CommitWait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        match Pin::new(&mut this.commit).poll(cx) {
            Poll::Ready(Ok(())) => return Poll::Ready(()),
            Poll::Ready(Err(NotCommitted)) => {
                tracing::warn!(
                    generation = %this.id,
                    "ledger: the record was not committed; the answer goes out without it"
                );
                return Poll::Ready(());
            }
            Poll::Pending => {}
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.as_mut().poll(cx).is_ready() {
            tracing::warn!(
                generation = %this.id,
                "ledger: no commit within the bound; the answer goes out, the record stays queued"
            );
            return Poll::Ready(());
        }
        Poll::Pending
    }
}
