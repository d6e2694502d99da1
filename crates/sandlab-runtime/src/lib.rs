//! The sandbox runtime: the [`Driver`] trait and its first implementation, the container
//! driver ([`ContainerDriver`]) over an OCI runtime binary (runc, crun or runsc).
//!
//! A sandbox's host resources are all named after its id (`sb-xxxxxxxxxxxx`):
//!
//! | resource        | where                                             |
//! |-----------------|---------------------------------------------------|
//! | bundle + rootfs | `<data>/sandboxes/<id>/` (overlay mounted on `rootfs/`) |
//! | writable layer  | btrfs subvolume `<data>/volumes/<id>` with a qgroup limit |
//! | cgroup          | `/sandlab/<id>` in every hierarchy (v1) or the unified tree (v2) |
//! | netns           | `/run/netns/<id>`                                 |
//! | veth (egress)   | host side named `<id>`, `eth0` inside             |
//! | OCI container   | `<id>` under the runtime root `/run/sandlab/<runtime>` |
//! | agent socket    | `<data>/sandboxes/<id>/agent.sock`                |
//! | egress slot     | `/run/sandlab/egress-slots/<n>` (host-wide), noted in `<data>/sandboxes/<id>/egress-slot` |
//! | playground port | `pgv<id>` on bridge `pgb<network>`, noted in `<data>/sandboxes/<id>/private-net` |
//!
//! so that reconciliation ([`Driver::host_resources`]) can find and remove everything a
//! crash left behind. The [`manager::SandboxManager`] writes the record before the first
//! side effect and owns the `creating → running → stopping → removed` transitions, for
//! every driver it holds ([`Drivers`]); records and leases come from the store
//! (`sandlab_core::{RecordStore, LeaseStore}`).
//!
//! The container driver's sandboxes live on the host that made them, and its records
//! carry no host name: several control planes may share one database, but only one host
//! may run the container driver against it (a replica on another host would see those
//! records' resources missing). Sandboxes on many hosts are the Kubernetes driver's job.

mod agent_binary;
pub mod baseline;
pub mod capacity;
mod cgroups;
mod command;
mod config;
mod container;
mod error;
pub mod lease;
mod lxcfs;
pub mod manager;
mod mounts;
mod native;
mod netns;
mod network;
mod ocirt;
mod paths;
pub mod process;
pub(crate) mod rtnl;
mod seccomp;
mod seccomp_bpf;
mod slots;
mod spec;
#[cfg(feature = "testing")]
pub mod testing;
mod userns;
mod volume;

use std::time::Duration;

use async_trait::async_trait;
/// Whether a native-runtime seed cgroup's maker is gone (what the sweep on start removes).
pub use cgroups::seed_orphaned;
pub use config::{RuntimeChoice, RuntimeConfig};
pub use container::ContainerDriver;
pub use error::{Error, Result};
pub use network::{BLOCKED_V4, BLOCKED_V6};
use sandlab_core::{Limits, NetworkInfo, SandboxId};
use sandlab_proto::AgentClient;
use serde::{Deserialize, Serialize};

/// Everything a driver needs to create one sandbox.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SandboxSpec {
    pub id: SandboxId,
    /// Image name, as the driver resolves it (the local image store, a registry).
    pub image: String,
    pub limits: Limits,
    /// Hostname inside the sandbox; defaults to the id.
    pub hostname: Option<String>,
    /// Extra environment for every process the agent starts.
    #[serde(default)]
    pub env: Vec<String>,
    /// The playground this sandbox is a node of: its nodes reach each other, by name, on
    /// a network of their own. How is the driver's business.
    #[serde(default)]
    pub playground: Option<Playground>,
    /// The warm pool profile this sandbox is made for, if any: a driver that keeps pool
    /// members apart (Kubernetes labels them) marks it, and [`Driver::claim`] unmarks it.
    #[serde(default)]
    pub pool: Option<String>,
}

/// The nodes of one playground (a lab session), named so that every driver can give them
/// a network of their own on which each resolves the others by hostname.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Playground {
    /// Names the network the nodes share: 12 of `[a-z0-9]`.
    pub name: String,
    /// Every node's hostname, in the lab's order (at most [`Playground::MAX_NODES`]).
    pub nodes: Vec<String>,
}

impl Playground {
    pub const MAX_NODES: usize = 200;

    /// A playground named after the random part of `id` (a session's or a sandbox's).
    pub fn named_after(id: &str, nodes: Vec<String>) -> Playground {
        let name: String = id
            .rsplit('-')
            .next()
            .unwrap_or(id)
            .chars()
            .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            .take(12)
            .collect();
        Playground { name, nodes }
    }

    /// Every node's address on the playground's private network (`eth1`), in the lab's
    /// order: node `i` is `10.214.0.(10 + i)` (the same in every playground; each has a
    /// network of its own).
    pub fn addresses(&self) -> Vec<(String, std::net::Ipv4Addr)> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let host = u8::try_from(10 + i).unwrap_or(u8::MAX);
                (n.clone(), std::net::Ipv4Addr::new(10, 214, 0, host))
            })
            .collect()
    }

    /// Whether the name and nodes are usable (the name becomes part of interface names).
    pub fn validate(&self) -> Result<()> {
        let name_ok = self.name.len() == 12
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !name_ok {
            return Err(Error::Invalid(format!(
                "Playground network name {:?} is not 12 lowercase letters or digits",
                self.name
            )));
        }
        if self.nodes.is_empty() || self.nodes.len() > Self::MAX_NODES {
            return Err(Error::Invalid(format!(
                "A playground has 1 to {} nodes, not {}",
                Self::MAX_NODES,
                self.nodes.len()
            )));
        }
        Ok(())
    }
}

