//! The sandbox lifecycle over a [`Driver`] and a [`RecordStore`]: the record is stored
//! before the first side effect, every state change goes through here, and
//! [`SandboxManager::reconcile`] repairs both directions after a crash (host resources
//! with no record are removed; records whose resources are gone are marked failed).

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sandlab_core::{Limits, NetworkMode, SandboxId, SandboxState};

use crate::error::{Error, Result};
use crate::network::SLOTS;
use crate::records::{RecordStore, SandboxRecord};
use crate::{Driver, NetworkInfo, SandboxSpec};

/// What a request asks for.
#[derive(Clone, Debug)]
pub struct CreateRequest {
    pub image: String,
    pub limits: Limits,
    pub hostname: Option<String>,
    pub env: Vec<String>,
    pub owner: Option<String>,
    /// A process whose exit ends the sandbox (see [`SandboxRecord::owner_pid`]).
    pub owner_pid: Option<u32>,
    /// The playground network to join, if any.
    pub private: Option<crate::PrivateNet>,
}

/// What reconciliation found and did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReconcileReport {
    /// Host resources that had no record and were removed.
    pub orphans_removed: Vec<SandboxId>,
    /// Records whose sandbox was gone, now `failed`.
    pub marked_failed: Vec<SandboxId>,
    /// Sandboxes past their deadline, or whose owner process is gone, removed.
    pub expired: Vec<SandboxId>,
    /// Sandboxes whose repair failed (logged); tried again on the next reconciliation.
    pub errors: Vec<SandboxId>,
}

pub struct SandboxManager {
    driver: Arc<dyn Driver>,
    store: Arc<dyn RecordStore>,
    lock_path: PathBuf,
    /// Serialises this process's tasks before they take the cross-process `flock`: two
    /// tasks of one process would otherwise block a runtime thread each on the same lock.
    local: tokio::sync::Mutex<()>,
}

/// The manager's lock: the in-process mutex, then the cross-process file lock.
struct Locked<'a> {
    _file: FileLock,
    _local: tokio::sync::MutexGuard<'a, ()>,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Whether `pid` is a live process (a zombie, killed but not yet reaped, is not).
