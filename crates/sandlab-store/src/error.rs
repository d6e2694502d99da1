//! Errors of the store.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The named thing ("user", "API token", "sandbox") does not exist, or is not the
    /// caller's to see.
    #[error("The {0} does not exist")]
    NotFound(&'static str),
    /// A uniqueness rule or a per-user cap would be broken (e.g. the username is taken).
    #[error("{0}")]
    Conflict(String),
    /// The input breaks a rule; the message names the rule.
    #[error("{0}")]
    Invalid(String),
    #[error("The last enabled admin cannot be demoted, disabled or deleted")]
    LastAdmin,
    #[error("Stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("Password hashing failed")]
    Hash(#[source] argon2::password_hash::Error),
    #[error("I/O error on {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The disk under the database is full (SQLITE_FULL, PostgreSQL's 53100): nothing can be written until
    /// space is freed; the next write after that works.
    #[error("The database's disk is full")]
    Full(#[source] sqlx::Error),
    /// The database cannot be written for another reason (read-only, an I/O error, a
    /// PostgreSQL server that is down or unreachable).
    #[error("The database cannot be written")]
    Unavailable(#[source] sqlx::Error),
    /// The PostgreSQL server named by the URL could not be reached or refused the login.
    #[error("Cannot connect to the PostgreSQL server")]
    Connect(#[source] sqlx::Error),
    #[error("Database error")]
    Database(#[source] sqlx::Error),
    #[error("Database migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("A background task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// SQLite's primary result codes for a full disk, an I/O error and a read-only database.
const SQLITE_FULL: i32 = 13;
const SQLITE_IOERR: i32 = 10;
const SQLITE_READONLY: i32 = 8;
const SQLITE_CANTOPEN: i32 = 14;

/// PostgreSQL's SQLSTATE for a full disk.
const PG_DISK_FULL: &str = "53100";

/// PostgreSQL's SQLSTATEs for a database that cannot be written now: a read-only
/// transaction (a standby), a server shutting down or starting, a system or I/O error, a
/// lost connection.
fn pg_unavailable(code: &str) -> bool {
    code == "25006" || code.starts_with("57P") || code.starts_with("58") || code.starts_with("08")
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        if let Some(code) = e
            .as_database_error()
            .and_then(|d| d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>())
            .map(|d| d.code().to_owned())
        {
            return match code.as_str() {
                PG_DISK_FULL => Error::Full(e),
                // SQLite stores a NUL inside text; PostgreSQL refuses it (in text: 22021, in
                // jsonb as \u0000: 22P05). It comes from a request, so it is the caller's error.
                "22021" | "22P05" => Error::Invalid(
                    "A text value holds a NUL character (\\0), which the database cannot store"
                        .into(),
                ),
                c if pg_unavailable(c) => Error::Unavailable(e),
                _ => Error::Database(e),
            };
        }
        if matches!(e, sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut) {
            // No answer from the database (a server that is down or unreachable).
            return Error::Unavailable(e);
        }
        let primary = e
            .as_database_error()
            .and_then(|d| d.code())
            .and_then(|c| c.parse::<i32>().ok())
            .map(|c| c & 0xff);
        match primary {
            Some(SQLITE_FULL) => Error::Full(e),
            Some(SQLITE_IOERR | SQLITE_READONLY | SQLITE_CANTOPEN) => Error::Unavailable(e),
            _ => Error::Database(e),
        }
    }
}

impl Error {
    /// `Conflict(message)` when `e` is a unique-constraint violation, `Database` otherwise.
    pub(crate) fn unique(e: sqlx::Error, message: &str) -> Error {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Error::Conflict(message.to_owned())
            }
            _ => Error::from(e),
        }
    }
}
