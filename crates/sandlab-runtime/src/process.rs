//! Which process holds a record or a lease, and whether it still lives.
//!
//! A [`Holder`] names a process on one boot of one host. On this host the answer is
//! exact and immediate: the pid is alive, not a zombie, and started at the same clock tick
//! (so a later process that reused the pid does not count). A holder of another host (a
//! control-plane replica elsewhere, sharing the database) cannot be looked at; it counts as
//! alive while it keeps its liveness lease ([`Holder::liveness_lease`]) fresh.

use sandlab_core::{Holder, LeaseStore};

use crate::error::{Error, Result};

/// The inode of the host's initial PID namespace (`PROC_PID_INIT_INO`), the same on
/// every Linux.
const INITIAL_PID_NS: u64 = 0xEFFF_FFFC;

/// What names "this host" in a holder: the boot id (`/proc/sys/kernel/random/boot_id`),
/// and, for a process in a PID namespace of its own (a replica in a Pod or a container),
/// that namespace's inode too, read once. Two processes that see the same pids share it;
/// replicas in two Pods on one node do not (each may be PID 1), so each counts the other
/// as remote and looks at its liveness lease instead of at a pid that is not its.
fn boot_id() -> Result<&'static str> {
    static BOOT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    BOOT.get_or_init(|| {
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let boot = boot.trim().to_owned();
        Some(match pid_namespace() {
            Some(ns) if ns != INITIAL_PID_NS => format!("{boot}-n{ns}"),
            _ => boot,
        })
    })
    .as_deref()
    .ok_or_else(|| Error::Host("Cannot read /proc/sys/kernel/random/boot_id".into()))
}

/// The inode of this process's PID namespace (`/proc/self/ns/pid` is `pid:[INODE]`).
fn pid_namespace() -> Option<u64> {
    let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let text = link.to_str()?;
    text.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
}

/// The state letter and start time (clock ticks since boot) of `pid`, from
/// `/proc/PID/stat` (`pid (comm) S ...`; comm may hold spaces and parentheses).
fn stat_of(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(") ")?;
    let fields: Vec<&str> = rest.split(' ').collect();
    // After the comm: field 3 (state) is fields[0], field 22 (starttime) is fields[19].
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// The holder that names `pid` on this host, while it runs.
pub fn holder_of(pid: u32) -> Result<Holder> {
    let (_, start) =
        stat_of(pid).ok_or_else(|| Error::Host(format!("Process {pid} does not exist")))?;
    Holder::new(boot_id()?, pid, start).map_err(|e| Error::Host(e.to_string()))
}

/// The holder that names this process.
pub fn current() -> Result<Holder> {
    holder_of(std::process::id())
}

/// Whether `holder` is a process of this boot of this host.
pub fn is_local(holder: &Holder) -> bool {
    boot_id().is_ok_and(|b| b == holder.boot_id())
}

/// Whether a holder of this host still runs: same pid, same start, not a zombie.
pub fn local_alive(holder: &Holder) -> bool {
    stat_of(holder.pid())
        .is_some_and(|(state, start)| state != 'Z' && start == holder.start_ticks())
}

/// Whether `holder` still lives: looked at on this host, its liveness lease otherwise.
pub async fn alive(holder: &Holder, leases: &dyn LeaseStore) -> Result<bool> {
    if is_local(holder) {
        return Ok(local_alive(holder));
    }
    Ok(leases.get_lease(&holder.liveness_lease()).await?.is_some())
}

/// Resolves when process `pid` exits, at once when there is none. Waits on a pidfd, so
/// an idle waiter costs no CPU.
pub async fn wait_exit(pid: u32) {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: pidfd_open(2) with flags 0; the result is checked before use.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return;
    }
    // SAFETY: `fd` is a fresh descriptor owned by nobody else.
    let owned = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // SAFETY: the AsyncFd owns `owned`, so the descriptor stays open and the same for
    // its lifetime.
    match unsafe { tokio::io::unix::AsyncFd::register(owned) } {
        // A pidfd turns readable when its process exits.
        Ok(fd) => drop(fd.readable().await),
        Err(_) => {
            while stat_of(pid).is_some_and(|(state, _)| state != 'Z') {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_in_the_hosts_pid_namespace_is_named_by_the_boot_id_alone() {
        // The tests run on the host: the holder's host part is the plain boot id, as in
        // every record written before PID namespaces were told apart.
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
        if pid_namespace() == Some(INITIAL_PID_NS) {
            assert_eq!(boot_id().unwrap(), boot.trim());
        } else {
            assert!(boot_id()
                .unwrap()
                .starts_with(&format!("{}-n", boot.trim())));
        }
    }

    #[test]
    fn this_process_is_alive_and_a_reused_pid_is_not() {
        let me = current().unwrap();
        assert!(is_local(&me));
        assert!(local_alive(&me));
        let reused = Holder::new(me.boot_id(), me.pid(), me.start_ticks() + 1).unwrap();
        assert!(!local_alive(&reused));
        let elsewhere = Holder::new("another-boot", me.pid(), me.start_ticks()).unwrap();
        assert!(!is_local(&elsewhere));
    }

    #[tokio::test]
    async fn wait_exit_returns_when_the_process_ends() {
        let mut child = std::process::Command::new("sleep")
            .arg("0.2")
            .spawn()
            .unwrap();
        let pid = child.id();
        let waiter = tokio::spawn(wait_exit(pid));
        tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(10), waiter)
            .await
            .expect("wait_exit never returned")
            .unwrap();
        // No such process: at once.
        wait_exit(u32::MAX / 2).await;
    }

    #[test]
    fn a_reaped_child_is_gone() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let h = holder_of(child.id()).unwrap();
        child.wait().unwrap();
        assert!(!local_alive(&h));
    }
}
