//! Cgroup detection, per-sandbox statistics and removal of leftovers.
//!
//! The OCI runtime creates and limits a sandbox's cgroup at `/sandlab/<id>`; this module
//! only reads it and, during reconciliation, removes what a crash left behind. It works on
//! cgroup v1, v2 and the hybrid layout (v1 hierarchies plus a v2 mount).

use std::path::{Path, PathBuf};

use sandlab_core::SandboxId;

use crate::error::{Error, Result};
use crate::mounts::MountInfo;
use crate::Stats;

/// The parent cgroup of every sandbox.
pub const PARENT: &str = "sandlab";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupMode {
    /// Only cgroup v2 at `/sys/fs/cgroup`.
    Unified,
    /// v1 hierarchies with a v2 mount beside them.
    Hybrid,
    /// v1 only.
    Legacy,
}

#[derive(Clone, Debug)]
pub struct Cgroups {
    pub mode: CgroupMode,
    /// Mount points of every cgroup hierarchy (v1 and v2).
    hierarchies: Vec<Hierarchy>,
}

#[derive(Clone, Debug)]
struct Hierarchy {
    mount: PathBuf,
    v2: bool,
    controllers: Vec<String>,
}

impl Cgroups {
    #[cfg(test)]
    pub fn detect() -> Result<Cgroups> {
        Cgroups::from_mounts(&MountInfo::read()?)
    }

    pub fn from_mounts(mounts: &MountInfo) -> Result<Cgroups> {
        let mut hierarchies = Vec::new();
        for m in mounts.entries() {
            match m.fs_type.as_str() {
                "cgroup2" => hierarchies.push(Hierarchy {
                    mount: m.mount_point.clone(),
                    v2: true,
                    controllers: Vec::new(),
                }),
                "cgroup" => hierarchies.push(Hierarchy {
                    mount: m.mount_point.clone(),
                    v2: false,
                    controllers: m.super_options.split(',').map(str::to_owned).collect(),
                }),
                _ => {}
            }
        }
        let has_v1 = hierarchies.iter().any(|h| !h.v2);
        let has_v2 = hierarchies.iter().any(|h| h.v2);
        let mode = match (has_v1, has_v2) {
            (false, true) => CgroupMode::Unified,
            (true, true) => CgroupMode::Hybrid,
            (true, false) => CgroupMode::Legacy,
            (false, false) => return Err(Error::Host("No cgroup filesystem is mounted".into())),
        };
        Ok(Cgroups { mode, hierarchies })
    }

    /// The path runc is given (`linux.cgroupsPath`).
    pub fn cgroups_path(id: &SandboxId) -> String {
        format!("/{PARENT}/{id}")
    }

    fn v1(&self, controller: &str) -> Option<&Path> {
        self.hierarchies
            .iter()
            .find(|h| !h.v2 && h.controllers.iter().any(|c| c == controller))
            .map(|h| h.mount.as_path())
    }

    /// The directory that holds the resource controllers for v2, if v2 manages them.
    fn v2_controlling(&self) -> Option<&Path> {
        match self.mode {
            CgroupMode::Unified => self
                .hierarchies
                .iter()
                .find(|h| h.v2)
                .map(|h| h.mount.as_path()),
            _ => None,
        }
    }

    /// Whether memory+swap accounting exists; without it swap cannot be limited on v1.
    pub fn has_swap_accounting(&self) -> bool {
        match self.v2_controlling() {
            Some(_) => true,
            None => self
                .v1("memory")
                .map(|m| m.join("memory.memsw.limit_in_bytes").exists())
                .unwrap_or(false),
        }
    }

