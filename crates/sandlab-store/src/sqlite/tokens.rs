//! API tokens: only the SHA-256 of each secret is stored.

use super::{count, SqliteStore};
use crate::error::{Error, Result};
use crate::model::{validate_token_name, ApiToken, User, MAX_TOKENS_PER_USER};
use crate::rows::tokens::{AuthRow, TokenRow, USE_GRANULARITY_MS};
use crate::rows::users::USER_COLUMNS;
use crate::secret::{hash_secret, is_token_shaped, new_token_secret, random_id};

pub(super) async fn create(
    s: &SqliteStore,
    user_id: &str,
    name: &str,
) -> Result<(ApiToken, String)> {
    validate_token_name(name)?;
    let secret = new_token_secret();
    let token = ApiToken {
        id: random_id("tok"),
        user_id: user_id.to_owned(),
        name: name.to_owned(),
        created_at_ms: s.now(),
        last_used_at_ms: None,
    };
    let mut tx = s.begin_write().await?;
    let (exists, held): (bool, i64) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM users WHERE id = ?1), \
                (SELECT COUNT(*) FROM api_tokens WHERE user_id = ?1)",
    )
    .bind(user_id)
    .fetch_one(&mut *tx)
    .await?;
    if !exists {
        return Err(Error::NotFound("user"));
    }
    if count(held) >= MAX_TOKENS_PER_USER {
        return Err(Error::Conflict(format!(
            "A user can hold at most {MAX_TOKENS_PER_USER} API tokens; delete one first"
        )));
    }
    sqlx::query(
        "INSERT INTO api_tokens (id, user_id, name, token_hash, created_at) \
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(&token.id)
    .bind(&token.user_id)
    .bind(&token.name)
    .bind(hash_secret(&secret))
    .bind(token.created_at_ms)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((token, secret))
}

pub(super) async fn list(s: &SqliteStore, user_id: &str) -> Result<Vec<ApiToken>> {
    let rows: Vec<TokenRow> = sqlx::query_as(
        "SELECT id, user_id, name, created_at, last_used_at FROM api_tokens \
         WHERE user_id = ? ORDER BY created_at, id",
    )
    .bind(user_id)
    .fetch_all(&s.reader)
    .await?;
    Ok(rows.into_iter().map(ApiToken::from).collect())
}

pub(super) async fn delete(s: &SqliteStore, user_id: &str, token_id: &str) -> Result<()> {
    let done = sqlx::query("DELETE FROM api_tokens WHERE id = ? AND user_id = ?")
        .bind(token_id)
        .bind(user_id)
        .execute(&s.writer)
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound("API token"));
    }
    Ok(())
}

pub(super) async fn authenticate(s: &SqliteStore, secret: &str) -> Result<Option<(User, String)>> {
    if !is_token_shaped(secret) {
        return Ok(None);
    }
    let row: Option<AuthRow> = sqlx::query_as(&format!(
        "SELECT t.id AS token_id, t.last_used_at, {USER_COLUMNS} \
         FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?"
    ))
    .bind(hash_secret(secret))
    .fetch_optional(&s.reader)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let user = User::try_from(row.user)?;
    if user.disabled {
        return Ok(None);
    }
    let now = s.now();
    if row
        .last_used_at
        .is_none_or(|t| now.saturating_sub(t) >= USE_GRANULARITY_MS)
    {
        sqlx::query("UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
            .bind(now)
            .bind(&row.token_id)
            .execute(&s.writer)
            .await?;
    }
    Ok(Some((user, row.token_id)))
}
