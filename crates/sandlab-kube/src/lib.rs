//! The Kubernetes driver: one Pod per sandbox in a configured namespace, made through the
//! API server with kube-rs. Kubernetes is the scheduler; Sandlab only asks it.
//!
//! - The agent is the Pod's PID 1 (copied in from `agent_image` by an init container) and
//!   listens on `PodIP:<agent_port>`; the control plane reaches it there directly (not
//!   through `kubectl exec`, which goes through the API server), presenting the sandbox's
//!   own 256-bit token from the Secret `<id>-agent`.
//! - State comes from one watch of this instance's Pods (a local cache fed by a
//!   `watcher`); a create waits on it until the Pod is ready, and "not running" or "gone"
//!   is confirmed by a read before anyone acts on it.
//! - Every object carries `sandlab.dev/instance` and `sandlab.dev/store` (which database
//!   holds its records), so reconciliation only ever sees, and removes, its own.
//! - Warm pool members are labelled `sandlab.dev/pool=ready`; a claim relabels one in a
//!   single patch guarded by its `resourceVersion` ([`Driver::claim`]).
//!
//! The objects are built in [`objects`], a Pod's status is read in [`pods`], and the
//! `[kubernetes]` settings are checked in [`settings`].

pub mod objects;
pub mod pods;
pub mod settings;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::Client;
use sandlab_core::{NetworkInfo, Profile, SandboxId};
use sandlab_proto::{AgentClient, ExecRequest};
use sandlab_runtime::{Driver, Error, HostResources, Result, SandboxSpec, Stats};
use tokio::time::Instant;

use crate::objects::Identity;
use crate::pods::PodState;
pub use crate::settings::Settings;

/// The registry key of this driver, stored in every record it creates.
pub const NAME: &str = "kubernetes";

/// How long one call to the API server may take before it counts as unreachable.
const API_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a removal waits for the kubelet to confirm a Pod is gone before forcing it.
const REMOVE_WAIT: Duration = Duration::from_secs(20);
/// A pool member relabelled `claimed` this long ago whose record is still the pool's was
/// claimed by a replica that died before it finished: it is retired, not claimed again.
const STALE_CLAIM: Duration = Duration::from_secs(60);

pub struct KubeDriver {
    inner: Arc<Inner>,
    /// Stops the watch when the driver goes.
    _watch: AbortOnDrop,
}

struct Inner {
    settings: Settings,
    who: Identity,
    pods: Api<Pod>,
    secrets: Api<Secret>,
    policies: Api<NetworkPolicy>,
    services: Api<Service>,
    /// This instance's Pods as the watch last saw them.
    cache: Mutex<Cache>,
    /// Bumped on every watch event: waiters look at the cache again.
    changed: tokio::sync::watch::Sender<u64>,
    /// Agent tokens of the sandboxes this process made or reached.
    tokens: Mutex<HashMap<SandboxId, String>>,
    /// Whether the deny-all floor exists (made once per process).
    floor: tokio::sync::OnceCell<()>,
}