/// Resource usage of one sandbox.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub memory_bytes: u64,
    pub memory_peak_bytes: u64,
    pub memory_limit_bytes: u64,
    pub oom_kills: u64,
    pub pids: u64,
    pub cpu_usage_ns: u64,
}

/// The id of every sandbox that still has some resource where a driver runs them.
#[derive(Clone, Debug, Default)]
pub struct HostResources {
    pub ids: std::collections::BTreeSet<SandboxId>,
}

/// A way to run sandboxes: the container driver on this host, later Kubernetes Pods or
/// microVMs. The trait names only what every implementation means; facts one driver owns
/// (egress address slots, host pids, the local image store) stay inside it. All methods
/// are idempotent where that makes sense, so a caller that crashed half way can simply call
/// them again. A new driver is one new file implementing this trait plus one line in the
/// composition root that registers it ([`Drivers::register`]).
#[async_trait]
pub trait Driver: Send + Sync + 'static {
    /// The driver's registry key, stored in every record it creates (e.g. `container`).
    fn name(&self) -> &str;
    /// Checks a spec without side effects (limits, image exists), so a bad request is
    /// refused before a record is written.
    async fn validate(&self, spec: &SandboxSpec) -> Result<()>;
    /// Prepares every resource of the sandbox and starts it; returns its addresses once
    /// its agent can be reached. A failed create leaves nothing behind.
    async fn create(&self, spec: &SandboxSpec) -> Result<NetworkInfo>;
    /// A connection to the sandbox's agent (exec, PTY, files).
    async fn agent(&self, id: &SandboxId, timeout: Duration) -> Result<AgentClient>;
    /// Whether the sandbox's init process (the agent) is alive.
    async fn is_running(&self, id: &SandboxId) -> Result<bool>;
    /// Resolves once the sandbox's init has exited (or the sandbox is gone). The default
    /// looks every half second; a driver that can be told (a pidfd, a watch) does better.
    async fn wait_exited(&self, id: &SandboxId) -> Result<()> {
        while self.is_running(id).await? {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Ok(())
    }
    /// Kills every process of the sandbox; resources stay until [`Driver::remove`].
    async fn stop(&self, id: &SandboxId) -> Result<()>;
    /// Removes every resource of `id`. Succeeds when nothing is left.
    async fn remove(&self, id: &SandboxId) -> Result<()>;
    /// Current resource usage.
    async fn stats(&self, id: &SandboxId) -> Result<Stats>;
    /// Every sandbox id of this driver that owns at least one resource.
    async fn host_resources(&self) -> Result<HostResources>;
    /// SIGKILLs every process of the sandbox but its init (the agent), so a fork bomb or a
    /// runaway program no longer holds its pids; returns how many were killed.
    async fn kill_processes(&self, id: &SandboxId) -> Result<usize> {
        let _ = id;
        Err(Error::Invalid(format!(
            "The {} driver cannot kill a sandbox's processes",
            self.name()
        )))
    }
    /// Marks a warm pool member as claimed before its record changes hands, so that two
    /// replicas never hand out one sandbox: fails with [`Error::Conflict`] when another
    /// claimed it first. Drivers with nothing to mark (the record's compare-and-swap is
    /// the claim) keep the default.
    async fn claim(&self, id: &SandboxId) -> Result<()> {
        let _ = id;
        Ok(())
    }
    /// What the host has for one more sandbox; unknown fields skip their admission check.
    async fn capacity(&self) -> Result<capacity::Capacity> {
        Ok(capacity::Capacity::default())
    }
}

/// The drivers a manager can use, by name; records name theirs, so sandboxes of several
/// drivers live side by side. The first registered is the default for new sandboxes.
#[derive(Clone, Default)]
pub struct Drivers {
    by_name: std::collections::BTreeMap<String, std::sync::Arc<dyn Driver>>,
    default: Option<String>,
}

impl Drivers {
    /// One driver, the default.
    pub fn one(driver: std::sync::Arc<dyn Driver>) -> Drivers {
        Drivers::default().register(driver)
    }

    /// Adds `driver` under its name (replacing one of the same name).
    pub fn register(mut self, driver: std::sync::Arc<dyn Driver>) -> Drivers {
        let name = driver.name().to_owned();
        self.default.get_or_insert_with(|| name.clone());
        self.by_name.insert(name, driver);
        self
    }

    /// The driver, when exactly one is registered.
    pub fn only(&self) -> Option<&std::sync::Arc<dyn Driver>> {
        let mut all = self.by_name.values();
        match (all.next(), all.next()) {
            (Some(d), None) => Some(d),
            _ => None,
        }
    }

    pub fn get(&self, name: &str) -> Result<&std::sync::Arc<dyn Driver>> {
        self.by_name
            .get(name)
            .ok_or_else(|| Error::UnknownDriver(name.to_owned()))
    }

    /// The driver used when a create names none.
    pub fn default_driver(&self) -> Result<&std::sync::Arc<dyn Driver>> {
        let name = self.default.as_deref().ok_or(Error::NoDriver)?;
        self.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &std::sync::Arc<dyn Driver>> {
        self.by_name.values()
    }
}
