//! `sandlab serve`: the whole platform on one host.
//!
//! Start-up order: resolve the configuration (a bad value stops here, naming the key),
//! open the database, create the first admin, bind the listener (so `/healthz` answers at
//! once), then in the background: build the default image if it is missing, reconcile host
//! and store, adopt warm sandboxes, load the labs, and only then report ready on `/readyz`
//! and start the reaper and the pool refill. SIGTERM or SIGINT: stop accepting, close
//! WebSockets with 1001, let requests in flight finish (bounded by `shutdown_grace`), exit.
//! Sandboxes keep running across a restart; their records are in the database.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use sandlab_image::ImageStore;
use sandlab_runtime::manager::SandboxManager;
use sandlab_runtime::ContainerDriver;
use sandlab_server::sandboxes::Sandboxes;
use sandlab_server::terminal::TerminalOptions;
use sandlab_server::{AppState, ServerConfig};
use sandlab_store::{NewUser, PageRequest, Role, Store};

use crate::config::Config;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:8080; `server.listen`, SANDLAB_LISTEN).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Directory of labs (default `labs/`; `server.labs`, SANDLAB_LABS).
    #[arg(long, value_name = "DIR")]
    labs: Option<PathBuf>,
}

pub async fn run(cfg: &Config, args: ServeArgs) -> anyhow::Result<()> {
    let mut section = cfg.server.clone();
    if let Some(l) = args.listen {
        section.listen = Some(l);
        if std::env::var_os("SANDLAB_LISTEN").is_some() {
            // The flag wins over the variable.
            std::env::remove_var("SANDLAB_LISTEN");
        }
    }
    if let Some(l) = args.labs {
        section.labs = Some(l);
        std::env::remove_var("SANDLAB_LABS");
    }
    let server = ServerConfig::from_env(&section, &cfg.pools)?;
    let store = crate::store::open(cfg).await?;
    first_admin(store.as_ref()).await?;

    let driver = Arc::new(ContainerDriver::new(cfg.runtime.clone())?);
    let manager = Arc::new(SandboxManager::new(
        driver,
        store.clone().records(),
        crate::store::lock_path(cfg),
    ));
    let sandboxes = Arc::new(Sandboxes::new(
        manager,
        crate::store::as_dyn(store.clone()),
        server.pools.clone(),
        TerminalOptions {
            scrollback_bytes: server.scrollback,
            max_per_sandbox: server.terminals_per_sandbox,
            ..TerminalOptions::default()
        },
    ));
    let state = AppState::new(
        server.clone(),
        crate::store::as_dyn(store),
        sandboxes.clone(),
    );
    let listener = tokio::net::TcpListener::bind(server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", server.listen))?;
    eprintln!(
        "sandlab: listening on http://{} (public URL {})",
        listener.local_addr().unwrap_or(server.listen),
        server.public_url
    );
    match &server.web_dir {
        Some(dir) => eprintln!("sandlab: web UI served from {}", dir.display()),
        None if sandlab_server::web::embedded() => {}
        None => eprintln!(
            "sandlab: warning: this binary has no web UI (build it with scripts/build-web.sh, then cargo build); the API works"
        ),
    }

    let startup = tokio::spawn(start_up(cfg.clone(), state.clone()));
    let token = state.shutdown().clone();
    let app = sandlab_server::app(state.clone());
    let http = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(token.clone().cancelled_owned());
    let serving = tokio::spawn(async move { http.await });
    wait_for_signal().await?;
    eprintln!("sandlab: shutting down");
    token.cancel();
    startup.abort();
    // Requests in flight finish; WebSockets (which axum no longer tracks once upgraded)
    // send their 1001 close; all within the grace period.
    let sockets = state.sockets().clone();
    sockets.close();
    let drained = async {
        match serving.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "server error during shutdown"),
            Err(e) => tracing::warn!(error = %e, "server task failed"),
        }
        sockets.wait().await;
    };
    if tokio::time::timeout(server.shutdown_grace, drained)
        .await
        .is_err()
    {
        tracing::warn!("requests still running after the shutdown grace period");
    }
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

