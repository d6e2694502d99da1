//! Helpers for tests that drive the real `sandlab` binary as root against real runc,
//! cgroups, namespaces and nftables. They share one data dir with the `debian` image,
//! built once per run by `scripts/test.sh`.

#![allow(dead_code)]

pub mod server;
pub mod testhost;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn data_dir() -> PathBuf {
    let dir = std::env::var_os("SANDLAB_TEST_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.data/test"));
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests need root: run them with scripts/test.sh"
    );
    let has_image = dir.join("images").exists()
        && sandlab(&dir, &["image", "ls"])
            .stdout_text()
            .lines()
            .skip(1)
            .any(|l| l.starts_with("debian "));
    assert!(
        has_image,
        "no `debian` image in {}: run scripts/test.sh, or `sandlab --data-dir {} image build debian`",
        dir.display(),
        dir.display()
    );
    dir
}

pub trait OutputExt {
    fn stdout_text(&self) -> String;
    fn stderr_text(&self) -> String;
    fn code(&self) -> i32;
}

impl OutputExt for Output {
    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }
}

pub fn sandlab(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sandlab"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run sandlab")
}

/// `sandlab run [opts] -- bash -c SCRIPT`.
pub fn run_bash(data: &Path, opts: &[&str], script: &str) -> Output {
    let mut args = vec!["run"];
    args.extend_from_slice(opts);
    args.extend_from_slice(&["--", "bash", "-c", script]);
    sandlab(data, &args)
}

pub fn create(data: &Path, opts: &[&str]) -> String {
    let mut args = vec!["sandbox", "create"];
    args.extend_from_slice(opts);
    let out = sandlab(data, &args);
    assert_eq!(out.code(), 0, "create failed: {}", out.stderr_text());
    out.stdout_text().trim().to_owned()
}

pub fn exec(data: &Path, id: &str, script: &str) -> Output {
    sandlab(data, &["sandbox", "exec", id, "--", "bash", "-c", script])
}

pub fn rm(data: &Path, id: &str) {
    let out = sandlab(data, &["sandbox", "rm", id]);
    assert_eq!(out.code(), 0, "rm failed: {}", out.stderr_text());
}

/// Host pid of the sandbox's init (the agent), as whichever runtime started it noted it
/// in the sandbox's directory.
pub fn init_pid(id: &str) -> u32 {
    let file = data_dir().join("sandboxes").join(id).join("init.pid");
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
    text.trim().parse().expect("a pid in init.pid")
}

/// The native runtime's seed cgroups (`/sandlab/seed-<pid>-…` in each v1 hierarchy) that
/// hold no process and whose maker is gone: what a killed command leaves until the next
/// command that creates (or a server) sweeps it. A live process's seed being made (empty for a moment) is not one.
pub fn empty_seed_cgroups() -> Vec<PathBuf> {
    let mut found = Vec::new();
    for h in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        for e in std::fs::read_dir(h.path().join("sandlab"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let empty = std::fs::read_to_string(e.path().join("cgroup.procs"))
                .is_ok_and(|p| p.trim().is_empty());
            if empty && sandlab_runtime::seed_orphaned(&e.file_name().to_string_lossy()) {
                found.push(e.path());
            }
        }
    }
    found
}

/// The runtime these tests run sandboxes with (`SANDLAB_RUNTIME`, `auto` by default):
/// the isolation tests run once per runtime (scripts/test.sh).
pub fn runtime() -> String {
    std::env::var("SANDLAB_RUNTIME").unwrap_or_else(|_| "auto".into())
}

/// Every host-side trace of a sandbox that still exists, described.
pub fn leftovers(data: &Path, id: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for line in mounts.lines().filter(|l| l.contains(id)) {
        found.push(format!("mount: {line}"));
    }
    for entry in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let p = entry.path().join("sandlab").join(id);
        if p.exists() {
            found.push(format!("cgroup: {}", p.display()));
        }
    }
    for p in [
        PathBuf::from("/run/netns").join(id),
        PathBuf::from("/sys/class/net").join(id),
        PathBuf::from("/run/sandlab/runc").join(id),
        data.join("sandboxes").join(id),
        data.join("volumes").join(id),
    ] {
        if p.exists() {
            found.push(format!("path: {}", p.display()));
        }
    }
    if record(data, id).is_some() {
        found.push(format!("records: {id}"));
    }
    for dir in ["/run/sandlab/egress-slots", "/run/sandlab/uid-ranges"] {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if std::fs::read_to_string(e.path()).is_ok_and(|s| s.lines().any(|l| l == id)) {
                found.push(format!("slot: {}", e.path().display()));
            }
        }
    }
    let nft = Command::new("nft")
        .args(["list", "ruleset"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if nft.contains(id) {
        found.push("nftables rule naming the sandbox".into());
    }
    found
}

/// The sandbox's cgroup that holds its pids limit: v1's pids hierarchy, else v2's.
pub fn pids_cgroup(id: &str) -> PathBuf {
    let v1 = Path::new("/sys/fs/cgroup/pids/sandlab").join(id);
    if v1.exists() {
        v1
    } else {
        Path::new("/sys/fs/cgroup/sandlab").join(id)
    }
}

/// Host processes whose uid is in the sandbox range and whose cgroup names `id`.
pub fn processes_of(id: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Ok(cg) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) {
            if cg.contains(id) {
                pids.push(pid);
            }
        }
    }
    pids
}

