//! The shared database: `<data>/sandlab.db` (SQLite, WAL). Sandbox records live here for
//! both the CLI and `sandlab serve`, as do users, tokens and the audit log.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use sandlab_store::{SqliteStore, Store};

use crate::config::Config;

pub fn db_path(cfg: &Config) -> PathBuf {
    cfg.runtime.data_dir.join("sandlab.db")
}

pub async fn open(cfg: &Config) -> anyhow::Result<Arc<SqliteStore>> {
    let path = db_path(cfg);
    let store = SqliteStore::open(&path)
        .await
        .with_context(|| format!("cannot open the database {}", path.display()))?;
    Ok(Arc::new(store))
}

/// The store as the trait object the server uses.
pub fn as_dyn(store: Arc<SqliteStore>) -> Arc<dyn Store> {
    store
}
