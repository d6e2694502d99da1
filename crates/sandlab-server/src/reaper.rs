//! Sandbox deadlines on the monotonic clock.
//!
//! The store keeps each deadline as wall-clock milliseconds (for display, and for a
//! restart, which has nothing else to go on). While the server runs, the reaper holds each
//! deadline as an `Instant` computed once from the time left, so a wall-clock jump neither
//! expires everything (clock set forward) nor makes anything immortal (clock set back):
//! only time that actually passes counts. [`run`] is the reaper: it removes each sandbox
//! whose deadline passes (through [`Sandboxes::remove`]) and audits it as expired.
//!
//! With several replicas on one store only the leader runs the reaper
//! ([`crate::control`]); deadlines set or extended on another replica reach it through the
//! records (re-read every 2 s, [`Deadlines::follow`]), and the record is read once more just
//! before a removal: a deadline that moved in the store since it was tracked is tracked
//! again instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sandlab_core::SandboxId;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::audit::{self, AuditEvent};
use crate::metrics as m;
use crate::sandboxes::Sandboxes;

/// Removes every sandbox whose deadline in `sandboxes`' [`Deadlines`] passes, until
/// `shutdown`.
pub async fn run(sandboxes: Arc<Sandboxes>, shutdown: CancellationToken) {
    loop {
        let expired = tokio::select! {
            ids = sandboxes.deadlines().next_expired() => ids,
            _ = shutdown.cancelled() => return,
        };
        for (id, tracked) in expired {
            let Some(deadline) = sandboxes.still_expired(&id, tracked).await else {
                continue;
            };
            tracing::info!(sandbox.id = %id, "sandbox reached its deadline");
            match sandboxes.remove_expired(&id, deadline).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(sandbox.id = %id, error = %sandlab_core::error_chain(&e), "could not remove an expired sandbox");
                    continue;
                }
            }
            metrics::counter!(m::EXPIRED).increment(1);
            let event = AuditEvent::SandboxExpire { sandbox: &id };
            audit::record(sandboxes.store().as_ref(), None, event).await;
        }
    }
}

/// One tracked deadline: when, on the monotonic clock, and the record's deadline it was
/// tracked from (`None`: not from a record).
#[derive(Clone, Copy)]
struct Entry {
    at: Instant,
    stored: Option<u64>,
}

#[derive(Default)]
pub struct Deadlines {
    map: Mutex<HashMap<SandboxId, Entry>>,
    changed: Notify,
}

impl Deadlines {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SandboxId, Entry>> {
        // A poisoned lock only means a panic elsewhere mid-insert; the map is still valid.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Expires `id` once `left` has passed from now.
    pub fn track(&self, id: &SandboxId, left: Duration) {
        self.insert(id, left, None);
    }

    /// Expires `id` once `left` has passed, noting `stored`, the record's deadline (Unix
    /// ms) this comes from.
    pub fn track_record(&self, id: &SandboxId, left: Duration, stored: u64) {
        self.insert(id, left, Some(stored));
    }

    fn insert(&self, id: &SandboxId, left: Duration, stored: Option<u64>) {
        let at = Instant::now().checked_add(left).unwrap_or_else(far_future);
        self.lock().insert(id.clone(), Entry { at, stored });
        self.changed.notify_one();
    }

    /// Follows a record's deadline (`stored`, Unix ms; `left` from now on the wall
    /// clock): tracks it when `id` is new here or its stored deadline moved (another
    /// replica extended it), and otherwise keeps the monotonic deadline it has.
    pub fn follow(&self, id: &SandboxId, left: Duration, stored: u64) {
        let known = self.lock().get(id).map(|e| e.stored);
        if known != Some(Some(stored)) {
            self.track_record(id, left, stored);
        }
    }

    /// The record's deadline `id` was tracked from.
    pub fn stored(&self, id: &SandboxId) -> Option<u64> {
        self.lock().get(id).and_then(|e| e.stored)
    }

    /// Forgets every id not in `keep`.
    pub fn retain(&self, keep: &std::collections::HashSet<SandboxId>) {
        self.lock().retain(|id, _| keep.contains(id));
    }

    pub fn forget(&self, id: &SandboxId) {
        self.lock().remove(id);
    }

    /// Time left for `id`, if tracked.
    pub fn left(&self, id: &SandboxId) -> Option<Duration> {
        self.lock()
            .get(id)
            .map(|e| e.at.saturating_duration_since(Instant::now()))
    }

    /// Every tracked id.
    pub fn ids(&self) -> Vec<SandboxId> {
        self.lock().keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until at least one deadline has passed and returns the expired ids (removed
    /// from tracking) with the record deadlines they were tracked from.
    pub async fn next_expired(&self) -> Vec<(SandboxId, Option<u64>)> {
        loop {
            // Register for changes before reading the map, so a `track` between the read
            // and the sleep still wakes us.
            let changed = self.changed.notified();
            let now = Instant::now();
            let (expired, next) = {
                let mut map = self.lock();
                let expired: Vec<(SandboxId, Option<u64>)> = map
                    .iter()
                    .filter(|(_, e)| e.at <= now)
                    .map(|(id, e)| (id.clone(), e.stored))
                    .collect();
                for (id, _) in &expired {
                    map.remove(id);
                }
                (expired, map.values().map(|e| e.at).min())
            };
            if !expired.is_empty() {
                return expired;
            }
            match next {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn expires_in_order_and_follows_changes() {
        let d = std::sync::Arc::new(Deadlines::default());
        let (a, b) = (SandboxId::generate(), SandboxId::generate());
        d.track(&a, Duration::from_secs(10));
        d.track(&b, Duration::from_secs(5));
        let start = tokio::time::Instant::now();
        assert_eq!(d.next_expired().await, vec![(b.clone(), None)]);
        assert!(start.elapsed() >= Duration::from_secs(5));
        // Extending `a` while the reaper waits moves its expiry.
        let d2 = d.clone();
        let a2 = a.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            d2.track(&a2, Duration::from_secs(20));
        });
        assert_eq!(d.next_expired().await, vec![(a.clone(), None)]);
        assert!(
            start.elapsed() >= Duration::from_secs(26),
            "{:?}",
            start.elapsed()
        );
        assert!(d.is_empty());
        d.track(&a, Duration::from_secs(1));
        d.forget(&a);
        assert!(d.left(&a).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn follow_keeps_the_monotonic_deadline_until_the_record_moves() {
        let d = Deadlines::default();
        let a = SandboxId::generate();
        d.follow(&a, Duration::from_secs(10), 1_000);
        tokio::time::advance(Duration::from_secs(4)).await;
        // The same stored deadline read again (the wall clock may say anything): kept.
        d.follow(&a, Duration::from_secs(60), 1_000);
        assert_eq!(d.left(&a), Some(Duration::from_secs(6)));
        assert_eq!(d.stored(&a), Some(1_000));
        // Extended elsewhere: the record's deadline moved, so it is tracked again.
        d.follow(&a, Duration::from_secs(60), 9_000);
        assert_eq!(d.left(&a), Some(Duration::from_secs(60)));
        d.retain(&std::collections::HashSet::new());
        assert!(d.is_empty());
    }
}
