//! The per-sandbox token with which a host authenticates to an agent it reaches over a
//! network (see "# Handshake" in the crate docs).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A shared secret the host presents in its [`Hello`](crate::messages::Hello).
///
/// Its `Debug` never shows the value, and equality is decided in constant time: how
/// long a comparison takes does not depend on where two tokens differ.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AuthToken(String);

/// Why a configured token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("The token is {len} characters long; it needs at least {min}.")]
    TooShort { len: usize, min: usize },
    #[error("The token is longer than {max} characters.")]
    TooLong { max: usize },
    #[error("The token may only hold visible ASCII characters (no spaces).")]
    Invalid,
}

impl AuthToken {
    /// Shortest token an agent accepts as its own.
    pub const MIN_LEN: usize = 16;
    /// Longest token an agent accepts as its own.
    pub const MAX_LEN: usize = 1024;

    /// Any text, as a host presents it; whether it matches is the agent's call.
    pub fn new(token: impl Into<String>) -> AuthToken {
        AuthToken(token.into())
    }

    /// The token an agent is configured with, from the text of a token file: one
    /// trailing newline is dropped, the rest must be [`MIN_LEN`](Self::MIN_LEN) to
    /// [`MAX_LEN`](Self::MAX_LEN) visible ASCII characters.
    pub fn from_secret(text: &str) -> Result<AuthToken, TokenError> {
        let text = text
            .strip_suffix('\n')
            .map(|t| t.strip_suffix('\r').unwrap_or(t))
            .unwrap_or(text);
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::Invalid);
        }
        if text.len() < Self::MIN_LEN {
            return Err(TokenError::TooShort {
                len: text.len(),
                min: Self::MIN_LEN,
            });
        }
        if text.len() > Self::MAX_LEN {
            return Err(TokenError::TooLong { max: Self::MAX_LEN });
        }
        Ok(AuthToken(text.to_string()))
    }

    /// The secret itself, for sending it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is this token; `None` (no token) never is.
    pub fn verify(&self, presented: Option<&AuthToken>) -> bool {
        // Compare against an empty token when none came, so both paths take as long.
        let presented = presented.map_or(&[][..], |t| t.0.as_bytes());
        constant_time_eq(self.0.as_bytes(), presented) && !self.0.is_empty()
    }
}

impl PartialEq for AuthToken {
    fn eq(&self, other: &AuthToken) -> bool {
        constant_time_eq(self.0.as_bytes(), other.0.as_bytes())
    }
}

impl Eq for AuthToken {}

impl fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthToken(<redacted>)")
    }
}

/// Byte equality in time that depends only on `expected.len()`: every byte of the
/// expected secret is compared, whatever the presented one holds. The length of a
/// token is not secret (tokens are generated at a fixed length).
fn constant_time_eq(expected: &[u8], presented: &[u8]) -> bool {
    let mut diff = u8::from(expected.len() != presented.len());
    for (i, &e) in expected.iter().enumerate() {
        let p = presented.get(i).copied().unwrap_or(0);
        // black_box keeps the optimiser from ending the loop at the first difference.
        diff = std::hint::black_box(diff | (e ^ p));
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn verify_accepts_only_the_exact_token() {
        let token = AuthToken::from_secret(SECRET).unwrap();
        assert!(token.verify(Some(&AuthToken::new(SECRET))));
        assert!(!token.verify(None));
        for wrong in [
            "",
            "0123456789abcdef0123456789abcdeF",
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdef0",
            "0123456789abcdef0123456789abcdef\0",
            "X123456789abcdef0123456789abcdef",
        ] {
            assert!(!token.verify(Some(&AuthToken::new(wrong))), "{wrong:?}");
        }
    }

    #[test]
    fn an_empty_token_never_verifies() {
        assert!(!AuthToken::new("").verify(Some(&AuthToken::new(""))));
    }

    #[test]
    fn secrets_are_checked_and_one_newline_trimmed() {
        let t = AuthToken::from_secret(&format!("{SECRET}\n")).unwrap();
        assert_eq!(t.expose(), SECRET);
        let t = AuthToken::from_secret(&format!("{SECRET}\r\n")).unwrap();
        assert_eq!(t.expose(), SECRET);
        assert_eq!(
            AuthToken::from_secret("short\n").unwrap_err(),
            TokenError::TooShort { len: 5, min: 16 }
        );
        for bad in [
            format!("{SECRET}\n\n"),
            format!("{SECRET} x"),
            format!(" {SECRET}"),
            format!("{SECRET}é"),
        ] {
            assert_eq!(
                AuthToken::from_secret(&bad).unwrap_err(),
                TokenError::Invalid,
                "{bad:?}"
            );
        }
        let long = "x".repeat(AuthToken::MAX_LEN + 1);
        assert!(matches!(
            AuthToken::from_secret(&long),
            Err(TokenError::TooLong { .. })
        ));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let t = AuthToken::new(SECRET);
        let shown = format!("{t:?} {:?}", Some(&t));
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }

    proptest! {
        #[test]
        fn prop_compare_is_equality(a in ".{0,40}", b in ".{0,40}") {
            prop_assert_eq!(AuthToken::new(a.clone()) == AuthToken::new(b.clone()), a == b);
            prop_assert_eq!(AuthToken::new(a.clone()).verify(Some(&AuthToken::new(b.clone()))), a == b && !a.is_empty());
        }
    }
}
