//! [`PostgresStore`]: the [`Store`](crate::Store) on a PostgreSQL server, through sqlx; several control
//! planes (replicas) can share one database.
//!
//! # Opening
//!
//! [`PostgresStore::open`] takes a `postgres://` URL (any form libpq accepts as a URL:
//! `postgres://user:password@host:5432/db?sslmode=require`, a unix socket through
//! `?host=/run/postgresql`). The schema is `migrations-postgres/`, the same numbered steps
//! as SQLite's `migrations/` in PostgreSQL's dialect, applied on open by sqlx's migrator
//! under a session advisory lock (`pg_advisory_lock`, keyed on the database's name): of
//! replicas opening at once, one applies them and the others wait, then find them applied.
//! A database migrated by a newer build is refused, as with SQLite.
//!
//! # Time
//!
//! "Now" is the database server's clock (`clock_timestamp()` in Unix milliseconds), read
//! by every call that needs it, so replicas on several hosts agree on when a lease or a
//! session expires. [`PostgresOptions::clock`] replaces it, for tests.
//!
//! # Concurrency
//!
//! SQLite runs one writer at a time; PostgreSQL runs transactions side by side at READ
//! COMMITTED, so every method that reads and then writes takes a lock first:
//!
//! - changes to users (`update_user`, `delete_user`) take a transaction-level advisory lock,
//!   so two of them never both see "another enabled admin remains";
//! - `delete_user` also takes the sandbox-owner lock exclusively, and `RecordStore::put`
//!   shares it, so no record for a user appears between the check and the delete;
//! - `create_token` and `create_session` lock the user's row (`FOR NO KEY UPDATE`): the
//!   per-user caps are counted while no other creation for that user runs, and a user
//!   being disabled is not given a session on the way;
//! - `create_port_grant` takes an advisory lock per sandbox for the share cap;
//! - single statements are atomic as they are (`start_submission` and
//!   `finish_submission` re-check their `WHERE` after a concurrent update;
//!   `redeem_port_code` is one `DELETE … RETURNING`; `acquire_lease` is one
//!   `INSERT … ON CONFLICT DO UPDATE … WHERE`, which locks the row it finds).
//!
//! # Durability
//!
//! A call returns `Ok` after its commit, which PostgreSQL has flushed to its WAL with the
//! server's `synchronous_commit` (on by default: a commit survives a crash of the server
//! or the machine). Backups, replication and failover are the database's operators' to
//! set up.

mod audit;
mod bus;
mod identities;
mod invites;
mod labs;
mod leases;
mod orgs;
mod port_grants;
mod resets;
mod sandboxes;
mod sessions;
mod submissions;
mod tokens;
mod users;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Executor, Postgres, Transaction};

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::rows::count;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations-postgres");

/// Advisory lock keys of this store (the first argument of `pg_advisory_xact_lock(int,
/// int)`; the second names the lock within it).
const LOCK_SPACE: i32 = 0x5a4d_1ab0;
/// Held by every change to users, for the "one enabled admin" rule.
const LOCK_USERS: i32 = 1;
/// Shared by sandbox record writes, exclusive for `delete_user`.
const LOCK_OWNERS: i32 = 2;

/// The server's clock in Unix milliseconds.
const DB_NOW_MS: &str = "SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// How to open a [`PostgresStore`].
#[derive(Clone)]
pub struct PostgresOptions {
    /// Connections in the pool.
    pub max_connections: u32,
    /// How long a call waits for a free connection (or a new one) before failing.
    pub acquire_timeout: Duration,
    /// Where timestamps and expiry come from; `None` (the default) is the database
    /// server's clock, which every replica shares.
    pub clock: Option<Arc<dyn Clock>>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
            clock: None,
        }
    }
}

/// The [`Store`](crate::Store) on PostgreSQL. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    clock: Option<Arc<dyn Clock>>,
    /// The store bus's fan-out in this process (`bus.rs`).
    bus: Arc<crate::bus::Hub>,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://…`) with the default options and
    /// brings its schema up to date.
    pub async fn open(url: &str) -> Result<PostgresStore> {
        Self::open_with(url, PostgresOptions::default()).await
    }

    /// [`Self::open`] with `opts`.
    pub async fn open_with(url: &str, opts: PostgresOptions) -> Result<PostgresStore> {
        let connect = PgConnectOptions::from_str(url).map_err(|e| {
            Error::Invalid(format!(
                "The database URL is not a valid postgres:// URL: {e}"
            ))
        })?;
        Self::connect_with(connect, opts).await
    }

    /// [`Self::open_with`] with connection options built by the caller.
    pub async fn connect_with(
        connect: PgConnectOptions,
        opts: PostgresOptions,
    ) -> Result<PostgresStore> {
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(Error::Connect)?;
        // sqlx's migrator holds `pg_advisory_lock` while it checks and applies migrations.
        MIGRATOR.run(&pool).await.map_err(Error::Migrate)?;
        Ok(PostgresStore {
            pool,
            clock: opts.clock,
            bus: Arc::default(),
        })
    }

    /// Closes every connection after the queries in flight.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The newest migration applied, e.g. `3` for `0003_audit_log.sql`.
    pub async fn schema_version(&self) -> Result<i64> {
        let (v,): (Option<i64>,) =
            sqlx::query_as("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await?;
        Ok(v.unwrap_or(0))
    }

    /// The newest migration this build knows.
    pub fn latest_schema_version() -> i64 {
        MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
    }

    /// Now in Unix milliseconds: the test clock if there is one, else the server's, read
    /// through `ex` (a transaction's connection or the pool).
    async fn now<'e, E: Executor<'e, Database = Postgres>>(&self, ex: E) -> Result<i64> {
        if let Some(clock) = &self.clock {
            return Ok(clock.now_ms());
        }
        let (now,): (i64,) = sqlx::query_as(DB_NOW_MS).fetch_one(ex).await?;
        Ok(now)
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }

    /// Whether the database can be written now: a transaction that is given a transaction
    /// id and commits, which a read-only server (a standby) refuses.
    pub async fn check_writable(&self) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("SELECT pg_current_xact_id()::text")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Takes the advisory lock `key` of this store until the transaction ends; `shared` lets
/// other shared holders in.
async fn xact_lock(tx: &mut Transaction<'static, Postgres>, key: i32, shared: bool) -> Result<()> {
    let sql = if shared {
        "SELECT pg_advisory_xact_lock_shared($1, $2)"
    } else {
        "SELECT pg_advisory_xact_lock($1, $2)"
    };
    sqlx::query(sql)
        .bind(LOCK_SPACE)
        .bind(key)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

crate::store_impl::delegate_store!(PostgresStore);
