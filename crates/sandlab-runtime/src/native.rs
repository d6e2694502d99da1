//! The native runtime: starts a standard sandbox's init without an OCI runtime process,
//! from the same `config.json` the OCI runtime would get (so both apply the same
//! isolation, set in one place: `spec::build`).
//!
//! What costs an OCI runtime tens of milliseconds is paid ahead of time or once:
//!
//! - **seeds**: `sandlab-agent --launch` processes started in the background and moved
//!   into cgroups of their own (`/sandlab/seed-…` in every v1 hierarchy). The first move
//!   of a process into a new v1 cgroup waits for an RCU grace period (about 10 ms); a
//!   sandbox's v1 cgroups are a seed's, renamed, and its init is forked from the seed, so
//!   nothing moves on the way. On cgroup v2 the init is cloned straight into its cgroup
//!   (`CLONE_INTO_CGROUP`), which costs nothing extra.
//! - **seccomp**: the profile is compiled to BPF once per profile (libseccomp) and the
//!   program is handed over; the launcher only installs it.
//! - no second language runtime starts, and nothing is re-executed: the launcher is a
//!   small static binary that clones twice and executes the agent.
//!
//! The launcher's steps are in `sandlab-agent/src/launch.rs`; the plan it follows is
//! `sandlab_proto::launch::LaunchPlan`.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

use sandlab_core::SandboxId;
use sandlab_proto::launch::{LaunchPlan, Mount};
use serde_json::Value;

use crate::cgroups::Cgroups;
use crate::error::{Error, Result};

/// The host's device nodes every sandbox gets in its `/dev`.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// The device cgroup's allow list (v1) after its deny-all: the nodes above, the
/// console and terminals, and `mknod` of anything (a node made is still unusable unless
/// allowed here).
const ALLOWED_DEVICES: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
];

/// How long a launch may take before the sandbox is given up.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);

/// The capability names of Linux 6.x, by number (the machine profile holds them all,
/// listed in the kernel's order).
const CAPABILITY_NAMES: &[&str] = crate::spec::MACHINE_CAPABILITIES;

/// Why the native runtime cannot run on this host, if it cannot: it needs `clone3` with
/// `CLONE_INTO_CGROUP` (5.7), `openat2` (5.6) and `mount_setattr` (5.12).
pub fn unsupported() -> Option<String> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let release = release.trim();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (version < (5, 12)).then(|| {
        format!("the native runtime needs Linux 5.12 or later (clone3 into a cgroup, openat2, mount_setattr); this kernel is {release}")
    })
}

pub struct Native {
    cgroups: Cgroups,
    /// Where compiled filters are kept between processes (a command starts one sandbox
    /// and would compile again each time): `<data>/cache/seccomp`.
    filter_cache: PathBuf,
    seeds: Arc<SeedPool>,
    started: std::sync::Once,
    filters: Mutex<HashMap<String, Arc<Vec<u8>>>>,
}

impl Native {
    pub fn new(
        agent: PathBuf,
        cgroups: Cgroups,
        seeds: usize,
        data_dir: &std::path::Path,
    ) -> Native {
        Native {
            filter_cache: data_dir.join("cache").join("seccomp"),
            seeds: Arc::new(SeedPool {
                agent,
                cgroups: cgroups.clone(),
                target: seeds.max(1),
                state: Mutex::new(PoolState::default()),
                changed: Condvar::new(),
            }),
            cgroups,
            started: std::sync::Once::new(),
            filters: Mutex::new(HashMap::new()),
        }
    }

