//! Each user's quota of live sandboxes.
//!
//! A create is admitted by [`Quota::reserve`]: the owner's live records (from the store)
//! plus their creates still in flight must be fewer than their quota. The returned
//! [`Reservation`] counts the create as in flight until it is dropped, which the create
//! does once its record is stored (or it failed), so two concurrent creates cannot both
//! take the last place.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sandlab_store::Store;

use crate::sandboxes::SandboxError;

type Pending = Arc<Mutex<HashMap<String, u64>>>;

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
}

fn lock(pending: &Pending) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
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

    /// Counts a create by `owner` against `quota`, or refuses it with
    /// [`SandboxError::QuotaExceeded`].
    pub async fn reserve(&self, owner: &str, quota: u64) -> Result<Reservation, SandboxError> {
        let _admit = self.admit.lock().await;
        // In flight first, then stored: a create finishing in between is counted twice
        // (refusing too early), never not at all.
        let inflight = lock(&self.pending).get(owner).copied().unwrap_or(0);
        let live = self.store.count_live_sandboxes(owner).await? + inflight;
        if live >= quota {
            return Err(SandboxError::QuotaExceeded { live, quota });
        }
        *lock(&self.pending).entry(owner.to_owned()).or_default() += 1;
        Ok(Reservation {
            pending: self.pending.clone(),
            owner: owner.to_owned(),
        })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut pending = lock(&self.pending);
        if let Some(n) = pending.get_mut(&self.owner) {
            *n = n.saturating_sub(1);
            if *n == 0 {
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
        let one = quota.reserve("usr-a", 2).await.unwrap();
        let _two = quota.reserve("usr-a", 2).await.unwrap();
        // Another owner has their own count.
        let _other = quota.reserve("usr-b", 1).await.unwrap();
        match quota.reserve("usr-a", 2).await {
            Err(SandboxError::QuotaExceeded { live: 2, quota: 2 }) => {}
            Err(e) => panic!("{e:?}"),
            Ok(_) => panic!("a third create was admitted"),
        }
        drop(one);
        let _three = quota.reserve("usr-a", 2).await.unwrap();
    }
}
