//! The OCI runtime configuration (`config.json`) of a sandbox: every isolation layer of
//! SPEC section 5 is set here, on by default, and none can be turned off by a request.

use std::path::Path;

use sandlab_image::{IdMap, ImageConfig};
use serde_json::{json, Value};

use crate::cgroups::Cgroups;
use crate::paths::Layout;
use crate::{seccomp, SandboxSpec};

/// Where the agent binary appears inside every sandbox.
/// Open files one sandbox may hold across all its processes, about a tenth of a default
/// `fs.file-max` on a 24 GiB host. The kernel has no per-cgroup file limit, so it is cut
/// into a per-process `RLIMIT_NOFILE` of `budget / pids`: no process can raise its hard
/// limit (that needs CAP_SYS_RESOURCE in the host's user namespace) and there are at most
/// `pids` processes.
pub const OPEN_FILES_PER_SANDBOX: u64 = 1 << 18;
/// The least per process, whatever the pids limit (an agent serving its streams needs some).
const MIN_OPEN_FILES_PER_PROCESS: u64 = 256;

/// `RLIMIT_NOFILE` (soft and hard) of every process of a sandbox with this pids limit.
pub fn open_files_per_process(pids: u32) -> u64 {
    // Never above the server's own hard limit: a user namespace cannot raise it.
    let ceiling = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(_, hard)| hard)
        .unwrap_or(1024);
    (OPEN_FILES_PER_SANDBOX / u64::from(pids.max(1)))
        .max(MIN_OPEN_FILES_PER_PROCESS)
        .min(ceiling)
}

pub const AGENT_PATH: &str = "/.sandlab/agent";
/// The fd the agent's listening socket is passed on.
pub const AGENT_FD: u32 = 3;

/// Docker's default capability set. Held only inside the sandbox's user namespace.
pub const CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    // /sys is the host's (read-only): its network view lists the host's interfaces and
    // every other sandbox's veth, named after its id.
    "/sys/class/net",
    "/sys/devices/virtual/net",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
    "/sys/fs/bpf",
    "/sys/kernel/debug",
    "/sys/kernel/security",
    "/sys/kernel/tracing",
];

/// Every capability Linux 6.x defines, in the kernel's order (position = number, which
/// the native runtime relies on): a machine holds them all, within its own user namespace
/// only (the kernel checks each against the namespace that owns the object).
pub const MACHINE_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Where a machine keeps what inner container engines store: their overlay layers cannot
/// sit on the sandbox's own overlay root, so each is a directory of the sandbox's writable
/// volume (the same disk quota) mounted at its usual place.
pub const MACHINE_STATE_DIRS: &[(&str, &str)] = &[
    ("docker", "/var/lib/docker"),
    ("containerd", "/var/lib/containerd"),
    ("containers", "/var/lib/containers"),
];

/// Where systemd is when an image has it: a machine boots it as PID 1.
pub const SYSTEMD_INIT: &str = "/sbin/init";

/// What a sandbox is made as: `Standard`, or a machine with these parts.
#[derive(Clone, Debug)]
pub enum Shape<'a> {
    Standard,
    Machine {
        /// systemd is PID 1 (the agent is started beside it); else the agent is.
        systemd: bool,
        /// The host directories behind [`MACHINE_STATE_DIRS`], in that order.
        state: &'a [std::path::PathBuf],
    },
}

pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const CPU_PERIOD_US: u64 = 100_000;

/// `/proc` paths a machine leaves writable: the kernel lets root inside write only the
/// sysctls of namespaces its user namespace owns (`net.*` of its own netns, for Docker's
/// `ip_forward`); the others stay owned by the host's root.
const MACHINE_WRITABLE: &[&str] = &["/proc/sys"];

/// The environment variable systemd reads to know it runs in a container.
const CONTAINER_ENV: &str = "container=sandlab";