    pub fn stats(&self, id: &SandboxId) -> Result<Stats> {
        let rel = Path::new(PARENT).join(id.as_str());
        if let Some(root) = self.v2_controlling() {
            let dir = root.join(&rel);
            return Ok(Stats {
                memory_bytes: read_u64(&dir.join("memory.current")),
                memory_peak_bytes: read_u64(&dir.join("memory.peak")),
                memory_limit_bytes: read_u64(&dir.join("memory.max")),
                oom_kills: read_key(&dir.join("memory.events"), "oom_kill"),
                pids: read_u64(&dir.join("pids.current")),
                cpu_usage_ns: read_key(&dir.join("cpu.stat"), "usage_usec").saturating_mul(1000),
            });
        }
        let mem = self.v1("memory").map(|m| m.join(&rel));
        let pids = self.v1("pids").map(|m| m.join(&rel));
        let cpu = self.v1("cpuacct").map(|m| m.join(&rel));
        let get = |dir: &Option<PathBuf>, file: &str| {
            dir.as_ref().map(|d| read_u64(&d.join(file))).unwrap_or(0)
        };
        Ok(Stats {
            memory_bytes: get(&mem, "memory.usage_in_bytes"),
            memory_peak_bytes: get(&mem, "memory.max_usage_in_bytes"),
            memory_limit_bytes: get(&mem, "memory.limit_in_bytes"),
            oom_kills: mem
                .as_ref()
                .map(|d| read_key(&d.join("memory.oom_control"), "oom_kill"))
                .unwrap_or(0),
            pids: get(&pids, "pids.current"),
            cpu_usage_ns: get(&cpu, "cpuacct.usage"),
        })
    }

    /// Every directory of this sandbox's cgroup, in every hierarchy, that exists.
    pub fn dirs(&self, id: &SandboxId) -> Vec<PathBuf> {
        self.hierarchies
            .iter()
            .map(|h| h.mount.join(PARENT).join(id.as_str()))
            .filter(|d| d.is_dir())
            .collect()
    }