#[derive(Default)]
struct Cache {
    /// The first listing is complete: a Pod missing here is (as far as the watch knows)
    /// gone.
    synced: bool,
    pods: HashMap<String, Pod>,
    /// The listing under way (a watch that restarts lists everything again).
    pending: HashMap<String, Pod>,
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl KubeDriver {
    /// Connects to the API server the settings name and starts the watch. `store` names
    /// the database whose records this process keeps (see [`store_label`]).
    pub async fn new(settings: Settings, store: &str) -> Result<KubeDriver> {
        settings.validate().map_err(Error::Invalid)?;
        let client = client(&settings).await?;
        let ns = settings.namespace.as_str();
        let who = Identity {
            instance: settings.instance.clone(),
            store: store.to_owned(),
            extra: settings.labels.clone(),
        };
        let (changed, _) = tokio::sync::watch::channel(0);
        let inner = Arc::new(Inner {
            pods: Api::namespaced(client.clone(), ns),
            secrets: Api::namespaced(client.clone(), ns),
            policies: Api::namespaced(client.clone(), ns),
            services: Api::namespaced(client, ns),
            who,
            settings,
            cache: Mutex::new(Cache::default()),
            changed,
            tokens: Mutex::new(HashMap::new()),
            floor: tokio::sync::OnceCell::new(),
        });
        let task = tokio::spawn(watch(
            Arc::downgrade(&inner),
            inner.pods.clone(),
            inner.who.selector(),
        ));
        Ok(KubeDriver {
            inner,
            _watch: AbortOnDrop(task.abort_handle()),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }
}

/// The label value naming a database: 16 hex digits of SHA-256 of its location (a
/// PostgreSQL URL without credentials or options, or an SQLite file's path). Two
/// processes on one database agree on it; a CLI pointed at another database (a laptop's
/// SQLite) sees none of these sandboxes and so never takes them for orphans.
pub fn store_label(location: &str) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(location.as_bytes());
    hex::encode(&hash[..8])
}

/// The API client: the kubeconfig file and context the settings name, else in-cluster
/// (a service account) or `$KUBECONFIG` / `~/.kube/config`.
async fn client(settings: &Settings) -> Result<Client> {
    let options = kube::config::KubeConfigOptions {
        context: settings.context.clone().filter(|c| !c.is_empty()),
        ..Default::default()
    };
    let config = match settings.kubeconfig.as_deref().filter(|p| !p.as_os_str().is_empty()) {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| {
                Error::Invalid(format!(
                    "kubernetes.kubeconfig {} cannot be read: {e}",
                    path.display()
                ))
            })?;
            kube::Config::from_custom_kubeconfig(kc, &options).await.map_err(|e| {
                Error::Invalid(format!(
                    "kubernetes.kubeconfig {} is not usable: {e}",
                    path.display()
                ))
            })?
        }
        None if options.context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| Error::Invalid(format!("kubernetes.context is not usable: {e}")))?,
        None => kube::Config::infer().await.map_err(|e| {
            Error::Invalid(format!(
                "No Kubernetes credentials were found (not in a Pod, no $KUBECONFIG, no ~/.kube/config); set kubernetes.kubeconfig: {e}"
            ))
        })?,
    };
    let mut config = config;
    config.connect_timeout = Some(Duration::from_secs(5));
    Client::try_from(config)
        .map_err(|e| Error::Invalid(format!("The Kubernetes client cannot be made: {e}")))
}

