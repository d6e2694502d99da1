//! PID 1 duties: reap every child and orphan, route exit statuses of exec children
//! to their streams, and kill everything at shutdown.
//!
//! Spawning and reaping take the same lock, so a child cannot be reaped between its
//! `fork` and the registration of its waiter (and std's own `waitpid` on a failed
//! `exec` cannot race the reaper either).

use std::collections::HashMap;
use std::io;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::signal::unix::Signal;
use tokio::sync::{oneshot, Notify};

use crate::log::log;

/// A raw `waitpid` status.
pub type RawStatus = libc::c_int;

pub struct Reaper {
    state: Mutex<State>,
    /// Notified after every sweep.
    swept: Notify,
}

#[derive(Default)]
struct State {
    /// Exec children (pid = process group id) waiting for their status.
    waiting: HashMap<libc::pid_t, oneshot::Sender<RawStatus>>,
    /// The last sweep found no children at all.
    no_children: bool,
}

impl Reaper {
    pub fn new() -> Arc<Reaper> {
        Arc::new(Reaper {
            state: Mutex::new(State::default()),
            swept: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Plain map of senders: usable after a panic elsewhere.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Spawns `cmd` and registers for its exit status.
    pub fn spawn(&self, cmd: &mut Command) -> io::Result<(Child, oneshot::Receiver<RawStatus>)> {
        let mut st = self.lock();
        let child = cmd.spawn()?;
        let (tx, rx) = oneshot::channel();
        // A u32 pid from the kernel always fits a pid_t.
        st.waiting.insert(child.id() as libc::pid_t, tx);
        st.no_children = false;
        Ok((child, rx))
    }

    /// Exec children still running.
    pub fn running(&self) -> usize {
        self.lock().waiting.len()
    }

    /// Reaps every exited child without blocking.
    pub fn sweep(&self) {
        let mut st = self.lock();
        loop {
            let mut status: RawStatus = 0;
            // SAFETY: waitpid with WNOHANG writes only to `status`.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid > 0 {
                if let Some(tx) = st.waiting.remove(&pid) {
                    let _ = tx.send(status);
                } else {
                    log!("reaped orphan {pid}");
                }
                continue;
            }
            if pid < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            // 0: children remain, none exited. -1 ECHILD: no children at all.
            st.no_children = pid < 0;
            break;
        }
        drop(st);
        self.swept.notify_waiters();
    }

    /// Reaps on every SIGCHLD (registered by the caller before any child exists).
    pub async fn run(self: Arc<Self>, mut sigchld: Signal) {
        loop {
            self.sweep();
            if sigchld.recv().await.is_none() {
                return;
            }
        }
    }

    /// Waits until the process has no children left.
    pub async fn until_no_children(&self) {
        self.sweep();
        self.wait_sweep_without_children().await;
    }

    /// Waits for a sweep (by the SIGCHLD task) that finds no children.
    async fn wait_sweep_without_children(&self) {
        loop {
            let notified = self.swept.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.lock().no_children {
                return;
            }
            notified.await;
        }
    }

    /// Sends `sig` to every process the agent is responsible for. As PID 1 that is
    /// every process in the namespace; otherwise the exec process groups and every
    /// direct child (orphans are re-parented to the agent, a child subreaper).
    pub fn signal_all(&self, sig: libc::c_int) {
        if std::process::id() == 1 {
            // SAFETY: kill(-1) from PID 1 signals every other process in its PID
            // namespace, never the caller; no memory is involved.
            unsafe { libc::kill(-1, sig) };
            return;
        }
        let groups: Vec<libc::pid_t> = self.lock().waiting.keys().copied().collect();
        for pgid in groups {
            kill_group(pgid, sig);
        }
        for pid in children_of(std::process::id()) {
            // SAFETY: signalling a pid has no memory effects.
            unsafe { libc::kill(pid, sig) };
        }
    }

    /// SIGTERM everything, wait up to `grace` for it to exit, then SIGKILL what is
    /// left.
    pub async fn terminate_all(&self, grace: Duration) {
        self.signal_all(libc::SIGTERM);
        if tokio::time::timeout(grace, self.until_no_children())
            .await
            .is_ok()
        {
            return;
        }
        log!("children still alive after {grace:?}, killing them");
        let kill_round = async {
            loop {
                self.signal_all(libc::SIGKILL);
                self.sweep();
                let notified = self.swept.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.lock().no_children {
                    return;
                }
                // Re-signal after each reap: dying parents re-parent new orphans here.
                notified.await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), kill_round).await;
    }
}

/// Sends `sig` to a process group and to its leader (in case it left the group).
pub fn kill_group(pgid: libc::pid_t, sig: libc::c_int) {
    if pgid <= 1 {
        return;
    }
    // SAFETY: signalling a process group and a pid has no memory effects; pgid > 1
    // excludes the "every process" and "own group" special values.
    unsafe {
        libc::kill(-pgid, sig);
        libc::kill(pgid, sig);
    }
}

/// Pids whose parent is `ppid`, from `/proc/*/stat`.
fn children_of(ppid: u32) -> Vec<libc::pid_t> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let entry = entry.ok()?;
        let pid: libc::pid_t = entry.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
        // The command name may contain anything, so parse after its closing paren:
        // "pid (comm) state ppid ...".
        let rest = &stat[stat.rfind(')')? + 1..];
        let parent: u32 = rest.split_whitespace().nth(1)?.parse().ok()?;
        (parent == ppid).then_some(pid)
    })
    .collect()
}

/// Exit code and signal from a raw status.
pub fn decode_status(status: RawStatus) -> (Option<i32>, Option<i32>) {
    if libc::WIFEXITED(status) {
        (Some(libc::WEXITSTATUS(status)), None)
    } else if libc::WIFSIGNALED(status) {
        (None, Some(libc::WTERMSIG(status)))
    } else {
        (None, None)
    }
}
