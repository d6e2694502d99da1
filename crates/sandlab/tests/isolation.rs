//! Each isolation promise of SPEC section 5, attacked from inside a real sandbox and
//! checked from outside (host cgroups, host processes, a host canary, host listeners).

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// The image range; each sandbox runs as the root of a range of its own above it.
const IMAGE_UID: u32 = 0x7000_0000;

#[test]
fn hello_runs_as_root_inside_and_unprivileged_outside() {
    let data = data_dir();
    let out = run_bash(&data, &[], "echo hello; id -u");
    assert_eq!(out.code(), 0, "{}", out.stderr_text());
    assert_eq!(out.stdout_text(), "hello\n0\n");

    let id = create(&data, &[]);
    let pid = init_pid(&id);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let host_uid: u32 = uid_line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(
        host_uid > IMAGE_UID && (host_uid - IMAGE_UID).is_multiple_of(65536),
        "sandbox root must be the unprivileged root of its own host range: {uid_line}"
    );
    let inside = exec(&data, &id, "id -u; cat /proc/self/uid_map");
    assert!(
        inside.stdout_text().starts_with("0\n"),
        "{}",
        inside.stdout_text()
    );
    assert!(inside.stdout_text().contains(&host_uid.to_string()));
    rm(&data, &id);
}

#[test]
fn exit_codes_and_timeouts() {
    let data = data_dir();
    assert_eq!(run_bash(&data, &[], "exit 3").code(), 3);
    let out = run_bash(&data, &["--timeout", "1s"], "sleep 30");
    assert_eq!(
        out.code(),
        124,
        "timeout must exit 124: {}",
        out.stderr_text()
    );
    let out = run_bash(&data, &[], "kill -TERM $$");
    assert_eq!(out.code(), 128 + 15);
}

#[test]
fn memory_bomb_exits_137_and_the_host_is_fine() {
    let data = data_dir();
    let out = run_bash(
        &data,
        &["--memory", "64M"],
        "python3 -c 'a=[]\nwhile True: a.append(bytearray(1<<20))'",
    );
    assert_eq!(
        out.code(),
        137,
        "stdout={} stderr={}",
        out.stdout_text(),
        out.stderr_text()
    );
    assert!(
        Command::new("true").status().unwrap().success(),
        "host still runs processes"
    );
}

