//! A two-label family of series: `first → second → T`, nested so an existing series is found
//! by two `&str` lookups with no allocation (a tuple key would need owned strings to look up).
//!
//! Label values come from the catalogue (models, providers) and the key store (labels): bounded
//! sets known only at run time. A series is written once (its first sample), then only read,
//! so the lock is a read-write lock taken for reading on the hot path.

use std::collections::HashMap;
use std::sync::RwLock;

type Inner<T> = HashMap<Box<str>, T, foldhash::fast::RandomState>;

/// Series keyed by two label values.
#[derive(Debug)]
pub(super) struct Labeled<T> {
    map: RwLock<Inner<Inner<T>>>,
}

impl<T> Default for Labeled<T> {
    fn default() -> Self {
        Labeled {
            map: RwLock::default(),
        }
    }
}

impl<T: Default> Labeled<T> {
    /// Runs `f` on the series `(a, b)`, created empty on first use.
    pub(super) fn with(&self, a: &str, b: &str, f: impl FnOnce(&T)) {
        // A poisoned lock still guards valid atomics: nothing panics half-way through an update.
        if let Some(series) = self
            .map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(a)
            .and_then(|m| m.get(b))
        {
            return f(series);
        }
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        f(map
            .entry(a.into())
            .or_default()
            .entry(b.into())
            .or_default());
    }

    /// Every series sorted by its labels, so consecutive scrapes list them in the same order.
    pub(super) fn each_sorted(&self, mut f: impl FnMut(&str, &str, &T)) {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        let mut firsts: Vec<(&str, &Inner<T>)> = map.iter().map(|(k, v)| (&**k, v)).collect();
        firsts.sort_unstable_by_key(|&(k, _)| k);
        for (a, inner) in firsts {
            let mut seconds: Vec<(&str, &T)> = inner.iter().map(|(k, v)| (&**k, v)).collect();
            seconds.sort_unstable_by_key(|&(k, _)| k);
            for (b, series) in seconds {
                f(a, b, series);
            }
        }
    }
}
