//! [`KeyPersistence`]: where managed keys and usage counters go between restarts, and
//! [`MemoryKeys`], the no-op for a store that lives as long as the process.

use super::KeyStoreError;
use super::records::StoredKey;
use std::fmt;

/// Where managed keys and every key's usage survive restarts.
pub trait KeyPersistence: Send + Sync + fmt::Debug {
    /// Every stored key.
    fn load(&self) -> Result<Vec<StoredKey>, KeyStoreError>;
    /// Inserts or replaces a key.
    fn save(&self, key: &StoredKey) -> Result<(), KeyStoreError>;
    /// Removes a key.
    fn delete(&self, hash: &str) -> Result<(), KeyStoreError>;
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
