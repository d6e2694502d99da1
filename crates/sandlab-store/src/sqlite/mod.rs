//! [`SqliteStore`]: the [`Store`](crate::Store) in one SQLite file, through sqlx.
//!
//! # Connections
//!
//! One **writer** connection and a pool of **readers** (by default twice the cores, 4 on a
//! 2-core host). SQLite runs one write transaction at a time whatever the number of
//! connections; funnelling this process's writes through one connection queues them
//! fairly in the pool instead of having several connections sleep-and-retry on the write
//! lock, while WAL lets the readers run beside the writer. Read-modify-write steps use
//! `BEGIN IMMEDIATE`, so they take the write lock up front and never fail half-way when
//! another process (`sandlab user add` on the same file) writes at the same time; the busy
//! timeout (5 s) makes such a process wait for the lock instead of failing.
//!
//! # Durability
//!
//! The file is in WAL mode with `foreign_keys = ON` and, by default, `synchronous =
//! NORMAL` ([`Synchronous::Normal`]):
//!
//! - **`kill -9`** (the SPEC's target): a commit returns only after its pages are written
//!   to the WAL file with `write(2)`. Those bytes are in the kernel's page cache, which a
//!   killed process cannot take with it; the next open replays the WAL. So every
//!   transaction that returned `Ok` is there after a restart, and a transaction the
//!   process died in is rolled back whole.
//! - **Power loss or a kernel crash**: NORMAL does not `fsync` the WAL on every commit,
//!   only at checkpoints. The database stays consistent (never corrupt), but the last
//!   transactions before the failure can be lost. For sandboxes that is repaired by
//!   reconciliation (their processes died with the machine; host resources left without a
//!   record are removed); a token or user created in that window would be gone. Choose
//!   [`Synchronous::Full`] (an `fsync` per commit, a few milliseconds on common disks) to
//!   keep those too.

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

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::rows::count;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How hard a commit is pushed to the disk (SQLite's `synchronous` in WAL mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// Survives a crash of the process; the last commits can be lost on power loss.
    #[default]
    Normal,
    /// Also survives power loss: an `fsync` per commit.
    Full,
}

/// How to open a [`SqliteStore`].
#[derive(Clone)]
pub struct SqliteOptions {
    pub synchronous: Synchronous,
    /// How long a connection waits for another process's lock before failing.
    pub busy_timeout: Duration,
    /// Reader connections.
    pub readers: u32,
    /// Where timestamps and expiry come from.
    pub clock: Arc<dyn Clock>,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        SqliteOptions {
            synchronous: Synchronous::Normal,
            busy_timeout: Duration::from_secs(5),
            readers: u32::try_from(cores * 2).unwrap_or(8).clamp(2, 8),
            clock: Arc::new(SystemClock),
        }
    }
}

/// The [`Store`](crate::Store) on SQLite. Cheap to clone (the pools are shared).
#[derive(Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    clock: Arc<dyn Clock>,
    /// The store bus's fan-out in this process (`bus.rs`).
    bus: Arc<crate::bus::Hub>,
}

/// Makes the database file (created empty if missing) readable by root only: it holds
/// password hashes, session and token digests. SQLite gives its `-wal` and `-shm` files
/// the database file's mode.
fn private_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let side = std::path::PathBuf::from(side);
        if side.exists() {
            std::fs::set_permissions(&side, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
    }
    Ok(())
}

