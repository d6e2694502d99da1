//! The shared database. By default `<data>/sandlab.db` (SQLite, WAL); `server.database_url`
//! (`SANDLAB_DATABASE_URL`) names another: `sqlite://<path>` or `postgres://…`. Sandbox
//! records live here for both the CLI and `sandlab serve`, as do users, tokens and the
//! audit log.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use sandlab_store::{DatabaseUrl, PostgresStore, SqliteStore, Store};

use crate::config::Config;

pub fn db_path(cfg: &Config) -> PathBuf {
    cfg.runtime.data_dir.join("sandlab.db")
}

/// The database `SANDLAB_DATABASE_URL` or `server.database_url` names (the variable wins),
/// or the SQLite file in the data dir when neither is set.
pub fn database(cfg: &Config) -> anyhow::Result<DatabaseUrl> {
    let url = std::env::var("SANDLAB_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| cfg.server.database_url.clone());
    match url {
        None => Ok(DatabaseUrl::Sqlite(db_path(cfg))),
        Some(url) => url
            .parse()
            .map_err(|e| anyhow::anyhow!("server.database_url (SANDLAB_DATABASE_URL): {e}")),
    }
}

pub async fn open(cfg: &Config) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match database(cfg)? {
        DatabaseUrl::Sqlite(path) => Arc::new(
            SqliteStore::open(&path)
                .await
                .with_context(|| format!("cannot open the database {}", path.display()))?,
        ),
        DatabaseUrl::Postgres(url) => Arc::new(
            PostgresStore::open(&url)
                .await
                .context("cannot open the PostgreSQL database (server.database_url)")?,
        ),
    })
}
