//! The warm pool: per configured profile (image + limits), sandboxes started ahead of time
//! so that a matching create only has to claim one.
//!
//! A pool sandbox is an ordinary sandbox record owned by `pool:<profile>`; claiming it
//! rewrites the owner, limits' TTL and deadline in one store write, so a crash either
//! leaves it in the pool (adopted again on restart) or with its new owner. This module
//! keeps only the in-memory queue of ready ids; [`crate::sandboxes::Sandboxes`] creates,
//! claims and adopts.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use sandlab_core::{Limits, SandboxId};
use tokio::sync::Notify;

use crate::config::PoolProfile;
use crate::metrics as m;

/// The owner recorded on a pool sandbox until it is claimed.
pub const OWNER_PREFIX: &str = "pool:";

pub fn owner_for(profile: &str) -> String {
    format!("{OWNER_PREFIX}{profile}")
}

/// The profile named by a pool owner string.
pub fn profile_of(owner: &str) -> Option<&str> {
    owner.strip_prefix(OWNER_PREFIX)
}

pub struct WarmPool {
    profiles: Vec<PoolProfile>,
    ready: Mutex<HashMap<String, VecDeque<SandboxId>>>,
    /// Woken when a sandbox is taken, so the refill loop tops up.
    pub wake: Notify,
}

/// Whether two limits describe the same sandbox shape (the TTL is the claimer's).
fn same_shape(a: &Limits, b: &Limits) -> bool {
    a.memory == b.memory
        && a.cpus == b.cpus
        && a.pids == b.pids
        && a.disk == b.disk
        && a.network == b.network
}

impl WarmPool {
    pub fn new(profiles: Vec<PoolProfile>) -> WarmPool {
        for p in &profiles {
            metrics::gauge!(m::POOL_TARGET, "profile" => p.name.clone()).set(p.size as f64);
            metrics::gauge!(m::POOL_READY, "profile" => p.name.clone()).set(0.0);
        }
        WarmPool {
            profiles,
            ready: Mutex::new(HashMap::new()),
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

    /// The profile a create of `image` with `limits` can be served from.
    pub fn matching(&self, image: &str, limits: &Limits) -> Option<&PoolProfile> {
        self.profiles
            .iter()
            .find(|p| p.size > 0 && p.image == image && same_shape(&p.limits, limits))
    }

    /// Whether a record of `image` and `limits` fits profile `name` as it is configured now.
    pub fn fits(&self, name: &str, image: &str, limits: &Limits) -> bool {
        self.profile(name)
            .is_some_and(|p| p.image == image && same_shape(&p.limits, limits))
    }

    /// Takes the oldest ready sandbox of `profile`.
    pub fn take(&self, profile: &str) -> Option<SandboxId> {
        let id = {
            let mut map = self.lock();
            let q = map.get_mut(profile)?;
            let id = q.pop_front();
            metrics::gauge!(m::POOL_READY, "profile" => profile.to_owned()).set(q.len() as f64);
            id
        };
        self.wake.notify_one();
        id
    }

    /// Adds a started sandbox to `profile`'s queue.
    pub fn push(&self, profile: &str, id: SandboxId) {
        let mut map = self.lock();
        let q = map.entry(profile.to_owned()).or_default();
        q.push_back(id);
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

    /// Every ready id (for shutdown reports and tests).
    pub fn all_ready(&self) -> Vec<SandboxId> {
        self.lock().values().flatten().cloned().collect()
    }
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
        let mut limits = Limits {
            ttl: std::time::Duration::from_secs(5),
            ..Limits::default()
        };
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
        assert_eq!(profile_of(&owner_for("a")), Some("a"));
    }
}
