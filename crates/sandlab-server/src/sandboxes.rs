//! The sandbox service behind the HTTP routes: the façade that creates, extends and
//! removes sandboxes and hands out their agents, delegating each piece of state to its
//! one owner:
//!
//! | state | owner |
//! |---|---|
//! | records and host resources | the runtime's `SandboxManager` (record before the first side effect) |
//! | creates in flight per user | [`Quota`] (`quota.rs`) |
//! | ready pool sandboxes, refill | [`WarmPool`] (`pool.rs`) |
//! | deadlines on the monotonic clock | [`Deadlines`] and the reaper (`reaper.rs`) |
//! | open agent connections | [`Agents`] (`agents.rs`) |
//! | terminals | [`TerminalHub`] (`terminal/`) |
//!
//! Every state change of a sandbox goes through the manager; this service decides *when*
//! (a request, an expired deadline, a pool top-up, a dead init process) and tells the
//! in-memory owners when a sandbox goes. Its methods return [`SandboxError`]; `routes/`
//! turns that into HTTP.
//!
//! Any replica of several on one store serves any sandbox (its agent is reached through
//! the host, whoever created it). What must run once runs where [`crate::control`] says:
//! the reaper, the health sweep and reconciliation on the leader ([`Sandboxes::run_leader`],
//! [`Sandboxes::reconcile`]), a pool profile's refill on the holder of its lease
//! ([`Sandboxes::run_pool`]); every replica follows the records every 2 s
//! ([`Sandboxes::sync`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sandlab_core::{Limits, SandboxId, SandboxRecord, SandboxState, StoreError};
use sandlab_proto::AgentClient;
use sandlab_runtime::capacity::{Capacity, NoRoom, Share};
use sandlab_runtime::manager::{
    now_ms, CreateRequest, ReconcileReport, SandboxManager, FAILED_KEPT,
};
use sandlab_runtime::Playground;
use sandlab_store::Store;
use tokio_util::sync::CancellationToken;

use crate::agents::Agents;
use crate::config::PoolProfile;
use crate::metrics as m;
use crate::pool::{ClaimError, Owner, WarmPool};
use crate::quota::Quota;
use crate::reaper::{self, Deadlines};
use crate::terminal::{TerminalHub, TerminalOptions};

/// How often running sandboxes are checked for a dead init process.
const HEALTH_INTERVAL: Duration = Duration::from_secs(5);

