//! Rows of `identities` and `sso_logins`.

use crate::identities::{Identity, SsoLogin};

/// The columns [`IdentityRow`] reads (unqualified, for `RETURNING`).
pub(crate) const IDENTITY_COLUMNS: &str =
    "provider, subject, user_id, email, email_verified, created_at, last_login";
/// The columns [`SsoLoginRow`] reads.
pub(crate) const SSO_LOGIN_COLUMNS: &str =
    "provider, nonce, verifier, next, created_at, expires_at";

#[derive(sqlx::FromRow)]
pub(crate) struct IdentityRow {
    provider: String,
    subject: String,
    user_id: String,
    email: Option<String>,
    email_verified: bool,
    created_at: i64,
    last_login: i64,
}

impl From<IdentityRow> for Identity {
    fn from(r: IdentityRow) -> Identity {
        Identity {
            provider: r.provider,
            subject: r.subject,
            user_id: r.user_id,
            email: r.email,
            email_verified: r.email_verified,
            created_at_ms: r.created_at,
            last_login_ms: r.last_login,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SsoLoginRow {
    provider: String,
    nonce: String,
    verifier: String,
    next: String,
    created_at: i64,
    expires_at: i64,
}

impl From<SsoLoginRow> for SsoLogin {
    fn from(r: SsoLoginRow) -> SsoLogin {
        SsoLogin {
            provider: r.provider,
            nonce: r.nonce,
            verifier: r.verifier,
            next: r.next,
            created_at_ms: r.created_at,
            expires_at_ms: r.expires_at,
        }
    }
}