    /// Starts making seeds in the background (once): with `keep`, the pool is kept full
    /// for as long as it exists (a server); without, one seed is made for the one create
    /// to come (a command). The first create starts a kept pool if nothing did.
    pub fn start_seeding(&self, keep: bool) {
        self.started.call_once(|| {
            if !keep {
                // Counted before the thread runs, so a create that comes first waits for
                // this seed instead of making a second one.
                self.seeds.state.lock().expect("seed lock").making += 1;
            }
            let pool = Arc::downgrade(&self.seeds);
            let cgroups = self.cgroups.clone();
            let spawned = std::thread::Builder::new()
                .name("sandlab-seeds".into())
                .spawn(move || {
                    // The cgroups of seeds whose process died with it (their names hold
                    // its pid), off the path of a command that does not create.
                    cgroups.sweep_seeds();
                    match keep {
                        true => SeedPool::run(pool),
                        false => SeedPool::make_one(pool),
                    }
                });
            if let Err(e) = spawned {
                if !keep {
                    self.seeds.state.lock().expect("seed lock").making -= 1;
                }
                tracing::warn!(error = %e, "cannot start the seed thread; every create makes its own seed");
            }
        });
    }

    /// The seccomp profile of `config` as BPF, compiled once per distinct profile.
    fn filter(&self, config: &Value) -> Result<Arc<Vec<u8>>> {
        let profile = &config["linux"]["seccomp"];
        if profile.is_null() {
            return Ok(Arc::new(Vec::new()));
        }
        let key = profile.to_string();
        if let Some(bpf) = self.filters.lock().expect("filters lock").get(&key) {
            return Ok(bpf.clone());
        }
        let bpf = match self.cached_filter(&key) {
            Some(bpf) => Arc::new(bpf),
            None => {
                let parsed: oci_spec::runtime::LinuxSeccomp =
                    serde_json::from_value(profile.clone()).map_err(|e| {
                        Error::Host(format!("The sandbox's seccomp profile does not parse: {e}"))
                    })?;
                let bpf = crate::seccomp_bpf::compile(&parsed)?.0;
                self.keep_filter(&key, &bpf);
                Arc::new(bpf)
            }
        };
        self.filters
            .lock()
            .expect("filters lock")
            .insert(key, bpf.clone());
        Ok(bpf)
    }

    /// The cache files of the profile `key` (its JSON text): the profile itself, compared
    /// in full before the program is used, and the program.
    fn cache_files(&self, key: &str) -> (PathBuf, PathBuf) {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        // A program compiled by another version of the compiler is not this one's.
        crate::seccomp_bpf::COMPILER.hash(&mut h);
        key.hash(&mut h);
        let name = format!("{:016x}-{}", h.finish(), key.len());
        (
            self.filter_cache.join(format!("{name}.json")),
            self.filter_cache.join(format!("{name}.bpf")),
        )
    }

    fn cached_filter(&self, key: &str) -> Option<Vec<u8>> {
        let (profile, program) = self.cache_files(key);
        let same = std::fs::read(&profile).ok()? == key.as_bytes();
        let bpf = std::fs::read(&program).ok()?;
        (same && !bpf.is_empty() && bpf.len().is_multiple_of(8)).then_some(bpf)
    }

