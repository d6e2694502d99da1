//! Sign-up invitations: only the SHA-256 of each secret is stored; redeeming one spends a
//! use and creates the user in one write transaction.

use sqlx::{Executor, Sqlite};

use super::SqliteStore;
use crate::error::{Error, Result};
use crate::links::{
    check_invite_ttl, check_invite_uses, millis, Invite, LinkRefusal, NewInvite, INVITE_PREFIX,
};
use crate::model::{normalize_username, User};
use crate::page::{Page, PageRequest};
use crate::password;
use crate::rows::invites::{
    page_after, page_of, refusal, unknown_creator, InviteRow, INVITE_COLUMNS,
};
use crate::secret::{hash_secret, is_link_shaped, new_link_secret, random_id};

async fn find<'e, E: Executor<'e, Database = Sqlite>>(ex: E, hash: &str) -> Result<Option<Invite>> {
    let row: Option<InviteRow> = sqlx::query_as(&format!(
        "SELECT {INVITE_COLUMNS} FROM invites WHERE token_hash = ?"
    ))
    .bind(hash)
    .fetch_optional(ex)
    .await?;
    row.map(Invite::try_from).transpose()
}

pub(super) async fn create(s: &SqliteStore, new: NewInvite) -> Result<(Invite, String)> {
    check_invite_uses(new.uses)?;
    check_invite_ttl(new.ttl)?;
    let secret = new_link_secret(INVITE_PREFIX);
    let now = s.now();
    let invite = Invite {
        id: random_id("inv"),
        role: new.role,
        uses: new.uses,
        used: 0,
        created_by: new.created_by,
        created_at_ms: now,
        expires_at_ms: now.saturating_add(millis(new.ttl)),
    };
    sqlx::query(
        "INSERT INTO invites (id, token_hash, role, uses, used, created_by, created_at, expires_at) \
         VALUES (?, ?, ?, ?, 0, ?, ?, ?)",
    )
    .bind(&invite.id)
    .bind(hash_secret(&secret))
    .bind(invite.role.as_str())
    .bind(i64::from(invite.uses))
    .bind(invite.created_by.as_deref())
    .bind(invite.created_at_ms)
    .bind(invite.expires_at_ms)
    .execute(&s.writer)
    .await
    .map_err(unknown_creator)?;
    Ok((invite, secret))
}

pub(super) async fn list(s: &SqliteStore, page: PageRequest) -> Result<Page<Invite>> {
    let limit = page.clamped_limit();
    let (at, id) = page_after(&page)?;
    let rows: Vec<InviteRow> = sqlx::query_as(&format!(
        "SELECT {INVITE_COLUMNS} FROM invites WHERE (created_at, id) > (?, ?) \
         ORDER BY created_at, id LIMIT ?"
    ))
    .bind(at)
    .bind(&id)
    .bind(i64::from(limit) + 1)
    .fetch_all(&s.reader)
    .await?;
    page_of(rows, limit)
}

pub(super) async fn delete(s: &SqliteStore, id: &str) -> Result<()> {
    let done = sqlx::query("DELETE FROM invites WHERE id = ?")
        .bind(id)
        .execute(&s.writer)
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound("invitation"));
    }
    Ok(())
}

pub(super) async fn redeem(
    s: &SqliteStore,
    secret: &str,
    username: &str,
    password: String,
) -> Result<std::result::Result<(User, Invite), LinkRefusal>> {
    let username = normalize_username(username)?;
    password::validate_password(&password)?;
    if !is_link_shaped(secret, INVITE_PREFIX) {
        return Ok(Err(LinkRefusal::Unknown));
    }
    let hash = hash_secret(secret);
    // A dead link is refused before the password is hashed.
    if let Some(why) = refusal(find(&s.reader, &hash).await?.as_ref(), s.now()) {
        return Ok(Err(why));
    }
    // Hash outside the transaction: it takes tens of milliseconds and must not hold the
    // write lock.
    let phc = password::hash_password_async(password).await?;
    let mut tx = s.begin_write().await?;
    let now = s.now();
    let spent: Option<InviteRow> = sqlx::query_as(&format!(
        "UPDATE invites SET used = used + 1 \
         WHERE token_hash = ? AND used < uses AND expires_at > ? RETURNING {INVITE_COLUMNS}"
    ))
    .bind(&hash)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(spent) = spent else {
        let why = refusal(find(&mut *tx, &hash).await?.as_ref(), now);
        return Ok(Err(why.unwrap_or(LinkRefusal::Unknown)));
    };
    let invite = Invite::try_from(spent)?;
    let user = User {
        id: random_id("usr"),
        username,
        role: invite.role,
        disabled: false,
        created_at_ms: now,
    };
    // A taken username fails here and the transaction, with its spent use, is rolled back.
    sqlx::query(
        "INSERT INTO users (id, username, password_hash, role, disabled, created_at) \
         VALUES (?, ?, ?, ?, 0, ?)",
    )
    .bind(&user.id)
    .bind(&user.username)
    .bind(&phc)
    .bind(user.role.as_str())
    .bind(user.created_at_ms)
    .execute(&mut *tx)
    .await
    .map_err(|e| Error::unique(e, "The username is taken"))?;
    tx.commit().await?;
    Ok(Ok((user, invite)))
}
