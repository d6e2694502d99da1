//! Organisations, their members and the places their sandboxes take. A place is taken in
//! a write transaction (`BEGIN IMMEDIATE`), so of any number of creates racing for an
//! organisation's last place, in any process on the file, one gets it.

use sandlab_core::SandboxId;
use sqlx::{Executor, Sqlite};

use super::{count, SqliteStore};
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

async fn find<'e, E: Executor<'e, Database = Sqlite>>(ex: E, key: &str) -> Result<Org> {
    let column = if is_org_id(key) { "id" } else { "slug" };
    let row: Option<OrgRow> = sqlx::query_as(&format!(
        "SELECT {ORG_COLUMNS} FROM orgs o WHERE o.{column} = ?"
    ))
    .bind(key)
    .fetch_optional(ex)
    .await?;
    row.map(Org::try_from)
        .transpose()?
        .ok_or(Error::NotFound("organisation"))
}

pub(super) async fn create(s: &SqliteStore, new: NewOrg) -> Result<Org> {
    validate_org_slug(&new.slug)?;
    let name = check_org_name(new.name.as_deref().unwrap_or(&new.slug))?;
    new.limits.validate()?;
    let org = Org {
        id: random_id("org"),
        slug: new.slug,
        name,
        created_at_ms: s.now(),
        limits: new.limits,
    };
    sqlx::query(
        "INSERT INTO orgs (id, slug, name, created_at, max_sandboxes, max_memory, max_cpus, max_ttl) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&org.id)
    .bind(&org.slug)
    .bind(&org.name)
    .bind(org.created_at_ms)
    .bind(cap_to_db(org.limits.max_sandboxes))
    .bind(cap_to_db(org.limits.max_memory))
    .bind(org.limits.max_cpus)
    .bind(cap_to_db(org.limits.max_ttl_secs))
    .execute(&s.writer)
    .await
    .map_err(|e| org_write_error(e, &org.slug))?;
    Ok(org)
}

pub(super) async fn get(s: &SqliteStore, key: &str) -> Result<Org> {
    find(&s.reader, key).await
}

pub(super) async fn list(s: &SqliteStore) -> Result<Vec<Org>> {
    let rows: Vec<OrgRow> =
        sqlx::query_as(&format!("SELECT {ORG_COLUMNS} FROM orgs o ORDER BY o.slug"))
            .fetch_all(&s.reader)
            .await?;
    rows.into_iter().map(Org::try_from).collect()
}

pub(super) async fn update(s: &SqliteStore, id: &str, update: OrgUpdate) -> Result<Org> {
    let name = update.name.as_deref().map(check_org_name).transpose()?;
    let mut tx = s.begin_write().await?;
    let org = find(&mut *tx, id).await?;
    let limits = update.apply(org.limits.clone());
    limits.validate()?;
    sqlx::query(
        "UPDATE orgs SET name = ?, max_sandboxes = ?, max_memory = ?, max_cpus = ?, max_ttl = ? \
         WHERE id = ?",
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

pub(super) async fn delete(s: &SqliteStore, id: &str) -> Result<()> {
    let done = sqlx::query("DELETE FROM orgs WHERE id = ?")
        .bind(id)
        .execute(&s.writer)
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound("organisation"));
    }
    Ok(())
}

pub(super) async fn set_member(
    s: &SqliteStore,
    org_id: &str,
    user_id: &str,
    role: OrgRole,
) -> Result<OrgMember> {
    let mut tx = s.begin_write().await?;
    let org = find(&mut *tx, org_id).await?;
    sqlx::query(
        "INSERT INTO org_members (org_id, user_id, role, added_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role",
    )
    .bind(&org.id)
    .bind(user_id)
    .bind(role.as_str())
    .bind(s.now())
    .execute(&mut *tx)
    .await
    .map_err(|e| org_write_error(e, &org.slug))?;
    let row: MemberRow = sqlx::query_as(&format!(
        "SELECT {MEMBER_COLUMNS} FROM org_members m JOIN users u ON u.id = m.user_id \
         WHERE m.org_id = ? AND m.user_id = ?"
    ))
    .bind(&org.id)
    .bind(user_id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    OrgMember::try_from(row)
}

pub(super) async fn remove_member(s: &SqliteStore, org_id: &str, user_id: &str) -> Result<()> {
    let done = sqlx::query("DELETE FROM org_members WHERE org_id = ? AND user_id = ?")
        .bind(org_id)
        .bind(user_id)
        .execute(&s.writer)
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound("organisation member"));
    }
    Ok(())
}

