//! Single sign-on identities and pending sign-ins (see [`crate::identities`]). Taking a
//! sign-in is one `DELETE … RETURNING`, so of two callbacks with one `state` one gets it.

use sqlx::{Postgres, Transaction};

use super::PostgresStore;
use crate::error::{Error, Result};
use crate::identities::{Identity, NewIdentity, NewSsoLogin, SsoLogin, HAS_ONE_THERE, NO_PASSWORD};
use crate::model::{normalize_username, Role, User};
use crate::rows::identities::{IdentityRow, SsoLoginRow, IDENTITY_COLUMNS, SSO_LOGIN_COLUMNS};
use crate::rows::users::{UserRow, USER_COLUMNS};
use crate::secret::{hash_secret, random_id};

pub(super) async fn begin_sso_login(
    s: &PostgresStore,
    state: &str,
    new: NewSsoLogin,
) -> Result<()> {
    let ttl = new.check(state)?;
    let mut tx = s.begin().await?;
    let now = s.now(&mut *tx).await?;
    sqlx::query("DELETE FROM sso_logins WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO sso_logins (state_hash, provider, nonce, verifier, next, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
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

pub(super) async fn take_sso_login(s: &PostgresStore, state: &str) -> Result<Option<SsoLogin>> {
    let now = s.now(&s.pool).await?;
    let row: Option<SsoLoginRow> = sqlx::query_as(&format!(
        "DELETE FROM sso_logins WHERE state_hash = $1 AND expires_at > $2 \
         RETURNING {SSO_LOGIN_COLUMNS}"
    ))
    .bind(hash_secret(state))
    .bind(now)
    .fetch_optional(&s.pool)
    .await?;
    Ok(row.map(SsoLogin::from))
}

pub(super) async fn sso_sign_in(s: &PostgresStore, identity: NewIdentity) -> Result<Option<User>> {
    let id = identity.checked()?;
    let now = s.now(&s.pool).await?;
    let user_id: Option<(String,)> = sqlx::query_as(
        "UPDATE identities SET email = $1, email_verified = $2, last_login = $3 \
         WHERE provider = $4 AND subject = $5 RETURNING user_id",
    )
    .bind(id.email.as_deref())
    .bind(id.email_verified)
    .bind(now)
    .bind(&id.provider)
    .bind(&id.subject)
    .fetch_optional(&s.pool)
    .await?;
    let Some((user_id,)) = user_id else {
        return Ok(None);
    };
    let row: Option<UserRow> = sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1"
    ))
    .bind(&user_id)
    .fetch_optional(&s.pool)
    .await?;
    row.map(User::try_from).transpose()
}

pub(super) async fn user_by_verified_email(s: &PostgresStore, email: &str) -> Result<Option<User>> {
    let email = email.trim().to_lowercase();
    let row: Option<UserRow> = sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE u.id IN \
         (SELECT user_id FROM identities WHERE email = $1 AND email_verified) \
         ORDER BY u.created_at, u.id COLLATE \"C\" LIMIT 1"
    ))
    .bind(&email)
    .fetch_optional(&s.pool)
    .await?;
    row.map(User::try_from).transpose()
}

pub(super) async fn link_identity(
    s: &PostgresStore,
    user_id: &str,
    identity: NewIdentity,
) -> Result<Identity> {
    let id = identity.checked()?;
    let mut tx = s.begin().await?;
    // The user's row stays while the identity is linked to it, and two links to one user
    // wait for each other, so that the check below sees the other's identity.
    let exists: Option<(String,)> =
        sqlx::query_as("SELECT id FROM users WHERE id = $1 FOR NO KEY UPDATE")
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
    if exists.is_none() {
        return Err(Error::NotFound("user"));
    }
    let (has_one,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM identities WHERE user_id = $1 AND provider = $2)",
    )
    .bind(user_id)
    .bind(&id.provider)
    .fetch_one(&mut *tx)
    .await?;
    if has_one {
        return Err(Error::Conflict(HAS_ONE_THERE.into()));
    }
    let now = s.now(&mut *tx).await?;
    let linked = insert(&mut tx, user_id, &id, now).await?;
    tx.commit().await?;
    Ok(linked)
}

pub(super) async fn create_sso_user(
    s: &PostgresStore,
    identity: NewIdentity,
    username: &str,
    role: Role,
) -> Result<(User, Identity)> {
    let id = identity.checked()?;
    let username = normalize_username(username)?;
    let mut tx = s.begin().await?;
    let now = s.now(&mut *tx).await?;
    let user = User {
        id: random_id("usr"),
        username,
        role,
        disabled: false,
        created_at_ms: now,
    };
    sqlx::query(
        "INSERT INTO users (id, username, password_hash, role, disabled, created_at) \
         VALUES ($1, $2, $3, $4, FALSE, $5)",
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
    tx: &mut Transaction<'static, Postgres>,
    user_id: &str,
    id: &NewIdentity,
    now: i64,
) -> Result<Identity> {
    let row: IdentityRow = sqlx::query_as(&format!(
        "INSERT INTO identities \
         (provider, subject, user_id, email, email_verified, created_at, last_login) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {IDENTITY_COLUMNS}"
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
