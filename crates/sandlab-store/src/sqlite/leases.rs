//! Leases: the [`LeaseStore`] on the `leases` table (semantics in the crate docs).
//!
//! Acquiring is one `BEGIN IMMEDIATE` transaction: an upsert that replaces the row only when
//! it has expired or is already the caller's, then a read of the row as it stands. The
//! write lock serialises acquirers across every connection and process on the file, so two
//! of them never both see a free lease.

use std::time::Duration;

use async_trait::async_trait;
use sandlab_core::{Lease, LeaseStore, StoreError, StoreResult};

use super::SqliteStore;
use crate::error::Result;
use crate::rows::leases::{ttl_ms, validate, LeaseRow};

async fn acquire(s: &SqliteStore, name: &str, holder: &str, ttl: Duration) -> Result<Lease> {
    validate(name, holder)?;
    let now = s.now();
    let expires_at = now.saturating_add(ttl_ms(ttl));
    let mut tx = s.begin_write().await?;
    sqlx::query(
        "INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
           expires_at = excluded.expires_at \
         WHERE leases.expires_at <= ?4 OR leases.holder = excluded.holder",
    )
    .bind(name)
    .bind(holder)
    .bind(expires_at)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let row: LeaseRow =
        sqlx::query_as("SELECT name, holder, expires_at FROM leases WHERE name = ?")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
    // Expired leases of other names are free whether their rows exist or not; dropping
    // them keeps the table as small as the set of live leases (a holder that died never
    // releases its own).
    sqlx::query("DELETE FROM leases WHERE expires_at <= ? AND name <> ?")
        .bind(now)
        .bind(name)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(row.into())
}

async fn release(s: &SqliteStore, name: &str, holder: &str) -> Result<()> {
    sqlx::query("DELETE FROM leases WHERE name = ? AND holder = ?")
        .bind(name)
        .bind(holder)
        .execute(&s.writer)
        .await?;
    Ok(())
}

async fn get(s: &SqliteStore, name: &str) -> Result<Option<Lease>> {
    let row: Option<LeaseRow> = sqlx::query_as(
        "SELECT name, holder, expires_at FROM leases WHERE name = ? AND expires_at > ?",
    )
    .bind(name)
    .bind(s.now())
    .fetch_optional(&s.reader)
    .await?;
    Ok(row.map(Lease::from))
}

/// Leases on this database's clock. Failures carry this crate's [`Error`](crate::Error) as their source.
#[async_trait]
impl LeaseStore for SqliteStore {
    async fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> StoreResult<Lease> {
        acquire(self, name, holder, ttl)
            .await
            .map_err(StoreError::new)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        release(self, name, holder).await.map_err(StoreError::new)
    }

    async fn get_lease(&self, name: &str) -> StoreResult<Option<Lease>> {
        get(self, name).await.map_err(StoreError::new)
    }
}
