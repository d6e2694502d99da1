//! The sandbox lifecycle over the registered [`Drivers`], a [`RecordStore`] and a
//! [`LeaseStore`]: the record is stored before the first side effect, every state change
//! goes through here, and [`SandboxManager::reconcile`] repairs both directions after a
//! crash (resources with no record are removed; records whose resources are gone are
//! marked failed).
//!
//! Removal and reconciliation run under the store lease [`SANDBOXES_LEASE`], so two
//! processes (CLI commands, control-plane replicas) never tear down the same sandbox at
//! once. A record names the process creating it ([`SandboxRecord::creator`]) and,
//! optionally, a process whose exit ends it ([`SandboxRecord::owner_process`]); whether
//! those live is the [`crate::process`] module's question, not a driver's.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sandlab_core::{
    error_chain, Holder, LeaseStore, Limits, NetworkInfo, RecordStore, SandboxId, SandboxRecord,
    SandboxState, DEFAULT_TTL,
};

use crate::error::{Error, Result};
use crate::lease::{LeaseGuard, Leases, LEASE_TTL};
use crate::process;
use crate::{AgentClient, Driver, Drivers, Playground, SandboxSpec, Stats};

/// The lease under which sandboxes are removed and reconciled.
pub const SANDBOXES_LEASE: &str = "sandboxes";
/// The longest wait for [`SANDBOXES_LEASE`] (another process's reconciliation).
const LEASE_WAIT: Duration = Duration::from_secs(120);

/// Removes an id from a set when dropped.
struct Forget<'a>(&'a Mutex<HashSet<SandboxId>>, SandboxId);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.1);
    }
}

/// What a request asks for.
#[derive(Clone, Debug)]
pub struct CreateRequest {
    pub image: String,
    pub limits: Limits,
    /// Time to live from creation: the record's deadline is `created_at_ms` plus this.
    pub ttl: Duration,
    pub hostname: Option<String>,
    pub env: Vec<String>,
    pub owner: Option<String>,
    /// A process whose exit ends the sandbox (see [`SandboxRecord::owner_process`]).
    pub owner_process: Option<Holder>,
    /// The playground whose network to join, if any.
    pub playground: Option<Playground>,
    /// The driver to run it; the registry's default when `None`.
    pub driver: Option<String>,
    /// The sandbox's id, when the caller chose it first (e.g. to count it against a quota
    /// before its record exists); a new one when `None`.
    pub id: Option<SandboxId>,
    /// The warm pool profile it is made for ([`SandboxSpec::pool`]).
    pub pool: Option<String>,
}

impl Default for CreateRequest {
    fn default() -> Self {
        CreateRequest {
            image: String::new(),
            limits: Limits::default(),
            ttl: DEFAULT_TTL,
            hostname: None,
            env: Vec::new(),
            owner: None,
            owner_process: None,
            playground: None,
            driver: None,
            id: None,
            pool: None,
        }
    }
}

/// What reconciliation found and did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReconcileReport {
    /// Resources that had no record and were removed.
    pub orphans_removed: Vec<SandboxId>,
    /// Records whose sandbox was gone, now `failed`.
    pub marked_failed: Vec<SandboxId>,
    /// Sandboxes past their deadline, or whose owner process is gone, removed.
    pub expired: Vec<SandboxId>,
    /// Sandboxes whose repair failed (logged); tried again on the next reconciliation.
    pub errors: Vec<SandboxId>,
    /// Drivers that could not list their resources (an API server down): their sandboxes
    /// were left as they are, to the next reconciliation.
    pub unreachable_drivers: Vec<String>,
}