/// The WAL file is truncated to this after a checkpoint, so it does not stay large.
const JOURNAL_SIZE_LIMIT: &str = "67108864";

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` with the default options and
    /// brings its schema up to date.
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        Self::open_with(path, SqliteOptions::default()).await
    }

    /// [`Self::open`] with `opts`.
    pub async fn open_with(path: &Path, opts: SqliteOptions) -> Result<SqliteStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                path: dir.to_owned(),
                source,
            })?;
        }
        private_file(path)?;
        let base = SqliteConnectOptions::new()
            .filename(path)
            .foreign_keys(true)
            .busy_timeout(opts.busy_timeout);
        let writer_opts = base
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match opts.synchronous {
                Synchronous::Normal => SqliteSynchronous::Normal,
                Synchronous::Full => SqliteSynchronous::Full,
            })
            .pragma("journal_size_limit", JOURNAL_SIZE_LIMIT);
        let setup = lock_for_setup(path).await?;
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(writer_opts)
            .await?;
        MIGRATOR.run(&writer).await.map_err(Error::Migrate)?;
        drop(setup);
        // Readers come second: the writer has made the file and switched it to WAL.
        let reader = SqlitePoolOptions::new()
            .max_connections(opts.readers.max(1))
            .connect_with(base.read_only(true))
            .await?;
        Ok(SqliteStore {
            writer,
            reader,
            clock: opts.clock,
            bus: Arc::default(),
        })
    }

    /// A private in-memory database on one connection, for tests.
    pub async fn open_in_memory() -> Result<SqliteStore> {
        Self::open_in_memory_with(Arc::new(SystemClock)).await
    }

    /// [`Self::open_in_memory`] with a clock of the caller's.
    pub async fn open_in_memory_with(clock: Arc<dyn Clock>) -> Result<SqliteStore> {
        let opts = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        // The database lives as long as its one connection: never let the pool close it.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts)
            .await?;
        MIGRATOR.run(&pool).await.map_err(Error::Migrate)?;
        Ok(SqliteStore {
            writer: pool.clone(),
            reader: pool,
            clock,
            bus: Arc::default(),
        })
    }

    /// Closes every connection after the queries in flight, folding the WAL into the
    /// database file first. Dropping the store without it loses nothing either: the next
    /// open replays the WAL.
    pub async fn close(&self) {
        self.reader.close().await;
        if !self.writer.is_closed() {
            // Best effort: a checkpoint that does not happen now happens on the next open.
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.writer)
                .await
            {
                tracing::debug!(error = %e, "WAL checkpoint on close failed");
            }
        }
        self.writer.close().await;
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// A write transaction holding the write lock from its start.
    ///
    /// A COMMIT that fails because the disk is full is rolled back by SQLite itself, but
    /// sqlx still counts the transaction as open, so every later `BEGIN` on that connection
    /// failed (`non-zero transaction depth`) until a restart. Such a connection is taken
    /// out of the pool and closed here, and the write goes on with a fresh one.
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        match self.writer.begin_with("BEGIN IMMEDIATE").await {
            Err(sqlx::Error::InvalidSavePointStatement) => {
                tracing::warn!(
                    "replacing the database writer connection left in a failed transaction"
                );
                use sqlx::Connection as _;
                let poisoned = self.writer.acquire().await?.detach();
                if let Err(e) = poisoned.close().await {
                    tracing::debug!(error = %e, "closing the poisoned connection failed");
                }
                Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
            }
            other => Ok(other?),
        }
    }

    /// Whether the database can be written now: a real one-page write (the header's
    /// `user_version`, set to what it is), so a full disk or a read-only file is seen.
    pub async fn check_writable(&self) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let (v,): (i64,) = sqlx::query_as("PRAGMA user_version")
            .fetch_one(&mut *tx)
            .await?;
        // The value is our own integer, so formatting it into the pragma is safe.
        sqlx::query(&format!(
            "PRAGMA user_version = {}",
            v.clamp(0, i64::from(i32::MAX))
        ))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The newest migration applied, e.g. `3` for `0003_audit_log.sql`.
    pub async fn schema_version(&self) -> Result<i64> {
        let (v,): (Option<i64>,) =
            sqlx::query_as("SELECT MAX(version) FROM _sqlx_migrations WHERE success = 1")
                .fetch_one(&self.reader)
                .await?;
        Ok(v.unwrap_or(0))
    }

    /// The newest migration this build knows.
    pub fn latest_schema_version() -> i64 {
        MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
    }

    /// The value of `PRAGMA name` on the writer connection, for diagnostics and tests;
    /// `name` is one of `journal_mode`, `foreign_keys`, `synchronous`, `busy_timeout` and
    /// `journal_size_limit`.
    pub async fn pragma(&self, name: &str) -> Result<String> {
        const READABLE: [&str; 5] = [
            "journal_mode",
            "foreign_keys",
            "synchronous",
            "busy_timeout",
            "journal_size_limit",
        ];
        if !READABLE.contains(&name) {
            return Err(Error::Invalid(format!(
                "Only these pragmas can be read: {}",
                READABLE.join(", ")
            )));
        }
        let row = sqlx::query(&format!("PRAGMA {name}"))
            .fetch_one(&self.writer)
            .await?;
        // A pragma answers text (journal_mode) or an integer (foreign_keys).
        match row.try_get::<String, _>(0) {
            Ok(text) => Ok(text),
            Err(_) => Ok(row.try_get::<i64, _>(0)?.to_string()),
        }
    }
}

crate::store_impl::delegate_store!(SqliteStore);

/// An exclusive `flock` on `<db>-lock`, held while the file is switched to WAL and
/// migrated. sqlx takes no lock for SQLite migrations, and the first switch to WAL needs
/// an exclusive lock that SQLite may refuse at once rather than wait for; without this, two
/// processes opening a fresh file at the same moment (the server and `sandlab user add`)
/// would race and one would fail.
async fn lock_for_setup(db: &Path) -> Result<Flock<std::fs::File>> {
    let mut name = db.as_os_str().to_owned();
    name.push("-lock");
    let path = std::path::PathBuf::from(name);
    tokio::task::spawn_blocking(move || {
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| io(errno.into()))
    })
    .await
    .map_err(Error::Task)?
}
