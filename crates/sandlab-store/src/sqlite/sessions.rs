//! Browser login sessions: the row's id is the SHA-256 of the cookie secret.

use std::time::Duration;

use super::SqliteStore;
use crate::error::{Error, Result};
use crate::model::{LoginSession, User, MAX_SESSIONS_PER_USER};
use crate::rows::sessions::{checked_ttl_ms, AuthRow};
use crate::rows::tokens::USE_GRANULARITY_MS;
use crate::rows::users::USER_COLUMNS;
use crate::secret::{hash_secret, is_session_shaped, new_session_secret};

pub(super) async fn create(
    s: &SqliteStore,
    user_id: &str,
    ttl: Duration,
) -> Result<(LoginSession, String)> {
    let ttl_ms = checked_ttl_ms(ttl)?;
    let secret = new_session_secret();
    let now = s.now();
    let session = LoginSession {
        id: hash_secret(&secret),
        user_id: user_id.to_owned(),
        csrf_token: new_session_secret(),
        created_at_ms: now,
        expires_at_ms: now.saturating_add(ttl_ms),
        last_seen_ms: now,
    };
    let mut tx = s.begin_write().await?;
    let disabled: Option<(bool,)> = sqlx::query_as("SELECT disabled FROM users WHERE id = ?")
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
    match disabled {
        None => return Err(Error::NotFound("user")),
        Some((true,)) => return Err(Error::Invalid("The user is disabled".into())),
        Some((false,)) => {}
    }
    sqlx::query(
        "INSERT INTO login_sessions (id, user_id, csrf_token, created_at, expires_at, last_seen) \
         VALUES (?, ?, ?, ?, ?, ?)",
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
        "DELETE FROM login_sessions WHERE user_id = ?1 AND (expires_at <= ?2 OR id NOT IN \
         (SELECT id FROM login_sessions WHERE user_id = ?1 \
          ORDER BY created_at DESC, rowid DESC LIMIT ?3))",
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
    s: &SqliteStore,
    secret: &str,
) -> Result<Option<(User, LoginSession)>> {
    if !is_session_shaped(secret) {
        return Ok(None);
    }
    let row: Option<AuthRow> = sqlx::query_as(&format!(
        "SELECT s.id AS session_id, s.csrf_token, s.created_at AS session_created_at, \
                s.expires_at, s.last_seen, {USER_COLUMNS} \
         FROM login_sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?"
    ))
    .bind(hash_secret(secret))
    .fetch_optional(&s.reader)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let now = s.now();
    let (user, mut session) = row.into_parts()?;
    if user.disabled || session.expires_at_ms <= now {
        return Ok(None);
    }
    if now.saturating_sub(session.last_seen_ms) >= USE_GRANULARITY_MS {
        sqlx::query("UPDATE login_sessions SET last_seen = ? WHERE id = ?")
            .bind(now)
            .bind(&session.id)
            .execute(&s.writer)
            .await?;
        session.last_seen_ms = now;
    }
    Ok(Some((user, session)))
}

pub(super) async fn delete(s: &SqliteStore, secret: &str) -> Result<()> {
    if !is_session_shaped(secret) {
        return Ok(());
    }
    sqlx::query("DELETE FROM login_sessions WHERE id = ?")
        .bind(hash_secret(secret))
        .execute(&s.writer)
        .await?;
    Ok(())
}

pub(super) async fn delete_expired(s: &SqliteStore) -> Result<u64> {
    let done = sqlx::query("DELETE FROM login_sessions WHERE expires_at <= ?")
        .bind(s.now())
        .execute(&s.writer)
        .await?;
    Ok(done.rows_affected())
}
