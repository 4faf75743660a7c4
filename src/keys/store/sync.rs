//! Keeping a [`KeyStore`] current over a persistence shared with other instances
//! ([`KeyPersistence::is_shared`](crate::keys::KeyPersistence::is_shared), PostgreSQL):
//!
//! 1. A key this instance does not know is looked up before it is refused
//!    ([`KeyStore::authenticate_or_find`]), so a key created through another instance works at
//!    once; found, it is cached like any other key. When the look-up cannot be made the answer
//!    is an error (503), never an admission: money fails closed.
//! 2. A background thread polls the changes every `sync_every` ([`KeyStore::sync`]): keys
//!    created, changed (settings and spend) or deleted elsewhere. So a key disabled or deleted
//!    on one instance stops working on the others within that interval, and every instance
//!    shows the deployment-wide spend.
//!
//! A look-up that finds nothing is remembered for one poll interval (`misses`), so wrong keys
//! retried in a loop cost no query each.
//!
//! Polls and look-ups hold the store's persistence lock, the one management writes (create,
//! update, delete) hold: a poll's answer, read before a local write, is never applied after
//! it. Settlements do not take that lock over a shared persistence (their increments add in
//! any order), so a slow poll never holds a request up.

use super::{Entry, KeyStore};
use crate::catalog::Usd;
use crate::keys::hash::hash_key;
use crate::keys::{AuthError, KeyChange, KeyInfo, KeyLookupError, KeyStoreError};
use std::sync::Arc;
use std::time::Duration;

impl KeyStore {
    /// True when the keys persist in a store shared with other instances.
    pub fn is_shared(&self) -> bool {
        self.inner.shared
    }

    /// As [`KeyStore::authenticate`], but a key unknown here is looked up in the shared
    /// persistence (and cached) before it is refused. Blocks for that look-up: call it off the
    /// async executor (`spawn_blocking`).
    pub fn authenticate_or_find(&self, bearer: &str) -> Result<KeyInfo, KeyLookupError> {
        match self.authenticate(bearer) {
            Err(AuthError::Unknown) if self.inner.shared => {}
            other => return other.map_err(Into::into),
        }
        let hash = hash_key(super::strip_bearer(bearer));
        if self.inner.misses.recent(&hash) {
            return Err(AuthError::Unknown.into());
        }
        {
            let _persist = self.persist_lock();
            // Another request may have found it meanwhile.
            if !self.lock().contains_key(&hash) {
                match self.inner.persistence.find(&hash) {
                    Ok(Some(key)) if key.managed && key.hash == hash => {
                        self.lock().entry(hash).or_insert(Entry {
                            key,
                            reserved: Usd::ZERO,
                        });
                    }
                    Ok(_) => {
                        self.inner.misses.note(&hash);
                        return Err(AuthError::Unknown.into());
                    }
                    Err(e) => return Err(KeyLookupError::Unavailable(e)),
                }
            }
        }
        self.authenticate(bearer).map_err(Into::into)
    }

    /// Reads and applies what other instances changed since the last poll; returns how many
    /// keys changed. The background poller calls it every `sync_every`.
    pub fn sync(&self) -> Result<usize, KeyStoreError> {
        let _persist = self.persist_lock();
        let changes = self.inner.persistence.changes()?;
        let n = changes.len();
        let mut keys = self.lock();
        for change in changes {
            match change {
                KeyChange::Deleted(hash) => {
                    if keys.get(&hash).is_some_and(|e| e.key.managed) {
                        keys.remove(&hash);
                    }
                }
                KeyChange::Upsert(stored) => match keys.get_mut(&stored.hash) {
                    Some(e) if e.key.managed && stored.managed => e.key = stored,
                    // A config key's settings come from the config; only its spend is shared.
                    Some(e) => e.key.usage = stored.usage,
                    None if stored.managed => {
                        keys.insert(
                            stored.hash.clone(),
                            Entry {
                                key: stored,
                                reserved: Usd::ZERO,
                            },
                        );
                    }
                    None => {}
                },
            }
        }
        Ok(n)
    }

