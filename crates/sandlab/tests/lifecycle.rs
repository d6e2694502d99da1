//! Lifecycle promises: nothing of a sandbox is left on the host after `rm`, after its TTL
//! and after a crash (reconciliation); file writes through the agent never follow a
//! planted symlink out of the sandbox; bad input gets one sentence and the right exit code.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use sandlab_proto::AgentClient;

#[test]
fn rm_leaves_nothing_behind() {
    let data = data_dir();
    let id = create(&data, &["--network", "egress"]);
    assert!(
        !leftovers(&data, &id).is_empty(),
        "a running sandbox has host resources"
    );
    let pid = init_pid(&id);
    let out = exec(&data, &id, "sleep 300 & sleep 300 & echo started");
    assert_eq!(out.stdout_text().trim(), "started");
    rm(&data, &id);
    assert_eq!(leftovers(&data, &id), Vec::<String>::new());
    // Killed processes may linger a moment as zombies until the host's init reaps them.
    let gone = wait_until(Duration::from_secs(10), || {
        processes_of(&id).is_empty() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
    });
    assert!(gone, "processes left: {:?}", processes_of(&id));
}

#[test]
fn ttl_removes_the_sandbox() {
    let data = data_dir();
    let id = create(&data, &["--ttl", "2s"]);
    let gone = wait_until(Duration::from_secs(30), || leftovers(&data, &id).is_empty());
    assert!(
        gone,
        "after the TTL these remain: {:?}",
        leftovers(&data, &id)
    );
    assert!(
        wait_until(Duration::from_secs(10), || processes_of(&id).is_empty()),
        "processes left: {:?}",
        processes_of(&id)
    );
}