    /// Makes the sandbox's cgroup in every hierarchy before the OCI runtime runs, and hands
    /// each to `owner` (the root of the sandbox's host range): the directory and the files
    /// that move processes (`cgroup.procs`, `tasks`, and on v2 `cgroup.threads` and
    /// `cgroup.subtree_control`), never the limit files the runtime writes, which stay the
    /// host root's, an owner the sandbox's user namespace does not map. Inside its cgroup
    /// namespace the sandbox sees this cgroup as its root and may make child cgroups (for
    /// systemd's units, Docker's containers), all below the limits set here.
    pub fn delegate(&self, id: &SandboxId, owner: (u32, u32)) -> Result<()> {
        for h in &self.hierarchies {
            let parent = Self::parent_of(h)?;
            let dir = parent.join(id.as_str());
            match std::fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io(&dir)(e)),
            }
            if h.controllers.iter().any(|c| c == "cpuset") {
                copy_cpuset(&parent, &dir);
            }
            let files: &[&str] = if h.v2 {
                &[
                    "",
                    "cgroup.procs",
                    "cgroup.threads",
                    "cgroup.subtree_control",
                ]
            } else {
                &["", "cgroup.procs", "tasks"]
            };
            for f in files {
                let path = if f.is_empty() {
                    dir.clone()
                } else {
                    dir.join(f)
                };
                match std::os::unix::fs::chown(&path, Some(owner.0), Some(owner.1)) {
                    Ok(()) => {}
                    // A hierarchy without the file (v1 named ones have all three).
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && !f.is_empty() => {}
                    Err(e) => return Err(Error::io(&path)(e)),
                }
            }
            if h.v2 {
                // Child cgroups cost kernel memory: a bound on how many the sandbox makes.
                let _ = std::fs::write(dir.join("cgroup.max.descendants"), "1024");
            }
        }
        Ok(())
    }

    /// Kills every process left in the sandbox's cgroups and removes them.
    /// SIGKILLs every process of the sandbox and waits (bounded) until its cgroups are empty.
    pub fn kill(&self, id: &SandboxId) {
        let dirs = self.dirs(id);
        self.thaw(id);
        for dir in &dirs {
            kill_all(dir);
        }
        let empty = || dirs.iter().all(|d| procs_in_tree(d).is_empty());
        let (start, mut pause) = (
            std::time::Instant::now(),
            std::time::Duration::from_micros(50),
        );
        while start.elapsed() < std::time::Duration::from_secs(2) {
            if empty() {
                return;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(std::time::Duration::from_millis(2));
        }
        tracing::warn!(sandbox.id = %id, "processes survived SIGKILL for 2s");
    }

    /// SIGKILLs every process of the sandbox except `keep` (its init, the agent), with
    /// the cgroup frozen meanwhile so that nothing forks between the listing and the kill
    /// (a fork bomb at its pids limit otherwise refills every freed place). Returns how
    /// many processes were killed. Freezes with the v2 `cgroup.freeze` where v2 holds the
    /// controllers, else the v1 freezer; without either it kills in rounds.
    pub fn kill_all_but(&self, id: &SandboxId, keep: &[u32]) -> Result<usize> {
        let rel = Path::new(PARENT).join(id.as_str());
        let freezer = match self.v2_controlling() {
            Some(root) => Some(Freezer::V2(root.join(&rel))),
            None => self.v1("freezer").map(|m| Freezer::V1(m.join(&rel))),
        };
        let Some(dir) = self.dirs(id).into_iter().next() else {
            return Err(Error::NotFound(id.clone()));
        };
        let mut killed = 0;
        for _ in 0..50 {
            if let Some(f) = &freezer {
                f.set(true)?;
            }
            let victims: Vec<u32> = procs_in_tree(&dir)
                .into_iter()
                .filter(|p| !keep.contains(p))
                .collect();
            for pid in &victims {
                // A pid read just now from the sandbox's own (frozen) cgroup.
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(*pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            killed += victims.len();
            if let Some(f) = &freezer {
                f.set(false)?;
            }
            if victims.is_empty() {
                return Ok(killed);
            }
            // Wait for the killed to go before looking again.
            for _ in 0..200 {
                if procs_in_tree(&dir).iter().all(|p| keep.contains(p)) {
                    return Ok(killed);
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        Err(Error::Host(format!(
            "Processes of sandbox {id} survived being killed 50 times"
        )))
    }

    /// Every process of the sandbox, in its cgroup and the cgroups below it.
    pub fn procs(&self, id: &SandboxId) -> Vec<u32> {
        self.dirs(id)
            .first()
            .map(|dir| procs_in_tree(dir))
            .unwrap_or_default()
    }

    /// Thaws every v1 freezer cgroup of the sandbox, its own and those a machine made
    /// inside (`docker pause`): a frozen process does not die of SIGKILL until thawed.
    fn thaw(&self, id: &SandboxId) {
        fn walk(dir: &Path) {
            let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
            if let Ok(rd) = std::fs::read_dir(dir) {
                for e in rd.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        walk(&e.path());
                    }
                }
            }
        }
        if self.v2_controlling().is_none() {
            if let Some(m) = self.v1("freezer") {
                walk(&m.join(PARENT).join(id.as_str()));
            }
        }
    }

    pub fn remove(&self, id: &SandboxId) -> Result<()> {
        self.thaw(id);
        for dir in self.dirs(id) {
            kill_all(&dir);
            remove_tree(&dir).map_err(Error::io(&dir))?;
        }
        Ok(())
    }
}

/// The prefix of a native-runtime seed's cgroup name (`seed-<pid>-<12 random>`, the pid
/// of the process that made it; see [`seed_name`]).
pub const SEED_PREFIX: &str = "seed-";

/// A fresh seed cgroup name for this process: `seed-<our pid>-<12 random>`. The pid lets
/// [`Cgroups::sweep_seeds`] in another process tell a seed whose maker died from one being
/// made right now (empty until its launcher is placed).
pub fn seed_name() -> String {
    sandlab_core::random_id(&format!("{SEED_PREFIX}{}", std::process::id()), 12)
}

/// Whether the seed cgroup `name` may be swept: its maker (the pid in its name) is gone.
/// A name without a pid (an older build's) counts as its maker's being gone.
pub fn seed_orphaned(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(SEED_PREFIX) else {
        return false;
    };
    match rest
        .split_once('-')
        .and_then(|(pid, _)| pid.parse::<u32>().ok())
    {
        Some(pid) => !Path::new(&format!("/proc/{pid}")).exists(),
        None => true,
    }
}

impl Cgroups {
    /// The sandboxes' parent cgroup in hierarchy `h`, made when missing (a new v1 cpuset
    /// has no cpus or mems until given its parent's).
    fn parent_of(h: &Hierarchy) -> Result<PathBuf> {
        let parent = h.mount.join(PARENT);
        match std::fs::create_dir(&parent) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(&parent)(e)),
        }
        if h.controllers.iter().any(|c| c == "cpuset") {
            copy_cpuset(&h.mount, &parent);
        }
        Ok(parent)
    }

    /// The v2 hierarchy's directory of sandbox `id` (v2 or hybrid hosts).
    pub fn v2_dir(&self, id: &SandboxId) -> Option<PathBuf> {
        self.hierarchies
            .iter()
            .find(|h| h.v2)
            .map(|h| h.mount.join(PARENT).join(id.as_str()))
    }

    /// Makes a seed's cgroup, `name`, in every v1 hierarchy (none on a v2-only host,
    /// where the init is cloned straight into its own cgroup).
    pub fn make_seed(&self, name: &str) -> Result<()> {
        for h in self.hierarchies.iter().filter(|h| !h.v2) {
            let dir = Self::parent_of(h)?.join(name);
            std::fs::create_dir(&dir).map_err(Error::io(&dir))?;
            if h.controllers.iter().any(|c| c == "cpuset") {
                copy_cpuset(&h.mount.join(PARENT), &dir);
            }
        }
        Ok(())
    }

    /// Moves process `pid` into the seed cgroup `name` of every v1 hierarchy. The first
    /// move into a cgroup waits for an RCU grace period (about 10 ms), which is why seeds
    /// are placed ahead of time.
    pub fn place_seed(&self, name: &str, pid: u32) -> Result<()> {
        for h in self.hierarchies.iter().filter(|h| !h.v2) {
            let procs = h.mount.join(PARENT).join(name).join("cgroup.procs");
            std::fs::write(&procs, pid.to_string()).map_err(Error::io(&procs))?;
        }
        Ok(())
    }

    /// Gives seed `name`'s v1 cgroups to sandbox `id` (a rename: the seed stays in them)
    /// and makes its v2 cgroup, empty, for its init to be cloned into.
    pub fn claim_seed(&self, name: &str, id: &SandboxId) -> Result<()> {
        for h in &self.hierarchies {
            let parent = h.mount.join(PARENT);
            let to = parent.join(id.as_str());
            if h.v2 {
                Self::parent_of(h)?;
                if self.mode == CgroupMode::Unified {
                    enable_controllers(&h.mount, &parent);
                }
                std::fs::create_dir(&to).map_err(Error::io(&to))?;
            } else {
                let from = parent.join(name);
                std::fs::rename(&from, &to).map_err(Error::io(&from))?;
            }
        }
        Ok(())
    }

    /// Removes the seed cgroups of processes that are gone (a server or command killed
    /// with its seeds unused). A live process's seeds are left alone even while empty
    /// (being made, not yet placed); `rmdir` refuses the busy ones anyway.
    pub fn sweep_seeds(&self) {
        for h in self.hierarchies.iter().filter(|h| !h.v2) {
            let Ok(rd) = std::fs::read_dir(h.mount.join(PARENT)) else {
                continue;
            };
            for e in rd.flatten() {
                if seed_orphaned(&e.file_name().to_string_lossy()) {
                    let _ = std::fs::remove_dir(e.path());
                }
            }
        }
    }

    /// Removes seed `name`'s cgroups (after its process is gone).
    pub fn remove_seed(&self, name: &str) {
        for h in self.hierarchies.iter().filter(|h| !h.v2) {
            let _ = remove_tree(&h.mount.join(PARENT).join(name));
        }
    }

    /// Writes a sandbox's limits (an OCI `linux.resources` object: memory, swap, cpu
    /// quota, period and cpus, pids, and the device rules, deny-all plus `allowed`) into
    /// its cgroups, as the OCI runtime does for the sandboxes it starts.
    pub fn apply_limits(
        &self,
        id: &SandboxId,
        resources: &serde_json::Value,
        allowed_devices: &[&str],
    ) -> Result<()> {
        let rel = Path::new(PARENT).join(id.as_str());
        let num = |v: &serde_json::Value| v.as_i64().filter(|n| *n > 0);
        let memory = num(&resources["memory"]["limit"]);
        let swap = num(&resources["memory"]["swap"]);
        let quota = num(&resources["cpu"]["quota"]);
        let period = num(&resources["cpu"]["period"]).unwrap_or(100_000);
        let cpus = resources["cpu"]["cpus"].as_str();
        let pids = num(&resources["pids"]["limit"]);
        let write = |dir: &Path, file: &str, value: String| -> Result<()> {
            let path = dir.join(file);
            std::fs::write(&path, value).map_err(Error::io(&path))
        };
        if let Some(root) = self.v2_controlling() {
            let dir = root.join(&rel);
            if let Some(m) = memory {
                write(&dir, "memory.max", m.to_string())?;
                if swap.is_some() {
                    write(&dir, "memory.swap.max", "0".into())?;
                }
            }
            if let Some(q) = quota {
                write(&dir, "cpu.max", format!("{q} {period}"))?;
            }
            if let Some(p) = pids {
                write(&dir, "pids.max", p.to_string())?;
            }
            if let Some(c) = cpus {
                write(&dir, "cpuset.cpus", c.to_owned())?;
            }
            // Device access on v2 is an eBPF program; a user namespace can make no device
            // nodes and mounts nothing with devices, so /dev holds only the bound ones.
            return Ok(());
        }
        if let (Some(m), Some(dir)) = (memory, self.v1("memory").map(|d| d.join(&rel))) {
            write(&dir, "memory.limit_in_bytes", m.to_string())?;
            if let Some(s) = swap {
                write(&dir, "memory.memsw.limit_in_bytes", s.to_string())?;
            }
        }
        if let (Some(q), Some(dir)) = (quota, self.v1("cpu").map(|d| d.join(&rel))) {
            write(&dir, "cpu.cfs_period_us", period.to_string())?;
            write(&dir, "cpu.cfs_quota_us", q.to_string())?;
        }
        if let (Some(p), Some(dir)) = (pids, self.v1("pids").map(|d| d.join(&rel))) {
            write(&dir, "pids.max", p.to_string())?;
        }
        if let (Some(c), Some(dir)) = (cpus, self.v1("cpuset").map(|d| d.join(&rel))) {
            write(&dir, "cpuset.cpus", c.to_owned())?;
        }
        if let Some(dir) = self.v1("devices").map(|d| d.join(&rel)) {
            write(&dir, "devices.deny", "a".into())?;
            for rule in allowed_devices {
                write(&dir, "devices.allow", (*rule).to_owned())?;
            }
        }
        Ok(())
    }
}

/// Turns on, for the sandboxes' parent, the v2 controllers their limits need.
fn enable_controllers(root: &Path, parent: &Path) {
    for dir in [root, parent] {
        for controller in ["+cpu", "+cpuset", "+memory", "+pids"] {
            let _ = std::fs::write(dir.join("cgroup.subtree_control"), controller);
        }
    }
}

/// Gives a v1 cpuset cgroup `dir` the cpus and memory nodes of `from` when it has none.
fn copy_cpuset(from: &Path, dir: &Path) {
    for f in ["cpuset.cpus", "cpuset.mems"] {
        let empty = std::fs::read_to_string(dir.join(f)).is_ok_and(|v| v.trim().is_empty());
        if empty {
            if let Ok(v) = std::fs::read_to_string(from.join(f)) {
                let _ = std::fs::write(dir.join(f), v.trim());
            }
        }
    }
}

/// SIGKILLs every process in `dir` and its children (cgroup.kill on v2 when present).
fn kill_all(dir: &Path) {
    if std::fs::write(dir.join("cgroup.kill"), "1").is_ok() {
        return;
    }
    // Killed processes leave the cgroup within microseconds to a few milliseconds: look
    // again soon, then less often (no fixed sleep on the way out of every sandbox).
    let mut pause = std::time::Duration::from_micros(50);
    for _ in 0..100 {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        let pids: Vec<i32> = procs
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            // A pid of a process in the sandbox's own cgroup, read just now.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(10));
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                kill_all(&e.path());
            }
        }
    }
}