/// Why the sandbox service could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The owner already has `live` sandboxes (stored and being created) of their `quota`.
    #[error(
        "You already have {live} of your {quota} sandboxes; delete one before creating another."
    )]
    QuotaExceeded { live: u64, quota: u64 },
    /// The organisation the sandbox counts against has `live` of its `cap` sandboxes.
    #[error(
        "The organisation {org} already has {live} of its {cap} sandboxes; end one before starting another."
    )]
    OrgFull { org: String, live: u64, cap: u64 },
    /// A limit over the most one sandbox may have on this host (whatever the role).
    #[error(
        "The {what} asked for ({asked}) is over the {share} one sandbox may have on this host."
    )]
    OverHost {
        what: &'static str,
        asked: String,
        share: String,
    },
    /// The host has no room for one more sandbox now (memory, tasks, files, the disk pool).
    #[error("{0}; try again when other sandboxes have ended.")]
    NoRoom(#[from] NoRoom),
    /// Only a running sandbox can be extended; this one is in the given state.
    #[error("The sandbox is {0}; only a running sandbox can be extended.")]
    NotRunning(SandboxState),
    #[error("The sandbox runtime failed")]
    Runtime(#[from] sandlab_runtime::Error),
    #[error("The store failed")]
    Store(#[from] sandlab_store::Error),
    #[error("The sandbox records failed")]
    Records(#[from] StoreError),
    /// The task a create or remove runs in (so a disconnect cannot cancel it) failed.
    #[error("The {0} task failed")]
    Task(&'static str, #[source] tokio::task::JoinError),
}

pub type Result<T> = std::result::Result<T, SandboxError>;

/// [`SandboxError::OverHost`] for the first of `limits` over the host's `share`.
fn within_share(limits: &Limits, share: &Share) -> Result<()> {
    let over =
        |what, asked: String, share: String| Err(SandboxError::OverHost { what, asked, share });
    match share {
        Share {
            memory: Some(m), ..
        } if limits.memory > *m => over("memory", limits.memory.to_string(), m.to_string()),
        Share { disk: Some(d), .. } if limits.disk > *d => {
            over("disk", limits.disk.to_string(), d.to_string())
        }
        Share { cpus: Some(c), .. } if limits.cpus > *c => {
            over("CPU count", limits.cpus.to_string(), c.to_string())
        }
        Share { pids: Some(p), .. } if limits.pids > *p => {
            over("pids limit", limits.pids.to_string(), p.to_string())
        }
        _ => Ok(()),
    }
}

pub struct Sandboxes {
    manager: Arc<SandboxManager>,
    store: Arc<dyn Store>,
    quota: Quota,
    pool: WarmPool,
    deadlines: Deadlines,
    agents: Agents,
    terminals: Arc<TerminalHub>,
    /// When this replica last finished a reconciliation.
    reconciled: std::sync::Mutex<Option<Instant>>,
}

/// The hostname of a sandbox made through the API (and of the warm pool's) when the request
/// names none: a name a learner reads in their prompt, not the sandbox id.
pub const API_HOSTNAME: &str = "sandbox";

/// A create as the API asks for it, already validated and defaulted.
#[derive(Clone, Debug)]
pub struct NewSandbox {
    pub image: String,
    pub limits: Limits,
    /// Time to live from creation (or from a warm sandbox's claim).
    pub ttl: Duration,
    /// The user id.
    pub owner: String,
    /// Most live sandboxes `owner` may have.
    pub quota: u64,
    /// Hostname inside (a lab node's name); default the id. Pool sandboxes have none, so
    /// a create that names one is always cold.
    pub hostname: Option<String>,
    /// The playground whose network to join (lab nodes).
    pub playground: Option<Playground>,
    /// The organisation the sandbox counts against (its `max_sandboxes`, in the store).
    pub org: Option<sandlab_store::Org>,
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
            quota: Quota::new(store.clone()),
            pool: WarmPool::new(pools),
            deadlines: Deadlines::default(),
            agents: Agents::new(manager.clone()),
            terminals: Arc::new(TerminalHub::new(terminals)),
            reconciled: std::sync::Mutex::new(None),
            manager,
            store,
        }
    }

    pub fn manager(&self) -> &Arc<SandboxManager> {
        &self.manager
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn terminals(&self) -> &Arc<TerminalHub> {
        &self.terminals
    }

    pub fn pool(&self) -> &WarmPool {
        &self.pool
    }

    pub fn deadlines(&self) -> &Deadlines {
        &self.deadlines
    }

    /// Reconciles host and store and follows the records' deadlines and pool sandboxes.
    /// Runs before the server reports ready.
    pub async fn recover(&self) -> Result<ReconcileReport> {
        let report = self.reconcile().await?;
        self.sync(&self.manager.list().await?);
        self.update_live().await;
        Ok(report)
    }

    /// Reconciles host and store ([`SandboxManager::reconcile`]) and notes when.
    pub async fn reconcile(&self) -> Result<ReconcileReport> {
        let report = self.manager.reconcile().await?;
        *self.reconciled.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        Ok(report)
    }

    /// How long ago this replica last finished a reconciliation.
    pub fn since_reconciled(&self) -> Option<Duration> {
        self.reconciled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map(|at| at.elapsed())
    }

    /// Follows the records as they are in the store (every replica, every 2 s): the
    /// deadlines of user sandboxes (a new one, or one moved by another replica, is
    /// tracked; one whose record went is forgotten) and the pool's ready queues.
    pub fn sync(&self, records: &[SandboxRecord]) {
        let now = now_ms();
        for rec in records {
            let pooled = Owner::of(rec).is_some_and(|o| o.pool_profile().is_some());
            // A failed sandbox's record goes at its deadline too.
            if !pooled && matches!(rec.state, SandboxState::Running | SandboxState::Failed) {
                let left = Duration::from_millis(rec.deadline_ms.saturating_sub(now));
                self.deadlines.follow(&rec.id, left, rec.deadline_ms);
            }
        }
        let ids: std::collections::HashSet<SandboxId> =
            records.iter().map(|r| r.id.clone()).collect();
        self.deadlines.retain(&ids);
        self.pool.sync(records);
    }

    /// Whether `id`, whose tracked deadline passed, goes now: `Some` of the record's
    /// deadline it goes with. Its record is read again: one whose deadline moved since it
    /// was tracked from `tracked` (extended on another replica) and lies ahead is tracked
    /// again instead; a pool sandbox is the pool's.
    pub async fn still_expired(&self, id: &SandboxId, tracked: Option<u64>) -> Option<u64> {
        let rec = match self.store.get(id).await {
            Ok(Some(rec)) => rec,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(sandbox.id = %id, error = %sandlab_core::error_chain(&e), "cannot read an expired sandbox's record; trying again");
                self.deadlines.track(id, Duration::from_secs(5));
                return None;
            }
        };
        if Owner::of(&rec).is_some_and(|o| o.pool_profile().is_some()) {
            return None;
        }
        let now = now_ms();
        let moved = tracked.is_none_or(|t| t != rec.deadline_ms);
        if moved && rec.deadline_ms > now {
            let left = Duration::from_millis(rec.deadline_ms - now);
            self.deadlines.track_record(id, left, rec.deadline_ms);
            return None;
        }
        Some(rec.deadline_ms)
    }

    /// Removes `id`, which expired with deadline `deadline_ms`, unless its record's
    /// deadline moved meanwhile (an extend on another replica, stored while this replica
    /// waited for the removal lock): decided under that lock. Whether it went.
    pub async fn remove_expired(&self, id: &SandboxId, deadline_ms: u64) -> Result<bool> {
        if !self.manager.remove_with_deadline(id, deadline_ms).await? {
            self.still_expired(id, Some(deadline_ms)).await;
            return Ok(false);
        }
        self.forget(id);
        self.update_live().await;
        Ok(true)
    }

    /// The leader's share of the work until `stop`: the reaper and the health sweep.
    pub fn run_leader(self: &Arc<Self>, stop: CancellationToken) {
        tokio::spawn(reaper::run(self.clone(), stop.clone()));
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEALTH_INTERVAL);
            loop {
                tokio::select! {
                    _ = tick.tick() => me.sweep().await,
                    _ = stop.cancelled() => return,
                }
            }
        });
    }

    /// The holder of `profile`'s lease: adopts the profile's sandboxes in the store (those
    /// that do not fit, or are over its size, are retired), then keeps it full until
    /// `stop`.
    pub async fn run_pool(self: &Arc<Self>, profile: &str, stop: CancellationToken) {
        match self.manager.list().await {
            Ok(records) => {
                self.pool.sync(&records);
                for rec in records {
                    if Owner::of(&rec).is_none_or(|o| o.pool_profile() != Some(profile)) {
                        continue;
                    }
                    let usable =
                        rec.state == SandboxState::Running && self.pool.adopt(profile, &rec);
                    // A failed create, a changed profile or a smaller pool: nobody will
                    // claim it, so it goes, record and all. One being made is left to its
                    // maker (or to reconciliation, when that died).
                    if !usable && matches!(rec.state, SandboxState::Running | SandboxState::Failed)
                    {
                        self.retire(&rec).await;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(pool.profile = %profile, error = %sandlab_core::error_chain(&e), "cannot list the pool's sandboxes");
            }
        }
        self.pool.refill(&self.manager, profile, stop).await;
    }

    /// Removes pool sandbox `rec` unless another replica claimed it first: its record is
    /// swapped to `stopping` (from the pool owner and the state it has), then removed.
    async fn retire(&self, rec: &SandboxRecord) {
        let mut stopping = rec.clone();
        stopping.state = SandboxState::Stopping;
        match self
            .store
            .put_if_owner(&stopping, rec.owner.as_deref(), rec.state)
            .await
        {
            Ok(true) => self.remove_quietly(&rec.id).await,
            Ok(false) => {
                self.pool.remove(&rec.id);
            }
            Err(e) => {
                tracing::warn!(sandbox.id = %rec.id, error = %sandlab_core::error_chain(&e), "cannot retire a pool sandbox");
            }
        }
    }

    /// Marks running sandboxes whose init process died as `failed` (and frees their host
    /// resources), so nobody is shown a dead sandbox as running until its deadline. The
    /// leader's: it looks at every sandbox it follows.
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
                if Owner::of(&rec).is_some_and(|o| o.pool_profile().is_some()) {
                    // Nobody owns it yet: replace it rather than keep a failed record.
                    self.retire(&rec).await;
                    continue;
                }
                self.forget(&id);
                match self
                    .manager
                    .fail(&id, "the sandbox's processes are gone")
                    .await
                {
                    // Its record is listed with the reason for a while, then goes.
                    Ok(()) => self.deadlines.track(&id, FAILED_KEPT),
                    Err(e) => {
                        tracing::warn!(sandbox.id = %id, error = %sandlab_core::error_chain(&e), "could not mark a dead sandbox failed");
                    }
                }
            }
        }
        self.update_live().await;
    }

    /// Hands sandbox `id`, owned by pool profile `profile` (a warm lab session's node), to
    /// `owner` with `ttl` from now: [`WarmPool::claim`]'s compare-and-swap of owner and
    /// deadline; from then on its deadline is followed like any user's sandbox's.
    pub async fn claim_node(
        &self,
        id: &SandboxId,
        profile: &str,
        owner: &str,
        ttl: Duration,
    ) -> std::result::Result<SandboxRecord, ClaimError> {
        let rec = self
            .pool
            .claim(self.store.as_ref(), &self.manager, id, profile, owner, ttl)
            .await?;
        self.deadlines.track_record(id, ttl, rec.deadline_ms);
        Ok(rec)
    }

    /// Creates a sandbox for `req.owner`: from the warm pool when a profile matches, else
    /// cold. [`SandboxError::QuotaExceeded`] when the owner already has `req.quota` live
    /// sandboxes.
    ///
    /// The work runs in its own task: a client that disconnects mid-way does not cancel a
    /// create half done (the sandbox is created and listed as theirs).
    pub async fn create(self: &Arc<Self>, req: NewSandbox) -> Result<SandboxRecord> {
        within_share(&req.limits, &self.capacity().await?.share())?;
        let id = SandboxId::generate();
        let reservation = self.quota.reserve(&req.owner, req.quota, &id).await?;
        if let Some(org) = &req.org {
            if let Err(full) = self.store.take_org_place(&org.id, &id).await? {
                return Err(SandboxError::OrgFull {
                    org: org.slug.clone(),
                    live: full.live,
                    cap: full.cap,
                });
            }
        }
        let me = self.clone();
        let task = tokio::spawn(async move {
            let result = me.create_reserved(&req, id.clone()).await;
            if result.is_err() && req.org.is_some() {
                // A failed record (if any) counts against nobody either way.
                if let Err(e) = me.store.release_org_place(&id).await {
                    tracing::warn!(sandbox.id = %id, error = %sandlab_core::error_chain(&e), "could not free an organisation's place");
                }
            }
            drop(reservation);
            result
        });
        task.await.map_err(|e| SandboxError::Task("create", e))?
    }

    /// A create admitted by the quota; a cold one gets `id`, the id it was reserved under.
    async fn create_reserved(&self, req: &NewSandbox, id: SandboxId) -> Result<SandboxRecord> {
        let start = Instant::now();
        let reserved = id.clone();
        let pooled = (req.hostname.as_deref().is_none_or(|h| h == API_HOSTNAME)
            && req.playground.is_none())
        .then(|| self.pool.matching(&req.image, &req.limits))
        .flatten();
        if let Some(profile) = pooled {
            let name = profile.name.clone();
            while let Some(id) = self.pool.take(&name) {
                let claimed = self
                    .pool
                    .claim(
                        self.store.as_ref(),
                        &self.manager,
                        &id,
                        &name,
                        &req.owner,
                        req.ttl,
                    )
                    .await;
                match claimed {
                    Ok(rec) => {
                        if req.org.is_some() {
                            // The organisation's place follows the sandbox claimed (if
                            // this fails, the reserved place counts until it lapses).
                            if let Err(e) = self.store.move_org_place(&reserved, &id).await {
                                tracing::warn!(sandbox.id = %id, error = %sandlab_core::error_chain(&e), "could not move an organisation's place");
                            }
                        }
                        self.deadlines.track_record(&id, req.ttl, rec.deadline_ms);
                        let secs = start.elapsed().as_secs_f64();
                        metrics::histogram!(m::POOL_CLAIM_SECONDS, "profile" => name.clone())
                            .record(secs);
                        metrics::histogram!(m::CREATE_SECONDS, "source" => "pool").record(secs);
                        metrics::counter!(m::CREATED, "source" => "pool").increment(1);
                        self.update_live().await;
                        return Ok(rec);
                    }
                    // Another replica claimed (or retired) it first, or it is gone.
                    Err(ClaimError::Taken { .. } | ClaimError::Gone) => {}
                    Err(e) => {
                        tracing::warn!(sandbox.id = %id, error = %sandlab_core::error_chain(&e), "dropping a warm sandbox that cannot be claimed");
                        if let Ok(Some(rec)) = self.store.get(&id).await {
                            self.retire(&rec).await;
                        }
                    }
                }
            }
        }
        self.capacity().await?.room_for(&req.limits)?;
        let created = self
            .manager
            .create(CreateRequest {
                image: req.image.clone(),
                limits: req.limits.clone(),
                ttl: req.ttl,
                hostname: req.hostname.clone(),
                owner: Some(Owner::User(req.owner.clone()).to_string()),
                playground: req.playground.clone(),
                id: Some(id.clone()),
                ..CreateRequest::default()
            })
            .await;
        let rec = match created {
            Ok(rec) => rec,
            Err(e) => {
                // A failed create's record is listed with its reason for a while.
                if let Ok(Some(_)) = self.store.get(&id).await {
                    self.deadlines.track(&id, FAILED_KEPT);
                }
                return Err(e.into());
            }
        };
        self.deadlines
            .track_record(&rec.id, req.ttl, rec.deadline_ms);
        metrics::histogram!(m::CREATE_SECONDS, "source" => "cold")
            .record(start.elapsed().as_secs_f64());
        metrics::counter!(m::CREATED, "source" => "cold").increment(1);
        self.update_live().await;
        Ok(rec)
    }

    /// [`SandboxError::QuotaExceeded`] unless `owner` has room for `n` more sandboxes.
    pub async fn check_quota(&self, owner: &str, quota: u64, n: u64) -> Result<()> {
        self.quota.check_room(owner, quota, n).await
    }

    /// Counts sandbox `id`, about to become `owner`'s (a warm node to be claimed), against
    /// `quota` until the reservation is dropped; [`SandboxError::QuotaExceeded`] when it
    /// does not fit.
    pub async fn reserve(
        &self,
        owner: &str,
        quota: u64,
        id: &SandboxId,
    ) -> Result<crate::quota::Reservation> {
        self.quota.reserve(owner, quota, id).await
    }

    /// Kills every process of the sandbox but its init (the agent); how many were killed.
    pub async fn kill_processes(&self, id: &SandboxId) -> Result<usize> {
        Ok(self.manager.kill_processes(id).await?)
    }

    /// The host's capacity as the default driver sees it now.
    pub async fn capacity(&self) -> Result<Capacity> {
        Ok(self.manager.drivers().default_driver()?.capacity().await?)
    }

    /// The most one sandbox may have on this host.
    pub async fn share(&self) -> Result<Share> {
        Ok(self.capacity().await?.share())
    }

    /// Removes a sandbox: its terminals, its agent connection, its host resources and its
    /// record. Idempotent.
    pub async fn remove(&self, id: &SandboxId) -> Result<()> {
        self.forget(id);
        self.manager.remove(id).await?;
        self.update_live().await;
        Ok(())
    }

    /// [`Self::remove`] in its own task, so a disconnecting client cannot cancel it half way.
    pub async fn remove_detached(self: &Arc<Self>, id: &SandboxId) -> Result<()> {
        let me = self.clone();
        let id = id.clone();
        tokio::spawn(async move { me.remove(&id).await })
            .await
            .map_err(|e| SandboxError::Task("remove", e))?
    }

    async fn remove_quietly(&self, id: &SandboxId) {
        if let Err(e) = self.remove(id).await {
            tracing::warn!(sandbox.id = %id, error = %sandlab_core::error_chain(&e), "could not remove sandbox");
        }
    }

    /// Tells every in-memory owner that `id` is going: no deadline, not in the pool, no
    /// terminals, no agent connection.
    fn forget(&self, id: &SandboxId) {
        self.deadlines.forget(id);
        self.pool.remove(id);
        self.terminals.close_sandbox(id);
        self.agents.forget(id);
    }

    /// Moves a running sandbox's deadline to `ttl` from now; the new record.
    pub async fn extend(&self, mut rec: SandboxRecord, ttl: Duration) -> Result<SandboxRecord> {
        if rec.state != SandboxState::Running {
            return Err(SandboxError::NotRunning(rec.state));
        }
        let old = rec.clone();
        rec.deadline_ms = now_ms().saturating_add(ttl.as_millis() as u64);
        // Only while it still runs as it was read: a removal under way (`stopping`) or a
        // failure on another replica is not undone by an extend.
        if !self
            .store
            .put_if_owner(&rec, old.owner.as_deref(), SandboxState::Running)
            .await?
        {
            let now = self
                .store
                .get(&rec.id)
                .await?
                .map_or(SandboxState::Removed, |r| r.state);
            return Err(SandboxError::NotRunning(now));
        }
        self.deadlines.track_record(&rec.id, ttl, rec.deadline_ms);
        Ok(rec)
    }

    /// Time left before `id` is removed, on the monotonic clock.
    pub fn time_left(&self, rec: &SandboxRecord) -> Duration {
        self.deadlines
            .left(&rec.id)
            .unwrap_or_else(|| SandboxManager::remaining(rec))
    }

    /// A connection to the sandbox's agent, reused across requests.
    pub async fn agent(&self, id: &SandboxId) -> Result<AgentClient> {
        Ok(self.agents.get(id).await?)
    }

    pub(crate) async fn update_live(&self) {
        if let Ok(all) = self.manager.list().await {
            let live = all
                .iter()
                .filter(|r| matches!(r.state, SandboxState::Creating | SandboxState::Running))
                .count();
            metrics::gauge!(m::LIVE).set(live as f64);
        }
    }
}
