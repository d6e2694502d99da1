//! Single sign-on: the identities a user has at OpenID Connect and OAuth providers, and the
//! sign-ins begun at a provider that wait for its callback.
//!
//! - An [`Identity`] is a (provider, subject) pair linked to one user: the provider is the
//!   operator's name for it (`[[auth.oidc]] name`), the subject the provider's stable id
//!   of the person. A pair is linked to at most one user; a user may have several, at
//!   most one per provider: another subject at the same provider is another person
//!   (an email address given up and registered again by someone else, say), so
//!   [`crate::Store::link_identity`] refuses it with `Conflict`.
//! - An [`SsoLogin`] is what the server must remember between sending a browser to the
//!   provider and its return: the provider, the `nonce` and the PKCE verifier, and where
//!   to go afterwards. It is stored under the SHA-256 of its `state` and taken once
//!   ([`crate::Store::take_sso_login`] deletes it), so a callback replayed with the same
//!   `state` finds nothing, on any replica.
//!
//! Users made by a sign-in have no password (their stored hash matches none) until an
//! admin sets one or they use a reset link.

use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, Result};

/// Longest a pending sign-in may wait for its callback.
pub const MAX_SSO_LOGIN_TTL: Duration = Duration::from_secs(3600);
/// Longest provider name, subject or email stored.
pub const MAX_IDENTITY_FIELD: usize = 256;
/// Longest `next` path, nonce or verifier stored.
pub const MAX_SSO_LOGIN_FIELD: usize = 2048;
/// The password hash of an account made by a sign-in: no PHC string, so no password
/// matches it.
pub(crate) const NO_PASSWORD: &str = "!sso";
/// The `Conflict` of linking a second identity at one provider to a user.
pub(crate) const HAS_ONE_THERE: &str = "The account has an identity at this provider already";

/// A user's identity at a single sign-on provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub provider: String,
    pub subject: String,
    pub user_id: String,
    /// Lowercased, as the provider last gave it.
    pub email: Option<String>,
    /// Whether the provider said the email is the person's.
    pub email_verified: bool,
    pub created_at_ms: i64,
    pub last_login_ms: i64,
}

/// An identity as a provider presents it at a sign-in.
#[derive(Clone, Debug)]
pub struct NewIdentity {
    pub provider: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
}

impl NewIdentity {
    /// Checks the lengths and lowercases the email. `Invalid` for an empty provider or
    /// subject or a field over [`MAX_IDENTITY_FIELD`].
    pub(crate) fn checked(&self) -> Result<NewIdentity> {
        let fields = [
            Some(&self.provider),
            Some(&self.subject),
            self.email.as_ref(),
        ];
        if self.provider.is_empty()
            || self.subject.is_empty()
            || fields
                .iter()
                .flatten()
                .any(|f| f.len() > MAX_IDENTITY_FIELD)
        {
            return Err(Error::Invalid(
                "An identity's provider and subject are 1 to 256 bytes, its email at most 256"
                    .into(),
            ));
        }
        let email = self
            .email
            .as_deref()
            .map(|e| e.trim().to_lowercase())
            .filter(|e| !e.is_empty());
        Ok(NewIdentity {
            email_verified: self.email_verified && email.is_some(),
            email,
            ..self.clone()
        })
    }
}

/// A sign-in waiting for the provider's callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsoLogin {
    pub provider: String,
    /// The `nonce` the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier.
    pub verifier: String,
    /// Where the browser goes once signed in.
    pub next: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

/// What [`crate::Store::begin_sso_login`] needs.
#[derive(Clone, Debug)]
pub struct NewSsoLogin {
    pub provider: String,
    pub nonce: String,
    pub verifier: String,
    pub next: String,
    /// More than zero, at most [`MAX_SSO_LOGIN_TTL`].
    pub ttl: Duration,
}

impl NewSsoLogin {
    /// The lifetime in milliseconds once checked. `Invalid` for a state shorter than 16
    /// bytes, a zero or too long ttl, or a field over [`MAX_SSO_LOGIN_FIELD`].
    pub(crate) fn check(&self, state: &str) -> Result<i64> {
        let long = [&self.provider, &self.nonce, &self.verifier, &self.next]
            .iter()
            .any(|f| f.len() > MAX_SSO_LOGIN_FIELD);
        if state.len() < 16 || long || self.ttl.is_zero() || self.ttl > MAX_SSO_LOGIN_TTL {
            return Err(Error::Invalid(
                "A sign-in needs a state of 16 bytes or more, fields of at most 2048 bytes and a ttl of at most an hour".into(),
            ));
        }
        Ok(i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_lowercased_and_unverified_without_one() {
        let id = NewIdentity {
            provider: "corp".into(),
            subject: "42".into(),
            email: Some(" Alice@Example.COM ".into()),
            email_verified: true,
        };
        let c = id.checked().unwrap();
        assert_eq!(c.email.as_deref(), Some("alice@example.com"));
        assert!(c.email_verified);
        let none = NewIdentity {
            email: Some("  ".into()),
            ..id.clone()
        };
        let c = none.checked().unwrap();
        assert_eq!((c.email, c.email_verified), (None, false));
        let empty = NewIdentity {
            subject: String::new(),
            ..id
        };
        assert!(matches!(empty.checked(), Err(Error::Invalid(_))));
    }
}
