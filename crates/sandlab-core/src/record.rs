//! Sandbox records and the stores that keep them.
//!
//! A record is written before a sandbox's first side effect, so a crash at any point leaves
//! a record that reconciliation can act on. [`RecordStore`] keeps records; [`LeaseStore`]
//! grants named, time-limited leases, so that several processes (CLI commands, control
//! plane replicas on one database) take turns at work that must not run twice at once:
//! reconciliation, removal, the reaper, the pool refill. Both are implemented by the
//! control plane's store (`sandlab-store`); the runtime's `SandboxManager` uses them.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{Limits, SandboxId, SandboxState};

/// Addresses of a started sandbox, as its driver assigned them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInfo {
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
}

/// How long a sandbox lives when its creator asks for no time to live. A record keeps its
/// lifetime as `created_at_ms` and `deadline_ms`, not as a limit.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// One sandbox as the control plane knows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SandboxRecord {
    pub id: SandboxId,
    pub image: String,
    pub limits: Limits,
    pub state: SandboxState,
    /// Why the sandbox failed, when it did.
    #[serde(default)]
    pub reason: Option<String>,
    pub hostname: Option<String>,
    /// Unix time in milliseconds.
    pub created_at_ms: u64,
    /// Unix time in milliseconds after which the sandbox is removed.
    pub deadline_ms: u64,
    #[serde(default)]
    pub network: NetworkInfo,
    /// The name of the driver that runs it, the key of the manager's driver registry.
    pub driver: String,
    /// The process driving a `creating` sandbox; reconciliation leaves it alone while that
    /// process lives.
    #[serde(default)]
    pub creator: Option<Holder>,
    /// The user who owns it (or a warm-pool sentinel).
    #[serde(default)]
    pub owner: Option<String>,
    /// A process whose exit ends the sandbox (`sandlab run`); reconciliation removes the
    /// sandbox once that process is gone.
    #[serde(default)]
    pub owner_process: Option<Holder>,
}

/// Names one process on one boot of one host: `<boot id>/<pid>/<start time>`. The start
/// time (clock ticks since boot) tells a live process from a later one that reused its pid;
/// the boot id tells this host's processes from another host's (another replica's), whose
/// liveness only a lease can show.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Holder {
    boot_id: String,
    pid: u32,
    start_ticks: u64,
}

/// Why a string is not a [`Holder`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not a process holder (<boot id>/<pid>/<start time>)")]
pub struct HolderError(String);

impl Holder {
    /// The longest boot id accepted (a UUID has 36 characters).
    const MAX_BOOT_ID: usize = 64;

    pub fn new(boot_id: &str, pid: u32, start_ticks: u64) -> Result<Holder, HolderError> {
        let ok = !boot_id.is_empty()
            && boot_id.len() <= Self::MAX_BOOT_ID
            && boot_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Err(HolderError(boot_id.to_owned()));
        }
        Ok(Holder {
            boot_id: boot_id.to_owned(),
            pid,
            start_ticks,
        })
    }

    pub fn boot_id(&self) -> &str {
        &self.boot_id
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn start_ticks(&self) -> u64 {
        self.start_ticks
    }

    /// The lease a long-running holder renews to show that it lives (for holders of
    /// another host, whose processes cannot be looked at).
    pub fn liveness_lease(&self) -> String {
        format!("holder/{self}")
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.boot_id, self.pid, self.start_ticks)
    }
}

impl std::str::FromStr for Holder {
    type Err = HolderError;

    fn from_str(s: &str) -> Result<Holder, HolderError> {
        let bad = || HolderError(s.to_owned());
        let mut parts = s.split('/');
        let (Some(boot), Some(pid), Some(start), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let pid = pid.parse().map_err(|_| bad())?;
        let start = start.parse().map_err(|_| bad())?;
        Holder::new(boot, pid, start).map_err(|_| bad())
    }
}

impl TryFrom<String> for Holder {
    type Error = HolderError;

    fn try_from(s: String) -> Result<Holder, HolderError> {
        s.parse()
    }
}

impl From<Holder> for String {
    fn from(h: Holder) -> String {
        h.to_string()
    }
}

/// A store failure as the runtime sees it: the implementation's own error, described.
#[derive(Debug, thiserror::Error)]
#[error("The record store failed")]
pub struct StoreError {
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl StoreError {
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError {
            source: Box::new(e),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Where sandbox records live. Every method is one atomic step that survives a crash of
/// the process once it returns `Ok`.
#[async_trait]
pub trait RecordStore: Send + Sync + 'static {
    /// Stores `rec` (insert or replace) durably before returning.
    async fn put(&self, rec: &SandboxRecord) -> StoreResult<()>;
    async fn get(&self, id: &SandboxId) -> StoreResult<Option<SandboxRecord>>;
    /// Every record, oldest first.
    async fn list(&self) -> StoreResult<Vec<SandboxRecord>>;
    /// Deletes the record; succeeds when there is none.
    async fn delete(&self, id: &SandboxId) -> StoreResult<()>;
    /// Compare-and-swap: replaces the stored record `rec.id` with `rec` only while the
    /// stored one has owner `owner` and state `state`; whether it did (`false` also when
    /// there is none). Of several processes swapping the same record from the same owner
    /// and state, one wins: the warm pool hands a sandbox to one claimer only, and a pool
    /// sandbox being retired is never claimed.
    ///
    /// The default reads and then writes, which is atomic only within one process; a
    /// store shared by several processes overrides it with one atomic step.
    async fn put_if_owner(
        &self,
        rec: &SandboxRecord,
        owner: Option<&str>,
        state: SandboxState,
    ) -> StoreResult<bool> {
        match self.get(&rec.id).await? {
            Some(old) if old.owner.as_deref() == owner && old.state == state => {
                self.put(rec).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// A lease as the store holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub name: String,
    pub holder: String,
    /// Unix time in milliseconds, on the store's clock.
    pub expires_at_ms: u64,
}

/// Named, time-limited leases: at most one holder per name at a time. Times are the
/// store's own clock, so holders on hosts whose clocks differ still agree.
#[async_trait]
pub trait LeaseStore: Send + Sync + 'static {
    /// Takes lease `name` for `holder` until `ttl` from now when it is free, expired or
    /// already `holder`'s (then it is renewed). Returns the lease as it stands after the
    /// call: `holder` has it exactly when `lease.holder == holder`.
    async fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> StoreResult<Lease>;
    /// Gives lease `name` up if `holder` has it; succeeds in any case.
    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()>;
    /// The lease `name` while it is unexpired.
    async fn get_lease(&self, name: &str) -> StoreResult<Option<Lease>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_round_trips_and_refuses_junk() {
        let h = Holder::new("0b5e2d4c-1f2a-4e5b-9c3d-112233445566", 42, 9001).unwrap();
        let s = h.to_string();
        assert_eq!(s.parse::<Holder>().unwrap(), h);
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, format!("\"{s}\""));
        assert_eq!(serde_json::from_str::<Holder>(&json).unwrap(), h);
        for bad in [
            "",
            "a/b/c",
            "boot/1",
            "boot/1/2/3",
            "bo ot/1/2",
            "/1/2",
            "x/-1/2",
        ] {
            assert!(bad.parse::<Holder>().is_err(), "{bad:?} parsed");
        }
        assert!(serde_json::from_str::<Holder>("\"nope\"").is_err());
    }
}
