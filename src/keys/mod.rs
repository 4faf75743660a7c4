//! Gateway API keys with credit limits.
//!
//! Keys look like `sk-sy-v1-<64 hex>`. The [`KeyStore`] keeps only their SHA-256 ([`hash`]),
//! finds a presented key by its hash and confirms it with a constant-time comparison. Each key
//! may carry a credit limit in USD that resets daily, weekly (Mondays) or monthly, in UTC
//! ([`period`]).
//!
//! Limits hold under concurrency: before dispatch a request [reserves](KeyStore::reserve) its
//! worst-case cost against `limit − usage in the period − other reservations`, atomically;
//! when it ends it [settles](Reservation::settle) the actual cost, and a request that fails or
//! is cancelled releases its hold when the [`Reservation`] drops.
//!
//! Keys come from the config file (`[[keys]]`) or from the management API ([`api`]); managed
//! keys and every key's running usage persist through a [`KeyPersistence`] — the `keys` table
//! of the SQLite ledger ([`SqliteKeys`]), the `api_keys` table in PostgreSQL shared by every
//! instance of a deployment (`PostgresKeys`, feature `postgres`: keys created elsewhere are
//! looked up and changes polled, spend adds up across instances), or nowhere ([`MemoryKeys`]).
//!
//! ```
//! use switchyard::catalog::Usd;
//! use switchyard::keys::{KeyStore, LimitReset};
//!
//! let store = KeyStore::in_memory();
//! let (secret, info) = store
//!     .create("team-a", Some(Usd::from_dollars(10.0)), LimitReset::Monthly)
//!     .unwrap();
//! assert_eq!(store.authenticate(&secret).unwrap().hash, info.hash);
//!
//! let hold = store.reserve(&info.hash, Usd::from_dollars(0.5)).unwrap();
//! hold.settle(Usd::from_dollars(0.1));
//! let info = store.get(&info.hash).unwrap();
//! assert_eq!(info.limit_remaining(), Some(Usd::from_dollars(9.9)));
//! ```

pub mod api;
pub mod hash;
mod layer;
mod limits;
pub mod period;
mod persistence;
#[cfg(feature = "postgres")]
mod postgres;
mod records;
#[cfg(feature = "sqlite")]
mod sqlite;
mod store;

pub use layer::{Auth, AuthLayer, Credit, CreditLayer, authenticate_shared, worst_case};
pub use limits::{KeyLimits, glob};
pub use period::LimitReset;
pub use persistence::{KeyChange, KeyPersistence, MemoryKeys};
#[cfg(feature = "postgres")]
pub use postgres::PostgresKeys;
pub use records::{Clock, KeyInfo, KeyUpdate, StoredKey, UsageCounters};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteKeys;
pub use store::{KeyStore, KeyStoreBuilder, Reservation};

use crate::catalog::Usd;
use http::StatusCode;
use std::fmt;

/// Why a request's key was refused. Messages never contain the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// No key was sent (401).
    Missing,
    /// The key is not known (401).
    Unknown,
    /// The key is disabled (403).
    Disabled,
}

impl AuthError {
    /// The HTTP status to answer with.
    pub fn status(self) -> StatusCode {
        match self {
            AuthError::Missing | AuthError::Unknown => StatusCode::UNAUTHORIZED,
            AuthError::Disabled => StatusCode::FORBIDDEN,
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthError::Missing => "No auth credentials found: send `Authorization: Bearer <key>`",
            AuthError::Unknown => "Invalid API key",
            AuthError::Disabled => "This API key is disabled",
        })
    }
}

impl std::error::Error for AuthError {}

/// Why a key could not be confirmed by [`KeyStore::authenticate_or_find`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLookupError {
    /// Refused: missing, unknown (here and in the shared store) or disabled.
    Auth(AuthError),
    /// The key is not known here and the shared store could not be asked (503): a key that
    /// cannot be verified is never admitted.
    Unavailable(KeyStoreError),
}

