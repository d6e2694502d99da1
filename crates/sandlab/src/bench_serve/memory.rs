//! Memory figures from /proc and the sandboxes' memory cgroups, in bytes.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// A `Key:   N kB` field of a /proc file, in bytes.
fn kib_field(path: &Path, key: &str) -> anyhow::Result<u64> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .strip_prefix(':')?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .map(|kib| kib * 1024)
        .with_context(|| format!("no {key} in {}", path.display()))
}

pub(super) fn status_bytes(pid: u32, key: &str) -> anyhow::Result<u64> {
    kib_field(&PathBuf::from(format!("/proc/{pid}/status")), key)
}

/// Host memory in use, counting every kernel allocation but no file cache:
/// MemTotal - MemFree - Buffers - Cached + Shmem (tmpfs pages are not cache).
pub(super) fn host_used() -> anyhow::Result<i64> {
    let m = |key| kib_field(Path::new("/proc/meminfo"), key).map(|b| b as i64);
    Ok(m("MemTotal")? - m("MemFree")? - m("Buffers")? - m("Cached")? + m("Shmem")?)
}

/// Kernel allocations: slab, page tables, kernel stacks and per-CPU memory.
pub(super) fn kernel_used() -> anyhow::Result<i64> {
    let keys = ["Slab", "PageTables", "KernelStack", "Percpu"];
    let m = |key| kib_field(Path::new("/proc/meminfo"), key).map(|b| b as i64);
    keys.into_iter().map(m).sum()
}

/// A sandbox's memory cgroup (`/sandlab/<id>`, see sandlab-runtime's cgroups module):
/// the v1 memory hierarchy when there is one (also in the hybrid layout), else v2.
fn memory_cgroup(id: &str) -> anyhow::Result<(PathBuf, bool)> {
    let mounts = std::fs::read_to_string("/proc/self/mounts")?;
    let mut v2 = None;
    for f in mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
    {
        match (f.get(1), f.get(2), f.get(3)) {
            (Some(at), Some(&"cgroup"), Some(opts)) if opts.split(',').any(|o| o == "memory") => {
                return Ok((Path::new(at).join("sandlab").join(id), false))
            }
            (Some(at), Some(&"cgroup2"), _) => v2 = Some(Path::new(at).join("sandlab").join(id)),
            _ => {}
        }
    }
    v2.map(|p| (p, true))
        .context("no cgroup filesystem is mounted")
}

/// The private memory of a sandbox's processes: anonymous and tmpfs pages of its cgroup.
pub(super) fn private_bytes(id: &str) -> anyhow::Result<u64> {
    let (dir, v2) = memory_cgroup(id)?;
    let path = dir.join("memory.stat");
    let stat = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let keys: &[&str] = if v2 {
        &["anon", "shmem"]
    } else {
        &["total_rss", "total_shmem"]
    };
    Ok(stat
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(k, _)| keys.contains(k))
        .filter_map(|(_, v)| v.trim().parse::<u64>().ok())
        .sum())
}
