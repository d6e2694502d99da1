//! Random ids and bearer secrets, and the one-way hash that is all the store keeps of a
//! secret.
//!
//! A secret carries 256 random bits, so SHA-256 without salt or stretching is enough: no
//! guess can be checked against a stolen hash faster than the 2^256 tries it would take.
//! Looking a hash up through an index is not a timing leak worth closing: learning the
//! first bytes of a stored hash says nothing about the secret behind it.

use sha2::{Digest, Sha256};

/// Every API token starts with this, so secret scanners and people can tell what it is.
pub const TOKEN_PREFIX: &str = "sl_";
/// Random bytes in an API token or session secret.
const SECRET_BYTES: usize = 32;

/// `n` random bytes as lowercase hex.
fn random_hex<const N: usize>() -> String {
    let bytes: [u8; N] = rand::random();
    hex::encode(bytes)
}

/// `prefix-` followed by 16 lowercase base32 characters (80 random bits).
pub(crate) fn random_id(prefix: &str) -> String {
    sandlab_core::random_id(prefix, 16)
}

/// A new API token secret: `sl_` + 64 hex digits.
pub(crate) fn new_token_secret() -> String {
    format!("{TOKEN_PREFIX}{}", random_hex::<SECRET_BYTES>())
}

/// A new session cookie secret or CSRF token: 64 hex digits.
pub(crate) fn new_session_secret() -> String {
    random_hex::<SECRET_BYTES>()
}

fn is_hex64(s: &str) -> bool {
    s.len() == SECRET_BYTES * 2 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `s` has the shape of a token secret; anything else is refused without a query.
pub(crate) fn is_token_shaped(s: &str) -> bool {
    s.strip_prefix(TOKEN_PREFIX).is_some_and(is_hex64)
}

/// Whether `s` has the shape of a session secret.
pub(crate) fn is_session_shaped(s: &str) -> bool {
    is_hex64(s)
}

/// A new one-time link secret (an invitation, a password reset): `prefix` + 64 hex digits.
pub(crate) fn new_link_secret(prefix: &str) -> String {
    format!("{prefix}{}", random_hex::<SECRET_BYTES>())
}

/// Whether `s` has the shape of a link secret made with `prefix`.
pub(crate) fn is_link_shaped(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix).is_some_and(is_hex64)
}

/// SHA-256 of `secret`, lowercase hex: what the store keeps.
pub(crate) fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let t = new_token_secret();
        assert!(t.starts_with("sl_") && t.len() == 67, "{t}");
        assert!(is_token_shaped(&t));
        assert!(!is_token_shaped(&t[3..]));
        assert!(!is_token_shaped(&t.to_ascii_uppercase()));
        let s = new_session_secret();
        assert!(is_session_shaped(&s));
        assert!(!is_session_shaped(&t));
        assert_ne!(new_session_secret(), s);
        let id = random_id("usr");
        assert!(id.starts_with("usr-") && id.len() == 20, "{id}");
        assert!(id[4..]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
