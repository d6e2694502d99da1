//! API tokens: only the SHA-256 of each secret is stored.

use super::{count, PostgresStore};
use crate::error::{Error, Result};
use crate::model::{validate_token_name, ApiToken, User, MAX_TOKENS_PER_USER};
use crate::rows::tokens::{AuthRow, TokenRow, USE_GRANULARITY_MS};
use crate::rows::users::USER_COLUMNS;
use crate::secret::{hash_secret, is_token_shaped, new_token_secret, random_id};

pub(super) async fn create(
    s: &PostgresStore,
    user_id: &str,
    name: &str,
) -> Result<(ApiToken, String)> {
    validate_token_name(name)?;
    let secret = new_token_secret();
    let mut tx = s.begin().await?;
    // The user's row lock: the cap is counted while no other token is made for this user.
    let exists: Option<(String,)> =
        sqlx::query_as("SELECT id FROM users WHERE id = $1 FOR NO KEY UPDATE")
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
    if exists.is_none() {
        return Err(Error::NotFound("user"));
    }
    let (held,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM api_tokens WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await?;
    if count(held) >= MAX_TOKENS_PER_USER {
        return Err(Error::Conflict(format!(
            "A user can hold at most {MAX_TOKENS_PER_USER} API tokens; delete one first"
        )));
    }
    let token = ApiToken {
        id: random_id("tok"),
        user_id: user_id.to_owned(),
        name: name.to_owned(),
        created_at_ms: s.now(&mut *tx).await?,
        last_used_at_ms: None,
    };
    sqlx::query(
        "INSERT INTO api_tokens (id, user_id, name, token_hash, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
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

pub(super) async fn list(s: &PostgresStore, user_id: &str) -> Result<Vec<ApiToken>> {
    let rows: Vec<TokenRow> = sqlx::query_as(
        "SELECT id, user_id, name, created_at, last_used_at FROM api_tokens \
         WHERE user_id = $1 ORDER BY created_at, id COLLATE \"C\"",
    )
    .bind(user_id)
    .fetch_all(&s.pool)
    .await?;
    Ok(rows.into_iter().map(ApiToken::from).collect())
}

pub(super) async fn delete(s: &PostgresStore, user_id: &str, token_id: &str) -> Result<()> {
    let done = sqlx::query("DELETE FROM api_tokens WHERE id = $1 AND user_id = $2")
        .bind(token_id)
        .bind(user_id)
        .execute(&s.pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound("API token"));
    }
    Ok(())
}

pub(super) async fn authenticate(
    s: &PostgresStore,
    secret: &str,
) -> Result<Option<(User, String)>> {
    if !is_token_shaped(secret) {
        return Ok(None);
    }
    let row: Option<AuthRow> = sqlx::query_as(&format!(
        "SELECT t.id AS token_id, t.last_used_at, {USER_COLUMNS} \
         FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1"
    ))
    .bind(hash_secret(secret))
    .fetch_optional(&s.pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let user = User::try_from(row.user)?;
    if user.disabled {
        return Ok(None);
    }
    let now = s.now(&s.pool).await?;
    if row
        .last_used_at
        .is_none_or(|t| now.saturating_sub(t) >= USE_GRANULARITY_MS)
    {
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&row.token_id)
            .execute(&s.pool)
            .await?;
    }
    Ok(Some((user, row.token_id)))
}
