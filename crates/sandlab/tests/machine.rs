//! The `machine` profile (issue 11): systemd is PID 1, Docker runs inside, and every
//! isolation promise still holds against the host, checked from the host: an inner
//! `--privileged` container cannot see host processes, write a host canary, outgrow the
//! sandbox's memory, load modules or reach the host; a machine that sets another source
//! address on its interface sends nothing out; the agent (and so every command a learner
//! runs) is in the sandbox's network namespace, and comes back when killed.
//!
//! Needs the `machine` image in the test data dir (`scripts/test.sh` builds it).

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use common::testhost::TestHost;
use common::*;

/// A busybox image built inside from `scratch` (no registry here), tagged `bb`.
const BUILD_BB: &str = "set -e; mkdir -p /tmp/bb && cd /tmp/bb && cp /bin/busybox . && \
    printf 'FROM scratch\\nCOPY busybox /bin/busybox\\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\\nCMD [\"/bin/sh\"]\\n' > Dockerfile && \
    docker build -q -t bb . >/dev/null";

fn has_machine_image(data: &Path) -> bool {
    sandlab(data, &["image", "ls"])
        .stdout_text()
        .lines()
        .any(|l| l.starts_with("machine "))
}

/// A machine with `extra` options, booted: `systemctl is-system-running --wait` answered.
fn boot(data: &Path, extra: &[&str]) -> String {
    assert!(
        has_machine_image(data),
        "no `machine` image in {}: run scripts/test.sh, or `sandlab --data-dir {} image build machine`",
        data.display(),
        data.display()
    );
    let mut opts = vec!["--image", "machine", "--profile", "machine"];
    for (flag, default) in [("--memory", "1G"), ("--pids", "2048"), ("--disk", "4G")] {
        if !extra.contains(&flag) {
            opts.extend([flag, default]);
        }
    }
    opts.extend_from_slice(extra);
    let id = create(data, &opts);
    let out = exec(data, &id, "timeout 60 systemctl is-system-running --wait");
    let state = out.stdout_text();
    assert!(
        matches!(state.trim(), "running" | "degraded"),
        "systemd did not come up: {state:?}\n{}\n{}",
        out.stderr_text(),
        exec(
            data,
            &id,
            "systemctl --failed --no-pager; journalctl -b --no-pager | tail -40"
        )
        .stdout_text()
    );
    id
}

fn must(data: &Path, id: &str, script: &str) -> String {
    let out = exec(data, id, script);
    assert_eq!(
        out.code(),
        0,
        "`{script}` failed:\n{}\n{}",
        out.stdout_text(),
        out.stderr_text()
    );
    out.stdout_text()
}

fn net_ns_inode(pid: u32) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

