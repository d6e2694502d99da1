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
    database_from(std::env::var("SANDLAB_DATABASE_URL").ok(), cfg)
}

/// [`database`] with the variable's value given (an empty one counts as unset).
fn database_from(var: Option<String>, cfg: &Config) -> anyhow::Result<DatabaseUrl> {
    let url = var
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: Option<&str>) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::load(None, Some(dir.path().to_owned())).unwrap();
        cfg.server.database_url = url.map(str::to_owned);
        cfg
    }

    #[test]
    fn the_variable_wins_over_the_file_and_sqlite_in_the_data_dir_is_the_default() {
        let cfg = config(None);
        assert_eq!(
            database_from(None, &cfg).unwrap(),
            DatabaseUrl::Sqlite(cfg.runtime.data_dir.join("sandlab.db"))
        );
        assert_eq!(
            database_from(Some(String::new()), &cfg).unwrap(),
            DatabaseUrl::Sqlite(cfg.runtime.data_dir.join("sandlab.db"))
        );
        let cfg = config(Some("postgres://file@db/sandlab"));
        assert_eq!(
            database_from(None, &cfg).unwrap(),
            DatabaseUrl::Postgres("postgres://file@db/sandlab".into())
        );
        assert_eq!(
            database_from(Some("sqlite:///srv/x.db".into()), &cfg).unwrap(),
            DatabaseUrl::Sqlite("/srv/x.db".into())
        );
    }

    #[test]
    fn a_bad_url_names_the_key_and_hides_the_password() {
        let cfg = config(Some("mysql://root:hunter2@db/sandlab"));
        let err = database_from(None, &cfg).unwrap_err().to_string();
        assert!(
            err.starts_with("server.database_url (SANDLAB_DATABASE_URL): "),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    }
}