/// Feeds the cache from one watch of this instance's Pods until the driver goes.
async fn watch(inner: std::sync::Weak<Inner>, pods: Api<Pod>, selector: String) {
    let config = watcher::Config::default().labels(&selector);
    let mut events = watcher::watcher(pods, config).boxed();
    while let Some(event) = events.next().await {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        match event {
            Ok(event) => {
                let mut cache = inner.cache.lock().expect("cache lock");
                match event {
                    watcher::Event::Init => cache.pending.clear(),
                    watcher::Event::InitApply(p) => {
                        if let Some(name) = p.metadata.name.clone() {
                            cache.pending.insert(name, p);
                        }
                    }
                    watcher::Event::InitDone => {
                        cache.pods = std::mem::take(&mut cache.pending);
                        cache.synced = true;
                    }
                    watcher::Event::Apply(p) => {
                        if let Some(name) = p.metadata.name.clone() {
                            cache.pods.insert(name, p);
                        }
                    }
                    watcher::Event::Delete(p) => {
                        if let Some(name) = &p.metadata.name {
                            cache.pods.remove(name);
                        }
                    }
                }
            }
            Err(e) => {
                // The watcher resumes from where it was, or lists again (`Init`) when
                // that is too old: the cache stays as complete as it was.
                tracing::warn!(error = %e, "the watch of sandbox Pods failed; it resumes");
                drop(inner);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        }
        inner.changed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// A kube-rs error as one of ours, saying what Sandlab was doing.
fn api_error(doing: &str, ns: &str) -> impl Fn(kube::Error) -> Error {
    let doing = doing.to_owned();
    let ns = ns.to_owned();
    move |e| match e {
        kube::Error::Api(status) => {
            let message = status.message.trim().trim_end_matches('.').to_owned();
            match status.code {
                // The authorizer's own wording: `... cannot create resource "pods" ...`.
                403 if message.contains("cannot ") && message.contains(" resource \"") => Error::Unavailable(format!(
                    "Kubernetes does not let Sandlab {doing} in namespace {ns} ({message}); give its service account the rights in deploy/kubernetes/rbac.yaml"
                )),
                // Admission: a quota, Pod Security, a webhook.
                403 => Error::StartFailed(format!("Kubernetes refused to {doing}: {message}")),
                404 => Error::Unavailable(format!(
                    "Kubernetes could not {doing} ({message}); does namespace {ns} exist?"
                )),
                409 => Error::Conflict(format!("Kubernetes could not {doing}: {message}")),
                400 | 422 => Error::StartFailed(format!("Kubernetes refused to {doing}: {message}")),
                // Throttled, or the API server (or etcd behind it) failing: try again later.
                429 | 500..=599 => Error::Unavailable(format!(
                    "Kubernetes could not {doing} now ({}): {message}",
                    status.code
                )),
                code => Error::Host(format!("Kubernetes failed to {doing} ({code}): {message}")),
            }
        }
        other => Error::Unavailable(format!(
            "The Kubernetes API server cannot be reached to {doing}: {other}"
        )),
    }
}

/// Whether an error is the API server's 404.
fn not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// One API call with [`API_TIMEOUT`].
async fn timed<T>(
    doing: &str,
    call: impl std::future::Future<Output = std::result::Result<T, kube::Error>>,
) -> std::result::Result<T, CallError> {
    match tokio::time::timeout(API_TIMEOUT, call).await {
        Ok(r) => r.map_err(CallError::Api),
        Err(_) => Err(CallError::Timeout(doing.to_owned())),
    }
}

enum CallError {
    Api(kube::Error),
    Timeout(String),
}

impl Inner {
    fn err(&self, doing: &str) -> impl Fn(CallError) -> Error + '_ {
        let doing = doing.to_owned();
        move |e| match e {
            CallError::Api(e) => api_error(&doing, &self.settings.namespace)(e),
            CallError::Timeout(what) => Error::Unavailable(format!(
                "The Kubernetes API server did not answer within {} s to {what}",
                API_TIMEOUT.as_secs()
            )),
        }
    }

    /// The Pod as the watch last saw it, if the watch has a complete picture.
    fn cached(&self, id: &SandboxId) -> Option<Option<Pod>> {
        let cache = self.cache.lock().expect("cache lock");
        cache.synced.then(|| cache.pods.get(id.as_str()).cloned())
    }

    /// The Pod as the API server has it now; `None` when it does not exist.
    async fn read(&self, id: &SandboxId) -> Result<Option<Pod>> {
        match timed("read a sandbox's Pod", self.pods.get(id.as_str())).await {
            Ok(p) => Ok(Some(p)),
            Err(CallError::Api(e)) if not_found(&e) => Ok(None),
            Err(e) => Err(self.err("read a sandbox's Pod")(e)),
        }
    }

    /// Where the sandbox's agent listens, once its Pod is ready; else why not.
    async fn ready_at(&self, id: &SandboxId) -> Result<std::result::Result<SocketAddr, String>> {
        let pod = match self.cached(id) {
            Some(Some(p)) if matches!(pods::state(&p), PodState::Ready(_)) => Some(p),
            // Not ready or missing as far as the watch knows: ask the API server.
            _ => self.read(id).await?,
        };
        let Some(pod) = pod else {
            return Err(Error::NotFound(id.clone()));
        };
        Ok(match pods::state(&pod) {
            PodState::Ready(ip) => Ok(SocketAddr::new(ip, self.settings.agent_port)),
            PodState::Starting(why) => Err(format!(
                "The sandbox's Pod is still starting{}",
                why.map(|w| format!(" ({w})")).unwrap_or_default()
            )),
            PodState::Failed(why) => Err(why),
        })
    }

    async fn token(&self, id: &SandboxId) -> Result<String> {
        if let Some(t) = self.tokens.lock().expect("tokens lock").get(id) {
            return Ok(t.clone());
        }
        let name = objects::secret_name(id);
        let secret = match timed("read a sandbox's agent token", self.secrets.get(&name)).await {
            Ok(s) => s,
            Err(CallError::Api(e)) if not_found(&e) => return Err(Error::NotFound(id.clone())),
            Err(e) => return Err(self.err("read a sandbox's agent token")(e)),
        };
        let token = secret
            .data
            .as_ref()
            .and_then(|d| d.get("token"))
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
            .ok_or_else(|| Error::Host(format!("The Secret {name} holds no agent token")))?;
        self.tokens
            .lock()
            .expect("tokens lock")
            .insert(id.clone(), token.clone());
        Ok(token)
    }

    /// Makes `object` unless one of its name exists already.
    async fn create_unless_exists<K>(&self, api: &Api<K>, object: &K, doing: &str) -> Result<()>
    where
        K: kube::Resource
            + Clone
            + serde::Serialize
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        match timed(doing, api.create(&PostParams::default(), object)).await {
            Ok(_) => Ok(()),
            Err(CallError::Api(kube::Error::Api(s))) if s.code == 409 => Ok(()),
            Err(e) => Err(self.err(doing)(e)),
        }
    }

    /// Makes the deny-all floor once per process (it may exist already).
    async fn ensure_floor(&self) -> Result<()> {
        let floor = objects::floor(&self.who);
        self.floor
            .get_or_try_init(|| {
                self.create_unless_exists(&self.policies, &floor, "make the deny-all NetworkPolicy")
            })
            .await
            .map(|_| ())
    }

    /// Makes the playground's headless Service unless it exists.
    async fn ensure_service(&self, playground: &str) -> Result<()> {
        let svc = objects::service(playground, &self.who);
        self.create_unless_exists(&self.services, &svc, "make a playground's Service")
            .await
    }

    /// Waits on the watch until the Pod is ready or failed, or `deadline`.
    async fn wait_ready(&self, id: &SandboxId, deadline: Instant) -> Result<std::net::IpAddr> {
        let mut changed = self.changed.subscribe();
        let mut last = None;
        let mut next_read = Instant::now() + Duration::from_secs(5);
        loop {
            let (pod, read) = match self.cached(id) {
                Some(p) if Instant::now() < next_read => (p, false),
                // The watch has no complete picture, or has been quiet a while: read.
                _ => {
                    next_read = Instant::now() + Duration::from_secs(5);
                    (self.read(id).await?, true)
                }
            };
            match pod.as_ref().map(pods::state) {
                Some(PodState::Ready(ip)) => return Ok(ip),
                Some(PodState::Failed(why)) => return Err(Error::StartFailed(why)),
                Some(PodState::Starting(why)) => last = why.or(last),
                // The watch may not have shown a new Pod yet; the API server knows.
                None if read => {
                    return Err(Error::StartFailed(
                        "The sandbox's Pod was deleted while it started".into(),
                    ))
                }
                None => {}
            }
            let wait = next_read.min(deadline);
            if tokio::time::timeout_at(wait, changed.changed())
                .await
                .is_err()
                && Instant::now() >= deadline
            {
                return Err(Error::StartFailed(format!(
                    "The sandbox's Pod was not ready within {} s{}",
                    self.settings.start_timeout,
                    last.map(|w| format!(" ({w})")).unwrap_or_default()
                )));
            }
        }
    }

    async fn start(
        &self,
        spec: &SandboxSpec,
        image: &str,
        token: &str,
        deadline: Instant,
    ) -> Result<NetworkInfo> {
        self.ensure_floor().await?;
        let pod = objects::pod(spec, image, &self.settings, &self.who);
        let pod = timed(
            "make a sandbox's Pod",
            self.pods.create(&PostParams::default(), &pod),
        )
        .await
        .map_err(self.err("make a sandbox's Pod"))?;
        if self.settings.user_namespaces
            && pod.spec.as_ref().and_then(|s| s.host_users) != Some(false)
        {
            return Err(Error::StartFailed(
                "The cluster dropped `hostUsers: false` from the sandbox's Pod, so root in a sandbox would be root on the node: enable user namespaces in the cluster, or set kubernetes.user_namespaces = false if you accept that".into(),
            ));
        }
        let owner = objects::owned_by(&pod).ok_or_else(|| {
            Error::Host("The API server returned a Pod without a name or uid".into())
        })?;
        let secret = objects::secret(&spec.id, token, owner.clone(), &self.who);
        timed(
            "make a sandbox's agent token Secret",
            self.secrets.create(&PostParams::default(), &secret),
        )
        .await
        .map_err(self.err("make a sandbox's agent token Secret"))?;
        let policy = objects::network_policy(spec, &self.settings, owner, &self.who);
        timed(
            "make a sandbox's NetworkPolicy",
            self.policies.create(&PostParams::default(), &policy),
        )
        .await
        .map_err(self.err("make a sandbox's NetworkPolicy"))?;
        if let Some(pg) = &spec.playground {
            self.ensure_service(&pg.name).await?;
        }
        let ip = self.wait_ready(&spec.id, deadline).await?;
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(1));
        let addr = SocketAddr::new(ip, self.settings.agent_port);
        AgentClient::connect_tcp(addr, token, left)
            .await
            .map_err(|e| {
                Error::StartFailed(format!("The sandbox's agent at {addr} did not answer: {e}"))
            })?;
        // A peer that failed may have removed the playground's Service as the last node
        // it knew of: make sure it is there now that this node runs.
        if let Some(pg) = &spec.playground {
            self.ensure_service(&pg.name).await?;
        }
        Ok(match ip {
            std::net::IpAddr::V4(v4) => NetworkInfo {
                ipv4: Some(v4.to_string()),
                ipv6: None,
            },
            std::net::IpAddr::V6(v6) => NetworkInfo {
                ipv4: None,
                ipv6: Some(v6.to_string()),
            },
        })
    }

    async fn delete<K>(&self, api: &Api<K>, name: &str, what: &str, grace: u32) -> Result<()>
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let params = DeleteParams {
            grace_period_seconds: Some(grace),
            ..DeleteParams::default()
        };
        let doing = format!("delete {what}");
        match timed(&doing, api.delete(name, &params)).await {
            Ok(_) => Ok(()),
            Err(CallError::Api(e)) if not_found(&e) => Ok(()),
            Err(e) => Err(self.err(&doing)(e)),
        }
    }

    /// Removes the playground's Service when no Pod of it is left.
    async fn drop_service_if_unused(&self, playground: &str) -> Result<()> {
        let selector = format!(
            "{},{}={playground}",
            self.who.selector(),
            objects::PLAYGROUND
        );
        let left = timed(
            "list a playground's Pods",
            self.pods
                .list_metadata(&ListParams::default().labels(&selector)),
        )
        .await
        .map_err(self.err("list a playground's Pods"))?;
        if left
            .items
            .iter()
            .all(|p| p.metadata.deletion_timestamp.is_some())
        {
            self.delete(
                &self.services,
                &objects::service_name(playground),
                "a playground's Service",
                0,
            )
            .await?;
        }
        Ok(())
    }

    async fn agent(&self, id: &SandboxId, timeout: Duration) -> Result<AgentClient> {
        let addr = match self.ready_at(id).await? {
            Ok(addr) => addr,
            Err(why) => return Err(Error::Unavailable(format!("{why}."))),
        };
        let token = self.token(id).await?;
        Ok(AgentClient::connect_tcp(addr, &token, timeout).await?)
    }
}

