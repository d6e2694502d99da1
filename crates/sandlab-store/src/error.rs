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
    #[error("Database error")]
    Database(#[source] sqlx::Error),
    #[error("Database migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("A background task failed")]
    Task(#[source] tokio::task::JoinError),
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Database(e)
    }
}

impl Error {
    /// `Conflict(message)` when `e` is a unique-constraint violation, `Database` otherwise.
    pub(crate) fn unique(e: sqlx::Error, message: &str) -> Error {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Error::Conflict(message.to_owned())
            }
            _ => Error::Database(e),
        }
    }
}