#[test]
fn systemd_runs_services_and_docker_builds_and_runs_containers() {
    let data = data_dir();
    let id = boot(&data, &[]);
    // systemd: a unit written, enabled and started; its journal read.
    must(
        &data,
        &id,
        "set -e; printf '[Unit]\\nDescription=Hello\\n[Service]\\nExecStart=/bin/sh -c \"echo hello-from-unit; exec sleep infinity\"\\n[Install]\\nWantedBy=multi-user.target\\n' > /etc/systemd/system/hello.service; \
         systemctl daemon-reload; systemctl enable --now hello.service",
    );
    let active = must(&data, &id, "systemctl is-active hello.service");
    assert_eq!(active.trim(), "active");
    let ok = wait_until(Duration::from_secs(10), || {
        exec(&data, &id, "journalctl -u hello --no-pager")
            .stdout_text()
            .contains("hello-from-unit")
    });
    assert!(ok, "the unit's output never reached its journal");
    // Docker: build from scratch, run, publish a port, limit memory.
    must(&data, &id, BUILD_BB);
    let hello = must(&data, &id, "docker run --rm bb echo hello-from-inner");
    assert!(hello.contains("hello-from-inner"), "{hello}");
    must(
        &data,
        &id,
        "set -e; mkdir -p /srv/www; echo page-ok > /srv/www/index.html; \
         docker run -d --name web -p 8080:80 -v /srv/www:/www bb httpd -f -p 80 -h /www >/dev/null",
    );
    let ok = wait_until(Duration::from_secs(10), || {
        exec(&data, &id, "curl -fsS http://127.0.0.1:8080/")
            .stdout_text()
            .contains("page-ok")
    });
    assert!(ok, "the published port did not answer");
    let limit = must(
        &data,
        &id,
        "docker run --rm -m 64m bb cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || docker run --rm -m 64m bb cat /sys/fs/cgroup/memory.max",
    );
    assert_eq!(limit.trim(), "67108864", "docker -m was not applied");
    // Everything the learner runs, the agent included, is in the sandbox's netns.
    let sandbox_net = std::fs::metadata(format!("/run/netns/{id}")).unwrap();
    let agent = processes_of(&id)
        .into_iter()
        .find(|p| {
            std::fs::read_link(format!("/proc/{p}/exe"))
                .is_ok_and(|e| e == Path::new("/.sandlab/agent"))
        })
        .expect("the machine's agent");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        net_ns_inode(agent),
        format!("net:[{}]", sandbox_net.ino()),
        "the agent is not in the sandbox's network namespace"
    );
    assert_ne!(net_ns_inode(agent), net_ns_inode(std::process::id()));
    rm(&data, &id);
    assert_eq!(leftovers(&data, &id), Vec::<String>::new());
}

#[test]
fn a_privileged_inner_container_stays_inside_the_sandbox() {
    let data = data_dir();
    let canary = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(canary.path(), "canary").unwrap();
    let host = TcpListener::bind("0.0.0.0:0").unwrap();
    host.set_nonblocking(true).unwrap();
    let port = host.local_addr().unwrap().port();
    let id = boot(&data, &["--network", "egress"]);
    must(&data, &id, BUILD_BB);
    let gateway = must(&data, &id, "ip -4 route show default | awk '{print $3}'");
    let gateway = gateway.trim();
    let canary_path = canary.path().display().to_string();
    // Everything a privileged container could try, each printing one verdict line.
    let attack = format!(
        "echo procs $(ls -d /proc/[0-9]* | wc -l); \
         echo owned > {canary_path} 2>/dev/null; echo canary-write $?; \
         mkdir -p /c && mount -t cgroup -o memory cgroup /c 2>/dev/null && \
           {{ echo 99999999999 > /c/memory.limit_in_bytes 2>/dev/null; echo cgroup-limit-write $?; }}; \
         insmod /lib/modules/none.ko 2>/dev/null; echo insmod $?; \
         mknod /dev/sdx b 8 0 2>/dev/null; echo mknod $?; \
         echo 1 > /sys/kernel/mm/ksm/run 2>/dev/null; echo sysfs-write $?; \
         nc -w 2 {gateway} {port} </dev/null 2>/dev/null; echo host-connect $?; \
         nc -w 2 10.0.0.1 80 </dev/null 2>/dev/null; echo private-connect $?"
    );
    must(
        &data,
        &id,
        &format!("cat > /tmp/attack.sh <<'EOF'\n{attack}\nEOF"),
    );
    let out = exec(
        &data,
        &id,
        "docker run --rm --privileged -v /tmp/attack.sh:/attack.sh bb sh /attack.sh",
    );
    let text = out.stdout_text();
    let verdict = |what: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{what} ")))
            .unwrap_or("missing")
            .trim()
            .to_owned()
    };
    let procs: u32 = verdict("procs").parse().unwrap_or(999);
    assert!(
        procs < 10,
        "the inner container sees {procs} processes:\n{text}\n{}",
        out.stderr_text()
    );
    for what in [
        "canary-write",
        "cgroup-limit-write",
        "insmod",
        "mknod",
        "sysfs-write",
        "host-connect",
        "private-connect",
    ] {
        let v = verdict(what);
        assert!(
            v != "0" && v != "missing",
            "{what} succeeded ({v}):\n{text}\n{}",
            out.stderr_text()
        );
    }
    assert_eq!(std::fs::read_to_string(canary.path()).unwrap(), "canary");
    assert!(host.accept().is_err(), "the host listener got a connection");
    // Memory: an inner container that outgrows the sandbox is killed (137), and the
    // sandbox's cgroup, read from the host, never went above its limit.
    let oom = exec(
        &data,
        &id,
        "docker run --rm --privileged bb sh -c 'head -c 3000m /dev/zero | tail' ; echo exit $?",
    );
    assert!(
        oom.stdout_text().contains("exit 137"),
        "an inner container outgrew the sandbox: {}\n{}",
        oom.stdout_text(),
        oom.stderr_text()
    );
    let peak: u64 = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/memory/sandlab/{id}/memory.max_usage_in_bytes"
    ))
    .or_else(|_| std::fs::read_to_string(format!("/sys/fs/cgroup/sandlab/{id}/memory.peak")))
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    // v1 charges in batches: its high-water mark may pass the limit by a few pages.
    assert!(
        peak <= (1 << 30) + (1 << 20),
        "the sandbox used {peak} bytes, above its 1G"
    );
    rm(&data, &id);
    assert_eq!(leftovers(&data, &id), Vec::<String>::new());
}

