//! Browser login sessions: the row's id is the SHA-256 of the cookie secret.

use std::time::Duration;

use super::PostgresStore;
use crate::error::{Error, Result};
use crate::model::{LoginSession, User, MAX_SESSIONS_PER_USER};
use crate::rows::sessions::{checked_ttl_ms, AuthRow};
use crate::rows::tokens::USE_GRANULARITY_MS;
use crate::rows::users::USER_COLUMNS;
use crate::secret::{hash_secret, is_session_shaped, new_session_secret};

pub(super) async fn create(
    s: &PostgresStore,
    user_id: &str,
    ttl: Duration,
) -> Result<(LoginSession, String)> {
    let ttl_ms = checked_ttl_ms(ttl)?;
    let secret = new_session_secret();
    let mut tx = s.begin().await?;
    // The user's row lock: a concurrent disable (an UPDATE of the row) waits for this
    // session or comes first and is seen; and the per-user cap is kept by one at a time.
    let disabled: Option<(bool,)> =
        sqlx::query_as("SELECT disabled FROM users WHERE id = $1 FOR NO KEY UPDATE")
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
    match disabled {
        None => return Err(Error::NotFound("user")),
        Some((true,)) => return Err(Error::Invalid("The user is disabled".into())),
        Some((false,)) => {}
    }
    let now = s.now(&mut *tx).await?;
    let session = LoginSession {
        id: hash_secret(&secret),
        user_id: user_id.to_owned(),
        csrf_token: new_session_secret(),
        created_at_ms: now,
        expires_at_ms: now.saturating_add(ttl_ms),
        last_seen_ms: now,
    };
    sqlx::query(
        "INSERT INTO login_sessions (id, user_id, csrf_token, created_at, expires_at, last_seen) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&session.id)
    .bind(&session.user_id)
    .bind(&session.csrf_token)
    .bind(session.created_at_ms)
    .bind(session.expires_at_ms)
    .bind(session.last_seen_ms)
    .execute(&mut *tx)
    .await?;
    // Keep the newest sessions only, and drop this user's expired ones on the way.
    sqlx::query(
        "DELETE FROM login_sessions WHERE user_id = $1 AND (expires_at <= $2 OR id NOT IN \
         (SELECT id FROM login_sessions WHERE user_id = $1 \
          ORDER BY created_at DESC, seq DESC LIMIT $3))",
    )
    .bind(user_id)
    .bind(now)
    .bind(i64::try_from(MAX_SESSIONS_PER_USER).unwrap_or(i64::MAX))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((session, secret))
}

pub(super) async fn authenticate(
    s: &PostgresStore,
    secret: &str,
) -> Result<Option<(User, LoginSession)>> {
    if !is_session_shaped(secret) {
        return Ok(None);
    }
    let row: Option<AuthRow> = sqlx::query_as(&format!(
        "SELECT s.id AS session_id, s.csrf_token, s.created_at AS session_created_at, \
                s.expires_at, s.last_seen, {USER_COLUMNS} \
         FROM login_sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1"
    ))
    .bind(hash_secret(secret))
    .fetch_optional(&s.pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let now = s.now(&s.pool).await?;
    let (user, mut session) = row.into_parts()?;
    if user.disabled || session.expires_at_ms <= now {
        return Ok(None);
    }
    if now.saturating_sub(session.last_seen_ms) >= USE_GRANULARITY_MS {
        sqlx::query("UPDATE login_sessions SET last_seen = $1 WHERE id = $2")
            .bind(now)
            .bind(&session.id)
            .execute(&s.pool)
            .await?;
        session.last_seen_ms = now;
    }
    Ok(Some((user, session)))
}

pub(super) async fn delete(s: &PostgresStore, secret: &str) -> Result<()> {
    if !is_session_shaped(secret) {
        return Ok(());
    }
    sqlx::query("DELETE FROM login_sessions WHERE id = $1")
        .bind(hash_secret(secret))
        .execute(&s.pool)
        .await?;
    Ok(())
}

pub(super) async fn delete_expired(s: &PostgresStore) -> Result<u64> {
    let now = s.now(&s.pool).await?;
    let done = sqlx::query("DELETE FROM login_sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(&s.pool)
        .await?;
    Ok(done.rows_affected())
}