#[async_trait]
impl Driver for KubeDriver {
    fn name(&self) -> &str {
        NAME
    }

    async fn validate(&self, spec: &SandboxSpec) -> Result<()> {
        spec.limits.validate()?;
        if spec.limits.profile == Profile::Machine {
            return Err(Error::Invalid(
                "The machine profile is not available for sandboxes on Kubernetes".into(),
            ));
        }
        if self.inner.settings.image(&spec.image).is_none() {
            return Err(Error::Invalid(format!(
                "The image {:?} has no container image in kubernetes.images on this server",
                spec.image
            )));
        }
        if let Some(h) = &spec.hostname {
            if !settings::is_dns_label(h) {
                return Err(Error::Invalid(format!(
                    "The hostname {h:?} is not a DNS label (lowercase letters, digits and '-', at most 63), which Kubernetes requires"
                )));
            }
        }
        if let Some(pg) = &spec.playground {
            pg.validate()?;
        }
        Ok(())
    }

    async fn create(&self, spec: &SandboxSpec) -> Result<NetworkInfo> {
        self.validate(spec).await?;
        let inner = &self.inner;
        let image = inner
            .settings
            .image(&spec.image)
            .unwrap_or_default()
            .to_owned();
        let deadline = Instant::now() + Duration::from_secs(inner.settings.start_timeout);
        let token = new_token();
        inner
            .tokens
            .lock()
            .expect("tokens lock")
            .insert(spec.id.clone(), token.clone());
        let result = inner.start(spec, &image, &token, deadline).await;
        if let Err(e) = &result {
            tracing::info!(sandbox.id = %spec.id, error = %e, "the sandbox's Pod did not start; removing what was made");
            if let Err(e) = self.remove(&spec.id).await {
                tracing::warn!(sandbox.id = %spec.id, error = %e, "could not remove a Pod that did not start");
            }
        }
        result
    }