/// Builds `config.json` for `spec`.
#[allow(clippy::too_many_arguments)]
pub fn build(
    spec: &SandboxSpec,
    image: &ImageConfig,
    idmap: &IdMap,
    userns: Option<&Path>,
    agent_host_path: &Path,
    cgroups: &Cgroups,
    allow_32bit: bool,
    shape: &Shape<'_>,
) -> Value {
    let limits = &spec.limits;
    let hostname = spec.hostname.clone().unwrap_or_else(|| spec.id.to_string());
    let mut env: Vec<String> = Vec::new();
    if !image.env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(DEFAULT_PATH.into());
    }
    env.extend(image.env.iter().cloned());
    env.extend(spec.env.iter().cloned());
    env.push(format!("SANDLAB_AGENT_FD={AGENT_FD}"));
    env.push(format!("HOSTNAME={hostname}"));

    let memory = limits.memory.bytes() as i64;
    let mut mem = json!({ "limit": memory });
    if cgroups.has_swap_accounting() {
        // OCI's swap is memory+swap: equal to the limit means no swap at all.
        mem["swap"] = json!(memory);
    }
    let quota = (limits.cpus * CPU_PERIOD_US as f64).round().max(1000.0) as i64;
    let caps: Vec<&str> = CAPABILITIES.to_vec();
    let nofile = open_files_per_process(limits.pids);
    let mapping = |host: u32| json!([{ "containerID": 0, "hostID": host, "size": idmap.size }]);

    let mut config = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": [AGENT_PATH],
            "env": env,
            "cwd": "/",
            "capabilities": { "bounding": caps, "effective": caps, "permitted": caps },
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": false },
        "hostname": hostname,
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"] },
            // sysfs cannot be mounted fresh: the netns belongs to the host's user namespace.
            { "destination": "/sys", "type": "bind", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] },
            { "destination": AGENT_PATH, "type": "bind", "source": agent_host_path, "options": ["bind", "ro", "nosuid", "nodev"] }
        ],
        "linux": {
            "uidMappings": mapping(idmap.host_uid),
            "gidMappings": mapping(idmap.host_gid),
            "namespaces": namespaces(&spec.id, userns),
            "cgroupsPath": Cgroups::cgroups_path(&spec.id),
            "resources": {
                "devices": [{ "allow": false, "access": "rwm" }],
                "memory": mem,
                "cpu": { "quota": quota, "period": CPU_PERIOD_US },
                "pids": { "limit": limits.pids as i64 }
            },
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
            "seccomp": seccomp::profile(allow_32bit)
        }
    });
    if let Shape::Machine { systemd, state } = shape {
        machine(&mut config, *systemd, state, allow_32bit);
    }
    // The runtime sets rlimits with prlimit(2) on the sandbox's init, which takes
    // CAP_SYS_RESOURCE over the sandbox's user namespace: the host's root has it over a
    // namespace it owns, but need not have it in its own namespace (some hosts drop it),
    // which is what counts for a namespace the sandbox's range owns. There the runtime
    // process gets the limit before it starts (`OciRuntime::run_detached`) and the
    // sandbox inherits it.
    if userns.is_none() {
        config["process"]["rlimits"] =
            json!([{ "type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile }]);
    }
    config
}

/// Turns a standard `config.json` into a machine's (docs/machine-profile.md): every
/// capability within the user namespace, setuid programs work (no `no_new_privs`), a fresh
/// sysfs (its network view is the sandbox's own netns, which the sandbox's user namespace
/// owns), a writable cgroup namespace over the sandbox's delegated cgroup, `/run` and
/// `/run/lock` as tmpfs for systemd, the engines' state directories, and the machine
/// seccomp profile. Limits, masked paths and the rest of the read-only paths stay.
fn machine(config: &mut Value, systemd: bool, state: &[std::path::PathBuf], allow_32bit: bool) {
    let caps: Vec<&str> = MACHINE_CAPABILITIES.to_vec();
    let process = &mut config["process"];
    // Root's, as on a real machine: a user other than root inside gets none (no ambient set).
    process["capabilities"] = json!({ "bounding": caps, "effective": caps, "permitted": caps });
    process["noNewPrivileges"] = json!(false);
    if let Some(env) = process["env"].as_array_mut() {
        env.push(json!(CONTAINER_ENV));
    }
    if systemd {
        process["args"] = json!([SYSTEMD_INIT]);
    }
    let mut mounts: Vec<Value> = config["mounts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut m| {
            match m["destination"].as_str() {
                Some("/sys") => {
                    // Writable: a read-only first mount makes the superblock read-only,
                    // and an inner `--privileged` container, which mounts sysfs writable,
                    // is then refused. The kernel still lets root inside write only what
                    // its user namespace owns (its netns's devices); the rest of sysfs is
                    // the host root's, unmapped here.
                    m = json!({ "destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev"] });
                }
                Some("/sys/fs/cgroup") => {
                    m["options"] = json!(["nosuid", "noexec", "nodev", "relatime", "rw"]);
                }
                _ => {}
            }
            m
        })
        .collect();
    for dest in ["/run", "/run/lock"] {
        mounts.push(json!({ "destination": dest, "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=755", "size=65536k"] }));
    }
    for (host, (_, dest)) in state.iter().zip(MACHINE_STATE_DIRS) {
        mounts.push(json!({ "destination": dest, "type": "bind", "source": host, "options": ["rbind", "nosuid", "nodev"] }));
    }
    config["mounts"] = Value::Array(mounts);
    let linux = &mut config["linux"];
    // Host-wide sysfs views no longer need hiding: the fresh sysfs shows only the
    // sandbox's own network devices.
    if let Some(masked) = linux["maskedPaths"].as_array_mut() {
        masked.retain(|p| {
            !matches!(
                p.as_str(),
                Some("/sys/class/net" | "/sys/devices/virtual/net")
            )
        });
    }
    if let Some(ro) = linux["readonlyPaths"].as_array_mut() {
        ro.retain(|p| !p.as_str().is_some_and(|p| MACHINE_WRITABLE.contains(&p)));
    }
    linux["seccomp"] = json!(seccomp::machine_profile(allow_32bit));
}

