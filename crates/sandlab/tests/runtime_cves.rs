//! The attacks that broke OCI runtimes, tried against whichever runtime these tests run
//! with (`SANDLAB_RUNTIME`; scripts/test.sh runs this file once per runtime), each
//! checked from the host's side.
//!
//! - CVE-2019-5736: a process in the container reopens the runtime's binary through
//!   `/proc/<pid>/exe` and overwrites it, so the host runs the attacker's code next time.
//! - CVE-2024-21626: a descriptor of a host directory (runc leaked one of
//!   `/sys/fs/cgroup`) or a working directory outside the root survives into the
//!   container, and `cd /proc/self/fd/N/../..` walks the host's filesystem.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// The agent binary every sandbox runs (the native runtime's launcher too): the one
/// `SANDLAB_AGENT` names, else the build's, where the driver looks first.
fn agent_binary() -> PathBuf {
    std::env::var_os("SANDLAB_AGENT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_BIN_EXE_sandlab"))
                .parent()
                .and_then(Path::parent)
                .expect("target dir")
                .join("x86_64-unknown-linux-gnu/release/sandlab-agent")
        })
}

fn digest(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
fn the_agent_binary_cannot_be_overwritten_from_inside() {
    let data = data_dir();
    let agent = agent_binary();
    let before = digest(&agent);
    // Every way to the agent's binary a process inside has: its own exe links (the
    // agent's, and those of processes the agent started), and the bind mount itself.
    let script = r#"
        hits=0
        for p in /proc/[0-9]*; do
            for how in '>' '>>'; do
                if eval "printf x $how $p/exe" 2>/dev/null; then echo "wrote $p/exe ($how)"; hits=$((hits+1)); fi
            done
        done
        for f in /.sandlab/agent /proc/1/exe /proc/self/exe; do
            if printf x 2>/dev/null >> "$f"; then echo "wrote $f"; hits=$((hits+1)); fi
            if cp /bin/true "$f" 2>/dev/null; then echo "replaced $f"; hits=$((hits+1)); fi
        done
        mount -o remount,rw /.sandlab/agent 2>/dev/null && echo "remounted the agent rw"
        mount -o remount,bind,rw /.sandlab/agent 2>/dev/null && echo "remounted the bind rw"
        # Open the agent's binary read-only now and write through /proc/self/fd after
        # it stops running (the attack's second half): the open itself must fail too.
        exec 7</proc/1/exe && { printf x >/proc/self/fd/7 2>/dev/null && echo "wrote through fd 7"; }
        echo "hits=$hits"
    "#;
    let out = run_bash(&data, &[], script);
    let text = out.stdout_text();
    assert!(
        text.trim_end().ends_with("hits=0")
            && !text.contains("wrote")
            && !text.contains("remounted"),
        "runtime {}: {text}{}",
        runtime(),
        out.stderr_text()
    );
    assert_eq!(
        digest(&agent),
        before,
        "runtime {}: the host's agent binary {} changed",
        runtime(),
        agent.display()
    );
}

#[test]
fn no_host_directory_or_working_directory_leaks_into_a_sandbox() {
    let data = data_dir();
    let id = create(&data, &[]);
    // What the agent (PID 1) and a command it runs hold: every descriptor that is a
    // directory, and both working directories, must be inside the sandbox's root.
    let script = r#"
        for p in 1 self; do
            echo "cwd $p $(readlink /proc/$p/cwd)"
            for fd in /proc/$p/fd/*; do
                [ -e "$fd" ] || continue
                target=$(readlink "$fd")
                if [ -d "$fd" ]; then echo "dirfd $p $fd $target"; fi
                case "$target" in /sys/fs/cgroup*|/work/*|/run/sandlab*) echo "hostpath $p $fd $target";; esac
            done
        done
        # The walk CVE-2024-21626 took: from each descriptor up to a host root.
        for fd in /proc/1/fd/* /proc/self/fd/*; do
            if [ -d "$fd/../../../.." ] && [ -e "$fd/../../../../etc/shadow" ]; then echo "walked $fd"; fi
        done
        echo done
    "#;
    let out = exec(&data, &id, script);
    let text = out.stdout_text();
    assert!(text.contains("done"), "{text}{}", out.stderr_text());
    for line in text.lines() {
        assert!(
            !line.starts_with("dirfd")
                && !line.starts_with("hostpath")
                && !line.starts_with("walked"),
            "runtime {}: {line}\n{text}",
            runtime()
        );
        // The agent's own working directory is the root (a command's is its user's home).
        if let Some(path) = line.strip_prefix("cwd 1 ") {
            assert!(
                path == "/" || path.is_empty(),
                "runtime {}: the agent works outside the root: {line}",
                runtime()
            );
        }
    }
    // From the host: the init's descriptors are the agent's socket and /dev/null only,
    // and its working directory is the sandbox's root.
    let pid = init_pid(&id);
    let rootfs = data.join("sandboxes").join(&id).join("rootfs");
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
    let root = std::fs::read_link(format!("/proc/{pid}/root")).unwrap();
    assert_eq!(
        cwd,
        root,
        "runtime {}: the init's cwd is not its root",
        runtime()
    );
    assert!(
        root == rootfs || root == Path::new("/"),
        "runtime {}: the init's root is {}",
        runtime(),
        root.display()
    );
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        let target = std::fs::read_link(fd.path()).unwrap_or_default();
        let t = target.to_string_lossy();
        assert!(
            t.starts_with("socket:")
                || t.starts_with("pipe:")
                || t.starts_with("anon_inode:")
                || t == "/dev/null",
            "runtime {}: the init holds {} = {t}",
            runtime(),
            fd.path().display()
        );
    }
    rm(&data, &id);
}
