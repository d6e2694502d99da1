//! The OCI runtime binary (runc, crun or runsc): detection and invocation.
//!
//! Detection picks the configured runtime, or the first of runc and crun that works on
//! this host. crun 1.8 refuses cgroup "hybrid" hosts (v1 hierarchies with a v2 mount), so
//! on such a host `auto` falls back to runc and an explicit `crun` is refused with a
//! sentence saying why.

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

use crate::cgroups::CgroupMode;
use crate::command;
use crate::config::RuntimeChoice;
use crate::error::{Error, Result};
use crate::paths::RUNTIME_STATE_DIR;

/// The file in the bundle where the runtime writes the host pid of the sandbox's init.
pub const INIT_PID_FILE: &str = "init.pid";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuntimeKind {
    Runc,
    Crun,
    Runsc,
}

impl RuntimeKind {
    fn binary(self) -> &'static str {
        match self {
            RuntimeKind::Runc => "runc",
            RuntimeKind::Crun => "crun",
            RuntimeKind::Runsc => "runsc",
        }
    }
}

#[derive(Clone, Debug)]
pub struct OciRuntime {
    pub kind: RuntimeKind,
    pub path: PathBuf,
    pub root: PathBuf,
}

/// Why `kind` cannot run on a host with cgroups in `mode`, if it cannot.
fn incompatibility(kind: RuntimeKind, mode: CgroupMode) -> Option<String> {
    match (kind, mode) {
        (RuntimeKind::Crun, CgroupMode::Hybrid) => Some(
            "crun refuses this host's cgroup hybrid mode (v1 hierarchies with a v2 mount); use runc, or boot the host with cgroup v2 only".into(),
        ),
        _ => None,
    }
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

impl OciRuntime {
    /// Picks the runtime for `choice` on a host whose cgroups are in `mode`.
    pub fn detect(choice: RuntimeChoice, mode: CgroupMode) -> Result<OciRuntime> {
        let candidates: &[RuntimeKind] = match choice {
            RuntimeChoice::Auto | RuntimeChoice::Native => &[RuntimeKind::Runc, RuntimeKind::Crun],
            RuntimeChoice::Runc => &[RuntimeKind::Runc],
            RuntimeChoice::Crun => &[RuntimeKind::Crun],
            RuntimeChoice::Runsc => &[RuntimeKind::Runsc],
        };
        let mut reasons = Vec::new();
        for &kind in candidates {
            let Some(path) = find_in_path(kind.binary()) else {
                reasons.push(format!("{} is not installed", kind.binary()));
                continue;
            };
            if let Some(why) = incompatibility(kind, mode) {
                if choice == RuntimeChoice::Auto {
                    tracing::info!(runtime = kind.binary(), "skipping OCI runtime: {why}");
                }
                reasons.push(why);
                continue;
            }
            let root = Path::new(RUNTIME_STATE_DIR).join(kind.binary());
            return Ok(OciRuntime { kind, path, root });
        }
        Err(Error::NoRuntime(reasons.join("; ")))
    }

    pub fn name(&self) -> &'static str {
        self.kind.binary()
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.path);
        cmd.arg("--root").arg(&self.root);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.kill_on_drop(true);
        cmd
    }

    async fn output(&self, what: &str, mut cmd: Command) -> Result<Vec<u8>> {
        let out = cmd.output().await.map_err(|source| Error::Spawn {
            what: self.name().into(),
            source,
        })?;
        command::checked(|| format!("{} {what}", self.name()), out)
    }

    /// Creates and starts the container in the background with `listener` as its fd 3.
    /// With `joined`, the runtime itself runs inside that network namespace and with that
    /// open-files limit, which the sandbox inherits (see `spec::build`).
    pub async fn run_detached(
        &self,
        id: &str,
        bundle: &Path,
        listener: BorrowedFd<'_>,
        joined: Option<(BorrowedFd<'_>, u64)>,
        console: Option<&Path>,
    ) -> Result<()> {
        let mut cmd = self.command();
        // A detached container's init gets the runtime's stdio. An init that keeps it (an
        // image's systemd) would hold our pipe open for ever: it gets `console`, a file,
        // instead, which also holds the runtime's own error.
        let console_file = match console {
            Some(path) => {
                let file = std::fs::File::create(path).map_err(Error::io(path))?;
                cmd.stdout(Stdio::null())
                    .stderr(file.try_clone().map_err(Error::io(path))?);
                Some(path)
            }
            None => None,
        };
        cmd.args(["run", "--detach", "--preserve-fds", "1", "--pid-file"])
            .arg(bundle.join(INIT_PID_FILE))
            .arg("--bundle")
            .arg(bundle)
            .arg(id);
        let fd = listener.as_raw_fd();
        let joined = joined.map(|(net, nofile)| (net.as_raw_fd(), nofile));
        // SAFETY: between fork and exec we only call prctl, setns, setrlimit, dup2 and
        // fcntl, which are async-signal-safe; `fd` and the netns fd stay open in the parent
        // for the whole call.
        unsafe {
            cmd.pre_exec(move || {
                if let Some((net, nofile)) = joined {
                    let limit = libc::rlimit {
                        rlim_cur: nofile,
                        rlim_max: nofile,
                    };
                    if libc::setns(net, libc::CLONE_NEWNET) != 0
                        || libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                // If we are killed mid-create, runc must not finish the container after
                // reconciliation has already cleaned up.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                pass_as_fd3(fd)
            });
        }
        match (self.output("run", cmd).await, console_file) {
            (Err(Error::Command { what, status, .. }), Some(path)) => Err(Error::Command {
                what,
                status,
                stderr: command::last_line(&std::fs::read(path).unwrap_or_default()),
            }),
            (result, _) => result.map(drop),
        }
    }

    /// Starts `process` (an OCI process JSON file) in the running container `id`, in the
    /// background, with `listener` as its fd 3 and `nofile` as its open-files limit: a
    /// machine's agent, beside its systemd. The runtime joins only the namespaces the
    /// container's config names, and a sandbox with its own user namespace has its network
    /// namespace joined by the runtime process instead (see `run_detached`): so the runtime
    /// enters `netns` first, or the process would run in the host's network namespace.
    pub async fn exec_detached(
        &self,
        id: &str,
        process: &Path,
        listener: BorrowedFd<'_>,
        netns: BorrowedFd<'_>,
        nofile: u64,
    ) -> Result<()> {
        let net = netns.as_raw_fd();
        let mut cmd = self.command();
        cmd.args(["exec", "--detach", "--preserve-fds", "1", "--process"])
            .arg(process)
            .arg(id);
        let fd = listener.as_raw_fd();
        // SAFETY: between fork and exec only setns, setrlimit, prctl, dup2 and fcntl, which
        // are async-signal-safe; `fd` and `net` stay open in the parent for the whole call.
        unsafe {
            cmd.pre_exec(move || {
                let limit = libc::rlimit {
                    rlim_cur: nofile,
                    rlim_max: nofile,
                };
                if libc::setns(net, libc::CLONE_NEWNET) != 0
                    || libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0
                    || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                pass_as_fd3(fd)
            });
        }
        self.output("exec", cmd).await.map(drop)
    }

    pub async fn kill(&self, id: &str) -> Result<()> {
        let mut cmd = self.command();
        cmd.args(["kill", "--all", id, "KILL"]);
        match self.output("kill", cmd).await {
            Ok(_) => Ok(()),
            Err(Error::Command { stderr, .. }) if is_gone(&stderr) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn delete(&self, id: &str) -> Result<()> {
        let mut cmd = self.command();
        cmd.args(["delete", "--force", id]);
        match self.output("delete", cmd).await {
            Ok(_) => Ok(()),
            Err(Error::Command { stderr, .. }) if is_gone(&stderr) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// In a child between fork and exec: makes `fd` the child's fd 3, open across exec.
fn pass_as_fd3(fd: RawFd) -> std::io::Result<()> {
    // SAFETY: fcntl and dup2 on descriptors of this process; async-signal-safe.
    unsafe {
        if fd == 3 {
            let flags = libc::fcntl(3, libc::F_GETFD);
            if flags < 0 || libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                return Err(std::io::Error::last_os_error());
            }
        } else if libc::dup2(fd, 3) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn is_gone(stderr: &str) -> bool {
    stderr.contains("does not exist")
        || stderr.contains("not found")
        || stderr.contains("container not running")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crun_is_refused_on_hybrid_hosts_with_a_reason() {
        let why = incompatibility(RuntimeKind::Crun, CgroupMode::Hybrid).unwrap();
        assert!(why.contains("hybrid"), "{why}");
        assert!(incompatibility(RuntimeKind::Crun, CgroupMode::Unified).is_none());
        assert!(incompatibility(RuntimeKind::Runc, CgroupMode::Hybrid).is_none());
    }

    #[test]
    fn explicit_crun_on_hybrid_fails_with_the_reason() {
        if find_in_path("crun").is_none() {
            return;
        }
        let err = OciRuntime::detect(RuntimeChoice::Crun, CgroupMode::Hybrid).unwrap_err();
        assert!(err.to_string().contains("hybrid"), "{err}");
    }

    #[test]
    fn auto_falls_back_to_runc_on_hybrid() {
        if find_in_path("runc").is_none() {
            return;
        }
        let rt = OciRuntime::detect(RuntimeChoice::Auto, CgroupMode::Hybrid).unwrap();
        assert_eq!(rt.kind, RuntimeKind::Runc);
    }
}
