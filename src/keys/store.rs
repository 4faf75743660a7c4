//! The key store: authentication, credit reservations ([`Reservation`], settled or released
//! through the store) and usage counters over a [`KeyPersistence`]. Over a persistence shared
//! with other instances, [`sync`] keeps the store current.

mod misses;
mod sync;

use super::hash::{KEY_PREFIX, ct_eq, generate_key, hash_key, is_hash, mask};
use super::limits::KeyLimits;
use super::period::LimitReset;
use super::persistence::{KeyPersistence, MemoryKeys};
use super::records::{Clock, KeyInfo, KeyUpdate, StoredKey, UsageCounters};
use super::{AuthError, InsufficientCredits, KeyStoreError, ReserveError};
use crate::catalog::{AuthConfig, KeyConfig, Usd};
use crate::ledger::now_ms;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug)]
struct Entry {
    key: StoredKey,
    reserved: Usd,
}

struct Inner {
    keys: Mutex<HashMap<String, Entry>>,
    /// Serialises persistence writes so the last one written carries the latest counters.
    persist: Mutex<()>,
    persistence: Arc<dyn KeyPersistence>,
    /// The persistence is shared with other instances ([`KeyPersistence::is_shared`]).
    shared: bool,
    /// Look-ups in the shared persistence that found nothing, remembered for a poll interval.
    misses: misses::Misses,
    clock: Clock,
    management_hash: Option<String>,
}

/// The gateway's keys. Cheap to clone (an `Arc`); every method takes `&self` and holds the lock
/// only for a map lookup and a few additions.
#[derive(Clone)]
pub struct KeyStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyStore")
            .field("keys", &self.lock().len())
            .field("persistence", &self.inner.persistence)
            .field("management_key", &self.inner.management_hash.is_some())
            .finish()
    }
}

/// Builds a [`KeyStore`]: config keys, a management key, persistence and a clock.
#[must_use]
pub struct KeyStoreBuilder {
    persistence: Arc<dyn KeyPersistence>,
    clock: Clock,
    management_hash: Option<String>,
    config_keys: Vec<StoredKey>,
    sync_every: std::time::Duration,
    error: Option<KeyStoreError>,
}

impl fmt::Debug for KeyStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyStoreBuilder")
            .field("config_keys", &self.config_keys.len())
            .finish_non_exhaustive()
    }
}

impl KeyStoreBuilder {
    /// Where managed keys and usage persist (default: nowhere).
    pub fn persistence(mut self, persistence: Arc<dyn KeyPersistence>) -> Self {
        self.persistence = persistence;
        self
    }

    /// How often a store over a shared persistence reads the other instances' changes
    /// (default 1 s). Unused otherwise.
    pub fn sync_every(mut self, every: std::time::Duration) -> Self {
        self.sync_every = every;
        self
    }

    /// The clock, unix ms (default: the system clock).
    pub fn clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The management key that unlocks `/api/v1/keys`; only its hash is kept.
    pub fn management_key(mut self, secret: &str) -> Self {
        self.management_hash = Some(hash_key(secret));
        self
    }

    /// Adds the `[auth]` management key and the `[[keys]]` of a config file, reading
    /// environment variables through `env`.
    pub fn config(
        mut self,
        auth: Option<&AuthConfig>,
        keys: &[KeyConfig],
        env: impl Fn(&str) -> Option<String>,
    ) -> Self {
        if let Some(var) = auth.and_then(|a| a.management_key_env.as_deref()) {
            match env(var) {
                Some(secret) if !secret.trim().is_empty() => {
                    self.management_hash = Some(hash_key(secret.trim()));
                }
                // Like a provider's key variable: while it is unset the management API is off.
                _ => tracing::warn!(
                    "management_key_env: ${var} is not set; /api/v1/keys is disabled"
                ),
            }
        }
        for k in keys {
            match config_key(k, &env) {
                Ok(Some(key)) if self.config_keys.iter().any(|c| c.hash == key.hash) => {
                    self.fail(format!("key `{}` is configured twice", k.label));
                }
                Ok(Some(key)) => self.config_keys.push(key),
                Ok(None) => {}
                Err(e) => self.fail(e),
            }
        }
        self
    }

    fn fail(&mut self, message: String) {
        self.error.get_or_insert(KeyStoreError::Config(message));
    }

