//! What the host has for sandboxes, read fresh at each create: memory, CPUs, the kernel's
//! task and file tables, and the volume pool. The server's admission turns this into two
//! answers: the most one sandbox may have ([`Capacity::share`]) and whether there is room
//! for one more now ([`Capacity::room_for`]).
//!
//! Shares are fractions of the whole, so that no single sandbox can take the host (or the
//! shared volume pool) whole: a sandbox at its share still leaves a quarter of memory and
//! of the pool, and three quarters of the task table, to everyone else.

use std::path::Path;

use sandlab_core::{ByteSize, Limits};

/// Room kept free for the host and other sandboxes when admitting one more.
const MEMORY_RESERVE_PERCENT: u64 = 5;
const TASKS_RESERVE_PERCENT: u64 = 10;
const FILES_RESERVE_PERCENT: u64 = 10;
/// The pool must keep this much free (or 2 %, whichever is larger) after a create.
const POOL_RESERVE_MIN: u64 = 256 << 20;

/// A snapshot of the host's capacity. `None` in a field means "not known" (the check on
/// it is skipped), e.g. a driver whose sandboxes live elsewhere.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Capacity {
    pub memory_total: Option<u64>,
    pub memory_available: Option<u64>,
    pub cpus: Option<f64>,
    /// `kernel.pid_max` and the tasks that exist now.
    pub pid_max: Option<u64>,
    pub tasks: Option<u64>,
    /// `fs.file-max` and the file handles allocated now.
    pub file_max: Option<u64>,
    pub files: Option<u64>,
    /// The volume pool's size and free bytes.
    pub pool_total: Option<u64>,
    pub pool_free: Option<u64>,
}

/// The most one sandbox may have on this host.
#[derive(Clone, Debug, PartialEq)]
pub struct Share {
    pub memory: Option<ByteSize>,
    pub cpus: Option<f64>,
    pub pids: Option<u32>,
    pub disk: Option<ByteSize>,
}

/// Why the host has no room for one more sandbox right now.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum NoRoom {
    #[error("The host has {available} of memory available, not enough for a sandbox of {asked}")]
    Memory {
        available: ByteSize,
        asked: ByteSize,
    },
    #[error("The host's task table has {tasks} of {max} tasks in use, no room for {asked} more")]
    Tasks { tasks: u64, max: u64, asked: u32 },
    #[error("The host's file table has {files} of {max} handles in use")]
    Files { files: u64, max: u64 },
    #[error("The sandbox volume pool has {free} free of {total}")]
    Disk { free: ByteSize, total: ByteSize },
}

impl NoRoom {
    /// Whether it is the disk that is full (507), not a passing shortage (503).
    pub fn is_disk(&self) -> bool {
        matches!(self, NoRoom::Disk { .. })
    }
}

impl Share {
    /// `limits` with each value over this share cut down to it.
    pub fn cut(&self, mut limits: Limits) -> Limits {
        if let Some(m) = self.memory {
            limits.memory = limits.memory.min(m);
        }
        if let Some(d) = self.disk {
            limits.disk = limits.disk.min(d);
        }
        if let Some(c) = self.cpus {
            limits.cpus = limits.cpus.min(c);
        }
        if let Some(p) = self.pids {
            limits.pids = limits.pids.min(p);
        }
        limits
    }
}

impl Capacity {
    /// Reads the host: `/proc/meminfo`, the CPUs this process may run on, the task and file
    /// tables, and the filesystem at `pool` (the volume pool's mount point).
    pub fn probe(pool: &Path) -> Capacity {
        let mem = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let pool_fs = nix::sys::statvfs::statvfs(pool).ok();
        let fragment = |st: &nix::sys::statvfs::Statvfs| st.fragment_size();
        let (files, file_max) = read_file_nr();
        Capacity {
            memory_total: meminfo_kib(&mem, "MemTotal:").map(|k| k * 1024),
            memory_available: meminfo_kib(&mem, "MemAvailable:").map(|k| k * 1024),
            cpus: std::thread::available_parallelism()
                .ok()
                .map(|n| n.get() as f64),
            pid_max: read_u64("/proc/sys/kernel/pid_max"),
            tasks: read_tasks(),
            file_max,
            files,
            pool_total: pool_fs.as_ref().map(|s| s.blocks() * fragment(s)),
            pool_free: pool_fs.as_ref().map(|s| s.blocks_available() * fragment(s)),
        }
    }

    /// The most one sandbox may have: ¾ of memory, every CPU, ¼ of the task table, ¾ of
    /// the volume pool.
    pub fn share(&self) -> Share {
        Share {
            memory: self.memory_total.map(|m| ByteSize(m / 4 * 3)),
            cpus: self.cpus,
            pids: self
                .pid_max
                .map(|p| u32::try_from(p / 4).unwrap_or(u32::MAX)),
            disk: self.pool_total.map(|d| ByteSize(d / 4 * 3)),
        }
    }

