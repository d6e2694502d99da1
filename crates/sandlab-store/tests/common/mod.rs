//! Helpers shared by the integration tests.

#![allow(dead_code, unused_imports)]

use std::path::PathBuf;
use std::sync::Arc;

pub use sandlab_store::conformance::{record, user, PASSWORD, T0};
use sandlab_store::{ManualClock, SqliteOptions, SqliteStore};

/// A fresh database file in its own temporary directory.
pub struct TempDb {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl TempDb {
    pub fn new() -> TempDb {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join("sandlab.db");
        TempDb { dir, path }
    }

    pub async fn open(&self) -> SqliteStore {
        SqliteStore::open(&self.path).await.unwrap()
    }

    pub async fn open_with_clock(&self, clock: Arc<ManualClock>) -> SqliteStore {
        let opts = SqliteOptions {
            clock,
            ..SqliteOptions::default()
        };
        SqliteStore::open_with(&self.path, opts).await.unwrap()
    }

    /// Every byte of the database and its WAL and shared-memory files.
    pub fn all_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(self.path.parent().unwrap()).unwrap() {
            out.extend(std::fs::read(entry.unwrap().path()).unwrap());
        }
        out
    }

    /// A plain sqlx connection to the file, beside the store's own.
    pub async fn raw(&self) -> sqlx::SqliteConnection {
        use sqlx::Connection;
        let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(&self.path);
        sqlx::SqliteConnection::connect_with(&opts).await.unwrap()
    }
}

pub fn manual_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(T0))
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
