//! Rows of `password_resets`.

use crate::links::{LinkRefusal, PasswordReset};

#[derive(sqlx::FromRow)]
pub(crate) struct ResetRow {
    user_id: String,
    created_by: Option<String>,
    created_at: i64,
    pub(crate) expires_at: i64,
    pub(crate) used_at: Option<i64>,
    /// The user's `disabled`, joined in.
    pub(crate) disabled: bool,
}

impl From<ResetRow> for PasswordReset {
    fn from(r: ResetRow) -> PasswordReset {
        PasswordReset {
            user_id: r.user_id,
            created_by: r.created_by,
            created_at_ms: r.created_at,
            expires_at_ms: r.expires_at,
        }
    }
}

/// A reset's row with its user's `disabled`, for queries on `password_resets r JOIN
/// users u`.
pub(crate) const RESET_COLUMNS: &str =
    "r.user_id, r.created_by, r.created_at, r.expires_at, r.used_at, u.disabled";

/// Why the reset a secret names (its row, if any) cannot be used at `now`, if it cannot.
pub(crate) fn refusal(row: Option<&ResetRow>, now: i64) -> Option<LinkRefusal> {
    match row {
        None => Some(LinkRefusal::Unknown),
        Some(r) if r.used_at.is_some() => Some(LinkRefusal::UsedUp),
        Some(r) if r.expires_at <= now => Some(LinkRefusal::Expired),
        Some(r) if r.disabled => Some(LinkRefusal::Disabled),
        Some(_) => None,
    }
}
