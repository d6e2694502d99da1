//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sandlab_core::{Limits, SandboxId, SandboxState};
use sandlab_runtime::NetworkInfo;
use sandlab_store::{
    ManualClock, NewUser, Role, SandboxRecord, SqliteOptions, SqliteStore, Store, User,
};

pub const PASSWORD: &str = "correct horse battery";
/// 2024-01-01T00:00:00Z.
pub const T0: i64 = 1_704_067_200_000;

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

pub async fn user(store: &dyn Store, name: &str, role: Role) -> User {
    store
        .create_user(NewUser {
            username: name.into(),
            password: PASSWORD.into(),
            role,
        })
        .await
        .unwrap()
}

pub fn record(owner: Option<&str>, created_at_ms: u64) -> SandboxRecord {
    SandboxRecord {
        id: SandboxId::generate(),
        image: "debian:12".into(),
        limits: Limits {
            ttl: Duration::from_secs(600),
            ..Limits::default()
        },
        state: SandboxState::Creating,
        reason: None,
        hostname: Some("box".into()),
        created_at_ms,
        deadline_ms: created_at_ms + 600_000,
        network: NetworkInfo::default(),
        driver: "runc".into(),
        creator_pid: Some(4242),
        owner: owner.map(str::to_owned),
        owner_pid: None,
    }
}
