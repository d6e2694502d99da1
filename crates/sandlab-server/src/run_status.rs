//! How a finished process is judged: one classification for `POST /sandboxes/{id}/exec`
//! and for code execution (SPEC section 8), so the two never disagree on what a timeout
//! or a memory kill is.

use sandlab_proto::ExitStatus;

/// The verdict on one finished process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunStatus {
    Ok,
    RuntimeError,
    Timeout,
    MemoryLimit,
    OutputLimit,
}

/// What the host saw besides the process's own exit.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostView {
    /// The sandbox's cgroup counted a new OOM kill while it ran.
    pub oom_killed: bool,
    /// It used more CPU time than it was given.
    pub cpu_exceeded: bool,
}

impl RunStatus {
    /// Timeouts first (a wall or CPU limit also ends in a kill), then a memory kill, then
    /// cut output, then the exit code.
    pub fn of(exit: &ExitStatus, truncated: bool, host: HostView) -> RunStatus {
        if exit.timed_out || exit.signal == Some(libc::SIGXCPU) || host.cpu_exceeded {
            RunStatus::Timeout
        } else if exit.signal == Some(libc::SIGKILL) && host.oom_killed {
            RunStatus::MemoryLimit
        } else if truncated {
            RunStatus::OutputLimit
        } else if exit.code == Some(0) {
            RunStatus::Ok
        } else {
            RunStatus::RuntimeError
        }
    }

    /// The name the API answers with.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::RuntimeError => "runtime_error",
            RunStatus::Timeout => "timeout",
            RunStatus::MemoryLimit => "memory_limit",
            RunStatus::OutputLimit => "output_limit",
        }
    }
}
