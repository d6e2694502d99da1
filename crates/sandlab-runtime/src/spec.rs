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

pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const CPU_PERIOD_US: u64 = 100_000;

/// Builds `config.json` for `spec`.
pub fn build(
    spec: &SandboxSpec,
    image: &ImageConfig,
    idmap: &IdMap,
    userns: Option<&Path>,
    agent_host_path: &Path,
    cgroups: &Cgroups,
    allow_32bit: bool,
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
