//! Rows of `users`.

use crate::error::{Error, Result};
use crate::model::{Role, User};
use crate::page::{encode_keyset, Page, PageRequest};

/// The columns [`UserRow`] reads, for queries on `users` aliased `u`.
pub(crate) const USER_COLUMNS: &str = "u.id, u.username, u.role, u.disabled, u.created_at";
const CURSOR_KIND: &str = "users";

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: String,
    username: String,
    role: String,
    pub(crate) disabled: bool,
    created_at: i64,
}

impl TryFrom<UserRow> for User {
    type Error = Error;
    fn try_from(r: UserRow) -> Result<User> {
        let role = r
            .role
            .parse::<Role>()
            .map_err(|_| Error::Corrupt(format!("user {} has role {:?}", r.id, r.role)))?;
        Ok(User {
            id: r.id,
            username: r.username,
            role,
            disabled: r.disabled,
            created_at_ms: r.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct LoginRow {
    #[sqlx(flatten)]
    pub(crate) user: UserRow,
    pub(crate) password_hash: String,
}

pub(crate) fn is_enabled_admin(role: Role, disabled: bool) -> bool {
    role == Role::Admin && !disabled
}

/// The `(created_at, id)` a page of users starts after: its cursor's, or before the first.
pub(crate) fn page_after(page: &PageRequest) -> Result<(i64, String)> {
    super::keyset_after(CURSOR_KIND, page)
}

/// A page of the users read for `limit` (one more row than `limit` means a next page).
pub(crate) fn page_of(rows: Vec<UserRow>, limit: u32) -> Result<Page<User>> {
    super::page_of(rows, limit, |u: &User| {
        encode_keyset(CURSOR_KIND, u.created_at_ms, &u.id)
    })
}
