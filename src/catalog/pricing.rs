//! Prices and money in integer fixed-point.
//!
//! Money never travels as `f64` inside the gateway: rounding errors add up over millions of
//! requests and make ledgers disagree with inline `usage.cost`. [`Usd`] counts picodollars
//! (10⁻¹² USD), so a per-token price in `Usd` is exactly "micro-dollars per million tokens" and
//! every price with up to six decimals per million tokens is represented exactly.
//!
//! ```
//! use switchyard::catalog::Usd;
//! let per_token = Usd::from_per_million(0.15); // $0.15 per million tokens
//! assert_eq!(per_token.picodollars(), 150_000);
//! assert_eq!((per_token * 1_000_000).to_string(), "0.15");
//! ```

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::ops::{Add, AddAssign, Mul, Sub};

/// An amount of US dollars in picodollars (10⁻¹² USD).
///
/// `i64` covers ±9.2 million USD, far beyond any single request or key limit; arithmetic
/// saturates instead of wrapping.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Usd(i64);

impl Usd {
    /// Zero dollars.
    pub const ZERO: Usd = Usd(0);
    /// One picodollar per unit: the finest step.
    pub const PICO: i64 = 1_000_000_000_000;

    /// From picodollars.
    pub const fn from_picodollars(p: i64) -> Self {
        Usd(p)
    }

    /// Picodollars.
    pub const fn picodollars(self) -> i64 {
        self.0
    }

    /// From whole US dollars given as a float (config files, JSON): rounded to the picodollar.
    pub fn from_dollars(d: f64) -> Self {
        Usd((d * Self::PICO as f64).round() as i64)
    }

    /// A per-token price from a price per million tokens, the unit of config files and
    /// `provider.max_price`.
    pub fn from_per_million(d: f64) -> Self {
        Usd((d * 1_000_000.0).round() as i64)
    }

    /// Parses a decimal string such as `"0.0000025"` (OpenRouter's per-token prices) exactly.
    pub fn parse_decimal(s: &str) -> Option<Self> {
        let s = s.trim();
        let (neg, s) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
            // Scientific notation and the like: fall back to the float path.
            return s
                .parse::<f64>()
                .ok()
                .map(|v| Usd::from_dollars(if neg { -v } else { v }));
        }
        let whole: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
        let mut pico: i64 = 0;
        for (i, b) in frac.bytes().enumerate() {
            if i >= 12 {
                break;
            }
            pico += i64::from(b - b'0') * 10_i64.pow(11 - i as u32);
        }
        let v = whole.checked_mul(Self::PICO)?.checked_add(pico)?;
        Some(Usd(if neg { -v } else { v }))
    }

    /// Dollars as `f64`, for JSON output only.
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / Self::PICO as f64
    }

    /// Price per million tokens as `f64`, for comparisons with `max_price`.
    pub fn per_million(self) -> f64 {
        self.0 as f64 / 1_000_000.0
    }

    /// Multiplies by a factor given in parts per million (discounts), rounding half away from zero.
    pub fn scale_ppm(self, ppm: i64) -> Self {
        let v = i128::from(self.0) * i128::from(ppm);
        Usd(clamp_i128((v + v.signum() * 500_000) / 1_000_000))
    }

    /// True if the amount is zero.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

fn clamp_i128(v: i128) -> i64 {
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

impl Add for Usd {
    type Output = Usd;
    fn add(self, rhs: Usd) -> Usd {
        Usd(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign for Usd {
    fn add_assign(&mut self, rhs: Usd) {
        *self = *self + rhs;
    }
}

impl Sub for Usd {
    type Output = Usd;
    fn sub(self, rhs: Usd) -> Usd {
        Usd(self.0.saturating_sub(rhs.0))
    }
}

impl Mul<u64> for Usd {
    type Output = Usd;
    fn mul(self, n: u64) -> Usd {
        Usd(clamp_i128(i128::from(self.0) * i128::from(n)))
    }
}

impl fmt::Display for Usd {
    /// Exact decimal dollars without trailing zeros: `0.000093`, `2.5`, `0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.0 < 0;
        let abs = self.0.unsigned_abs();
        let whole = abs / Self::PICO as u64;
        let frac = abs % Self::PICO as u64;
        if neg {
            f.write_str("-")?;
        }
        if frac == 0 {
            write!(f, "{whole}")
        } else {
            let digits = format!("{frac:012}");
            write!(f, "{whole}.{}", digits.trim_end_matches('0'))
        }
    }
}

impl Serialize for Usd {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.as_f64())
    }
}

/// Conditional prices (`pricing.overrides[]` in OpenRouter's schema): applies when every given
/// condition holds; keys left out inherit the base price.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceOverride {
    /// Applies when the prompt has strictly more tokens than this.
    pub min_prompt_tokens: Option<u64>,
    /// Daily UTC window start, `HHMM`, inclusive.
    pub utc_start: Option<u16>,
    /// Daily UTC window end, `HHMM`, exclusive; may wrap past midnight.
    pub utc_end: Option<u16>,
    /// Prices that replace the base ones.
    pub prices: PriceSet,
}

/// The optional per-unit prices of an override.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceSet {
    /// Per prompt token.
    pub prompt: Option<Usd>,
    /// Per completion token.
    pub completion: Option<Usd>,
    /// Per cached prompt token read.
    pub input_cache_read: Option<Usd>,
    /// Per prompt token written to the cache.
    pub input_cache_write: Option<Usd>,
    /// Per reasoning token, when priced apart from completion.
    pub internal_reasoning: Option<Usd>,
    /// Per request.
    pub request: Option<Usd>,
    /// Per input image.
    pub image: Option<Usd>,
}

