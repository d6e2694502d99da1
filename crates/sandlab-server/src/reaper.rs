//! Sandbox deadlines on the monotonic clock.
//!
//! The store keeps each deadline as wall-clock milliseconds (for display, and for a
//! restart, which has nothing else to go on). While the server runs, the reaper holds each
//! deadline as an `Instant` computed once from the time left, so a wall-clock jump neither
//! expires everything (clock set forward) nor makes anything immortal (clock set back):
//! only time that actually passes counts. [`run`] is the reaper: it removes each sandbox
//! whose deadline passes (through [`Sandboxes::remove`]) and audits it as expired.

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
        for id in expired {
            tracing::info!(sandbox.id = %id, "sandbox reached its deadline");
            if let Err(e) = sandboxes.remove(&id).await {
                tracing::warn!(sandbox.id = %id, error = %sandlab_core::error_chain(&e), "could not remove an expired sandbox");
                continue;
            }
            metrics::counter!(m::EXPIRED).increment(1);
            let event = AuditEvent::SandboxExpire { sandbox: &id };
            audit::record(sandboxes.store().as_ref(), None, event).await;
        }
    }
}

#[derive(Default)]
pub struct Deadlines {
    map: Mutex<HashMap<SandboxId, Instant>>,
    changed: Notify,
}

impl Deadlines {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SandboxId, Instant>> {
        // A poisoned lock only means a panic elsewhere mid-insert; the map is still valid.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Expires `id` once `left` has passed from now.
    pub fn track(&self, id: &SandboxId, left: Duration) {
        let at = Instant::now().checked_add(left).unwrap_or_else(far_future);
        self.lock().insert(id.clone(), at);
        self.changed.notify_one();
    }

    pub fn forget(&self, id: &SandboxId) {
        self.lock().remove(id);
    }

    /// Time left for `id`, if tracked.
    pub fn left(&self, id: &SandboxId) -> Option<Duration> {
        self.lock()
            .get(id)
            .map(|at| at.saturating_duration_since(Instant::now()))
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
    /// from tracking).
    pub async fn next_expired(&self) -> Vec<SandboxId> {
        loop {
            // Register for changes before reading the map, so a `track` between the read
            // and the sleep still wakes us.
            let changed = self.changed.notified();
            let now = Instant::now();
            let (expired, next) = {
                let mut map = self.lock();
                let expired: Vec<SandboxId> = map
                    .iter()
                    .filter(|(_, at)| **at <= now)
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in &expired {
                    map.remove(id);
                }
                (expired, map.values().min().copied())
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
        assert_eq!(d.next_expired().await, vec![b.clone()]);
        assert!(start.elapsed() >= Duration::from_secs(5));
        // Extending `a` while the reaper waits moves its expiry.
        let d2 = d.clone();
        let a2 = a.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            d2.track(&a2, Duration::from_secs(20));
        });
        assert_eq!(d.next_expired().await, vec![a.clone()]);
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
}
