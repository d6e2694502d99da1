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
//!
//! so that reconciliation ([`Driver::host_resources`]) can find and remove everything a
//! crash left behind. The [`manager::SandboxManager`] writes the record before the first
//! side effect and owns the `creating → running → stopping → removed` transitions.

mod agent_binary;
mod cgroups;
mod command;
mod config;
mod container;
mod error;
pub mod manager;
mod mounts;
mod netns;
mod network;
mod ocirt;
mod paths;
pub mod records;
mod seccomp;
mod spec;
mod volume;

use std::time::Duration;

use async_trait::async_trait;
pub use config::{RuntimeChoice, RuntimeConfig};
pub use container::ContainerDriver;
pub use error::{Error, Result};
pub use sandlab_core::{Limits, NetworkMode, SandboxId, SandboxState};
pub use sandlab_image::ImageInfo;
pub use sandlab_proto::AgentClient;
use serde::{Deserialize, Serialize};

/// Everything a driver needs to create one sandbox.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SandboxSpec {
    pub id: SandboxId,
    /// Image name in the image store.
    pub image: String,
    pub limits: Limits,
    /// Hostname inside the sandbox; defaults to the id.
    pub hostname: Option<String>,
    /// Extra environment for every process the agent starts.
    #[serde(default)]
    pub env: Vec<String>,
    /// A private network shared with other sandboxes (the nodes of one playground).
    #[serde(default)]
    pub private: Option<PrivateNet>,
}

/// A layer-2 network of its own for the nodes of one playground: `eth1` in each, on a
/// host bridge without an address (the host neither routes for it nor answers on it), so
/// only the members reach each other. Each member resolves the others by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateNet {
    /// Names the network (members share it): 12 of `[a-z0-9]`.
    pub name: String,
    /// This member's address; the network is `10.214.0.0/24` in every playground.
    pub addr: std::net::Ipv4Addr,
    /// Every member by hostname, written to `/etc/hosts`.
    pub hosts: Vec<(String, std::net::Ipv4Addr)>,
}

impl PrivateNet {
    /// Whether `name` is usable as a network name (it becomes part of interface names).
    pub fn valid_name(name: &str) -> bool {
        name.len() == 12
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    }

    /// Addresses for `names` in order: `10.214.0.10`, `.11`, ... (at most 200 members).
    pub fn plan(net: &str, names: &[String]) -> Vec<PrivateNet> {
        let hosts: Vec<(String, std::net::Ipv4Addr)> = names
            .iter()
            .take(200)
            .enumerate()
            .map(|(i, n)| (n.clone(), std::net::Ipv4Addr::new(10, 214, 0, 10 + i as u8)))
            .collect();
        hosts
            .iter()
            .map(|(_, addr)| PrivateNet {
                name: net.to_owned(),
                addr: *addr,
                hosts: hosts.clone(),
            })
            .collect()
    }
}

/// Network facts of a started sandbox, kept in its record.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkInfo {
    /// Slot in the egress address pool; `None` for `--network none`.
    pub slot: Option<u32>,
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
}

/// Resource usage of one sandbox, read from its cgroup.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub memory_bytes: u64,
    pub memory_peak_bytes: u64,
    pub memory_limit_bytes: u64,
    pub oom_kills: u64,
    pub pids: u64,
    pub cpu_usage_ns: u64,
}

/// The id of every sandbox that still has some resource on the host.
#[derive(Clone, Debug, Default)]
pub struct HostResources {
    pub ids: std::collections::BTreeSet<SandboxId>,
}

/// A way to run sandboxes. All methods are idempotent where that makes sense, so a
/// caller that crashed half way can simply call them again.
#[async_trait]
pub trait Driver: Send + Sync + 'static {
    /// Short name for logs and `sandlab sandbox ls`, e.g. `runc`.
    fn name(&self) -> &str;
    /// Checks a spec without side effects (limits, image exists), so a bad request is
    /// refused before a record is written.
    async fn validate(&self, spec: &SandboxSpec) -> Result<()>;
    /// Prepares every host resource of the sandbox (writable layer, rootfs, netns,
    /// bundle) and starts it; returns once its agent answers.
    async fn create(&self, spec: &SandboxSpec, net: &NetworkInfo) -> Result<()>;
    /// A connection to the sandbox's agent (exec, PTY, files).
    async fn agent(&self, id: &SandboxId, timeout: Duration) -> Result<AgentClient>;
    /// The host pid of the sandbox's init process (the agent), while it runs.
    async fn init_pid(&self, id: &SandboxId) -> Result<Option<u32>>;
    /// Whether the sandbox's init process (the agent) is alive.
    async fn is_running(&self, id: &SandboxId) -> Result<bool>;
    /// Kills every process of the sandbox; resources stay until [`Driver::remove`].
    async fn stop(&self, id: &SandboxId) -> Result<()>;
    /// Removes every host resource named after `id`. Succeeds when nothing is left.
    async fn remove(&self, id: &SandboxId) -> Result<()>;
    /// Current resource usage.
    async fn stats(&self, id: &SandboxId) -> Result<Stats>;
    /// Every sandbox id that owns at least one resource on this host.
    async fn host_resources(&self) -> Result<HostResources>;
    /// The images sandboxes can be created from, by name.
    async fn images(&self) -> Result<Vec<ImageInfo>>;
    /// The sandbox's IPv4 and IPv6 addresses for egress slot `slot`, when the driver
    /// assigns them from slots.
    fn slot_addresses(&self, _slot: u32) -> Option<(String, String)> {
        None
    }
}
