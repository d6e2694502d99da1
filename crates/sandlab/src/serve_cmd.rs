//! `sandlab serve`: the whole platform on one host, as `sandlab_server::Server` puts it
//! together (its module docs tell the start-up and shutdown order).
//!
//! This command is the host's choices: the configuration (flags over `SANDLAB_*` variables
//! over `sandlab.toml`; a bad value stops here, naming the key), the database in the data
//! directory, the container driver and the local image store. It binds the listener and
//! runs the server until SIGTERM or SIGINT.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use sandlab_image::ImageStore;
use sandlab_server::{LocalImages, Server, ServerConfig, ServerFlags, ServerParts};

use crate::config::Config;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:8080; `server.listen`, SANDLAB_LISTEN).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Directory of labs, or a Git repository URL to clone and pull (default `labs/`;
    /// `server.labs`, SANDLAB_LABS); give it again for more.
    #[arg(long, value_name = "DIR")]
    labs: Vec<PathBuf>,
}

pub async fn run(cfg: &Config, args: ServeArgs) -> anyhow::Result<()> {
    let flags = ServerFlags {
        listen: args.listen,
        labs: args.labs,
    };
    let mut config = ServerConfig::from_env(&cfg.server, &cfg.pools, &flags)?;
    config.lab_pools = sandlab_server::config::lab_pools(&cfg.lab_pools)?;
    config.oidc =
        sandlab_server::oidc::config::resolve(&cfg.auth.oidc, &|k| std::env::var(k).ok())?;
    // A lab source that is a Git URL is served from its clone in the data dir.
    for dir in std::iter::once(&mut config.labs).chain(config.more_labs.iter_mut()) {
        let entry = dir.to_string_lossy().into_owned();
        if sandlab_server::lab_sync::is_git_url(&entry) {
            let clone = sandlab_server::lab_sync::clone_dir(&cfg.runtime.data_dir, &entry);
            sandlab_server::lab_sync::ensure_clone(&entry, &clone)
                .await
                .map_err(|e| anyhow::anyhow!("The labs repository cannot be used: {e}"))?;
            eprintln!("sandlab: labs from {entry} (clone in {})", clone.display());
            *dir = clone;
        }
    }
    let listen = config.listen;
    let store = crate::store::open(cfg).await?;
    let drivers = crate::drivers::from_config(cfg, crate::drivers::Use::Serve).await?;
    // On Kubernetes the images are the container images `[kubernetes.images]` maps, and
    // this host builds none.
    let (images, local_images): (Arc<dyn sandlab_server::images::ImageCatalog>, _) =
        match &cfg.kubernetes {
            Some(k) if cfg.driver == crate::config::DriverChoice::Kubernetes => {
                let listed = k
                    .images
                    .iter()
                    .map(|(name, reference)| sandlab_image::ImageInfo {
                        name: name.clone(),
                        digest: String::new(),
                        size: 0,
                        created: 0,
                        source: format!("kubernetes {reference}"),
                    })
                    .collect();
                (Arc::new(sandlab_server::images::FixedImages(listed)), None)
            }
            _ => {
                let images = ImageStore::open(&cfg.runtime.data_dir, cfg.runtime.idmap)?;
                let local = LocalImages {
                    store: images.clone(),
                    progress: Arc::new(crate::image_cmd::LogProgress),
                };
                (Arc::new(images), Some(local))
            }
        };
    let server = Server::build(ServerParts {
        config,
        store,
        drivers,
        images,
        local_images,
    })
    .await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    server.run(listener, signal()?).await?;
    Ok(())
}

/// Completes on the first SIGTERM or SIGINT.
fn signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
