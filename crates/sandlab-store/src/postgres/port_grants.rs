//! The port proxy's grants: one-time codes, proxy-origin sessions and share links. A row's
//! key is the SHA-256 of its secret.

use super::PostgresStore;
use crate::error::{Error, Result};
use crate::model::{NewPortGrant, PortGrant, PortGrantKind, MAX_SHARES_PER_SANDBOX};
use crate::rows::port_grants::{validate_new, Row, COLUMNS};
use crate::secret::{hash_secret, is_session_shaped, new_session_secret, random_id};

pub(super) async fn create(s: &PostgresStore, new: NewPortGrant) -> Result<(PortGrant, String)> {
    validate_new(&new)?;
    let secret = new_session_secret();
    let mut tx = s.begin().await?;
    // One creation per sandbox at a time, so the share cap is counted without a race.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('port_grants/' || $1, 0))")
        .bind(&new.sandbox)
        .execute(&mut *tx)
        .await?;
    let now = s.now(&mut *tx).await?;
    let grant = PortGrant {
        id: random_id("pg"),
        kind: new.kind,
        sandbox: new.sandbox,
        port: new.port,
        user_id: new.user_id,
        path: new.path,
        created_at_ms: now,
        expires_at_ms: now.saturating_add(i64::try_from(new.ttl.as_millis()).unwrap_or(i64::MAX)),
    };
    sqlx::query("DELETE FROM port_grants WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut *tx)
        .await?;
    if grant.kind == PortGrantKind::Share {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM port_grants WHERE sandbox = $1 AND kind = 'share'",
        )
        .bind(&grant.sandbox)
        .fetch_one(&mut *tx)
        .await?;
        if u64::try_from(n).unwrap_or(0) >= MAX_SHARES_PER_SANDBOX {
            return Err(Error::Conflict(format!(
                "The sandbox already has {MAX_SHARES_PER_SANDBOX} share links; revoke one first"
            )));
        }
    }
    sqlx::query(
        "INSERT INTO port_grants \
         (id, secret_hash, kind, sandbox, port, user_id, path, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&grant.id)
    .bind(hash_secret(&secret))
    .bind(grant.kind.as_str())
    .bind(&grant.sandbox)
    .bind(i64::from(grant.port))
    .bind(&grant.user_id)
    .bind(&grant.path)
    .bind(grant.created_at_ms)
    .bind(grant.expires_at_ms)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((grant, secret))
}

pub(super) async fn redeem_code(
    s: &PostgresStore,
    secret: &str,
    sandbox: &str,
    port: u16,
) -> Result<Option<PortGrant>> {
    if !is_session_shaped(secret) {
        return Ok(None);
    }
    // One statement: of two uses racing, one deletes the row and the other finds none.
    let row: Option<Row> = sqlx::query_as(&format!(
        "DELETE FROM port_grants AS g \
         WHERE g.secret_hash = $1 AND g.kind = 'code' AND g.sandbox = $2 AND g.port = $3 \
         RETURNING {COLUMNS}"
    ))
    .bind(hash_secret(secret))
    .bind(sandbox)
    .bind(i64::from(port))
    .fetch_optional(&s.pool)
    .await?;
    let now = s.now(&s.pool).await?;
    match row {
        Some(r) if r.expires_at > now => Ok(Some(r.try_into()?)),
        _ => Ok(None),
    }
}

pub(super) async fn authenticate(s: &PostgresStore, secret: &str) -> Result<Option<PortGrant>> {
    if !is_session_shaped(secret) {
        return Ok(None);
    }
    let now = s.now(&s.pool).await?;
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM port_grants g LEFT JOIN users u ON u.id = g.user_id \
         WHERE g.secret_hash = $1 AND g.kind IN ('session', 'share') AND g.expires_at > $2 \
           AND (g.user_id IS NULL OR (u.id IS NOT NULL AND NOT u.disabled))"
    ))
    .bind(hash_secret(secret))
    .bind(now)
    .fetch_optional(&s.pool)
    .await?;
    row.map(PortGrant::try_from).transpose()
}

pub(super) async fn list_shares(s: &PostgresStore, sandbox: &str) -> Result<Vec<PortGrant>> {
    let now = s.now(&s.pool).await?;
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM port_grants g \
         WHERE g.sandbox = $1 AND g.kind = 'share' AND g.expires_at > $2 \
         ORDER BY g.created_at, g.seq"
    ))
    .bind(sandbox)
    .bind(now)
    .fetch_all(&s.pool)
    .await?;
    rows.into_iter().map(PortGrant::try_from).collect()
}

pub(super) async fn delete_share(s: &PostgresStore, sandbox: &str, id: &str) -> Result<()> {
    let done =
        sqlx::query("DELETE FROM port_grants WHERE sandbox = $1 AND id = $2 AND kind = 'share'")
            .bind(sandbox)
            .bind(id)
            .execute(&s.pool)
            .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound("share"));
    }
    Ok(())
}