impl KeyLookupError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> StatusCode {
        match self {
            KeyLookupError::Auth(e) => e.status(),
            KeyLookupError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl From<AuthError> for KeyLookupError {
    fn from(e: AuthError) -> Self {
        KeyLookupError::Auth(e)
    }
}

impl fmt::Display for KeyLookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyLookupError::Auth(e) => e.fmt(f),
            KeyLookupError::Unavailable(e) => write!(
                f,
                "This API key is not known to this instance and could not be checked in the \
                 shared key store ({e}); try again"
            ),
        }
    }
}

impl std::error::Error for KeyLookupError {}

/// A request whose worst-case cost does not fit in its key's remaining limit.
///
/// Answered with 402 (`payment_required`), the status OpenRouter's docs give, with OpenRouter's
/// observed "Key limit exceeded" wording (SPEC §9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsufficientCredits {
    /// The key's name.
    pub key_name: String,
    /// What is left: limit − usage in the period − other reservations, at least zero.
    pub remaining: Usd,
    /// The request's worst-case cost.
    pub needed: Usd,
    /// The key's limit.
    pub limit: Usd,
    /// The limit's period.
    pub limit_reset: LimitReset,
}

impl InsufficientCredits {
    /// The HTTP status to answer with: 402.
    pub fn status(&self) -> StatusCode {
        StatusCode::PAYMENT_REQUIRED
    }
}

impl fmt::Display for InsufficientCredits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let period = match self.limit_reset.as_str() {
            Some(p) => format!(" {p}"),
            None => String::new(),
        };
        write!(
            f,
            "Key limit exceeded: this request needs up to {} but the key `{}` has {} of its {}{period} limit left",
            dollars(self.needed),
            self.key_name,
            dollars(self.remaining),
            dollars(self.limit),
        )
    }
}

impl std::error::Error for InsufficientCredits {}

/// `$10`, `$0.0123`, or exact digits below a hundredth of a cent (`$0.0000025`).
fn dollars(v: Usd) -> String {
    let p = v.picodollars();
    if p % Usd::PICO == 0 {
        format!("${}", p / Usd::PICO)
    } else if p.unsigned_abs() >= 100_000_000 {
        format!("${:.4}", v.as_f64())
    } else {
        format!("${v}")
    }
}

/// Why a reservation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveError {
    /// Not enough of the limit is left.
    Insufficient(InsufficientCredits),
    /// The key no longer exists (deleted since the request authenticated).
    UnknownKey,
    /// The key was disabled since the request authenticated.
    Disabled,
}

impl ReserveError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> StatusCode {
        match self {
            ReserveError::Insufficient(e) => e.status(),
            ReserveError::UnknownKey => AuthError::Unknown.status(),
            ReserveError::Disabled => AuthError::Disabled.status(),
        }
    }
}

impl fmt::Display for ReserveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReserveError::Insufficient(e) => e.fmt(f),
            ReserveError::UnknownKey => AuthError::Unknown.fmt(f),
            ReserveError::Disabled => AuthError::Disabled.fmt(f),
        }
    }
}

impl std::error::Error for ReserveError {}

/// Bad key configuration, a refused change, or a persistence failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyStoreError {
    /// The `[auth]`/`[[keys]]` configuration is wrong.
    Config(String),
    /// The key (named) comes from the config file; the management API cannot change it.
    ConfigOwned(String),
    /// Reading or writing persisted keys failed.
    Persistence(String),
}

impl fmt::Display for KeyStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyStoreError::Config(m) => write!(f, "keys config: {m}"),
            KeyStoreError::ConfigOwned(name) => write!(
                f,
                "key `{name}` is defined in the config file; change it there"
            ),
            KeyStoreError::Persistence(m) => write!(f, "keys storage: {m}"),
        }
    }
}

impl std::error::Error for KeyStoreError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insufficient_credits_reads_well() {
        let e = InsufficientCredits {
            key_name: "team-a".into(),
            remaining: Usd::from_dollars(0.004),
            needed: Usd::from_dollars(0.0123),
            limit: Usd::from_dollars(10.0),
            limit_reset: LimitReset::Monthly,
        };
        assert_eq!(
            e.to_string(),
            "Key limit exceeded: this request needs up to $0.0123 but the key `team-a` has \
             $0.0040 of its $10 monthly limit left"
        );
        assert_eq!(dollars(Usd::from_per_million(2.5)), "$0.0000025");
    }
}
