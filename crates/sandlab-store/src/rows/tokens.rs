//! Rows of `api_tokens`.

use super::users::UserRow;
use crate::model::ApiToken;

/// `last_used_at` is written at most this often per token, so a busy program does not turn
/// every request into a write.
pub(crate) const USE_GRANULARITY_MS: i64 = 60_000;

#[derive(sqlx::FromRow)]
pub(crate) struct TokenRow {
    id: String,
    user_id: String,
    name: String,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl From<TokenRow> for ApiToken {
    fn from(r: TokenRow) -> ApiToken {
        ApiToken {
            id: r.id,
            user_id: r.user_id,
            name: r.name,
            created_at_ms: r.created_at,
            last_used_at_ms: r.last_used_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AuthRow {
    pub(crate) token_id: String,
    pub(crate) last_used_at: Option<i64>,
    #[sqlx(flatten)]
    pub(crate) user: UserRow,
}
