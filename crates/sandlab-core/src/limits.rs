//! Resource limits, network modes and sandbox states.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::units::ByteSize;

/// Upper bounds an operator can never exceed through a request or a lab file.
pub const MAX_MEMORY: ByteSize = ByteSize::gib(64);
pub const MAX_DISK: ByteSize = ByteSize::gib(1024);
pub const MAX_CPUS: f64 = 64.0;
pub const MAX_PIDS: u32 = 1 << 20;
pub const MIN_MEMORY: ByteSize = ByteSize::mib(16);
pub const MIN_DISK: ByteSize = ByteSize::mib(16);

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LimitsError {
    #[error("Memory limit {0} is outside 16M..64G")]
    Memory(ByteSize),
    #[error("Disk limit {0} is outside 16M..1024G")]
    Disk(ByteSize),
    #[error("CPU limit {0} is not between 0.01 and 64")]
    Cpus(f64),
    #[error("Pids limit {0} is not between 8 and 1048576")]
    Pids(u32),
    #[error("Network mode {0:?} is not `none` or `egress`")]
    Network(String),
    #[error("Profile {0:?} is not `standard` or `machine`")]
    Profile(String),
}

/// The enforced resource limits of one sandbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub memory: ByteSize,
    pub cpus: f64,
    pub pids: u32,
    pub disk: ByteSize,
    pub network: NetworkMode,
    /// What the sandbox is: a hardened shell or a machine (systemd, Docker inside).
    #[serde(default)]
    pub profile: Profile,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: ByteSize::mib(512),
            cpus: 1.0,
            pids: 256,
            disk: ByteSize::gib(2),
            network: NetworkMode::None,
            profile: Profile::Standard,
        }
    }
}

impl Limits {
    /// Checks every limit against the hard bounds; the first problem is returned.
    pub fn validate(&self) -> Result<(), LimitsError> {
        if self.memory < MIN_MEMORY || self.memory > MAX_MEMORY {
            return Err(LimitsError::Memory(self.memory));
        }
        if self.disk < MIN_DISK || self.disk > MAX_DISK {
            return Err(LimitsError::Disk(self.disk));
        }
        if !(self.cpus >= 0.01 && self.cpus <= MAX_CPUS) {
            return Err(LimitsError::Cpus(self.cpus));
        }
        if self.pids < 8 || self.pids > MAX_PIDS {
            return Err(LimitsError::Pids(self.pids));
        }
        Ok(())
    }
}

/// What a sandbox may reach on the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// Loopback only.
    #[default]
    None,
    /// NAT to the internet; private ranges, link-local, the host and the control plane dropped.
    Egress,
}

impl FromStr for NetworkMode {
    type Err = LimitsError;
    fn from_str(s: &str) -> Result<Self, LimitsError> {
        match s {
            "none" => Ok(NetworkMode::None),
            "egress" => Ok(NetworkMode::Egress),
            other => Err(LimitsError::Network(other.chars().take(32).collect())),
        }
    }
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            NetworkMode::None => "none",
            NetworkMode::Egress => "egress",
        })
    }
}

/// What kind of sandbox: the kernel surface it is given and what runs as its PID 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// A hardened shell: the agent is PID 1, Docker's default capabilities and seccomp
    /// profile, no mounts, no namespaces of its own.
    #[default]
    Standard,
    /// A machine: systemd is PID 1 when the image has it, every capability within the
    /// sandbox's user namespace, its own cgroup subtree, network namespace and mounts, so
    /// Docker, containerd and podman run inside (docs/machine-profile.md).
    Machine,
}

impl FromStr for Profile {
    type Err = LimitsError;
    fn from_str(s: &str) -> Result<Self, LimitsError> {
        match s {
            "standard" => Ok(Profile::Standard),
            "machine" => Ok(Profile::Machine),
            other => Err(LimitsError::Profile(other.chars().take(32).collect())),
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Profile::Standard => "standard",
            Profile::Machine => "machine",
        })
    }
}

/// `creating → running → stopping → removed`, or `failed` with a reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxState {
    Creating,
    Running,
    Stopping,
    Removed,
    Failed,
}

impl SandboxState {
    /// Whether the state machine allows moving from `self` to `next`.
    pub fn can_move_to(self, next: SandboxState) -> bool {
        use SandboxState::*;
        matches!(
            (self, next),
            (Creating, Running)
                | (Creating, Failed)
                | (Creating, Stopping)
                | (Running, Stopping)
                | (Running, Failed)
                | (Stopping, Removed)
                | (Stopping, Failed)
                | (Failed, Stopping)
                | (Failed, Removed)
        )
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, SandboxState::Removed)
    }
}

impl fmt::Display for SandboxState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            SandboxState::Creating => "creating",
            SandboxState::Running => "running",
            SandboxState::Stopping => "stopping",
            SandboxState::Removed => "removed",
            SandboxState::Failed => "failed",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_spec() {
        let l = Limits::default();
        assert_eq!(l.memory.to_string(), "512M");
        assert_eq!(l.cpus, 1.0);
        assert_eq!(l.pids, 256);
        assert_eq!(l.disk.to_string(), "2G");
        assert!(l.validate().is_ok());
    }

    #[test]
    fn validate_rejects_out_of_range() {
        let mut l = Limits {
            memory: ByteSize(1),
            ..Limits::default()
        };
        assert!(matches!(l.validate(), Err(LimitsError::Memory(_))));
        l = Limits {
            cpus: f64::NAN,
            ..Limits::default()
        };
        assert!(matches!(l.validate(), Err(LimitsError::Cpus(_))));
        l = Limits {
            pids: 0,
            ..Limits::default()
        };
        assert!(matches!(l.validate(), Err(LimitsError::Pids(_))));
    }

    #[test]
    fn state_machine() {
        use SandboxState::*;
        assert!(Creating.can_move_to(Running));
        assert!(Running.can_move_to(Stopping));
        assert!(Stopping.can_move_to(Removed));
        assert!(!Removed.can_move_to(Running));
        assert!(!Running.can_move_to(Creating));
    }

    #[test]
    fn network_mode_parse() {
        assert_eq!("egress".parse::<NetworkMode>(), Ok(NetworkMode::Egress));
        assert!("bridge".parse::<NetworkMode>().is_err());
    }
}
