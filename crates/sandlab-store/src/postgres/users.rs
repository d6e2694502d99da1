//! Users: accounts, roles, passwords, and the "always one enabled admin" rule.

use sqlx::{Executor, Postgres};

use super::{count, xact_lock, PostgresStore, LOCK_OWNERS, LOCK_USERS};
use crate::error::{Error, Result};
use crate::model::{normalize_username, NewUser, User, UserUpdate};
use crate::page::{Page, PageRequest};
use crate::password;
use crate::rows::users::{is_enabled_admin, page_after, page_of, LoginRow, UserRow, USER_COLUMNS};
use crate::secret::random_id;

async fn fetch<'e, E: Executor<'e, Database = Postgres>>(ex: E, id: &str) -> Result<User> {
    let row: Option<UserRow> = sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1"
    ))
    .bind(id)
    .fetch_optional(ex)
    .await?;
    row.ok_or(Error::NotFound("user"))?.try_into()
}

async fn enabled_admins<'e, E: Executor<'e, Database = Postgres>>(ex: E) -> Result<u64> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM users WHERE role = 'admin' AND NOT disabled")
            .fetch_one(ex)
            .await?;
    Ok(count(n))
}

pub(super) async fn create(s: &PostgresStore, new: NewUser) -> Result<User> {
    let username = normalize_username(&new.username)?;
    let hash = password::hash_password_async(new.password).await?;
    let user = User {
        id: random_id("usr"),
        username,
        role: new.role,
        disabled: false,
        created_at_ms: s.now(&s.pool).await?,
    };
    sqlx::query(
        "INSERT INTO users (id, username, password_hash, role, disabled, created_at) \
         VALUES ($1, $2, $3, $4, FALSE, $5)",
    )
    .bind(&user.id)
    .bind(&user.username)
    .bind(&hash)
    .bind(user.role.as_str())
    .bind(user.created_at_ms)
    .execute(&s.pool)
    .await
    .map_err(|e| Error::unique(e, "The username is taken"))?;
    Ok(user)
}

pub(super) async fn get(s: &PostgresStore, id: &str) -> Result<User> {
    fetch(&s.pool, id).await
}

pub(super) async fn get_by_name(s: &PostgresStore, username: &str) -> Result<User> {
    let Ok(username) = normalize_username(username) else {
        return Err(Error::NotFound("user"));
    };
    let row: Option<UserRow> = sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE lower(u.username) = $1"
    ))
    .bind(&username)
    .fetch_optional(&s.pool)
    .await?;
    row.ok_or(Error::NotFound("user"))?.try_into()
}

pub(super) async fn list(s: &PostgresStore, page: PageRequest) -> Result<Page<User>> {
    let limit = page.clamped_limit();
    let (at, id) = page_after(&page)?;
    // `COLLATE "C"`: ids compare byte by byte, as in SQLite, whatever the database's
    // collation.
    let rows: Vec<UserRow> = sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users u \
         WHERE (u.created_at, u.id COLLATE \"C\") > ($1, $2 COLLATE \"C\") \
         ORDER BY u.created_at, u.id COLLATE \"C\" LIMIT $3"
    ))
    .bind(at)
    .bind(&id)
    .bind(i64::from(limit) + 1)
    .fetch_all(&s.pool)
    .await?;
    page_of(rows, limit)
}

pub(super) async fn update(s: &PostgresStore, id: &str, update: UserUpdate) -> Result<User> {
    // Hash outside the transaction: it takes tens of milliseconds and must not hold locks.
    let new_hash = match update.password {
        Some(p) => Some(password::hash_password_async(p).await?),
        None => None,
    };
    let mut tx = s.begin().await?;
    xact_lock(&mut tx, LOCK_USERS, false).await?;
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
        "UPDATE users SET role = $1, disabled = $2, \
         password_hash = COALESCE($3, password_hash) WHERE id = $4",
    )
    .bind(role.as_str())
    .bind(disabled)
    .bind(new_hash.as_deref())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if new_hash.is_some() || (disabled && !user.disabled) {
        sqlx::query("DELETE FROM login_sessions WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    user.role = role;
    user.disabled = disabled;
    Ok(user)
}

pub(super) async fn delete(s: &PostgresStore, id: &str) -> Result<()> {
    let mut tx = s.begin().await?;
    xact_lock(&mut tx, LOCK_USERS, false).await?;
    // No sandbox record is written while this one checks and deletes.
    xact_lock(&mut tx, LOCK_OWNERS, false).await?;
    let user = fetch(&mut *tx, id).await?;
    if is_enabled_admin(user.role, user.disabled) && enabled_admins(&mut *tx).await? <= 1 {
        return Err(Error::LastAdmin);
    }
    let (owns,): (bool,) =
        sqlx::query_as("SELECT EXISTS (SELECT 1 FROM sandboxes WHERE owner = $1)")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
    if owns {
        return Err(Error::Conflict(
            "The user still owns sandboxes; remove them first".into(),
        ));
    }
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn count_admins(s: &PostgresStore) -> Result<u64> {
    enabled_admins(&s.pool).await
}

pub(super) async fn verify_login(
    s: &PostgresStore,
    username: &str,
    password: &str,
) -> Result<Option<User>> {
    let row: Option<LoginRow> = match normalize_username(username) {
        Ok(name) => {
            sqlx::query_as(&format!(
                "SELECT {USER_COLUMNS}, u.password_hash FROM users u \
                 WHERE lower(u.username) = $1"
            ))
            .bind(&name)
            .fetch_optional(&s.pool)
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