    /// Whether the host can take one more sandbox with `limits` now: its memory limit fits
    /// in what is available, its pids limit in the free part of the task table, the file
    /// table is not nearly full, and the volume pool keeps a reserve.
    pub fn room_for(&self, limits: &Limits) -> Result<(), NoRoom> {
        if let (Some(total), Some(available)) = (self.memory_total, self.memory_available) {
            let reserve = total / 100 * MEMORY_RESERVE_PERCENT;
            if available.saturating_sub(reserve) < limits.memory.bytes() {
                return Err(NoRoom::Memory {
                    available: ByteSize(available),
                    asked: limits.memory,
                });
            }
        }
        if let (Some(max), Some(tasks)) = (self.pid_max, self.tasks) {
            let usable = max - max / 100 * TASKS_RESERVE_PERCENT;
            if tasks + u64::from(limits.pids) > usable {
                return Err(NoRoom::Tasks {
                    tasks,
                    max,
                    asked: limits.pids,
                });
            }
        }
        if let (Some(max), Some(files)) = (self.file_max, self.files) {
            if files > max - max / 100 * FILES_RESERVE_PERCENT {
                return Err(NoRoom::Files { files, max });
            }
        }
        if let (Some(total), Some(free)) = (self.pool_total, self.pool_free) {
            if free < (total / 50).max(POOL_RESERVE_MIN) {
                return Err(NoRoom::Disk {
                    free: ByteSize(free),
                    total: ByteSize(total),
                });
            }
        }
        Ok(())
    }
}

fn meminfo_kib(meminfo: &str, key: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

fn read_u64(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Tasks (threads included) on the host: the fourth field of `/proc/loadavg`, `running/total`.
fn read_tasks() -> Option<u64> {
    let load = std::fs::read_to_string("/proc/loadavg").ok()?;
    load.split_whitespace()
        .nth(3)?
        .split('/')
        .nth(1)?
        .parse()
        .ok()
}

/// `(allocated, max)` from `/proc/sys/fs/file-nr`: allocated, free (always 0), max.
fn read_file_nr() -> (Option<u64>, Option<u64>) {
    let nr = std::fs::read_to_string("/proc/sys/fs/file-nr").unwrap_or_default();
    let mut f = nr.split_whitespace().map(|n| n.parse::<u64>().ok());
    let allocated = f.next().flatten();
    let max = f.nth(1).flatten();
    (allocated, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: u64 = 1 << 30;

    fn host() -> Capacity {
        Capacity {
            memory_total: Some(24 * G),
            memory_available: Some(20 * G),
            cpus: Some(2.0),
            pid_max: Some(32768),
            tasks: Some(500),
            file_max: Some(2_000_000),
            files: Some(5_000),
            pool_total: Some(80 * G),
            pool_free: Some(70 * G),
        }
    }

    #[test]
    fn the_share_leaves_the_rest_of_the_host_to_others() {
        let s = host().share();
        assert_eq!(s.memory, Some(ByteSize(18 * G)));
        assert_eq!(s.cpus, Some(2.0));
        assert_eq!(s.pids, Some(8192));
        assert_eq!(s.disk, Some(ByteSize(60 * G)));
        assert_eq!(Capacity::default().share().memory, None);
        let big = Limits {
            memory: ByteSize::gib(64),
            pids: 100_000,
            ..Limits::default()
        };
        let cut = s.cut(big);
        assert_eq!(
            (cut.memory, cut.pids, cut.cpus),
            (ByteSize(18 * G), 8192, 1.0)
        );
    }

    #[test]
    fn room_is_refused_for_each_exhausted_table() {
        let limits = Limits::default();
        assert_eq!(host().room_for(&limits), Ok(()));
        let mut c = host();
        c.memory_available = Some(G + (100 << 20));
        assert!(matches!(c.room_for(&limits), Err(NoRoom::Memory { .. })));
        let mut c = host();
        c.tasks = Some(29_400);
        assert!(matches!(c.room_for(&limits), Err(NoRoom::Tasks { .. })));
        let mut c = host();
        c.files = Some(1_900_000);
        assert!(matches!(c.room_for(&limits), Err(NoRoom::Files { .. })));
        let mut c = host();
        c.pool_free = Some(G);
        let err = c.room_for(&limits).unwrap_err();
        assert!(err.is_disk(), "{err}");
        assert_eq!(Capacity::default().room_for(&limits), Ok(()));
    }

    #[test]
    fn the_probe_reads_this_host() {
        let c = Capacity::probe(Path::new("/"));
        assert!(c.memory_total.unwrap() > 0);
        assert!(c.memory_available.unwrap() <= c.memory_total.unwrap());
        assert!(c.tasks.unwrap() > 0 && c.tasks < c.pid_max);
        assert!(c.files.unwrap() > 0 && c.files < c.file_max);
        assert!(c.pool_free.unwrap() <= c.pool_total.unwrap());
    }
}