/// The sandbox's namespaces. Its user namespace, when given, was made beforehand and is
/// owned by the sandbox's own range (see `userns`). The OCI runtime (runc 1.1) joins a
/// given user namespace before any other, and could then no longer join the network
/// namespace, which the host's user namespace owns (so root inside has no `CAP_NET_RAW`
/// or `CAP_NET_ADMIN` over it): in that case the runtime itself is started inside the
/// network namespace (`OciRuntime::run_detached`) and the sandbox inherits it.
fn namespaces(id: &sandlab_core::SandboxId, userns: Option<&Path>) -> Value {
    let mut list = vec![json!({ "type": "pid" })];
    if userns.is_none() {
        list.push(json!({ "type": "network", "path": Layout::netns(id) }));
    }
    for t in ["ipc", "uts", "mount", "cgroup"] {
        list.push(json!({ "type": t }));
    }
    list.push(match userns {
        Some(path) => json!({ "type": "user", "path": path }),
        None => json!({ "type": "user" }),
    });
    Value::Array(list)
}

#[cfg(test)]
mod tests {
    use sandlab_core::{Limits, SandboxId};

    use super::*;

    fn sample() -> Value {
        let spec = SandboxSpec {
            id: SandboxId::generate(),
            image: "debian".into(),
            limits: Limits::default(),
            hostname: None,
            env: vec!["A=1".into()],
            playground: None,
            pool: None,
        };
        let cg = Cgroups::detect().unwrap();
        build(
            &spec,
            &ImageConfig::default(),
            &IdMap::default(),
            None,
            Path::new("/usr/bin/sandlab-agent"),
            &cg,
            false,
            &Shape::Standard,
        )
    }

    #[test]
    fn is_a_valid_oci_spec() {
        let v = sample();
        let parsed: oci_spec::runtime::Spec = serde_json::from_value(v).expect("valid OCI spec");
        assert!(parsed.linux().as_ref().unwrap().seccomp().is_some());
    }

    #[test]
    fn every_isolation_layer_is_on() {
        let v = sample();
        let ns: Vec<&str> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        for want in ["user", "pid", "mount", "uts", "ipc", "network", "cgroup"] {
            assert!(ns.contains(&want), "namespace {want} missing");
        }
        assert_eq!(v["process"]["noNewPrivileges"], true);
        assert_eq!(v["linux"]["uidMappings"][0]["containerID"], 0);
        assert_ne!(
            v["linux"]["uidMappings"][0]["hostID"], 0,
            "root must not map to host root"
        );
        let caps = v["process"]["capabilities"]["bounding"].as_array().unwrap();
        assert!(!caps.iter().any(|c| c == "CAP_SYS_ADMIN"));
        assert_eq!(v["linux"]["resources"]["memory"]["limit"], 512 << 20);
        assert_eq!(v["linux"]["resources"]["pids"]["limit"], 256);
        assert_eq!(v["linux"]["resources"]["cpu"]["quota"], 100_000);
        for p in [
            "/proc/kcore",
            "/proc/keys",
            "/proc/timer_list",
            "/proc/sched_debug",
            "/sys/firmware",
        ] {
            assert!(
                v["linux"]["maskedPaths"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|m| m == p),
                "{p} not masked"
            );
        }
        for p in ["/proc/sys", "/proc/sysrq-trigger", "/proc/bus", "/proc/irq"] {
            assert!(
                v["linux"]["readonlyPaths"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|m| m == p),
                "{p} not read-only"
            );
        }
        let writable_host_binds = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| {
                m["type"] == "bind" && !m["options"].as_array().unwrap().iter().any(|o| o == "ro")
            })
            .count();
        assert_eq!(
            writable_host_binds, 0,
            "no host path may be mounted writable"
        );
        assert_eq!(v["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
    }
}
