//! The sandbox drivers this installation runs, made from the configuration: the one place
//! a new driver is registered, for the CLI and `sandlab serve` alike.

use std::sync::Arc;

use sandlab_runtime::{ContainerDriver, Drivers};
use sandlab_store::DatabaseUrl;

use crate::config::{Config, DriverChoice};

/// What a command will do with the drivers, so they can prepare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    /// Look at sandboxes, remove them: nothing to prepare.
    Manage,
    /// Create one sandbox (or a few, one after another).
    Create,
    /// Serve: create sandboxes all the time.
    Serve,
}

/// The configured driver (`driver`): the container driver on this host, or Pods through
/// the Kubernetes API.
pub async fn from_config(cfg: &Config, usage: Use) -> anyhow::Result<Drivers> {
    if cfg.driver == DriverChoice::Kubernetes {
        let settings = cfg
            .kubernetes
            .clone()
            .ok_or_else(|| anyhow::anyhow!("driver is kubernetes but [kubernetes] is missing"))?;
        let store = sandlab_kube::store_label(&store_location(&crate::store::database(cfg)?));
        let driver = sandlab_kube::KubeDriver::new(settings, &store).await?;
        return Ok(Drivers::one(Arc::new(driver)));
    }
    // Made on a blocking thread, so a caller that opens the store beside it (`manager`)
    // has both at once: each takes a few milliseconds of a command's start.
    let runtime = cfg.runtime.clone();
    let container = tokio::task::spawn_blocking(move || {
        let container = ContainerDriver::new(runtime)?;
        match usage {
            Use::Manage => {}
            Use::Create => container.warm_up(false),
            Use::Serve => container.warm_up(true),
        }
        Ok::<_, sandlab_runtime::Error>(container)
    })
    .await??;
    Ok(Drivers::one(Arc::new(container)))
}

/// Where a database is, without credentials or options: what the Kubernetes driver's
/// `sandlab.dev/store` label is made from, so every process on one database agrees and a
/// process on another (a laptop's SQLite) leaves those sandboxes alone.
pub fn store_location(db: &DatabaseUrl) -> String {
    match db {
        // The directory, not the file: the file may not exist yet on a first start.
        DatabaseUrl::Sqlite(path) => {
            let dir = path.parent().and_then(|d| std::fs::canonicalize(d).ok());
            match (dir, path.file_name()) {
                (Some(dir), Some(name)) => dir.join(name),
                _ => path.clone(),
            }
            .display()
            .to_string()
        }
        DatabaseUrl::Postgres(url) => {
            let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
            let rest = rest.split(['?', '#']).next().unwrap_or_default();
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            let scheme = if scheme == "postgresql" {
                "postgres"
            } else {
                scheme
            };
            format!("{scheme}://{host}/{path}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_is_named_without_its_credentials() {
        let a = store_location(&DatabaseUrl::Postgres(
            "postgres://sandlab:secret@db.example:5432/sandlab?sslmode=require".into(),
        ));
        assert_eq!(a, "postgres://db.example:5432/sandlab");
        let b = store_location(&DatabaseUrl::Postgres(
            "postgresql://other:pw@db.example:5432/sandlab".into(),
        ));
        assert_eq!(a, b, "the same database under another role");
        assert!(!a.contains("secret"));
    }
}
