//! Single sign-on identities and pending sign-ins (see [`crate::identities`]).

use super::SqliteStore;
use crate::error::{Error, Result};
use crate::identities::{Identity, NewIdentity, NewSsoLogin, SsoLogin, HAS_ONE_THERE, NO_PASSWORD};
use crate::model::{normalize_username, Role, User};
use crate::rows::identities::{IdentityRow, SsoLoginRow, IDENTITY_COLUMNS, SSO_LOGIN_COLUMNS};
use crate::rows::users::{UserRow, USER_COLUMNS};
use crate::secret::{hash_secret, random_id};

pub(super) async fn begin_sso_login(s: &SqliteStore, state: &str, new: NewSsoLogin) -> Result<()> {
    let ttl = new.check(state)?;
    let now = s.now();
    let mut tx = s.begin_write().await?;
    sqlx::query("DELETE FROM sso_logins WHERE expires_at <= ?")
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO sso_logins (state_hash, provider, nonce, verifier, next, created_at, expires_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(hash_secret(state))
    .bind(&new.provider)
    .bind(&new.nonce)
    .bind(&new.verifier)
    .bind(&new.next)
    .bind(now)
    .bind(now.saturating_add(ttl))
    .execute(&mut *tx)
    .await
    .map_err(|e| Error::unique(e, "The sign-in state is in use"))?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn take_sso_login(s: &SqliteStore, state: &str) -> Result<Option<SsoLogin>> {
    let row: Option<SsoLoginRow> = sqlx::query_as(&format!(
        "DELETE FROM sso_logins WHERE state_hash = ? AND expires_at > ? \
         RETURNING {SSO_LOGIN_COLUMNS}"
    ))
    .bind(hash_secret(state))
    .bind(s.now())
    .fetch_optional(&s.writer)
    .await?;
    Ok(row.map(SsoLogin::from))
}

pub(super) async fn sso_sign_in(s: &SqliteStore, identity: NewIdentity) -> Result<Option<User>> {
    let id = identity.checked()?;
    let updated = sqlx::query(
        "UPDATE identities SET email = ?, email_verified = ?, last_login = ? \
         WHERE provider = ? AND subject = ?",
    )
    .bind(id.email.as_deref())
    .bind(id.email_verified)
    .bind(s.now())
    .bind(&id.provider)
    .bind(&id.subject)
    .execute(&s.writer)
    .await?;
    if updated.rows_affected() == 0 {
        return Ok(None);
    }
    let row: Option<UserRow> = sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users u JOIN identities i ON i.user_id = u.id \
         WHERE i.provider = ? AND i.subject = ?"
    ))
    .bind(&id.provider)
    .bind(&id.subject)
    .fetch_optional(&s.writer)
    .await?;
    row.map(User::try_from).transpose()
}

pub(super) async fn user_by_verified_email(s: &SqliteStore, email: &str) -> Result<Option<User>> {
    let email = email.trim().to_lowercase();
    let row: Option<UserRow> = sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE u.id IN \
         (SELECT user_id FROM identities WHERE email = ? AND email_verified = 1) \
         ORDER BY u.created_at, u.id LIMIT 1"
    ))
    .bind(&email)
    .fetch_optional(&s.reader)
    .await?;
    row.map(User::try_from).transpose()
}

pub(super) async fn link_identity(
    s: &SqliteStore,
    user_id: &str,
    identity: NewIdentity,
) -> Result<Identity> {
    let id = identity.checked()?;
    let mut tx = s.begin_write().await?;
    let (exists,): (bool,) = sqlx::query_as("SELECT EXISTS (SELECT 1 FROM users WHERE id = ?)")
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await?;
    if !exists {
        return Err(Error::NotFound("user"));
    }
    let (has_one,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM identities WHERE user_id = ? AND provider = ?)",
    )
    .bind(user_id)
    .bind(&id.provider)
    .fetch_one(&mut *tx)
    .await?;
    if has_one {
        return Err(Error::Conflict(HAS_ONE_THERE.into()));
    }
    let linked = insert(&mut tx, user_id, &id, s.now()).await?;
    tx.commit().await?;
    Ok(linked)
}

pub(super) async fn create_sso_user(
    s: &SqliteStore,
    identity: NewIdentity,
    username: &str,
    role: Role,
) -> Result<(User, Identity)> {
    let id = identity.checked()?;
    let username = normalize_username(username)?;
    let now = s.now();
    let user = User {
        id: random_id("usr"),
        username,
        role,
        disabled: false,
        created_at_ms: now,
    };
    let mut tx = s.begin_write().await?;
    sqlx::query(
        "INSERT INTO users (id, username, password_hash, role, disabled, created_at) \
         VALUES (?, ?, ?, ?, 0, ?)",
    )
    .bind(&user.id)
    .bind(&user.username)
    .bind(NO_PASSWORD)
    .bind(user.role.as_str())
    .bind(user.created_at_ms)
    .execute(&mut *tx)
    .await
    .map_err(|e| Error::unique(e, "The username is taken"))?;
    let linked = insert(&mut tx, &user.id, &id, now).await?;
    tx.commit().await?;
    Ok((user, linked))
}

async fn insert(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    user_id: &str,
    id: &NewIdentity,
    now: i64,
) -> Result<Identity> {
    let row: IdentityRow = sqlx::query_as(&format!(
        "INSERT INTO identities \
         (provider, subject, user_id, email, email_verified, created_at, last_login) \
         VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING {IDENTITY_COLUMNS}"
    ))
    .bind(&id.provider)
    .bind(&id.subject)
    .bind(user_id)
    .bind(id.email.as_deref())
    .bind(id.email_verified)
    .bind(now)
    .bind(now)
    .fetch_one(&mut **tx)
    .await
    .map_err(|e| Error::unique(e, "The identity is linked to an account already"))?;
    Ok(row.into())
}