    async fn agent(&self, id: &SandboxId, timeout: Duration) -> Result<AgentClient> {
        self.inner.agent(id, timeout).await
    }

    async fn is_running(&self, id: &SandboxId) -> Result<bool> {
        if let Some(Some(p)) = self.inner.cached(id) {
            if matches!(pods::state(&p), PodState::Ready(_)) {
                return Ok(true);
            }
        }
        // Not running as far as the watch knows: confirm with the API server.
        Ok(self
            .inner
            .read(id)
            .await?
            .is_some_and(|p| matches!(pods::state(&p), PodState::Ready(_))))
    }

    async fn wait_exited(&self, id: &SandboxId) -> Result<()> {
        let mut changed = self.inner.changed.subscribe();
        while self.is_running(id).await? {
            // A watch event, or a look every few seconds if the watch is down.
            let _ = tokio::time::timeout(Duration::from_secs(5), changed.changed()).await;
        }
        Ok(())
    }

    async fn stop(&self, id: &SandboxId) -> Result<()> {
        self.inner
            .delete(&self.inner.pods, id.as_str(), "a sandbox's Pod", 0)
            .await
    }

    async fn remove(&self, id: &SandboxId) -> Result<()> {
        let inner = &self.inner;
        let playground = match inner.read(id).await? {
            Some(p) => p
                .metadata
                .labels
                .and_then(|mut l| l.remove(objects::PLAYGROUND)),
            None => None,
        };
        inner
            .delete(&inner.pods, id.as_str(), "a sandbox's Pod", 1)
            .await?;
        inner
            .delete(
                &inner.secrets,
                &objects::secret_name(id),
                "a sandbox's Secret",
                0,
            )
            .await?;
        inner
            .delete(&inner.policies, id.as_str(), "a sandbox's NetworkPolicy", 0)
            .await?;
        inner.tokens.lock().expect("tokens lock").remove(id);
        // Wait for the kubelet to confirm the Pod's processes are gone; force it after
        // a while (a node that went away never confirms).
        let mut changed = inner.changed.subscribe();
        let deadline = Instant::now() + REMOVE_WAIT;
        while inner.read(id).await?.is_some() {
            if Instant::now() >= deadline {
                tracing::warn!(sandbox.id = %id, "the node did not confirm the Pod's removal; forcing it");
                inner
                    .delete(&inner.pods, id.as_str(), "a sandbox's Pod", 0)
                    .await?;
                break;
            }
            let _ = tokio::time::timeout_at(
                deadline.min(Instant::now() + Duration::from_secs(2)),
                changed.changed(),
            )
            .await;
        }
        if let Some(pg) = playground {
            inner.drop_service_if_unused(&pg).await?;
        }
        Ok(())
    }

