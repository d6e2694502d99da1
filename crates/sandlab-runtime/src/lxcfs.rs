//! Honest resource views: `free`, `top`, `uptime` and `/proc/{meminfo,cpuinfo,stat,...}`
//! inside a sandbox show its own limits and usage, not the host's.
//!
//! lxcfs (Debian's `lxcfs`) is a FUSE filesystem that answers reads of those files from
//! the cgroup of the process that reads them. One lxcfs serves the whole host at
//! [`MOUNT`]; Sandlab starts it when it is not running (a host without systemd has no
//! service to start it) and bind-mounts its files read-only over `/proc` in every sandbox
//! ([`binds`]). It outlives the process that started it: running sandboxes read through it.
//! Where lxcfs is not installed, sandboxes see the host's figures and a warning says so.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::mounts::MountInfo;

/// Where the host-wide lxcfs is mounted.
pub const MOUNT: &str = "/run/sandlab/lxcfs";
const PID_FILE: &str = "/run/sandlab/lxcfs.pid";

/// The files lxcfs virtualises that a sandbox gets, as (path under [`MOUNT`], path inside).
pub const FILES: &[(&str, &str)] = &[
    ("proc/cpuinfo", "/proc/cpuinfo"),
    ("proc/diskstats", "/proc/diskstats"),
    ("proc/loadavg", "/proc/loadavg"),
    ("proc/meminfo", "/proc/meminfo"),
    ("proc/stat", "/proc/stat"),
    ("proc/swaps", "/proc/swaps"),
    ("proc/uptime", "/proc/uptime"),
    (
        "sys/devices/system/cpu/online",
        "/sys/devices/system/cpu/online",
    ),
];

/// The lxcfs mount when it serves, starting lxcfs first if needed; `None` (with a
/// warning, once per process) when it cannot be had. `mounts` is the caller's fresh read
/// of the mount table (a create has one already), looked at first.
pub fn ensure(mounts: &MountInfo) -> Option<PathBuf> {
    let mount = Path::new(MOUNT);
    if serving_in(mounts, mount) {
        return Some(mount.to_owned());
    }
    // One starter at a time across processes: two would stack two mounts.
    let _lock = lock();
    if serving(mount) {
        return Some(mount.to_owned());
    }
    match start(mount) {
        Ok(()) => Some(mount.to_owned()),
        Err(why) => {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                tracing::warn!(
                    "{why}: free, top and /proc/meminfo inside sandboxes show the host's figures (install Debian's lxcfs)"
                )
            });
            None
        }
    }
}

/// An exclusive lock on `/run/sandlab/lxcfs.lock`, held until the file is dropped; `None`
/// when it cannot be taken (then starting goes on unguarded).
fn lock() -> Option<std::fs::File> {
    use std::os::fd::AsRawFd;
    std::fs::create_dir_all("/run/sandlab").ok()?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/run/sandlab/lxcfs.lock")
        .ok()?;
    // SAFETY: flock on a descriptor we own; released when the file closes.
    (unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0).then_some(file)
}

/// Whether lxcfs is mounted at `mount` and answers, reading the mount table now.
fn serving(mount: &Path) -> bool {
    MountInfo::read().is_ok_and(|m| serving_in(&m, mount))
}

/// Whether `mounts` has lxcfs at `mount`, and it answers.
fn serving_in(mounts: &MountInfo, mount: &Path) -> bool {
    mounts
        .entries()
        .iter()
        .any(|e| e.mount_point == mount && e.fs_type.starts_with("fuse.lxcfs"))
        && std::fs::metadata(mount.join("proc/meminfo")).is_ok()
}

fn start(mount: &Path) -> Result<(), String> {
    let binary = ["/usr/bin/lxcfs", "/usr/local/bin/lxcfs"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or("lxcfs is not installed")?;
    // A dead lxcfs leaves its mount answering ENOTCONN: take it away first.
    let _ = nix::mount::umount2(mount, nix::mount::MntFlags::MNT_DETACH);
    std::fs::create_dir_all(mount).map_err(|e| format!("cannot make {MOUNT}: {e}"))?;
    // In the foreground, in a session of its own, so no signal meant for this process's
    // group reaches it. A thread reaps it should it die while this process lives; when
    // this process ends, lxcfs goes on (reparented), serving the running sandboxes.
    let mut cmd = Command::new(binary);
    cmd.args([
        "--foreground",
        "--enable-loadavg",
        "--enable-cfs",
        "--pidfile",
        PID_FILE,
    ])
    .arg(mount)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            nix::unistd::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {binary}: {e}"))?;
    for _ in 0..300 {
        if serving(mount) {
            std::thread::spawn(move || child.wait());
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{binary} exited at start ({status})"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(format!("{binary} started but {MOUNT} does not answer"))
}

/// Read-only bind mounts of lxcfs's files for a sandbox's `config.json`.
pub fn binds(mount: &Path) -> Vec<serde_json::Value> {
    FILES
        .iter()
        .filter(|(src, _)| mount.join(src).exists())
        .map(|(src, dest)| {
            serde_json::json!({
                "destination": dest,
                "type": "bind",
                "source": mount.join(src),
                "options": ["bind", "ro", "nosuid", "nodev", "noexec"]
            })
        })
        .collect()
}