    /// Loads persisted keys and builds the store. Persisted usage of config keys is kept;
    /// their other settings come from the config.
    pub fn build(self) -> Result<KeyStore, KeyStoreError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut map: HashMap<String, Entry> = self
            .config_keys
            .into_iter()
            .map(|key| {
                (
                    key.hash.clone(),
                    Entry {
                        key,
                        reserved: Usd::ZERO,
                    },
                )
            })
            .collect();
        for stored in self.persistence.load()? {
            match map.get_mut(&stored.hash) {
                Some(entry) if !entry.key.managed => entry.key.usage = stored.usage,
                Some(_) => {}
                None if stored.managed => {
                    map.insert(
                        stored.hash.clone(),
                        Entry {
                            key: stored,
                            reserved: Usd::ZERO,
                        },
                    );
                }
                // A config key since removed from the config.
                None => {}
            }
        }
        let store = KeyStore {
            inner: Arc::new(Inner {
                keys: Mutex::new(map),
                persist: Mutex::new(()),
                shared: self.persistence.is_shared(),
                misses: misses::Misses::new(self.sync_every),
                persistence: self.persistence,
                clock: self.clock,
                management_hash: self.management_hash,
            }),
        };
        if store.inner.shared {
            sync::spawn_poller(&store, self.sync_every)?;
        }
        Ok(store)
    }
}

