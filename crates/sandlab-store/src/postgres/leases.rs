//! Leases: the [`LeaseStore`] on the `leases` table (semantics in the crate docs).
//!
//! Acquiring is one `INSERT … ON CONFLICT (name) DO UPDATE … WHERE` that replaces the row
//! only when it has expired or is already the caller's. PostgreSQL locks the conflicting
//! row and re-checks the `WHERE` on its newest version, so of concurrent acquirers of a
//! free lease one writes it and the others see it held. When the upsert changed nothing,
//! the row is read as it stands; a release that deleted it in between makes the step try
//! again. Expired rows of other names are deleted on the way, skipping rows another
//! transaction holds (so two acquirers never wait on each other's rows).

use std::time::Duration;

use async_trait::async_trait;
use sandlab_core::{Lease, LeaseStore, StoreError, StoreResult};

use super::PostgresStore;
use crate::error::{Error, Result};
use crate::rows::leases::{ttl_ms, validate, LeaseRow};

/// How often acquiring retries when the row it lost to vanished before it could be read.
const ATTEMPTS: usize = 8;

async fn acquire(s: &PostgresStore, name: &str, holder: &str, ttl: Duration) -> Result<Lease> {
    validate(name, holder)?;
    for _ in 0..ATTEMPTS {
        let mut tx = s.begin().await?;
        let now = s.now(&mut *tx).await?;
        let expires_at = now.saturating_add(ttl_ms(ttl));
        let taken: Option<LeaseRow> = sqlx::query_as(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
               expires_at = excluded.expires_at \
             WHERE leases.expires_at <= $4 OR leases.holder = excluded.holder \
             RETURNING name, holder, expires_at",
        )
        .bind(name)
        .bind(holder)
        .bind(expires_at)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let row = match taken {
            Some(row) => row,
            None => {
                let held: Option<LeaseRow> =
                    sqlx::query_as("SELECT name, holder, expires_at FROM leases WHERE name = $1")
                        .bind(name)
                        .fetch_optional(&mut *tx)
                        .await?;
                match held {
                    Some(row) => row,
                    // Released between the two statements: try again.
                    None => continue,
                }
            }
        };
        // Expired leases of other names are free whether their rows exist or not; dropping
        // them keeps the table as small as the set of live leases.
        sqlx::query(
            "DELETE FROM leases WHERE expires_at <= $1 AND name IN \
             (SELECT name FROM leases WHERE expires_at <= $1 AND name <> $2 \
              FOR UPDATE SKIP LOCKED)",
        )
        .bind(now)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        return Ok(row.into());
    }
    Err(Error::Conflict(format!(
        "The lease {name} changed hands too often to be read; try again"
    )))
}

async fn release(s: &PostgresStore, name: &str, holder: &str) -> Result<()> {
    sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
        .bind(name)
        .bind(holder)
        .execute(&s.pool)
        .await?;
    Ok(())
}

async fn get(s: &PostgresStore, name: &str) -> Result<Option<Lease>> {
    let now = s.now(&s.pool).await?;
    let row: Option<LeaseRow> = sqlx::query_as(
        "SELECT name, holder, expires_at FROM leases WHERE name = $1 AND expires_at > $2",
    )
    .bind(name)
    .bind(now)
    .fetch_optional(&s.pool)
    .await?;
    Ok(row.map(Lease::from))
}

/// Leases on the database server's clock (or the test clock of [`super::PostgresOptions`]).
/// Failures carry this crate's [`Error`] as their source.
#[async_trait]
impl LeaseStore for PostgresStore {
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
