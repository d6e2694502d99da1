//! Password hashing with argon2id.
//!
//! Parameters: 19 MiB of memory, 2 passes, 1 lane ([`MEMORY_KIB`], [`ITERATIONS`],
//! [`PARALLELISM`]) — OWASP's first recommended argon2id setting. On one core of a small
//! server that is some tens of milliseconds per hash: slow for an attacker with a stolen
//! database (every guess costs 19 MiB and two passes over it), cheap enough for logins.
//! One lane keeps a login on one core, and the async helpers let at most as many hashes run
//! at once as the host has cores ([`concurrent_hashes`]: 2 on a 2-core server), so a flood
//! of logins waits in line instead of taking every core and `19 MiB × N` of memory (rate
//! limiting is the server's job on top of this).
//!
//! The parameters are stored in each PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`), so
//! they can be raised later; old hashes keep verifying with their own.
//!
//! The comparison of the computed hash with the stored one is constant-time (the
//! `password-hash` crate's `Output` equality). [`verify_password_async`] given no stored
//! hash (an unknown user) still does a full verification against a throw-away hash, so a
//! login does not answer faster for a username that does not exist.

use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

/// Memory per hash, in KiB (19 MiB).
pub const MEMORY_KIB: u32 = 19 * 1024;
/// Passes over the memory.
pub const ITERATIONS: u32 = 2;
/// Lanes (threads) per hash.
pub const PARALLELISM: u32 = 1;
/// Shortest password accepted for a new hash, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted, in bytes; longer ones never verify.
pub const MAX_PASSWORD_BYTES: usize = 1024;

fn argon2() -> Argon2<'static> {
    // These constants are within argon2's bounds, so `Params::new` cannot fail; the
    // fallback (the crate's defaults, the same values in argon2 0.5) keeps that from being
    // a panic.
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks the password rule for a new password.
pub fn validate_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::Invalid(format!(
            "A password is at least {MIN_PASSWORD_CHARS} characters and at most {MAX_PASSWORD_BYTES} bytes long"
        )));
    }
    Ok(())
}

/// Hashes `password` with argon2id and a fresh random salt; returns the PHC string.
/// Blocks for the length of one hash: from async code use [`hash_password_async`].
pub fn hash_password(password: &str) -> Result<String> {
    validate_password(password)?;
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(Error::Hash)
}

/// Whether `password` matches the PHC string `phc`. A malformed hash (an account made by
/// single sign-on has none) or an over-long password is simply no match; a malformed hash
/// costs the same work as a real one, so timing does not tell such accounts apart. Blocks
/// like [`hash_password`].
pub fn verify_password(password: &str, phc: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let Ok(hash) = PasswordHash::new(phc) else {
        if let Ok(dummy) = PasswordHash::new(dummy_hash()) {
            let _ = argon2().verify_password(password.as_bytes(), &dummy);
        }
        return false;
    };
    argon2().verify_password(password.as_bytes(), &hash).is_ok()
}

/// A hash of a random password, made once, to verify against when there is no user.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let random = hex::encode(rand::random::<[u8; 16]>());
        hash_password(&random).unwrap_or_default()
    })
}

/// How many hashes the async helpers run at once: the host's cores.
pub fn concurrent_hashes() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

fn hash_slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| Semaphore::new(concurrent_hashes()))
}

async fn run_limited<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    // The semaphore is never closed, so acquiring only fails if it were; then run anyway.
    let _permit = hash_slots().acquire().await.ok();
    tokio::task::spawn_blocking(f).await.map_err(Error::Task)
}

/// [`hash_password`] on the blocking pool, at most [`concurrent_hashes`] at once.
pub async fn hash_password_async(password: String) -> Result<String> {
    validate_password(&password)?;
    run_limited(move || hash_password(&password)).await?
}

/// [`verify_password`] on the blocking pool, at most [`concurrent_hashes`] at once. With
/// `phc` `None` (no such user) it does the same work against a throw-away hash and
/// answers `false`.
pub async fn verify_password_async(password: String, phc: Option<String>) -> Result<bool> {
    run_limited(move || match phc {
        Some(phc) => verify_password(&password, &phc),
        None => {
            let _ = verify_password(&password, dummy_hash());
            false
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("correct horsE", &phc));
        assert!(!verify_password("", &phc));
        assert!(!verify_password("correct horse", "not a phc string"));
        assert!(!verify_password("correct horse", ""));
        assert!(!verify_password(&"x".repeat(MAX_PASSWORD_BYTES + 1), &phc));
        // A fresh salt every time.
        assert_ne!(hash_password("correct horse").unwrap(), phc);
    }

    #[test]
    fn password_rule() {
        assert!(matches!(hash_password("short"), Err(Error::Invalid(_))));
        assert!(matches!(
            hash_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)),
            Err(Error::Invalid(_))
        ));
        assert!(validate_password("eight ch").is_ok());
        // Characters, not bytes, count towards the minimum.
        assert!(validate_password("ééééééé").is_err());
    }

    #[tokio::test]
    async fn async_helpers() {
        let phc = hash_password_async("correct horse".into()).await.unwrap();
        assert!(
            verify_password_async("correct horse".into(), Some(phc.clone()))
                .await
                .unwrap()
        );
        assert!(!verify_password_async("wrong horse".into(), Some(phc))
            .await
            .unwrap());
        assert!(!verify_password_async("correct horse".into(), None)
            .await
            .unwrap());
    }
}
