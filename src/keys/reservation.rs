//! [`Reservation`]: a hold on part of a key's limit for one request, settled with the actual
//! cost or released when dropped.

use super::store::KeyStore;
use crate::catalog::Usd;
use std::fmt;

/// A hold on part of a key's limit for one request.
///
/// [`settle`](Reservation::settle) it with the actual cost; dropped unsettled (the request
/// failed or was cancelled), it releases the hold and charges nothing.
#[must_use = "dropping a reservation releases it at once"]
pub struct Reservation {
    pub(super) store: KeyStore,
    pub(super) hash: String,
    pub(super) amount: Usd,
    pub(super) settled: bool,
}

impl fmt::Debug for Reservation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reservation")
            .field("hash", &self.hash)
            .field("amount", &self.amount)
            .finish()
    }
}

impl Reservation {
    /// The amount held.
    pub fn amount(&self) -> Usd {
        self.amount
    }

    /// The key's hash.
    pub fn key_hash(&self) -> &str {
        &self.hash
    }

    /// Releases the hold and charges `actual` to the key.
    pub fn settle(mut self, actual: Usd) {
        self.settled = true;
        self.store.settle(&self.hash, actual, self.amount);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.settled {
            self.store.release(&self.hash, self.amount);
        }
    }
}
