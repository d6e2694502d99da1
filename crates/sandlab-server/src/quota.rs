//! Each user's quota of live sandboxes.
//!
//! A create is admitted by [`Quota::reserve`]: the owner's live records (from the store)
//! plus their creates in flight whose record is not stored yet must be fewer than their
//! quota. Each create is reserved under the id its sandbox will have, so a create whose
//! record is already stored is counted once, not twice (concurrent creates near the quota
//! used to refuse each other). The returned [`Reservation`] counts the create until it is
//! dropped, so two concurrent creates cannot both take the last place.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sandlab_core::{SandboxId, SandboxState};
use sandlab_store::Store;

use crate::sandboxes::SandboxError;

/// Creates in flight per owner, by the id their sandbox will have.
type Pending = Arc<Mutex<HashMap<String, Vec<SandboxId>>>>;

pub struct Quota {
    store: Arc<dyn Store>,
    /// Creates in flight per owner.
    pending: Pending,
    /// Held while one reservation is checked and counted.
    admit: tokio::sync::Mutex<()>,
}

/// One admitted create, counted against its owner's quota while it lives.
#[must_use = "the create is counted only while the reservation lives"]
pub struct Reservation {
    pending: Pending,
    owner: String,
    id: SandboxId,
}

fn lock(pending: &Pending) -> std::sync::MutexGuard<'_, HashMap<String, Vec<SandboxId>>> {
    // Poisoning only means a panic elsewhere between two map operations.
    pending.lock().unwrap_or_else(|p| p.into_inner())
}

impl Quota {
    pub fn new(store: Arc<dyn Store>) -> Quota {
        Quota {
            store,
            pending: Pending::default(),
            admit: tokio::sync::Mutex::new(()),
        }
    }

    /// [`SandboxError::QuotaExceeded`] unless `owner` has room for `n` more sandboxes now
    /// (a lab's whole playground is checked before its first node is made). Reserves
    /// nothing: each create still reserves its own place.
    pub async fn check_room(&self, owner: &str, quota: u64, n: u64) -> Result<(), SandboxError> {
        let _admit = self.admit.lock().await;
        let live = self.live(owner).await?;
        if live.saturating_add(n) > quota {
            return Err(SandboxError::QuotaExceeded { live, quota });
        }
        Ok(())
    }

    /// `owner`'s live sandboxes: stored ones plus creates in flight without a record yet.
    async fn live(&self, owner: &str) -> Result<u64, SandboxError> {
        // In flight first, then stored: a record stored in between is counted twice
        // (refusing too early), never not at all.
        let pending = lock(&self.pending).get(owner).cloned().unwrap_or_default();
        let mut unrecorded = 0;
        for p in &pending {
            // A record of someone else's (a warm lab session's node being handed over)
            // is not yet counted as the owner's.
            let stored_live = match self.store.get_sandbox(p, None).await {
                Ok(rec) => {
                    matches!(
                        rec.state,
                        SandboxState::Creating | SandboxState::Running | SandboxState::Stopping
                    ) && rec.owner.as_deref() == Some(owner)
                }
                Err(sandlab_store::Error::NotFound(_)) => false,
                Err(e) => return Err(e.into()),
            };
            if !stored_live {
                unrecorded += 1;
            }
        }
        Ok(self.store.count_live_sandboxes(owner).await? + unrecorded)
    }

    /// Counts the create of sandbox `id` by `owner` against `quota`, or refuses it with
    /// [`SandboxError::QuotaExceeded`].
    pub async fn reserve(
        &self,
        owner: &str,
        quota: u64,
        id: &SandboxId,
    ) -> Result<Reservation, SandboxError> {
        let _admit = self.admit.lock().await;
        let live = self.live(owner).await?;
        if live >= quota {
            return Err(SandboxError::QuotaExceeded { live, quota });
        }
        lock(&self.pending)
            .entry(owner.to_owned())
            .or_default()
            .push(id.clone());
        Ok(Reservation {
            pending: self.pending.clone(),
            owner: owner.to_owned(),
            id: id.clone(),
        })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut pending = lock(&self.pending);
        if let Some(ids) = pending.get_mut(&self.owner) {
            ids.retain(|i| i != &self.id);
            if ids.is_empty() {
                pending.remove(&self.owner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn creates_in_flight_count_until_their_reservation_goes() {
        let dir = tempfile::tempdir().unwrap();
        let store = sandlab_store::SqliteStore::open(&dir.path().join("db"))
            .await
            .unwrap();
        let quota = Quota::new(Arc::new(store));
        let id = SandboxId::generate;
        let one = quota.reserve("usr-a", 2, &id()).await.unwrap();
        let _two = quota.reserve("usr-a", 2, &id()).await.unwrap();
        // Another owner has their own count.
        let _other = quota.reserve("usr-b", 1, &id()).await.unwrap();
        match quota.reserve("usr-a", 2, &id()).await {
            Err(SandboxError::QuotaExceeded { live: 2, quota: 2 }) => {}
            Err(e) => panic!("{e:?}"),
            Ok(_) => panic!("a third create was admitted"),
        }
        drop(one);
        let _three = quota.reserve("usr-a", 2, &id()).await.unwrap();
    }
}
