//! A connection task that polls itself again when it is woken while it runs, instead of
//! going through the scheduler.
//!
//! A gateway reads the request body inside hyper's connection task (it needs `model` to route).
//! hyper's body channel wakes the connection's dispatcher when the body's reader takes a chunk, and
//! the dispatcher is the same task: the task is woken while it runs. Tokio then reschedules it as
//! if it had yielded — to the back of the run queue, waking an idle worker to steal it — so every
//! request moved between the two worker threads with two `futex` calls (measured: a bare proxy made
//! 4 in 2,000 requests; the gateway 3,665; the same proxy collecting the body before forwarding,
//! 3,988; the gateway with [`Repoll`], 11). It wraps the task's future with a waker that, when the
//! future wakes itself — on the thread polling it, during the poll — only notes it; the future is
//! then polled again right away. Every other wake-up (another thread's, or one while the task is
//! idle) goes to the task's own waker as usual: a stream whose upstream frames arrive while the
//! connection is busy keeps being batched by the scheduler. After [`MAX_REPOLLS`] rounds in a row,
//! or once the task has used up tokio's cooperative budget, it yields for real, so a busy
//! connection cannot starve the others.
//!
//! ```
//! # async fn demo() {
//! use std::task::Poll;
//! // A future that wakes itself once, as hyper's dispatcher does, and is done when polled again.
//! let mut woke = false;
//! let fut = std::future::poll_fn(move |cx| {
//!     if woke {
//!         return Poll::Ready(());
//!     }
//!     woke = true;
//!     cx.waker().wake_by_ref();
//!     Poll::Pending
//! });
//! switchyard::server::Repoll::new(fut).await;
//! # }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo());
//! ```

use futures_util::task::AtomicWaker;
use pin_project_lite::pin_project;
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::task::{Context, Poll, Wake, Waker};

/// Polls in place in a row before a real yield. Reading a request body takes two (hyper wakes
/// the dispatcher when the reader takes the chunk, and again at the body's end). More would also
/// re-poll through hyper's own fairness yields (its dispatcher yields after 16 rounds of work):
/// with 16 here, throughput at concurrency 64 measured ≈ 9 % lower than with the scheduler's
/// requeue; with 3 it is the same.
const MAX_REPOLLS: usize = 3;

thread_local! {
    /// The [`Flag`] of the future this thread is polling, as an address (0: none).
    static POLLING: Cell<usize> = const { Cell::new(0) };
}

pin_project! {
    /// `inner`, polled again at once when it wakes itself during a poll (see the module docs).
    pub struct Repoll<F> {
        #[pin]
        inner: F,
        wake: Option<(Arc<Flag>, Waker)>,
    }
}

impl<F> Repoll<F> {
    /// Wraps a task's future.
    pub fn new(inner: F) -> Self {
        Repoll { inner, wake: None }
    }
}

/// What the inner waker shares with the polling thread.
struct Flag {
    /// The future woke itself during the current poll (written and read by the polling thread
    /// only: [`POLLING`] tells a wake-up from there).
    woken: AtomicBool,
    /// The task's own waker, for every other wake-up (registered on each poll; a wake-up takes
    /// it, and the poll it causes registers it again).
    outer: AtomicWaker,
}

impl Flag {
    fn address(self: &Arc<Self>) -> usize {
        Arc::as_ptr(self) as usize
    }
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if POLLING.with(Cell::get) == self.address() {
            self.woken.store(true, Relaxed);
        } else {
            self.outer.wake();
        }
    }
}

/// Marks this thread as polling a [`Flag`] until dropped — even by a panic in the poll, which
/// must not leave a stale mark for a later `Flag` at the same address.
struct Polling(usize);

impl Polling {
    fn enter(flag: usize) -> Polling {
        Polling(POLLING.with(|p| p.replace(flag)))
    }
}

impl Drop for Polling {
    fn drop(&mut self) {
        POLLING.with(|p| p.set(self.0));
    }
}

