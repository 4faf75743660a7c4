//! What the telemetry layer keeps of a request until its response body ends, when it
//! reports it (shared by the layer, which makes it, and the body, which finishes it).

use super::summary::Arrival;
use super::{Observer, Tap, trace};
use std::sync::Arc;
use tracing::Span;

/// What is kept until the response ends.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) arrival: Arrival,
    pub(super) tap: Tap,
    pub(super) span: Span,
    pub(super) observer: Arc<Observer>,
}

impl Pending {
    /// Reports the request; `ended`: its response was sent to the last byte.
    pub(super) fn finish(self, status: u16, ended: bool) {
        let summary = self.arrival.finish(status, ended, self.tap.take());
        trace::record_finish(&self.span, &summary);
        self.observer.observe(summary);
    }

    pub(super) fn span(&self) -> &Span {
        &self.span
    }
}
