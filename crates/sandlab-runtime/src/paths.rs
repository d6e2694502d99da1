//! Where a sandbox's host-side files live. Every path is derived from a validated
//! [`SandboxId`], never from anything a sandbox or a request controls.

use std::path::{Path, PathBuf};

use sandlab_core::SandboxId;

#[derive(Clone, Debug)]
pub struct Layout {
    pub data_dir: PathBuf,
}

impl Layout {
    pub fn sandboxes_dir(&self) -> PathBuf {
        self.data_dir.join("sandboxes")
    }
    pub fn sandbox_dir(&self, id: &SandboxId) -> PathBuf {
        self.sandboxes_dir().join(id.as_str())
    }
    pub fn bundle(&self, id: &SandboxId) -> PathBuf {
        self.sandbox_dir(id)
    }
    pub fn rootfs(&self, id: &SandboxId) -> PathBuf {
        self.sandbox_dir(id).join("rootfs")
    }
    pub fn agent_socket(&self, id: &SandboxId) -> PathBuf {
        self.sandbox_dir(id).join("agent.sock")
    }
    pub fn volumes_image(&self) -> PathBuf {
        self.data_dir.join("volumes.img")
    }
    pub fn volumes_dir(&self) -> PathBuf {
        self.data_dir.join("volumes")
    }
    pub fn volume(&self, id: &SandboxId) -> PathBuf {
        self.volumes_dir().join(id.as_str())
    }
    pub fn netns(id: &SandboxId) -> PathBuf {
        Path::new(NETNS_DIR).join(id.as_str())
    }
}

/// Where `ip netns` keeps named network namespaces, so operators can inspect ours.
pub const NETNS_DIR: &str = "/run/netns";
/// Root directory for the OCI runtime's container state.
pub const RUNTIME_STATE_DIR: &str = "/run/sandlab";
