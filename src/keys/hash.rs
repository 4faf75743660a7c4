//! Key secrets: generation, hashing, masking and constant-time comparison.
//!
//! Secrets never reach storage or logs: the store keeps the SHA-256 hex of each key and a
//! masked form for display.

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of every gateway key.
pub const KEY_PREFIX: &str = "sk-sy-v1-";

/// A new random key: `sk-sy-v1-` and 64 hex digits (256 bits from the OS-seeded thread RNG).
pub fn generate_key() -> String {
    let mut bytes = [0_u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{KEY_PREFIX}{}", hex::encode(bytes))
}

/// Lower-case hex SHA-256 of a key: its identity in the store and the management API.
pub fn hash_key(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// True when `s` looks like a SHA-256 hex digest.
pub fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Compares two strings in time independent of where they differ.
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// A key shown safely: `sk-sy-v1-abc…xyz` (prefix, three first and three last characters).
pub fn mask(secret: &str) -> String {
    let body = secret.strip_prefix(KEY_PREFIX).unwrap_or(secret);
    let chars: Vec<char> = body.chars().collect();
    if chars.len() < 12 {
        return format!("{KEY_PREFIX}…");
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 3..].iter().collect();
    let prefix = if secret.starts_with(KEY_PREFIX) {
        KEY_PREFIX
    } else {
        ""
    };
    format!("{prefix}{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hash_to_hex() {
        let (a, b) = (generate_key(), generate_key());
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX) && a.len() == KEY_PREFIX.len() + 64);
        assert!(is_hash(&hash_key(&a)));
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn masks_keep_only_the_ends() {
        let key = format!("{KEY_PREFIX}abc{}xyz", "0".repeat(58));
        assert_eq!(mask(&key), "sk-sy-v1-abc…xyz");
        assert_eq!(mask("short"), "sk-sy-v1-…");
        assert!(ct_eq("same", "same") && !ct_eq("same", "sane") && !ct_eq("a", "ab"));
    }
}
