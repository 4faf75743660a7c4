//! What the store keeps per key ([`StoredKey`], its [`UsageCounters`]) and what it hands out
//! ([`KeyInfo`] snapshots, [`KeyUpdate`] changes).

use super::limits::KeyLimits;
use super::period::{LimitReset, day_start, month_start, week_start};
use crate::catalog::Usd;
use std::sync::Arc;

/// The current time in unix milliseconds; injectable so tests can roll periods over.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// A key's spend, overall and in the current UTC day, week and month.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageCounters {
    /// Since the key was created.
    pub total: Usd,
    /// In the day starting at `day_start`.
    pub daily: Usd,
    /// In the week starting at `week_start`.
    pub weekly: Usd,
    /// In the month starting at `month_start`.
    pub monthly: Usd,
    /// Start (unix ms) of the day `daily` counts.
    pub day_start: i64,
    /// Start (unix ms) of the week `weekly` counts.
    pub week_start: i64,
    /// Start (unix ms) of the month `monthly` counts.
    pub month_start: i64,
}

impl UsageCounters {
    /// Zeroes the counters whose period has ended by `now_ms`.
    pub fn roll(&mut self, now_ms: i64) {
        let (d, w, m) = (day_start(now_ms), week_start(now_ms), month_start(now_ms));
        if d != self.day_start {
            self.day_start = d;
            self.daily = Usd::ZERO;
        }
        if w != self.week_start {
            self.week_start = w;
            self.weekly = Usd::ZERO;
        }
        if m != self.month_start {
            self.month_start = m;
            self.monthly = Usd::ZERO;
        }
    }

    /// Adds a spend at `now_ms`.
    pub fn add(&mut self, now_ms: i64, amount: Usd) {
        self.roll(now_ms);
        self.total += amount;
        self.daily += amount;
        self.weekly += amount;
        self.monthly += amount;
    }

    /// These counters with `more` added: totals add; each period's spend adds when both
    /// count the same period, else the later period's spend is kept (the earlier one is over).
    pub fn plus(&self, more: &UsageCounters) -> UsageCounters {
        let period = |a: (Usd, i64), b: (Usd, i64)| match a.1.cmp(&b.1) {
            std::cmp::Ordering::Equal => (a.0 + b.0, a.1),
            std::cmp::Ordering::Less => b,
            std::cmp::Ordering::Greater => a,
        };
        let (daily, day_start) = period((self.daily, self.day_start), (more.daily, more.day_start));
        let (weekly, week_start) = period(
            (self.weekly, self.week_start),
            (more.weekly, more.week_start),
        );
        let (monthly, month_start) = period(
            (self.monthly, self.month_start),
            (more.monthly, more.month_start),
        );
        UsageCounters {
            total: self.total + more.total,
            daily,
            weekly,
            monthly,
            day_start,
            week_start,
            month_start,
        }
    }

    /// The usage a limit with this reset period counts.
    pub fn in_period(&self, reset: LimitReset) -> Usd {
        match reset {
            LimitReset::Never => self.total,
            LimitReset::Daily => self.daily,
            LimitReset::Weekly => self.weekly,
            LimitReset::Monthly => self.monthly,
        }
    }
}

/// A key as persisted: its hash, never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// SHA-256 hex of the secret.
    pub hash: String,
    /// Name (the config `label`, or the API's `name`).
    pub name: String,
    /// The secret masked for display (`sk-sy-v1-abc…xyz`).
    pub label: String,
    /// Credit limit; `None` is unlimited.
    pub limit: Option<Usd>,
    /// When the limit starts afresh.
    pub limit_reset: LimitReset,
    /// Disabled keys are refused with 403.
    pub disabled: bool,
    /// Creation time, unix ms.
    pub created_at: i64,
    /// Created through the management API (else from the config file).
    pub managed: bool,
    /// Spend so far.
    pub usage: UsageCounters,
    /// Rate limits and the model allow-list.
    pub limits: Arc<KeyLimits>,
}

/// What a request learns about its key: a snapshot, no secret in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// SHA-256 hex of the secret.
    pub hash: String,
    /// Name.
    pub name: String,
    /// The masked secret.
    pub label: String,
    /// Credit limit; `None` is unlimited.
    pub limit: Option<Usd>,
    /// When the limit starts afresh.
    pub limit_reset: LimitReset,
    /// Disabled.
    pub disabled: bool,
    /// Creation time, unix ms.
    pub created_at: i64,
    /// Created through the management API.
    pub managed: bool,
    /// Spend, periods rolled over to now.
    pub usage: UsageCounters,
    /// Held by requests in flight (in this process).
    pub reserved: Usd,
    /// Rate limits and the model allow-list.
    pub limits: Arc<KeyLimits>,
    /// The management key (never true for keys from [`KeyStore::authenticate`]).
    pub is_management_key: bool,
}

impl KeyInfo {
    /// `limit − usage in the period`, at least zero; `None` when unlimited.
    pub fn limit_remaining(&self) -> Option<Usd> {
        self.limit
            .map(|l| (l - self.usage.in_period(self.limit_reset)).max(Usd::ZERO))
    }
}

/// Changes to a key (`PATCH /api/v1/keys/{hash}`); `None` fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyUpdate {
    /// New name.
    pub name: Option<String>,
    /// New limit; `Some(None)` removes it.
    pub limit: Option<Option<Usd>>,
    /// New reset period.
    pub limit_reset: Option<LimitReset>,
    /// Disable or enable.
    pub disabled: Option<bool>,
    /// New rate limits and model allow-list (replacing the old ones whole).
    pub limits: Option<KeyLimits>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_adds_within_a_period_and_keeps_the_later_one() {
        let day = 86_400_000;
        let mut a = UsageCounters::default();
        a.add(10 * day + 5, Usd::from_dollars(1.0));
        let mut same = UsageCounters::default();
        same.add(10 * day + 9, Usd::from_dollars(2.0));
        let sum = a.plus(&same);
        assert_eq!(sum.total, Usd::from_dollars(3.0));
        assert_eq!(sum.daily, Usd::from_dollars(3.0));
        // A spend the next day: the day before no longer counts, the total does.
        let mut next = UsageCounters::default();
        next.add(11 * day + 1, Usd::from_dollars(0.5));
        for sum in [a.plus(&next), next.plus(&a)] {
            assert_eq!(sum.total, Usd::from_dollars(1.5));
            assert_eq!(sum.daily, Usd::from_dollars(0.5));
            assert_eq!(sum.day_start, 11 * day);
        }
    }
}
