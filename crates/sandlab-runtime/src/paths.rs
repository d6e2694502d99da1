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

/// Makes `data_dir` (already created and canonical) traversable by the sandboxes' mapped
/// root, which the OCI runtime needs to bind-mount a rootfs from inside the sandbox's user
/// namespace: the data dir itself gets `o+x` (not `o+r`; `mktemp -d` makes 0700), and an
/// ancestor without `o+x` stops start-up with one sentence instead of failing every create
/// later with an opaque `permission denied`.
pub fn ensure_traversable(data_dir: &Path) -> crate::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let io = crate::Error::io;
    let meta = std::fs::metadata(data_dir).map_err(io(data_dir))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o001 == 0 {
        std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(mode | 0o011))
            .map_err(io(data_dir))?;
    }
    for dir in data_dir.ancestors().skip(1) {
        let mode = std::fs::metadata(dir)
            .map_err(io(dir))?
            .permissions()
            .mode();
        if mode & 0o001 == 0 {
            return Err(crate::Error::Host(format!(
                "The data dir {} is inside {}, which sandboxes cannot traverse (mode {:o}); run `chmod o+x {}` or choose a data dir elsewhere",
                data_dir.display(),
                dir.display(),
                mode & 0o7777,
                dir.display()
            )));
        }
    }
    Ok(())
}

/// Where `ip netns` keeps named network namespaces, so operators can inspect ours.
pub const NETNS_DIR: &str = "/run/netns";
/// Root directory for the OCI runtime's container state.
pub const RUNTIME_STATE_DIR: &str = "/run/sandlab";

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_private_data_dir_is_made_traversable_and_a_private_parent_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        // `mktemp -d` as the data dir itself: fixed, not refused.
        let data = tmp.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
        ensure_traversable(&data).unwrap();
        assert_eq!(mode(&data), 0o711);
        // A parent the sandboxes cannot cross: one sentence naming it and the fix.
        let private = tmp.path().join("private");
        let inner = private.join("data");
        std::fs::create_dir_all(&inner).unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
        let err = ensure_traversable(&inner).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "The data dir {} is inside {}, which sandboxes cannot traverse (mode 700); run `chmod o+x {}` or choose a data dir elsewhere",
                inner.display(),
                private.display(),
                private.display()
            )
        );
    }
}
