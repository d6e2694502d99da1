//! Organisations, their members and the places their sandboxes take. A place is taken in
//! a transaction that first locks the organisation's row (`FOR UPDATE`), so of any number
//! of creates racing for its last place, on any server sharing the database, one gets it.

use sandlab_core::SandboxId;
use sqlx::{Executor, Postgres};

use super::{count, PostgresStore};
use crate::error::{Error, Result};
use crate::orgs::{
    check_org_name, is_org_id, validate_org_slug, Membership, NewOrg, Org, OrgFull, OrgMember,
    OrgRole, OrgUpdate, PLACE_PENDING_MS,
};
use crate::rows::orgs::{
    cap_to_db, org_write_error, MemberRow, MembershipRow, OrgRow, MEMBER_COLUMNS, ORG_COLUMNS,
};
use crate::rows::sandboxes::LIVE_STATES;
use crate::secret::random_id;

/// The organisation `key` (an id or a slug names); with `lock`, its row stays locked until
/// the transaction ends.
async fn find<'e, E: Executor<'e, Database = Postgres>>(
    ex: E,
    key: &str,
    lock: bool,
) -> Result<Org> {
    let column = if is_org_id(key) { "id" } else { "slug" };
    let lock = if lock { " FOR UPDATE" } else { "" };
    let row: Option<OrgRow> = sqlx::query_as(&format!(
        "SELECT {ORG_COLUMNS} FROM orgs o WHERE o.{column} = $1{lock}"
    ))
    .bind(key)
    .fetch_optional(ex)
    .await?;
    row.map(Org::try_from)
        .transpose()?
        .ok_or(Error::NotFound("organisation"))
}

pub(super) async fn create(s: &PostgresStore, new: NewOrg) -> Result<Org> {
    validate_org_slug(&new.slug)?;
    let name = check_org_name(new.name.as_deref().unwrap_or(&new.slug))?;
    new.limits.validate()?;
    let org = Org {
        id: random_id("org"),
        slug: new.slug,
        name,
        created_at_ms: s.now(&s.pool).await?,
        limits: new.limits,
    };
    sqlx::query(
        "INSERT INTO orgs (id, slug, name, created_at, max_sandboxes, max_memory, max_cpus, max_ttl) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&org.id)
    .bind(&org.slug)
    .bind(&org.name)
    .bind(org.created_at_ms)
    .bind(cap_to_db(org.limits.max_sandboxes))
    .bind(cap_to_db(org.limits.max_memory))
    .bind(org.limits.max_cpus)
    .bind(cap_to_db(org.limits.max_ttl_secs))
    .execute(&s.pool)
    .await
    .map_err(|e| org_write_error(e, &org.slug))?;
    Ok(org)
}

pub(super) async fn get(s: &PostgresStore, key: &str) -> Result<Org> {
    find(&s.pool, key, false).await
}

pub(super) async fn list(s: &PostgresStore) -> Result<Vec<Org>> {
    let rows: Vec<OrgRow> =
        sqlx::query_as(&format!("SELECT {ORG_COLUMNS} FROM orgs o ORDER BY o.slug"))
            .fetch_all(&s.pool)
            .await?;
    rows.into_iter().map(Org::try_from).collect()
}

pub(super) async fn update(s: &PostgresStore, id: &str, update: OrgUpdate) -> Result<Org> {
    let name = update.name.as_deref().map(check_org_name).transpose()?;
    let mut tx = s.begin().await?;
    let org = find(&mut *tx, id, true).await?;
    let limits = update.apply(org.limits.clone());
    limits.validate()?;
    sqlx::query(
        "UPDATE orgs SET name = $1, max_sandboxes = $2, max_memory = $3, max_cpus = $4, \
         max_ttl = $5 WHERE id = $6",
    )
    .bind(name.as_deref().unwrap_or(&org.name))
    .bind(cap_to_db(limits.max_sandboxes))
    .bind(cap_to_db(limits.max_memory))
    .bind(limits.max_cpus)
    .bind(cap_to_db(limits.max_ttl_secs))
    .bind(&org.id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Org {
        name: name.unwrap_or(org.name),
        limits,
        ..org
    })
}

pub(super) async fn delete(s: &PostgresStore, id: &str) -> Result<()> {
    let done = sqlx::query("DELETE FROM orgs WHERE id = $1")
        .bind(id)
        .execute(&s.pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound("organisation"));
    }
    Ok(())
}