impl<F: Future> Future for Repoll<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        let (flag, waker) = this.wake.get_or_insert_with(|| {
            let flag = Arc::new(Flag {
                woken: AtomicBool::new(false),
                outer: AtomicWaker::new(),
            });
            (flag.clone(), Waker::from(flag))
        });
        flag.outer.register(cx.waker());
        let mut inner_cx = Context::from_waker(waker);
        let _polling = Polling::enter(flag.address());
        let mut polled = Poll::Pending;
        let mut repolls = 0;
        while repolls < MAX_REPOLLS {
            flag.woken.store(false, Relaxed);
            polled = this.inner.as_mut().poll(&mut inner_cx);
            if polled.is_ready() || !flag.woken.load(Relaxed) {
                break;
            }
            repolls += 1;
            if !tokio::task::coop::has_budget_remaining() {
                // Tokio's resources answer `Pending` and wake the task until it yields: polling
                // again would only repeat that.
                repolls = MAX_REPOLLS;
            }
        }
        if repolls == MAX_REPOLLS {
            // Still waking itself, or out of budget: a real yield, so that other tasks run.
            cx.waker().wake_by_ref();
        }
        polled
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // panicking is how tests fail
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    /// Counts the task's own wake-ups.
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    impl Count {
        fn get(&self) -> usize {
            self.0.load(SeqCst)
        }
    }

    /// A task's waker and the count of its wake-ups.
    fn task_waker() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        (count.clone(), Waker::from(count))
    }

    #[test]
    fn a_self_wake_is_a_poll_in_place_not_a_wake_up() {
        let (count, waker) = task_waker();
        let mut cx = Context::from_waker(&waker);
        let mut polls = 0;
        let mut fut = std::pin::pin!(Repoll::new(std::future::poll_fn(|cx| {
            polls += 1;
            if polls < 3 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(polls)
        })));
        assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(3));
        assert_eq!(count.get(), 0, "no wake-up reached the task");
    }

    #[test]
    fn endless_self_wakes_yield_for_real() {
        let (count, waker) = task_waker();
        let mut cx = Context::from_waker(&waker);
        let polls = AtomicUsize::new(0);
        let mut fut = std::pin::pin!(Repoll::new(std::future::poll_fn(|cx| {
            polls.fetch_add(1, SeqCst);
            cx.waker().wake_by_ref();
            Poll::<()>::Pending
        })));
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert_eq!(count.get(), 1, "one real yield");
        assert_eq!(polls.load(SeqCst), MAX_REPOLLS);
    }

    #[test]
    fn a_wake_while_idle_reaches_the_task() {
        let (count, waker) = task_waker();
        let mut cx = Context::from_waker(&waker);
        let stash: Arc<std::sync::Mutex<Option<Waker>>> = Arc::default();
        let kept = stash.clone();
        let mut fut = std::pin::pin!(Repoll::new(std::future::poll_fn(move |cx| {
            *kept.lock().unwrap() = Some(cx.waker().clone());
            Poll::<()>::Pending
        })));
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert_eq!(count.get(), 0);
        // Another thread wakes it while it is not being polled.
        let inner = stash.lock().unwrap().take().unwrap();
        std::thread::spawn(move || inner.wake()).join().unwrap();
        assert_eq!(count.get(), 1);
    }

    #[test]
    fn another_threads_wake_during_a_poll_goes_to_the_task() {
        let (count, waker) = task_waker();
        let mut cx = Context::from_waker(&waker);
        let polls = AtomicUsize::new(0);
        let mut fut = std::pin::pin!(Repoll::new(std::future::poll_fn(|cx| {
            polls.fetch_add(1, SeqCst);
            let w = cx.waker().clone();
            std::thread::spawn(move || w.wake()).join().unwrap();
            Poll::<()>::Pending
        })));
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert_eq!(polls.load(SeqCst), 1, "not polled again in place");
        assert_eq!(count.get(), 1, "the task was woken");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wake_ups_from_other_threads_are_never_lost() {
        // A future woken from another thread at random moments of its polls must still finish.
        for _ in 0..200 {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let sender = std::thread::spawn(move || {
                std::thread::yield_now();
                let _ = tx.send(());
            });
            Repoll::new(rx).await.unwrap();
            sender.join().unwrap();
        }
    }
}
