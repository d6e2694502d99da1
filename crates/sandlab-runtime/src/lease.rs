//! Exclusive work across processes through the store's leases.
//!
//! [`Leases::acquire`] waits until the named lease is this process's, renews it while the
//! [`LeaseGuard`] lives and gives it up when the guard is dropped. Should a renewal find
//! another holder, or fail for longer than the lease lasts, the guard counts the lease as
//! lost and [`LeaseGuard::ensure_held`] says so: guarded work checks it before each step
//! with a side effect and stops. Tasks of one process share one holder, so an in-process mutex per
//! name serialises them first. A holder of this host that died (a `kill -9`) is seen at
//! once and its lease taken over; one of another host is waited out until its lease
//! expires.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sandlab_core::{Holder, LeaseStore};
use tokio::sync::OwnedMutexGuard;

use crate::error::{Error, Result};
use crate::process;

/// How long a lease lasts without renewal; a guard renews it every third of that.
pub const LEASE_TTL: Duration = Duration::from_secs(30);
/// The longest wait between two attempts at a taken lease.
const MAX_BACKOFF: Duration = Duration::from_millis(50);

/// This process's leases over one store.
pub struct Leases {
    store: Arc<dyn LeaseStore>,
    me: Holder,
    local: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Numbers this process's guards: each holds as `<holder>#<n>`.
    next: std::sync::atomic::AtomicU64,
    /// How long a lease lasts unrenewed ([`LEASE_TTL`]).
    ttl: Duration,
}

/// Holds a lease until dropped; renews it in the background meanwhile.
pub struct LeaseGuard {
    name: String,
    holder: String,
    store: Arc<dyn LeaseStore>,
    renew: tokio::task::JoinHandle<()>,
    /// Set by the renew task once the lease may belong to someone else.
    lost: Arc<std::sync::atomic::AtomicBool>,
    released: bool,
    _local: OwnedMutexGuard<()>,
}

impl Leases {
    pub fn new(store: Arc<dyn LeaseStore>, me: Holder) -> Leases {
        Leases {
            store,
            me,
            local: Mutex::new(HashMap::new()),
            next: std::sync::atomic::AtomicU64::new(1),
            ttl: LEASE_TTL,
        }
    }

    /// Leases that last `ttl` unrenewed (renewed every third of it).
    pub fn with_ttl(mut self, ttl: Duration) -> Leases {
        self.ttl = ttl;
        self
    }

    /// The holder this process's leases are taken as.
    pub fn holder(&self) -> &Holder {
        &self.me
    }

    pub fn store(&self) -> &Arc<dyn LeaseStore> {
        &self.store
    }

    /// Waits until lease `name` is ours, at most `wait`.
    pub async fn acquire(&self, name: &str, wait: Duration) -> Result<LeaseGuard> {
        let local = {
            let mut map = self.local.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(name.to_owned()).or_default().clone()
        };
        let deadline = tokio::time::Instant::now() + wait;
        let local = tokio::time::timeout_at(deadline, local.lock_owned())
            .await
            .map_err(|_| Error::Timeout(wait, "a lease held in this process"))?;
        let me = self.guard_holder();
        let mut backoff = Duration::from_millis(2);
        loop {
            let lease = self.store.acquire_lease(name, &me, self.ttl).await?;
            if lease.holder == me {
                break;
            }
            if self.holder_is_dead(&lease.holder) {
                tracing::info!(lease = name, holder = %lease.holder, "taking over the lease of a process that died");
                self.store.release_lease(name, &lease.holder).await?;
                continue;
            }
            if tokio::time::Instant::now() + backoff >= deadline {
                return Err(Error::Timeout(wait, "a lease held by another process"));
            }
            // Pacing between attempts at a lease another process holds, not synchronisation.
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        Ok(self.guard(name, me, local))
    }

    fn guard_holder(&self) -> String {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{}#{n}", self.me)
    }

    /// A holder of this host whose process is gone; another host's are judged by expiry.
    fn holder_is_dead(&self, holder: &str) -> bool {
        let process = holder.split_once('#').map_or(holder, |(p, _)| p);
        process
            .parse::<Holder>()
            .is_ok_and(|h| process::is_local(&h) && !process::local_alive(&h))
    }

    fn guard(&self, name: &str, me: String, local: OwnedMutexGuard<()>) -> LeaseGuard {
        let (store, n, holder, ttl) = (self.store.clone(), name.to_owned(), me.clone(), self.ttl);
        let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = lost.clone();
        let renew = tokio::spawn(async move {
            let mut renewed = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(ttl / 3).await;
                match store.acquire_lease(&n, &holder, ttl).await {
                    Ok(l) if l.holder == holder => renewed = tokio::time::Instant::now(),
                    Ok(l) => {
                        tracing::error!(lease = %n, holder = %l.holder, "lost a lease while holding it");
                        break;
                    }
                    Err(e) if renewed.elapsed() >= ttl => {
                        tracing::error!(lease = %n, error = %e, "a lease expired while the store could not renew it");
                        break;
                    }
                    Err(e) => tracing::warn!(lease = %n, error = %e, "could not renew a lease"),
                }
            }
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        LeaseGuard {
            name: name.to_owned(),
            holder: me,
            store: self.store.clone(),
            renew,
            lost,
            released: false,
            _local: local,
        }
    }
}

impl LeaseGuard {
    /// `Err` once the lease may have passed to another holder: stop the guarded work.
    pub fn ensure_held(&self) -> Result<()> {
        if self.lost.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::LeaseLost(self.name.clone()));
        }
        Ok(())
    }

    /// Gives the lease up now and waits for the store to confirm.
    pub async fn release(mut self) -> Result<()> {
        self.renew.abort();
        self.released = true;
        self.store.release_lease(&self.name, &self.holder).await?;
        Ok(())
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        self.renew.abort();
        if self.released {
            return;
        }
        let (store, name, holder) = (self.store.clone(), self.name.clone(), self.holder.clone());
        // Released in the background (a guard dropped without `release`, e.g. a cancelled
        // task). Every guard holds under a name of its own, so this late release can never
        // take away a lease a later task of this process has since acquired.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = store.release_lease(&name, &holder).await {
                    tracing::warn!(lease = %name, error = %e, "could not release a lease; it expires on its own");
                }
            });
        }
    }
}