/// A sandbox's freezer: v2's `cgroup.freeze` or v1's `freezer.state`.
enum Freezer {
    V2(PathBuf),
    V1(PathBuf),
}

impl Freezer {
    /// Freezes or thaws, waiting (bounded) until the kernel says it is done.
    fn set(&self, frozen: bool) -> Result<()> {
        let (file, value, done_file, done): (PathBuf, &str, PathBuf, &str) = match self {
            Freezer::V2(d) => (
                d.join("cgroup.freeze"),
                if frozen { "1" } else { "0" },
                d.join("cgroup.events"),
                if frozen { "frozen 1" } else { "frozen 0" },
            ),
            Freezer::V1(d) => (
                d.join("freezer.state"),
                if frozen { "FROZEN" } else { "THAWED" },
                d.join("freezer.state"),
                if frozen { "FROZEN" } else { "THAWED" },
            ),
        };
        std::fs::write(&file, value).map_err(Error::io(&file))?;
        for _ in 0..400 {
            let now = std::fs::read_to_string(&done_file).unwrap_or_default();
            if now.lines().any(|l| l.trim() == done) {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Err(Error::Host(format!(
            "{} did not reach {done:?} within 2 s",
            done_file.display()
        )))
    }
}

/// Every pid in `dir`'s cgroup and its child cgroups.
fn procs_in_tree(dir: &Path) -> Vec<u32> {
    let mut pids: Vec<u32> = std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                pids.extend(procs_in_tree(&e.path()));
            }
        }
    }
    pids
}

