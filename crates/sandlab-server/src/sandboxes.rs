//! The sandbox service behind the HTTP routes: quota, the warm pool, cold creates through
//! the runtime's `SandboxManager` (which writes the record before the first side effect),
//! deadlines, removal and cached agent connections.
//!
//! Every state change of a sandbox goes through the manager; this service decides *when*
//! (a request, an expired deadline, a pool top-up) and keeps what only lives in memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sandlab_core::{Limits, SandboxId, SandboxRecord, SandboxState};
use sandlab_proto::AgentClient;
use sandlab_runtime::manager::{now_ms, CreateRequest, ReconcileReport, SandboxManager};
use sandlab_runtime::Playground;
use sandlab_store::{actions, Store};
use tokio_util::sync::CancellationToken;

use crate::config::PoolProfile;
use crate::error::{ApiError, ApiResult};
use crate::metrics as m;
use crate::pool::{self, WarmPool};
use crate::reaper::Deadlines;
use crate::terminal::{TerminalHub, TerminalOptions};

const AGENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Pool sandboxes carry this deadline in their record, so that if the server never comes
/// back, any reconciliation (`sandlab sandbox ls`) eventually removes them.
const POOL_RECORD_TTL: Duration = Duration::from_secs(24 * 3600);
/// Longest pause between two refill attempts after failures.
const MAX_REFILL_BACKOFF: Duration = Duration::from_secs(30);
/// How often running sandboxes are checked for a dead init process.
const HEALTH_INTERVAL: Duration = Duration::from_secs(5);

pub struct Sandboxes {
    manager: Arc<SandboxManager>,
    store: Arc<dyn Store>,
    pool: WarmPool,
    deadlines: Deadlines,
    terminals: Arc<TerminalHub>,
    agents: Mutex<HashMap<SandboxId, AgentClient>>,
    /// Creates in flight per owner, counted against the quota with the stored ones.
    reservations: tokio::sync::Mutex<HashMap<String, u64>>,
}

/// A create as the API asks for it, already validated and defaulted.
#[derive(Clone, Debug)]
pub struct NewSandbox {
    pub image: String,
    pub limits: Limits,
    pub owner: String,
    /// Most live sandboxes `owner` may have.
    pub quota: u64,
    /// Hostname inside (a lab node's name); default the id. Pool sandboxes have none, so
    /// a create that names one is always cold.
    pub hostname: Option<String>,
    /// The playground whose network to join (lab nodes).
    pub playground: Option<Playground>,
}

