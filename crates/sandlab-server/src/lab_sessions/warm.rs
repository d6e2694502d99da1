//! Warm lab sessions (`[[lab_pool]]`): sessions of a lab set up ahead of time, so that
//! starting that lab only has to hand one over. A Kubernetes playground takes 20 s or more
//! to bring up; a warm one is ready the moment it is claimed.
//!
//! A warm session is an ordinary session whose owner, and its nodes' owner, is the pool
//! owner `pool:lab:<slug>` ([`warm_owner`]): its nodes are pool sandboxes (not reaped,
//! counted against nobody, never handed out by the sandbox pool, whose profile names
//! cannot hold a `:`). It is set up as any session is (nodes, cluster, init tasks) and
//! then parked ([`LabSessions::park`]): ready, no task checked, until a start of its lab
//! claims it ([`LabSessions::claim_warm`]) or its time in the pool ([`WARM_TTL`]) is up.
//!
//! A claim first hands every node to the learner (the sandbox pool's compare-and-swap of
//! owner and deadline), then stores the session under the learner with the learner's
//! deadline, their done tasks done, and the checker starts. A crash between the two leaves
//! a warm session with nodes someone else owns: on restart it is ended with its nodes
//! (nothing was acknowledged). Every warm session that survives a restart whole and ready
//! is parked again; one that was still being set up is ended, and the refill makes a new
//! one.
//!
//! Each replica keeps its own pools (a session runs on the replica that set it up), and
//! fills them one session at a time: a cluster's bring-up takes the host's CPUs.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sandlab_core::{SandboxId, SandboxState};
use sandlab_lab::Lab;
use sandlab_runtime::manager::now_ms;
use sandlab_store::{HandOver, LabSessionState};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{LabSessions, Live, Result};
use crate::config::LabPool;
use crate::metrics as m;
use crate::pool::Owner;

/// The deadline of a warm session and of its nodes' records (what reconciliation goes by
/// if the server never comes back).
pub(super) const WARM_TTL: Duration = Duration::from_secs(20 * 3600);
/// A parked session is replaced this long before its deadline: the sandbox pool's claim
/// refuses a node within an hour of its record's deadline.
const PARK_MARGIN: Duration = Duration::from_secs(2 * 3600);
/// A warm node no open session names is a leftover once it is this old (a set-up names
/// each node the moment it runs) or failed: the leader removes it.
const STRAY_GRACE: Duration = Duration::from_secs(120);
/// How often the leader looks for such nodes.
const SWEEP_EVERY: Duration = Duration::from_secs(30);
/// How often the refill looks at its pools when nothing wakes it (a lab that appeared or
/// changed in the catalogue).
const REFILL_TICK: Duration = Duration::from_secs(2);
/// The first and the longest pause of a pool whose warm session failed to set up.
const FIRST_BACKOFF: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// Prefix of the sandbox pool profile a warm session's nodes are owned by.
const PROFILE_PREFIX: &str = "lab:";

/// The pool profile owning lab `slug`'s warm sessions' nodes: `lab:<slug>`.
fn profile(slug: &str) -> String {
    format!("{PROFILE_PREFIX}{slug}")
}

/// The owner of lab `slug`'s warm sessions and of their nodes until one is claimed.
pub fn warm_owner(slug: &str) -> String {
    Owner::Pool(profile(slug)).to_string()
}

/// The lab whose warm session `owner` owns, if it is a warm session's owner.
pub fn warm_lab(owner: &str) -> Option<String> {
    match Owner::parse(owner) {
        Owner::Pool(p) => p.strip_prefix(PROFILE_PREFIX).map(str::to_owned),
        Owner::User(_) => None,
    }
}

/// This replica's queues of parked warm sessions, per lab.
pub(super) struct WarmSessions {
    pools: Vec<LabPool>,
    ready: Mutex<HashMap<String, VecDeque<String>>>,
    /// Woken when a warm session is claimed or ends, so the refill tops its pool up.
    wake: Notify,
    /// When the leader last looked for stray warm nodes.
    swept: Mutex<Option<std::time::Instant>>,
}

