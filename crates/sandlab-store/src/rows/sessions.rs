//! Rows of `login_sessions`.

use std::time::Duration;

use super::users::UserRow;
use crate::error::{Error, Result};
use crate::model::{LoginSession, User};

/// Longest session accepted.
const MAX_TTL: Duration = Duration::from_secs(366 * 24 * 3600);

#[derive(sqlx::FromRow)]
pub(crate) struct AuthRow {
    session_id: String,
    csrf_token: String,
    session_created_at: i64,
    expires_at: i64,
    last_seen: i64,
    #[sqlx(flatten)]
    user: UserRow,
}

impl AuthRow {
    /// The session's user and the session.
    pub(crate) fn into_parts(self) -> Result<(User, LoginSession)> {
        let user = User::try_from(self.user)?;
        let session = LoginSession {
            id: self.session_id,
            user_id: user.id.clone(),
            csrf_token: self.csrf_token,
            created_at_ms: self.session_created_at,
            expires_at_ms: self.expires_at,
            last_seen_ms: self.last_seen,
        };
        Ok((user, session))
    }
}

/// A new session's lifetime in milliseconds (saturated at `i64::MAX`), once checked.
pub(crate) fn checked_ttl_ms(ttl: Duration) -> Result<i64> {
    if ttl.is_zero() || ttl > MAX_TTL {
        return Err(Error::Invalid(
            "A session lasts more than zero and at most 366 days".into(),
        ));
    }
    Ok(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX))
}
