//! What every handler shares: the store, the sandbox service, terminals, labs, limits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use sandlab_lab::Lab;
use sandlab_store::Store;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::audit::{self, AuditEvent};
use crate::code_exec::{Engine, Languages};
use crate::config::ServerConfig;
use crate::images::ImageCatalog;
use crate::lab_sessions::LabSessions;
use crate::ratelimit::RateLimiter;
use crate::sandboxes::Sandboxes;

/// The application state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: ServerConfig,
    store: Arc<dyn Store>,
    sandboxes: Arc<Sandboxes>,
    images: Arc<dyn ImageCatalog>,
    lab_sessions: Arc<LabSessions>,
    labs: RwLock<Arc<Vec<Lab>>>,
    /// What kept labs out of the catalogue at its last load (for authors and admins).
    lab_problems: RwLock<Arc<Vec<sandlab_lab::Problem>>>,
    execute: Arc<Engine>,
    ready: AtomicBool,
    shutdown: CancellationToken,
    /// WebSocket tasks, which outlive their HTTP request: shutdown waits for their 1001.
    sockets: TaskTracker,
    login_by_addr: RateLimiter,
    /// Failed logins per username from all addresses: past it, logins are slowed.
    login_by_name: RateLimiter,
    /// Failed logins per (username, address): past it, that address gets 429 for the name.
    login_failures: RateLimiter,
    creates: RateLimiter,
    /// Event streams and terminals per user.
    streams: crate::caps::StreamCaps,
    proxy: crate::port_proxy::PortProxy,
    /// Single sign-on providers and their caches.
    sso: crate::oidc::Sso,
}

impl AppState {
    pub fn new(
        config: ServerConfig,
        store: Arc<dyn Store>,
        sandboxes: Arc<Sandboxes>,
        images: Arc<dyn ImageCatalog>,
        languages: Languages,
    ) -> Self {
        // Install the metrics recorder before the first request is counted.
        let _ = crate::metrics::handle();
        let execute = Engine::new(
            sandboxes.clone(),
            languages,
            images.clone(),
            config.execute.clone(),
        );
        AppState {
            inner: Arc::new(Inner {
                login_by_addr: RateLimiter::new(config.login_rate),
                login_by_name: RateLimiter::new(config.login_rate),
                login_failures: RateLimiter::new(config.login_rate),
                creates: RateLimiter::new(config.create_rate),
                streams: crate::caps::StreamCaps::new(config.max_streams_per_user),
                proxy: crate::port_proxy::PortProxy::new(config.proxy.clone(), &config.public_url),
                sso: crate::oidc::Sso::new(&config.oidc),
                lab_sessions: Arc::new(LabSessions::new(
                    sandboxes.clone(),
                    store.clone(),
                    config.lab_pools.clone(),
                )),
                config,
                store,
                sandboxes,
                images,
                labs: RwLock::new(Arc::new(Vec::new())),
                lab_problems: RwLock::new(Arc::new(Vec::new())),
                execute,
                ready: AtomicBool::new(false),
                shutdown: CancellationToken::new(),
                sockets: TaskTracker::new(),
            }),
        }
    }

    /// The port proxy: its settings, origin and per-sandbox bounds.
    pub fn proxy(&self) -> &crate::port_proxy::PortProxy {
        &self.inner.proxy
    }

    /// The single sign-on providers.
    pub fn sso(&self) -> &crate::oidc::Sso {
        &self.inner.sso
    }

    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Appends `event` by `actor` to the audit log (see [`audit::record`]).
    pub async fn audit(&self, actor: Option<&str>, event: AuditEvent<'_>) {
        audit::record(self.inner.store.as_ref(), actor, event).await;
    }

    pub fn sandboxes(&self) -> &Arc<Sandboxes> {
        &self.inner.sandboxes
    }

    pub fn images(&self) -> &Arc<dyn ImageCatalog> {
        &self.inner.images
    }

    pub fn lab_sessions(&self) -> &Arc<LabSessions> {
        &self.inner.lab_sessions
    }

    pub fn labs(&self) -> Arc<Vec<Lab>> {
        self.inner
            .labs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_labs(&self, labs: Vec<Lab>) {
        *self.inner.labs.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(labs);
    }

    /// The problems of the catalogue's last load: the labs they name are not shown.
    pub fn lab_problems(&self) -> Arc<Vec<sandlab_lab::Problem>> {
        self.inner
            .lab_problems
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_lab_problems(&self, problems: Vec<sandlab_lab::Problem>) {
        *self
            .inner
            .lab_problems
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(problems);
    }

    /// The code execution engine every execution route shares.
    pub fn execute(&self) -> &Arc<Engine> {
        &self.inner.execute
    }

    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::Acquire)
    }

    /// Called once the store and runtime are up and reconciliation has finished.
    pub fn set_ready(&self) {
        self.inner.ready.store(true, Ordering::Release);
    }

    /// Cancelled when the server begins to shut down (WebSockets close with 1001).
    pub fn shutdown(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    pub fn sockets(&self) -> &TaskTracker {
        &self.inner.sockets
    }

    pub fn login_by_addr(&self) -> &RateLimiter {
        &self.inner.login_by_addr
    }

    pub fn login_by_name(&self) -> &RateLimiter {
        &self.inner.login_by_name
    }

    /// Whether the store can be written now, checked by a real one-page write (cheap next
    /// to a probe's own cost, and never stale).
    pub async fn store_writable(&self) -> sandlab_store::Result<()> {
        self.inner.store.check_writable().await
    }

    pub fn streams(&self) -> &crate::caps::StreamCaps {
        &self.inner.streams
    }

    pub fn login_failures(&self) -> &RateLimiter {
        &self.inner.login_failures
    }

    pub fn creates(&self) -> &RateLimiter {
        &self.inner.creates
    }
}