impl Sandboxes {
    pub fn new(
        manager: Arc<SandboxManager>,
        store: Arc<dyn Store>,
        pools: Vec<PoolProfile>,
        terminals: TerminalOptions,
    ) -> Sandboxes {
        // Install the metrics recorder before the pool sets its first gauges.
        let _ = crate::metrics::handle();
        Sandboxes {
            manager,
            store,
            pool: WarmPool::new(pools),
            deadlines: Deadlines::default(),
            terminals: Arc::new(TerminalHub::new(terminals)),
            agents: Mutex::new(HashMap::new()),
            reservations: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    pub fn manager(&self) -> &Arc<SandboxManager> {
        &self.manager
    }

    pub fn terminals(&self) -> &Arc<TerminalHub> {
        &self.terminals
    }

    pub fn pool(&self) -> &WarmPool {
        &self.pool
    }

    /// Reconciles host and store, adopts surviving pool sandboxes, and takes over the
    /// deadlines of running ones. Runs before the server reports ready.
    pub async fn recover(&self) -> ApiResult<ReconcileReport> {
        let report = self.manager.reconcile().await?;
        let now = now_ms();
        for rec in self.manager.list().await? {
            if rec.state == SandboxState::Creating {
                // Reconciliation left it alone: its creator (another process) still runs.
                continue;
            }
            let owner = rec.owner.clone().unwrap_or_default();
            if let Some(profile) = pool::profile_of(&owner) {
                let fits = self.pool.fits(profile, &rec.image, &rec.limits);
                let wanted = self
                    .pool
                    .profile(profile)
                    .is_some_and(|p| self.pool.ready(profile) < p.size);
                if rec.state == SandboxState::Running && fits && wanted {
                    self.pool.push(profile, rec.id.clone());
                } else {
                    // A failed create, a changed profile or a smaller pool: nobody will
                    // claim it, so it goes, record and all.
                    self.remove_quietly(&rec.id).await;
                }
                continue;
            }
            if rec.state == SandboxState::Running {
                let left = Duration::from_millis(rec.deadline_ms.saturating_sub(now));
                self.deadlines.track(&rec.id, left);
            }
        }
        self.update_live().await;
        Ok(report)
    }

    /// Runs the reaper and the pool refill until `shutdown`.
    pub fn spawn_background(self: &Arc<Self>, shutdown: CancellationToken) {
        let me = self.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            loop {
                let expired = tokio::select! {
                    ids = me.deadlines.next_expired() => ids,
                    _ = stop.cancelled() => return,
                };
                for id in expired {
                    tracing::info!(sandbox.id = %id, "sandbox reached its deadline");
                    if let Err(e) = me.remove(&id).await {
                        tracing::warn!(sandbox.id = %id, error = %e.message, "could not remove an expired sandbox");
                        continue;
                    }
                    metrics::counter!(m::EXPIRED).increment(1);
                    let _ = me
                        .store
                        .audit(
                            None,
                            "sandbox.expire",
                            Some(id.as_str()),
                            serde_json::Value::Null,
                        )
                        .await;
                }
            }
        });
        let me = self.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEALTH_INTERVAL);
            loop {
                tokio::select! {
                    _ = tick.tick() => me.sweep().await,
                    _ = stop.cancelled() => return,
                }
            }
        });
        if !self.pool.profiles().is_empty() {
            let me = self.clone();
            tokio::spawn(async move { me.refill_loop(shutdown).await });
        }
    }

    /// Marks running sandboxes whose init process died as `failed` (and frees their host
    /// resources), so nobody is shown a dead sandbox as running until its deadline.
    async fn sweep(&self) {
        let mut ids = self.deadlines.ids();
        ids.extend(self.pool.all_ready());
        for id in ids {
            if let Ok(false) = self.manager.is_running(&id).await {
                // A create or remove may be under way: only a running record is failed.
                let Ok(Some(rec)) = self.store.get(&id).await else {
                    continue;
                };
                if rec.state != SandboxState::Running {
                    continue;
                }
                tracing::warn!(sandbox.id = %id, "the sandbox's init process is gone");
                if rec.owner.as_deref().and_then(pool::profile_of).is_some() {
                    // Nobody owns it yet: replace it rather than keep a failed record.
                    self.remove_quietly(&id).await;
                    continue;
                }
                self.deadlines.forget(&id);
                self.pool.remove(&id);
                self.terminals.close_sandbox(&id);
                self.forget_agent(&id);
                if let Err(e) = self
                    .manager
                    .fail(&id, "the sandbox's processes are gone")
                    .await
                {
                    tracing::warn!(sandbox.id = %id, error = %e, "could not mark a dead sandbox failed");
                }
            }
        }
        self.update_live().await;
    }

    async fn refill_loop(&self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(500);
        loop {
            let wake = self.pool.wake.notified();
            let mut failed = false;
            for (profile, _) in self.pool.deficits() {
                if shutdown.is_cancelled() {
                    return;
                }
                match self.create_pool_member(&profile).await {
                    Ok(id) => self.pool.push(&profile.name, id),
                    Err(e) => {
                        metrics::counter!(m::POOL_REFILL_FAILURES, "profile" => profile.name.clone())
                            .increment(1);
                        tracing::warn!(pool.profile = %profile.name, error = %e, "warm pool refill failed");
                        failed = true;
                    }
                }
            }
            if failed {
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.cancelled() => return,
                }
                backoff = (backoff * 2).min(MAX_REFILL_BACKOFF);
                continue;
            }
            backoff = Duration::from_millis(500);
            if !self.pool.deficits().is_empty() {
                continue;
            }
            tokio::select! {
                _ = wake => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    async fn create_pool_member(&self, profile: &PoolProfile) -> Result<SandboxId, String> {
        let mut limits = profile.limits.clone();
        limits.ttl = POOL_RECORD_TTL;
        let rec = self
            .manager
            .create(CreateRequest {
                image: profile.image.clone(),
                limits,
                owner: Some(pool::owner_for(&profile.name)),
                ..CreateRequest::default()
            })
            .await
            .map_err(|e| sandlab_core::error_chain(&e))?;
        Ok(rec.id)
    }

    /// Creates a sandbox for `req.owner`: from the warm pool when a profile matches, else
    /// cold. `quota_exceeded` (429) when the owner already has `req.quota` live sandboxes.
    ///
    /// The work runs in its own task: a client that disconnects mid-way does not cancel a
    /// create half done (the sandbox is created and listed as theirs).
    pub async fn create(self: &Arc<Self>, req: NewSandbox) -> ApiResult<SandboxRecord> {
        self.reserve(&req.owner, req.quota).await?;
        let me = self.clone();
        let task = tokio::spawn(async move {
            let result = me.create_reserved(&req).await;
            let mut pending = me.reservations.lock().await;
            if let Some(n) = pending.get_mut(&req.owner) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    pending.remove(&req.owner);
                }
            }
            result
        });
        task.await
            .map_err(|e| ApiError::internal("the create task failed", &e))?
    }

    async fn create_reserved(&self, req: &NewSandbox) -> ApiResult<SandboxRecord> {
        let start = Instant::now();
        let pooled = (req.hostname.is_none() && req.playground.is_none())
            .then(|| self.pool.matching(&req.image, &req.limits))
            .flatten();
        if let Some(profile) = pooled {
            let name = profile.name.clone();
            while let Some(id) = self.pool.take(&name) {
                match self.claim(&id, &name, req).await {
                    Ok(rec) => {
                        let secs = start.elapsed().as_secs_f64();
                        metrics::histogram!(m::POOL_CLAIM_SECONDS, "profile" => name.clone())
                            .record(secs);
                        metrics::histogram!(m::CREATE_SECONDS, "source" => "pool").record(secs);
                        metrics::counter!(m::CREATED, "source" => "pool").increment(1);
                        self.update_live().await;
                        return Ok(rec);
                    }
                    Err(e) => {
                        tracing::warn!(sandbox.id = %id, error = %e, "dropping a warm sandbox that cannot be claimed");
                        self.remove_quietly(&id).await;
                    }
                }
            }
        }
        let rec = self
            .manager
            .create(CreateRequest {
                image: req.image.clone(),
                limits: req.limits.clone(),
                hostname: req.hostname.clone(),
                owner: Some(req.owner.clone()),
                playground: req.playground.clone(),
                ..CreateRequest::default()
            })
            .await?;
        self.deadlines.track(&rec.id, req.limits.ttl);
        metrics::histogram!(m::CREATE_SECONDS, "source" => "cold")
            .record(start.elapsed().as_secs_f64());
        metrics::counter!(m::CREATED, "source" => "cold").increment(1);
        self.update_live().await;
        Ok(rec)
    }

    /// Hands pool sandbox `id` to `req.owner`: one store write of owner, TTL and deadline.
    async fn claim(
        &self,
        id: &SandboxId,
        profile: &str,
        req: &NewSandbox,
    ) -> Result<SandboxRecord, String> {
        let mut rec = self
            .store
            .get(id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("its record is gone")?;
        if rec.state != SandboxState::Running
            || rec.owner.as_deref() != Some(pool::owner_for(profile).as_str())
        {
            return Err(format!("it is {} and owned by {:?}", rec.state, rec.owner));
        }
        if !self
            .manager
            .is_running(id)
            .await
            .map_err(|e| e.to_string())?
        {
            return Err("its processes are gone".into());
        }
        let now = now_ms();
        rec.owner = Some(req.owner.clone());
        rec.limits.ttl = req.limits.ttl;
        rec.created_at_ms = now;
        rec.deadline_ms = now.saturating_add(req.limits.ttl.as_millis() as u64);
        self.store.put(&rec).await.map_err(|e| e.to_string())?;
        self.deadlines.track(id, req.limits.ttl);
        Ok(rec)
    }

    /// Counts a create against `owner`'s quota, or refuses it.
    async fn reserve(&self, owner: &str, quota: u64) -> ApiResult<()> {
        let mut pending = self.reservations.lock().await;
        let live = self.store.count_live_sandboxes(owner).await?;
        let inflight = pending.get(owner).copied().unwrap_or(0);
        if live + inflight >= quota {
            return Err(ApiError::too_many(
                "quota_exceeded",
                format!(
                    "You already have {} of your {quota} sandboxes; delete one before creating another.",
                    live + inflight
                ),
            ));
        }
        *pending.entry(owner.to_owned()).or_default() += 1;
        Ok(())
    }

    /// Removes a sandbox: its terminals, its agent connection, its host resources and its
    /// record. Idempotent.
    pub async fn remove(&self, id: &SandboxId) -> ApiResult<()> {
        self.remove_now(id).await
    }

    /// [`Self::remove`] in its own task, so a disconnecting client cannot cancel it half way.
    pub async fn remove_detached(self: &Arc<Self>, id: &SandboxId) -> ApiResult<()> {
        let me = self.clone();
        let id = id.clone();
        tokio::spawn(async move { me.remove_now(&id).await })
            .await
            .map_err(|e| ApiError::internal("the remove task failed", &e))?
    }

    async fn remove_now(&self, id: &SandboxId) -> ApiResult<()> {
        self.deadlines.forget(id);
        self.pool.remove(id);
        self.terminals.close_sandbox(id);
        self.forget_agent(id);
        self.manager.remove(id).await?;
        self.update_live().await;
        Ok(())
    }

    async fn remove_quietly(&self, id: &SandboxId) {
        if let Err(e) = self.remove(id).await {
            tracing::warn!(sandbox.id = %id, error = %e.message, "could not remove sandbox");
        }
    }

    /// Moves a running sandbox's deadline to `ttl` from now; the new record.
    pub async fn extend(&self, mut rec: SandboxRecord, ttl: Duration) -> ApiResult<SandboxRecord> {
        if rec.state != SandboxState::Running {
            return Err(ApiError::conflict(format!(
                "The sandbox is {}; only a running sandbox can be extended.",
                rec.state
            )));
        }
        rec.deadline_ms = now_ms().saturating_add(ttl.as_millis() as u64);
        rec.limits.ttl = Duration::from_millis(rec.deadline_ms.saturating_sub(rec.created_at_ms));
        self.store.put(&rec).await?;
        self.deadlines.track(&rec.id, ttl);
        Ok(rec)
    }

    /// Time left before `id` is removed, on the monotonic clock.
    pub fn time_left(&self, rec: &SandboxRecord) -> Duration {
        self.deadlines
            .left(&rec.id)
            .unwrap_or_else(|| SandboxManager::remaining(rec))
    }

    /// A connection to the sandbox's agent, reused across requests.
    pub async fn agent(&self, id: &SandboxId) -> ApiResult<AgentClient> {
        {
            let agents = self.agents.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = agents.get(id).filter(|c| !c.is_closed()) {
                return Ok(c.clone());
            }
        }
        let client = self.manager.agent(id, AGENT_TIMEOUT).await?;
        self.agents
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), client.clone());
        Ok(client)
    }

    fn forget_agent(&self, id: &SandboxId) {
        self.agents
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    async fn update_live(&self) {
        if let Ok(all) = self.manager.list().await {
            let live = all
                .iter()
                .filter(|r| matches!(r.state, SandboxState::Creating | SandboxState::Running))
                .count();
            metrics::gauge!(m::LIVE).set(live as f64);
        }
    }

    /// Audits an action on a sandbox; a failed audit write is logged, not fatal.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        id: &SandboxId,
        detail: serde_json::Value,
    ) {
        if let Err(e) = self
            .store
            .audit(Some(actor), action, Some(id.as_str()), detail)
            .await
        {
            tracing::warn!(sandbox.id = %id, error = %e, "could not write the audit log");
        }
    }
}

pub use actions::{SANDBOX_CREATE, SANDBOX_DELETE, SANDBOX_EXEC};
