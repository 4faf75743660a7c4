//! UTC calendar periods for key limits: days, weeks starting on Monday, months.
//!
//! Plain integer calendar arithmetic on unix milliseconds (proleptic Gregorian calendar), so the
//! crate needs no date library.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

const MS_PER_DAY: i64 = 86_400_000;

/// When a key's limit starts afresh (`limit_reset`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitReset {
    /// Never: the limit applies to the key's total usage.
    #[default]
    Never,
    /// Every UTC day.
    Daily,
    /// Every UTC week, starting Monday 00:00.
    Weekly,
    /// Every UTC calendar month.
    Monthly,
}

impl LimitReset {
    /// The name used in JSON and config (`None` for [`LimitReset::Never`], which JSON shows as
    /// `null`).
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            LimitReset::Never => None,
            LimitReset::Daily => Some("daily"),
            LimitReset::Weekly => Some("weekly"),
            LimitReset::Monthly => Some("monthly"),
        }
    }

    /// Start (unix ms) of the period containing `now_ms`; `i64::MIN` for [`LimitReset::Never`].
    pub fn period_start(self, now_ms: i64) -> i64 {
        match self {
            LimitReset::Never => i64::MIN,
            LimitReset::Daily => day_start(now_ms),
            LimitReset::Weekly => week_start(now_ms),
            LimitReset::Monthly => month_start(now_ms),
        }
    }
}

impl fmt::Display for LimitReset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str().unwrap_or("none"))
    }
}

/// An unknown `limit_reset` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownLimitReset(pub String);

impl fmt::Display for UnknownLimitReset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown limit_reset `{}`: expected none, daily, weekly or monthly",
            self.0
        )
    }
}

impl std::error::Error for UnknownLimitReset {}

impl FromStr for LimitReset {
    type Err = UnknownLimitReset;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "none" | "never" | "null" => Ok(LimitReset::Never),
            "daily" | "day" => Ok(LimitReset::Daily),
            "weekly" | "week" => Ok(LimitReset::Weekly),
            "monthly" | "month" => Ok(LimitReset::Monthly),
            _ => Err(UnknownLimitReset(s.to_owned())),
        }
    }
}

/// Start of the UTC day containing `ms`.
pub fn day_start(ms: i64) -> i64 {
    ms.div_euclid(MS_PER_DAY) * MS_PER_DAY
}

/// Start of the UTC week (Monday 00:00) containing `ms`.
pub fn week_start(ms: i64) -> i64 {
    let day = ms.div_euclid(MS_PER_DAY);
    // 1970-01-01 was a Thursday: three days after a Monday.
    let since_monday = (day + 3).rem_euclid(7);
    (day - since_monday) * MS_PER_DAY
}

/// Start of the UTC calendar month containing `ms`.
pub fn month_start(ms: i64) -> i64 {
    let (y, m, _) = civil_from_days(ms.div_euclid(MS_PER_DAY));
    days_from_civil(y, m, 1) * MS_PER_DAY
}

/// Days since 1970-01-01 of a Gregorian date (`month` 1–12, `day` 1–31).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    // Count from 0000-03-01 so the leap day falls at the end of the counting year.
    let (y, m) = if month <= 2 {
        (year - 1, i64::from(month) + 9)
    } else {
        (year, i64::from(month) - 3)
    };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let day_of_year = (153 * m + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719_468 days separate 0000-03-01 from 1970-01-01.
    era * 146_097 + day_of_era - 719_468
}

/// The Gregorian date `(year, month, day)` of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// RFC 3339 UTC timestamp with milliseconds, e.g. `2026-11-24T14:05:09.120Z`.
pub fn iso8601(ms: i64) -> String {
    let (y, mo, d) = civil_from_days(ms.div_euclid(MS_PER_DAY));
    let in_day = ms.rem_euclid(MS_PER_DAY);
    let (h, mi, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1_000 % 60,
        in_day % 1_000,
    );
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// The UTC time of day as `HHMM` (the form price overrides use).
pub fn utc_hhmm(ms: i64) -> u16 {
    let minutes = ms.rem_euclid(MS_PER_DAY) / 60_000;
    (minutes / 60 * 100 + minutes % 60) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i64, m: u32, d: u32, h: i64) -> i64 {
        days_from_civil(y, m, d) * MS_PER_DAY + h * 3_600_000
    }

    #[test]
    fn calendar_round_trips() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        for day in -800_000..800_000 {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
    }

    #[test]
    fn periods_start_where_expected() {
        // 2026-11-24 was a Tuesday.
        let t = at(2026, 11, 24, 14);
        assert_eq!(day_start(t), at(2026, 11, 24, 0));
        assert_eq!(week_start(t), at(2026, 11, 23, 0));
        assert_eq!(week_start(at(2026, 11, 23, 0)), at(2026, 11, 23, 0));
        assert_eq!(week_start(at(2026, 11, 22, 23)), at(2026, 11, 16, 0));
        assert_eq!(month_start(t), at(2026, 11, 1, 0));
        assert_eq!(month_start(at(2024, 3, 1, 0) - 1), at(2024, 2, 1, 0));
        assert_eq!(week_start(0), at(1969, 12, 29, 0));
    }

    #[test]
    fn formats_timestamps() {
        assert_eq!(
            iso8601(at(2026, 11, 24, 14) + 309_120),
            "2026-11-24T14:05:09.120Z"
        );
        assert_eq!(utc_hhmm(at(2026, 11, 24, 14) + 309_120), 1405);
        assert_eq!("Monthly".parse(), Ok(LimitReset::Monthly));
        assert!("yearly".parse::<LimitReset>().is_err());
    }
}
