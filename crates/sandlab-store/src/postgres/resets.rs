//! Passwords: admin-made reset links (only the SHA-256 of each secret is stored, one per
//! user) and a user's own change of password.

use sqlx::{Executor, Postgres};

use super::PostgresStore;
use crate::error::{Error, Result};
use crate::links::{millis, LinkRefusal, PasswordReset, PASSWORD_RESET_TTL, RESET_PREFIX};
use crate::model::User;
use crate::password;
use crate::rows::invites::unknown_creator;
use crate::rows::resets::{refusal, ResetRow, RESET_COLUMNS};
use crate::rows::users::{UserRow, USER_COLUMNS};
use crate::secret::{hash_secret, is_link_shaped, new_link_secret};

async fn find<'e, E: Executor<'e, Database = Postgres>>(
    ex: E,
    hash: &str,
) -> Result<Option<ResetRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {RESET_COLUMNS} FROM password_resets r JOIN users u ON u.id = r.user_id \
         WHERE r.token_hash = $1"
    ))
    .bind(hash)
    .fetch_optional(ex)
    .await?)
}

pub(super) async fn create(
    s: &PostgresStore,
    user_id: &str,
    created_by: Option<&str>,
) -> Result<(PasswordReset, String)> {
    let secret = new_link_secret(RESET_PREFIX);
    let mut tx = s.begin().await?;
    // The user's row lock: a concurrent disable waits for this reset or comes first and
    // is seen.
    let disabled: Option<(bool,)> =
        sqlx::query_as("SELECT disabled FROM users WHERE id = $1 FOR NO KEY UPDATE")
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
    match disabled {
        None => return Err(Error::NotFound("user")),
        Some((true,)) => {
            return Err(Error::Invalid(
                "The user is disabled; enable them before resetting their password".into(),
            ))
        }
        Some((false,)) => {}
    }
    let now = s.now(&mut *tx).await?;
    let reset = PasswordReset {
        user_id: user_id.to_owned(),
        created_by: created_by.map(str::to_owned),
        created_at_ms: now,
        expires_at_ms: now.saturating_add(millis(PASSWORD_RESET_TTL)),
    };
    // One row per user: the new link replaces (voids) an older one.
    sqlx::query(
        "INSERT INTO password_resets (user_id, token_hash, created_by, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id) DO UPDATE SET \
         token_hash = excluded.token_hash, created_by = excluded.created_by, \
         created_at = excluded.created_at, expires_at = excluded.expires_at, used_at = NULL",
    )
    .bind(user_id)
    .bind(hash_secret(&secret))
    .bind(created_by)
    .bind(reset.created_at_ms)
    .bind(reset.expires_at_ms)
    .execute(&mut *tx)
    .await
    .map_err(unknown_creator)?;
    tx.commit().await?;
    Ok((reset, secret))
}

pub(super) async fn redeem(
    s: &PostgresStore,
    secret: &str,
    password: String,
) -> Result<std::result::Result<User, LinkRefusal>> {
    password::validate_password(&password)?;
    if !is_link_shaped(secret, RESET_PREFIX) {
        return Ok(Err(LinkRefusal::Unknown));
    }
    let hash = hash_secret(secret);
    // A dead link is refused before the password is hashed.
    let now = s.now(&s.pool).await?;
    if let Some(why) = refusal(find(&s.pool, &hash).await?.as_ref(), now) {
        return Ok(Err(why));
    }
    let phc = password::hash_password_async(password).await?;
    let mut tx = s.begin().await?;
    let now = s.now(&mut *tx).await?;
    // The reset's row lock: of two users of one link, the second waits and finds it used.
    let burnt: Option<(String,)> = sqlx::query_as(
        "UPDATE password_resets r SET used_at = $1 FROM users u \
         WHERE r.token_hash = $2 AND r.used_at IS NULL AND r.expires_at > $1 \
         AND u.id = r.user_id AND NOT u.disabled RETURNING r.user_id",
    )
    .bind(now)
    .bind(&hash)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((user_id,)) = burnt else {
        let why = refusal(find(&mut *tx, &hash).await?.as_ref(), now);
        return Ok(Err(why.unwrap_or(LinkRefusal::Unknown)));
    };
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(&phc)
        .bind(&user_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM login_sessions WHERE user_id = $1")
        .bind(&user_id)
        .execute(&mut *tx)
        .await?;
    let user: UserRow = sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1"
    ))
    .bind(&user_id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Ok(user.try_into()?))
}

pub(super) async fn change_password(
    s: &PostgresStore,
    user_id: &str,
    password: String,
    keep_session: Option<&str>,
) -> Result<()> {
    let phc = password::hash_password_async(password).await?;
    let mut tx = s.begin().await?;
    let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(&phc)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound("user"));
    }
    sqlx::query("DELETE FROM login_sessions WHERE user_id = $1 AND id IS DISTINCT FROM $2")
        .bind(user_id)
        .bind(keep_session)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
