//! What the host tells `sandlab-agent --launch` (the native runtime's launcher) to start:
//! one sandbox's init, fully described, so the launcher decides nothing itself.
//!
//! The host runs the launcher ahead of time (a *seed*: a process already placed in a
//! cgroup, waiting), and when a sandbox is created writes one [`LaunchPlan`] to the
//! launcher's stdin, a Unix socket: a `u32` little-endian length, then the plan as JSON.
//! The launcher answers on the same socket with lines:
//!
//! - `pid <n>` for each process it made that the host must reap (the intermediate that
//!   enters the namespaces), then `init <n>`: the host pid of the sandbox's init;
//! - `error <sentence>` when a step failed (then the host removes the sandbox);
//! - end of file once the init has executed the agent (its copy of the socket closes on
//!   exec), which is the launch's success.
//!
//! Every path in the plan is the host's, except those marked as inside the sandbox.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The largest plan the launcher reads (a plan is a few KiB).
pub const MAX_PLAN: u32 = 1 << 20;

/// Everything needed to start one sandbox's init.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LaunchPlan {
    /// The Unix socket the agent will serve on: the launcher binds it (mode 0600, owned by
    /// the host's root) and the init gets it as fd 3.
    pub agent_socket: PathBuf,
    /// The network namespace to join (made by the host, owned by its user namespace).
    pub netns: PathBuf,
    /// The sandbox's user namespace (made by the host, with its maps written).
    pub userns: PathBuf,
    /// The sandbox's cgroup on the cgroup v2 hierarchy, which the init is cloned into;
    /// `None` on a v1-only host. Its v1 cgroups are the launcher's own (it was placed).
    pub cgroup_v2: Option<PathBuf>,
    /// `RLIMIT_NOFILE` (soft and hard) of every process of the sandbox.
    pub nofile: u64,
    /// The root filesystem (the sandbox's overlay, mounted by the host).
    pub rootfs: PathBuf,
    pub hostname: String,
    /// Mounts made in order inside the new root, before `pivot_root`.
    pub mounts: Vec<Mount>,
    /// Device nodes of the host bound into the sandbox's `/dev` (`null`, `zero`, ...).
    pub devices: Vec<String>,
    /// Paths inside the sandbox hidden (an empty read-only tmpfs on a directory,
    /// `/dev/null` on a file); a missing path is skipped.
    pub masked: Vec<String>,
    /// Paths inside the sandbox made read-only (recursively); a missing path is skipped.
    pub readonly: Vec<String>,
    /// The capabilities the init keeps (numbers, `CAP_CHOWN` = 0), as bounding,
    /// permitted and effective sets; every other one is dropped.
    pub capabilities: Vec<u32>,
    pub no_new_privileges: bool,
    /// The seccomp filter: classic BPF, 8 bytes per instruction, installed last.
    pub seccomp: Vec<u8>,
    /// The program (inside the sandbox), its arguments and environment.
    pub args: Vec<String>,
    pub env: Vec<String>,
    /// The working directory, inside the sandbox.
    pub cwd: String,
}

/// One mount inside the new root.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Mount {
    /// Inside the sandbox; made (as a directory, or a file for a bind of a file) when
    /// missing, resolved without leaving the root.
    pub destination: String,
    /// A filesystem type (`proc`, `tmpfs`, `devpts`, `mqueue`, `cgroup2`, `sysfs`), or
    /// `bind`, or `cgroup` (the host's cgroup hierarchies as the sandbox's cgroup
    /// namespace shows them, read-only).
    pub kind: String,
    /// For a bind: the host path.
    pub source: String,
    /// `MS_*` flags (`nosuid`, `nodev`, `noexec`, `ro`, `rbind`, ...) and filesystem
    /// data (`mode=755`, `size=65536k`) as in an OCI config.
    pub options: Vec<String>,
}
