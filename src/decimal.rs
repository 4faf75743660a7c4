//! Decimal digits without a heap allocation, and header values made from them.
//!
//! `HeaderValue::from(u64)` formats into a fresh `BytesMut` and then freezes it: two
//! allocations for every `Content-Length` and overhead header. Writing the digits on the stack
//! and copying them once costs one.

use http::HeaderValue;

/// The decimal digits of `n`, written at the end of `buf`.
pub(crate) fn itoa(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// `n` as a header value (`Content-Length`, counters).
pub(crate) fn header_value(n: u64) -> HeaderValue {
    let mut buf = [0; 20];
    HeaderValue::from_bytes(itoa(n, &mut buf))
        .unwrap_or_else(|_| unreachable!("decimal digits are a valid header value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn itoa_writes_decimal_digits() {
        for n in [0, 7, 10, 1_700_000_000, u64::MAX] {
            assert_eq!(itoa(n, &mut [0; 20]), n.to_string().as_bytes());
        }
    }

    #[test]
    fn header_values_read_back_as_the_number() {
        for n in [0, 42, u64::MAX] {
            assert_eq!(header_value(n), HeaderValue::from(n));
        }
    }
}