/// An endpoint's prices. Token prices are per token (see [`Usd`]); `request` is per request,
/// `image` per input image, `web_search` per search.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pricing {
    /// Per prompt token.
    pub prompt: Usd,
    /// Per completion token (reasoning tokens included unless `internal_reasoning` is set).
    pub completion: Usd,
    /// Per request.
    pub request: Usd,
    /// Per input image.
    pub image: Usd,
    /// Per web search.
    pub web_search: Usd,
    /// Per reasoning token, when priced apart from completion.
    pub internal_reasoning: Option<Usd>,
    /// Per cached prompt token read (falls back to `prompt`).
    pub input_cache_read: Option<Usd>,
    /// Per prompt token written to the cache, 5-minute TTL.
    pub input_cache_write: Option<Usd>,
    /// Per prompt token written to the cache, 1-hour TTL.
    pub input_cache_write_1h: Option<Usd>,
    /// Discount in parts per million: the effective price is `× (1 − discount)`.
    pub discount_ppm: u32,
    /// Conditional prices, later entries winning key by key.
    pub overrides: Vec<PriceOverride>,
}

impl Pricing {
    /// Token prices in USD per million prompt and completion tokens, nothing else charged.
    pub fn per_million(prompt: f64, completion: f64) -> Pricing {
        Pricing {
            prompt: Usd::from_per_million(prompt),
            completion: Usd::from_per_million(completion),
            ..Pricing::default()
        }
    }

    /// True when every token and request price is zero (a `:free` endpoint).
    pub fn is_free(&self) -> bool {
        self.prompt.is_zero() && self.completion.is_zero() && self.request.is_zero()
    }

    /// The prices in force for a prompt of `prompt_tokens` at UTC time `hhmm`, overrides applied
    /// (discount not yet applied).
    pub fn effective(&self, prompt_tokens: u64, hhmm: u16) -> Pricing {
        let mut p = self.clone();
        p.overrides.clear();
        for o in &self.overrides {
            if !o.matches(prompt_tokens, hhmm) {
                continue;
            }
            let s = &o.prices;
            if let Some(v) = s.prompt {
                p.prompt = v;
            }
            if let Some(v) = s.completion {
                p.completion = v;
            }
            if let Some(v) = s.request {
                p.request = v;
            }
            if let Some(v) = s.image {
                p.image = v;
            }
            if s.input_cache_read.is_some() {
                p.input_cache_read = s.input_cache_read;
            }
            if s.input_cache_write.is_some() {
                p.input_cache_write = s.input_cache_write;
            }
            if s.internal_reasoning.is_some() {
                p.internal_reasoning = s.internal_reasoning;
            }
        }
        p
    }
}

impl PriceOverride {
    /// True when every condition of this override holds.
    pub fn matches(&self, prompt_tokens: u64, hhmm: u16) -> bool {
        if let Some(min) = self.min_prompt_tokens {
            if prompt_tokens <= min {
                return false;
            }
        }
        match (self.utc_start, self.utc_end) {
            (Some(start), Some(end)) if start <= end => (start..end).contains(&hhmm),
            (Some(start), Some(end)) => hhmm >= start || hhmm < end,
            (Some(start), None) => hhmm >= start,
            (None, Some(end)) => hhmm < end,
            (None, None) => true,
        }
    }
}

/// Accepts a number or a decimal string of USD per million tokens (`max_price`, config files).
pub(crate) fn de_per_million_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Usd>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrStr {
        Num(f64),
        Str(String),
    }
    Ok(match Option::<NumOrStr>::deserialize(d)? {
        None => None,
        Some(NumOrStr::Num(v)) => Some(Usd::from_per_million(v)),
        Some(NumOrStr::Str(s)) => Some(Usd::from_per_million(
            s.trim().parse::<f64>().map_err(serde::de::Error::custom)?,
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_strings_parse_exactly() {
        assert_eq!(
            Usd::parse_decimal("0.0000025"),
            Some(Usd::from_per_million(2.5))
        );
        assert_eq!(Usd::parse_decimal("0"), Some(Usd::ZERO));
        assert_eq!(
            Usd::parse_decimal("-0.5").map(Usd::picodollars),
            Some(-500_000_000_000)
        );
        assert_eq!(Usd::parse_decimal("1e-6"), Some(Usd::from_per_million(1.0)));
        assert_eq!(Usd::parse_decimal("abc"), None);
    }

    #[test]
    fn display_is_exact_decimal() {
        assert_eq!(Usd::from_per_million(0.15).to_string(), "0.00000015");
        assert_eq!(Usd::from_dollars(2.5).to_string(), "2.5");
        assert_eq!(Usd::ZERO.to_string(), "0");
    }

    #[test]
    fn overrides_apply_strictly_above_threshold_and_wrap_midnight() {
        let mut p = Pricing {
            prompt: Usd::from_per_million(2.5),
            ..Pricing::default()
        };
        p.overrides.push(PriceOverride {
            min_prompt_tokens: Some(200_000),
            prices: PriceSet {
                prompt: Some(Usd::from_per_million(5.0)),
                ..PriceSet::default()
            },
            ..PriceOverride::default()
        });
        assert_eq!(p.effective(200_000, 0).prompt, Usd::from_per_million(2.5));
        assert_eq!(p.effective(200_001, 0).prompt, Usd::from_per_million(5.0));
        let night = PriceOverride {
            utc_start: Some(2200),
            utc_end: Some(600),
            ..Default::default()
        };
        assert!(night.matches(0, 2300) && night.matches(0, 100) && !night.matches(0, 1200));
    }
}
