//! The gateway's own overhead per request: the time from the request's arrival
//! ([`RequestContext::start`](crate::context::RequestContext::start)) to the response headers, minus the time spent
//! waiting on upstreams ([`UpstreamWait`]). The parse layer sends it in every completion response
//! as [`OVERHEAD_HEADER`] (`x-switchyard-overhead-us`, whole microseconds).
//!
//! 1. Parse creates the request's [`RequestContext`](crate::context::RequestContext), whose
//!    [`UpstreamWait`] the layers inside carry to the upstream service in the request
//!    extensions (translate copies the context onto the upstream request it builds).
//! 2. Upstream adds the time until the response headers, and [`WaitClock`] adds every interval a
//!    body spends pending on the upstream while it is read inside the scope (a non-streaming
//!    body, or a stream until its first content event commits it).
//! 3. Parse computes [`overhead`] when the response headers are ready, sets the header and
//!    closes the accumulator ([`UpstreamWait::close`]): later waits change nothing.
//!
//! The time to read the client's request body counts as overhead: a bare proxy streams it.
//!
//! Given a [`Metrics`](crate::metrics::Metrics) registry, parse also records the same value in
//! the `switchyard_overhead_seconds` histogram, so a scrape of `GET /metrics` shows the
//! distribution (the tail, above all) that single headers cannot.
//!
//! ```
//! use switchyard::context::UpstreamWait;
//! use std::time::{Duration, Instant};
//! let start = Instant::now();
//! let wait = UpstreamWait::default();
//! wait.add(Duration::from_secs(3600));
//! assert_eq!(switchyard::overhead::overhead(start, &wait), Duration::ZERO);
//! ```

use crate::context::{RequestContext, UpstreamWait};
use http::HeaderMap;
use std::time::{Duration, Instant};

/// Response header carrying the gateway's overhead in microseconds.
pub const OVERHEAD_HEADER: &str = "x-switchyard-overhead-us";

/// Time since `start` not spent waiting on upstreams.
pub fn overhead(start: Instant, wait: &UpstreamWait) -> Duration {
    start.elapsed().saturating_sub(wait.get())
}

/// Sets [`OVERHEAD_HEADER`] to `overhead` in whole microseconds.
pub fn set_header(headers: &mut HeaderMap, overhead: Duration) {
    headers.insert(
        OVERHEAD_HEADER,
        crate::decimal::header_value(whole_micros(overhead)),
    );
}

/// `d` in whole microseconds (the header's unit and the histogram's), saturating.
pub fn whole_micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Adds the intervals a body spends pending to its request's [`UpstreamWait`]: call
/// [`WaitClock::pending`] when a poll returns `Pending` and [`WaitClock::ready`] when one
/// returns `Ready`.
#[derive(Debug, Default)]
pub struct WaitClock {
    ctx: Option<RequestContext>,
    since: Option<Instant>,
}

impl WaitClock {
    /// A clock adding to the upstream wait of `ctx` (none: a no-op).
    pub fn new(ctx: Option<RequestContext>) -> Self {
        WaitClock { ctx, since: None }
    }

    fn wait(&self) -> Option<&UpstreamWait> {
        self.ctx.as_ref().map(RequestContext::upstream_wait)
    }

    /// The body returned `Pending`. Once the total is read ([`UpstreamWait::close`]) this
    /// reads no clock: a stream's frames come after the header is sent.
    pub fn pending(&mut self) {
        if self.since.is_none() && self.wait().is_some_and(|w| !w.is_closed()) {
            self.since = Some(Instant::now());
        }
    }

    /// The body returned `Ready`.
    pub fn ready(&mut self) {
        let since = self.since.take();
        if let (Some(w), Some(t)) = (self.wait(), since) {
            if !w.is_closed() {
                w.add(t.elapsed());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_clock_adds_pending_intervals_only() {
        let ctx = RequestContext::new();
        let wait = ctx.upstream_wait();
        let mut clock = WaitClock::new(Some(ctx.clone()));
        clock.ready();
        assert_eq!(wait.get(), Duration::ZERO);
        clock.pending();
        clock.pending();
        std::thread::sleep(Duration::from_millis(2));
        clock.ready();
        let waited = wait.get();
        assert!(waited >= Duration::from_millis(2), "{waited:?}");
        clock.ready();
        assert_eq!(wait.get(), waited);
        WaitClock::new(None).pending();
    }

    #[test]
    fn a_closed_total_keeps_its_value_and_takes_no_more() {
        let ctx = RequestContext::new();
        let wait = ctx.upstream_wait();
        wait.add(Duration::from_micros(5));
        let mut clock = WaitClock::new(Some(ctx.clone()));
        clock.pending();
        wait.close();
        assert!(wait.is_closed());
        assert_eq!(wait.get(), Duration::from_micros(5));
        std::thread::sleep(Duration::from_millis(1));
        clock.ready();
        clock.pending();
        assert!(clock.since.is_none(), "no clock read once closed");
        assert_eq!(wait.get(), Duration::from_micros(5));
    }

    #[test]
    fn header_is_whole_microseconds() {
        let mut h = HeaderMap::new();
        set_header(&mut h, Duration::from_nanos(12_345_678));
        assert_eq!(h[OVERHEAD_HEADER], "12345");
    }
}