    /// Keeps a compiled filter for the next process (best effort: written whole, then
    /// renamed into place, the program before the profile that vouches for it).
    fn keep_filter(&self, key: &str, bpf: &[u8]) {
        let (profile, program) = self.cache_files(key);
        let write = |path: &PathBuf, bytes: &[u8]| -> std::io::Result<()> {
            std::fs::create_dir_all(&self.filter_cache)?;
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, path)
        };
        if let Err(e) = write(&program, bpf).and_then(|()| write(&profile, key.as_bytes())) {
            tracing::debug!(error = %e, "cannot keep the compiled seccomp filter");
        }
    }

    /// Starts sandbox `id`'s init as `config` (an OCI `config.json`) says, with the agent
    /// serving on `socket`; returns the init's host pid. Blocking: call it off the async
    /// threads.
    pub fn start(&self, id: &SandboxId, config: &Value, paths: &Paths) -> Result<u32> {
        let t = std::time::Instant::now();
        self.start_seeding(true);
        let mut plan = plan(config, paths)?;
        plan.seccomp = self.filter(config)?.to_vec();
        let compiled = t.elapsed();
        let mut seed = self.seeds.take()?;
        let seeded = t.elapsed();
        let result = self.launch(&mut seed, id, &config["linux"]["resources"], plan);
        seed.finish();
        tracing::debug!(sandbox.id = %id, filter_us = compiled.as_micros() as u64, seed_us = seeded.as_micros() as u64, launched_us = t.elapsed().as_micros() as u64, "native launch");
        result
    }

    fn launch(
        &self,
        seed: &mut Seed,
        id: &SandboxId,
        resources: &Value,
        mut plan: LaunchPlan,
    ) -> Result<u32> {
        let t = std::time::Instant::now();
        self.cgroups.claim_seed(&seed.name, id)?;
        seed.claimed = true;
        self.cgroups.apply_limits(id, resources, ALLOWED_DEVICES)?;
        let placed = t.elapsed();
        plan.cgroup_v2 = self.cgroups.v2_dir(id);
        let body = serde_json::to_vec(&plan)
            .map_err(|e| Error::Host(format!("Cannot encode the launch plan: {e}")))?;
        let mut message = (body.len() as u32).to_le_bytes().to_vec();
        message.extend(body);
        let lost = |e: std::io::Error| {
            Error::Host(format!("The native runtime's launcher went away: {e}"))
        };
        seed.ctl.write_all(&message).map_err(lost)?;
        seed.ctl
            .set_read_timeout(Some(LAUNCH_TIMEOUT))
            .map_err(lost)?;
        let (mut init, mut helpers, mut error) = (None, Vec::new(), None);
        let mut cloned = Duration::ZERO;
        for line in BufReader::new(&seed.ctl).lines() {
            let line = line.map_err(|e| {
                Error::Host(format!(
                    "The sandbox's init did not start within {}s: {e}",
                    LAUNCH_TIMEOUT.as_secs()
                ))
            })?;
            match line.split_once(' ') {
                Some(("pid", n)) => helpers.extend(n.parse::<i32>().ok()),
                Some(("init", n)) => {
                    init = n.parse::<u32>().ok();
                    cloned = t.elapsed();
                }
                Some(("error", msg)) => error = Some(msg.to_owned()),
                _ => error = Some(format!("the launcher said {line:?}")),
            }
        }
        tracing::debug!(sandbox.id = %id, placed_us = placed.as_micros() as u64, cloned_us = cloned.as_micros() as u64, executed_us = t.elapsed().as_micros() as u64, "native launch steps");
        // The helper processes are our children (cloned as the seed's siblings): at end
        // of file they have exited; after a timeout one may hang, and dies here.
        let reap = |pid: i32| {
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        };
        helpers.into_iter().for_each(reap);
        match (error, init) {
            (Some(msg), init) => {
                // An init that failed is our child too: not left a zombie.
                if let Some(pid) = init.and_then(|p| i32::try_from(p).ok()) {
                    reap(pid);
                }
                Err(Error::Host(format!(
                    "The sandbox's init could not start: {msg}"
                )))
            }
            (None, Some(pid)) => Ok(pid),
            (None, None) => Err(Error::Host(
                "The native runtime's launcher exited without starting the sandbox's init".into(),
            )),
        }
    }
}

/// The host paths of one sandbox that a launch needs.
pub struct Paths {
    pub agent_socket: PathBuf,
    pub netns: PathBuf,
    pub userns: PathBuf,
    pub rootfs: PathBuf,
    pub nofile: u64,
}

