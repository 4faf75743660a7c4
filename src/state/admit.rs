//! [`Admission`]: the one step before dispatch that asks the shared state whether a request
//! may go — the key's per-minute limits and its credit reservation together, so a shared
//! backend answers both in one round trip — and [`LocalAdmission`], the in-process one over the
//! [`KeyStore`] and a [`RateLimiter`].

use super::rate::{LocalRateLimiter, RateLimited, RateLimiter};
use crate::catalog::Usd;
use crate::context::CreditSettle;
use crate::keys::{KeyStore, Reservation, ReserveError};
use crate::ledger::now_ms;
use futures_util::future::BoxFuture;
use std::fmt;
use std::sync::Arc;

/// Admits requests: per-minute limits, then the credit hold.
pub trait Admission: Send + Sync + fmt::Debug {
    /// Asks whether a request on the key (by hash) whose worst case is `cost` may go. On
    /// success the hold is settled by the meter (dropping it releases it).
    fn admit(&self, key_hash: &str, cost: Usd) -> Admit;
}

/// The answer of [`Admission::admit`]: at once (in process) or after a round trip.
pub enum Admit {
    /// Decided without waiting.
    Ready(Result<Box<dyn CreditSettle>, Refusal>),
    /// Decided by a shared store.
    Pending(BoxFuture<'static, Result<Box<dyn CreditSettle>, Refusal>>),
}

impl fmt::Debug for Admit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Admit::Ready(_) => "Admit::Ready",
            Admit::Pending(_) => "Admit::Pending",
        })
    }
}

/// Why a request was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not enough credit, or the key is gone or disabled.
    Credit(ReserveError),
    /// A per-minute limit is used up (429).
    Rate(RateLimited),
    /// The shared state could not be asked: money fails closed (503).
    Unavailable(StateUnavailable),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Credit(e) => e.fmt(f),
            Refusal::Rate(e) => e.fmt(f),
            Refusal::Unavailable(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Refusal {}

/// The shared state store did not answer (503). Names the store; never the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateUnavailable {
    /// What was asked of whom: `Redis at redis://10.0.0.5:6379`.
    pub store: String,
    /// The cause.
    pub cause: String,
}

impl fmt::Display for StateUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "The shared credit and rate-limit store ({}) is unreachable, so spending cannot be \
             checked and the request is refused: {}",
            self.store, self.cause
        )
    }
}

impl std::error::Error for StateUnavailable {}

/// Limits and credits in this process: the key store's reservations and a [`RateLimiter`].
#[derive(Debug, Clone)]
pub struct LocalAdmission {
    store: KeyStore,
    limiter: Arc<dyn RateLimiter>,
}

impl LocalAdmission {
    /// Admission over `store` with a fresh in-process [`LocalRateLimiter`].
    pub fn new(store: KeyStore) -> Self {
        Self::with_limiter(store, Arc::new(LocalRateLimiter::new()))
    }

    /// Admission over `store` counting per-minute limits in `limiter`.
    pub fn with_limiter(store: KeyStore, limiter: Arc<dyn RateLimiter>) -> Self {
        LocalAdmission { store, limiter }
    }

    fn decide(&self, key_hash: &str, cost: Usd) -> Result<Box<dyn CreditSettle>, Refusal> {
        // Credits first: a request refused for money does not use up the minute's requests.
        let reservation = self
            .store
            .reserve(key_hash, cost)
            .map_err(Refusal::Credit)?;
        let limits = self.store.limits(key_hash).unwrap_or_default();
        if limits.rpm.is_none() && limits.tpm.is_none() {
            return Ok(Box::new(reservation));
        }
        let name = self.store.get(key_hash).map(|k| k.name).unwrap_or_default();
        self.limiter
            .acquire(key_hash, &name, &limits, now_ms())
            .map_err(Refusal::Rate)?;
        Ok(Box::new(LocalHold {
            reservation,
            limiter: Arc::clone(&self.limiter),
        }))
    }
}

impl Admission for LocalAdmission {
    fn admit(&self, key_hash: &str, cost: Usd) -> Admit {
        Admit::Ready(self.decide(key_hash, cost))
    }
}

/// A reservation whose tokens also count towards the key's tokens per minute.
struct LocalHold {
    reservation: Reservation,
    limiter: Arc<dyn RateLimiter>,
}

impl fmt::Debug for LocalHold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalHold")
            .field("reservation", &self.reservation)
            .finish_non_exhaustive()
    }
}

impl CreditSettle for LocalHold {
    fn settle(self: Box<Self>, actual: Usd) {
        self.settle_with_tokens(actual, 0);
    }

    fn settle_with_tokens(self: Box<Self>, actual: Usd, tokens: u64) {
        self.limiter
            .add_tokens(self.reservation.key_hash(), tokens, now_ms());
        self.reservation.settle(actual);
    }
}