pub struct SandboxManager {
    drivers: Drivers,
    records: Arc<dyn RecordStore>,
    leases: Leases,
    /// Which driver runs each sandbox this process has seen, so that routing an operation
    /// needs no store read.
    routes: Mutex<HashMap<SandboxId, String>>,
    /// Creates this process has under way: reconciliation leaves them alone.
    creating: Mutex<HashSet<SandboxId>>,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl SandboxManager {
    /// A manager for this process over `drivers`, keeping records and leases in the store.
    pub fn new(
        drivers: Drivers,
        records: Arc<dyn RecordStore>,
        leases: Arc<dyn LeaseStore>,
    ) -> Result<SandboxManager> {
        drivers.default_driver()?;
        Ok(SandboxManager {
            drivers,
            records,
            leases: Leases::new(leases, process::current()?),
            routes: Mutex::new(HashMap::new()),
            creating: Mutex::new(HashSet::new()),
        })
    }

    /// This process, as records and leases name it.
    pub fn holder(&self) -> &Holder {
        self.leases.holder()
    }

    pub fn leases(&self) -> &Leases {
        &self.leases
    }

    pub fn drivers(&self) -> &Drivers {
        &self.drivers
    }

    async fn lock(&self) -> Result<LeaseGuard> {
        self.leases.acquire(SANDBOXES_LEASE, LEASE_WAIT).await
    }

    /// Gives `guard` up; a failed release only delays the next holder (the lease expires),
    /// so it is logged and `result`, the work's own outcome, is what the caller gets.
    async fn unlock<T>(guard: LeaseGuard, result: Result<T>) -> Result<T> {
        if let Err(e) = guard.release().await {
            tracing::warn!(error = %error_chain(&e), "could not release the sandboxes lease; it expires on its own");
        }
        result
    }

    /// Keeps this process's liveness lease fresh, so processes of other hosts sharing the
    /// store see the records it creates or owns as held by a live process. For long-lived
    /// processes (the server); the task ends with the runtime.
    pub fn keep_alive(&self) -> tokio::task::JoinHandle<()> {
        let store = self.leases.store().clone();
        let me = self.holder().clone();
        tokio::spawn(async move {
            let (name, holder) = (me.liveness_lease(), me.to_string());
            loop {
                if let Err(e) = store.acquire_lease(&name, &holder, LEASE_TTL).await {
                    tracing::warn!(error = %error_chain(&e), "could not renew this process's liveness lease");
                }
                tokio::time::sleep(LEASE_TTL / 3).await;
            }
        })
    }

    fn routes(&self) -> std::sync::MutexGuard<'_, HashMap<SandboxId, String>> {
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn creating(&self) -> std::sync::MutexGuard<'_, HashSet<SandboxId>> {
        self.creating.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub async fn get(&self, id: &SandboxId) -> Result<SandboxRecord> {
        let rec = self
            .records
            .get(id)
            .await?
            .ok_or_else(|| Error::NotFound(id.clone()))?;
        self.routes().insert(rec.id.clone(), rec.driver.clone());
        Ok(rec)
    }

    pub async fn list(&self) -> Result<Vec<SandboxRecord>> {
        let all = self.records.list().await?;
        let mut routes = self.routes();
        routes.clear();
        routes.extend(all.iter().map(|r| (r.id.clone(), r.driver.clone())));
        Ok(all)
    }

    /// The driver that runs `id`: with one driver registered, that one; else as its record
    /// says (remembered, so a sandbox's operations read its record once).
    pub async fn driver_of(&self, id: &SandboxId) -> Result<&Arc<dyn Driver>> {
        let known = self.routes().get(id).cloned();
        let name = match known {
            Some(name) => name,
            None => match self.get(id).await {
                Ok(rec) => rec.driver,
                // No record: the only driver, if there is one, answers for itself.
                Err(Error::NotFound(_)) if self.drivers.only().is_some() => {
                    return Ok(self.drivers.only().expect("checked"));
                }
                Err(e) => return Err(e),
            },
        };
        // A record of a driver this process does not run (the installation switched
        // drivers) is not handed to another one.
        self.drivers.get(&name)
    }

    /// A connection to `id`'s agent.
    pub async fn agent(&self, id: &SandboxId, timeout: Duration) -> Result<AgentClient> {
        self.driver_of(id).await?.agent(id, timeout).await
    }

    /// Whether `id`'s init process lives; `false` for a sandbox without a record.
    pub async fn is_running(&self, id: &SandboxId) -> Result<bool> {
        match self.driver_of(id).await {
            Ok(d) => d.is_running(id).await,
            Err(Error::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Marks the warm pool member `id` claimed where its driver keeps such marks
    /// ([`Driver::claim`]).
    pub async fn claim(&self, id: &SandboxId) -> Result<()> {
        self.driver_of(id).await?.claim(id).await
    }

    /// Resolves once `id`'s init process has exited.
    pub async fn wait_exited(&self, id: &SandboxId) -> Result<()> {
        self.driver_of(id).await?.wait_exited(id).await
    }

    /// Kills every process of the sandbox but its init; how many were killed.
    pub async fn kill_processes(&self, id: &SandboxId) -> Result<usize> {
        self.driver_of(id).await?.kill_processes(id).await
    }

    pub async fn stats(&self, id: &SandboxId) -> Result<Stats> {
        self.driver_of(id).await?.stats(id).await
    }

    /// Creates and starts a sandbox; returns its record in `running`.
    pub async fn create(&self, req: CreateRequest) -> Result<SandboxRecord> {
        let driver = match &req.driver {
            Some(name) => self.drivers.get(name)?,
            None => self.drivers.default_driver()?,
        };
        let id = req.id.clone().unwrap_or_else(SandboxId::generate);
        let spec = SandboxSpec {
            id: id.clone(),
            image: req.image.clone(),
            limits: req.limits.clone(),
            hostname: req.hostname.clone(),
            env: req.env.clone(),
            playground: req.playground.clone(),
            pool: req.pool.clone(),
        };
        driver.validate(&spec).await?;
        let now = now_ms();
        let rec = SandboxRecord {
            id: id.clone(),
            image: req.image,
            limits: req.limits,
            state: SandboxState::Creating,
            reason: None,
            hostname: req.hostname,
            created_at_ms: now,
            deadline_ms: now.saturating_add(req.ttl.as_millis() as u64),
            network: NetworkInfo::default(),
            driver: driver.name().to_owned(),
            creator: Some(self.holder().clone()),
            owner: req.owner,
            owner_process: req.owner_process,
        };
        self.creating().insert(id.clone());
        // Forgotten however this ends, a cancelled future included.
        let _forget = Forget(&self.creating, id);
        self.create_recorded(driver, &spec, rec).await
    }

    /// [`Self::create`] from the first write of the record on.
    async fn create_recorded(
        &self,
        driver: &Arc<dyn Driver>,
        spec: &SandboxSpec,
        mut rec: SandboxRecord,
    ) -> Result<SandboxRecord> {
        // Before any side effect: a crash from here on leaves a record to act on.
        self.records.put(&rec).await?;
        self.routes().insert(rec.id.clone(), rec.driver.clone());
        match driver.create(spec).await {
            Ok(network) => {
                rec.network = network;
                rec.state = SandboxState::Running;
            }
            Err(e) => {
                mark_failed(&mut rec, error_chain(&e));
                self.records.put(&rec).await?;
                return Err(e);
            }
        }
        rec.creator = None;
        self.records.put(&rec).await?;
        Ok(rec)
    }

    /// Stops and removes a sandbox and deletes its record. Idempotent.
    pub async fn remove(&self, id: &SandboxId) -> Result<()> {
        let guard = self.lock().await?;
        let result = self.remove_locked(&guard, id).await;
        Self::unlock(guard, result).await
    }

    /// [`Self::remove`] of a sandbox that expired with deadline `deadline_ms`, unless its
    /// record's deadline moved since (an extend stored while this waited for the lease).
    /// Whether it removed the sandbox.
    pub async fn remove_with_deadline(&self, id: &SandboxId, deadline_ms: u64) -> Result<bool> {
        let guard = self.lock().await?;
        let result = async {
            match self.records.get(id).await? {
                Some(rec) if rec.deadline_ms == deadline_ms => {
                    self.remove_locked(&guard, id).await?;
                    Ok(true)
                }
                _ => Ok(false),
            }
        }
        .await;
        Self::unlock(guard, result).await
    }

    /// [`Self::remove`] for a caller that holds the lease.
    async fn remove_locked(&self, guard: &LeaseGuard, id: &SandboxId) -> Result<()> {
        let Some(mut rec) = self.records.get(id).await? else {
            return Ok(());
        };
        if rec.state != SandboxState::Stopping {
            rec.state = SandboxState::Stopping;
            self.records.put(&rec).await?;
        }
        guard.ensure_held()?;
        self.drivers.get(&rec.driver)?.remove(id).await?;
        self.records.delete(id).await?;
        self.routes().remove(id);
        Ok(())
    }

    /// Marks a sandbox `failed` with `reason` and removes its resources; the record stays
    /// so the reason can be shown.
    pub async fn fail(&self, id: &SandboxId, reason: &str) -> Result<()> {
        let guard = self.lock().await?;
        let result = async {
            let mut rec = self.get(id).await?;
            mark_failed(&mut rec, reason.to_owned());
            self.records.put(&rec).await?;
            guard.ensure_held()?;
            self.drivers.get(&rec.driver)?.remove(id).await
        }
        .await;
        Self::unlock(guard, result).await
    }

    /// Repairs records and resources after a crash, and removes expired sandboxes, for
    /// every registered driver. Records of a driver this process does not have are left
    /// to a process that has it.
    pub async fn reconcile(&self) -> Result<ReconcileReport> {
        // One reconciliation or removal at a time across processes, so two never tear
        // down the same sandbox concurrently.
        let guard = self.lock().await?;
        let result = self.reconcile_locked(&guard).await;
        Self::unlock(guard, result).await
    }

    async fn reconcile_locked(&self, guard: &LeaseGuard) -> Result<ReconcileReport> {
        let mut report = ReconcileReport::default();
        // Resources first: a record is always written before its first resource, so every
        // id seen here has its record in the listing that follows, even when another
        // process creates a sandbox concurrently.
        let mut resources = Vec::new();
        for driver in self.drivers.iter() {
            match driver.host_resources().await {
                Ok(res) => resources.push((driver.clone(), res.ids)),
                // One driver that cannot list (its API server is down) must not stop the
                // repair of the others; its own sandboxes wait for the next round, as if
                // this process did not run that driver.
                Err(e) if self.drivers.iter().count() > 1 => {
                    tracing::warn!(driver = driver.name(), error = %error_chain(&e), "cannot list a driver's sandboxes; leaving them to the next reconciliation");
                    report.unreachable_drivers.push(driver.name().to_owned());
                }
                Err(e) => return Err(e),
            }
        }
        let records = self.records.list().await?;
        for (driver, ids) in &resources {
            for id in ids {
                if !records.iter().any(|r| &r.id == id) {
                    guard.ensure_held()?;
                    tracing::info!(sandbox.id = %id, driver = driver.name(), "removing resources that have no record");
                    match driver.remove(id).await {
                        Ok(()) => report.orphans_removed.push(id.clone()),
                        // One orphan that cannot go now must not stop the repair of the
                        // rest; the next reconciliation tries it again.
                        Err(e) => {
                            tracing::warn!(sandbox.id = %id, error = %error_chain(&e), "could not remove an orphan");
                            report.errors.push(id.clone());
                        }
                    }
                }
            }
        }
        let now = now_ms();
        for rec in records {
            let Some((driver, ids)) = resources.iter().find(|(d, _)| d.name() == rec.driver) else {
                tracing::debug!(sandbox.id = %rec.id, driver = %rec.driver, "leaving a sandbox of a driver this process does not run");
                continue;
            };
            let id = rec.id.clone();
            let has_resources = ids.contains(&id);
            if let Err(e) = self
                .reconcile_one(guard, driver, rec, has_resources, now, &mut report)
                .await
            {
                // One broken sandbox must not stop the repair of the others.
                tracing::warn!(sandbox.id = %id, error = %error_chain(&e), "reconciliation step failed");
                report.errors.push(id);
            }
        }
        Ok(report)
    }

    /// Whether `holder` is a process other than this one that still runs.
    async fn other_alive(&self, holder: &Option<Holder>) -> Result<Option<bool>> {
        match holder {
            Some(h) if h == self.holder() => Ok(None),
            Some(h) => Ok(Some(process::alive(h, self.leases.store().as_ref()).await?)),
            None => Ok(None),
        }
    }

    async fn reconcile_one(
        &self,
        guard: &LeaseGuard,
        driver: &Arc<dyn Driver>,
        mut rec: SandboxRecord,
        has_resources: bool,
        now: u64,
        report: &mut ReconcileReport,
    ) -> Result<()> {
        guard.ensure_held()?;
        // `rec` comes from a listing made before any of these checks: a create that
        // finished (and whose creator exited) since then would look interrupted. Decide on
        // a record read after the creator was seen dead; a dead creator writes no more.
        let busy = loop {
            let busy = self.other_alive(&rec.creator).await? == Some(true)
                || self.creating().contains(&rec.id);
            let Some(fresh) = self.records.get(&rec.id).await? else {
                return Ok(());
            };
            if busy || fresh == rec {
                break busy;
            }
            rec = fresh;
        };
        match rec.state {
            SandboxState::Creating if busy => return Ok(()),
            SandboxState::Stopping | SandboxState::Removed => {
                return self.remove_locked(guard, &rec.id).await
            }
            SandboxState::Failed => {
                // Failed sandboxes keep their record (and reason) but no resources, until
                // their deadline (at most `FAILED_KEPT` after the failure).
                if now > rec.deadline_ms {
                    self.remove_locked(guard, &rec.id).await?;
                    report.expired.push(rec.id);
                } else if has_resources {
                    driver.remove(&rec.id).await?;
                }
                return Ok(());
            }
            _ => {}
        }
        let abandoned = self.other_alive(&rec.owner_process).await? == Some(false);
        if now > rec.deadline_ms || abandoned {
            self.remove_locked(guard, &rec.id).await?;
            report.expired.push(rec.id);
            return Ok(());
        }
        if rec.state == SandboxState::Running && driver.is_running(&rec.id).await? {
            return Ok(());
        }
        let reason = match rec.state {
            SandboxState::Creating => "creation was interrupted",
            _ => "the sandbox's processes are gone",
        };
        mark_failed(&mut rec, reason.into());
        self.records.put(&rec).await?;
        report.marked_failed.push(rec.id.clone());
        driver.remove(&rec.id).await
    }

    /// Time left before `rec`'s deadline (for a failed sandbox: before its record goes).
    pub fn remaining(rec: &SandboxRecord) -> Duration {
        Duration::from_millis(rec.deadline_ms.saturating_sub(now_ms()))
    }
}

/// How long the record of a failed sandbox stays listed (with its reason) at most.
pub const FAILED_KEPT: Duration = Duration::from_secs(3600);

/// Marks `rec` failed for `reason`; its record goes at its deadline, which is brought
/// forward to [`FAILED_KEPT`] from now.
fn mark_failed(rec: &mut SandboxRecord, reason: String) {
    rec.state = SandboxState::Failed;
    rec.reason = Some(reason);
    rec.creator = None;
    rec.deadline_ms = rec
        .deadline_ms
        .min(now_ms().saturating_add(FAILED_KEPT.as_millis() as u64));
}