    async fn stats(&self, id: &SandboxId) -> Result<Stats> {
        let agent = self.inner.agent(id, Duration::from_secs(5)).await?;
        cgroup_stats(&agent).await
    }

    async fn host_resources(&self) -> Result<HostResources> {
        let inner = &self.inner;
        let params = ListParams::default().labels(&inner.who.selector());
        let mut res = HostResources::default();
        let pods = timed("list sandbox Pods", inner.pods.list_metadata(&params))
            .await
            .map_err(inner.err("list sandbox Pods"))?;
        let secrets = timed("list sandbox Secrets", inner.secrets.list_metadata(&params))
            .await
            .map_err(inner.err("list sandbox Secrets"))?;
        let policies = timed(
            "list sandbox NetworkPolicies",
            inner.policies.list_metadata(&params),
        )
        .await
        .map_err(inner.err("list sandbox NetworkPolicies"))?;
        // A playground's Service whose Pods are all gone (a removal that could no longer
        // see which playground its Pod was in, a kill -9 before the Service went).
        let services = timed(
            "list playground Services",
            inner.services.list_metadata(&params),
        )
        .await
        .map_err(inner.err("list playground Services"))?;
        let in_use: std::collections::BTreeSet<&String> = pods
            .items
            .iter()
            .filter_map(|p| p.metadata.labels.as_ref()?.get(objects::PLAYGROUND))
            .collect();
        for svc in &services.items {
            let Some(pg) = svc
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(objects::PLAYGROUND))
            else {
                continue;
            };
            if !in_use.contains(pg) {
                tracing::info!(playground = %pg, "removing a playground Service no Pod uses");
                inner
                    .delete(
                        &inner.services,
                        &objects::service_name(pg),
                        "a playground's Service",
                        0,
                    )
                    .await?;
            }
        }
        let metas = pods
            .items
            .iter()
            .map(|o| &o.metadata)
            .chain(secrets.items.iter().map(|o| &o.metadata))
            .chain(policies.items.iter().map(|o| &o.metadata));
        for meta in metas {
            if let Some(id) = meta
                .labels
                .as_ref()
                .and_then(|l| l.get(objects::SANDBOX))
                .and_then(|v| v.parse().ok())
            {
                res.ids.insert(id);
            }
        }
        Ok(res)
    }

    async fn kill_processes(&self, id: &SandboxId) -> Result<usize> {
        let agent = self.inner.agent(id, Duration::from_secs(5)).await?;
        // The agent is PID 1 of the Pod's PID namespace: everything else is the learner's.
        let before = agent
            .list_dir("/proc")
            .await?
            .iter()
            .filter(|e| e.name.parse::<u32>().is_ok_and(|pid| pid != 1))
            .count();
        // kill(-1) reaches every process but the caller and PID 1; the shell's own
        // `kill` needs no procps in the image.
        let mut req = ExecRequest::new(["/bin/sh", "-c", "kill -9 -1"]);
        req.timeout = Some(Duration::from_secs(10));
        let out = agent.exec_collect(req, None, 4096).await?;
        if out.exit.code != Some(0) {
            return Err(Error::Host(format!(
                "`kill -9 -1` in sandbox {id} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(before)
    }

    async fn claim(&self, id: &SandboxId) -> Result<()> {
        let inner = &self.inner;
        let Some(pod) = inner.read(id).await? else {
            return Err(Error::NotFound(id.clone()));
        };
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        match labels.get(objects::POOL).map(String::as_str) {
            // Not a pool member: the record's compare-and-swap is the whole claim.
            None => return Ok(()),
            Some("ready") => {}
            Some(_) => {
                let at = pod
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(objects::CLAIMED_AT))
                    .and_then(|t| t.parse::<u64>().ok())
                    .unwrap_or(0);
                let age = sandlab_runtime::manager::now_ms().saturating_sub(at);
                if age > STALE_CLAIM.as_millis() as u64 {
                    return Err(Error::StartFailed(format!(
                        "The pool Pod {id} was claimed {} s ago by a process that did not finish the claim",
                        age / 1000
                    )));
                }
                return Err(Error::Conflict(format!(
                    "The pool Pod {id} was claimed by another process"
                )));
            }
        }
        // Guarded by the resourceVersion just read. A 409 may only mean the kubelet wrote
        // the Pod's status since: read again, and claim while it is still `ready`.
        let mut pod = pod;
        for _ in 0..3 {
            let patch = serde_json::json!({
                "metadata": {
                    "resourceVersion": pod.metadata.resource_version,
                    "labels": { objects::POOL: "claimed" },
                    "annotations": { objects::CLAIMED_AT: sandlab_runtime::manager::now_ms().to_string() },
                }
            });
            let (params, patch) = (PatchParams::default(), Patch::Merge(&patch));
            match timed(
                "claim a pool Pod",
                inner.pods.patch(id.as_str(), &params, &patch),
            )
            .await
            {
                Ok(_) => return Ok(()),
                Err(CallError::Api(kube::Error::Api(s))) if s.code == 409 => {}
                Err(e) => return Err(inner.err("claim a pool Pod")(e)),
            }
            pod = inner
                .read(id)
                .await?
                .ok_or_else(|| Error::NotFound(id.clone()))?;
            let still_ready = pod
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(objects::POOL))
                .is_some_and(|v| v == "ready");
            if !still_ready {
                break;
            }
        }
        Err(Error::Conflict(format!(
            "The pool Pod {id} was claimed by another process"
        )))
    }
}

/// A fresh agent token: 256 random bits as 64 hex digits.
fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

/// Usage from the sandbox's own cgroup, read through its agent (a Pod's container sees
/// its cgroup at `/sys/fs/cgroup`, as v2 or as v1 hierarchies). Files a node does not
/// have count as zero.
async fn cgroup_stats(agent: &AgentClient) -> Result<Stats> {
    async fn read(agent: &AgentClient, path: &str) -> Option<String> {
        let bytes = agent.read_file(path, 64 * 1024).await.ok()?;
        String::from_utf8(bytes).ok()
    }
    fn number(text: Option<String>) -> u64 {
        text.and_then(|t| t.trim().parse().ok()).unwrap_or(0)
    }
    fn field(text: &Option<String>, key: &str) -> u64 {
        text.as_deref()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
            })
            .unwrap_or(0)
    }
    let mut s = Stats::default();
    if let Some(current) = read(agent, "/sys/fs/cgroup/memory.current").await {
        s.memory_bytes = number(Some(current));
        s.memory_peak_bytes = number(read(agent, "/sys/fs/cgroup/memory.peak").await);
        s.memory_limit_bytes = number(read(agent, "/sys/fs/cgroup/memory.max").await);
        s.oom_kills = field(
            &read(agent, "/sys/fs/cgroup/memory.events").await,
            "oom_kill ",
        );
        s.pids = number(read(agent, "/sys/fs/cgroup/pids.current").await);
        s.cpu_usage_ns = field(&read(agent, "/sys/fs/cgroup/cpu.stat").await, "usage_usec ") * 1000;
    } else {
        let m = "/sys/fs/cgroup/memory";
        s.memory_bytes = number(read(agent, &format!("{m}/memory.usage_in_bytes")).await);
        s.memory_peak_bytes = number(read(agent, &format!("{m}/memory.max_usage_in_bytes")).await);
        s.memory_limit_bytes = number(read(agent, &format!("{m}/memory.limit_in_bytes")).await);
        s.oom_kills = field(
            &read(agent, &format!("{m}/memory.oom_control")).await,
            "oom_kill ",
        );
        s.pids = number(read(agent, "/sys/fs/cgroup/pids/pids.current").await);
        s.cpu_usage_ns = number(read(agent, "/sys/fs/cgroup/cpuacct/cpuacct.usage").await);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_is_named_by_a_short_stable_hash() {
        let a = store_label("postgres://db.example:5432/sandlab");
        assert_eq!(a.len(), 16);
        assert_eq!(a, store_label("postgres://db.example:5432/sandlab"));
        assert_ne!(a, store_label("/var/lib/sandlab/sandlab.db"));
    }

    #[test]
    fn tokens_are_long_and_fresh() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(sandlab_proto::AuthToken::from_secret(&a).is_ok());
    }
}