/// Root in a machine holds CAP_NET_ADMIN over its netns and can put any address on its
/// interface: a packet with a source the host did not give it must not leave the host.
#[test]
fn a_machine_cannot_send_from_an_address_it_was_not_given() {
    let data = data_dir();
    let far = TestHost::start(
        "spf",
        "198.51.100.65",
        "198.51.100.66",
        "2001:db8:5b::1",
        "2001:db8:5b::2",
    );
    let recorder = far.udp_recorder(9999);
    let id = boot(&data, &["--network", "egress"]);
    // The address it was given works (the far host sees the host's NAT address)...
    must(&data, &id, "echo ok | nc -u -w 1 198.51.100.66 9999");
    let ok = wait_until(Duration::from_secs(5), || !recorder.sources().is_empty());
    assert!(ok, "the machine's own datagram never arrived");
    let before = recorder.sources().len();
    // ...another sandbox's pool address and an address outside the pool do not.
    must(
        &data,
        &id,
        "ip addr add 10.213.255.250/32 dev eth0 && ip addr add 203.0.113.9/32 dev eth0 && \
         for src in 10.213.255.250 203.0.113.9; do echo spoof | nc -u -w 1 -s $src 198.51.100.66 9999; done; true",
    );
    std::thread::sleep(Duration::from_secs(2));
    let after = recorder.sources();
    assert_eq!(
        after.len(),
        before,
        "spoofed datagrams left the host: {after:?}"
    );
    rm(&data, &id);
}

#[test]
fn a_killed_agent_comes_back_and_removal_leaves_nothing_of_inner_containers() {
    let data = data_dir();
    let id = boot(&data, &[]);
    must(&data, &id, BUILD_BB);
    must(
        &data,
        &id,
        "docker run -d --name sleeper bb sleep 3600 >/dev/null",
    );
    // The learner kills the agent: the next exec starts it again beside systemd.
    let _ = exec(
        &data,
        &id,
        "kill -9 $(pidof agent) 2>/dev/null; pkill -9 -f /.sandlab/agent",
    );
    let again = exec(&data, &id, "docker ps --format '{{.Names}}'");
    assert!(
        again.stdout_text().contains("sleeper"),
        "no exec after the agent was killed: {}\n{}",
        again.stdout_text(),
        again.stderr_text()
    );
    // Reconciliation by another process adopts it; removal takes the inner containers,
    // their cgroups and mounts with it.
    let listed = sandlab(&data, &["sandbox", "ls"]).stdout_text();
    assert!(listed.contains(&id), "{listed}");
    rm(&data, &id);
    assert_eq!(leftovers(&data, &id), Vec::<String>::new());
}