/// The launch plan for `config`, the sandbox's `config.json`.
fn plan(config: &Value, paths: &Paths) -> Result<LaunchPlan> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let process = &config["process"];
    if process["user"]["uid"].as_u64().unwrap_or(0) != 0 || config["root"]["readonly"] == true {
        return Err(Error::Host(
            "The native runtime starts sandboxes as root on a writable root only".into(),
        ));
    }
    let mounts = config["mounts"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|m| {
                    let options = strings(&m["options"]);
                    let bind =
                        m["type"] == "bind" || options.iter().any(|o| o == "bind" || o == "rbind");
                    Mount {
                        destination: m["destination"].as_str().unwrap_or_default().to_owned(),
                        kind: if bind {
                            "bind".into()
                        } else {
                            m["type"].as_str().unwrap_or_default().to_owned()
                        },
                        source: m["source"].as_str().unwrap_or_default().to_owned(),
                        options,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let capabilities = strings(&process["capabilities"]["bounding"])
        .iter()
        .map(|name| {
            CAPABILITY_NAMES
                .iter()
                .position(|c| c == name)
                .map(|n| n as u32)
                .ok_or_else(|| Error::Host(format!("Unknown capability {name:?}")))
        })
        .collect::<Result<Vec<u32>>>()?;
    Ok(LaunchPlan {
        agent_socket: paths.agent_socket.clone(),
        netns: paths.netns.clone(),
        userns: paths.userns.clone(),
        cgroup_v2: None,
        nofile: paths.nofile,
        rootfs: paths.rootfs.clone(),
        hostname: config["hostname"].as_str().unwrap_or_default().to_owned(),
        mounts,
        devices: DEVICES.iter().map(|d| (*d).to_owned()).collect(),
        masked: strings(&config["linux"]["maskedPaths"]),
        readonly: strings(&config["linux"]["readonlyPaths"]),
        capabilities,
        no_new_privileges: process["noNewPrivileges"] == true,
        seccomp: Vec::new(),
        args: strings(&process["args"]),
        env: strings(&process["env"]),
        cwd: process["cwd"].as_str().unwrap_or("/").to_owned(),
    })
}

/// A launcher waiting for its plan, in its own v1 cgroups.
struct Seed {
    name: String,
    child: Child,
    ctl: UnixStream,
    /// Its cgroups were renamed to a sandbox's (which removes them with the sandbox).
    claimed: bool,
    cgroups: Cgroups,
}

impl Seed {
    /// Reaps the launcher (it has exited once it answered; one that hangs is killed:
    /// what it cloned is not its child) and removes its cgroups unless a sandbox took them.
    fn finish(mut self) {
        let _ = self.ctl.shutdown(std::net::Shutdown::Both);
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.claimed {
            self.cgroups.remove_seed(&self.name);
        }
    }
}

#[derive(Default)]
struct PoolState {
    ready: VecDeque<Seed>,
    /// Seeds the background thread is making now.
    making: usize,
}

struct SeedPool {
    agent: PathBuf,
    cgroups: Cgroups,
    target: usize,
    state: Mutex<PoolState>,
    changed: Condvar,
}

impl SeedPool {
    /// The background thread: keeps `target` seeds ready while the pool exists.
    fn run(pool: Weak<SeedPool>) {
        loop {
            let Some(this) = pool.upgrade() else { return };
            {
                let state = this.state.lock().expect("seed lock");
                let (mut state, _) = this
                    .changed
                    .wait_timeout_while(state, Duration::from_secs(1), |s| {
                        s.ready.len() >= this.target
                    })
                    .expect("seed lock");
                if state.ready.len() >= this.target {
                    continue;
                }
                state.making += 1;
            }
            let made = this.make();
            let mut state = this.state.lock().expect("seed lock");
            state.making -= 1;
            match made {
                Ok(seed) => state.ready.push_back(seed),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot make a seed for the native runtime");
                    drop(state);
                    this.changed.notify_all();
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            }
            drop(state);
            this.changed.notify_all();
        }
    }

    /// Makes the one seed `start_seeding` counted as being made.
    fn make_one(pool: Weak<SeedPool>) {
        let Some(this) = pool.upgrade() else { return };
        let made = this.make();
        let mut state = this.state.lock().expect("seed lock");
        state.making -= 1;
        match made {
            Ok(seed) => state.ready.push_back(seed),
            Err(e) => tracing::warn!(error = %e, "cannot make a seed for the native runtime"),
        }
        drop(state);
        this.changed.notify_all();
    }

    /// A ready seed: one from the pool, the one being made (when that is soon), or a
    /// new one made here.
    fn take(&self) -> Result<Seed> {
        let mut state = self.state.lock().expect("seed lock");
        loop {
            if let Some(mut seed) = state.ready.pop_front() {
                drop(state);
                self.changed.notify_all();
                if seed.alive() {
                    return Ok(seed);
                }
                seed.finish();
                state = self.state.lock().expect("seed lock");
                continue;
            }
            if state.making == 0 {
                break;
            }
            let (next, timeout) = self
                .changed
                .wait_timeout(state, Duration::from_millis(200))
                .expect("seed lock");
            state = next;
            if timeout.timed_out() && state.ready.is_empty() {
                break;
            }
        }
        drop(state);
        self.make()
    }

    fn make(&self) -> Result<Seed> {
        let name = crate::cgroups::seed_name();
        self.cgroups.make_seed(&name)?;
        let (ours, theirs) = UnixStream::pair()
            .map_err(|e| Error::Host(format!("Cannot make a socket pair: {e}")))?;
        let spawned = Command::new(&self.agent)
            .arg("--launch")
            .env_clear()
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(source) => {
                self.cgroups.remove_seed(&name);
                return Err(Error::Spawn {
                    what: self.agent.display().to_string(),
                    source,
                });
            }
        };
        let seed = Seed {
            name,
            child,
            ctl: ours,
            claimed: false,
            cgroups: self.cgroups.clone(),
        };
        if let Err(e) = self.cgroups.place_seed(&seed.name, seed.child.id()) {
            seed.finish();
            return Err(e);
        }
        Ok(seed)
    }
}

impl Seed {
    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for SeedPool {
    fn drop(&mut self) {
        let seeds: Vec<Seed> = match self.state.get_mut() {
            Ok(state) => state.ready.drain(..).collect(),
            Err(_) => Vec::new(),
        };
        for seed in seeds {
            seed.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names_are_numbered_as_the_kernel_does() {
        for (n, name) in [
            (0, "CAP_CHOWN"),
            (8, "CAP_SETPCAP"),
            (13, "CAP_NET_RAW"),
            (21, "CAP_SYS_ADMIN"),
            (27, "CAP_MKNOD"),
            (31, "CAP_SETFCAP"),
            (40, "CAP_CHECKPOINT_RESTORE"),
        ] {
            assert_eq!(CAPABILITY_NAMES[n], name);
        }
        assert_eq!(CAPABILITY_NAMES.len(), 41);
    }

    #[test]
    fn the_plan_carries_every_isolation_setting_of_the_config() {
        let config = serde_json::json!({
            "process": {
                "user": {"uid": 0, "gid": 0}, "args": ["/.sandlab/agent"], "env": ["A=1"], "cwd": "/",
                "capabilities": {"bounding": ["CAP_CHOWN", "CAP_KILL"]}, "noNewPrivileges": true
            },
            "root": {"path": "rootfs", "readonly": false},
            "hostname": "box",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid"]},
                {"destination": "/sys", "type": "bind", "source": "/sys", "options": ["rbind", "ro"]}
            ],
            "linux": {"maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"]}
        });
        let paths = Paths {
            agent_socket: "/x/agent.sock".into(),
            netns: "/run/netns/x".into(),
            userns: "/x/userns".into(),
            rootfs: "/x/rootfs".into(),
            nofile: 1024,
        };
        let p = plan(&config, &paths).unwrap();
        assert_eq!(p.capabilities, vec![0, 5]);
        assert!(p.no_new_privileges);
        assert_eq!(p.mounts[1].kind, "bind");
        assert_eq!(p.masked, vec!["/proc/kcore"]);
        assert_eq!(p.readonly, vec!["/proc/sys"]);
        assert_eq!(p.hostname, "box");
        let mut bad = config.clone();
        bad["process"]["capabilities"]["bounding"] = serde_json::json!(["CAP_NOPE"]);
        assert!(plan(&bad, &paths).is_err());
    }
}