/// Removes a cgroup directory and its child cgroups, deepest first (cgroupfs allows rmdir only).
fn remove_tree(dir: &Path) -> std::io::Result<()> {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&e.path())?;
            }
        }
    }
    let mut last = Ok(());
    let mut pause = std::time::Duration::from_micros(50);
    for _ in 0..120 {
        last = std::fs::remove_dir(dir);
        match &last {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(10));
            }
            Err(_) => break,
        }
    }
    last
}

fn read_u64(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Reads `key N` from a flat keyed file such as `memory.events`.
fn read_key(path: &Path, key: &str) -> u64 {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    parse_key(&text, key)
}

fn parse_key(text: &str, key: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod seed_name_tests {
    use super::*;

    #[test]
    fn only_seeds_of_dead_makers_are_orphans() {
        let ours = seed_name();
        assert!(
            ours.starts_with(&format!("seed-{}-", std::process::id())),
            "{ours}"
        );
        assert!(!seed_orphaned(&ours));
        // A pid above pid_max is nobody's.
        assert!(seed_orphaned("seed-4194305-abcdefghijkl"));
        // An older build's name (no pid) is swept as before.
        assert!(seed_orphaned("seed-abcdefghijkl"));
        assert!(!seed_orphaned("sb-abcdefghijkl"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_files() {
        let text = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(parse_key(text, "oom_kill"), 3);
        assert_eq!(parse_key(text, "missing"), 0);
    }

    #[test]
    fn detects_this_host() {
        let cg = Cgroups::detect().unwrap();
        assert!(!cg.hierarchies.is_empty());
    }
}