#[test]
fn the_profile_is_refused_with_a_sentence_where_it_cannot_be_had() {
    let data = data_dir();
    let out = sandlab(&data, &["run", "--profile", "castle", "--", "true"]);
    assert_ne!(out.code(), 0);
    assert!(
        out.stderr_text().contains("is not `standard` or `machine`"),
        "{}",
        out.stderr_text()
    );
    let off = std::process::Command::new(env!("CARGO_BIN_EXE_sandlab"))
        .env("SANDLAB_MACHINE_PROFILE", "off")
        .args(["--data-dir"])
        .arg(&data)
        .args(["run", "--profile", "machine", "--", "true"])
        .output()
        .unwrap();
    assert_ne!(off.code(), 0);
    assert!(
        off.stderr_text()
            .contains("machine profile is switched off"),
        "{}",
        off.stderr_text()
    );
}

const MACHINE: &[&str] = &["--image", "machine", "--profile", "machine"];

fn machine_opts<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v: Vec<&str> = MACHINE.to_vec();
    v.extend_from_slice(extra);
    v
}

/// The standard profile's isolation tests (tests/isolation.rs), for a machine: its root
/// is the root of its own host range, memory, pids and disk limits hold, host processes
/// are invisible and `network none` is loopback only.
#[test]
fn the_isolation_baseline_holds_in_a_machine() {
    let data = data_dir();
    assert!(has_machine_image(&data), "no `machine` image");
    // Root inside, an unprivileged range outside (systemd's host uid).
    let id = boot(&data, &["--network", "none"]);
    let init: u32 = std::fs::read_to_string(data.join("sandboxes").join(&id).join("init.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let status = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let host_uid: u32 = uid_line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(
        host_uid >= 0x7001_0000 && (host_uid - 0x7000_0000).is_multiple_of(65536),
        "a machine's root must be the root of its own host range: {uid_line}"
    );
    // Host processes invisible.
    let mut canary = std::process::Command::new("sleep")
        .arg("67")
        .spawn()
        .unwrap();
    let seen = must(
        &data,
        &id,
        "ps -eo args | awk '$1 == \"sleep\" && $2 == \"67\"' | wc -l",
    );
    let _ = canary.kill();
    let _ = canary.wait();
    assert_eq!(seen.trim(), "0", "a host process is visible in a machine");
    // network none: loopback (and what the machine makes itself) only.
    let host = TcpListener::bind("0.0.0.0:0").unwrap();
    host.set_nonblocking(true).unwrap();
    let port = host.local_addr().unwrap().port();
    let text = exec(
        &data,
        &id,
        &format!(
            "ip -o link | awk -F': ' '{{print $2}}'; \
             for a in $(hostname -I 2>/dev/null) 10.0.0.1 198.51.100.7; do curl -sS --max-time 2 http://$a:{port}/ >/dev/null 2>&1 && echo REACHED $a; done; true"
        ),
    )
    .stdout_text();
    assert!(!text.contains("eth0"), "{text}");
    assert!(!text.contains("REACHED"), "{text}");
    assert!(host.accept().is_err(), "the host listener got a connection");
    rm(&data, &id);

    // Memory: a bomb in a 256M machine dies with 137.
    let out = run_bash(
        &data,
        &machine_opts(&["--memory", "256M"]),
        "python3 -c 'a=[]\nwhile True: a.append(bytearray(1<<20))'",
    );
    assert_eq!(out.code(), 137, "{}", out.stderr_text());
    // Disk: the quota holds.
    let out = run_bash(
        &data,
        &machine_opts(&["--disk", "256M"]),
        "dd if=/dev/urandom of=/fill bs=1M count=400 2>&1; sync; echo size=$(du -m /fill | cut -f1)",
    );
    let text = out.stdout_text();
    assert!(
        text.contains("Disk quota exceeded"),
        "{text}\n{}",
        pool_report(&data)
    );
    let size: u64 = text.rsplit("size=").next().unwrap().trim().parse().unwrap();
    assert!(size <= 260, "wrote {size}M past a 256M quota");
    // Pids: a fork bomb stays at the limit, read from the host while it runs.
    let id = boot(&data, &["--pids", "96", "--memory", "1G"]);
    let cg = pids_cgroup(&id);
    let max = std::fs::read_to_string(cg.join("pids.max")).unwrap();
    assert_eq!(max.trim(), "96");
    let mut bomb = std::process::Command::new(env!("CARGO_BIN_EXE_sandlab"))
        .arg("--data-dir")
        .arg(&data)
        .args([
            "sandbox",
            "exec",
            &id,
            "--timeout",
            "30s",
            "--",
            "bash",
            "-c",
        ])
        // The recursive bomb: each `b` forks two more in the background, for ever.
        .arg("b(){ b|b& }; b; sleep 25")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut peak = 0u64;
    let hit = wait_until(Duration::from_secs(30), || {
        let read = |f: &str| std::fs::read_to_string(cg.join(f)).unwrap_or_default();
        peak = peak.max(read("pids.current").trim().parse().unwrap_or(0));
        // A refused fork is counted in the cgroup it happened in (on this kernel's v1
        // pids controller), which in a machine is a systemd unit's below the sandbox's.
        refused_forks(&cg) > 0
    });
    let _ = sandlab(&data, &["sandbox", "kill-processes", &id]);
    let _ = bomb.kill();
    let _ = bomb.wait();
    assert!(hit, "the fork bomb never hit the limit (peak {peak})");
    assert!(peak <= 96, "pids.current {peak} went past the limit");
    // After kill-processes the machine is whole again: systemd runs its units and exec
    // works.
    let out = sandlab(
        &data,
        &[
            "sandbox",
            "exec",
            &id,
            "--",
            "systemctl",
            "is-system-running",
            "--wait",
        ],
    );
    let state = out.stdout_text();
    assert!(
        matches!(state.trim(), "running" | "degraded"),
        "after the bomb systemd says {state:?}: {}",
        out.stderr_text()
    );
    rm(&data, &id);
}

/// A machine's `/var/lib/docker` (and the other state dirs) are directories of its btrfs
/// subvolume, and unprivileged users may make subvolumes: one made there was a tree of its
/// own with a qgroup of its own and no limit, so writing into it escaped the disk limit
/// (400M in a 256M machine) and left a volume the host could not delete. From inside:
/// the ioctls that make a subvolume or a snapshot (with the request's upper half set too);
/// from outside: no subvolume in the machine's volume, and removal leaves nothing.
#[test]
fn a_machine_cannot_escape_its_disk_limit_with_a_btrfs_subvolume() {
    let data = data_dir();
    let id = boot(&data, &["--disk", "256M"]);
    let attack = r#"python3 - <<'EOF'
import ctypes, errno, os, struct
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open("/var/lib/docker", os.O_RDONLY)
# btrfs_ioctl_vol_args: fd, name[4088]; btrfs_ioctl_vol_args_v2: fd, transid, flags,
# 4 unused words, name[4040].
v1 = struct.pack("q", fd) + b"escape".ljust(4088, b"\0")
v2 = struct.pack("q6Q", fd, 0, 0, 0, 0, 0, 0) + b"escape".ljust(4040, b"\0")
for name, nr, layout in [("SNAP_CREATE", 0x01, v1), ("SUBVOL_CREATE", 0x0e, v1), ("SNAP_CREATE_V2", 0x17, v2), ("SUBVOL_CREATE_V2", 0x18, v2)]:
    for upper in [0, 1 << 32]:
        args = ctypes.create_string_buffer(layout, 4096)
        r = libc.syscall(16, fd, ctypes.c_ulong(upper | 0x50009400 | nr), args)
        print(name, hex(upper), r, errno.errorcode.get(ctypes.get_errno()))
EOF
ls -d /var/lib/docker/escape 2>/dev/null && echo ESCAPE-EXISTS
dd if=/dev/urandom of=/var/lib/docker/fill bs=1M count=400 2>&1; sync
echo size=$(du -m /var/lib/docker/fill | cut -f1)"#;
    let text = exec(&data, &id, attack).stdout_text();
    let volume = data.join("volumes").join(&id);
    let nested = std::process::Command::new("btrfs")
        .args(["subvolume", "list", "-o"])
        .arg(&volume)
        .output()
        .unwrap()
        .stdout_text();
    let report = pool_report(&data);
    rm(&data, &id);
    assert!(!text.contains("ESCAPE-EXISTS"), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.ends_with(" -1 EPERM")).count(),
        8,
        "every subvolume ioctl must be refused by seccomp:\n{text}"
    );
    assert!(
        nested.trim().is_empty(),
        "subvolumes in the machine's volume: {nested}"
    );
    assert!(text.contains("Disk quota exceeded"), "{text}\n{report}");
    let size: u64 = text.rsplit("size=").next().unwrap().trim().parse().unwrap();
    assert!(size <= 260, "wrote {size}M past a 256M quota");
    assert!(!volume.exists(), "the machine's volume is left behind");
}