pub(super) async fn set_member(
    s: &PostgresStore,
    org_id: &str,
    user_id: &str,
    role: OrgRole,
) -> Result<OrgMember> {
    let mut tx = s.begin().await?;
    let org = find(&mut *tx, org_id, true).await?;
    let now = s.now(&mut *tx).await?;
    sqlx::query(
        "INSERT INTO org_members (org_id, user_id, role, added_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role",
    )
    .bind(&org.id)
    .bind(user_id)
    .bind(role.as_str())
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(|e| org_write_error(e, &org.slug))?;
    let row: MemberRow = sqlx::query_as(&format!(
        "SELECT {MEMBER_COLUMNS} FROM org_members m JOIN users u ON u.id = m.user_id \
         WHERE m.org_id = $1 AND m.user_id = $2"
    ))
    .bind(&org.id)
    .bind(user_id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    OrgMember::try_from(row)
}

pub(super) async fn remove_member(s: &PostgresStore, org_id: &str, user_id: &str) -> Result<()> {
    let done = sqlx::query("DELETE FROM org_members WHERE org_id = $1 AND user_id = $2")
        .bind(org_id)
        .bind(user_id)
        .execute(&s.pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound("organisation member"));
    }
    Ok(())
}

pub(super) async fn members(s: &PostgresStore, org_id: &str) -> Result<Vec<OrgMember>> {
    let rows: Vec<MemberRow> = sqlx::query_as(&format!(
        "SELECT {MEMBER_COLUMNS} FROM org_members m JOIN users u ON u.id = m.user_id \
         WHERE m.org_id = $1 ORDER BY u.username"
    ))
    .bind(org_id)
    .fetch_all(&s.pool)
    .await?;
    rows.into_iter().map(OrgMember::try_from).collect()
}

pub(super) async fn of_user(s: &PostgresStore, user_id: &str) -> Result<Vec<Membership>> {
    let rows: Vec<MembershipRow> = sqlx::query_as(&format!(
        "SELECT {ORG_COLUMNS}, m.role FROM org_members m JOIN orgs o ON o.id = m.org_id \
         WHERE m.user_id = $1 ORDER BY o.slug"
    ))
    .bind(user_id)
    .fetch_all(&s.pool)
    .await?;
    rows.into_iter().map(Membership::try_from).collect()
}

/// The organisation's places that count at `now`.
async fn live<'e, E: Executor<'e, Database = Postgres>>(
    ex: E,
    org_id: &str,
    now: i64,
) -> Result<u64> {
    let (n,): (i64,) = sqlx::query_as(&format!(
        "SELECT COUNT(*) FROM org_places p LEFT JOIN sandboxes s ON s.id = p.sandbox_id \
         WHERE p.org_id = $1 AND ((s.id IS NULL AND p.taken_at > $2) OR s.state IN {LIVE_STATES})"
    ))
    .bind(org_id)
    .bind(now.saturating_sub(PLACE_PENDING_MS))
    .fetch_one(ex)
    .await?;
    Ok(count(n))
}

pub(super) async fn take_place(
    s: &PostgresStore,
    org_id: &str,
    sandbox: &SandboxId,
) -> Result<std::result::Result<(), OrgFull>> {
    let mut tx = s.begin().await?;
    // The row lock makes the count and the insert one step for every taker of this org.
    let org = find(&mut *tx, org_id, true).await?;
    let now = s.now(&mut *tx).await?;
    if let Some(cap) = org.limits.max_sandboxes {
        let live = live(&mut *tx, &org.id, now).await?;
        if live >= cap {
            return Ok(Err(OrgFull { live, cap }));
        }
    }
    sqlx::query("INSERT INTO org_places (sandbox_id, org_id, taken_at) VALUES ($1, $2, $3)")
        .bind(sandbox.as_str())
        .bind(&org.id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Error::Conflict(format!("The sandbox {sandbox} has a place already"))
            }
            _ => Error::from(e),
        })?;
    tx.commit().await?;
    Ok(Ok(()))
}

pub(super) async fn move_place(s: &PostgresStore, from: &SandboxId, to: &SandboxId) -> Result<()> {
    sqlx::query("UPDATE org_places SET sandbox_id = $1 WHERE sandbox_id = $2")
        .bind(to.as_str())
        .bind(from.as_str())
        .execute(&s.pool)
        .await?;
    Ok(())
}

pub(super) async fn release_place(s: &PostgresStore, sandbox: &SandboxId) -> Result<()> {
    sqlx::query("DELETE FROM org_places WHERE sandbox_id = $1")
        .bind(sandbox.as_str())
        .execute(&s.pool)
        .await?;
    Ok(())
}

pub(super) async fn of_sandbox(s: &PostgresStore, sandbox: &SandboxId) -> Result<Option<String>> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT org_id FROM org_places WHERE sandbox_id = $1")
            .bind(sandbox.as_str())
            .fetch_optional(&s.pool)
            .await?;
    Ok(row.map(|(o,)| o))
}

pub(super) async fn count_live(s: &PostgresStore, org_id: &str) -> Result<u64> {
    let now = s.now(&s.pool).await?;
    live(&s.pool, org_id, now).await
}
