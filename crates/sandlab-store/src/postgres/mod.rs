//! [`PostgresStore`]: the [`Store`] on a PostgreSQL server, through sqlx; several control
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
mod labs;
mod leases;
mod port_grants;
mod sandboxes;
mod sessions;
mod submissions;
mod tokens;
mod users;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sandlab_core::{LeaseStore, RecordStore, SandboxId, SandboxRecord};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Executor, Postgres, Transaction};

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::model::{
    ApiToken, AuditEntry, LabSession, LoginSession, NewPortGrant, NewSubmission, NewUser,
    PortGrant, Submission, User, UserUpdate,
};
use crate::page::{Page, PageRequest};
use crate::rows::count;
use crate::store::Store;

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

/// The [`Store`] on PostgreSQL. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    clock: Option<Arc<dyn Clock>>,
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

#[async_trait]
impl Store for PostgresStore {
    async fn check_writable(&self) -> Result<()> {
        PostgresStore::check_writable(self).await
    }

    fn records(self: Arc<Self>) -> Arc<dyn RecordStore> {
        self
    }
    fn leases(self: Arc<Self>) -> Arc<dyn LeaseStore> {
        self
    }

    async fn create_user(&self, new: NewUser) -> Result<User> {
        users::create(self, new).await
    }
    async fn get_user(&self, id: &str) -> Result<User> {
        users::get(self, id).await
    }
    async fn get_user_by_name(&self, username: &str) -> Result<User> {
        users::get_by_name(self, username).await
    }
    async fn list_users(&self, page: PageRequest) -> Result<Page<User>> {
        users::list(self, page).await
    }
    async fn update_user(&self, id: &str, update: UserUpdate) -> Result<User> {
        users::update(self, id, update).await
    }
    async fn delete_user(&self, id: &str) -> Result<()> {
        users::delete(self, id).await
    }
    async fn count_admins(&self) -> Result<u64> {
        users::count_admins(self).await
    }
    async fn verify_login(&self, username: &str, password: &str) -> Result<Option<User>> {
        users::verify_login(self, username, password).await
    }

    async fn create_token(&self, user_id: &str, name: &str) -> Result<(ApiToken, String)> {
        tokens::create(self, user_id, name).await
    }
    async fn list_tokens(&self, user_id: &str) -> Result<Vec<ApiToken>> {
        tokens::list(self, user_id).await
    }
    async fn delete_token(&self, user_id: &str, token_id: &str) -> Result<()> {
        tokens::delete(self, user_id, token_id).await
    }
    async fn authenticate_token(&self, secret: &str) -> Result<Option<(User, String)>> {
        tokens::authenticate(self, secret).await
    }

    async fn create_session(&self, user_id: &str, ttl: Duration) -> Result<(LoginSession, String)> {
        sessions::create(self, user_id, ttl).await
    }
    async fn authenticate_session(&self, secret: &str) -> Result<Option<(User, LoginSession)>> {
        sessions::authenticate(self, secret).await
    }
    async fn delete_session(&self, secret: &str) -> Result<()> {
        sessions::delete(self, secret).await
    }
    async fn delete_expired_sessions(&self) -> Result<u64> {
        sessions::delete_expired(self).await
    }

    async fn create_port_grant(&self, new: NewPortGrant) -> Result<(PortGrant, String)> {
        port_grants::create(self, new).await
    }
    async fn redeem_port_code(
        &self,
        secret: &str,
        sandbox: &str,
        port: u16,
    ) -> Result<Option<PortGrant>> {
        port_grants::redeem_code(self, secret, sandbox, port).await
    }
    async fn authenticate_port_grant(&self, secret: &str) -> Result<Option<PortGrant>> {
        port_grants::authenticate(self, secret).await
    }
    async fn list_port_shares(&self, sandbox: &str) -> Result<Vec<PortGrant>> {
        port_grants::list_shares(self, sandbox).await
    }
    async fn delete_port_share(&self, sandbox: &str, id: &str) -> Result<()> {
        port_grants::delete_share(self, sandbox, id).await
    }

    async fn create_submissions(&self, new: &[NewSubmission]) -> Result<Vec<Submission>> {
        submissions::create(self, new).await
    }
    async fn get_submissions(&self, tokens: &[String]) -> Result<Vec<Submission>> {
        submissions::get(self, tokens).await
    }
    async fn start_submission(&self, token: &str) -> Result<bool> {
        submissions::start(self, token).await
    }
    async fn finish_submission(&self, token: &str, result: &str) -> Result<bool> {
        submissions::finish(self, token, result).await
    }
    async fn unfinished_submissions(&self) -> Result<Vec<Submission>> {
        submissions::unfinished(self).await
    }
    async fn delete_submission(&self, token: &str, owner: Option<&str>) -> Result<bool> {
        submissions::delete(self, token, owner).await
    }
    async fn expire_submissions(&self, before_ms: i64) -> Result<u64> {
        submissions::expire(self, before_ms).await
    }
    async fn submission_usage(&self, owner: &str) -> Result<(u64, u64)> {
        submissions::usage(self, owner).await
    }

    async fn get_sandbox(&self, id: &SandboxId, owner: Option<&str>) -> Result<SandboxRecord> {
        sandboxes::get_for(self, id, owner).await
    }
    async fn list_sandboxes(
        &self,
        owner: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<SandboxRecord>> {
        sandboxes::list_page(self, owner, page).await
    }
    async fn count_live_sandboxes(&self, owner: &str) -> Result<u64> {
        sandboxes::count_live(self, owner).await
    }

    async fn put_lab_session(&self, session: &LabSession) -> Result<()> {
        labs::put(self, session).await
    }
    async fn get_lab_session(&self, id: &str, owner: Option<&str>) -> Result<LabSession> {
        labs::get(self, id, owner).await
    }
    async fn list_lab_sessions(&self, owner: Option<&str>) -> Result<Vec<LabSession>> {
        labs::list(self, owner).await
    }
    async fn delete_lab_session(&self, id: &str) -> Result<()> {
        labs::delete(self, id).await
    }
    async fn mark_task_done(&self, user: &str, lab: &str, task: &str) -> Result<()> {
        labs::mark_done(self, user, lab, task).await
    }
    async fn done_tasks(&self, user: &str, lab: &str) -> Result<Vec<String>> {
        labs::done(self, user, lab).await
    }
    async fn all_done_tasks(&self, user: &str) -> Result<Vec<(String, String)>> {
        labs::all_done(self, user).await
    }
    async fn reveal_hint(&self, user: &str, lab: &str, task: &str) -> Result<()> {
        labs::reveal_hint(self, user, lab, task).await
    }
    async fn revealed_hints(&self, user: &str, lab: &str) -> Result<Vec<String>> {
        labs::hints(self, user, lab).await
    }

    async fn audit(
        &self,
        actor: Option<&str>,
        action: &str,
        target: Option<&str>,
        detail: serde_json::Value,
    ) -> Result<i64> {
        audit::append(self, actor, action, target, &detail).await
    }
    async fn list_audit(&self, page: PageRequest) -> Result<Page<AuditEntry>> {
        audit::list(self, page).await
    }
}
