//! The composition root: the one way a server is put together and run, used by
//! `sandlab serve` and the in-process test harness alike.
//!
//! What differs between a host and a test comes in [`ServerParts`]: the settings, the
//! store, the sandbox drivers, the image catalogue and, on a host, its image store
//! ([`LocalImages`]). [`Server::build`] creates the first admin on a database without
//! users, then wires the sandbox manager, the sandbox service and the [`AppState`].
//!
//! [`Server::run`] takes a bound listener, so `/healthz` answers at once, and serves while
//! [`Server::start_up`] runs in the background: build the default image if it is missing
//! (with [`LocalImages`] only), reconcile host and store and adopt warm sandboxes, load
//! the labs, resume lab sessions, start the catalogue watcher, the reaper and the pool
//! refill, and only then report ready on `/readyz`. Reconciliation and the resumption of
//! lab sessions are tried again until they succeed (with a growing pause); a start-up that
//! fails otherwise leaves `/readyz` unready. When the `shutdown` future completes: stop accepting, close WebSockets with
//! 1001, let requests in flight finish, all bounded by `shutdown_grace`, and return.
//! Sandboxes keep running across a restart; their records are in the database.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use sandlab_image::{ImageStore, Progress};
use sandlab_runtime::manager::SandboxManager;
use sandlab_runtime::Drivers;
use sandlab_store::{NewUser, PageRequest, Role, Store};
use tokio::net::TcpListener;

use crate::catalogue::Loader;
use crate::code_exec::{Engine, Languages};
use crate::config::ServerConfig;
use crate::images::ImageCatalog;
use crate::sandboxes::Sandboxes;
use crate::state::AppState;
use crate::terminal::TerminalOptions;