fn pid_alive(pid: u32) -> bool {
    if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_err() {
        return false;
    }
    // `/proc/PID/stat` is `pid (comm) S ...`; comm may hold spaces or parentheses.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_none_or(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

impl SandboxManager {
    pub fn new(
        driver: Arc<dyn Driver>,
        store: Arc<dyn RecordStore>,
        lock_path: PathBuf,
    ) -> SandboxManager {
        SandboxManager {
            driver,
            store,
            lock_path,
            local: tokio::sync::Mutex::new(()),
        }
    }

    /// Takes the manager's lock without blocking a runtime thread: another process may
    /// hold the file lock for a whole reconciliation.
    async fn lock(&self) -> Result<Locked<'_>> {
        let local = self.local.lock().await;
        let path = self.lock_path.clone();
        let file = tokio::task::spawn_blocking(move || FileLock::acquire(&path))
            .await
            .map_err(|e| Error::Host(format!("The lock task failed: {e}")))??;
        Ok(Locked {
            _file: file,
            _local: local,
        })
    }

    pub fn driver(&self) -> &Arc<dyn Driver> {
        &self.driver
    }

    pub async fn get(&self, id: &SandboxId) -> Result<SandboxRecord> {
        self.store
            .get(id)
            .await?
            .ok_or_else(|| Error::NotFound(id.clone()))
    }

    pub async fn list(&self) -> Result<Vec<SandboxRecord>> {
        self.store.list().await
    }

    /// Creates and starts a sandbox; returns its record in `running`.
    pub async fn create(&self, req: CreateRequest) -> Result<SandboxRecord> {
        let id = SandboxId::generate();
        let spec = SandboxSpec {
            id: id.clone(),
            image: req.image.clone(),
            limits: req.limits.clone(),
            hostname: req.hostname.clone(),
            env: req.env.clone(),
            private: req.private.clone(),
        };
        self.driver.validate(&spec).await?;
        let now = now_ms();
        let mut rec = SandboxRecord {
            id: id.clone(),
            image: req.image.clone(),
            limits: req.limits.clone(),
            state: SandboxState::Creating,
            reason: None,
            hostname: req.hostname.clone(),
            created_at_ms: now,
            deadline_ms: now.saturating_add(req.limits.ttl.as_millis() as u64),
            network: NetworkInfo::default(),
            driver: self.driver.name().to_owned(),
            creator_pid: Some(std::process::id()),
            owner: req.owner.clone(),
            owner_pid: req.owner_pid,
        };
        {
            // Slot allocation and the first write of the record happen under one lock so two
            // processes never pick the same egress slot.
            let _guard = self.lock().await?;
            if req.limits.network == NetworkMode::Egress {
                let slot = self.free_slot().await?;
                rec.network.slot = Some(slot);
                if let Some((v4, v6)) = self.driver.slot_addresses(slot) {
                    rec.network.ipv4 = Some(v4);
                    rec.network.ipv6 = Some(v6);
                }
            }
            self.store.put(&rec).await?;
        }
        if let Err(e) = self.driver.create(&spec, &rec.network).await {
            rec.state = SandboxState::Failed;
            rec.reason = Some(describe_error(&e));
            rec.creator_pid = None;
            self.store.put(&rec).await?;
            return Err(e);
        }
        rec.state = SandboxState::Running;
        rec.creator_pid = None;
        self.store.put(&rec).await?;
        Ok(rec)
    }

    async fn free_slot(&self) -> Result<u32> {
        let used: std::collections::HashSet<u32> = self
            .store
            .list()
            .await?
            .iter()
            .filter_map(|r| r.network.slot)
            .collect();
        (1..SLOTS)
            .find(|s| !used.contains(s))
            .ok_or(Error::PoolExhausted)
    }

    /// Stops and removes a sandbox and deletes its record. Idempotent.
    pub async fn remove(&self, id: &SandboxId) -> Result<()> {
        let _guard = self.lock().await?;
        self.remove_locked(id).await
    }

    /// [`Self::remove`] for a caller that holds the lock.
    async fn remove_locked(&self, id: &SandboxId) -> Result<()> {
        if let Some(mut rec) = self.store.get(id).await? {
            if rec.state != SandboxState::Stopping {
                rec.state = SandboxState::Stopping;
                self.store.put(&rec).await?;
            }
        }
        self.driver.remove(id).await?;
        self.store.delete(id).await
    }

    /// Marks a sandbox `failed` with `reason` and removes its host resources; the record
    /// stays so the reason can be shown.
    pub async fn fail(&self, id: &SandboxId, reason: &str) -> Result<()> {
        let _guard = self.lock().await?;
        let mut rec = self.get(id).await?;
        rec.state = SandboxState::Failed;
        rec.reason = Some(reason.to_owned());
        rec.creator_pid = None;
        self.store.put(&rec).await?;
        self.driver.remove(id).await
    }

    /// Repairs records and host resources after a crash, and removes expired sandboxes.
    pub async fn reconcile(&self) -> Result<ReconcileReport> {
        // One reconciliation or removal at a time across processes, so two never tear
        // down the same sandbox concurrently.
        let _guard = self.lock().await?;
        let mut report = ReconcileReport::default();
        // Host resources first: a record is always written before its first resource, so
        // every id seen here has its record in the listing that follows, even when another
        // process creates a sandbox concurrently.
        let host = self.driver.host_resources().await?;
        let records = self.store.list().await?;
        for id in &host.ids {
            if !records.iter().any(|r| &r.id == id) {
                tracing::info!(sandbox.id = %id, "removing host resources that have no record");
                self.driver.remove(id).await?;
                report.orphans_removed.push(id.clone());
            }
        }
        let now = now_ms();
        for rec in records {
            let id = rec.id.clone();
            if let Err(e) = self
                .reconcile_one(rec, host.ids.contains(&id), now, &mut report)
                .await
            {
                // One broken sandbox must not stop the repair of the others.
                tracing::warn!(sandbox.id = %id, error = %describe_error(&e), "reconciliation step failed");
                report.errors.push(id);
            }
        }
        Ok(report)
    }

    async fn reconcile_one(
        &self,
        mut rec: SandboxRecord,
        has_resources: bool,
        now: u64,
        report: &mut ReconcileReport,
    ) -> Result<()> {
        let busy = rec
            .creator_pid
            .is_some_and(|p| p != std::process::id() && pid_alive(p));
        match rec.state {
            SandboxState::Creating if busy => return Ok(()),
            SandboxState::Stopping | SandboxState::Removed => {
                return self.remove_locked(&rec.id).await
            }
            SandboxState::Failed => {
                // Failed sandboxes keep their record (and reason) but no host resources.
                if has_resources {
                    self.driver.remove(&rec.id).await?;
                }
                return Ok(());
            }
            _ => {}
        }
        let abandoned = rec
            .owner_pid
            .is_some_and(|p| p != std::process::id() && !pid_alive(p));
        if now > rec.deadline_ms || abandoned {
            self.remove_locked(&rec.id).await?;
            report.expired.push(rec.id);
            return Ok(());
        }
        if rec.state == SandboxState::Running && self.driver.is_running(&rec.id).await? {
            return Ok(());
        }
        rec.reason = Some(match rec.state {
            SandboxState::Creating => "creation was interrupted".into(),
            _ => "the sandbox's processes are gone".into(),
        });
        rec.state = SandboxState::Failed;
        rec.creator_pid = None;
        self.store.put(&rec).await?;
        report.marked_failed.push(rec.id.clone());
        self.driver.remove(&rec.id).await
    }

    /// Time left before `rec`'s deadline.
    pub fn remaining(rec: &SandboxRecord) -> Duration {
        Duration::from_millis(rec.deadline_ms.saturating_sub(now_ms()))
    }
}

pub fn describe_error(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// An exclusive `flock` held until dropped.
struct FileLock {
    _file: std::fs::File,
}

impl FileLock {
    fn acquire(path: &std::path::Path) -> Result<FileLock> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(Error::io(path))?;
        // SAFETY: flock on a descriptor we own; blocks until the lock is ours.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(Error::Io {
                path: path.to_owned(),
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(FileLock { _file: file })
    }
}