/// `Ok(None)`: the key's variable is unset, so the key is left out (with a warning), the way a
/// provider whose key variable is unset is disabled.
fn config_key(
    k: &KeyConfig,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<StoredKey>, String> {
    let (hash, label) = match (&k.key_env, &k.key_sha256) {
        (Some(var), None) => match env(var) {
            Some(secret) if !secret.trim().is_empty() => {
                (hash_key(secret.trim()), mask(secret.trim()))
            }
            _ => {
                tracing::warn!("key `{}`: ${var} is not set; the key is left out", k.label);
                return Ok(None);
            }
        },
        (None, Some(h)) if is_hash(h.trim()) => {
            (h.trim().to_ascii_lowercase(), format!("{KEY_PREFIX}…"))
        }
        (None, Some(_)) => {
            return Err(format!(
                "key `{}`: key_sha256 must be 64 hex digits",
                k.label
            ));
        }
        _ => {
            return Err(format!(
                "key `{}`: set exactly one of key_env and key_sha256",
                k.label
            ));
        }
    };
    let limit = match k.limit {
        Some(l) if !(l >= 0.0 && l.is_finite()) => {
            return Err(format!(
                "key `{}`: limit must be a non-negative number",
                k.label
            ));
        }
        l => l.map(Usd::from_dollars),
    };
    let limit_reset = match &k.limit_reset {
        Some(r) => r.parse().map_err(|e| format!("key `{}`: {e}", k.label))?,
        None => LimitReset::Never,
    };
    Ok(Some(StoredKey {
        hash,
        name: k.label.clone(),
        label,
        limit,
        limit_reset,
        disabled: k.disabled,
        created_at: 0,
        managed: false,
        usage: UsageCounters::default(),
        limits: Arc::new(KeyLimits {
            rpm: k.rpm,
            tpm: k.tpm,
            models: k.models.clone(),
        }),
    }))
}

impl KeyStore {
    /// A builder with no keys, no persistence and the system clock.
    pub fn builder() -> KeyStoreBuilder {
        KeyStoreBuilder {
            persistence: Arc::new(MemoryKeys),
            clock: Arc::new(now_ms),
            management_hash: None,
            config_keys: Vec::new(),
            sync_every: std::time::Duration::from_secs(1),
            error: None,
        }
    }

    /// An empty store kept in memory.
    pub fn in_memory() -> KeyStore {
        KeyStore::builder()
            .build()
            .unwrap_or_else(|_| unreachable!("an empty in-memory store always builds"))
    }

    /// The store for a config file: its management key and `[[keys]]`, the process environment,
    /// and `persistence`.
    pub fn from_config(
        auth: Option<&AuthConfig>,
        keys: &[KeyConfig],
        persistence: Arc<dyn KeyPersistence>,
    ) -> Result<KeyStore, KeyStoreError> {
        KeyStore::builder()
            .persistence(persistence)
            .config(auth, keys, |var| std::env::var(var).ok())
            .build()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // Every update leaves the map consistent, so a panic elsewhere does not poison it.
        self.inner.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self) -> i64 {
        (self.inner.clock)()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks a presented key (`Authorization` value, with or without `Bearer `).
    pub fn authenticate(&self, bearer: &str) -> Result<KeyInfo, AuthError> {
        let secret = strip_bearer(bearer);
        if secret.is_empty() {
            return Err(AuthError::Missing);
        }
        let hash = hash_key(secret);
        let now = self.now();
        let mut keys = self.lock();
        let entry = keys.get_mut(&hash).ok_or(AuthError::Unknown)?;
        // The map lookup is on the hash, which leaks nothing usable; confirm in constant time.
        if !ct_eq(&entry.key.hash, &hash) {
            return Err(AuthError::Unknown);
        }
        if entry.key.disabled {
            return Err(AuthError::Disabled);
        }
        let mut info = snapshot(entry, now);
        info.label = mask(secret);
        Ok(info)
    }

    /// True when `bearer` is the configured management key (compared in constant time).
    pub fn is_management_key(&self, bearer: &str) -> bool {
        let secret = strip_bearer(bearer);
        match &self.inner.management_hash {
            Some(expected) if !secret.is_empty() => ct_eq(&hash_key(secret), expected),
            _ => false,
        }
    }

    /// What `GET /api/v1/key` shows for the management key: no limit, no usage,
    /// `is_management_key` set. `None` when `bearer` is not the management key.
    pub fn management_key_info(&self, bearer: &str) -> Option<KeyInfo> {
        if !self.is_management_key(bearer) {
            return None;
        }
        Some(KeyInfo {
            hash: self.inner.management_hash.clone().unwrap_or_default(),
            name: "management".to_owned(),
            label: mask(strip_bearer(bearer)),
            limit: None,
            limit_reset: LimitReset::Never,
            disabled: false,
            created_at: 0,
            managed: false,
            usage: UsageCounters::default(),
            reserved: Usd::ZERO,
            limits: Arc::default(),
            is_management_key: true,
        })
    }

    /// The key with this hash.
    pub fn get(&self, hash: &str) -> Option<KeyInfo> {
        let now = self.now();
        self.lock().get_mut(hash).map(|e| snapshot(e, now))
    }

    /// The key's rate limits and model allow-list (`None` for an unknown key).
    pub fn limits(&self, hash: &str) -> Option<Arc<KeyLimits>> {
        self.lock().get(hash).map(|e| Arc::clone(&e.key.limits))
    }

    /// Every key, oldest first.
    pub fn list(&self) -> Vec<KeyInfo> {
        let now = self.now();
        let mut all: Vec<KeyInfo> = self.lock().values_mut().map(|e| snapshot(e, now)).collect();
        all.sort_by(|a, b| (a.created_at, &a.name).cmp(&(b.created_at, &b.name)));
        all
    }

    /// Creates a managed key. Returns its secret, the only time it is ever available.
    pub fn create(
        &self,
        name: &str,
        limit: Option<Usd>,
        limit_reset: LimitReset,
    ) -> Result<(String, KeyInfo), KeyStoreError> {
        self.create_with_limits(name, limit, limit_reset, KeyLimits::default())
    }

    /// As [`KeyStore::create`], with rate limits and a model allow-list.
    pub fn create_with_limits(
        &self,
        name: &str,
        limit: Option<Usd>,
        limit_reset: LimitReset,
        limits: KeyLimits,
    ) -> Result<(String, KeyInfo), KeyStoreError> {
        let secret = generate_key();
        let now = self.now();
        let mut usage = UsageCounters::default();
        usage.roll(now);
        let key = StoredKey {
            hash: hash_key(&secret),
            name: name.to_owned(),
            label: mask(&secret),
            limit,
            limit_reset,
            disabled: false,
            created_at: now,
            managed: true,
            usage,
            limits: Arc::new(limits),
        };
        let _persist = self.persist_lock();
        self.inner.persistence.save(&key)?;
        let mut entry = Entry {
            key,
            reserved: Usd::ZERO,
        };
        let info = snapshot(&mut entry, now);
        self.lock().insert(info.hash.clone(), entry);
        Ok((secret, info))
    }

    /// Changes a managed key. `Ok(None)` when no key has this hash; an error for config keys.
    pub fn update(&self, hash: &str, update: KeyUpdate) -> Result<Option<KeyInfo>, KeyStoreError> {
        let now = self.now();
        let _persist = self.persist_lock();
        let (info, stored, before) = {
            let mut keys = self.lock();
            let Some(entry) = keys.get_mut(hash) else {
                return Ok(None);
            };
            if !entry.key.managed {
                return Err(config_owned(&entry.key.name));
            }
            let before = entry.key.clone();
            let k = &mut entry.key;
            if let Some(name) = update.name {
                k.name = name;
            }
            if let Some(limit) = update.limit {
                k.limit = limit;
            }
            if let Some(reset) = update.limit_reset {
                k.limit_reset = reset;
            }
            if let Some(disabled) = update.disabled {
                k.disabled = disabled;
            }
            if let Some(limits) = update.limits {
                k.limits = Arc::new(limits);
            }
            (snapshot(entry, now), entry.key.clone(), before)
        };
        if let Err(e) = self.inner.persistence.save(&stored) {
            // Not stored, so not in effect: the settings go back (the usage moved on by itself).
            if let Some(entry) = self.lock().get_mut(hash) {
                entry.key = StoredKey {
                    usage: entry.key.usage,
                    ..before
                };
            }
            return Err(e);
        }
        Ok(Some(info))
    }

    /// Deletes a managed key. `Ok(false)` when no key has this hash; an error for config keys.
    pub fn delete(&self, hash: &str) -> Result<bool, KeyStoreError> {
        let _persist = self.persist_lock();
        let removed = {
            let mut keys = self.lock();
            match keys.get(hash) {
                None => return Ok(false),
                Some(e) if !e.key.managed => return Err(config_owned(&e.key.name)),
                Some(_) => keys.remove(hash),
            }
        };
        if let Err(e) = self.inner.persistence.delete(hash) {
            // Not deleted where it is stored, so it stays (holds in flight included).
            if let Some(entry) = removed {
                self.lock().entry(hash.to_owned()).or_insert(entry);
            }
            return Err(e);
        }
        Ok(true)
    }

    /// Holds `worst_case` of the key's remaining limit for a request, atomically: concurrent
    /// reservations never hold more than `limit − usage in the period`. Unlimited keys always
    /// succeed. Settle the result with the actual cost; dropping it unsettled releases the hold.
    pub fn reserve(&self, hash: &str, worst_case: Usd) -> Result<Reservation, ReserveError> {
        let amount = worst_case.max(Usd::ZERO);
        let now = self.now();
        {
            let mut keys = self.lock();
            let entry = keys.get_mut(hash).ok_or(ReserveError::UnknownKey)?;
            if entry.key.disabled {
                return Err(ReserveError::Disabled);
            }
            if let Some(limit) = entry.key.limit {
                entry.key.usage.roll(now);
                let available =
                    limit - entry.key.usage.in_period(entry.key.limit_reset) - entry.reserved;
                if amount > available {
                    return Err(ReserveError::Insufficient(InsufficientCredits {
                        key_name: entry.key.name.clone(),
                        remaining: available.max(Usd::ZERO),
                        needed: amount,
                        limit,
                        limit_reset: entry.key.limit_reset,
                    }));
                }
            }
            entry.reserved += amount;
        }
        Ok(Reservation {
            store: self.clone(),
            hash: hash.to_owned(),
            amount,
            settled: false,
        })
    }

    /// Adds a spend made without a reservation.
    pub fn charge(&self, hash: &str, amount: Usd) {
        self.settle(hash, amount, Usd::ZERO);
    }

    fn settle(&self, hash: &str, actual: Usd, release: Usd) {
        let now = self.now();
        // A shared persistence adds increments, in any order; a file saved whole needs the
        // last write to carry the latest counters.
        let _persist = (!self.inner.shared).then(|| self.persist_lock());
        let stored = {
            let mut keys = self.lock();
            let Some(entry) = keys.get_mut(hash) else {
                return;
            };
            entry.reserved = (entry.reserved - release).max(Usd::ZERO);
            entry.key.usage.add(now, actual.max(Usd::ZERO));
            entry.key.clone()
        };
        let spent = actual.max(Usd::ZERO);
        if let Err(e) = self.inner.persistence.add_spend(&stored, spent, now) {
            tracing::warn!(error = %e, key = %stored.name, "could not persist key usage");
        }
    }

    fn release(&self, hash: &str, amount: Usd) {
        if let Some(entry) = self.lock().get_mut(hash) {
            entry.reserved = (entry.reserved - amount).max(Usd::ZERO);
        }
    }

    fn persist_lock(&self) -> MutexGuard<'_, ()> {
        self.inner.persist.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The token of an `Authorization` value: `Bearer <token>` (any case) or the bare token.
pub(super) fn strip_bearer(v: &str) -> &str {
    let v = v.trim();
    match v.get(..6) {
        Some(scheme)
            if scheme.eq_ignore_ascii_case("bearer")
                && v[6..].chars().next().is_none_or(char::is_whitespace) =>
        {
            v[6..].trim()
        }
        _ => v,
    }
}

fn config_owned(name: &str) -> KeyStoreError {
    KeyStoreError::ConfigOwned(name.to_owned())
}

fn snapshot(entry: &mut Entry, now: i64) -> KeyInfo {
    entry.key.usage.roll(now);
    let k = &entry.key;
    KeyInfo {
        hash: k.hash.clone(),
        name: k.name.clone(),
        label: k.label.clone(),
        limit: k.limit,
        limit_reset: k.limit_reset,
        disabled: k.disabled,
        created_at: k.created_at,
        managed: k.managed,
        usage: k.usage,
        reserved: entry.reserved,
        limits: Arc::clone(&k.limits),
        is_management_key: false,
    }
}

/// A hold on part of a key's limit for one request.
///
/// [`settle`](Reservation::settle) it with the actual cost; dropped unsettled (the request
/// failed or was cancelled), it releases the hold and charges nothing.
#[must_use = "dropping a reservation releases it at once"]
pub struct Reservation {
    store: KeyStore,
    hash: String,
    amount: Usd,
    settled: bool,
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
