//! Sandbox records: the [`RecordStore`] on the `sandboxes` table, and the owner-scoped
//! reads the API needs.

use async_trait::async_trait;
use sandlab_core::{
    Holder, RecordStore, SandboxId, SandboxRecord, SandboxState, StoreError, StoreResult,
};

use super::{count, SqliteStore};
use crate::error::{Error, Result};
use crate::page::{Page, PageRequest};
use crate::rows::sandboxes::{
    ms_to_db, page_after, page_of, readable_records, SandboxRow, COLUMNS, LIVE_STATES,
};

/// The state's name as the runtime spells it (`creating`, ...).
fn state_name(state: SandboxState) -> String {
    state.to_string()
}

async fn put(s: &SqliteStore, rec: &SandboxRecord) -> Result<()> {
    let limits = serde_json::to_string(&rec.limits)
        .map_err(|e| Error::Invalid(format!("The sandbox's limits do not serialise: {e}")))?;
    sqlx::query(&format!(
        "INSERT INTO sandboxes ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET state = excluded.state, reason = excluded.reason, \
           owner = excluded.owner, image = excluded.image, limits = excluded.limits, \
           hostname = excluded.hostname, driver = excluded.driver, \
           ipv4 = excluded.ipv4, ipv6 = excluded.ipv6, \
           created_at = excluded.created_at, deadline = excluded.deadline, \
           creator = excluded.creator, owner_process = excluded.owner_process"
    ))
    .bind(rec.id.as_str())
    .bind(state_name(rec.state))
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
    .execute(&s.writer)
    .await?;
    Ok(())
}

/// [`RecordStore::put_if_owner`]: one `UPDATE` whose `WHERE` is the comparison.
async fn put_if_owner(
    s: &SqliteStore,
    rec: &SandboxRecord,
    owner: Option<&str>,
    state: SandboxState,
) -> Result<bool> {
    let limits = serde_json::to_string(&rec.limits)
        .map_err(|e| Error::Invalid(format!("The sandbox's limits do not serialise: {e}")))?;
    let done = sqlx::query(
        "UPDATE sandboxes SET state = ?, reason = ?, owner = ?, image = ?, limits = ?, \
           hostname = ?, driver = ?, ipv4 = ?, ipv6 = ?, created_at = ?, deadline = ?, \
           creator = ?, owner_process = ? \
         WHERE id = ? AND owner IS ? AND state = ?",
    )
    .bind(state_name(rec.state))
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
    .bind(state_name(state))
    .execute(&s.writer)
    .await?;
    Ok(done.rows_affected() > 0)
}

async fn get(s: &SqliteStore, id: &SandboxId) -> Result<Option<SandboxRecord>> {
    let row: Option<SandboxRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM sandboxes WHERE id = ?"))
            .bind(id.as_str())
            .fetch_optional(&s.reader)
            .await?;
    row.map(SandboxRecord::try_from).transpose()
}

/// Every record, oldest first. A record that cannot be read is skipped with a warning
/// rather than hiding all the others from reconciliation.
async fn list_all(s: &SqliteStore) -> Result<Vec<SandboxRecord>> {
    let rows: Vec<SandboxRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM sandboxes ORDER BY created_at, id"
    ))
    .fetch_all(&s.reader)
    .await?;
    Ok(readable_records(rows))
}

async fn delete(s: &SqliteStore, id: &SandboxId) -> Result<()> {
    sqlx::query("DELETE FROM sandboxes WHERE id = ?")
        .bind(id.as_str())
        .execute(&s.writer)
        .await?;
    Ok(())
}

pub(super) async fn get_for(
    s: &SqliteStore,
    id: &SandboxId,
    owner: Option<&str>,
) -> Result<SandboxRecord> {
    match get(s, id).await? {
        Some(rec) if owner.is_none() || rec.owner.as_deref() == owner => Ok(rec),
        _ => Err(Error::NotFound("sandbox")),
    }
}

pub(super) async fn list_page(
    s: &SqliteStore,
    owner: Option<&str>,
    page: PageRequest,
) -> Result<Page<SandboxRecord>> {
    let limit = page.clamped_limit();
    let (at, after) = page_after(&page)?;
    let filter = if owner.is_some() { "owner = ? AND" } else { "" };
    let sql = format!(
        "SELECT {COLUMNS} FROM sandboxes WHERE {filter} (created_at, id) > (?, ?) \
         ORDER BY created_at, id LIMIT ?"
    );
    let mut q = sqlx::query_as::<_, SandboxRow>(&sql);
    if let Some(o) = owner {
        q = q.bind(o);
    }
    let rows = q
        .bind(at)
        .bind(&after)
        .bind(i64::from(limit) + 1)
        .fetch_all(&s.reader)
        .await?;
    page_of(rows, limit)
}

pub(super) async fn count_live(s: &SqliteStore, owner: &str) -> Result<u64> {
    let (n,): (i64,) = sqlx::query_as(&format!(
        "SELECT COUNT(*) FROM sandboxes WHERE owner = ? AND state IN {LIVE_STATES}"
    ))
    .bind(owner)
    .fetch_one(&s.reader)
    .await?;
    Ok(count(n))
}

/// The runtime's record store. `put` returns once the record is committed, which survives
/// a `kill -9` (see the durability notes in [`crate::sqlite`]). Failures carry this
/// crate's [`Error`] as their source.
#[async_trait]
impl RecordStore for SqliteStore {
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
