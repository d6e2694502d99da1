//! Sandbox records: the [`RecordStore`] on the `sandboxes` table, and the owner-scoped
//! reads the API needs.

use async_trait::async_trait;
use sandlab_core::{
    Holder, RecordStore, SandboxId, SandboxRecord, SandboxState, StoreError, StoreResult,
};

use super::{count, xact_lock, PostgresStore, LOCK_OWNERS};
use crate::error::{Error, Result};
use crate::page::{Page, PageRequest};
use crate::rows::sandboxes::{
    ms_to_db, page_after, page_of, readable_records, SandboxRow, COLUMNS, LIVE_STATES,
};

async fn put(s: &PostgresStore, rec: &SandboxRecord) -> Result<()> {
    let limits = serde_json::to_string(&rec.limits)
        .map_err(|e| Error::Invalid(format!("The sandbox's limits do not serialise: {e}")))?;
    let mut tx = s.begin().await?;
    // Shared with every other write of a record; `delete_user` takes it exclusively to
    // check that the user owns none.
    xact_lock(&mut tx, LOCK_OWNERS, true).await?;
    sqlx::query(&format!(
        "INSERT INTO sandboxes ({COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (id) DO UPDATE SET state = excluded.state, reason = excluded.reason, \
           owner = excluded.owner, image = excluded.image, limits = excluded.limits, \
           hostname = excluded.hostname, driver = excluded.driver, \
           ipv4 = excluded.ipv4, ipv6 = excluded.ipv6, \
           created_at = excluded.created_at, deadline = excluded.deadline, \
           creator = excluded.creator, owner_process = excluded.owner_process"
    ))
    .bind(rec.id.as_str())
    .bind(rec.state.to_string())
    .bind(rec.reason.as_deref())
    .bind(rec.owner.as_deref())
    .bind(&rec.image)
    .bind(limits)
    .bind(rec.hostname.as_deref())
    .bind(&rec.driver)
    .bind(rec.network.ipv4.as_deref())
    .bind(rec.network.ipv6.as_deref())
    .bind(ms_to_db(rec.created_at_ms))
    .bind(ms_to_db(rec.deadline_ms))
    .bind(rec.creator.as_ref().map(Holder::to_string))
    .bind(rec.owner_process.as_ref().map(Holder::to_string))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// [`RecordStore::put_if_owner`]: one `UPDATE` whose `WHERE` is the comparison (a
/// concurrent swap waits for the row and re-checks it), under the owners' shared lock like
/// every record write.
async fn put_if_owner(
    s: &PostgresStore,
    rec: &SandboxRecord,
    owner: Option<&str>,
    state: SandboxState,
) -> Result<bool> {
    let limits = serde_json::to_string(&rec.limits)
        .map_err(|e| Error::Invalid(format!("The sandbox's limits do not serialise: {e}")))?;
    let mut tx = s.begin().await?;
    xact_lock(&mut tx, LOCK_OWNERS, true).await?;
    let done = sqlx::query(
        "UPDATE sandboxes SET state = $1, reason = $2, owner = $3, image = $4, limits = $5, \
           hostname = $6, driver = $7, ipv4 = $8, ipv6 = $9, created_at = $10, deadline = $11, \
           creator = $12, owner_process = $13 \
         WHERE id = $14 AND owner IS NOT DISTINCT FROM $15 AND state = $16",
    )
    .bind(rec.state.to_string())
    .bind(rec.reason.as_deref())
    .bind(rec.owner.as_deref())
    .bind(&rec.image)
    .bind(limits)
    .bind(rec.hostname.as_deref())
    .bind(&rec.driver)
    .bind(rec.network.ipv4.as_deref())
    .bind(rec.network.ipv6.as_deref())
    .bind(ms_to_db(rec.created_at_ms))
    .bind(ms_to_db(rec.deadline_ms))
    .bind(rec.creator.as_ref().map(Holder::to_string))
    .bind(rec.owner_process.as_ref().map(Holder::to_string))
    .bind(rec.id.as_str())
    .bind(owner)
    .bind(state.to_string())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(done.rows_affected() > 0)
}

async fn get(s: &PostgresStore, id: &SandboxId) -> Result<Option<SandboxRecord>> {
    let row: Option<SandboxRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM sandboxes WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(&s.pool)
            .await?;
    row.map(SandboxRecord::try_from).transpose()
}

/// Every record, oldest first. A record that cannot be read is skipped with a warning
/// rather than hiding all the others from reconciliation.
async fn list_all(s: &PostgresStore) -> Result<Vec<SandboxRecord>> {
    let rows: Vec<SandboxRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM sandboxes ORDER BY created_at, id COLLATE \"C\""
    ))
    .fetch_all(&s.pool)
    .await?;
    Ok(readable_records(rows))
}

async fn delete(s: &PostgresStore, id: &SandboxId) -> Result<()> {
    sqlx::query("DELETE FROM sandboxes WHERE id = $1")
        .bind(id.as_str())
        .execute(&s.pool)
        .await?;
    Ok(())
}

pub(super) async fn get_for(
    s: &PostgresStore,
    id: &SandboxId,
    owner: Option<&str>,
) -> Result<SandboxRecord> {
    match get(s, id).await? {
        Some(rec) if owner.is_none() || rec.owner.as_deref() == owner => Ok(rec),
        _ => Err(Error::NotFound("sandbox")),
    }
}

pub(super) async fn list_page(
    s: &PostgresStore,
    owner: Option<&str>,
    page: PageRequest,
) -> Result<Page<SandboxRecord>> {
    let limit = page.clamped_limit();
    let (at, after) = page_after(&page)?;
    let rows: Vec<SandboxRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM sandboxes \
         WHERE ($1::text IS NULL OR owner = $1) \
           AND (created_at, id COLLATE \"C\") > ($2, $3 COLLATE \"C\") \
         ORDER BY created_at, id COLLATE \"C\" LIMIT $4"
    ))
    .bind(owner)
    .bind(at)
    .bind(&after)
    .bind(i64::from(limit) + 1)
    .fetch_all(&s.pool)
    .await?;
    page_of(rows, limit)
}

pub(super) async fn count_live(s: &PostgresStore, owner: &str) -> Result<u64> {
    let (n,): (i64,) = sqlx::query_as(&format!(
        "SELECT COUNT(*) FROM sandboxes WHERE owner = $1 AND state IN {LIVE_STATES}"
    ))
    .bind(owner)
    .fetch_one(&s.pool)
    .await?;
    Ok(count(n))
}

/// The runtime's record store. `put` returns once the record is committed. Failures carry
/// this crate's [`Error`] as their source.
#[async_trait]
impl RecordStore for PostgresStore {
    async fn put(&self, rec: &SandboxRecord) -> StoreResult<()> {
        put(self, rec).await.map_err(StoreError::new)
    }

    async fn get(&self, id: &SandboxId) -> StoreResult<Option<SandboxRecord>> {
        get(self, id).await.map_err(StoreError::new)
    }

    async fn list(&self) -> StoreResult<Vec<SandboxRecord>> {
        list_all(self).await.map_err(StoreError::new)
    }

    async fn delete(&self, id: &SandboxId) -> StoreResult<()> {
        delete(self, id).await.map_err(StoreError::new)
    }

    async fn put_if_owner(
        &self,
        rec: &SandboxRecord,
        owner: Option<&str>,
        state: SandboxState,
    ) -> StoreResult<bool> {
        put_if_owner(self, rec, owner, state)
            .await
            .map_err(StoreError::new)
    }
}
