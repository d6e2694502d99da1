//! The warm pool: per configured profile (image + limits), sandboxes started ahead of time
//! so that a matching create only has to claim one.
//!
//! A pool sandbox is an ordinary sandbox record whose owner is [`Owner::Pool`] (stored as
//! `pool:<profile>`); [`WarmPool::claim`] rewrites the owner, creation time and deadline
//! in one compare-and-swap of the record ([`RecordStore::put_if_owner`] from
//! `pool:<profile>` and `running`), so a crash either leaves it in the pool (adopted again,
//! [`WarmPool::adopt`]) or with its new owner, and of several replicas claiming one
//! sandbox exactly one gets it. A pool sandbox is retired the same way: swapped to
//! `stopping` first, so nobody claims it while it goes.
//!
//! [`WarmPool`] owns each replica's in-memory queue of ready ids, made again from the
//! records every 2 s ([`WarmPool::sync`], so every replica can claim what another
//! started), and the refill loop of one profile ([`WarmPool::refill`]), which only the
//! holder of the store lease `pool:<profile>` runs ([`crate::control`]).
//! [`crate::sandboxes::Sandboxes`] decides when to claim or adopt, and retires the pool
//! sandboxes that cannot be used.
//!
//! [`RecordStore::put_if_owner`]: sandlab_core::RecordStore::put_if_owner

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use sandlab_core::{Limits, SandboxId, SandboxRecord, SandboxState, StoreError};
use sandlab_runtime::manager::{now_ms, CreateRequest, SandboxManager};
use sandlab_store::Store;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::PoolProfile;
use crate::metrics as m;

/// Pool sandboxes carry this deadline in their record, so that if the server never comes
/// back, any reconciliation (`sandlab sandbox ls`) eventually removes them.
const POOL_RECORD_TTL: Duration = Duration::from_secs(24 * 3600);
/// A pool sandbox this close to its record's deadline is not handed out (it is retired
/// instead): reconciliation removes it at that deadline, and must not race a claim.
const CLAIM_MARGIN: Duration = Duration::from_secs(3600);
/// How long a refill waits after a claim woke it, so the claimer is answered first.
const REFILL_AFTER_CLAIM: Duration = Duration::from_millis(25);
/// Longest pause between two refill attempts after failures.
const MAX_REFILL_BACKOFF: Duration = Duration::from_secs(30);

/// Who a sandbox record belongs to: a user, or a pool profile until it is claimed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Owner {
    /// A user, by id.
    User(String),
    /// The warm pool's profile of this name.
    Pool(String),
}

impl Owner {
    /// How a pool owner is stored: this prefix, then the profile's name.
    const POOL_PREFIX: &'static str = "pool:";

    /// The owner a record's `owner` field names.
    pub fn parse(stored: &str) -> Owner {
        match stored.strip_prefix(Owner::POOL_PREFIX) {
            Some(profile) => Owner::Pool(profile.to_owned()),
            None => Owner::User(stored.to_owned()),
        }
    }

    /// The owner of `rec`, if it has one.
    pub fn of(rec: &SandboxRecord) -> Option<Owner> {
        rec.owner.as_deref().map(Owner::parse)
    }

    /// The pool profile owning the sandbox, if it is a pool sandbox.
    pub fn pool_profile(&self) -> Option<&str> {
        match self {
            Owner::Pool(profile) => Some(profile),
            Owner::User(_) => None,
        }
    }
}

/// The stored form.
impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::User(id) => f.write_str(id),
            Owner::Pool(profile) => write!(f, "{}{profile}", Owner::POOL_PREFIX),
        }
    }
}