    /// Writes whatever the persistence keeps in memory (spend increments); for shutdown.
    pub fn flush(&self) {
        self.inner.persistence.flush();
    }
}

/// Starts the thread that calls [`KeyStore::sync`] every `every`; it ends with the store.
pub(super) fn spawn_poller(store: &KeyStore, every: Duration) -> Result<(), KeyStoreError> {
    let weak = Arc::downgrade(&store.inner);
    std::thread::Builder::new()
        .name("switchyard-keys-sync".into())
        .spawn(move || {
            let mut failing = false;
            loop {
                std::thread::sleep(every);
                let Some(inner) = weak.upgrade() else { return };
                match (KeyStore { inner }).sync() {
                    Ok(_) if failing => {
                        failing = false;
                        tracing::info!("keys: reading other instances' changes again");
                    }
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(error = %e, "keys: cannot read other instances' changes; known keys keep working");
                    }
                    _ => {}
                }
            }
        })
        .map(drop)
        .map_err(|e| KeyStoreError::Persistence(format!("the key sync thread: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyPersistence, LimitReset, StoredKey};
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// One table shared by two stores, as PostgreSQL is by two instances; counts look-ups.
    #[derive(Debug, Default)]
    struct SharedTable {
        keys: Mutex<HashMap<String, StoredKey>>,
        finds: AtomicUsize,
    }

    impl KeyPersistence for SharedTable {
        fn load(&self) -> Result<Vec<StoredKey>, KeyStoreError> {
            Ok(self.keys.lock().unwrap().values().cloned().collect())
        }
        fn save(&self, key: &StoredKey) -> Result<(), KeyStoreError> {
            self.keys
                .lock()
                .unwrap()
                .insert(key.hash.clone(), key.clone());
            Ok(())
        }
        fn delete(&self, hash: &str) -> Result<(), KeyStoreError> {
            self.keys.lock().unwrap().remove(hash);
            Ok(())
        }
        fn is_shared(&self) -> bool {
            true
        }
        fn find(&self, hash: &str) -> Result<Option<StoredKey>, KeyStoreError> {
            self.finds.fetch_add(1, Ordering::SeqCst);
            Ok(self.keys.lock().unwrap().get(hash).cloned())
        }
    }

    fn store(table: &Arc<SharedTable>, every: Duration) -> KeyStore {
        KeyStore::builder()
            .persistence(table.clone())
            .sync_every(every)
            .build()
            .unwrap()
    }

    #[test]
    fn another_instances_key_is_found_once_and_a_wrong_one_is_asked_once_a_poll() {
        let table = Arc::new(SharedTable::default());
        let every = Duration::from_millis(200);
        let (a, b) = (store(&table, every), store(&table, every));
        let (secret, _) = a.create("team", None, LimitReset::Never).unwrap();

        assert!(b.authenticate_or_find(&format!("Bearer {secret}")).is_ok());
        assert!(b.authenticate_or_find(&format!("Bearer {secret}")).is_ok());
        assert_eq!(
            table.finds.load(Ordering::SeqCst),
            1,
            "found once, then cached"
        );

        let wrong = "Bearer sk-sy-v1-not-a-key-of-anyone";
        for _ in 0..5 {
            assert!(matches!(
                b.authenticate_or_find(wrong),
                Err(KeyLookupError::Auth(AuthError::Unknown))
            ));
        }
        assert_eq!(
            table.finds.load(Ordering::SeqCst),
            2,
            "one look-up for five tries"
        );

        std::thread::sleep(every + Duration::from_millis(50));
        assert!(b.authenticate_or_find(wrong).is_err());
        assert_eq!(
            table.finds.load(Ordering::SeqCst),
            3,
            "asked again after a poll interval"
        );
    }
}