/// Through the API: a learner's machine runs a service started over `exec`; the server is
/// SIGKILLed and started again; the machine, its service and an inner container are
/// still there; deleting it leaves nothing on the host.
#[test]
fn a_machine_survives_a_kill_9_of_the_server_and_is_adopted() {
    use common::server::Server;
    use reqwest::StatusCode;
    use serde_json::json;
    let data = data_dir();
    assert!(has_machine_image(&data), "no `machine` image");
    let mut server = Server::start(&data);
    let learner = server.add_user("learner");
    let sb = learner.create(json!({
        "image": "machine", "profile": "machine", "memory": "1G", "pids": 1024, "disk": "4G"
    }));
    assert_eq!(sb["limits"]["profile"], "machine", "{sb}");
    let id = sb["id"].as_str().unwrap().to_owned();
    let out = learner.sh(&id, "systemctl start nginx && systemctl is-active nginx");
    assert_eq!(out["exit_code"], 0, "{out}");
    assert_eq!(out["stdout"].as_str().unwrap().trim(), "active");
    let out = learner.sh(
        &id,
        &format!("{BUILD_BB} && docker run -d --name keep bb sleep 3600"),
    );
    assert_eq!(out["exit_code"], 0, "{out}");

    server.kill9();
    server.restart();
    let after = learner.sh(
        &id,
        "systemctl is-active nginx; docker ps --format '{{.Names}}'; systemctl is-system-running",
    );
    let text = after["stdout"].as_str().unwrap().to_owned();
    assert!(
        text.contains("active\nkeep\n")
            && (text.ends_with("running\n") || text.ends_with("degraded\n")),
        "the machine did not come through the restart: {after}"
    );
    assert_eq!(learner.delete(&id), StatusCode::NO_CONTENT);
    let gone = wait_until(Duration::from_secs(20), || leftovers(&data, &id).is_empty());
    assert!(gone, "left after delete: {:?}", leftovers(&data, &id));
}

/// Forks refused in `cg` and every cgroup below it (`max` of their pids.events).
fn refused_forks(cg: &std::path::Path) -> u64 {
    let own = std::fs::read_to_string(cg.join("pids.events"))
        .unwrap_or_default()
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    let below: u64 = std::fs::read_dir(cg)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| refused_forks(&e.path()))
                .sum()
        })
        .unwrap_or(0);
    own + below
}