pub(super) async fn members(s: &SqliteStore, org_id: &str) -> Result<Vec<OrgMember>> {
    let rows: Vec<MemberRow> = sqlx::query_as(&format!(
        "SELECT {MEMBER_COLUMNS} FROM org_members m JOIN users u ON u.id = m.user_id \
         WHERE m.org_id = ? ORDER BY u.username"
    ))
    .bind(org_id)
    .fetch_all(&s.reader)
    .await?;
    rows.into_iter().map(OrgMember::try_from).collect()
}

pub(super) async fn of_user(s: &SqliteStore, user_id: &str) -> Result<Vec<Membership>> {
    let rows: Vec<MembershipRow> = sqlx::query_as(&format!(
        "SELECT {ORG_COLUMNS}, m.role FROM org_members m JOIN orgs o ON o.id = m.org_id \
         WHERE m.user_id = ? ORDER BY o.slug"
    ))
    .bind(user_id)
    .fetch_all(&s.reader)
    .await?;
    rows.into_iter().map(Membership::try_from).collect()
}

/// The organisation's places that count at `now`.
async fn live<'e, E: Executor<'e, Database = Sqlite>>(
    ex: E,
    org_id: &str,
    now: i64,
) -> Result<u64> {
    let (n,): (i64,) = sqlx::query_as(&format!(
        "SELECT COUNT(*) FROM org_places p LEFT JOIN sandboxes s ON s.id = p.sandbox_id \
         WHERE p.org_id = ? AND ((s.id IS NULL AND p.taken_at > ?) OR s.state IN {LIVE_STATES})"
    ))
    .bind(org_id)
    .bind(now.saturating_sub(PLACE_PENDING_MS))
    .fetch_one(ex)
    .await?;
    Ok(count(n))
}

pub(super) async fn take_place(
    s: &SqliteStore,
    org_id: &str,
    sandbox: &SandboxId,
) -> Result<std::result::Result<(), OrgFull>> {
    let mut tx = s.begin_write().await?;
    let org = find(&mut *tx, org_id).await?;
    let now = s.now();
    if let Some(cap) = org.limits.max_sandboxes {
        let live = live(&mut *tx, &org.id, now).await?;
        if live >= cap {
            return Ok(Err(OrgFull { live, cap }));
        }
    }
    sqlx::query("INSERT INTO org_places (sandbox_id, org_id, taken_at) VALUES (?, ?, ?)")
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

pub(super) async fn move_place(s: &SqliteStore, from: &SandboxId, to: &SandboxId) -> Result<()> {
    sqlx::query("UPDATE org_places SET sandbox_id = ? WHERE sandbox_id = ?")
        .bind(to.as_str())
        .bind(from.as_str())
        .execute(&s.writer)
        .await?;
    Ok(())
}

pub(super) async fn release_place(s: &SqliteStore, sandbox: &SandboxId) -> Result<()> {
    sqlx::query("DELETE FROM org_places WHERE sandbox_id = ?")
        .bind(sandbox.as_str())
        .execute(&s.writer)
        .await?;
    Ok(())
}

pub(super) async fn of_sandbox(s: &SqliteStore, sandbox: &SandboxId) -> Result<Option<String>> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT org_id FROM org_places WHERE sandbox_id = ?")
            .bind(sandbox.as_str())
            .fetch_optional(&s.reader)
            .await?;
    Ok(row.map(|(o,)| o))
}

pub(super) async fn count_live(s: &SqliteStore, org_id: &str) -> Result<u64> {
    live(&s.reader, org_id, s.now()).await
}