#[test]
fn fork_bomb_stays_at_the_pids_limit() {
    let data = data_dir();
    let id = create(&data, &["--pids", "64"]);
    let mut bomb = Command::new(env!("CARGO_BIN_EXE_sandlab"))
        .arg("--data-dir")
        .arg(&data)
        .args([
            "sandbox",
            "exec",
            &id,
            "--timeout",
            "8s",
            "--",
            "bash",
            "-c",
            "b(){ b|b& }; b; sleep 6",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let cg = pids_cgroup(&id);
    let max: u64 = std::fs::read_to_string(cg.join("pids.max"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(max, 64);
    let mut peak = 0u64;
    let hit = wait_until(Duration::from_secs(10), || {
        let cur: u64 = std::fs::read_to_string(cg.join("pids.current"))
            .unwrap_or_default()
            .trim()
            .parse()
            .unwrap_or(0);
        peak = peak.max(cur);
        let events = std::fs::read_to_string(cg.join("pids.events")).unwrap_or_default();
        events
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
            > 0
    });
    assert!(hit, "the fork bomb never hit the pids limit (peak {peak})");
    assert!(peak <= 64, "pids.current {peak} exceeded the limit");
    let _ = bomb.wait();
    assert!(
        Command::new("true").status().unwrap().success(),
        "host can still fork"
    );
    rm(&data, &id);
}

#[test]
fn filling_the_disk_hits_the_quota() {
    let data = data_dir();
    let out = run_bash(
        &data,
        &["--disk", "64M"],
        "dd if=/dev/urandom of=/fill bs=1M count=200 2>&1; sync; echo size=$(du -m /fill | cut -f1)",
    );
    let text = out.stdout_text();
    assert!(
        text.contains("Disk quota exceeded"),
        "{text}\n{}",
        pool_report(&data)
    );
    let size: u64 = text.rsplit("size=").next().unwrap().trim().parse().unwrap();
    assert!(size <= 70, "wrote {size}M past a 64M quota");
}

/// btrfs counts a subvolume's bytes against its limit only while the pool's qgroups are
/// consistent, and the kernel marks them inconsistent on its own (an accounting error, a
/// generation mismatch at mount, a deep subvolume dropped); with quotas switched off there
/// are no limits at all. Here the host breaks a pool of its own both ways: a qgroup
/// relation over shared extents added without a rescan (inconsistent), then `btrfs quota
/// disable`. After each, the next sandbox must be held to its limit and the pool must be
/// whole again; after the second, so must the sandbox that was already running.
#[test]
fn the_disk_quota_holds_after_the_pool_accounting_breaks() {
    let shared = data_dir();
    let data = shared.with_file_name("test-quota");
    std::fs::create_dir_all(&data).unwrap();
    let images = data.join("images");
    if std::fs::symlink_metadata(&images).is_err() {
        std::os::unix::fs::symlink(shared.join("images"), &images).unwrap();
    }
    // A first sandbox mounts the pool; it and the pool's additions go whatever happens.
    let first = create(&data, &["--disk", "64M"]);
    let pool = data.join("volumes");
    let _guard = QuotaPoolGuard {
        data: data.clone(),
        sandbox: first.clone(),
    };
    let sh = |script: &str| {
        let out = Command::new("sh")
            .args(["-ec", script, "sh"])
            .arg(&pool)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{script}: {}", out.stderr_text());
        out.stdout_text()
    };
    let qgroups = || sh(r#"echo "/sys/fs/btrfs/$(findmnt -no UUID "$1")/qgroups""#);
    let qgroups = std::path::PathBuf::from(qgroups().trim());
    if !qgroups.join("inconsistent").exists() {
        println!("this kernel has no qgroups/inconsistent in sysfs; nothing to check");
        return;
    }
    let flag = || {
        std::fs::read_to_string(qgroups.join("inconsistent"))
            .unwrap_or_else(|_| "gone".into())
            .trim()
            .to_owned()
    };
    let fill = "dd if=/dev/urandom of=/fill bs=1M count=200 2>&1; sync; echo size=$(du -m /fill | cut -f1)";
    let held = |text: &str| {
        let report = pool_report(&data);
        assert!(text.contains("Disk quota exceeded"), "{text}\n{report}");
        let size: u64 = text.rsplit("size=").next().unwrap().trim().parse().unwrap();
        assert!(size <= 70, "wrote {size}M past a 64M quota\n{report}");
    };

    // Inconsistent.
    sh(BREAKER_GONE);
    sh(r#"cd "$1"
        btrfs subvolume create breaker-a >/dev/null; btrfs subvolume create breaker-b >/dev/null
        head -c 8M /dev/urandom > breaker-a/x; cp --reflink=always breaker-a/x breaker-b/x; sync
        btrfs qgroup create 1/4242 .
        btrfs qgroup assign --no-rescan "0/$(btrfs inspect-internal rootid breaker-a)" 1/4242 . 2>/dev/null || true"#);
    assert_eq!(flag(), "1", "the attack did not break the accounting");
    held(&run_bash(&data, &["--disk", "64M"], fill).stdout_text());
    assert_eq!(
        flag(),
        "0",
        "the pool was left inconsistent\n{}",
        pool_report(&data)
    );

    // Switched off: the next sandbox switches quotas on again and limits every volume.
    sh(BREAKER_GONE);
    sh(r#"btrfs quota disable "$1""#);
    assert!(!qgroups.exists(), "quotas are still on");
    held(&run_bash(&data, &["--disk", "64M"], fill).stdout_text());
    assert_eq!(flag(), "0", "{}", pool_report(&data));
    held(&exec(&data, &first, fill).stdout_text());
}

/// The standard profile refuses the btrfs ioctls that make a subvolume too (a machine's
/// state dirs are where one would escape the disk limit; see machine.rs). From inside,
/// on each runtime: seccomp's EPERM, where the kernel alone answers ENOTTY on overlayfs.
#[test]
fn the_ioctls_that_make_btrfs_subvolumes_are_refused() {
    let data = data_dir();
    let out = run_bash(
        &data,
        &[],
        r#"python3 - <<'EOF'
import ctypes, errno, os, struct
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open("/tmp", os.O_RDONLY)
args = ctypes.create_string_buffer(struct.pack("q", fd) + b"escape".ljust(4088, b"\0"), 4096)
for nr in [0x01, 0x0e, 0x17, 0x18]:
    for upper in [0, 1 << 32]:
        r = libc.syscall(16, fd, ctypes.c_ulong(upper | 0x50009400 | nr), args)
        print(hex(nr), hex(upper), r, errno.errorcode.get(ctypes.get_errno()))
EOF"#,
    );
    let text = out.stdout_text();
    assert_eq!(
        text.lines().filter(|l| l.ends_with(" -1 EPERM")).count(),
        8,
        "{text}{}",
        out.stderr_text()
    );
}

/// Removes what `the_disk_quota_holds_after_the_pool_accounting_breaks` made, passed or
/// not: its sandbox, and the qgroup and subvolumes it added to its pool.
struct QuotaPoolGuard {
    data: std::path::PathBuf,
    sandbox: String,
}

impl Drop for QuotaPoolGuard {
    fn drop(&mut self) {
        let _ = sandlab(&self.data, &["sandbox", "rm", &self.sandbox]);
        let _ = Command::new("sh")
            .args(["-c", BREAKER_GONE, "sh"])
            .arg(self.data.join("volumes"))
            .stdin(Stdio::null())
            .output();
    }
}

/// Removes the qgroup relation, the qgroup and the two subvolumes the test above adds to
/// its pool, whichever of them are there.
const BREAKER_GONE: &str = r#"cd "$1"
    if [ -d breaker-a ]; then
      btrfs qgroup remove "0/$(btrfs inspect-internal rootid breaker-a)" 1/4242 . >/dev/null 2>&1 || true
    fi
    btrfs qgroup destroy 1/4242 . >/dev/null 2>&1 || true
    for s in breaker-a breaker-b; do [ ! -d $s ] || btrfs subvolume delete $s >/dev/null; done"#;

#[test]
fn privileged_operations_fail() {
    let data = data_dir();
    let script = r#"
        echo b > /proc/sysrq-trigger 2>/dev/null && echo SYSRQ-WRITTEN
        mount -t tmpfs x /mnt 2>/dev/null && echo MOUNTED
        unshare -r true 2>/dev/null && echo UNSHARED
        unshare -n true 2>/dev/null && echo UNSHARED-NET
        python3 - <<'PY'
import ctypes, errno, os, socket
libc = ctypes.CDLL(None, use_errno=True)
# finit_module(fd=-1, "", 0): loading a kernel module
r = libc.syscall(313, -1, b"", 0)
print("finit_module", r, errno.errorcode.get(ctypes.get_errno()))
r = libc.syscall(175, None, 0, b"")
print("init_module", r, errno.errorcode.get(ctypes.get_errno()))
for name, nr in [("io_uring_setup", 425), ("bpf", 321), ("userfaultfd", 323), ("keyctl", 250), ("add_key", 248), ("request_key", 249)]:
    r = libc.syscall(nr, 0, 0, 0, 0)
    print(name, r, errno.errorcode.get(ctypes.get_errno()))
try:
    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    print("RAW-SOCKET-OPENED")
except PermissionError as e:
    print("raw socket refused", e.errno)
PY
        echo kcore-bytes=$(cat /proc/kcore 2>/dev/null | head -c1 | wc -c)
        echo firmware-entries=$(ls /sys/firmware 2>/dev/null | wc -l)
        echo net-devices=$(ls /sys/class/net /sys/devices/virtual/net 2>/dev/null | grep -v ':$' | tr '\n' ' ')
        echo 1 > /proc/sys/vm/drop_caches 2>/dev/null && echo PROC-SYS-WRITTEN
        echo x > /.sandlab/agent 2>/dev/null && echo AGENT-WRITTEN
    "#;
    let out = run_bash(&data, &[], script);
    let text = out.stdout_text();
    assert!(
        text.contains("kcore-bytes=0"),
        "/proc/kcore is readable:\n{text}"
    );
    assert!(
        text.contains("firmware-entries=0"),
        "/sys/firmware is not masked:\n{text}"
    );
    // The host's /sys would list the host's interfaces and every sandbox's veth (its id).
    let devices = text
        .lines()
        .find(|l| l.starts_with("net-devices="))
        .unwrap_or_default();
    assert!(
        !devices.contains("eth0") && !devices.contains("sb-"),
        "host network devices visible in /sys: {devices}"
    );
    for bad in [
        "SYSRQ-WRITTEN",
        "MOUNTED",
        "UNSHARED",
        "RAW-SOCKET-OPENED",
        "PROC-SYS-WRITTEN",
        "AGENT-WRITTEN",
    ] {
        assert!(!text.contains(bad), "{bad} in:\n{text}");
    }
    for call in [
        "finit_module",
        "init_module",
        "io_uring_setup",
        "bpf",
        "userfaultfd",
        "keyctl",
        "add_key",
        "request_key",
    ] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{call} ")))
            .unwrap_or_else(|| panic!("no {call} line in:\n{text}"));
        assert!(line.contains("-1 EPERM"), "{call} was not refused: {line}");
    }
    assert!(text.contains("raw socket refused"), "{text}");
}

#[test]
fn host_processes_are_invisible() {
    let data = data_dir();
    let mut canary = Command::new("sleep").arg("61").spawn().unwrap();
    let cmdline = format!("/proc/{}/cmdline", canary.id());
    let started = wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(&cmdline)
            .unwrap_or_default()
            .starts_with("sleep")
    });
    assert!(started, "the canary runs on the host");
    let out = run_bash(&data, &[], "ps -eo args | awk '$1 == \"sleep\" && $2 == \"61\"' | wc -l; ps -e --no-headers | wc -l; ls -d /proc/[0-9]* | wc -l");
    let _ = canary.kill();
    let _ = canary.wait();
    let text = out.stdout_text();
    let counts: Vec<u32> = text.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(counts[0], 0, "the host's sleep is visible inside:\n{text}");
    assert!(
        counts[1] < 10 && counts[2] < 10,
        "the sandbox sees too many processes:\n{text}"
    );
}

#[test]
fn network_none_is_loopback_only() {
    let data = data_dir();
    let host = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = host.local_addr().unwrap().port();
    host.set_nonblocking(true).unwrap();
    let host_ip = host_address();
    let script = format!(
        "ip -o link | awk -F': ' '{{print $2}}'; \
         curl -sS --max-time 2 http://{host_ip}:{port}/ >/dev/null 2>&1 && echo HOST-REACHED; \
         curl -sS --max-time 2 http://198.51.100.7:80/ >/dev/null 2>&1 && echo OUT-REACHED; \
         python3 -m http.server --bind 127.0.0.1 8000 >/dev/null 2>&1 & sleep 1; curl -s -o /dev/null -w '%{{http_code}}\\n' http://127.0.0.1:8000/"
    );
    let out = run_bash(&data, &["--network", "none"], &script);
    let text = out.stdout_text();
    assert_eq!(text.lines().next(), Some("lo"), "{text}");
    assert!(!text.contains("eth0"), "{text}");
    assert!(!text.contains("REACHED"), "{text}");
    assert!(text.contains("200"), "loopback works inside: {text}");
    let mut buf = [0u8; 1];
    assert!(
        host.accept().map(|(mut s, _)| s.read(&mut buf)).is_err(),
        "host listener got a connection"
    );
}

/// The host's address on its default route.
fn host_address() -> String {
    let out = Command::new("ip")
        .args(["-4", "route", "get", "192.0.2.123"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut words = text.split_whitespace();
    while let Some(w) = words.next() {
        if w == "src" {
            return words.next().unwrap().to_owned();
        }
    }
    panic!("no src in {text}");
}

/// Docker's default capability set as a CapEff mask: chown, dac_override, fowner, fsetid,
/// kill, setgid, setuid, setpcap, net_bind_service, net_raw, sys_chroot, mknod,
/// audit_write, setfcap.
const DOCKER_CAPS: u64 = 0x00000000a80425fb;

#[test]
fn namespaces_capabilities_and_limits_are_as_specified() {
    let data = data_dir();
    let id = create(
        &data,
        &["--cpus", "0.5", "--memory", "96M", "--pids", "100"],
    );
    let pid = init_pid(&id);
    for ns in ["user", "pid", "mnt", "uts", "ipc", "net", "cgroup"] {
        let host = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        let sandbox = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        assert_ne!(
            host, sandbox,
            "the sandbox shares the host's {ns} namespace"
        );
    }
    let out = exec(&data, &id, "hostname; grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; cat /proc/self/cgroup");
    let text = out.stdout_text();
    assert_eq!(
        text.lines().next(),
        Some(id.as_str()),
        "uts namespace with the id as hostname:\n{text}"
    );
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(
        u64::from_str_radix(&field("CapEff:"), 16).unwrap(),
        DOCKER_CAPS,
        "{text}"
    );
    assert_eq!(
        u64::from_str_radix(&field("CapBnd:"), 16).unwrap(),
        DOCKER_CAPS,
        "{text}"
    );
    assert_eq!(field("NoNewPrivs:"), "1");
    assert_eq!(field("Seccomp:"), "2", "seccomp filter mode");
    // `/proc/self/cgroup` lines are `N:controllers:path`; in a cgroup namespace every path is `/`.
    let cgroup_lines: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.split(':')
                .next()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .collect();
    assert!(!cgroup_lines.is_empty(), "{text}");
    for line in cgroup_lines {
        assert!(
            line.ends_with(":/"),
            "cgroup namespace must hide the host path: {line}"
        );
    }
    // Limits as the host's cgroup files see them (v1 hybrid or v2).
    let v1 = std::path::Path::new("/sys/fs/cgroup/cpu/sandlab").join(&id);
    if v1.exists() {
        let read = |p: &str| std::fs::read_to_string(p).unwrap().trim().to_owned();
        assert_eq!(
            read(&format!("/sys/fs/cgroup/cpu/sandlab/{id}/cpu.cfs_quota_us")),
            "50000"
        );
        assert_eq!(
            read(&format!(
                "/sys/fs/cgroup/memory/sandlab/{id}/memory.limit_in_bytes"
            )),
            (96u64 << 20).to_string()
        );
        let memsw = format!("/sys/fs/cgroup/memory/sandlab/{id}/memory.memsw.limit_in_bytes");
        if std::path::Path::new(&memsw).exists() {
            assert_eq!(read(&memsw), (96u64 << 20).to_string(), "swap must be off");
        }
        assert_eq!(
            read(&format!("/sys/fs/cgroup/pids/sandlab/{id}/pids.max")),
            "100"
        );
    } else {
        let dir = std::path::Path::new("/sys/fs/cgroup/sandlab").join(&id);
        let read = |f: &str| {
            std::fs::read_to_string(dir.join(f))
                .unwrap()
                .trim()
                .to_owned()
        };
        assert_eq!(read("cpu.max"), "50000 100000");
        assert_eq!(read("memory.max"), (96u64 << 20).to_string());
        assert_eq!(read("memory.swap.max"), "0", "swap must be off");
        assert_eq!(read("pids.max"), "100");
    }
    rm(&data, &id);
}

#[test]
fn root_inside_binds_privileged_ports_of_its_own_namespace() {
    // Like Docker: a web server on port 80 works inside, though the network namespace
    // belongs to the host's user namespace.
    let data = data_dir();
    let out = run_bash(
        &data,
        &[],
        "python3 -c \"import socket; s=socket.socket(); s.bind(('0.0.0.0', 80)); print('bound')\"",
    );
    assert_eq!(out.code(), 0, "{}", out.stderr_text());
    assert!(out.stdout_text().contains("bound"));
}

/// A sandbox cannot make the host's disk flush for it: its root is a `volatile` overlay,
/// so `sync` and `fsync` inside return at once and removal does not flush its writes. From
/// inside: write and sync; from the host: the root's mount says `volatile`, and what was
/// written is there.
#[test]
fn a_sandboxs_syncs_do_not_reach_the_hosts_disk() {
    let data = data_dir();
    let id = create(&data, &[]);
    let out = exec(
        &data,
        &id,
        "dd if=/dev/zero of=/written bs=1M count=8 conv=fsync status=none && sync && echo synced",
    );
    assert_eq!(out.stdout_text().trim(), "synced", "{}", out.stderr_text());
    let root = std::fs::canonicalize(&data)
        .unwrap()
        .join("sandboxes")
        .join(&id)
        .join("rootfs");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = mountinfo
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(root.to_str().unwrap()))
        .unwrap_or_else(|| panic!("no mount at {}", root.display()));
    let (_, after) = line.split_once(" - ").unwrap();
    let options = after.split(' ').nth(2).unwrap_or_default();
    assert!(
        // Newer kernels show the option as `fsync=volatile`.
        options
            .split(',')
            .any(|o| o == "volatile" || o == "fsync=volatile"),
        "the sandbox's root is mounted without volatile: {line}"
    );
    assert_eq!(
        std::fs::metadata(root.join("written"))
            .map(|m| m.len())
            .ok(),
        Some(8 << 20)
    );
    rm(&data, &id);
}