impl WarmSessions {
    pub(super) fn new(pools: Vec<LabPool>) -> WarmSessions {
        for p in &pools {
            metrics::gauge!(m::LAB_POOL_TARGET, "lab" => p.lab.clone()).set(p.size as f64);
            metrics::gauge!(m::LAB_POOL_READY, "lab" => p.lab.clone()).set(0.0);
        }
        WarmSessions {
            pools,
            ready: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            swept: Mutex::new(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<String>>> {
        // Poisoning only means a panic elsewhere between two queue operations.
        self.ready.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many warm sessions of `lab` this replica keeps.
    pub(super) fn size(&self, lab: &str) -> usize {
        self.pools
            .iter()
            .find(|p| p.lab == lab)
            .map_or(0, |p| p.size)
    }

    fn gauge(lab: &str, q: &VecDeque<String>) {
        metrics::gauge!(m::LAB_POOL_READY, "lab" => lab.to_owned()).set(q.len() as f64);
    }

    /// Queues `id` for `lab` once: at the tail, or at the head (`first`: a claim that could
    /// not go on puts it back).
    fn push(&self, lab: &str, id: &str, first: bool) {
        let mut map = self.lock();
        let q = map.entry(lab.to_owned()).or_default();
        if !q.iter().any(|x| x == id) {
            if first {
                q.push_front(id.to_owned());
            } else {
                q.push_back(id.to_owned());
            }
        }
        Self::gauge(lab, q);
    }

    fn pop(&self, lab: &str) -> Option<String> {
        let mut map = self.lock();
        let q = map.get_mut(lab)?;
        let id = q.pop_front();
        Self::gauge(lab, q);
        id
    }

    fn remove(&self, id: &str) {
        let mut map = self.lock();
        for (lab, q) in map.iter_mut() {
            if let Some(i) = q.iter().position(|x| x == id) {
                q.remove(i);
                Self::gauge(lab, q);
            }
        }
        self.wake.notify_one();
    }

    /// Whether the stray warm nodes are to be looked for now: at once the first time (a
    /// restart), then every [`SWEEP_EVERY`].
    pub(super) fn sweep_due(&self) -> bool {
        let mut last = self.swept.lock().unwrap_or_else(|p| p.into_inner());
        let due = last.is_none_or(|at| at.elapsed() >= SWEEP_EVERY);
        if due {
            *last = Some(std::time::Instant::now());
        }
        due
    }

    /// The ids parked for `lab` (tests and reports).
    pub(super) fn parked(&self, lab: &str) -> Vec<String> {
        self.lock()
            .get(lab)
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }
}

impl LabSessions {
    /// The warm sessions of `lab` this replica runs, parked or being set up.
    fn warm_of(&self, lab: &str) -> Vec<Arc<Live>> {
        self.lock()
            .values()
            .filter(|l| {
                !l.cancel.is_cancelled() && warm_lab(&l.record().owner).as_deref() == Some(lab)
            })
            .cloned()
            .collect()
    }

    /// Whether one more warm session of `lab` is wanted here (its pool is not full).
    pub(super) fn warm_wanted(&self, lab: &str) -> bool {
        self.warm_of(lab).len() < self.warm.size(lab)
    }

    /// Ends warm session `live` in the background (its nodes go with it); once, however
    /// often it is asked (cancelled at once, it is no longer counted or handed out).
    fn retire(self: &Arc<Self>, live: Arc<Live>, reason: &'static str) {
        if live.cancel.is_cancelled() {
            return;
        }
        live.cancel.cancel();
        self.warm.remove(&live.record().id);
        let me = self.clone();
        tokio::spawn(async move { me.end_warm(&live, reason).await });
    }

    /// Ends warm session `live` and forgets its record: nobody was ever handed it, so
    /// there is no history to keep (a pool that keeps failing would otherwise leave a
    /// record per try).
    async fn end_warm(&self, live: &Arc<Live>, reason: &str) {
        let id = live.record().id;
        tracing::info!(session = %id, reason, "ending a warm session");
        self.end(live, reason).await;
        if let Err(e) = self.store.delete_lab_session(&id).await {
            tracing::warn!(session = %id, error = %sandlab_core::error_chain(&e), "could not delete an ended warm session");
        }
    }

    /// Hands a parked warm session of `lab` to `owner` with `ttl` from now: its nodes
    /// first (each counted against `quota` before it is claimed by a compare-and-swap from
    /// the pool owner), then the session's record (a compare-and-swap of its owner, while
    /// it is ready and this replica runs it), with the owner's done tasks done unless
    /// `fresh`. `None` when none is parked (or none could be handed over: those are
    /// ended); the quota's error when the nodes do not fit (the session stays parked).
    pub(super) async fn claim_warm(
        self: &Arc<Self>,
        lab: &Lab,
        owner: &str,
        quota: u64,
        ttl: Duration,
        fresh: bool,
    ) -> Result<Option<Arc<Live>>> {
        if self.warm.size(&lab.slug) == 0 {
            return Ok(None);
        }
        let started = std::time::Instant::now();
        let done = if fresh {
            Vec::new()
        } else {
            self.store.done_tasks(owner, &lab.slug).await?
        };
        let pool = profile(&lab.slug);
        while let Some(id) = self.warm.pop(&lab.slug) {
            self.warm.wake.notify_one();
            let Some(live) = self.get(&id, None) else {
                continue;
            };
            let rec = live.record();
            if warm_lab(&rec.owner).as_deref() != Some(lab.slug.as_str())
                || rec.state != LabSessionState::Ready
                || live.cancel.is_cancelled()
            {
                continue;
            }
            if *live.lab != *lab {
                // Set up for the lab as it was before an edit.
                self.retire(live, "The lab changed.");
                continue;
            }
            // Every node counts against the owner's quota before the first is claimed, so
            // two starts at once cannot both fit.
            let mut reserved = Vec::new();
            for n in &rec.nodes {
                let Ok(sb) = n.sandbox.parse::<SandboxId>() else {
                    continue;
                };
                match self.sandboxes.reserve(owner, quota, &sb).await {
                    Ok(r) => reserved.push(r),
                    Err(e) => {
                        self.warm.push(&lab.slug, &id, true);
                        return Err(e.into());
                    }
                }
            }
            let mut handed = true;
            for n in &rec.nodes {
                let claimed = match n.sandbox.parse::<SandboxId>() {
                    Ok(sb) => self
                        .sandboxes
                        .claim_node(&sb, &pool, owner, ttl)
                        .await
                        .map_err(|e| sandlab_core::error_chain(&e)),
                    Err(_) => Err(format!("{:?} is not a sandbox id", n.sandbox)),
                };
                if let Err(e) = claimed {
                    tracing::warn!(session = %id, node = %n.name, error = %e, "a warm session's node could not be handed over; ending it");
                    handed = false;
                    break;
                }
            }
            if !handed {
                self.retire(live, "A node of the warm session could not be handed over.");
                continue;
            }
            let now = i64::try_from(now_ms()).unwrap_or(i64::MAX);
            let deadline = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
            let hand = HandOver {
                from: &rec.owner,
                to: owner,
                runner: &self.me,
                created_at_ms: now,
                deadline_ms: deadline,
            };
            // Its nodes are the owner's now; unless the record follows, the session cannot
            // be trusted either way, so it goes.
            match self.store.hand_over_lab_session(&id, &hand).await {
                // Ended meanwhile (an admin, the lab's change): its nodes go with it.
                Ok(true) if live.cancel.is_cancelled() => continue,
                Ok(true) => {}
                Ok(false) => {
                    // Another replica took it over (it thought this one dead).
                    tracing::warn!(session = %id, "a warm session changed hands under its claim; ending it");
                    self.retire(live, "The warm session changed hands.");
                    continue;
                }
                Err(e) => {
                    self.end(&live, "The session could not be stored.").await;
                    return Err(e.into());
                }
            }
            {
                let mut r = live.record.lock().unwrap_or_else(|p| p.into_inner());
                r.owner = owner.to_owned();
                r.created_at_ms = now;
                r.deadline_ms = deadline;
            }
            *live.deadline.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now() + ttl;
            live.checker.grant(&done);
            self.save(&live).await;
            drop(reserved);
            self.sandboxes.update_live().await;
            live.moved.notify_one();
            metrics::histogram!(m::LAB_POOL_CLAIM_SECONDS, "lab" => lab.slug.clone())
                .record(started.elapsed().as_secs_f64());
            tracing::info!(session = %id, lab = %lab.slug, "handed a warm session over");
            return Ok(Some(live));
        }
        Ok(None)
    }

    /// Parks warm session `live` until a start claims it (`true`: go on as the claimer's
    /// session) or it ends (`false`), at its time in the pool at the latest. A session
    /// that is not warm goes on at once.
    pub(super) async fn park(&self, live: &Arc<Live>) -> bool {
        let rec = live.record();
        let Some(lab) = warm_lab(&rec.owner) else {
            return true;
        };
        self.warm.push(&lab, &rec.id, false);
        loop {
            if warm_lab(&live.record().owner).is_none() {
                return true;
            }
            let at = *live.deadline.lock().unwrap_or_else(|p| p.into_inner());
            let at = at.checked_sub(PARK_MARGIN).unwrap_or(at);
            tokio::select! {
                _ = live.moved.notified() => {}
                _ = tokio::time::sleep_until(at) => {
                    if warm_lab(&live.record().owner).is_some() {
                        self.warm.remove(&rec.id);
                        self.end_warm(live, "The warm session was not claimed in time.").await;
                        return false;
                    }
                }
                _ = live.cancel.cancelled() => {
                    self.warm.remove(&rec.id);
                    return false;
                }
            }
        }
    }

    /// Keeps every `[[lab_pool]]` of this replica full until `stop`, reading the labs
    /// from `labs` (the catalogue as it is now) each round: sets up one warm session at a
    /// time and waits for it to be ready; ends warm sessions that failed or whose lab
    /// changed; a pool whose session failed waits 10 s, doubling to 10 minutes.
    pub async fn run_warm(
        self: Arc<Self>,
        labs: Arc<dyn Fn() -> Arc<Vec<Lab>> + Send + Sync>,
        stop: CancellationToken,
    ) {
        if self.warm.pools.iter().all(|p| p.size == 0) {
            return;
        }
        let mut paused: HashMap<String, (Instant, Duration)> = HashMap::new();
        let mut missing: HashSet<String> = HashSet::new();
        loop {
            let wake = self.warm.wake.notified();
            let catalogue = labs();
            let mut made = false;
            for pool in self.warm.pools.clone() {
                if stop.is_cancelled() {
                    return;
                }
                let Some(lab) = catalogue.iter().find(|l| l.slug == pool.lab) else {
                    if missing.insert(pool.lab.clone()) {
                        tracing::warn!(lab = %pool.lab, "[[lab_pool]] names a lab the catalogue does not have; its pool stays empty until it does");
                    }
                    for live in self.warm_of(&pool.lab) {
                        self.retire(live, "The lab is gone from the catalogue.");
                    }
                    continue;
                };
                missing.remove(&pool.lab);
                for live in self.warm_of(&pool.lab) {
                    let state = live.record().state;
                    if state == LabSessionState::Failed {
                        self.retire(live, "The warm session failed to set up.");
                    } else if state == LabSessionState::Ready && *live.lab != *lab {
                        self.retire(live, "The lab changed.");
                    }
                }
                if paused
                    .get(&pool.lab)
                    .is_some_and(|(until, _)| Instant::now() < *until)
                    || !self.warm_wanted(&pool.lab)
                {
                    continue;
                }
                made = true;
                match self.fill_one(Arc::new(lab.clone()), &stop).await {
                    Ok(()) => {
                        paused.remove(&pool.lab);
                    }
                    Err(reason) => {
                        let wait = paused
                            .get(&pool.lab)
                            .map_or(FIRST_BACKOFF, |(_, w)| (*w * 2).min(MAX_BACKOFF));
                        metrics::counter!(m::LAB_POOL_REFILL_FAILURES, "lab" => pool.lab.clone())
                            .increment(1);
                        tracing::warn!(lab = %pool.lab, error = %reason, retry_in = ?wait, "a warm lab session did not set up");
                        paused.insert(pool.lab.clone(), (Instant::now() + wait, wait));
                    }
                }
            }
            if made {
                continue;
            }
            tokio::select! {
                _ = wake => {}
                _ = tokio::time::sleep(REFILL_TICK) => {}
                _ = stop.cancelled() => return,
            }
        }
    }

    /// Removes the warm nodes (`pool:lab:*` sandboxes) that no open session names: left by
    /// a crash between a node's create and its session naming it, or by a removal that
    /// failed. A failed one goes at once, a running one once it is [`STRAY_GRACE`] old
    /// (younger, it may be a set-up's that is about to name it); one being made is
    /// reconciliation's. How many went.
    pub(super) async fn sweep_warm_nodes(self: &Arc<Self>) -> Result<usize> {
        let named: HashSet<String> = self
            .store
            .open_lab_sessions(None)
            .await?
            .into_iter()
            .flat_map(|s| s.nodes.into_iter().map(|n| n.sandbox))
            .collect();
        let records = self
            .sandboxes
            .manager()
            .list()
            .await
            .map_err(crate::sandboxes::SandboxError::from)?;
        let now = now_ms();
        let mut removed = 0;
        for rec in records {
            if rec.owner.as_deref().and_then(warm_lab).is_none() || named.contains(rec.id.as_str())
            {
                continue;
            }
            let stray = match rec.state {
                SandboxState::Failed => true,
                SandboxState::Running => {
                    now.saturating_sub(rec.created_at_ms) > STRAY_GRACE.as_millis() as u64
                }
                _ => false,
            };
            if stray {
                tracing::info!(sandbox.id = %rec.id, state = %rec.state, "removing a warm node no session names");
                let _ = self.sandboxes.remove_detached(&rec.id).await;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Sets one warm session of `lab` up and waits until it is parked; the reason when it
    /// failed (it is ended then).
    async fn fill_one(
        self: &Arc<Self>,
        lab: Arc<Lab>,
        stop: &CancellationToken,
    ) -> std::result::Result<(), String> {
        let owner = warm_owner(&lab.slug);
        let live = self
            .set_up(lab, owner, u64::MAX, WARM_TTL, None, &[])
            .await
            .map_err(|e| sandlab_core::error_chain(&e))?;
        let id = live.record().id;
        loop {
            let rec = live.record();
            match rec.state {
                LabSessionState::Ready if self.warm.parked(&live.lab.slug).contains(&id) => {
                    return Ok(())
                }
                // Claimed already (a start came in the moment it parked).
                LabSessionState::Ready if warm_lab(&rec.owner).is_none() => return Ok(()),
                LabSessionState::Starting | LabSessionState::Ready => {}
                _ => {
                    let reason = rec.reason.unwrap_or_else(|| format!("it is {}", rec.state));
                    if !rec.state.is_over() {
                        self.retire(live, "The warm session failed to set up.");
                    }
                    return Err(reason);
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = stop.cancelled() => return Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warm_owners_name_their_lab_and_no_user_is_one() {
        let owner = warm_owner("cka-basics");
        assert_eq!(owner, "pool:lab:cka-basics");
        assert_eq!(warm_lab(&owner).as_deref(), Some("cka-basics"));
        // A sandbox pool's owner, and any user, is not a warm session's.
        assert_eq!(warm_lab("pool:default"), None);
        assert_eq!(warm_lab("usr-abc"), None);
        assert_eq!(warm_lab("lab:cka-basics"), None);
    }

    #[test]
    fn queues_take_each_session_once_in_order() {
        let warm = WarmSessions::new(vec![LabPool {
            lab: "a".into(),
            size: 2,
        }]);
        assert_eq!(warm.size("a"), 2);
        assert_eq!(warm.size("b"), 0);
        warm.push("a", "ls-1", false);
        warm.push("a", "ls-2", false);
        warm.push("a", "ls-1", false);
        assert_eq!(warm.parked("a"), ["ls-1", "ls-2"]);
        warm.push("a", "ls-0", true);
        assert_eq!(warm.parked("a"), ["ls-0", "ls-1", "ls-2"]);
        assert_eq!(warm.pop("a").as_deref(), Some("ls-0"));
        warm.remove("ls-2");
        assert_eq!(warm.pop("a").as_deref(), Some("ls-1"));
        assert_eq!(warm.pop("a"), None);
        assert_eq!(warm.pop("b"), None);
    }
}