/// Why a ready pool sandbox could not be handed to a user (it is then removed).
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("Its record is gone")]
    Gone,
    #[error("It is {state} and owned by {owner:?}")]
    Taken {
        state: SandboxState,
        owner: Option<String>,
    },
    #[error("Its processes are gone")]
    Dead,
    #[error("Its time in the pool is nearly up")]
    Stale,
    #[error("Cannot read or write its record")]
    Store(#[from] StoreError),
    #[error("Cannot tell whether it runs")]
    Runtime(#[from] sandlab_runtime::Error),
}

pub struct WarmPool {
    profiles: Vec<PoolProfile>,
    ready: Mutex<HashMap<String, VecDeque<SandboxId>>>,
    /// When this replica pushed each of its recent sandboxes: a listing read before the
    /// push does not have them yet, and [`Self::sync`] must not drop them for that.
    pushed: Mutex<HashMap<SandboxId, std::time::Instant>>,
    /// Wakes every refill loop (each then looks at its own profile) when a claim ends or
    /// another replica's claims are seen, so the loops top up.
    pub wake: Notify,
}

/// How long a sandbox this replica pushed stays in its queue without a listing showing it.
const PUSH_GRACE: Duration = Duration::from_secs(10);

impl WarmPool {
    pub fn new(profiles: Vec<PoolProfile>) -> WarmPool {
        for p in &profiles {
            metrics::gauge!(m::POOL_TARGET, "profile" => p.name.clone()).set(p.size as f64);
            metrics::gauge!(m::POOL_READY, "profile" => p.name.clone()).set(0.0);
        }
        WarmPool {
            profiles,
            ready: Mutex::new(HashMap::new()),
            pushed: Mutex::new(HashMap::new()),
            wake: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<SandboxId>>> {
        // Poisoning only means a panic elsewhere between two queue operations.
        self.ready.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn profiles(&self) -> &[PoolProfile] {
        &self.profiles
    }

    pub fn profile(&self, name: &str) -> Option<&PoolProfile> {
        self.profiles.iter().find(|p| p.name == name)
    }

    /// The profile a create of `image` with `limits` can be served from (whatever its
    /// ttl: a claim sets the claimer's).
    pub fn matching(&self, image: &str, limits: &Limits) -> Option<&PoolProfile> {
        self.profiles
            .iter()
            .find(|p| p.size > 0 && p.image == image && p.limits == *limits)
    }

    /// Whether a record of `image` and `limits` fits profile `name` as it is configured now.
    pub fn fits(&self, name: &str, image: &str, limits: &Limits) -> bool {
        self.profile(name)
            .is_some_and(|p| p.image == image && p.limits == *limits)
    }

    /// Takes the oldest ready sandbox of `profile`, to be [`claim`](Self::claim)ed next:
    /// the refill is woken when that claim ends, not before, so the claimer does not
    /// share the CPUs with a new member's start.
    pub fn take(&self, profile: &str) -> Option<SandboxId> {
        let mut map = self.lock();
        let q = map.get_mut(profile)?;
        let id = q.pop_front();
        metrics::gauge!(m::POOL_READY, "profile" => profile.to_owned()).set(q.len() as f64);
        id
    }

    /// Adds a started sandbox to `profile`'s queue (once).
    pub fn push(&self, profile: &str, id: SandboxId) {
        {
            let mut pushed = self.pushed.lock().unwrap_or_else(|p| p.into_inner());
            pushed.retain(|_, at| at.elapsed() < PUSH_GRACE);
            pushed.insert(id.clone(), std::time::Instant::now());
        }
        let mut map = self.lock();
        let q = map.entry(profile.to_owned()).or_default();
        if !q.contains(&id) {
            q.push_back(id);
        }
        metrics::gauge!(m::POOL_READY, "profile" => profile.to_owned()).set(q.len() as f64);
    }

    /// Removes `id` from whichever queue holds it; whether it was there.
    pub fn remove(&self, id: &SandboxId) -> bool {
        let mut map = self.lock();
        for (name, q) in map.iter_mut() {
            if let Some(i) = q.iter().position(|x| x == id) {
                q.remove(i);
                metrics::gauge!(m::POOL_READY, "profile" => name.clone()).set(q.len() as f64);
                return true;
            }
        }
        false
    }

    pub fn ready(&self, profile: &str) -> usize {
        self.lock().get(profile).map_or(0, VecDeque::len)
    }

    /// Each profile that is short of its size, with how many it lacks.
    pub fn deficits(&self) -> Vec<(PoolProfile, usize)> {
        let map = self.lock();
        self.profiles
            .iter()
            .filter_map(|p| {
                let have = map.get(&p.name).map_or(0, VecDeque::len);
                (have < p.size).then(|| (p.clone(), p.size - have))
            })
            .collect()
    }

    /// Makes each queue the ready pool sandboxes of its profile among `records` (running,
    /// owned by the profile, fitting it), keeping the order of those it had: what other
    /// replicas started comes in, what they claimed or retired goes. Wakes the refill when
    /// a queue shrank.
    pub fn sync(&self, records: &[SandboxRecord]) {
        let mut shrank = false;
        {
            let pushed = self.pushed.lock().unwrap_or_else(|p| p.into_inner());
            let recent =
                |id: &SandboxId| pushed.get(id).is_some_and(|at| at.elapsed() < PUSH_GRACE);
            let mut map = self.lock();
            for p in &self.profiles {
                let ready: Vec<&SandboxId> = records
                    .iter()
                    .filter(|r| {
                        r.state == SandboxState::Running
                            && Owner::of(r).is_some_and(|o| o.pool_profile() == Some(&p.name))
                            && r.image == p.image
                            && r.limits == p.limits
                    })
                    .map(|r| &r.id)
                    .collect();
                let q = map.entry(p.name.clone()).or_default();
                let before = q.len();
                // A claim or retirement elsewhere shows as a record no longer ready; one
                // missing altogether may just be newer than the listing.
                q.retain(|id| {
                    ready.contains(&id) || (recent(id) && !records.iter().any(|r| &r.id == id))
                });
                shrank |= q.len() < before;
                for id in ready {
                    if !q.contains(id) {
                        q.push_back(id.clone());
                    }
                }
                metrics::gauge!(m::POOL_READY, "profile" => p.name.clone()).set(q.len() as f64);
            }
        }
        if shrank {
            self.wake.notify_waiters();
        }
    }

    /// Keeps `profile` at its size until `stop`: creates what is missing, backs off after
    /// failures, and otherwise sleeps until a sandbox is taken. Run by the holder of the
    /// profile's lease only.
    pub async fn refill(&self, manager: &SandboxManager, profile: &str, stop: CancellationToken) {
        let shutdown = stop;
        let mut backoff = Duration::from_millis(500);
        loop {
            let wake = self.wake.notified();
            let mut failed = false;
            for (profile, _) in self
                .deficits()
                .into_iter()
                .filter(|(p, _)| p.name == profile)
            {
                if shutdown.is_cancelled() {
                    return;
                }
                match create_member(manager, &profile).await {
                    Ok(id) => self.push(&profile.name, id),
                    Err(e) => {
                        metrics::counter!(m::POOL_REFILL_FAILURES, "profile" => profile.name.clone())
                            .increment(1);
                        tracing::warn!(pool.profile = %profile.name, error = %sandlab_core::error_chain(&e), "warm pool refill failed");
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
            if self.deficits().iter().any(|(p, _)| p.name == profile) {
                continue;
            }
            tokio::select! {
                _ = wake => {}
                _ = shutdown.cancelled() => return,
            }
            // Woken by a claim: its request still writes its audit record and answers,
            // which took 5-10 ms instead of under 1 ms beside a new member's start on two
            // cores (`bench pool`). The pool is full again this much later.
            tokio::select! {
                _ = tokio::time::sleep(REFILL_AFTER_CLAIM) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// Hands pool sandbox `id` of `profile` to `owner` with `ttl` from now: one
    /// compare-and-swap of owner, creation time and deadline, which fails with
    /// [`ClaimError::Taken`] when another replica claimed or retired it first. The new
    /// record.
    pub async fn claim(
        &self,
        store: &dyn Store,
        manager: &SandboxManager,
        id: &SandboxId,
        profile: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<SandboxRecord, ClaimError> {
        // However this ends (or is dropped), the refill tops the pool up after it.
        struct WakeRefill<'a>(&'a Notify);
        impl Drop for WakeRefill<'_> {
            fn drop(&mut self) {
                self.0.notify_waiters();
            }
        }
        let _refill = WakeRefill(&self.wake);
        let mut rec = store.get(id).await?.ok_or(ClaimError::Gone)?;
        let pooled = Owner::of(&rec).is_some_and(|o| o.pool_profile() == Some(profile));
        if rec.state != SandboxState::Running || !pooled {
            return Err(ClaimError::Taken {
                state: rec.state,
                owner: rec.owner,
            });
        }
        let now = now_ms();
        if rec.deadline_ms < now.saturating_add(CLAIM_MARGIN.as_millis() as u64) {
            return Err(ClaimError::Stale);
        }
        if !manager.is_running(id).await? {
            return Err(ClaimError::Dead);
        }
        // A driver that marks pool members (Kubernetes relabels the Pod, guarded by its
        // resourceVersion) is told first; losing that race is losing the claim.
        match manager.claim(id).await {
            Ok(()) => {}
            Err(sandlab_runtime::Error::Conflict(_)) => {
                let now = store.get(id).await?.ok_or(ClaimError::Gone)?;
                return Err(ClaimError::Taken {
                    state: now.state,
                    owner: now.owner,
                });
            }
            Err(e) => return Err(e.into()),
        }
        let pool_owner = rec.owner.clone();
        rec.owner = Some(Owner::User(owner.to_owned()).to_string());
        rec.created_at_ms = now;
        rec.deadline_ms = now.saturating_add(ttl.as_millis() as u64);
        if !store
            .put_if_owner(&rec, pool_owner.as_deref(), SandboxState::Running)
            .await?
        {
            let now = store.get(id).await?.ok_or(ClaimError::Gone)?;
            return Err(ClaimError::Taken {
                state: now.state,
                owner: now.owner,
            });
        }
        Ok(rec)
    }

    /// Takes a running sandbox of `profile` (one that survived a restart, or that the
    /// profile's previous lease holder started) into the pool if it still fits the profile
    /// and the pool wants it; `false`: nobody will claim it.
    pub fn adopt(&self, profile: &str, rec: &SandboxRecord) -> bool {
        let fits = self.fits(profile, &rec.image, &rec.limits);
        let size = self.profile(profile).map_or(0, |p| p.size);
        let place = self
            .lock()
            .get(profile)
            .and_then(|q| q.iter().position(|x| *x == rec.id));
        // Beyond the size (two lease holders overlapped, or the size shrank): not wanted.
        let wanted = match place {
            Some(i) => i < size,
            None => self.ready(profile) < size,
        };
        if !wanted && place.is_some() {
            self.remove(&rec.id);
        }
        if rec.state == SandboxState::Running && fits && wanted {
            self.push(profile, rec.id.clone());
            return true;
        }
        false
    }

    /// Every ready id (for shutdown reports and tests).
    pub fn all_ready(&self) -> Vec<SandboxId> {
        self.lock().values().flatten().cloned().collect()
    }
}

/// Starts one sandbox for `profile`, owned by the pool.
async fn create_member(
    manager: &SandboxManager,
    profile: &PoolProfile,
) -> sandlab_runtime::Result<SandboxId> {
    let rec = manager
        .create(CreateRequest {
            image: profile.image.clone(),
            limits: profile.limits.clone(),
            ttl: POOL_RECORD_TTL,
            owner: Some(Owner::Pool(profile.name.clone()).to_string()),
            hostname: Some(crate::sandboxes::API_HOSTNAME.to_owned()),
            pool: Some(profile.name.clone()),
            ..CreateRequest::default()
        })
        .await?;
    Ok(rec.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(name: &str, size: usize) -> PoolProfile {
        PoolProfile {
            name: name.into(),
            image: "debian".into(),
            limits: Limits::default(),
            size,
        }
    }

    #[test]
    fn matching_take_and_deficits() {
        let pool = WarmPool::new(vec![profile("a", 2), profile("b", 0)]);
        let mut limits = Limits::default();
        assert_eq!(pool.matching("debian", &limits).unwrap().name, "a");
        assert!(pool.matching("alpine", &limits).is_none());
        limits.memory = sandlab_core::ByteSize::mib(100);
        assert!(pool.matching("debian", &limits).is_none());
        assert_eq!(pool.deficits().len(), 1);
        let (x, y) = (SandboxId::generate(), SandboxId::generate());
        pool.push("a", x.clone());
        pool.push("a", y.clone());
        assert!(pool.deficits().is_empty());
        assert_eq!(pool.take("a"), Some(x));
        assert!(pool.remove(&y));
        assert_eq!(pool.take("a"), None);
        assert_eq!(pool.deficits()[0].1, 2);
    }

    #[test]
    fn owners_keep_their_stored_form() {
        let pool = Owner::Pool("a".into());
        assert_eq!(pool.to_string(), "pool:a");
        assert_eq!(Owner::parse("pool:a"), pool);
        assert_eq!(pool.pool_profile(), Some("a"));
        let user = Owner::parse("usr-abc");
        assert_eq!(user, Owner::User("usr-abc".into()));
        assert_eq!(user.to_string(), "usr-abc");
        assert_eq!(user.pool_profile(), None);
    }
}