#[test]
fn a_sandbox_whose_agent_dies_is_marked_failed_and_cleaned() {
    let data = data_dir();
    let id = create(&data, &[]);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(init_pid(&id) as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let failed = wait_until(Duration::from_secs(15), || {
        let state = record(&data, &id).unwrap_or_default();
        state["state"] == "failed" && leftovers(&data, &id).iter().all(|l| l.contains("records"))
    });
    assert!(
        failed,
        "watcher did not fail and clean the sandbox: {:?}",
        leftovers(&data, &id)
    );
    let out = sandlab(&data, &["sandbox", "ls"]);
    let line = out
        .stdout_text()
        .lines()
        .find(|l| l.starts_with(&id))
        .map(str::to_owned)
        .unwrap_or_default();
    // The watcher says "agent exited"; a concurrent reconciliation may get there first.
    assert!(
        line.contains("failed") && (line.contains("exited") || line.contains("gone")),
        "{line:?}"
    );
    rm(&data, &id);
    assert_eq!(leftovers(&data, &id), Vec::<String>::new());
}

/// Issue 11: failed records stayed listed forever. A failed sandbox's record now goes at
/// its deadline, which failing brings forward to an hour from then.
#[test]
fn a_failed_record_is_listed_for_an_hour_then_goes() {
    let data = data_dir();
    let id = create(&data, &["--ttl", "20h"]);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(init_pid(&id) as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(wait_until(Duration::from_secs(15), || {
        record(&data, &id).is_some_and(|r| r["state"] == "failed")
    }));
    let rec = record(&data, &id).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let deadline = rec["deadline_ms"].as_u64().unwrap();
    assert!(
        deadline <= now + 3_600_000,
        "a failed record keeps the sandbox's 20h deadline: {rec}"
    );
    // An hour later (simulated), the next reconciliation drops it.
    set_deadline(&data, &id, now - 1);
    let out = sandlab(&data, &["sandbox", "ls"]);
    assert_eq!(out.code(), 0, "{}", out.stderr_text());
    assert!(!out.stdout_text().contains(&id), "{}", out.stdout_text());
    assert_eq!(leftovers(&data, &id), Vec::<String>::new());
}

#[test]
fn reconcile_removes_orphans_and_fails_records_whose_sandbox_died() {
    let data = data_dir();
    // An orphan: host resources whose record is gone (a crash between runc and the record).
    let orphan = create(&data, &[]);
    kill_watcher(&orphan);
    delete_record(&data, &orphan);
    // A dead sandbox: its record says running but its processes were killed.
    let dead = create(&data, &[]);
    kill_watcher(&dead);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(init_pid(&dead) as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(wait_until(Duration::from_secs(10), || processes_of(&dead).is_empty()));

    let out = sandlab(&data, &["sandbox", "ls"]);
    assert_eq!(out.code(), 0, "{}", out.stderr_text());
    assert_eq!(
        leftovers(&data, &orphan),
        Vec::<String>::new(),
        "orphan not removed"
    );
    let line = out
        .stdout_text()
        .lines()
        .find(|l| l.starts_with(&dead))
        .map(str::to_owned)
        .unwrap_or_default();
    assert!(
        line.contains("failed"),
        "dead sandbox not marked failed: {line:?}"
    );
    assert!(line.contains("gone"), "no reason given: {line:?}");
    let remaining: Vec<String> = leftovers(&data, &dead)
        .into_iter()
        .filter(|l| !l.contains("records"))
        .collect();
    assert!(
        remaining.is_empty(),
        "dead sandbox's resources remain: {remaining:?}"
    );
    rm(&data, &dead);
    assert_eq!(leftovers(&data, &dead), Vec::<String>::new());
}

#[test]
fn kill_9_of_run_at_any_point_leaves_nothing_after_reconcile() {
    let data = data_dir();
    let mut victims = Vec::new();
    for delay_ms in [0u64, 5, 15, 30, 45, 60, 80, 120, 250] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sandlab"))
            .arg("--data-dir")
            .arg(&data)
            .args(["run", "--network", "egress", "--", "sleep", "30"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        let _ = child.wait();
        victims.push(child.id());
    }
    // Sandboxes whose record names one of the killed processes as creator or owner.
    let ids: Vec<String> = records(&data)
        .into_iter()
        .filter_map(|v| {
            let pid = |k: &str| v[k].as_u64().map(|p| p as u32);
            let ours = [pid("owner_pid"), pid("creator_pid")]
                .into_iter()
                .flatten()
                .any(|p| victims.contains(&p));
            ours.then(|| v["id"].as_str().unwrap().to_owned())
        })
        .collect();
    // A killed command's native seed exits when its socket closes; its cgroups stay
    // until the next command that creates sweeps them.
    std::thread::sleep(Duration::from_millis(200));
    let seeds = empty_seed_cgroups();
    let out = sandlab(&data, &["run", "--", "true"]);
    assert_eq!(out.code(), 0, "{}", out.stderr_text());
    let kept: Vec<_> = empty_seed_cgroups()
        .into_iter()
        .filter(|s| seeds.contains(s))
        .collect();
    assert!(kept.is_empty(), "seed cgroups outlived the sweep: {kept:?}");
    for id in &ids {
        assert_eq!(
            leftovers(&data, id),
            Vec::<String>::new(),
            "{id} leaked after kill -9 and reconcile"
        );
        assert!(
            wait_until(Duration::from_secs(10), || processes_of(id).is_empty()),
            "{id} left processes"
        );
    }
    eprintln!(
        "{} of 9 killed runs had written a record; all cleaned",
        ids.len()
    );
}

/// The sweep of leftover seed cgroups removes those of processes that are gone, never
/// those of a live process (a seed is empty between its cgroups being made and its
/// launcher being placed; sweeping it then failed that process's create with "I/O error on
/// …/seed-…/cgroup.procs", seen while `bench execute` ran commands beside a server).
#[test]
fn the_seed_sweep_spares_the_seeds_of_live_processes() {
    if !matches!(runtime().as_str(), "auto" | "native") {
        return;
    }
    let data = data_dir();
    // Any command makes the driver, which makes the cgroup parents.
    let out = sandlab(&data, &["sandbox", "ls"]);
    assert_eq!(out.code(), 0, "{}", out.stderr_text());
    let parent = Path::new("/sys/fs/cgroup/pids/sandlab");
    assert!(parent.is_dir(), "no {}", parent.display());
    // A live process's seed (ours), a dead one's (a pid above pid_max) and an older
    // build's name without a pid.
    let live = parent.join(format!("seed-{}-testlivexxxx", std::process::id()));
    let dead = parent.join("seed-4194305-testdeadxxxx");
    let legacy = parent.join("seed-testlegacyxx");
    for dir in [&live, &dead, &legacy] {
        std::fs::create_dir(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    }
    // A create sweeps before it makes its seed (a command that only lists does not).
    let out = sandlab(&data, &["run", "--", "true"]);
    let (live_kept, dead_kept, legacy_kept) = (live.exists(), dead.exists(), legacy.exists());
    for dir in [&live, &dead, &legacy] {
        let _ = std::fs::remove_dir(dir);
    }
    assert_eq!(out.code(), 0, "{}", out.stderr_text());
    assert!(live_kept, "the sweep removed a live process's seed");
    assert!(!dead_kept, "the sweep kept a dead process's seed");
    assert!(
        !legacy_kept,
        "the sweep kept a seed named by an older build"
    );
}

/// Kills the background deadline watcher of `id`, as a crash would.
fn kill_watcher(id: &str) {
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if args.iter().any(|a| *a == b"watch") && args.contains(&id.as_bytes()) {
            if let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_symlink_never_makes_a_write_land_outside() {
    let data = data_dir();
    let canary_dir = tempfile::tempdir().unwrap();
    let canary = canary_dir.path().join("canary");
    std::fs::write(&canary, "original").unwrap();
    let id = create(&data, &[]);
    let target = canary.display().to_string();
    let dir = canary_dir.path().display().to_string();
    let out = exec(&data, &id, &format!("ln -s {target} /tmp/link && ln -s {dir} /tmp/dirlink && ln -s / /tmp/root && echo planted"));
    assert_eq!(out.stdout_text().trim(), "planted", "{}", out.stderr_text());

    let agent = AgentClient::connect(
        &data.join("sandboxes").join(&id).join("agent.sock"),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let _ = agent.write_file("/tmp/link", b"pwned", 0o644, false).await;
    let _ = agent
        .write_file("/tmp/dirlink/new-file", b"pwned", 0o644, true)
        .await;
    let _ = agent
        .write_file(&format!("/tmp/root{target}"), b"pwned", 0o644, true)
        .await;
    drop(agent);

    assert_eq!(std::fs::read_to_string(&canary).unwrap(), "original");
    assert!(!canary_dir.path().join("new-file").exists());
    let entries: Vec<_> = std::fs::read_dir(canary_dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        entries.len(),
        1,
        "new files appeared on the host: {entries:?}"
    );
    rm(&data, &id);
}

#[test]
fn bad_input_gets_one_sentence_and_the_right_exit_code() {
    let data = data_dir();
    let out = sandlab(&data, &["run", "--memory", "12Q", "--", "true"]);
    assert_eq!(out.code(), 2);
    assert_eq!(
        out.stderr_text().lines().count(),
        1,
        "{}",
        out.stderr_text()
    );
    assert!(out.stderr_text().contains("12Q"), "{}", out.stderr_text());

    let out = sandlab(&data, &["run", "--no-such-flag", "--", "true"]);
    assert_eq!(out.code(), 2);
    assert_eq!(
        out.stderr_text().lines().count(),
        1,
        "{}",
        out.stderr_text()
    );

    let out = sandlab(&data, &["run", "--image", "nope", "--", "true"]);
    assert_eq!(out.code(), 1);
    assert_eq!(
        out.stderr_text().lines().count(),
        1,
        "{}",
        out.stderr_text()
    );
    assert!(
        out.stderr_text().contains("\"nope\" does not exist"),
        "{}",
        out.stderr_text()
    );

    let out = sandlab(&data, &["sandbox", "exec", "sb-aaaaaaaaaaaa", "--", "true"]);
    assert_eq!(out.code(), 1);
    assert!(
        out.stderr_text().contains("does not exist"),
        "{}",
        out.stderr_text()
    );

    let out = sandlab(&data, &["sandbox", "rm", "../../etc"]);
    assert_eq!(out.code(), 2, "{}", out.stderr_text());
}

#[test]
fn crun_on_a_hybrid_host_is_refused_with_a_reason() {
    let data = data_dir();
    let hybrid = std::path::Path::new("/sys/fs/cgroup/unified").exists()
        && std::path::Path::new("/sys/fs/cgroup/memory").exists();
    if !hybrid || !std::path::Path::new("/usr/bin/crun").exists() {
        eprintln!("not a cgroup-hybrid host with crun: nothing to refuse here");
        return;
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sandlab"))
        .env("SANDLAB_RUNTIME", "crun")
        .arg("--data-dir")
        .arg(&data)
        .args(["run", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.code(), 1);
    assert!(
        out.stderr_text().contains("hybrid"),
        "{}",
        out.stderr_text()
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sandlab"))
        .env("SANDLAB_RUNTIME", "auto")
        .arg("--data-dir")
        .arg(&data)
        .args(["run", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(
        out.code(),
        0,
        "auto falls back to runc: {}",
        out.stderr_text()
    );
}