/// Creates the `admin` user on a database without users: with `SANDLAB_ADMIN_PASSWORD`,
/// or a generated password printed once.
async fn first_admin(store: &dyn Store) -> anyhow::Result<()> {
    if !store
        .list_users(PageRequest::first(1))
        .await?
        .items
        .is_empty()
    {
        return Ok(());
    }
    let (password, generated) = match std::env::var("SANDLAB_ADMIN_PASSWORD") {
        Ok(p) if !p.is_empty() => (p, false),
        _ => (crate::user_cmd::generate_password(), true),
    };
    store
        .create_user(NewUser {
            username: "admin".into(),
            password: password.clone(),
            role: Role::Admin,
        })
        .await
        .context("cannot create the first admin (SANDLAB_ADMIN_PASSWORD)")?;
    if generated {
        println!("sandlab: created user \"admin\" with the one-time password: {password}");
        println!("sandlab: it is not shown again; change it with `sandlab user set admin --password-stdin`");
    } else {
        println!("sandlab: created user \"admin\" with the password from SANDLAB_ADMIN_PASSWORD");
    }
    Ok(())
}

/// Everything that must finish before `/readyz` says ready.
async fn start_up(cfg: Config, state: AppState) {
    if let Err(e) = start_up_inner(&cfg, &state).await {
        eprintln!("sandlab: start-up failed: {e:#}");
        tracing::error!(error = %format!("{e:#}"), "start-up failed; /readyz stays unready");
    }
}

async fn start_up_inner(cfg: &Config, state: &AppState) -> anyhow::Result<()> {
    let images = ImageStore::open(&cfg.runtime.data_dir, cfg.runtime.idmap)?;
    let image = state.config().default_image.clone();
    if matches!(
        images.resolve(&image),
        Err(sandlab_image::Error::NotFound(_))
    ) {
        if image != "debian" {
            anyhow::bail!("the default image \"{image}\" does not exist; build or import it first");
        }
        eprintln!("sandlab: building the default image \"debian\" (first start; a few minutes)");
        let include: Vec<String> = sandlab_image::DEFAULT_PACKAGES
            .iter()
            .map(|s| s.to_string())
            .collect();
        let data_dir = cfg.runtime.data_dir.clone();
        let idmap = cfg.runtime.idmap;
        tokio::task::spawn_blocking(move || {
            let store = ImageStore::open(&data_dir, idmap)?;
            store.build_debian(
                "debian",
                "bookworm",
                &include,
                &crate::image_cmd::LogProgress,
            )
        })
        .await??;
    }
    let report = state
        .sandboxes()
        .recover()
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    eprintln!(
        "sandlab: reconciled: {} orphans removed, {} marked failed, {} expired",
        report.orphans_removed.len(),
        report.marked_failed.len(),
        report.expired.len()
    );
    let labs_dir = state.config().labs.clone();
    let images = std::sync::Arc::new(images);
    let loader: sandlab_server::catalogue::Loader = std::sync::Arc::new(move |dir| {
        let exists = |name: &str| images.resolve(name).is_ok();
        sandlab_lab::load_catalogue(dir, Some(&exists))
    });
    let labs = {
        let (l, d) = (loader.clone(), labs_dir.clone());
        tokio::task::spawn_blocking(move || l(&d)).await?
    };
    for p in &labs.1 {
        eprintln!("sandlab: lab problem: {p}");
    }
    eprintln!("sandlab: {} labs loaded", labs.0.len());
    state
        .lab_sessions()
        .recover(&labs.0)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    state.set_labs(labs.0);
    sandlab_server::catalogue::spawn_watcher(
        state.clone(),
        labs_dir,
        loader,
        state.shutdown().clone(),
    );
    state.sandboxes().spawn_background(state.shutdown().clone());
    state.set_ready();
    eprintln!("sandlab: ready");
    Ok(())
}