/// Failures to build, start or serve.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("Cannot serve TLS: {0}")]
    Tls(String),
    #[error("Cannot listen on {0} for the port proxy (server.proxy_listen)")]
    ProxyListen(String, #[source] std::io::Error),
    #[error("Cannot look for existing users")]
    Users(#[source] sandlab_store::Error),
    #[error("Cannot create the first admin (SANDLAB_ADMIN_PASSWORD)")]
    FirstAdmin(#[source] sandlab_store::Error),
    #[error("Cannot set up the sandbox manager")]
    Manager(#[source] sandlab_runtime::Error),
    #[error("The default image \"{0}\" does not exist; build or import it first")]
    NoDefaultImage(String),
    #[error("Cannot build the default image")]
    BuildImage(#[source] sandlab_image::Error),
    #[error("A start-up task failed")]
    Task(#[source] tokio::task::JoinError),
}

pub type Result<T> = std::result::Result<T, ServerError>;

/// The host's image store, for the start-up steps only it can do: build the default image
/// on first start and check the images lab files name.
#[derive(Clone)]
pub struct LocalImages {
    pub store: ImageStore,
    /// Where a first-start build reports its stages.
    pub progress: Arc<dyn Progress>,
}

/// What differs between one server and another.
pub struct ServerParts {
    pub config: ServerConfig,
    pub store: Arc<dyn Store>,
    pub drivers: Drivers,
    /// What `GET /api/v1/images` lists.
    pub images: Arc<dyn ImageCatalog>,
    /// `None` (tests): no default image is built and lab files are loaded without checking
    /// their images.
    pub local_images: Option<LocalImages>,
}

/// A server, built and not yet started.
pub struct Server {
    state: AppState,
    local_images: Option<LocalImages>,
}

impl Server {
    /// Creates the first admin if the database has no user, and wires the services.
    pub async fn build(parts: ServerParts) -> Result<Server> {
        let ServerParts {
            config,
            store,
            drivers,
            images,
            local_images,
        } = parts;
        first_admin(store.as_ref()).await?;
        let manager = SandboxManager::new(drivers, store.clone().records(), store.clone().leases())
            .map_err(ServerError::Manager)?;
        let (languages, problems) = Languages::load(Some(&config.languages));
        for p in problems {
            tracing::warn!(problem = %p, "skipping a language file");
        }
        // Each language image that is here gets a warm pool of its default shape.
        let mut pools = config.pools.clone();
        for p in Engine::pool_profiles(&languages, images.as_ref(), &config.execute) {
            if !pools.iter().any(|q| q.name == p.name) {
                pools.push(p);
            }
        }
        let sandboxes = Arc::new(Sandboxes::new(
            Arc::new(manager),
            store.clone(),
            pools,
            TerminalOptions {
                scrollback_bytes: config.scrollback,
                max_per_sandbox: config.terminals_per_sandbox,
                ..TerminalOptions::default()
            },
        ));
        Ok(Server {
            state: AppState::new(config, store, sandboxes, images, languages),
            local_images,
        })
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn app(&self) -> Router {
        crate::app(self.state.clone())
    }

    /// Everything that must finish before `/readyz` says ready (see the module docs).
    /// [`Server::run`] does this in the background; a harness without a listener awaits it.
    pub async fn start_up(&self) -> Result<()> {
        start_up(&self.state, self.local_images.as_ref()).await
    }

    /// Serves on `listener`, starting up in the background, until `shutdown` completes;
    /// then shuts down within `shutdown_grace`.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()> {
        let Server {
            state,
            local_images,
        } = self;
        let config = state.config();
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => {
                Some(crate::tls::TlsFiles::open(cert, key).map_err(ServerError::Tls)?)
            }
            _ => None,
        };
        eprintln!(
            "sandlab: listening on {}://{} (public URL {})",
            if tls.is_some() { "https" } else { "http" },
            listener.local_addr().unwrap_or(config.listen),
            config.public_url
        );
        match &config.web_dir {
            Some(dir) => eprintln!("sandlab: web UI served from {}", dir.display()),
            None if crate::web::embedded() => {}
            None => eprintln!(
                "sandlab: warning: this binary has no web UI (build it with scripts/build-web.sh, then cargo build); the API works"
            ),
        }

        let startup = tokio::spawn({
            let state = state.clone();
            async move {
                if let Err(e) = start_up(&state, local_images.as_ref()).await {
                    let e = sandlab_core::error_chain(&e);
                    eprintln!("sandlab: start-up failed: {e}");
                    tracing::error!(error = %e, "start-up failed; /readyz stays unready");
                }
            }
        });
        let token = state.shutdown().clone();
        let mut limits = config.connections.clone();
        if limits.total == 0 {
            limits.total =
                crate::listener::connections_for(crate::listener::raise_open_files_limit());
        }
        let proxy = bind_proxy(&state).await?;
        // One budget of connections for both listeners: the proxy's takes a quarter.
        let proxy_limits = proxy.as_ref().map(|_| {
            let share = (limits.total / 4).max(1);
            limits.total = limits.total.saturating_sub(share).max(1);
            crate::listener::ConnectionLimits {
                total: share,
                ..limits.clone()
            }
        });
        let proxy_serving = proxy.zip(proxy_limits).map(|(listener, proxy_limits)| {
            tokio::spawn(crate::listener::serve(
                listener,
                crate::proxy_app(state.clone()),
                proxy_limits,
                token.clone(),
                tls.clone(),
            ))
        });
        let http = crate::listener::serve(
            listener,
            crate::app(state.clone()),
            limits,
            token.clone(),
            tls,
        );
        let serving = tokio::spawn(http);
        shutdown.await;
        eprintln!("sandlab: shutting down");
        token.cancel();
        startup.abort();
        // Requests in flight finish; WebSockets (which axum no longer tracks once upgraded)
        // send their 1001 close; all within the grace period.
        let sockets = state.sockets().clone();
        sockets.close();
        let drained = async {
            if let Err(e) = serving.await {
                tracing::warn!(error = %e, "server task failed");
            }
            if let Some(proxy) = proxy_serving {
                let _ = proxy.await;
            }
            sockets.wait().await;
            Ok(())
        };
        match tokio::time::timeout(config.shutdown_grace, drained).await {
            Ok(served) => served,
            Err(_) => {
                tracing::warn!("requests still running after the shutdown grace period");
                Ok(())
            }
        }
    }
}

/// Binds the port proxy's listener (`server.proxy_listen`). One derived from the main
/// port that cannot be bound, or whose origin cannot be derived, leaves the path form off
/// with a note; a configured one that cannot be bound stops start-up.
async fn bind_proxy(state: &AppState) -> Result<Option<TcpListener>> {
    let settings = state.proxy().settings().clone();
    let Some(addr) = settings.listen else {
        return Ok(None);
    };
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) if settings.listen_explicit => {
            return Err(ServerError::ProxyListen(addr.to_string(), e));
        }
        Err(e) => {
            eprintln!("sandlab: port proxy: cannot listen on {addr} ({e}); set server.proxy_listen to open ports in the browser");
            return Ok(None);
        }
    };
    let bound = listener.local_addr().unwrap_or(addr);
    match state.proxy().bound(bound) {
        Some(origin) => eprintln!(
            "sandlab: port proxy on {bound} (browsers use {origin}/{{sandbox}}/{{port}}/)"
        ),
        None if settings.base_domain.is_some() => {
            eprintln!(
                "sandlab: port proxy on {bound} (hosts {{port}}-{{sandbox}}.{})",
                settings.base_domain.as_deref().unwrap_or("")
            );
        }
        None => {
            eprintln!("sandlab: port proxy: the public URL is not a loopback address, so set server.proxy_url (a host name other than the UI's) or server.base_domain to open ports in the browser");
            return Ok(None);
        }
    }
    Ok(Some(listener))
}

/// Creates the `admin` user on a database without users: with `SANDLAB_ADMIN_PASSWORD`,
/// or a generated password printed once.
async fn first_admin(store: &dyn Store) -> Result<()> {
    let some = store
        .list_users(PageRequest::first(1))
        .await
        .map_err(ServerError::Users)?;
    if !some.items.is_empty() {
        return Ok(());
    }
    let (password, generated) = match std::env::var("SANDLAB_ADMIN_PASSWORD") {
        Ok(p) if !p.is_empty() => (p, false),
        _ => (generate_password(), true),
    };
    create_first_admin(store, password, generated).await
}

/// The second half of [`first_admin`], once the database had no users.
async fn create_first_admin(store: &dyn Store, password: String, generated: bool) -> Result<()> {
    match store
        .create_user(NewUser {
            username: "admin".into(),
            password: password.clone(),
            role: Role::Admin,
        })
        .await
    {
        Ok(_) => {}
        // Replicas starting together on a new database: another one made it first, and
        // its password (printed in its log) is the one that holds.
        Err(sandlab_store::Error::Conflict(_)) => {
            println!("sandlab: user \"admin\" was created by another server sharing this database");
            return Ok(());
        }
        Err(e) => return Err(ServerError::FirstAdmin(e)),
    }
    if generated {
        println!("sandlab: created user \"admin\" with the one-time password: {password}");
        println!("sandlab: it is not shown again; change it with `sandlab user set admin --password-stdin`");
    } else {
        println!("sandlab: created user \"admin\" with the password from SANDLAB_ADMIN_PASSWORD");
    }
    Ok(())
}

/// A password of 20 characters from an alphabet without look-alikes (no `l`, `o`, `0`,
/// `1`, `I`, `O`).
pub fn generate_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

async fn start_up(state: &AppState, local: Option<&LocalImages>) -> Result<()> {
    // Other hosts sharing the store see this server's records as held by a live process.
    drop(state.sandboxes().manager().keep_alive());
    if let Some(local) = local {
        default_image(state, local).await?;
    }
    let report = until_ok("reconciling host and store", || state.sandboxes().recover()).await;
    eprintln!(
        "sandlab: reconciled: {} orphans removed, {} marked failed, {} expired",
        report.orphans_removed.len(),
        report.marked_failed.len(),
        report.expired.len()
    );
    let labs_dirs = state.config().lab_dirs();
    let loader = lab_loader(local);
    let (labs, problems) = {
        let (load, dirs) = (loader.clone(), labs_dirs.clone());
        tokio::task::spawn_blocking(move || crate::catalogue::load_all(&load, &dirs))
            .await
            .map_err(ServerError::Task)?
    };
    for p in &problems {
        eprintln!("sandlab: lab problem: {p}");
    }
    eprintln!("sandlab: {} labs loaded", labs.len());
    if let Some(local) = local {
        let wanted: Vec<String> = labs
            .iter()
            .flat_map(|l| l.playground.nodes.iter().map(|n| n.image.clone()))
            .collect();
        crate::image_builds::spawn(local.store.clone(), local.progress.clone(), wanted);
    }
    until_ok("resuming lab sessions", || {
        state.lab_sessions().recover(&labs)
    })
    .await;
    state.set_labs(labs);
    state.set_lab_problems(problems);
    crate::catalogue::spawn_watcher(
        state.clone(),
        labs_dirs.clone(),
        loader,
        state.shutdown().clone(),
    );
    crate::lab_sync::spawn(
        labs_dirs,
        state.config().labs_sync_interval,
        state.shutdown().clone(),
    );
    // The reaper, reconciliation, pool refills and the adoption of what a dead replica
    // ran (submissions included) go to the holders of the store leases (control.rs).
    state
        .lab_sessions()
        .serve_commands(state.shutdown().clone());
    crate::control::spawn(state.clone());
    // The warm lab sessions of `[[lab_pool]]` (each replica keeps its own).
    for pool in &state.config().lab_pools {
        if !state.labs().iter().any(|l| l.slug == pool.lab) {
            eprintln!(
                "sandlab: [[lab_pool]] names lab {:?}, which the catalogue does not have; its pool stays empty until it does",
                pool.lab
            );
        }
    }
    let labs_now = state.clone();
    tokio::spawn(
        state
            .lab_sessions()
            .clone()
            .run_warm(Arc::new(move || labs_now.labs()), state.shutdown().clone()),
    );
    crate::code_exec::submissions::spawn_expiry(state.execute().clone(), state.shutdown().clone());
    state.set_ready();
    eprintln!("sandlab: ready");
    Ok(())
}

/// Runs a start-up step until it succeeds, waiting 1 s, 2 s, ... up to 30 s between
/// tries: a passing failure (another process changing a shared host resource, the store
/// briefly unavailable) must not keep the server unready until someone restarts it. The
/// server's shutdown aborts the start-up, and with it the waiting.
async fn until_ok<T, E, Fut>(what: &str, mut step: impl FnMut() -> Fut) -> T
where
    E: std::error::Error,
    Fut: Future<Output = std::result::Result<T, E>>,
{
    let mut wait = std::time::Duration::from_secs(1);
    loop {
        match step().await {
            Ok(value) => return value,
            Err(e) => {
                let e = sandlab_core::error_chain(&e);
                eprintln!(
                    "sandlab: {what} failed, trying again in {}s: {e}",
                    wait.as_secs()
                );
                tracing::warn!(error = %e, "start-up step failed: {what}; trying again");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(std::time::Duration::from_secs(30));
            }
        }
    }
}

/// Builds `debian` on first start; any other missing default image is an error.
async fn default_image(state: &AppState, local: &LocalImages) -> Result<()> {
    let image = &state.config().default_image;
    if !matches!(
        local.store.resolve(image),
        Err(sandlab_image::Error::NotFound(_))
    ) {
        return Ok(());
    }
    if image != "debian" {
        return Err(ServerError::NoDefaultImage(image.clone()));
    }
    eprintln!("sandlab: building the default image \"debian\" (first start; a few minutes)");
    let recipe = sandlab_image::recipe::find("debian", None)
        .map_err(ServerError::BuildImage)?
        .ok_or_else(|| ServerError::NoDefaultImage(image.clone()))?;
    let LocalImages { store, progress } = local.clone();
    tokio::task::spawn_blocking(move || store.build_recipe(&recipe, progress.as_ref()))
        .await
        .map_err(ServerError::Task)?
        .map_err(ServerError::BuildImage)?;
    Ok(())
}

/// Loads the catalogue, checking lab images against the host's store when there is one.
fn lab_loader(local: Option<&LocalImages>) -> Loader {
    match local {
        Some(local) => {
            let images = local.store.clone();
            Arc::new(move |dir| {
                let exists = |name: &str| crate::image_builds::available(&images, name);
                sandlab_lab::load_catalogue(dir, Some(&exists))
            })
        }
        None => Arc::new(|dir| sandlab_lab::load_catalogue(dir, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replicas_starting_together_make_one_admin_and_both_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = sandlab_store::SqliteStore::open(&dir.path().join("db"))
            .await
            .unwrap();
        // Both replicas found no users; the first one's create lands first.
        create_first_admin(&store, "first-replica-pw-1".into(), true)
            .await
            .unwrap();
        create_first_admin(&store, "second-replica-pw-2".into(), true)
            .await
            .unwrap();
        let users = store.list_users(PageRequest::first(10)).await.unwrap();
        assert_eq!(users.items.len(), 1);
        assert_eq!(users.items[0].username, "admin");
    }
}
