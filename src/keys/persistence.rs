//! [`KeyPersistence`]: where managed keys and usage counters go between restarts, and
//! [`MemoryKeys`], the no-op for a store that lives as long as the process.
//!
//! A persistence kept by one instance (a SQLite file) only needs `load`, `save` and `delete`.
//! One shared by several instances (PostgreSQL) says so with [`is_shared`](KeyPersistence::is_shared)
//! and adds what sharing takes: spend added as increments ([`add_spend`](KeyPersistence::add_spend)),
//! a look-up for a key created elsewhere ([`find`](KeyPersistence::find)) and the changes the
//! other instances made ([`changes`](KeyPersistence::changes)), which the store polls.

use super::KeyStoreError;
use super::records::StoredKey;
use crate::catalog::Usd;
use std::fmt;

/// A change another instance made, as [`KeyPersistence::changes`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyChange {
    /// A key created or changed (settings or spend); its usage is the deployment-wide one.
    Upsert(StoredKey),
    /// The key with this hash was deleted.
    Deleted(String),
}

/// Where managed keys and every key's usage survive restarts.
pub trait KeyPersistence: Send + Sync + fmt::Debug {
    /// Every stored key.
    fn load(&self) -> Result<Vec<StoredKey>, KeyStoreError>;
    /// Inserts or replaces a key.
    fn save(&self, key: &StoredKey) -> Result<(), KeyStoreError>;
    /// Removes a key.
    fn delete(&self, hash: &str) -> Result<(), KeyStoreError>;

    /// Records that `key` spent `amount` at `at_ms` (`key.usage` already counts it). By default
    /// the key is saved whole, which is right for one instance's own file; a shared persistence
    /// adds the increment instead, never overwriting what other instances added.
    fn add_spend(&self, key: &StoredKey, amount: Usd, at_ms: i64) -> Result<(), KeyStoreError> {
        let _ = (amount, at_ms);
        self.save(key)
    }

    /// True when several instances share this persistence: the store then looks up keys it does
    /// not know ([`find`](Self::find)) and polls [`changes`](Self::changes).
    fn is_shared(&self) -> bool {
        false
    }

    /// The managed key with this hash, if another instance created it (and it is not deleted).
    fn find(&self, hash: &str) -> Result<Option<StoredKey>, KeyStoreError> {
        let _ = hash;
        Ok(None)
    }

    /// What changed since the last call (on the first, since [`load`](Self::load)).
    fn changes(&self) -> Result<Vec<KeyChange>, KeyStoreError> {
        Ok(Vec::new())
    }

    /// Writes whatever waits in memory (spend increments) before the process exits.
    fn flush(&self) {}
}

/// No persistence: keys live as long as the process.
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryKeys;

impl KeyPersistence for MemoryKeys {
    fn load(&self) -> Result<Vec<StoredKey>, KeyStoreError> {
        Ok(Vec::new())
    }
    fn save(&self, _: &StoredKey) -> Result<(), KeyStoreError> {
        Ok(())
    }
    fn delete(&self, _: &str) -> Result<(), KeyStoreError> {
        Ok(())
    }
}
