//! Runtime configuration, as given by the CLI or the server's `sandlab.toml`.

use std::path::PathBuf;
use std::str::FromStr;

use sandlab_image::IdMap;
use serde::{Deserialize, Serialize};

/// Which runtime starts sandboxes: the native (in-process) one, or an OCI runtime binary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeChoice {
    /// The native runtime for standard sandboxes where the kernel allows it, and the
    /// first of runc, crun that works on this host for the rest (machines).
    #[default]
    Auto,
    /// The native runtime for standard sandboxes; machines still use an OCI runtime.
    Native,
    Runc,
    Crun,
    Runsc,
}

impl FromStr for RuntimeChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(RuntimeChoice::Auto),
            "native" => Ok(RuntimeChoice::Native),
            "runc" => Ok(RuntimeChoice::Runc),
            "crun" => Ok(RuntimeChoice::Crun),
            "runsc" => Ok(RuntimeChoice::Runsc),
            other => Err(format!(
                "runtime {other:?} is not one of auto, native, runc, crun, runsc"
            )),
        }
    }
}

#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    pub data_dir: PathBuf,
    pub runtime: RuntimeChoice,
    /// Host uid/gid range that root inside a sandbox maps to.
    pub idmap: IdMap,
    /// Size of the sparse btrfs file holding writable layers; `None` = 80% of free space, at most 1 TiB.
    pub volume_pool_bytes: Option<u64>,
    /// First octets of the IPv4 egress pool, a /16 cut into /30s.
    pub egress_v4_prefix: [u8; 2],
    /// Path of the static agent binary; found automatically when `None`.
    pub agent_path: Option<PathBuf>,
    /// Let sandboxes make 32-bit (i386, x32) syscalls; off by default (SPEC §5: a second
    /// kernel surface that `int 0x80` reaches, and `socketcall` hides its arguments).
    pub allow_32bit: bool,
    /// Sandboxes may be made with the `machine` profile (systemd, Docker inside; a larger
    /// kernel surface, docs/machine-profile.md). On by default; an operator can turn it off.
    pub allow_machine: bool,
    /// How many native-runtime launchers are kept ready, each already in cgroups of its
    /// own (see `native`).
    pub native_seeds: usize,
}

impl RuntimeConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        RuntimeConfig {
            data_dir: data_dir.into(),
            runtime: RuntimeChoice::Auto,
            idmap: IdMap::default(),
            volume_pool_bytes: None,
            egress_v4_prefix: [10, 213],
            agent_path: None,
            allow_32bit: false,
            allow_machine: true,
            native_seeds: 4,
        }
    }
}