/// The sandbox id of node `name` in a lab session as the API shows it.
pub fn session_node(session: &serde_json::Value, name: &str) -> String {
    session["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["name"] == name)
        .and_then(|n| n["sandbox"].as_str())
        .unwrap_or_else(|| panic!("no node {name}: {session}"))
        .to_owned()
}

/// The stored record of sandbox `id` (from `sandlab sandbox inspect`), if there is one.
pub fn record(data: &Path, id: &str) -> Option<serde_json::Value> {
    records(data)
        .into_iter()
        .find(|r| r["id"].as_str() == Some(id))
}

/// Every stored sandbox record.
pub fn records(data: &Path) -> Vec<serde_json::Value> {
    let out = sandlab(data, &["sandbox", "inspect"]);
    assert_eq!(out.code(), 0, "sandbox inspect: {}", out.stderr_text());
    serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).expect("inspect prints JSON")
}

/// Deletes the record of `id` from the database and nothing else (a crash between the
/// runtime and the record, simulated).
pub fn delete_record(data: &Path, id: &str) {
    use sandlab_store::RecordStore;
    with_store(data, |store| async move {
        store.delete(&id.parse().unwrap()).await.unwrap();
    });
}

/// Runs `f` on this data dir's database, as the CLI and the server open it.
fn with_store<F, Fut>(data: &Path, f: F)
where
    F: FnOnce(sandlab_store::SqliteStore) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = sandlab_store::SqliteStore::open(&data.join("sandlab.db"))
            .await
            .unwrap();
        f(store).await;
    });
}

/// Builds `tests/probes/<name>.c` statically with the host's gcc; the binary's bytes.
#[allow(dead_code)] // not every test binary uses it
pub fn build_probe(name: &str, extra_flags: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(name);
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/probes")
        .join(format!("{name}.c"));
    let built = Command::new("gcc")
        .arg("-static")
        .args(extra_flags)
        .args(["-O1", "-o"])
        .arg(&out)
        .arg(&src)
        .output()
        .expect("run gcc");
    assert!(
        built.status.success(),
        "gcc failed: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    std::fs::read(&out).unwrap()
}

/// Sets the stored deadline of `id` (Unix ms) and nothing else (time passing, simulated).
#[allow(dead_code)] // not every test binary uses it
pub fn set_deadline(data: &Path, id: &str, deadline_ms: u64) {
    use sandlab_store::RecordStore;
    with_store(data, |store| async move {
        let mut rec = store.get(&id.parse().unwrap()).await.unwrap().unwrap();
        rec.deadline_ms = deadline_ms;
        store.put(&rec).await.unwrap();
    });
}

#[allow(unused_imports)] // not every test binary uses it
pub use sandlab_testkit::wait_until_blocking as wait_until;

/// The kernel's view of a data dir's volume pool, for the message of a failed disk-limit
/// assertion: its quota flags in sysfs, its qgroups and the kernel's last btrfs lines.
pub fn pool_report(data: &Path) -> String {
    let script = r#"p=$1; uuid=$(findmnt -no UUID "$p"); echo "pool $p, fsid $uuid"
        for f in enabled inconsistent drop_subtree_threshold; do
          echo "qgroups/$f: $(cat /sys/fs/btrfs/$uuid/qgroups/$f 2>&1)"; done
        btrfs qgroup show -re "$p" 2>&1 | tail -n 12
        dmesg 2>&1 | grep -iE 'btrfs|qgroup' | tail -n 8"#;
    let out = Command::new("sh")
        .args(["-c", script, "sh"])
        .arg(data.join("volumes"))
        .stdin(Stdio::null())
        .output()
        .expect("run sh");
    format!("{}{}", out.stdout_text(), out.stderr_text())
}
