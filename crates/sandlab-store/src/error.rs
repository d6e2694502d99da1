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
    /// The disk under the database is full (SQLITE_FULL): nothing can be written until
    /// space is freed; the next write after that works.
    #[error("The database's disk is full")]
    Full(#[source] sqlx::Error),
    /// The database cannot be written for another reason (read-only, an I/O error).
    #[error("The database cannot be written")]
    Unavailable(#[source] sqlx::Error),
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

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
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
