//! Users: accounts, roles, passwords, and the "always one enabled admin" rule.

use sqlx::{Executor, Sqlite};

use super::{count, SqliteStore};
use crate::error::{Error, Result};
use crate::model::{normalize_username, NewUser, User, UserUpdate};
use crate::page::{Page, PageRequest};
use crate::password;
use crate::rows::users::{is_enabled_admin, page_after, page_of, LoginRow, UserRow, USER_COLUMNS};
use crate::secret::random_id;

async fn fetch<'e, E: Executor<'e, Database = Sqlite>>(ex: E, id: &str) -> Result<User> {
    let row: Option<UserRow> = sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?"
    ))
    .bind(id)
    .fetch_optional(ex)
    .await?;
    row.ok_or(Error::NotFound("user"))?.try_into()
}

async fn enabled_admins<'e, E: Executor<'e, Database = Sqlite>>(ex: E) -> Result<u64> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0")
            .fetch_one(ex)
            .await?;
    Ok(count(n))
}

pub(super) async fn create(s: &SqliteStore, new: NewUser) -> Result<User> {
    let username = normalize_username(&new.username)?;
    let hash = password::hash_password_async(new.password).await?;
    let user = User {
        id: random_id("usr"),
        username,
        role: new.role,
        disabled: false,
        created_at_ms: s.now(),
    };
    sqlx::query(
        "INSERT INTO users (id, username, password_hash, role, disabled, created_at) \
         VALUES (?, ?, ?, ?, 0, ?)",
    )
    .bind(&user.id)
    .bind(&user.username)
    .bind(&hash)
    .bind(user.role.as_str())
    .bind(user.created_at_ms)
    .execute(&s.writer)
    .await
    .map_err(|e| Error::unique(e, "The username is taken"))?;
    Ok(user)
}

pub(super) async fn get(s: &SqliteStore, id: &str) -> Result<User> {
    fetch(&s.reader, id).await
}

pub(super) async fn get_by_name(s: &SqliteStore, username: &str) -> Result<User> {
    let Ok(username) = normalize_username(username) else {
        return Err(Error::NotFound("user"));
    };
    let row: Option<UserRow> = sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE u.username = ?"
    ))
    .bind(&username)
    .fetch_optional(&s.reader)
    .await?;
    row.ok_or(Error::NotFound("user"))?.try_into()
}

pub(super) async fn list(s: &SqliteStore, page: PageRequest) -> Result<Page<User>> {
    let limit = page.clamped_limit();
    let (at, id) = page_after(&page)?;
    let rows: Vec<UserRow> = sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE (u.created_at, u.id) > (?, ?) \
         ORDER BY u.created_at, u.id LIMIT ?"
    ))
    .bind(at)
    .bind(&id)
    .bind(i64::from(limit) + 1)
    .fetch_all(&s.reader)
    .await?;
    page_of(rows, limit)
}

pub(super) async fn update(s: &SqliteStore, id: &str, update: UserUpdate) -> Result<User> {
    // Hash outside the transaction: it takes tens of milliseconds and must not hold the
    // write lock.
    let new_hash = match update.password {
        Some(p) => Some(password::hash_password_async(p).await?),
        None => None,
    };
    let mut tx = s.begin_write().await?;
    let mut user = fetch(&mut *tx, id).await?;
    let role = update.role.unwrap_or(user.role);
    let disabled = update.disabled.unwrap_or(user.disabled);
    if is_enabled_admin(user.role, user.disabled)
        && !is_enabled_admin(role, disabled)
        && enabled_admins(&mut *tx).await? <= 1
    {
        return Err(Error::LastAdmin);
    }
    sqlx::query(
        "UPDATE users SET role = ?, disabled = ?, password_hash = COALESCE(?, password_hash) \
         WHERE id = ?",
    )
    .bind(role.as_str())
    .bind(disabled)
    .bind(new_hash.as_deref())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if new_hash.is_some() || (disabled && !user.disabled) {
        sqlx::query("DELETE FROM login_sessions WHERE user_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    user.role = role;
    user.disabled = disabled;
    Ok(user)
}

pub(super) async fn delete(s: &SqliteStore, id: &str) -> Result<()> {
    let mut tx = s.begin_write().await?;
    let user = fetch(&mut *tx, id).await?;
    if is_enabled_admin(user.role, user.disabled) && enabled_admins(&mut *tx).await? <= 1 {
        return Err(Error::LastAdmin);
    }
    let (owns,): (bool,) =
        sqlx::query_as("SELECT EXISTS (SELECT 1 FROM sandboxes WHERE owner = ?)")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
    if owns {
        return Err(Error::Conflict(
            "The user still owns sandboxes; remove them first".into(),
        ));
    }
    sqlx::query("DELETE FROM users WHERE id = ?")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn count_admins(s: &SqliteStore) -> Result<u64> {
    enabled_admins(&s.reader).await
}

pub(super) async fn verify_login(
    s: &SqliteStore,
    username: &str,
    password: &str,
) -> Result<Option<User>> {
    let row: Option<LoginRow> = match normalize_username(username) {
        Ok(name) => {
            sqlx::query_as(&format!(
                "SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.username = ?"
            ))
            .bind(&name)
            .fetch_optional(&s.reader)
            .await?
        }
        Err(_) => None,
    };
    let phc = row.as_ref().map(|r| r.password_hash.clone());
    let matches = password::verify_password_async(password.to_owned(), phc).await?;
    match row {
        Some(r) if matches && !r.user.disabled => Ok(Some(r.user.try_into()?)),
        _ => Ok(None),
    }
}
